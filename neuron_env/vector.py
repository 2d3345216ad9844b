"""``NeuronVecEnv``: the batched core every other view of the environment stands on.

``E`` copies of a Gymnasium task run through ``gymnasium.vector`` (a single copy through a
lean equivalent that skips the vector env's per-step bookkeeping); the network's voltages
are one torch tensor ``[E, N]`` on the chosen device, and every agent's action is one column
of a ``[E, num_agents]`` tensor. Nothing in ``NeuronVecEnv.step`` loops over neurons. On
CPU a tick's arithmetic runs in numpy, on memory the returned tensors share (at a few task
copies torch's per-call dispatch costs more than the arithmetic); on other devices in torch.

The clock
---------
After ``reset`` the input neurons hold the encoded first observation ``ε(s_0)`` and every
other neuron holds 0. Each ``NeuronVecEnv.step`` is one *tick*: every agent's action
becomes its neuron's next voltage (``λ v + (1 − λ) a`` in a leaky group). On every
``delay``-th tick the output voltages are decoded into the task action, the task steps, its
reward is returned for that tick (0 on the other ticks) and the input neurons are clamped
to the new observation. With the default ``delay`` (the topology's depth for acyclic
networks, 1 for cyclic ones) a network whose neurons act by ``σ(K^n v + b^n)`` produces
exactly the plain forward pass ``μ(s_t)`` as the task action.

With ``clock="async"`` there is no global clock for the neurons: on every tick each agent fires
with probability ``firing_rate`` (independently per agent and per task copy, from a seeded
counter-based stream, ``dynamics.firing_mask``); an agent that does not fire keeps its voltage
(in a leaky group it decays to ``λ v``) and its action is ignored; ``info["fired"]`` says who
fired. The task still steps every ``delay`` ticks. ``firing_rate=1`` is the synchronous clock,
bit for bit.

Autoreset
---------
When a task copy terminates or truncates, it is reset in the same tick (Gymnasium's
``SAME_STEP`` autoreset): the returned voltages of that copy are the new episode's start
(0 everywhere, inputs clamped to the reset observation), ``terminated``/``truncated`` flag
it, and ``info["final_voltages"]`` holds the voltages with the *final* observation clamped,
for bootstrapping. Seeding goes through ``reset(seed=...)``: copy ``i`` gets ``seed + i``.

One module: the CPU (numpy) and device (torch) ticks of the core are the same step written
twice for speed, and are tested equal; they share the action check and the reset logic.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar

import gymnasium as gym
import numpy as np
import torch

from neuron_env.actions import invalid_action_message
from neuron_env.dynamics import (
    apply_actions,
    apply_actions_numpy,
    clock_keys,
    firing_mask,
    hold_silent,
    hold_silent_numpy,
    voltage_bounds,
)
from neuron_env.errors import InvalidActionError, ResetNeeded, TopologyError
from neuron_env.rendering import render_task
from neuron_env.spaces import (
    ActionDecoder,
    DecoderSpec,
    EncoderSpec,
    FlattenEncoder,
    ObservationEncoder,
    TaskSpec,
    make_action_decoder,
    make_observation_encoder,
    make_task_factory,
    stack_observations,
)
from neuron_env.topology import ACTIVATION_RANGE, Topology

try:  # gymnasium >= 1.1
    from gymnasium.vector import AutoresetMode

    _SAME_STEP: Any = AutoresetMode.SAME_STEP
except ImportError:  # pragma: no cover - gymnasium 1.0
    _SAME_STEP = None

__all__ = [
    "ActionBatch",
    "ArrayStep",
    "NeuronVecEnv",
    "TaskSpec",
    "VecStep",
    "check_clock",
    "check_task_spaces",
    "invalid_action_message",
    "make_task_factory",
    "outside",
]

#: A batch of actions ``[E, num_agents]``: a torch tensor (``step``) or a numpy array (``step_arrays``).
ActionBatch = TypeVar("ActionBatch", torch.Tensor, np.ndarray)


class VecStep(NamedTuple):
    """What ``NeuronVecEnv.step`` returns; every tensor lives on the env's device.

    Attributes:
        voltages: ``[E, N]`` voltages after the tick (a reset copy's start where one ended).
        reward: ``[E]`` task reward on a task tick, 0 otherwise.
        terminated: ``[E]`` whether the task terminated on this tick.
        truncated: ``[E]`` whether the task was truncated on this tick.
        task_stepped: Whether the task stepped on this tick (the same for every copy).
        info: With ``clock="async"``, on every tick, ``fired`` (``[E, num_agents]`` bool: whose
            action took effect). On task ticks, ``final_voltages`` (``[E, N]``, the final
            observation clamped where a copy ended), ``task_action`` (numpy ``[E, *action shape]`` of the action
            space's dtype: the decoded actions the task received, e.g. ``[E]`` integers for a
            ``Discrete`` task) and the task's vector ``info``.
    """

    voltages: torch.Tensor
    reward: torch.Tensor
    terminated: torch.Tensor
    truncated: torch.Tensor
    task_stepped: bool
    info: dict[str, Any]


class ArrayStep(NamedTuple):
    """``VecStep`` in numpy, ``final_voltages`` too: what ``NeuronVecEnv.step_arrays`` returns."""

    voltages: np.ndarray
    reward: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    task_stepped: bool
    info: dict[str, Any]


def check_task_spaces(encoder: ObservationEncoder, decoder: ActionDecoder, topology: Topology, name: str) -> None:
    """Raise a clear error unless the encoder's output fits the input group and the decoder's input the output group.

    Raises:
        TopologyError: Naming the group, both sizes and the fix (``Topology.for_task`` sizes both).
    """
    if encoder.size != topology.obs_dim:
        raise TopologyError(
            f"input group {topology.input_group.name!r} has {topology.obs_dim} neurons but task {name} "
            f"observations have {encoder.size} dimensions once encoded ({encoder.description}); build the "
            f"topology with obs_dim={encoder.size}, or with Topology.for_task({name}, hidden=[...])"
        )
    if decoder.size != topology.act_dim:
        raise TopologyError(
            f"output group {topology.output_group.name!r} has {topology.act_dim} neurons but task {name} "
            f"actions have {decoder.size} dimensions to decode ({decoder.description}); build the topology "
            f"with act_dim={decoder.size}, or with Topology.for_task({name}, hidden=[...])"
        )


class _SameStepSyncVectorEnv(gym.vector.VectorEnv):
    """Minimal same-step-autoreset sync vector env: one copy, or gymnasium 1.0 (no ``AutoresetMode``).

    Behaves as ``gymnasium.vector.SyncVectorEnv(autoreset_mode=SAME_STEP)`` for what the core
    reads (tested against it): stacked arrays, ``info["final_obs"]`` where a copy ended.
    """

    def __init__(self, factories: list[Callable[[], gym.Env]]) -> None:
        self.envs = [f() for f in factories]
        self.num_envs = len(self.envs)
        self.single_observation_space = self.envs[0].observation_space
        self.single_action_space = self.envs[0].action_space
        # A Box batches by stacking; Discrete, Tuple, Dict ... as gymnasium.vector batches them.
        self._box_observations = isinstance(self.single_observation_space, gym.spaces.Box)
        #: Batch the copies' infos as gymnasium's vector envs do. With ``False`` the step info
        #: holds only ``final_obs`` (a list, ``None`` for copies that did not end) and the
        #: copies' own infos are read from ``step_infos``: the PettingZoo view does that, since
        #: batching a MuJoCo task's info and un-batching it again costs more than its core.
        self.batch_infos = True
        #: Every copy's own info of the last ``step`` (the step's, not the autoreset's).
        self.step_infos: list[dict[str, Any]] = []

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        observations, infos = [], {}
        for i, env in enumerate(self.envs):
            obs, info = env.reset(seed=None if seed is None else seed + i, options=options)
            observations.append(obs)
            infos = self._add_info(infos, info, i) if info else infos
        if not self._box_observations:
            return stack_observations(self.single_observation_space, observations), infos
        return np.stack(observations), infos

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        observations, rewards, terminations, truncations = [], [], [], []
        infos: dict[str, Any] = {}
        self.step_infos = []
        for i, (env, action) in enumerate(zip(self.envs, actions, strict=True)):
            obs, reward, terminated, truncated, info = env.step(action)
            self.step_infos.append(info)
            if terminated or truncated:  # as gymnasium's SAME_STEP: step info moves to final_info
                if self.batch_infos:
                    infos = self._add_info(infos, {"final_obs": obs, "final_info": info}, i)
                else:
                    infos.setdefault("final_obs", [None] * self.num_envs)[i] = obs
                obs, info = env.reset()
            if info and self.batch_infos:
                infos = self._add_info(infos, info, i)
            observations.append(obs)
            rewards.append(reward)
            terminations.append(terminated)
            truncations.append(truncated)
        # np.array stacks equal-shaped arrays as np.stack does, in C (np.stack is Python-level)
        batch = np.array(observations) if self._box_observations else \
            stack_observations(self.single_observation_space, observations)
        return (batch, np.asarray(rewards, dtype=np.float64),
                np.asarray(terminations), np.asarray(truncations), infos)

    def render(self) -> Any:
        return self.envs[0].render()

    def close(self) -> None:
        for env in self.envs:
            env.close()


class NeuronVecEnv:
    """A Gymnasium task driven by a network whose every non-input neuron is an agent.

    Args:
        task: A Gymnasium id (``"Pendulum-v1"``) or a callable returning a ``gym.Env``.
        topology: The network; its input/output group sizes must match the encoder's output and
            the decoder's input (``Topology.for_task`` sizes it so).
        num_envs: Number of task copies ``E`` stepped in lockstep.
        device: Torch device of the voltages, rewards and flags.
        delay: Ticks per task step ``ℓ``. Default: the topology's depth when acyclic (so the
            decoded action equals the network's forward pass), else 1.
        encoder: The encoder ε of the task's observations: ``None`` (the space's default:
            ``"identity"``, one-hot for discrete parts, ``"projection"`` for images),
            ``"identity"``, ``"affine"`` (finite bounds onto ``[-1, 1]``), ``"projection"``, a
            ``torch.nn.Module`` (a frozen encoder) or a ``neuron_env.spaces.ObservationEncoder``.
            See ``neuron_env.spaces`` for the table.
        decoder: The decoder δ of output voltages into task actions: ``None`` (the space's
            default: ``"affine"`` for a Box, ``"argmax"`` for Discrete/MultiDiscrete,
            ``"threshold"`` for MultiBinary), ``"sample"`` (Discrete/MultiDiscrete: a categorical
            draw over the softmax of the output voltages, seeded by ``reset(seed=...)``) or a
            ``neuron_env.spaces.ActionDecoder``.
        clock: ``"sync"`` (every agent's action takes effect every tick) or ``"async"``: on each
            tick every agent fires with probability ``firing_rate``, independently per agent and
            per copy; an agent that does not fire keeps its voltage (a leaky one decays to
            ``λ v``) and its action is ignored (it is still checked). ``info["fired"]`` tells who
            fired, on every tick. The task still steps every ``delay`` ticks.
        firing_rate: The probability ``p`` in ``(0, 1]`` of ``clock="async"`` (``p = 1`` is the
            synchronous clock exactly). The draws are seeded by ``reset(seed=...)``, copy ``i``
            by ``seed + i`` (``dynamics.firing_mask``).
        vectorization: ``"sync"`` (one process) or ``"async"`` (one process per copy).
        out_of_range: What to do with an action outside its agent's activation range:
            ``"error"`` (raise ``InvalidActionError``) or ``"clip"`` (clip silently).
            Non-finite actions always raise.
        validate: Check actions' shape, finiteness and range every tick. Turning it off saves
            a few small tensor reductions per tick for trusted callers (learners).
        task_kwargs: Keyword arguments for ``gym.make`` or the task callable.
        render_mode: Passed to the task (the first copy is rendered).
        batch_task_infos: Batch the task copies' infos into the step's ``info`` as
            ``gymnasium.vector`` does. ``False`` (one ``"sync"`` copy only) leaves them out and
            keeps each copy's own info in ``task_step_infos``: batching a MuJoCo task's info
            costs more than the core's whole tick (the PettingZoo view reads it raw).

    Raises:
        TaskError: If a task space cannot be encoded/decoded (the message names ``encoder=`` or
            ``decoder=``), or ``encoder``/``decoder`` is unknown or does not fit the space.
        TopologyError: If the topology's input/output sizes do not match the encoder/decoder.

    Attributes:
        encoder: The ``ObservationEncoder`` in use (on the env's device).
        decoder: The ``ActionDecoder`` in use (on the env's device).
    """

    def __init__(
        self,
        task: TaskSpec,
        topology: Topology,
        num_envs: int = 1,
        device: str | torch.device = "cpu",
        delay: int | None = None,
        encoder: EncoderSpec = None,
        vectorization: str = "sync",
        out_of_range: str = "error",
        validate: bool = True,
        task_kwargs: dict[str, Any] | None = None,
        render_mode: str | None = None,
        batch_task_infos: bool = True,
        decoder: DecoderSpec = None,
        clock: str = "sync",
        firing_rate: float = 1.0,
    ) -> None:
        if not isinstance(topology, Topology):
            raise TopologyError(f"topology must be a neuron_env.Topology, got {type(topology).__name__}")
        if not isinstance(num_envs, int) or num_envs < 1:
            raise ValueError(f"num_envs={num_envs!r} must be an integer >= 1")
        if delay is None:
            delay = topology.depth if topology.depth is not None else 1
        if not isinstance(delay, int) or delay < 1:
            raise ValueError(f"delay={delay!r} must be an integer >= 1 (ticks per task step)")
        if out_of_range not in ("error", "clip"):
            raise ValueError(f"out_of_range={out_of_range!r}; use 'error' or 'clip'")
        if vectorization not in ("sync", "async"):
            raise ValueError(f"vectorization={vectorization!r}; use 'sync' or 'async'")
        check_clock(clock, firing_rate)

        self.topology = topology
        self.num_envs = num_envs
        self.device = torch.device(device)
        self.delay = delay
        self.out_of_range = out_of_range
        self.validate = validate
        self.task_name = task if isinstance(task, str) else getattr(task, "__name__", repr(task))
        if render_mode is not None:
            task_kwargs = {**(task_kwargs or {}), "render_mode": render_mode}
        factory = make_task_factory(task, task_kwargs)
        self.task = self._make_vector(factory, num_envs, vectorization)
        self.task_observation_space: gym.Space = self.task.single_observation_space
        self.task_action_space: gym.Space = self.task.single_action_space
        try:
            name = repr(self.task_name)
            output_range = ACTIVATION_RANGE[topology.output_group.activation]
            observation_encoder = make_observation_encoder(self.task_observation_space, encoder, name)
            action_decoder = make_action_decoder(self.task_action_space, output_range, decoder, name)
            check_task_spaces(observation_encoder, action_decoder, topology, name)
            if not batch_task_infos and not isinstance(self.task, _SameStepSyncVectorEnv):
                raise ValueError(f"batch_task_infos=False needs num_envs=1 and vectorization='sync' (got num_envs="
                                 f"{num_envs}, vectorization={vectorization!r}); keep batch_task_infos=True")
        except Exception:
            self.task.close()
            raise
        if not batch_task_infos:
            self.task.batch_infos = False

        self.encoder: ObservationEncoder = observation_encoder.to(self.device)
        self.decoder: ActionDecoder = action_decoder.to(self.device)
        low, high = voltage_bounds(topology, *self.encoder.bounds())
        #: ``[N]`` lower/upper bound of every neuron's voltage (numpy, float32).
        self.voltage_low, self.voltage_high = low, high
        self.agent_neuron_index = torch.as_tensor(topology.agent_neuron_index, device=self.device)
        span = topology.agent_span
        self.agent_span: slice | torch.Tensor = span if isinstance(span, slice) else self.agent_neuron_index
        self.action_low = torch.as_tensor(low[topology.agent_neuron_index], device=self.device)
        self.action_high = torch.as_tensor(high[topology.agent_neuron_index], device=self.device)
        # Finite stand-ins for infinite bounds: one comparison then rejects NaN and inf too. Kept as
        # tensors (for ``step``) and as arrays (for ``step_arrays``): the same bounds, one rule.
        self._check_low = self.action_low.clamp(-_LARGEST, _LARGEST)
        self._check_high = self.action_high.clamp(-_LARGEST, _LARGEST)
        self._check_low_numpy = self._check_low.cpu().numpy()
        self._check_high_numpy = self._check_high.cpu().numpy()
        self._action_low_numpy = self.action_low.cpu().numpy()
        self._action_high_numpy = self.action_high.cpu().numpy()
        self._range_spans = _range_spans(self._check_low_numpy, self._check_high_numpy)
        leak = np.concatenate([np.full(g.size, g.leak, dtype=np.float32) for g in topology.agent_groups])
        self.leak: torch.Tensor | None = torch.as_tensor(leak, device=self.device) if leak.any() else None
        self._input = topology.group_slice[topology.input_group.name]
        self._output = topology.group_slice[topology.output_group.name]
        self._input_mask = torch.zeros(topology.num_neurons, device=self.device)
        self._input_mask[self._input] = 1.0
        self._input_mask_numpy = self._input_mask.cpu().numpy()
        self._task_action_dtype = self.task_action_space.dtype
        # A Box task's reset clamps its inputs through the torch encoder on every device, as it
        # always has; any other encoder's reset uses the tick's path (numpy on CPU), so that one
        # observation gives one voltage whether it came from a reset or a step.
        self._torch_reset = isinstance(self.encoder, FlattenEncoder) and \
            isinstance(self.task_observation_space, gym.spaces.Box)
        # On CPU a tick runs in numpy (``_step_numpy``): at a few task copies torch's per-call
        # dispatch would cost more than the arithmetic.
        self._numpy = self.device.type == "cpu"
        self._agent_span_numpy = span if isinstance(span, slice) else np.asarray(topology.agent_neuron_index)
        self._leak_numpy = None if self.leak is None else self.leak.cpu().numpy()
        # The voltages: on CPU the numpy array the last reset or tick wrote (read as a tensor
        # sharing its memory, so the PettingZoo view's ticks make no tensor at all), else a tensor.
        self._voltages: torch.Tensor | np.ndarray | None = None
        #: Ticks since the last ``reset``.
        self.tick = 0
        #: ``"sync"`` or ``"async"`` (see the class doc), and the firing probability of the latter.
        self.clock, self.firing_rate = clock, float(firing_rate)
        self._async = clock == "async"
        # A silent agent's voltage is multiplied by 1 (it holds) or, in a leaky group, by its leak.
        self._hold_numpy = np.where(leak > 0, leak, np.float32(1.0)).astype(np.float32)
        self._hold = torch.as_tensor(self._hold_numpy, device=self.device)
        self._clock_keys: np.ndarray | None = None
        self._clock_ticks = 0  # ticks since the clock's keys were set (the last seeded reset)
        # Whether ticks holding one action batch repeat the first one's voltages (``step_task`` computes one)
        self._hold_repeats = self.leak is None and not self._async

    @staticmethod
    def _make_vector(factory: Callable[[], gym.Env], num_envs: int, vectorization: str) -> Any:
        factories = [factory] * num_envs
        if _SAME_STEP is None and vectorization == "async":
            raise RuntimeError("vectorization='async' needs gymnasium >= 1.1 (same-step autoreset)")
        if _SAME_STEP is None or (vectorization == "sync" and num_envs == 1):
            # One copy (the PettingZoo view) skips SyncVectorEnv's per-step info bookkeeping.
            return _SameStepSyncVectorEnv(factories)
        # copy=False: observations are copied into a tensor at once.
        cls = gym.vector.SyncVectorEnv if vectorization == "sync" else gym.vector.AsyncVectorEnv
        return cls(factories, autoreset_mode=_SAME_STEP, copy=False)

    # ------------------------------------------------------------------ API
    @property
    def voltages(self) -> torch.Tensor:
        """Current ``[E, N]`` voltages (raises ``ResetNeeded`` before the first reset)."""
        voltages = self._voltages
        if voltages is None:
            raise ResetNeeded("call reset() before reading voltages or stepping")
        return torch.from_numpy(voltages) if self._numpy else voltages

    @property
    def task_step_infos(self) -> list[dict[str, Any]]:
        """Each task copy's own info of the last task step (the step's, not an autoreset's).

        Raises:
            RuntimeError: Unless the env was made with ``batch_task_infos=False`` (the infos are
                then in the step's ``info``, batched).
        """
        if not isinstance(self.task, _SameStepSyncVectorEnv) or self.task.batch_infos:
            raise RuntimeError("task_step_infos is kept only with batch_task_infos=False; read the step's info "
                               "instead, or construct NeuronVecEnv(..., batch_task_infos=False)")
        return self.task.step_infos

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[torch.Tensor, dict]:
        """Reset every task copy; hidden and output voltages start at 0.

        Args:
            seed: Seed of copy 0; copy ``i`` gets ``seed + i``; it also seeds the ``"sample"``
                decoder's draws and the asynchronous clock's. ``None`` keeps the RNGs going.
            options: Passed to the task's ``reset``.

        Returns:
            ``([E, N] voltages, the task's vector info)``.
        """
        observations, info = self.task.reset(seed=seed, options=options)
        self.decoder.seed(seed)
        if self._async and (seed is not None or self._clock_keys is None):
            # unseeded: a fresh stream, as the task's own generator gets
            base = seed if seed is not None else int(np.random.SeedSequence().entropy) % 2**63
            self._clock_keys, self._clock_ticks = clock_keys(base, self.num_envs), 0
        voltages = torch.zeros(self.num_envs, self.topology.num_neurons, device=self.device)
        if self._numpy and not self._torch_reset:
            self._clamp_inputs_numpy(voltages.numpy(), observations)  # the numpy array shares the tensor's memory
        else:
            voltages[:, self._input] = self._encode(observations)
        self._voltages = voltages.numpy() if self._numpy else voltages
        self.tick = 0
        return voltages, info

    def step(self, actions: torch.Tensor) -> VecStep:
        """Advance every copy by one tick.

        Args:
            actions: ``[E, num_agents]`` actions in agent order (``topology.agent_ids``): each
                agent's next voltage, within its activation's range.

        Returns:
            A ``VecStep``.

        Raises:
            ResetNeeded: Before the first ``reset``.
            InvalidActionError: On a wrong shape, a non-finite action, or (with
                ``out_of_range="error"``) an action outside its agent's range; names the agent.
        """
        return self._ticks(actions, 1)

    def step_task(self, actions: torch.Tensor) -> VecStep:
        """Hold ``actions`` for every tick left until the task steps, in one call.

        Equal to calling ``step(actions)`` until a step returns ``task_stepped=True`` (``delay``
        ticks from a task tick), returning that last ``VecStep``: the ticks before it are not
        returned. The trainer acts so with a settled learner (an acyclic, leak-free network whose
        agents take their settled voltages for the whole task step): one call and one action
        check per task step instead of ``delay``. Without a leak and on the synchronous clock every
        held tick sets the voltages the first one set, so only the last tick is computed (``tick``
        still counts them all).

        Args:
            actions: ``[E, num_agents]`` actions in agent order, as ``step`` takes them.

        Returns:
            The task tick's ``VecStep``.

        Raises:
            ResetNeeded: Before the first ``reset``.
            InvalidActionError: As ``step``.
        """
        return self._ticks(actions, self.delay - self.tick % self.delay)

    def _ticks(self, actions: torch.Tensor, ticks: int) -> VecStep:
        """``ticks`` ticks holding ``actions`` (checked once); the last one's ``VecStep``."""
        if self._voltages is None:  # ahead of any action check
            raise ResetNeeded("call reset() before reading voltages or stepping")
        actions = torch.as_tensor(actions, dtype=torch.float32, device=self.device)
        if self.validate or self.out_of_range == "clip":
            actions = self.check_actions(actions)
        if self._hold_repeats:
            # Without a leak or the async clock a tick sets every agent's voltage to its action and leaves the
            # inputs (clamped on task ticks only: the last one here), so the last tick alone gives every bit.
            self.tick += ticks - 1
            ticks = 1
        if not self._numpy:
            for _ in range(ticks - 1):
                self._step_tensors(self.voltages, actions)
            return self._step_tensors(self.voltages, actions)
        numpy_actions = actions.detach().numpy()
        for _ in range(ticks - 1):
            self._step_numpy(numpy_actions)
        tick = self._step_numpy(numpy_actions)
        info = tick.info
        voltages = torch.from_numpy(tick.voltages)
        if tick.task_stepped:
            final = info["final_voltages"]
            info["final_voltages"] = voltages if final is tick.voltages else torch.from_numpy(final)
        if "fired" in info:
            info["fired"] = torch.from_numpy(info["fired"])
        return VecStep(voltages, torch.from_numpy(tick.reward), torch.from_numpy(tick.terminated),
                       torch.from_numpy(tick.truncated), tick.task_stepped, info)

    def step_arrays(self, actions: np.ndarray) -> ArrayStep:
        """``step`` in numpy: one tick from numpy actions, with numpy results, on any device.

        The entry point for callers that hold their actions in numpy (the PettingZoo view does):
        the same checks as ``step`` (``check_actions``), then on CPU the numpy tick without any
        tensor, elsewhere the torch tick with its results copied to the host. The returned arrays
        may share memory with the env's own state: copy what you keep past the next tick.

        Args:
            actions: ``[E, num_agents]`` actions in agent order (``topology.agent_ids``), float32.

        Returns:
            An ``ArrayStep`` (``VecStep``'s fields as numpy arrays, ``info["final_voltages"]`` too).

        Raises:
            ResetNeeded: Before the first ``reset``.
            InvalidActionError: As ``step``, naming the agent (and copy, when ``E > 1``).
        """
        actions = np.asarray(actions, dtype=np.float32)
        if self.validate or self.out_of_range == "clip":
            actions = self.check_actions(actions)
        if self._numpy:
            return self._step_numpy(actions)
        step = self._step_tensors(self.voltages, torch.from_numpy(actions).to(self.device))
        info = step.info
        if step.task_stepped:
            info["final_voltages"] = info["final_voltages"].cpu().numpy()
        if "fired" in info:
            info["fired"] = info["fired"].cpu().numpy()
        voltages, reward, terminated, truncated = (t.cpu().numpy() for t in step[:4])
        return ArrayStep(voltages, reward, terminated, truncated, step.task_stepped, info)

    def _step_numpy(self, actions: np.ndarray) -> ArrayStep:
        """One tick on CPU, in numpy: what ``step`` does there, without checking ``actions``.

        At one or a few task copies every array of a tick is small, and torch's per-call
        dispatch would cost more than the arithmetic; ``step`` wraps this in tensors (sharing
        memory). Tested equal to ``_step_tensors``, the path of every other device.

        Args:
            actions: ``[E, num_agents]`` float32 actions, already checked.
        """
        if self._voltages is None:
            raise ResetNeeded("call reset() before stepping")
        values = apply_actions_numpy(self._voltages, actions, self._agent_span_numpy, self._leak_numpy)
        clock_info: dict[str, Any] = {}
        if self._async:
            fired = clock_info["fired"] = self._draw_firing()
            hold_silent_numpy(values, self._voltages, self._agent_span_numpy, fired, self._hold_numpy)
        self._voltages = values
        self.tick += 1
        if self.tick % self.delay:
            flags = np.zeros(self.num_envs, dtype=np.bool_)
            return ArrayStep(values, np.zeros(self.num_envs, dtype=np.float32), flags, flags.copy(), False, clock_info)

        task_action = self.decoder.apply_numpy(values[:, self._output]).astype(self._task_action_dtype, copy=False)
        observations, reward, terminated, truncated, info = self.task.step(task_action)
        self._clamp_inputs_numpy(values, observations)
        terminated, truncated = np.asarray(terminated, dtype=np.bool_), np.asarray(truncated, dtype=np.bool_)
        final = values
        # count_nonzero is one C call; ndarray.any() goes through numpy's Python-level reduction
        if np.count_nonzero(terminated) or np.count_nonzero(truncated):
            done = terminated | truncated
            final = values.copy()
            ended = np.flatnonzero(done)
            self._clamp_inputs_numpy(final, self._final_observations(info, ended), ended)
            # An ended copy restarts from 0 with only its inputs clamped to the reset observation.
            values[done] *= self._input_mask_numpy
        if clock_info:  # the vector env's info is a fresh dict every step: added to in place otherwise
            info = dict(info, **clock_info)
        info["final_voltages"] = final
        info["task_action"] = task_action
        # The vector env returns fresh arrays: sharing their memory is safe.
        return ArrayStep(values, np.asarray(reward, dtype=np.float32), terminated, truncated, True, info)

    def _clamp_inputs_numpy(self, values: np.ndarray, observations: Any, rows: np.ndarray | None = None) -> None:
        """Write a batch of encoded observations into the input neurons of ``values`` (of ``rows``, or every row)."""
        # ``values[rows, inputs] = ...`` writes into ``values`` itself (an index array and a slice)
        where = (slice(None) if rows is None else rows, self._input)
        if self.encoder.is_identity:  # a 1-D Box as it is: the assignment casts float64 -> float32
            values[where] = observations
        else:
            values[where] = self.encoder.apply_numpy(observations)

    def _draw_firing(self) -> np.ndarray:
        """The asynchronous clock's ``[E, num_agents]`` firing mask of this tick (then the next tick's turn)."""
        if self._clock_keys is None:
            raise ResetNeeded("call reset() before stepping")
        fired = firing_mask(self._clock_keys, self._clock_ticks, self.topology.num_agents, self.firing_rate)
        self._clock_ticks += 1
        return fired

    def _encode(self, observations: Any) -> torch.Tensor:
        """The encoded ``[E', obs_dim]`` observations on the env's device (the torch path)."""
        return self.encoder(self.encoder.as_tensors(observations, self.device))

    def _final_observations(self, info: dict[str, Any], ended: np.ndarray) -> Any:
        """The final observations of the ``ended`` copies, as one batch."""
        return stack_observations(self.task_observation_space, [info["final_obs"][i] for i in ended])

    def _step_tensors(self, voltages: torch.Tensor, actions: torch.Tensor) -> VecStep:
        """One tick in torch on the env's device (every device but CPU; see ``_step_numpy``)."""
        new = apply_actions(voltages, actions, self.agent_span, self.leak)
        clock_info: dict[str, Any] = {}
        if self._async:
            fired = clock_info["fired"] = torch.from_numpy(self._draw_firing()).to(self.device)
            hold_silent(new, voltages, self.agent_span, fired, self._hold)
        self.tick += 1
        if self.tick % self.delay:
            self._voltages = new
            zeros = torch.zeros(self.num_envs, device=self.device)
            flags = torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)
            return VecStep(new, zeros, flags, flags.clone(), False, clock_info)

        task_action = self.decoder(new[:, self._output]).cpu().numpy().astype(self._task_action_dtype, copy=False)
        observations, reward, terminated, truncated, info = self.task.step(task_action)
        new[:, self._input] = self._encode(observations)
        done = np.logical_or(terminated, truncated)
        final = new
        if done.any():
            final = new.clone()
            ended = np.flatnonzero(done)
            final[torch.as_tensor(ended, device=self.device), self._input] = \
                self._encode(self._final_observations(info, ended))
            # An ended copy restarts from 0 with only its inputs clamped to the reset observation.
            new[torch.as_tensor(done, device=self.device)] *= self._input_mask
        self._voltages = new
        info = dict(info, **clock_info)
        info["final_voltages"] = final
        info["task_action"] = task_action
        return VecStep(
            new,
            self._to_tensor(reward),
            torch.from_numpy(np.asarray(terminated, dtype=np.bool_)).to(self.device),
            torch.from_numpy(np.asarray(truncated, dtype=np.bool_)).to(self.device),
            True,
            info,
        )

    def check_actions(self, actions: ActionBatch) -> ActionBatch:
        """Validate ``[E, num_agents]`` actions, a tensor or a numpy array; clip them if ``out_of_range="clip"``.

        The one action check of neuron-env: ``step``, ``step_arrays`` and the PettingZoo view
        all go through it. With ``validate`` and ``out_of_range="error"`` every action must lie
        within its agent's range (NaN and ±inf fail); otherwise every action must be finite.

        Returns:
            ``actions`` (clipped into range with ``out_of_range="clip"``), of the type given.

        Raises:
            InvalidActionError: On a wrong shape, or naming the first offending agent (and copy,
                when ``E > 1``) and its value.
        """
        expected = (self.num_envs, self.topology.num_agents)
        if tuple(actions.shape) != expected:
            raise InvalidActionError(
                f"actions have shape {tuple(actions.shape)}; expected (num_envs, num_agents) = {expected}, "
                "columns in topology.agent_ids order"
            )
        tensor = isinstance(actions, torch.Tensor)
        if self.validate and self.out_of_range == "error":
            # tensors: a few reductions per span decide first (see _within_range); the rule is below
            if not (tensor and self._within_range(actions)):
                low, high = (self._check_low, self._check_high) if tensor else \
                    (self._check_low_numpy, self._check_high_numpy)
                self._raise_if_bad(actions, outside(actions, low, high))
        else:
            self._raise_if_bad(actions, outside(actions, -_LARGEST, _LARGEST))  # only non-finite values fail
        if self.out_of_range == "clip":
            if tensor:
                return torch.clamp(actions, self.action_low, self.action_high)
            return np.clip(actions, self._action_low_numpy, self._action_high_numpy)
        return actions

    def _within_range(self, actions: torch.Tensor) -> bool:
        """Whether every action lies within its agent's (finite stand-in) bounds; ``False`` on NaN.

        Agents in order share a range within each of a few spans (one per run of groups with the
        same activation), so the extremes of each span decide: one ``aminmax`` per span and one
        device read, several times cheaper than two elementwise comparisons over all actions.
        ``aminmax`` propagates NaN, and a NaN extreme fails every comparison.
        """
        if len(self._range_spans) > _MAX_RANGE_SPANS:
            return not bool(outside(actions, self._check_low, self._check_high).any())
        extremes = torch.stack([torch.stack(torch.aminmax(actions[:, span])) for span, _, _ in self._range_spans])
        return all(low <= smallest and largest <= high
                   for (smallest, largest), (_, low, high) in zip(extremes.tolist(), self._range_spans, strict=True))

    def _raise_if_bad(self, actions: ActionBatch, bad: ActionBatch) -> None:
        """Raise ``InvalidActionError`` naming the first action ``bad`` marks, if any."""
        if not bool(bad.any()):
            return
        bad_numpy = bad.cpu().numpy() if isinstance(bad, torch.Tensor) else bad
        env_index, agent_index = (int(i) for i in np.argwhere(bad_numpy)[0])
        agent = self.topology.agent_ids[agent_index]
        value = float(actions[env_index, agent_index])
        where = f" in env copy {env_index}" if self.num_envs > 1 else ""
        raise InvalidActionError(invalid_action_message(agent, value, self.topology, where))

    def close(self) -> None:
        """Close every task copy."""
        self.task.close()

    def render(self) -> Any:
        """Render the first task copy (needs ``render_mode`` at construction).

        Raises:
            RenderError: If the task is MuJoCo's and no OpenGL context can be made (set ``MUJOCO_GL=egl``).
        """
        frames = render_task(self.task, self.task_name)
        return frames[0] if isinstance(frames, (tuple, list)) else frames

    def _to_tensor(self, array: Any) -> torch.Tensor:
        return torch.from_numpy(np.asarray(array, dtype=np.float32)).to(self.device)

    def __repr__(self) -> str:
        return (f"NeuronVecEnv(task={self.task_name!r}, {self.topology!r}, num_envs={self.num_envs}, "
                f"delay={self.delay}, device={self.device})")


#: Above this many spans of equal action range, ``check_actions`` compares elementwise instead.
_MAX_RANGE_SPANS = 4
#: The largest float32: the finite stand-in for an infinite bound.
_LARGEST = float(np.finfo(np.float32).max)


def check_clock(clock: str, firing_rate: float) -> None:
    """Raise ``ValueError`` naming the value and the fix unless ``clock``/``firing_rate`` are valid together."""
    if clock not in ("sync", "async"):
        raise ValueError(f"clock={clock!r}; use 'sync' (every neuron every tick) or 'async' (each fires with "
                         "probability firing_rate)")
    if isinstance(firing_rate, bool) or not isinstance(firing_rate, int | float) or not 0.0 < firing_rate <= 1.0:
        raise ValueError(f"firing_rate={firing_rate!r} must be a probability in (0, 1]")
    if clock == "sync" and firing_rate != 1.0:
        raise ValueError(f"firing_rate={firing_rate!r} needs clock='async' (the synchronous clock fires every "
                         "neuron on every tick)")


def outside(actions: ActionBatch, low: ActionBatch | float, high: ActionBatch | float) -> ActionBatch:
    """Elementwise: whether each action lies outside ``[low, high]``; NaN always does, ±inf unless a bound is.

    Written once for numpy arrays and torch tensors alike (the same comparisons), so the core's
    tensor path and its numpy path apply one rule.
    """
    return ~((actions >= low) & (actions <= high))


def _range_spans(low: np.ndarray, high: np.ndarray) -> list[tuple[slice, float, float]]:
    """Maximal runs of consecutive agents with the same ``(low, high)`` action bounds."""
    changes = np.flatnonzero((low[1:] != low[:-1]) | (high[1:] != high[:-1])) + 1
    starts = [0, *changes.tolist()]
    stops = [*changes.tolist(), len(low)]
    return [(slice(a, b), float(low[a]), float(high[a])) for a, b in zip(starts, stops, strict=True)]
