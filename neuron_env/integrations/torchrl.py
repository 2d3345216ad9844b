"""A native TorchRL environment: every neuron an agent, one agent group per layer.

``NeuronTorchRLEnv`` is a TorchRL ``EnvBase`` built directly on the batched core
``NeuronVecEnv``. It speaks TorchRL's multi-agent conventions (those of
``VmasEnv`` and ``PettingZooWrapper``) without ever building a per-agent dict: a tick is a
handful of tensor operations whatever the number of neurons.

    from neuron_env import Topology
    from neuron_env.integrations.torchrl import NeuronTorchRLEnv

    env = NeuronTorchRLEnv("Pendulum-v1", Topology.mlp(3, [64, 64], 1), num_envs=16)
    td = env.rollout(100)            # td["next", "h1", "reward"].shape == (16, 100, 64, 1)

Layout of the data
------------------
``batch_size`` is ``[E]`` (``num_envs`` task copies). Every agent group of the topology (every
non-input layer, e.g. ``h1``, ``h2``, ``out``) is one nested TensorDict with batch size
``[E, n]`` (``n`` agents in the group):

| key | shape | meaning |
|---|---|---|
| ``(group, "observation")`` | ``[E, n, fan_in]`` | presynaptic voltages (``observe="all"``: N; ``agent_id``: + n) |
| ``(group, "action")`` | ``[E, n, 1]`` | each neuron's next voltage |
| ``(group, "reward")`` | ``[E, n, 1]`` | task reward on a task tick, else 0 (``next`` only) |
| ``(group, "done")`` etc. | ``[E, n, 1]`` | ``done``/``terminated``/``truncated`` of the task |
| ``"done"`` etc. | ``[E, 1]`` | the same flags, once per task copy |
| ``"state"`` | ``[E, N]`` | all voltages (``return_state=True``; for MAPPO) |

Every agent of a group observes the same neurons, so a group's observation is one ``[E, fan_in]``
gather, *expanded* (a stride-0 view, no copy) over the group's agents; likewise rewards and
flags. Views cannot be written in place (PyTorch raises); ``.clone()`` one first if you must.
Because the observations of a group are equal, a policy shared by the group (BenchMARL's
``share_policy_params=True``, MAPPO's parameter sharing) acts the same for every neuron of it
unless the agents are told apart: ``agent_id=True`` appends each agent's one-hot index within
its group, MAPPO's "agent ID": the observation becomes a real ``[E, n, fan_in + n]`` tensor, the
voltages then the one-hot.
Actions of all groups are concatenated in agent order (``topology.agent_ids``) and handed to
``NeuronVecEnv.step`` as one ``[E, num_agents]`` tensor. Each group's action must be a real
tensor (bool, integer or floating) of shape ``[E, n, 1]`` or ``[E, n]``: one finite number per
agent, the action contract of every neuron-env entry point (``neuron_env.actions``). A missing
group action, a non-tensor, a complex tensor or another shape raises ``InvalidActionError``
naming the group, its agents and the expected shape; NaN, ±inf or an out-of-range value raises
it naming the agent and the copy.

Specs are ``Bounded`` by each neuron's range (tanh ``[-1, 1]``, sigmoid ``[0, 1]``, the task's
observation bounds for input neurons) and ``Unbounded`` where a bound is infinite (relu,
identity, most MuJoCo observations). An ``Unbounded`` action spec samples from a normal
distribution, so ``env.rand_action`` on a relu group needs ``out_of_range="clip"``; otherwise the
core raises ``InvalidActionError`` naming the agent.

Episode ends and resets
-----------------------
The core resets a finished task copy in the same tick (Gymnasium's ``SAME_STEP`` autoreset).
TorchRL keeps the two apart: ``step`` returns the *final* observation (the final task
observation clamped into the input neurons, from ``info["final_voltages"]``) with the done flags
set, and the next ``reset`` with a ``"_reset"`` mask (what ``step_and_maybe_reset``, collectors and
``rollout(..., break_when_any_done=False)`` send) returns the already started new episode of the
copies that ended, without touching the others. A ``reset()`` without a mask, or with every copy
masked while some are still running, resets all copies (seeded by ``set_seed`` or
``reset(seed=...)``: copy ``i`` gets ``seed + i``). A mask that selects some, but not all, copies
still running is refused with a ``RuntimeError``: the core cannot restart a single running copy.
Bound episodes through the task (Gymnasium's ``TimeLimit``, ``max_episode_steps``) rather than
TorchRL's ``StepCounter(max_steps)`` when ``num_envs > 1``.

Rewards are counted per tick: the task's reward arrives on every ``delay``-th tick and is 0 in
between, so discount factors apply per tick (``gamma ** (1 / delay)`` matches a per-task-step
``gamma``). The env says so itself: ``env.delay`` (ticks per task step),
``env.task_episode_steps`` (the task's episode bound in task steps, ``None`` if unbounded),
``env.ticks_per_task_episode`` (``delay ×`` that: a rollout's ``max_steps`` for a full episode)
and ``env.per_tick_discount(gamma)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from tensordict import TensorDict, TensorDictBase, is_non_tensor
from torchrl.data import Bounded, Categorical, Composite, Unbounded
from torchrl.envs import EnvBase

from neuron_env.actions import group_actions
from neuron_env.parallel import DEFAULT_HIDDEN, TaskClock, default_topology, task_episode_steps
from neuron_env.topology import Topology
from neuron_env.vector import NeuronVecEnv, TaskSpec

__all__ = ["NeuronTorchRLEnv"]

_DONE_KEYS = ("done", "terminated", "truncated")


class NeuronTorchRLEnv(TaskClock, EnvBase):
    """A Gymnasium task driven by a network of neuron agents, as a batched TorchRL env.

    Args:
        task: A Gymnasium id, a callable returning a ``gym.Env``, or a ready
            ``NeuronVecEnv`` (then ``topology``, ``num_envs``, ``device``,
            ``hidden`` and ``core_kwargs`` must be left at their defaults).
        topology: The network; ``None`` sizes ``Topology.for_task(task, hidden)`` from the task's spaces.
        num_envs: Number of task copies ``E`` (the env's ``batch_size`` is ``[E]``).
        device: Torch device of the voltages and of every tensor the env returns.
        observe: ``"presynaptic"`` (each agent sees its group's presynaptic voltages) or
            ``"all"`` (every agent sees all ``N`` voltages).
        return_state: Add all voltages as a root ``"state"`` entry (a centralised critic's input).
        hidden: Hidden sizes of the default topology.
        agent_id: Append a one-hot of each agent's index within its group to its observation. The
            agents of a group observe the same voltages, so a policy shared by the group tells them
            apart only by it.
        **core_kwargs: Passed to ``NeuronVecEnv``: ``delay``, ``encoder``,
            ``vectorization``, ``out_of_range``, ``validate``, ``task_kwargs``, ``render_mode``.

    Raises:
        ValueError: On an unknown ``observe`` or conflicting arguments.
        TaskError: If a task space cannot be encoded or decoded (``neuron_env.spaces``).
        TopologyError: If the topology does not fit the task.

    Attributes:
        core: The underlying ``NeuronVecEnv``.
        topology: The network.
        group_map: ``{group: [agent ids]}``, the same grouping TorchRL's ``PettingZooWrapper``
            infers from the ``<group>_<i>`` agent ids.
        agent_id: Whether observations end with the agent's one-hot index in its group.
        delay: Ticks per task step (a property; ``core.delay``).
        task_episode_steps: The task's episode bound in task steps (a property; ``None``: unbounded).
        ticks_per_task_episode: ``delay × task_episode_steps``, the ticks of a full task episode
            (a property; ``None``: unbounded).
    """

    def __init__(
        self,
        task: TaskSpec | NeuronVecEnv = "Pendulum-v1",
        topology: Topology | None = None,
        num_envs: int = 1,
        device: str | torch.device = "cpu",
        observe: str = "presynaptic",
        return_state: bool = False,
        hidden: tuple[int, ...] = DEFAULT_HIDDEN,
        *,
        agent_id: bool = False,
        **core_kwargs: Any,
    ) -> None:
        if observe not in ("presynaptic", "all"):
            raise ValueError(f"observe={observe!r}; use 'presynaptic' or 'all'")
        if isinstance(task, NeuronVecEnv):
            if topology is not None or num_envs != 1 or str(device) != "cpu" or core_kwargs:
                raise ValueError(
                    "pass either a ready NeuronVecEnv as task, or a task with topology/num_envs/device/"
                    f"core arguments, not both (got topology={topology!r}, num_envs={num_envs}, "
                    f"device={device!r}, {sorted(core_kwargs)})"
                )
            core = task
        else:
            if topology is None:
                topology = default_topology(task, core_kwargs.get("task_kwargs"), tuple(hidden))
            core = NeuronVecEnv(task, topology, num_envs=num_envs, device=device, **core_kwargs)
        super().__init__(device=core.device, batch_size=torch.Size([core.num_envs]))
        self.core = core
        self.topology = core.topology
        self.observe = observe
        self.return_state = return_state
        self.agent_id = bool(agent_id)
        self.group_map: dict[str, list[str]] = {
            g.name: list(self.topology.agent_ids[self.topology.agent_slice[g.name]]) for g in self.topology.agent_groups
        }
        num_neurons = self.topology.num_neurons
        #: Voltage indices each group observes, as a device tensor.
        self._observed: dict[str, torch.Tensor] = {
            g.name: torch.as_tensor(
                self.topology.presynaptic_index[g.name] if observe == "presynaptic" else np.arange(num_neurons),
                dtype=torch.long, device=self.device,
            )
            for g in self.topology.agent_groups
        }
        self._sizes = {g.name: g.size for g in self.topology.agent_groups}
        #: Each group's agent one-hots ``[n, n]`` (``agent_id=True``).
        self._agent_one_hots = {name: torch.eye(n, dtype=torch.float32, device=self.device)
                                for name, n in self._sizes.items()} if self.agent_id else {}
        self._task_episode_steps = task_episode_steps(core)
        self._ended = torch.zeros(self.core.num_envs, dtype=torch.bool, device=self.device)
        self._seed: int | None = None
        self._started = False
        self._core_closed = False
        self._make_specs()

    # ------------------------------------------------------------------ specs
    def _make_specs(self) -> None:
        num_envs, device = self.core.num_envs, self.device
        low, high = self.core.voltage_low, self.core.voltage_high
        observation, action, reward, done = Composite(), Composite(), Composite(), Composite()
        for name, n in self._sizes.items():
            shape = (num_envs, n)
            index = self._observed[name].cpu().numpy()
            observed_low, observed_high = low[index], high[index]
            if self.agent_id:
                observed_low = np.concatenate([observed_low, np.zeros(n)])
                observed_high = np.concatenate([observed_high, np.ones(n)])
            observation[name] = Composite(
                observation=_box((*shape, len(observed_low)), observed_low, observed_high, device), shape=shape,
                device=device,
            )
            agents = self.topology.agent_slice[name]
            a_low = self.core.action_low[agents].cpu().numpy().reshape(n, 1)
            a_high = self.core.action_high[agents].cpu().numpy().reshape(n, 1)
            action[name] = Composite(action=_box((*shape, 1), a_low, a_high, device), shape=shape, device=device)
            reward[name] = Composite(
                reward=Unbounded(shape=(*shape, 1), dtype=torch.float32, device=device), shape=shape, device=device,
            )
            done[name] = Composite(
                {key: _flag((*shape, 1), device) for key in _DONE_KEYS}, shape=shape, device=device,
            )
        for key in _DONE_KEYS:
            done[key] = _flag((num_envs, 1), device)
        if self.return_state:
            observation["state"] = _box((num_envs, self.topology.num_neurons), low, high, device)
        self.observation_spec = Composite(observation, shape=(num_envs,), device=device)
        self.full_action_spec = Composite(action, shape=(num_envs,), device=device)
        self.full_reward_spec = Composite(reward, shape=(num_envs,), device=device)
        self.full_done_spec = Composite(done, shape=(num_envs,), device=device)

    # ------------------------------------------------------------------ EnvBase API
    def _reset(self, tensordict: TensorDictBase | None = None, **kwargs: Any) -> TensorDictBase:
        """Full reset, or hand out the new episodes the core already started (see the module page)."""
        seed = kwargs.pop("seed", None)
        if seed is not None:
            self._seed = int(seed)
        mask = self._reset_mask(tensordict)
        if mask is not None and self._started and not bool((mask & ~self._ended).any()):
            voltages = self.core.voltages  # only copies that ended: the core already restarted them
            self._ended = self._ended & ~mask
        elif mask is None or not self._started or bool(mask.all()):
            voltages, _ = self.core.reset(seed=self._seed, options=kwargs.pop("options", None))
            self._seed = None
            self._started = True
            self._ended = torch.zeros_like(self._ended)
        else:
            running = torch.nonzero(mask & ~self._ended).flatten().tolist()
            raise RuntimeError(
                f"partial reset of task copies {running}, which have not ended: NeuronTorchRLEnv can restart "
                "only copies that just ended (the core restarts them itself) or all copies at once. Bound "
                "episodes with the task's time limit instead of TorchRL's StepCounter(max_steps), or reset "
                "every copy"
            )
        flags = [torch.zeros(self.core.num_envs, 1, dtype=torch.bool, device=self.device) for _ in _DONE_KEYS]
        return self._output(voltages, *flags, reward=None)

    def _step(self, tensordict: TensorDictBase) -> TensorDictBase:
        """One tick of every copy: check and concatenate the groups' actions, step the core, split the result.

        Raises:
            InvalidActionError: Naming the group, its agents and the expected shape for a missing,
                non-tensor, complex or misshaped group action (``neuron_env.actions.group_actions``);
                naming the agent and copy for a non-finite or out-of-range action (the core's check).
        """
        num_envs = self.core.num_envs
        actions = torch.cat(
            [group_actions(name, agents, _tensor_or_data(tensordict.get((name, "action"), None)), num_envs)
             for name, agents in self.group_map.items()],
            dim=1,
        )
        result = self.core.step(actions)
        voltages = result.info["final_voltages"] if result.task_stepped else result.voltages
        terminated = result.terminated.unsqueeze(-1)
        truncated = result.truncated.unsqueeze(-1)
        done = terminated | truncated
        self._ended = done.squeeze(-1)
        return self._output(voltages, done, terminated, truncated, reward=result.reward.unsqueeze(-1))

    def _set_seed(self, seed: int | None) -> None:
        """Seed the next full reset (copy ``i`` gets ``seed + i``)."""
        self._seed = seed

    def close(self, *, raise_if_closed: bool = True) -> None:
        """Close every task copy (once)."""
        # Not ``is_closed``: TorchRL's EnvBase sets it True at construction, so checking it never closed the core.
        if not self._core_closed:
            self._core_closed = True
            self.core.close()
        super().close(raise_if_closed=raise_if_closed)

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _reset_mask(tensordict: TensorDictBase | None) -> torch.Tensor | None:
        """``[E]`` copies to reset from any ``"_reset"`` entry (root or group), or ``None``."""
        if tensordict is None:
            return None
        mask = None
        for key in tensordict.keys(include_nested=True, leaves_only=True):
            if (key if isinstance(key, str) else key[-1]) == "_reset":
                value = tensordict.get(key)
                value = value.reshape(value.shape[0], -1).any(-1)
                mask = value if mask is None else mask | value
        return mask

    def _output(
        self,
        voltages: torch.Tensor,
        done: torch.Tensor,
        terminated: torch.Tensor,
        truncated: torch.Tensor,
        reward: torch.Tensor | None,
    ) -> TensorDictBase:
        """The TensorDict of one tick: per group expanded views, root flags (and state)."""
        num_envs = self.core.num_envs
        out: dict[str, Any] = {"done": done, "terminated": terminated, "truncated": truncated}
        for name, n in self._sizes.items():
            index = self._observed[name]
            shape = (num_envs, n)
            observed = voltages.index_select(1, index).unsqueeze(1).expand(num_envs, n, len(index))
            if self.agent_id:
                observed = torch.cat([observed, self._agent_one_hots[name].expand(num_envs, n, n)], dim=-1)
            group: dict[str, torch.Tensor] = {
                "observation": observed,
                "done": done.unsqueeze(1).expand(*shape, 1),
                "terminated": terminated.unsqueeze(1).expand(*shape, 1),
                "truncated": truncated.unsqueeze(1).expand(*shape, 1),
            }
            if reward is not None:
                group["reward"] = reward.unsqueeze(1).expand(*shape, 1)
            out[name] = TensorDict(group, batch_size=shape, device=self.device)
        if self.return_state:
            out["state"] = voltages.clone()
        return TensorDict(out, batch_size=(num_envs,), device=self.device)

    def __repr__(self) -> str:
        groups = ", ".join(f"{name}: {n}" for name, n in self._sizes.items())
        return (f"NeuronTorchRLEnv(task={self.core.task_name!r}, num_envs={self.core.num_envs}, groups={{{groups}}}, "
                f"delay={self.core.delay}, device={self.device})")


def _box(shape: tuple[int, ...], low: np.ndarray, high: np.ndarray, device: torch.device) -> Bounded | Unbounded:
    """A ``Bounded`` spec of ``shape`` when every bound is finite, else ``Unbounded``."""
    low, high = np.asarray(low, dtype=np.float32), np.asarray(high, dtype=np.float32)
    if not (np.isfinite(low).all() and np.isfinite(high).all()):
        return Unbounded(shape=shape, dtype=torch.float32, device=device)
    return Bounded(
        low=torch.as_tensor(low, device=device).expand(shape).clone(),
        high=torch.as_tensor(high, device=device).expand(shape).clone(),
        shape=shape, dtype=torch.float32, device=device,
    )


def _tensor_or_data(value: Any) -> Any:
    """A tensor as it is; the data a TensorDict wraps a non-tensor in (``NonTensorData``), for the error message."""
    if value is None or isinstance(value, torch.Tensor) or not is_non_tensor(value):
        return value
    try:
        return value.data  # ``NonTensorData``: one value for the whole batch
    except AttributeError:  # a ``NonTensorStack`` of several values
        return value.tolist()


def _flag(shape: tuple[int, ...], device: torch.device) -> Categorical:
    return Categorical(n=2, shape=shape, dtype=torch.bool, device=device)
