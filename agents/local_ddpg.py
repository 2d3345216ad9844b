"""``LocalDDPG``: every neuron of a network learns at once, locally, without backpropagation.

Each non-input neuron ``n`` is a deterministic-policy-gradient agent of its own environment
``E^n`` (see ``neuron_env.neuron_v0``): its actor is its own row of the network,
``μ^n(v) = σ(K^n v + b^n)``, and it has its own critic ``Q^n`` (see
``neuron_env.agents.critics`` for the four kinds). One ``LocalDDPG.update`` trains
every neuron once, as a handful of matrix products per group (layer), under
``torch.no_grad()``: no error is ever propagated from one neuron to another, and no optimizer
state is shared across neurons.

Quick start::

    from neuron_env import NeuronVecEnv, Topology
    from neuron_env.agents import LocalDDPG

    topology = Topology.mlp(3, [64, 64], 1)
    learner = LocalDDPG(topology, critic="mlp", critic_context="task")
    env = NeuronVecEnv("Pendulum-v1", topology, validate=False)
    # ... or let the trainer drive it: neuron_env.agents.train(TrainConfig(...))

Parameters
----------
The actor of a group is one tensor ``[S, P + 1]``: the group's incoming weight blocks side by
side (in projection order, matching ``topology.presynaptic_index``) and its bias as the last
column. ``LocalDDPG.weights`` exposes them as ``NetworkWeights`` views, so
``neuron_env.network_actions`` and ``neuron_env.NetworkPolicy`` run the learned
network directly. Masked connections stay exactly zero. Critic parameters are stacked per
group with a leading neuron axis. Target copies of both follow by Polyak averaging with ``τ``.

Critic input (``critic_context``)
---------------------------------
``"presynaptic"``
    the neuron's observation in ``E^n``: its presynaptic voltages (the default).
``"task"``
    the presynaptic voltages followed by the input neurons' voltages (the encoded task
    observation) that are not presynaptic already.
``"observation"``
    the input neurons' voltages only.
``"all"``
    every voltage (``per_tick``); in ``settled`` mode, every voltage that has settled when the
    neuron acts (the input group and the groups of lower level), since the neuron's own and
    downstream voltages would reveal its action.

Learning granularity
--------------------
``"per_tick"`` (any topology)
    the literal ``E^n``: one transition per tick, ``(v_τ, a_τ, r_τ, v_{τ+1}, done)``, reward on
    the ticks where the task steps.
``"settled"`` (acyclic, leak-free topologies at ``delay = depth``)
    one transition per task step. A group of level ``L`` acts on tick ``L`` of the task step
    (the others hold their voltage), so the task action is one forward pass with independent
    per-neuron noise. The transition stores the settled voltages ``v_t`` and actions; the next
    state is the next observation, whose settled voltages ``v_{t+1}`` are recomputed at update
    time by a forward pass of the *target* network (so ``μ^{n'}(v_{t+1})`` is exactly what the
    target network would output there).

Default: ``settled`` for acyclic leak-free topologies, ``per_tick`` otherwise.

In ``settled`` mode a replayed transition is learned on with its voltages as acted
(``replay_voltages="stored"``, the default here) or with its stored observation settled again
by the current network (``"current"``: each neuron's presynaptic voltages are what its
neighbours emit now, as DDPG evaluates its actor on replayed states; the critics still score
the stored actions). Stored voltages of a layer go stale as the layers below it learn.

Update order (per group, every kind): TD errors with the target critic and target actor ->
one critic step -> one actor step ``K^n += η_A mean_i ∂Q^n/∂a σ'(K^n v_i + b^n) [v_i, 1]``
with ``∂Q^n/∂a`` from the *updated* critic at ``(x_i, μ^n(v_i))`` -> Polyak targets.

One module: the group layouts, acting, replay and the update share one set of per-group
tensors; the critic kinds themselves live in ``neuron_env.agents.critics``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from neuron_env.agents.critics import (
    CRITIC_KINDS,
    CRITICS,
    GroupBatch,
    Params,
    activation_derivative,
    actor_adam_step,
    actor_step,
    flat_buffer,
    flatten_adam_state,
    flatten_params,
    max_norm_,
    one_minus,
    params_sum,
    scalar,
)
from neuron_env.agents.errors import CheckpointError, LearnerConfigError
from neuron_env.agents.learner import LearnerConfig, NetworkActor
from neuron_env.agents.noise import make_noise
from neuron_env.agents.replay import Batch, ReplayBuffer

from neuron_env.dynamics import activate
from neuron_env.topology import ACTIVATION_RANGE, NetworkWeights, Topology

CRITIC_CONTEXTS: tuple[str, ...] = ("presynaptic", "task", "observation", "all")
GRANULARITIES: tuple[str, ...] = ("per_tick", "settled")
ACTOR_OPTIMIZERS: tuple[str, ...] = ("sgd", "adam")
REPLAY_VOLTAGES: tuple[str, ...] = ("stored", "current")

Index = slice | torch.Tensor


def group_levels(topology: Topology) -> dict[str, int] | None:
    """Tick on which each group settles after the input is clamped (input 0); ``None`` if cyclic."""
    if topology.depth is None:
        return None
    level: dict[str, int] = {}

    def visit(name: str) -> int:
        if name not in level:
            if topology.group[name].role == "input":
                level[name] = 0
            else:
                sources = [topology.projections[i].source for i in topology.incoming[name]]
                level[name] = 1 + max((visit(s) for s in sources), default=0)
        return level[name]

    for g in topology.groups:
        visit(g.name)
    return level


def _as_index(indices: np.ndarray, device: torch.device) -> Index:
    """A slice when ``indices`` is a contiguous ascending range (cheap view), else a tensor."""
    indices = np.asarray(indices, dtype=np.int64)
    if len(indices) and np.array_equal(indices, np.arange(indices[0], indices[0] + len(indices))):
        return slice(int(indices[0]), int(indices[0]) + len(indices))
    return torch.as_tensor(indices, device=device)


@dataclass(frozen=True)
class GroupLayout:
    """Where one agent group's quantities live in the voltage, action and parameter tensors.

    Attributes:
        name: Group name.
        size: Number of neurons ``S``.
        activation: The group's activation.
        agent_slice: Its columns in the ``[E, num_agents]`` action tensor.
        neuron_slice: Its columns in the ``[E, N]`` voltage tensor.
        pre: Presynaptic voltage indices (``P`` of them).
        pre_dim: ``P``.
        context: Critic-input voltage indices (``C`` of them).
        context_dim: ``C``.
        level: Tick of the task step on which the group acts in ``settled`` mode (else ``None``).
        projection_columns: ``(projection index, column slice in the actor tensor)`` per incoming projection.
        mask1: ``[S, P + 1]`` connection mask with a ones bias column, or ``None`` if unmasked.
        low: Lower end of the activation range.
        high: Upper end of the activation range.
    """

    name: str
    size: int
    activation: str
    agent_slice: slice
    neuron_slice: slice
    pre: Index
    pre_dim: int
    context: Index
    context_dim: int
    level: int | None
    projection_columns: tuple[tuple[int, slice], ...]
    mask1: torch.Tensor | None
    low: float
    high: float


def build_layouts(
    topology: Topology, critic_context: str, settled: bool, device: torch.device, dtype: torch.dtype
) -> list[GroupLayout]:
    """One ``GroupLayout`` per agent group, in ``topology.agent_groups`` order."""
    levels = group_levels(topology) if settled else None
    input_index = np.arange(topology.group_slice[topology.input_group.name].start,
                            topology.group_slice[topology.input_group.name].stop)
    layouts = []
    for g in topology.agent_groups:
        pre = topology.presynaptic_index[g.name]
        if critic_context == "presynaptic":
            context = pre
        elif critic_context == "task":
            context = np.concatenate([pre, input_index[~np.isin(input_index, pre)]])
        elif critic_context == "observation":
            context = input_index
        elif levels is not None:  # "all", settled: what has settled before this group acts
            context = np.concatenate([np.arange(topology.group_slice[h.name].start, topology.group_slice[h.name].stop)
                                      for h in topology.groups if levels[h.name] < levels[g.name]])
        else:
            context = np.arange(topology.num_neurons)
        columns = []
        start = 0
        masks = []
        for i in topology.incoming[g.name]:
            width = topology.group[topology.projections[i].source].size
            columns.append((i, slice(start, start + width)))
            mask = topology.projections[i].mask
            masks.append(np.ones((g.size, width), np.float32) if mask is None else mask)
            start += width
        any_mask = any(topology.projections[i].mask is not None for i in topology.incoming[g.name])
        mask1 = None
        if any_mask:
            mask1 = torch.as_tensor(np.concatenate(masks + [np.ones((g.size, 1), np.float32)], 1),
                                    device=device, dtype=dtype)
        low, high = ACTIVATION_RANGE[g.activation]
        layouts.append(GroupLayout(
            name=g.name, size=g.size, activation=g.activation, agent_slice=topology.agent_slice[g.name],
            neuron_slice=topology.group_slice[g.name], pre=_as_index(pre, device), pre_dim=len(pre),
            context=_as_index(context, device), context_dim=len(context),
            level=None if levels is None else levels[g.name], projection_columns=tuple(columns), mask1=mask1,
            low=low, high=high,
        ))
    return layouts


@dataclass
class LocalDDPGConfig(LearnerConfig):
    """Options of ``LocalDDPG`` (``neuron-env train --learner ddpg``); see the class for each."""

    critic: str = "mlp"
    """Per-neuron critic: ``linear`` (the draft's rule), ``compatible``, ``bilinear`` or ``mlp``."""
    critic_context: str = "task"
    """Critic input: ``presynaptic``, ``task`` (presynaptic + task observation), ``observation`` or ``all``."""
    granularity: str | None = None
    """``per_tick`` or ``settled``; default settled for acyclic leak-free networks, else per_tick."""
    critic_hidden: int = 32
    """Hidden units per layer of each ``mlp`` sub-critic."""
    gamma: float = 0.99
    """Discount per transition."""
    tau: float = 0.005
    """Polyak rate of the target networks."""
    lr_critic: float = 1e-3
    """Critic step size (SGD for linear kinds, Adam for ``mlp``)."""
    lr_actor: float = 5e-3
    """Actor step size."""
    lr_actor_hidden: float | None = None
    """Actor step size of the hidden groups; default ``lr_actor`` (0 freezes them)."""
    actor_optimizer: str = "sgd"
    """Actor step rule: ``sgd`` (plain local SGD) or ``adam`` (per-weight Adam, still local)."""
    actor_max_norm: float | None = None
    """Cap on the L2 norm of each neuron's input weights after every actor step; default no cap."""
    policy_delay: int = 1
    """Critic updates per actor (and target) update, as TD3's delayed policy updates; 1 = DDPG."""
    batch_size: int = 64
    """Transitions per update."""
    buffer_size: int = 100_000
    """Replay capacity in transitions."""
    noise: str = "gaussian"
    """Exploration noise per neuron: ``gaussian`` or ``ou``."""
    noise_scale: float = 0.1
    """Standard deviation (scale) of the exploration noise, in voltage units."""
    noise_scale_hidden: float | None = None
    """Noise scale of the hidden neurons; default ``noise_scale``."""
    replay_voltages: str = "stored"
    """Settled replay: ``stored`` (the voltages as acted) or ``current`` (the stored observation re-settled)."""


class LocalDDPG(NetworkActor):
    """Per-neuron DDPG with local critics, all neurons batched per group.

    Args:
        topology: The network.
        critic: ``"linear"`` (the draft's rule), ``"compatible"`` (COPDAC-Q), ``"bilinear"`` or
            ``"mlp"``; see ``neuron_env.agents.critics``.
        device: Torch device of parameters, replay buffer and noise.
        gamma: Discount ``γ`` per transition (per tick in ``per_tick`` mode).
        tau: Polyak rate ``τ`` of the target actor and critics.
        lr_critic: Critic step size ``η_Q`` (SGD for linear kinds, Adam for ``mlp``).
        lr_actor: Actor step size ``η_A``.
        lr_actor_hidden: Actor step size of the hidden groups; ``None``: ``lr_actor`` (``0`` freezes
            them, e.g. to measure what the hidden neurons' local learning contributes).
        actor_optimizer: ``"sgd"`` (plain local SGD, the draft's rule) or ``"adam"`` (the same local
            gradient through a per-weight Adam; no state is shared across neurons).
        actor_max_norm: Cap on the L2 norm of each neuron's input weights, applied after every
            actor step (max-norm regularization; the bias is not capped); ``None``: no cap. It
            bounds the several-fold weight growth of a run; on Pendulum-v1 it did not raise the
            score (``docs/results/sample-efficiency``, Phase H).
        policy_delay: Critic updates per actor update (TD3's delayed policy updates): the actor
            steps, and the target actor and critics move, on every ``policy_delay``-th
            ``update()`` only; ``1`` (default) updates everything every time, as DDPG does.
        batch_size: Transitions per update.
        buffer_size: Replay capacity in transitions.
        noise: ``"gaussian"`` or ``"ou"`` exploration noise, independent per neuron.
        noise_scale: Its ``σ`` (in voltage units).
        noise_scale_hidden: ``σ`` of the hidden groups' noise; ``None``: ``noise_scale``. Larger
            hidden noise identifies the hidden neurons' slopes ``∂Q^n/∂a`` better (E2), at the
            cost of noisier inputs downstream.
        seed: Seed of the initial weights (when ``weights`` is ``None``), the critics' init, the
            noise and the replay sampling.
        critic_context: ``"presynaptic"``, ``"task"``, ``"observation"`` or ``"all"`` (module doc).
        granularity: ``"per_tick"``, ``"settled"`` or ``None`` (settled when acyclic and leak-free).
        critic_hidden: Hidden units per layer of the ``mlp`` sub-critics.
        replay_voltages: In ``settled`` mode, the voltages a replayed transition is learned on:
            ``"stored"`` (as acted, the exploration noise of every neuron included) or
            ``"current"`` (its stored observation settled by the current network, as DDPG
            evaluates its actor on replayed states; a neuron still reads only its presynaptic
            voltages, now those its neighbours emit for that observation).
        weights: Initial network weights; ``None`` draws ``NetworkWeights.init(topology, seed)``.
        dtype: Floating dtype of every tensor (float64 for exact tests).

    Raises:
        LearnerConfigError: On an unknown option or ``settled`` on a cyclic or leaky topology.
    """

    name = "ddpg"
    config_class = LocalDDPGConfig
    off_policy = True
    #: Whether an update reads the stored actions of hidden groups (their critics score them).
    replays_hidden_actions: ClassVar[bool] = True

    def __init__(
        self,
        topology: Topology,
        critic: str = "linear",
        device: str | torch.device = "cpu",
        gamma: float = 0.99,
        tau: float = 0.005,
        lr_critic: float = 1e-3,
        lr_actor: float = 5e-3,
        lr_actor_hidden: float | None = None,
        actor_optimizer: str = "sgd",
        actor_max_norm: float | None = None,
        policy_delay: int = 1,
        batch_size: int = 64,
        buffer_size: int = 100_000,
        noise: str = "gaussian",
        noise_scale: float = 0.1,
        noise_scale_hidden: float | None = None,
        seed: int = 0,
        critic_context: str = "presynaptic",
        granularity: str | None = None,
        critic_hidden: int = 32,
        replay_voltages: str = "stored",
        weights: NetworkWeights | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        if critic not in CRITIC_KINDS:
            raise LearnerConfigError(f"critic={critic!r} is unknown; choose one of {CRITIC_KINDS}")
        if critic_context not in CRITIC_CONTEXTS:
            raise LearnerConfigError(f"critic_context={critic_context!r} is unknown; choose one of {CRITIC_CONTEXTS}")
        leaky = any(g.leak > 0 for g in topology.agent_groups)
        if granularity is None:
            granularity = "settled" if topology.depth is not None and not leaky else "per_tick"
        if actor_optimizer not in ACTOR_OPTIMIZERS:
            raise LearnerConfigError(
                f"actor_optimizer={actor_optimizer!r} is unknown; choose one of {ACTOR_OPTIMIZERS}")
        if granularity not in GRANULARITIES:
            raise LearnerConfigError(f"granularity={granularity!r} is unknown; choose one of {GRANULARITIES}")
        if granularity == "settled" and (topology.depth is None or leaky):
            raise LearnerConfigError(
                "granularity='settled' needs an acyclic, leak-free topology (one forward pass per task step); "
                f"{topology!r} is {'cyclic' if topology.depth is None else 'leaky'}: use granularity='per_tick'"
            )
        for name, value in (("gamma", gamma), ("tau", tau)):
            if not 0.0 <= value <= 1.0:
                raise LearnerConfigError(f"{name}={value!r} must lie in [0, 1]")
        if actor_max_norm is not None and not (math.isfinite(actor_max_norm) and actor_max_norm > 0):
            raise LearnerConfigError(
                f"actor_max_norm={actor_max_norm!r} must be a finite number > 0 (or None for no cap)")
        if not isinstance(policy_delay, int) or policy_delay < 1:
            raise LearnerConfigError(
                f"policy_delay={policy_delay!r} must be an integer >= 1 (critic updates per actor update)")
        if noise_scale < 0 or (noise_scale_hidden is not None and noise_scale_hidden < 0):
            raise LearnerConfigError(
                f"noise_scale={noise_scale!r} and noise_scale_hidden={noise_scale_hidden!r} must be >= 0")
        if noise_scale == 0 and noise_scale_hidden:
            raise LearnerConfigError(
                f"noise_scale_hidden={noise_scale_hidden!r} needs noise_scale > 0 (the hidden noise is the "
                "output noise's process, rescaled)")
        if replay_voltages not in REPLAY_VOLTAGES:
            raise LearnerConfigError(f"replay_voltages={replay_voltages!r} is unknown; choose one of {REPLAY_VOLTAGES}")
        if replay_voltages == "current" and granularity != "settled":
            raise LearnerConfigError("replay_voltages='current' re-settles stored observations: it needs "
                                     "granularity='settled' (an acyclic, leak-free topology)")
        if batch_size < 1 or critic_hidden < 1:
            raise LearnerConfigError(f"batch_size={batch_size!r} and critic_hidden={critic_hidden!r} must be >= 1")
        self.topology = topology
        self.critic_kind = critic
        self.device = torch.device(device)
        self.dtype = dtype
        self.gamma = float(gamma)
        self.tau = float(tau)
        self.lr_critic = float(lr_critic)
        self.lr_actor = float(lr_actor)
        self.lr_actor_hidden = self.lr_actor if lr_actor_hidden is None else float(lr_actor_hidden)
        self.actor_optimizer = actor_optimizer
        self.policy_delay = policy_delay
        self.actor_max_norm = None if actor_max_norm is None else float(actor_max_norm)
        self.batch_size = int(batch_size)
        self.critic_context = critic_context
        self.granularity = granularity
        self.critic_hidden = int(critic_hidden)
        self.replay_voltages = replay_voltages
        self.seed = int(seed)
        self.layouts = build_layouts(topology, critic_context, granularity == "settled", self.device, dtype)
        #: Actor step size of each group (``lr_actor`` for outputs, ``lr_actor_hidden`` for the others).
        self.actor_lrs = [self.lr_actor if topology.group[lay.name].role == "output" else self.lr_actor_hidden
                          for lay in self.layouts]
        self.levels = max((lay.level or 0) for lay in self.layouts) if granularity == "settled" else None
        self._kind = CRITICS[critic]
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        self.noise = make_noise(noise, topology.num_agents, noise_scale, self.generator)
        # Gain on the shared process per group: σ_hidden / σ for hidden groups (both processes are
        # linear in σ), exactly 1 where no separate hidden scale is set.
        hidden_gain = 1.0 if noise_scale_hidden is None or noise_scale == 0 else noise_scale_hidden / noise_scale
        #: Noise gain of each group (1 for outputs; ``noise_scale_hidden / noise_scale`` for the others).
        self.noise_gains = [1.0 if topology.group[lay.name].role == "output" else hidden_gain
                            for lay in self.layouts]
        self._input = topology.group_slice[topology.input_group.name]
        self.agent_neuron_index = torch.as_tensor(topology.agent_neuron_index, device=self.device)
        self._agent_neurons = _as_index(topology.agent_neuron_index, self.device)
        # settled: a transition's non-input voltages are its actions and the next state is
        # recomputed from the next input, so only input voltages are stored (module doc)
        stored_voltages = self._input.stop - self._input.start if granularity == "settled" else topology.num_neurons
        #: The agents whose actions the buffer keeps (``None``: every agent). Re-settled replay in a
        #: learner whose hidden groups have no critic reads the outputs' actions only.
        self.replayed_agents: torch.Tensor | None = None
        #: ``replayed_agents`` as a column index (a slice when contiguous: a copy instead of an index_put).
        self._replayed_columns: Index | None = None
        if replay_voltages == "current" and not self.replays_hidden_actions:
            self.replayed_agents = torch.cat([
                torch.arange(lay.agent_slice.start, lay.agent_slice.stop) for lay in self.layouts
                if topology.group[lay.name].role == "output"]).to(self.device)
            self._replayed_columns = _as_index(self.replayed_agents.cpu().numpy(), self.device)
        stored_actions = topology.num_agents if self.replayed_agents is None else len(self.replayed_agents)
        self.buffer = ReplayBuffer(buffer_size, stored_voltages, stored_actions, self.device, dtype)

        weights = (weights if weights is not None else NetworkWeights.init(topology, seed)).checked(topology)
        weights = weights.to(self.device, dtype)
        #: Actor tensor ``[S, P + 1]`` per group (blocks side by side, bias last).
        self.actor: list[torch.Tensor] = self.actor_tensors(self.layouts, weights)
        self.target_actor = [w.clone() for w in self.actor]
        critic_generator = torch.Generator(device=self.device).manual_seed(seed + 1)
        # each group's critic (and target, and Adam moments) as views into one flat buffer, so that its
        # Adam step and Polyak update are one op per line instead of one per tensor (critics.flatten_params)
        self.critic: list[Params] = [
            flatten_params(self._kind.init(lay.size, lay.context_dim, lay.pre_dim, critic_generator, dtype,
                                           self.critic_hidden))
            for lay in self.layouts
        ]
        self.target_critic: list[Params] = [flatten_params(p) for p in self.critic]
        self.optimizer_state: list[Params] = [{} for _ in self.layouts]
        #: Per-group Adam moments of the actor (``actor_optimizer="adam"``; empty for SGD).
        self.actor_optimizer_state: list[Params] = [{} for _ in self.layouts]
        #: Number of ``update`` calls so far.
        self.num_updates = 0

    # ------------------------------------------------------------------ acting
    def act(
        self, voltages: torch.Tensor, explore: bool = True, level: int | None = None, uniform: bool = False
    ) -> torch.Tensor:
        """Every agent's next voltage for a batch of env copies.

        Args:
            voltages: ``[E, N]`` current voltages.
            explore: Add independent per-neuron noise (clipped to the activation range).
            level: In ``settled`` mode, the tick of the task step (1 … depth): only the groups of
                that level act, every other agent holds its voltage. ``None``: every agent acts.
            uniform: Draw the acting agents' voltages uniformly in their activation range
                (warm-up); agents with an unbounded range act by ``μ`` plus noise instead.

        Returns:
            ``[E, num_agents]`` actions in ``topology.agent_ids`` order.
        """
        return super().act(voltages, explore, level, uniform)

    def _group_action(self, voltages: torch.Tensor, index: int, explore: bool, uniform: bool) -> torch.Tensor:
        """``μ`` plus clipped noise, or a uniform draw in the range (warm-up), for group ``index``."""
        lay, num_envs = self.layouts[index], voltages.shape[0]
        if uniform and math.isfinite(lay.low) and math.isfinite(lay.high):
            u = torch.rand(num_envs, lay.size, generator=self.generator, device=self.device, dtype=self.dtype)
            return lay.low + (lay.high - lay.low) * u
        out = self._group_output(voltages, index, self.actor)
        if explore or uniform:
            noise = self.noise.sample(num_envs, lay.agent_slice, self.dtype)
            out = out + (noise if self.noise_gains[index] == 1.0 else self.noise_gains[index] * noise)
            out = out.clamp(lay.low, lay.high)
        return out

    def reset_noise(self, done: torch.Tensor | None = None) -> None:
        """Reset the noise of env copies whose episode ended (``[E]`` bool), or of all."""
        self.noise.reset(done)

    # ------------------------------------------------------------------ learning
    def store(self, voltages: torch.Tensor, actions: torch.Tensor, rewards: torch.Tensor,
              next_voltages: torch.Tensor, terminated: torch.Tensor,
              truncated: torch.Tensor | None = None) -> None:  # the Learner protocol's signature
        """Add ``E`` transitions to the replay buffer (see ``neuron_env.agents.replay``).

        ``truncated`` is not stored: a truncated transition bootstraps from ``next_voltages``.

        In ``settled`` mode only the input voltages of ``voltages`` and ``next_voltages`` are
        kept: a settled transition's other voltages are its ``actions`` (each group holds the
        voltage it chose), and the next state is settled again from the next input at update
        time. (This keeps a 17-400-300-6 network's row at 3 kB instead of 8.6 kB.)
        """
        if self.granularity == "settled":
            voltages, next_voltages = voltages[:, self._input], next_voltages[:, self._input]
        if self.replayed_agents is not None:
            actions = actions[:, self.replayed_agents.to(actions.device)]
        self.buffer.add(voltages, actions, rewards, next_voltages, terminated)

    def ready(self) -> bool:
        """Whether the replay buffer holds a transition to learn from."""
        return len(self.buffer) > 0

    @property
    def num_transitions(self) -> int:
        """Transitions in the replay buffer."""
        return len(self.buffer)

    def sample(self) -> Batch:
        """A replay batch of ``batch_size`` transitions.

        Returns:
            A ``Batch`` whose ``voltages`` are ``[B, N]``; in ``settled`` mode they are rebuilt
            from the stored inputs and actions, and ``next_voltages`` holds the next input
            voltages only (all that ``settle`` reads).
        """
        batch = self.buffer.sample(self.batch_size, self.generator)
        if self.granularity != "settled":
            return batch
        if self.replay_voltages == "current":
            # the stored observation through the current network: each neuron's presynaptic voltages
            # are what its neighbours emit now (the stored actions stay the actions the critics score)
            settled = self.settle(batch.voltages)  # the input voltages are all it reads
            if self.replayed_agents is None:
                return batch._replace(voltages=settled)
            # only the outputs' actions were kept (and are read); the other columns hold μ as settled
            actions = settled[:, self._agent_neurons].clone()
            actions[:, self._replayed_columns] = batch.actions
            return batch._replace(voltages=settled, actions=actions)
        voltages = torch.empty(batch.voltages.shape[0], self.topology.num_neurons, device=self.device,
                               dtype=self.dtype)
        voltages[:, self._input] = batch.voltages
        voltages[:, self._agent_neurons] = batch.actions
        return batch._replace(voltages=voltages)

    def group_batches(self, batch: Batch) -> list[GroupBatch]:
        """Split a replay batch into what each group's update needs (current parameters)."""
        v = batch.voltages
        settled = self.granularity == "settled"
        v_next = self.settle(batch.next_voltages, target=True) if settled else batch.next_voltages
        not_done = one_minus(batch.terminated)
        result = []
        for i, lay in enumerate(self.layouts):
            pre1 = self._pre1(v, lay)
            potential = pre1 @ self._actor_views(self.actor, i)[2]
            mu = activate(potential, lay.activation)
            # settled: the target network's settled voltages are its actions μ^{n'}(v_{i+1}) already
            a_next = v_next[:, lay.neuron_slice] if settled else self._group_output(v_next, i, self.target_actor)
            result.append(GroupBatch(
                x=v[:, lay.context], a=batch.actions[:, lay.agent_slice], reward=batch.rewards, not_done=not_done,
                x_next=v_next[:, lay.context], a_next=a_next,
                pre1=pre1, mu=mu, dmu=activation_derivative(potential, mu, lay.activation), mask1=lay.mask1,
            ))
        return result

    def _batch_or_sample(self, batch: Batch | None) -> Batch:
        """``batch``, or a replay batch of ``batch_size`` when it is ``None`` (an empty buffer is an error)."""
        if batch is not None:
            return batch
        if len(self.buffer) == 0:
            raise LearnerConfigError("the replay buffer is empty: store transitions before update()")
        return self.sample()

    def _move_targets(self) -> None:
        """Polyak-average the target actor and critics towards the current ones by ``tau``."""
        for w, w_target in zip(self.actor, self.target_actor, strict=True):
            w_target.lerp_(w, self.tau)
        for params, target in zip(self.critic, self.target_critic, strict=True):
            flat, flat_target = flat_buffer(params.values()), flat_buffer(target.values())
            if flat is not None and flat_target is not None and list(params) == list(target):
                flat_target.lerp_(flat, self.tau)  # one op, the same arithmetic per element
                continue
            for name, p in params.items():
                target[name].lerp_(p, self.tau)

    def action_slopes(self, voltages: torch.Tensor) -> list[torch.Tensor]:
        """Each group's ``∂Q^n/∂a`` ``[B, S]`` at ``μ^n`` on settled ``voltages`` (its actor step's slope)."""
        with torch.no_grad():
            zeros = voltages.new_zeros(voltages.shape[0])
            batch = Batch(voltages, voltages[:, self.agent_neuron_index], zeros, voltages, zeros)
            return [self._kind.action_gradient(params, gb)
                    for params, gb in zip(self.critic, self.group_batches(batch), strict=True)]

    def update(self, batch: Batch | None = None, check_finite: bool = True) -> dict[str, torch.Tensor]:
        """Train every neuron once on one replay batch.

        Args:
            batch: The transitions to learn from; ``None`` samples ``batch_size`` from the buffer.
            check_finite: Raise ``DivergenceError`` if a TD error or parameter is not finite
                (one device synchronisation per update; tested on sums, so a value is caught
                when it or its group's sum is NaN or infinite).

        Returns:
            ``{"td_error": mean |D| over neurons and batch, "td_error/<group>": per group,
            "q_slope": mean |∂Q/∂a|}`` as 0-d tensors on the device.

        Raises:
            DivergenceError: Naming the group, when ``check_finite`` and a value is NaN or inf.
        """
        with torch.no_grad():
            batch = self._batch_or_sample(batch)
            stats: dict[str, torch.Tensor] = {}
            td_means, slopes = [], []
            finite = []
            actor_turn = self.num_updates % self.policy_delay == 0
            for i, gb in enumerate(self.group_batches(batch)):
                params, target = self.critic[i], self.target_critic[i]
                td, dq_da = self._kind.update(params, target, self.optimizer_state[i], gb, self.gamma, self.lr_critic)
                if self.actor_lrs[i] == 0.0 or not actor_turn:
                    pass  # frozen group (no step, no optimizer state), or a delayed actor update
                elif self.actor_optimizer == "adam":
                    actor_adam_step(self.actor[i], self.actor_optimizer_state[i], gb, dq_da, self.actor_lrs[i])
                else:
                    actor_step(self.actor[i], gb, dq_da, self.actor_lrs[i])
                if self.actor_max_norm is not None and self.actor_lrs[i] != 0.0 and actor_turn:
                    max_norm_(self.actor[i], self.actor_max_norm)
                td_abs = td.abs().mean()
                stats[f"td_error/{self.layouts[i].name}"] = td_abs
                td_means.append(td_abs * self.layouts[i].size)
                slopes.append(dq_da.abs().mean() * self.layouts[i].size)
                if check_finite:  # a sum is NaN/inf iff an element is (or the sum overflows): one pass each
                    finite += [td.sum(), self.actor[i].sum(), params_sum(params)]
            if actor_turn:  # TD3 moves the targets with the actor
                self._move_targets()
            self.num_updates += 1
            agents = scalar(float(self.topology.num_agents), td_means[0])
            stats["td_error"] = torch.stack(td_means).sum() / agents
            stats["q_slope"] = torch.stack(slopes).sum() / agents
            if check_finite:
                self._raise_if_not_finite_sums(finite, 3)
            return stats

    def check_finite(self) -> None:
        """Raise ``DivergenceError`` naming the first group with a non-finite parameter."""
        flags = []
        for i in range(len(self.layouts)):
            flags.append(torch.stack([
                torch.tensor(True, device=self.device), torch.isfinite(self.actor[i]).all(),
                torch.stack([torch.isfinite(p).all() for p in self.critic[i].values()]).all(),
            ]))
        self._raise_if_not_finite(torch.stack(flags))

    # ------------------------------------------------------------------ persistence
    def state_dict(self, include_buffer: bool = True) -> dict[str, Any]:
        """Everything needed to continue learning exactly, as CPU tensors.

        Parameters, targets, optimizer state, noise state, random generator, counters and
        (with ``include_buffer``) the replay buffer.
        """

        def cpu(params: Params) -> Params:
            return {k: v.detach().cpu().clone() for k, v in params.items()}

        state: dict[str, Any] = {
            "learner": self.name,
            "critic_kind": self.critic_kind,
            "groups": [lay.name for lay in self.layouts],
            "actor": [w.cpu().clone() for w in self.actor],
            "target_actor": [w.cpu().clone() for w in self.target_actor],
            "critic": [cpu(p) for p in self.critic],
            "target_critic": [cpu(p) for p in self.target_critic],
            "optimizer": [cpu(p) for p in self.optimizer_state],
            "actor_optimizer": [cpu(p) for p in self.actor_optimizer_state],
            "noise": {k: v.cpu() for k, v in self.noise.state_dict().items()},
            "generator": self.generator.get_state(),
            "num_updates": self.num_updates,
        }
        if include_buffer:
            state["buffer"] = self.buffer.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore ``state_dict`` (same topology and critic kind).

        Raises:
            CheckpointError: If the state belongs to another critic kind or topology.
        """
        if state.get("learner", "ddpg") != self.name:  # checkpoints before the learner interface hold no name
            raise CheckpointError(f"checkpoint holds a {state['learner']!r} learner's state; this learner is "
                                  f"{self.name!r}: load it with the learner that wrote it")
        if state["critic_kind"] != self.critic_kind or list(state["groups"]) != [lay.name for lay in self.layouts]:
            raise CheckpointError(
                f"checkpoint holds a {state['critic_kind']!r} learner for groups {state['groups']}; this learner is "
                f"{self.critic_kind!r} for groups {[lay.name for lay in self.layouts]}"
            )

        def dev(params: Params) -> Params:
            return {k: v.to(self.device, v.dtype if k == "step" else self.dtype).clone() for k, v in params.items()}

        for i, w in enumerate(state["actor"]):
            if tuple(w.shape) != tuple(self.actor[i].shape):
                raise CheckpointError(f"actor of group {self.layouts[i].name!r} has shape {tuple(w.shape)}; "
                                      f"expected {tuple(self.actor[i].shape)}")
        self.actor = [w.to(self.device, self.dtype).clone() for w in state["actor"]]
        self.target_actor = [w.to(self.device, self.dtype).clone() for w in state["target_actor"]]
        self.critic = [flatten_params(dev(p)) for p in state["critic"]]
        self.target_critic = [flatten_params(dev(p)) for p in state["target_critic"]]
        self.optimizer_state = [flatten_adam_state(dev(p)) for p in state["optimizer"]]
        self.actor_optimizer_state = [dev(p) for p in state.get("actor_optimizer", [{} for _ in self.layouts])]
        self.noise.load_state_dict({k: v.to(self.device, self.dtype) for k, v in state["noise"].items()})
        self.generator.set_state(state["generator"])
        self.num_updates = int(state["num_updates"])
        if "buffer" in state:
            buffer = state["buffer"]
            if self.replayed_agents is not None and buffer["actions"].shape[1] == self.topology.num_agents:
                # a checkpoint from before the compact rows: keep the replayed agents' columns
                buffer = {**buffer, "actions": buffer["actions"][:, self.replayed_agents.cpu()]}
            self.buffer.load_state_dict(buffer)

    def __repr__(self) -> str:
        return (f"LocalDDPG({self.topology!r}, critic={self.critic_kind!r}, context={self.critic_context!r}, "
                f"granularity={self.granularity!r}, device={self.device})")
