"""The PettingZoo ``ParallelEnv`` view: one agent per non-input neuron.

A thin adapter over ``NeuronVecEnv`` with one task copy. Dicts keyed by
agent id are built here and nowhere else, from a handful of arrays: every agent of a group
observes the same neurons, so a tick builds one observation array per group (read-only,
shared by the group's agents, fresh every tick) and the dicts point into them. See
``neuron_v0`` for the user page (spaces, rewards, arguments, versions).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from functools import partial
from itertools import repeat
from operator import attrgetter, itemgetter
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from pettingzoo import ParallelEnv

from neuron_env.actions import REAL_KINDS, action_array, action_value, invalid_action_message
from neuron_env.errors import InvalidActionError, RenderError, ResetNeeded
from neuron_env.rendering import compose, network_panel
from neuron_env.spaces import DecoderSpec, EncoderSpec, TaskSpec, task_interface
from neuron_env.topology import ACTIVATION_RANGE, DEFAULT_DENSITY, Topology, check_network_kind
from neuron_env.vector import NeuronVecEnv

DEFAULT_HIDDEN: tuple[int, ...] = (64, 64)

_NDIM = attrgetter("ndim")


def _one_item(key: str, mapping: dict[str, Any]) -> tuple[Any]:
    """``(mapping[key],)``: the tuple ``itemgetter`` of several keys would give, for one key."""
    return (mapping[key],)


def task_topology(
    task: TaskSpec,
    kind: str = "mlp",
    hidden: Sequence[int] = DEFAULT_HIDDEN,
    activation: str = "tanh",
    leak: float = 0.0,
    density: float = DEFAULT_DENSITY,
    seed: int = 0,
    task_kwargs: dict[str, Any] | None = None,
    encoder: EncoderSpec = None,
    decoder: DecoderSpec = None,
) -> Topology:
    """A topology of the given kind sized to the task through its encoder and decoder.

    The input group has the encoder's output size, the output group the decoder's input size
    (``Topology.for_task``, which the ``"mlp"`` kind is): one-hot inputs for a ``Discrete``
    observation, one output neuron per action of a ``Discrete`` task, and so on
    (``neuron_env.spaces``).

    Args:
        task: Gymnasium id or callable returning an env.
        kind: ``"mlp"`` (``hidden`` layers), ``"recurrent"`` or ``"sparse"`` (``hidden[0]`` neurons).
        hidden: Hidden sizes.
        activation: Hidden activation (the output is tanh).
        leak: Leak of the recurrent layer (``"recurrent"`` only; another kind refuses a non-zero leak).
        density: Connection density of the sparse network.
        seed: Seed of the sparse network's masks.
        task_kwargs: Keyword arguments of the task.
        encoder: The env's ``encoder`` argument (``None``: the space's default).
        decoder: The env's ``decoder`` argument (``None``: the space's default).

    Raises:
        TaskError: If a task space cannot be encoded/decoded (naming ``encoder=``/``decoder=``).
        TopologyError: On an unknown ``kind``, a ``leak`` with a kind other than ``"recurrent"`` or a
            ``density`` with a kind other than ``"sparse"`` (``check_network_kind``).
    """
    check_network_kind(kind, leak, density)
    if kind == "mlp":
        return Topology.for_task(task, list(hidden), activation, encoder, decoder, task_kwargs)
    observation_encoder, action_decoder = task_interface(task, ACTIVATION_RANGE["tanh"], encoder, decoder,
                                                         task_kwargs)
    obs_dim, act_dim = observation_encoder.size, action_decoder.size
    if kind == "recurrent":
        return Topology.recurrent(obs_dim, hidden[0], act_dim, leak=leak, activation=activation)
    return Topology.sparse(obs_dim, hidden[0], act_dim, density=density, seed=seed, activation=activation)


def _frozen_box(space: gym.spaces.Box) -> gym.spaces.Box:
    """``space`` with read-only bounds, so that shallow copies of it can share them safely."""
    for array in (space.low, space.high, space.bounded_below, space.bounded_above):
        array.setflags(write=False)
    return space


def per_tick_discount(task_gamma: float, delay: int) -> float:
    """The discount per tick that matches a discount per task step: ``task_gamma ** (1 / delay)``.

    The task's reward arrives once every ``delay`` ticks, so a library that discounts every env
    step (every tick) by ``γ_tick`` discounts consecutive task rewards by ``γ_tick ** delay``.
    Giving it ``γ_tick = γ_task ** (1 / delay)`` keeps the task's horizon: with ``γ = 0.99``
    per tick at delay 3 the task would be discounted by 0.97 per step, a horizon of 34 task
    steps instead of 100.

    Args:
        task_gamma: The discount per task step, in ``[0, 1]``.
        delay: Ticks per task step (``env.delay``), an integer >= 1.

    Returns:
        The discount per tick, in ``[0, 1]``.

    Raises:
        ValueError: If ``task_gamma`` is outside ``[0, 1]`` or ``delay`` is not an integer >= 1.
    """
    if isinstance(task_gamma, bool) or not isinstance(task_gamma, (int, float)) or not 0.0 <= task_gamma <= 1.0:
        raise ValueError(f"task_gamma={task_gamma!r} must be a discount per task step in [0, 1], e.g. 0.99")
    if isinstance(delay, bool) or not isinstance(delay, (int, np.integer)) or delay < 1:
        raise ValueError(f"delay={delay!r} must be an integer >= 1 (ticks per task step: env.delay)")
    return float(task_gamma) ** (1.0 / int(delay))


def task_time_limit(env: gym.Env) -> int | None:
    """A task env's episode bound in task steps: its ``TimeLimit`` wrapper's, else its spec's ``max_episode_steps``.

    Returns:
        The largest number of steps an episode of ``env`` lasts, or ``None`` when only the
        task's own termination ends it.
    """
    layer: Any = env
    while isinstance(layer, gym.Wrapper):  # a callable task may wrap TimeLimit itself (its spec is then None)
        if isinstance(layer, gym.wrappers.TimeLimit):
            return int(layer._max_episode_steps)  # TimeLimit has no public accessor
        layer = layer.env
    steps = getattr(env.spec, "max_episode_steps", None)
    return None if steps is None else int(steps)


def task_episode_steps(core: NeuronVecEnv) -> int | None:
    """The episode bound, in task steps, of the task copies a core drives (``task_time_limit`` of its first copy)."""
    copies = getattr(core.task, "envs", None)  # sync vector envs hold their copies
    if copies:
        return task_time_limit(copies[0])
    steps = getattr(core.task.get_attr("spec")[0], "max_episode_steps", None)  # AsyncVectorEnv: ask the worker
    return None if steps is None else int(steps)


def default_topology(task: TaskSpec, task_kwargs: dict[str, Any] | None = None,
                     hidden: tuple[int, ...] = DEFAULT_HIDDEN, encoder: EncoderSpec = None,
                     decoder: DecoderSpec = None) -> Topology:
    """A tanh MLP with ``hidden`` layers sized to the task through its encoder and decoder (``Topology.for_task``)."""
    return Topology.for_task(task, list(hidden), encoder=encoder, decoder=decoder, task_kwargs=task_kwargs)


class TaskClock:
    """What a client needs of the clock, on every env view holding a ``NeuronVecEnv`` as ``core``.

    ``delay``, ``task_episode_steps``, ``ticks_per_task_episode`` and ``per_tick_discount``;
    the class using it sets ``self.core`` and ``self._task_episode_steps`` (``task_episode_steps(core)``).
    """

    core: NeuronVecEnv
    _task_episode_steps: int | None

    @property
    def delay(self) -> int:
        """Ticks per task step: the task steps (and rewards) on every ``delay``-th tick."""
        return self.core.delay

    @property
    def task_episode_steps(self) -> int | None:
        """The task's episode bound in task steps (its ``max_episode_steps``), or ``None`` if unbounded."""
        return self._task_episode_steps

    @property
    def ticks_per_task_episode(self) -> int | None:
        """Ticks of a full task episode, ``delay × task_episode_steps`` (``None`` if unbounded).

        A client's episode bound in env steps (``max_cycles``, a rollout's ``max_steps``) needs
        at least this many ticks to let the task finish its episode.
        """
        steps = self._task_episode_steps
        return None if steps is None else self.core.delay * steps

    def per_tick_discount(self, task_gamma: float) -> float:
        """The discount per tick matching ``task_gamma`` per task step (``task_gamma ** (1 / delay)``).

        Raises:
            ValueError: If ``task_gamma`` is outside ``[0, 1]``.
        """
        return per_tick_discount(task_gamma, self.core.delay)


