"""``SubEnv``: the Gymnasium environment ``E^n`` of one neuron.

Every other neuron follows ``NetworkPolicy`` with the given weights; the
chosen neuron's action is its own next voltage. Any single-agent library (Stable-Baselines3,
CleanRL, …) can therefore train one neuron of a network:

    env = gymnasium.make("neuron_env/SubEnv-v0", task="Pendulum-v1", neuron="out_0")

Spaces, rewards and episode ends are those of the neuron's agent in
``neuron_v0``; ``info["task_stepped"]`` tells the ticks where the task stepped, and on those
``info["task_action"]`` is the decoded action the task received. Any task ``neuron_env.spaces``
can encode works (a ``Discrete`` CartPole too): the neuron's own spaces stay ``Box`` voltages.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch

from neuron_env.actions import action_value
from neuron_env.parallel import default_topology
from neuron_env.policy import NetworkPolicy
from neuron_env.spaces import DecoderSpec, EncoderSpec
from neuron_env.topology import NetworkWeights, Topology
from neuron_env.vector import NeuronVecEnv, TaskSpec


class SubEnv(gym.Env):
    """The sub-environment of one neuron, every other neuron acting by its weights.

    Args:
        task: Gymnasium id or callable returning an env.
        topology: The network; ``None`` builds the default tanh MLP for the task.
        neuron: Agent id of the learning neuron, e.g. ``"out_0"`` or ``"h1_3"``.
        weights: Weights of the other neurons; ``None`` draws ``NetworkWeights.init(topology, seed)``.
        delay: Ticks per task step (default: depth, or 1 when cyclic).
        observe: ``"presynaptic"`` or ``"all"``.
        encoder: The encoder of the task's observations (``None``: the space's default); see
            ``neuron_env.spaces``.
        out_of_range: ``"error"`` or ``"clip"`` for an action outside the neuron's range.
        render_mode: Passed to the task.
        seed: Seed of the random weights when ``weights`` is ``None``.
        task_kwargs: Keyword arguments of the task.
        decoder: The decoder into task actions (``None``: the space's default, e.g. ``"argmax"``
            for a Discrete task); see ``neuron_env.spaces``. ``info["task_action"]`` holds the
            decoded action on the ticks where the task steps.

    Raises:
        KeyError: If ``neuron`` is not an agent id of the topology (the message lists examples).
    """

    metadata: dict[str, Any] = {"render_modes": ["human", "rgb_array"], "render_fps": 30}

    def __init__(
        self,
        task: TaskSpec = "Pendulum-v1",
        topology: Topology | None = None,
        neuron: str = "out_0",
        weights: NetworkWeights | None = None,
        delay: int | None = None,
        observe: str = "presynaptic",
        encoder: EncoderSpec = None,
        out_of_range: str = "error",
        render_mode: str | None = None,
        seed: int = 0,
        task_kwargs: dict[str, Any] | None = None,
        decoder: DecoderSpec = None,
    ) -> None:
        if topology is None:
            topology = default_topology(task, task_kwargs, encoder=encoder, decoder=decoder)
        if neuron not in topology.agent_ids:
            raise KeyError(
                f"neuron {neuron!r} is not an agent of the topology; agents are '<group>_<i>', "
                f"e.g. {list(topology.agent_ids[:3])} … {topology.agent_ids[-1]!r}"
            )
        if observe not in ("presynaptic", "all"):
            raise ValueError(f"observe={observe!r}; use 'presynaptic' or 'all'")
        self.core = NeuronVecEnv(task, topology, delay=delay, encoder=encoder, decoder=decoder,
                                 out_of_range=out_of_range, task_kwargs=task_kwargs, render_mode=render_mode)
        self.topology = topology
        self.neuron = neuron
        self.render_mode = render_mode
        self.policy = NetworkPolicy(topology, weights, seed=seed)
        self.agent_index = topology.agent_ids.index(neuron)
        group = topology.group_of_agent(neuron)
        self._observed = (topology.presynaptic_index[group.name] if observe == "presynaptic"
                          else np.arange(topology.num_neurons))
        low, high = self.core.voltage_low, self.core.voltage_high
        self.observation_space = gym.spaces.Box(low[self._observed], high[self._observed], dtype=np.float32)
        neuron_index = topology.agent_neuron_index[self.agent_index]
        self.action_space = gym.spaces.Box(low[neuron_index], high[neuron_index], shape=(1,), dtype=np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        """Reset the task; returns the neuron's observation and ``{}``."""
        super().reset(seed=seed)
        voltages, _ = self.core.reset(seed=seed, options=options)
        return self._observe(voltages), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """One tick: the neuron takes ``action``, every other neuron ``σ(K^m v + b^m)``.

        Args:
            action: The neuron's next voltage: one finite real number within its range, in any
                form of the action contract (``neuron_env.actions``), e.g. ``np.array([0.5],
                dtype=np.float32)`` (the action space's) or ``0.5``.

        Raises:
            ResetNeeded: Before ``reset``.
            InvalidActionError: Naming the neuron, for an action that is not one finite real
                number, or (``out_of_range="error"``) one outside its range.
        """
        voltages = self.core.voltages
        value = action_value(self.neuron, action)
        with torch.no_grad():
            actions = self.policy(voltages)
        actions[0, self.agent_index] = value
        result = self.core.step(actions)
        observed = result.info["final_voltages"] if result.task_stepped else result.voltages
        info: dict[str, Any] = {"task_stepped": result.task_stepped}
        if result.task_stepped:
            info["task_action"] = result.info["task_action"][0]
        return (self._observe(observed), float(result.reward[0]), bool(result.terminated[0]),
                bool(result.truncated[0]), info)

    def render(self) -> Any:
        """Render the task."""
        return self.core.render() if self.render_mode is not None else None

    def close(self) -> None:
        """Close the task."""
        self.core.close()

    def _observe(self, voltages: torch.Tensor) -> np.ndarray:
        return voltages[0].cpu().numpy()[self._observed].astype(np.float32)