class NeuronParallelEnv(TaskClock, ParallelEnv):
    """A Gymnasium task as a PettingZoo parallel env whose agents are the network's neurons.

    Args:
        task: Gymnasium id or callable returning an env. Default ``"Pendulum-v1"``.
        topology: The network; ``None`` builds ``Topology.for_task(task, hidden, encoder=encoder,
            decoder=decoder)``, sized to the task through its encoder and decoder.
        delay: Ticks per task step; default depth (acyclic) or 1 (cyclic).
        observe: ``"presynaptic"`` (each agent sees its group's presynaptic neurons) or
            ``"all"`` (every agent sees the full voltage vector).
        max_cycles: Truncate every agent after this many ticks (``None``: only the task ends
            episodes). PettingZoo's ``make`` passes it.
        render_mode: ``None``, ``"rgb_array"`` or ``"human"``: the task's frame beside the
            network's activity (``rendering``).
        hidden: Hidden sizes of the default topology.
        encoder: The encoder of the task's observations: ``None`` (the space's default),
            ``"identity"``, ``"affine"``, ``"projection"``, a ``torch.nn.Module`` (frozen) or an
            ``ObservationEncoder``; see ``neuron_env.spaces``.
        out_of_range: ``"error"`` or ``"clip"`` for actions outside an agent's range.
        device: Torch device of the core.
        task_kwargs: Keyword arguments for the task.
        decoder: The decoder into task actions: ``None`` (the space's default: ``"affine"`` for
            a Box, ``"argmax"`` for Discrete/MultiDiscrete, ``"threshold"`` for MultiBinary),
            ``"sample"`` or an ``ActionDecoder``; see ``neuron_env.spaces``. Every agent's info
            on a task tick carries the decoded action as ``"task_action"``.
        clock: ``"sync"`` (every neuron every tick) or ``"async"``: each agent fires on a tick
            with probability ``firing_rate`` (seeded by ``reset(seed=...)``); one that does not
            fire keeps its voltage (leaky: decays to ``λ v``) and its action is ignored. Every
            agent's info then holds ``"fired"`` (bool) on every tick. See ``NeuronVecEnv``.
        firing_rate: The firing probability ``p`` in ``(0, 1]`` of ``clock="async"``
            (``p = 1`` is ``clock="sync"`` exactly).

    Attributes:
        core: The underlying ``NeuronVecEnv`` (one task copy).
        topology: The network.
        max_cycles: The tick bound of an episode (``None``: only the task ends episodes).
        delay: Ticks per task step (a property; ``core.delay``).
        task_episode_steps: The task's episode bound in task steps (a property; ``None``: unbounded).
        ticks_per_task_episode: ``delay × task_episode_steps``, the ticks of a full task episode
            (a property; ``None``: unbounded).
    """

    metadata: dict[str, Any] = {
        "name": "neuron_v0",
        "render_modes": ["human", "rgb_array"],
        "is_parallelizable": True,
        "render_fps": 30,
    }

    def __init__(
        self,
        task: TaskSpec = "Pendulum-v1",
        topology: Topology | None = None,
        delay: int | None = None,
        observe: str = "presynaptic",
        max_cycles: int | None = None,
        render_mode: str | None = None,
        hidden: tuple[int, ...] = DEFAULT_HIDDEN,
        encoder: EncoderSpec = None,
        out_of_range: str = "error",
        device: str | torch.device = "cpu",
        task_kwargs: dict[str, Any] | None = None,
        decoder: DecoderSpec = None,
        clock: str = "sync",
        firing_rate: float = 1.0,
    ) -> None:
        if observe not in ("presynaptic", "all"):
            raise ValueError(f"observe={observe!r}; use 'presynaptic' or 'all'")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode={render_mode!r}; use one of {self.metadata['render_modes']} or None")
        if max_cycles is not None and (not isinstance(max_cycles, int) or max_cycles < 1):
            raise ValueError(f"max_cycles={max_cycles!r} must be a positive integer or None")
        if topology is None:
            topology = default_topology(task, task_kwargs, tuple(hidden), encoder, decoder)
        # The core checks every action (``NeuronVecEnv.check_actions``, naming the agent): one rule for
        # both views. Its one task copy keeps its raw step info (``task_step_infos``): batching a
        # MuJoCo task's info and un-batching it again would cost more than the core's tick.
        self.core = NeuronVecEnv(
            task, topology, num_envs=1, device=device, delay=delay, encoder=encoder, decoder=decoder,
            out_of_range=out_of_range, task_kwargs=task_kwargs, batch_task_infos=False, clock=clock,
            firing_rate=firing_rate,
            # The task renders into an array; this env composes it with the network panel.
            render_mode=None if render_mode is None else "rgb_array",
        )
        self.topology = topology
        self.observe = observe
        self.max_cycles = max_cycles
        self.render_mode = render_mode
        self._async = clock == "async"
        self.possible_agents: list[str] = list(topology.agent_ids)
        self.agents: list[str] = []
        self._agent_set = frozenset(self.possible_agents)
        # the actions in agent order, always as a tuple (``itemgetter`` of one key returns the bare value)
        self._getter: Callable[[dict[str, Any]], tuple[Any, ...]] = itemgetter(*self.possible_agents)
        if len(self.possible_agents) == 1:
            self._getter = partial(_one_item, self.possible_agents[0])
        # Prepared per-tick dicts (``dict.fromkeys`` from a dict, and ``dict.copy``, are the fast paths).
        self._agent_keys: dict[str, None] = dict.fromkeys(self.possible_agents)
        self._zero_rewards: dict[str, float] = dict.fromkeys(self.possible_agents, 0.0)
        self._all_false: dict[str, bool] = dict.fromkeys(self.possible_agents, False)
        self._empty_infos: dict[str, dict[str, Any]] = self._fresh_empty_infos()

        low, high = self.core.voltage_low, self.core.voltage_high
        self.state_space = gym.spaces.Box(low, high, dtype=np.float32)
        # One space object per agent, equal within a group but not shared: seeding one agent's
        # space (to sample its actions) must not reseed its neighbours'.
        self.observation_spaces: dict[str, gym.spaces.Box] = {}
        self.action_spaces: dict[str, gym.spaces.Box] = {}
        self._observed: list[tuple[np.ndarray | slice, dict[str, None]]] = []
        for group in topology.agent_groups:
            index = topology.presynaptic_index[group.name] if observe == "presynaptic" else np.arange(len(low))
            neuron = topology.agent_neuron_index[topology.agent_slice[group.name]][0]
            ids = topology.agent_ids[topology.agent_slice[group.name]]
            obs_space = _frozen_box(gym.spaces.Box(low[index], high[index], dtype=np.float32))
            act_space = _frozen_box(gym.spaces.Box(low[neuron], high[neuron], shape=(1,), dtype=np.float32))
            for agent in ids:  # a shallow copy is 10x cheaper than a new Box; each gets its own RNG when seeded
                self.observation_spaces[agent] = copy.copy(obs_space)
                self.action_spaces[agent] = copy.copy(act_space)
            contiguous = len(index) > 0 and np.array_equal(index, np.arange(index[0], index[0] + len(index)))
            self._observed.append((slice(int(index[0]), int(index[-1]) + 1) if contiguous else index,
                                   dict.fromkeys(ids)))
        self._task_episode_steps = task_episode_steps(self.core)
        self._cycles = 0
        self._state: np.ndarray | None = None
        self._last_reward = 0.0
        self._task_renders = render_mode is not None
        self._window: tuple[Any, Any] | None = None

    # ------------------------------------------------------------------ spaces
    def observation_space(self, agent: str) -> gym.spaces.Box:
        """The observation space of ``agent``: the same object on every call, its own (equal to its group's)."""
        try:
            return self.observation_spaces[agent]
        except KeyError:
            raise KeyError(self._unknown_agent(agent)) from None

    def action_space(self, agent: str) -> gym.spaces.Box:
        """The action space of ``agent``: ``Box(1,)`` within its activation's range; one cached object per agent.

        Agents of a group have equal spaces but not the same object, so ``action_space(a).seed(s)``
        seeds ``a``'s sampling alone.
        """
        try:
            return self.action_spaces[agent]
        except KeyError:
            raise KeyError(self._unknown_agent(agent)) from None

    def _unknown_agent(self, agent: str) -> str:
        return f"unknown agent {agent!r}; agents are '<group>_<i>', e.g. {self.possible_agents[:3]}"

    # ------------------------------------------------------------------ API
    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict, dict]:
        """Reset the task; hidden and output voltages start at 0.

        Returns:
            ``(observations, infos)`` keyed by every agent.
        """
        voltages, _ = self.core.reset(seed=seed, options=options)
        self.agents = self.possible_agents[:]
        self._cycles = 0
        self._last_reward = 0.0
        self._state = voltages[0].cpu().numpy()
        observations = self._observations(self._state)
        return observations, {agent: {} for agent in self.agents}

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        """One tick: every agent's action becomes its neuron's next voltage.

        Args:
            actions: ``{agent: action}`` for every live agent: one finite real number each,
                within the agent's range, as an array of shape ``(1,)`` (the action space's), a
                scalar, or another form of the action contract (``neuron_env.actions``).

        Returns:
            ``(observations, rewards, terminations, truncations, infos)``. Rewards are the task
            reward on a tick where the task steps and 0 otherwise, the same for every agent.
            Infos are empty between task steps (each agent's empty dict may be the same object
            as on the previous such tick, until somebody writes into it); on a tick where the task steps each agent's
            info is ``{"task_stepped": True, "task_action": ..., "task": task_info}``: one dict
            per agent (wrappers may add keys), the decoded action and the task's own info, the
            latter shared by all agents of the tick (treat it as read-only). With
            ``clock="async"`` every agent's info also holds ``"fired"`` on every tick: whether
            its action of this tick took effect (``False``: its neuron held its voltage).

        Raises:
            ResetNeeded: Before ``reset`` or after the episode ended.
            InvalidActionError: Naming the missing, unknown, refused (a string, complex, ``None``,
                another shape, …), non-finite or out-of-range agent action; the tick is refused
                as a whole and changes nothing.
        """
        if not self.agents:
            raise ResetNeeded(
                "step() called with no live agents: call reset() first"
                + (" (the episode has ended)" if self._cycles else "")
            )
        # the core checks the values (NaN, inf, range) with its one rule; on CPU it makes no tensor
        result = self.core.step_arrays(self._action_array(actions)[None])
        self._cycles += 1
        fired = result.info["fired"][0] if self._async else None
        if result.task_stepped:
            # At an episode end the core has already reset; agents see the final voltages.
            info = self._stepped_info(result.info["task_action"][0], self._task_info())
            return self._outputs(result.info["final_voltages"][0], float(result.reward[0]),
                                 bool(result.terminated[0]), bool(result.truncated[0]), info, fired)
        return self._outputs(result.voltages[0], 0.0, False, False, None, fired)

    @staticmethod
    def _stepped_info(task_action: np.ndarray, task_info: dict[str, Any]) -> dict[str, Any]:
        """The info every agent gets (as its own copy) on a tick where the task steps."""
        return {"task_stepped": True, "task_action": task_action, "task": task_info}

    def _outputs(self, voltages: np.ndarray, reward: float, terminated: bool, truncated: bool,
                 info: dict[str, Any] | None,
                 fired: np.ndarray | None = None) -> tuple[dict, dict, dict, dict, dict]:
        """The five dicts of a tick (``info is None``: a tick between task steps); ends the episode if due.

        This is all the per-agent work of a tick besides reading the actions
        (``benchmarks/env_throughput.py`` times it alone as the adapter's floor). ``fired``
        (``clock="async"`` only) is every agent's firing flag of the tick, in agent order.
        """
        truncated = truncated or (self.max_cycles is not None and self._cycles >= self.max_cycles)
        if info is not None:
            self._last_reward = reward
            rewards = dict.fromkeys(self._agent_keys, reward)
            terminations = dict.fromkeys(self._agent_keys, True) if terminated else self._all_false.copy()
        else:  # between task steps nothing but the voltages changes: copy prepared dicts
            rewards = self._zero_rewards.copy()
            terminations = self._all_false.copy()
        truncations = dict.fromkeys(self._agent_keys, True) if truncated else self._all_false.copy()
        self._state = voltages
        observations = self._observations(voltages)
        # One dict per agent: wrappers (SuperSuit) write per-agent keys into infos.
        if fired is not None:  # the asynchronous clock tells every agent, every tick, whether it fired
            shared = info or {}
            infos = {agent: {**shared, "fired": flag}
                     for agent, flag in zip(self.possible_agents, fired.tolist(), strict=False)}
        elif info is None:
            infos = self._empty_info_dicts()
        else:  # the task's info is one dict shared by every agent of the tick (like the observations)
            copies = map(dict.copy, repeat(info, len(self.possible_agents)))
            # equal lengths by construction; strict=True would cost ~20% of this line
            infos = dict(zip(self.possible_agents, copies, strict=False))
        if terminated or truncated:
            self.agents = []
        return observations, rewards, terminations, truncations, infos

    def state(self) -> np.ndarray:
        """All ``N`` voltages (the global state of the network; the final one after an episode end)."""
        if self._state is None:
            raise ResetNeeded("call reset() before state()")
        return self._state.copy()

    def render(self) -> np.ndarray | None:
        """The task's frame beside a picture of the network's activity.

        With ``render_mode="rgb_array"`` returns an ``uint8`` array ``(H, W_task + W_panel, 3)``
        (see ``rendering``; the panel alone where the task cannot render). With
        ``"human"`` shows the same picture in a matplotlib window and returns ``None``.
        """
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode='rgb_array' or 'human'")
            return None
        if self._state is None:
            raise ResetNeeded("call reset() before render()")
        task_frame = None
        if self._task_renders:
            try:
                task_frame = self.core.render()
            except RenderError:  # MuJoCo without an OpenGL context: say how to fix it, not a network-only video
                raise
            except (gym.error.DependencyNotInstalled, ImportError, RuntimeError) as error:
                gym.logger.warn(f"task {self.core.task_name!r} cannot render ({error}); drawing the network only")
                self._task_renders = False
        height = task_frame.shape[0] if task_frame is not None else 320
        panel = network_panel(self._state, self.topology, self.core.voltage_low,
                              self.core.voltage_high, self.core.tick, self.core.delay, self._last_reward, height)
        frame = compose(task_frame, panel)
        if self.render_mode == "rgb_array":
            return frame
        self._show(frame)
        return None

    def _show(self, frame: np.ndarray) -> None:
        import matplotlib.pyplot as plt

        if self._window is None:
            plt.ion()
            figure, axes = plt.subplots(figsize=(frame.shape[1] / 100, frame.shape[0] / 100))
            axes.axis("off")
            self._window = (figure, axes.imshow(frame))
        else:
            self._window[1].set_data(frame)
        plt.pause(1 / self.metadata["render_fps"])

    def close(self) -> None:
        """Close the task (and the render window)."""
        if self._window is not None:
            import matplotlib.pyplot as plt

            plt.close(self._window[0])
            self._window = None
        self.core.close()

    # ------------------------------------------------------------------ helpers
    def _fresh_empty_infos(self) -> dict[str, dict[str, Any]]:
        return {agent: {} for agent in self.possible_agents}

    def _empty_info_dicts(self) -> dict[str, dict[str, Any]]:
        """The infos of a tick between task steps: an empty dict per agent.

        The per-agent dicts are handed out again on the next such tick while they stay empty
        (checking that is cheaper than building 700 dicts); once anyone writes into one (a
        wrapper adding a key), the whole set is replaced, so a written dict is never returned
        again and never shows up in a later tick's infos.
        """
        if any(self._empty_infos.values()):  # a dict is true when it has a key
            self._empty_infos = self._fresh_empty_infos()
        return self._empty_infos.copy()

    def _observations(self, values: np.ndarray) -> dict[str, np.ndarray]:
        observations: dict[str, np.ndarray] = {}
        for index, keys in self._observed:
            array = values[index].copy() if isinstance(index, slice) else values[index]
            array.setflags(write=False)  # shared by the group's agents: in-place edits would leak
            observations.update(dict.fromkeys(keys, array))
        return observations

    def _action_array(self, actions: dict[str, Any]) -> np.ndarray:
        """The actions as one float32 array in agent order, checked against the action contract.

        Keys, forms and shapes are checked here (``neuron_env.actions``: one real number per
        agent); the values (NaN, ±inf, range) by the core's ``check_actions`` inside
        ``step_arrays``, the same rule ``NeuronVecEnv.step`` applies. The common case, an array
        of shape ``(1,)`` per agent as the action spaces sample, takes three C-level passes:
        one reads every element (and fails on anything but a one-element array), one finds the
        dtype all arrays promote to (a complex, string or object array shows there) and one
        their largest ``ndim`` (a ``(1, 1)`` array shows there). Anything else goes through
        ``action_array``, which converts floats in bulk and names the agent whose action is refused.

        Raises:
            InvalidActionError: Naming the missing, unknown or refused agent action.
        """
        if not isinstance(actions, dict):
            raise InvalidActionError(f"actions must be a dict {{agent: action}}, got {type(actions).__name__}")
        try:
            values = self._getter(actions)
        except KeyError:
            self._raise_key_error(actions)
        if len(actions) != len(self.possible_agents):  # every agent is present: extra keys are unknown
            self._raise_key_error(actions)
        try:
            # One number per agent, read from arrays of one element (the space's shape (1,)); each
            # dtype must be real (their common type shows a complex, string or object array)
            array = np.fromiter(map(np.ndarray.item, values), np.float32, len(values))
            real = np.result_type(*values).kind in REAL_KINDS
        except (ValueError, TypeError):  # scalars, tensors, lists, a misshaped or refused action
            real = False
        if not real or max(map(_NDIM, values)) > 1:  # ... and its shape (1,) or (): not (1, 1)
            return action_array(self.possible_agents, values)  # converts in bulk, or names the agent at fault
        return array

    def check_action(self, agent: str, action: Any) -> np.ndarray:
        """One agent's action, checked as ``step`` checks it, as a new float32 array of shape ``(1,)``.

        The AEC view checks each action here when its agent gives it, so a bad action is refused
        at that agent's ``step`` and never buffered. The checks are ``step``'s: the action
        contract (``neuron_env.actions.action_value``: one finite real number), then, with
        ``out_of_range="error"``, the agent's range (with ``"clip"`` the tick clips it).

        Args:
            agent: A live agent's id.
            action: Its action, in any accepted form (``neuron_env.actions.ACCEPTED_FORMS``).

        Returns:
            The action as ``np.array([value], dtype=np.float32)``.

        Raises:
            KeyError: If ``agent`` is unknown.
            InvalidActionError: Naming the agent, for a refused form, a non-finite value or
                (``out_of_range="error"``) a value outside the agent's range.
        """
        space = self.action_space(agent)
        value = np.array([action_value(agent, action)], dtype=np.float32)
        if self.core.validate and self.core.out_of_range == "error" and not space.low[0] <= value[0] <= space.high[0]:
            raise InvalidActionError(invalid_action_message(agent, float(value[0]), self.topology))
        return value

    def _raise_key_error(self, actions: dict[str, Any]) -> None:
        unknown = [a for a in actions if a not in self._agent_set]
        if unknown:
            raise InvalidActionError(
                f"actions for unknown agents {unknown[:5]}; agents are '<group>_<i>', e.g. {self.possible_agents[:3]}"
            )
        missing = [a for a in self.agents if a not in actions]
        raise InvalidActionError(
            f"actions missing for {len(missing)} agents, e.g. {missing[:5]}; pass one action per agent "
            "in env.agents (every neuron acts every tick)"
        )

    def _task_info(self) -> dict[str, Any]:
        """The task's own info of the last step (not the autoreset's), as a fresh dict."""
        return dict(self.core.task_step_infos[0])

    def __repr__(self) -> str:
        return f"NeuronParallelEnv(task={self.core.task_name!r}, {self.topology!r}, delay={self.core.delay})"


def parallel_env(task: TaskSpec = "Pendulum-v1", topology: Topology | None = None, **kwargs: Any) -> NeuronParallelEnv:
    """Create the PettingZoo parallel env; see ``NeuronParallelEnv`` for the arguments."""
    return NeuronParallelEnv(task, topology, **kwargs)
