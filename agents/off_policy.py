"""The off-policy core of the replay-based rules: options, exploration, replay, targets and critics.

``LocalDDPG`` (every neuron has a critic) and ``FeedbackDDPG`` (only the outputs have one;
hidden neurons learn from their neighbours' messages) share everything but their update:

* ``OffPolicyConfig``: the options both take (critic kind and input, discount, Polyak rate,
  step sizes, actor step rule, batch, replay, exploration noise, replayed voltages), a
  docstring per field. Each rule's config subclasses it and sets its own defaults;
* ``check_off_policy_options``: one validation of those options, one-line errors;
* ``OffPolicyNetwork``: the network actor (``neuron_env.agents.network.NetworkActor``) with
  per-neuron exploration noise and warm-up draws, the device replay buffer (settled
  transitions store only the input voltages and the actions), replayed voltages as stored or
  re-settled by the current network, target copies of the actor and of the critics moved by
  Polyak averaging, the critics of the groups that have one, and the checkpoint state of all
  of that.

Replayed voltages (``replay_voltages``, settled mode)
-----------------------------------------------------
``"stored"``: the voltages as acted, exploration noise included. ``"current"``: the stored
observation settled again by the current network, as DDPG evaluates its actor on replayed
states; the critics still score the stored actions. Stored voltages of a layer go stale as the
layers below it learn.

A learner whose hidden groups have no critic (``replays_hidden_actions = False``) keeps only the
outputs' actions in a re-settled replay row: nothing reads the others.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from neuron_env.agents.capabilities import settles
from neuron_env.agents.critics import CRITIC_KINDS, CRITICS, CriticKind
from neuron_env.agents.errors import LearnerConfigError
from neuron_env.agents.learner import LearnerConfig
from neuron_env.agents.network import (
    CRITIC_CONTEXTS,
    GRANULARITIES,
    Index,
    NetworkActor,
    as_index,
    build_layouts,
    check_checkpoint,
    check_shapes,
)
from neuron_env.agents.noise import make_noise
from neuron_env.agents.optim import (
    ACTOR_OPTIMIZERS,
    actor_adam_step,
    actor_step,
    flat_buffer,
    flatten_adam_state,
    flatten_params,
    max_norm_,
)
from neuron_env.agents.replay import Batch, ReplayBuffer
from neuron_env.agents.tensors import GroupBatch, Params, scalar

from neuron_env.topology import NetworkWeights, Topology

REPLAY_VOLTAGES: tuple[str, ...] = ("stored", "current")


@dataclass
class OffPolicyConfig(LearnerConfig):
    """Options of the replay-based rules (``ddpg``, ``feedback``); each rule's config sets its defaults."""

    critic: str = "mlp"
    """Critic: per neuron ``linear`` (the draft's rule), ``compatible``, ``bilinear``, ``mlp``;
    per group ``joint`` or ``twin`` (TD3's clipped double Q)."""
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
    target_noise: float = 0.0
    """Std of the Gaussian noise on the output groups' target actions (TD3's target policy smoothing); 0: none."""
    target_noise_clip: float = 0.5
    """Bound of that noise (TD3's ``c``); the noisy target action is then clipped to the activation's range."""


def _check_choice(option: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise LearnerConfigError(f"{option}={value!r} is unknown; choose one of {choices}")


def check_off_policy_options(topology: Topology, settings: dict[str, Any]) -> str:
    """Validate ``OffPolicyConfig``'s options for ``topology``; return the resolved granularity.

    Raises:
        LearnerConfigError: Naming the first invalid option, its value and the fix.
    """
    _check_choice("critic", settings["critic"], CRITIC_KINDS)
    _check_choice("critic_context", settings["critic_context"], CRITIC_CONTEXTS)
    _check_choice("actor_optimizer", settings["actor_optimizer"], ACTOR_OPTIMIZERS)
    _check_choice("replay_voltages", settings["replay_voltages"], REPLAY_VOLTAGES)
    granularity = settings["granularity"]
    if granularity is None:
        granularity = "settled" if settles(topology) else "per_tick"
    _check_choice("granularity", granularity, GRANULARITIES)
    if granularity == "settled" and not settles(topology):
        raise LearnerConfigError(
            "granularity='settled' needs an acyclic, leak-free topology (one forward pass per task step); "
            f"{topology!r} is {'cyclic' if topology.depth is None else 'leaky'}: use granularity='per_tick'"
        )
    for name in ("gamma", "tau"):
        if not 0.0 <= settings[name] <= 1.0:
            raise LearnerConfigError(f"{name}={settings[name]!r} must lie in [0, 1]")
    max_norm = settings["actor_max_norm"]
    if max_norm is not None and not (math.isfinite(max_norm) and max_norm > 0):
        raise LearnerConfigError(f"actor_max_norm={max_norm!r} must be a finite number > 0 (or None for no cap)")
    policy_delay = settings["policy_delay"]
    if not isinstance(policy_delay, int) or policy_delay < 1:
        raise LearnerConfigError(
            f"policy_delay={policy_delay!r} must be an integer >= 1 (critic updates per actor update)")
    scale, hidden_scale = settings["noise_scale"], settings["noise_scale_hidden"]
    if scale < 0 or (hidden_scale is not None and hidden_scale < 0):
        raise LearnerConfigError(f"noise_scale={scale!r} and noise_scale_hidden={hidden_scale!r} must be >= 0")
    if scale == 0 and hidden_scale:
        raise LearnerConfigError(
            f"noise_scale_hidden={hidden_scale!r} needs noise_scale > 0 (the hidden noise is the "
            "output noise's process, rescaled)")
    if settings["replay_voltages"] == "current" and granularity != "settled":
        raise LearnerConfigError("replay_voltages='current' re-settles stored observations: it needs "
                                 "granularity='settled' (an acyclic, leak-free topology)")
    smoothing, bound = settings["target_noise"], settings["target_noise_clip"]
    if not (math.isfinite(smoothing) and smoothing >= 0 and math.isfinite(bound) and bound >= 0):
        raise LearnerConfigError(f"target_noise={smoothing!r} and target_noise_clip={bound!r} must be finite and "
                                 ">= 0 (TD3 uses 0.2 and 0.5; 0 turns the smoothing off)")
    if settings["batch_size"] < 1 or settings["critic_hidden"] < 1:
        raise LearnerConfigError(f"batch_size={settings['batch_size']!r} and critic_hidden="
                                 f"{settings['critic_hidden']!r} must be >= 1")
    return granularity


class OffPolicyNetwork(NetworkActor):
    """The shared state and plumbing of the replay-based rules (module doc); a rule adds ``update``.

    After ``_build_off_policy`` the learner has ``layouts``, ``actor``/``target_actor``,
    ``critic``/``target_critic``/``optimizer_state`` (one ``Params`` per group; empty for a group
    without a critic), ``actor_optimizer_state``, ``actor_lrs``, ``noise``/``noise_gains``,
    ``generator`` (noise, warm-up and replay sampling), ``buffer`` and ``num_updates``.
    """

    off_policy = True
    #: Whether an update reads the stored actions of hidden groups (their critics score them).
    replays_hidden_actions: ClassVar[bool] = True

    def _build_off_policy(self, topology: Topology, *, device: str | torch.device, seed: int,
                          weights: NetworkWeights | None, dtype: torch.dtype, critic_groups: list[bool] | None,
                          **settings: Any) -> None:
        """Set up everything but the rule's own state.

        Args:
            topology: The network.
            device: Torch device of every tensor.
            seed: Seed of the initial weights, the noise, warm-up draws and replay sampling
                (``seed``) and of the critics' init (``seed + 1``).
            weights: Initial network weights; ``None`` draws ``NetworkWeights.init(topology, seed)``.
            dtype: Floating dtype.
            critic_groups: Which groups (``layouts`` order) keep a critic; ``None``: all.
            **settings: ``OffPolicyConfig``'s fields.
        """
        granularity = check_off_policy_options(topology, settings)
        self.topology = topology
        self.device = torch.device(device)
        self.dtype = dtype
        self.seed = int(seed)
        self._set_options(granularity, settings)
        self.layouts = build_layouts(topology, self.critic_context, granularity == "settled", self.device, dtype)
        #: Actor step size of each group (``lr_actor`` for outputs, ``lr_actor_hidden`` for the others).
        self.actor_lrs = [self.lr_actor if self._is_output(lay.name) else self.lr_actor_hidden
                          for lay in self.layouts]
        self.levels = max((lay.level or 0) for lay in self.layouts) if granularity == "settled" else None
        self._kind: CriticKind = CRITICS[self.critic_kind]
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        self._build_exploration(settings["noise"], settings["noise_scale"], settings["noise_scale_hidden"])
        self._input = topology.group_slice[topology.input_group.name]
        self.agent_neuron_index = torch.as_tensor(topology.agent_neuron_index, device=self.device)
        self._agent_neurons = as_index(topology.agent_neuron_index, self.device)
        # Under the async clock a silent agent's next voltage is its voltage (leak-free) or λ v (leaky): the
        # action with that effect is its voltage, or a drive of 0. ``store`` writes it in place of the ignored one.
        self._silent_action_gain = torch.cat([
            torch.full((g.size,), 0.0 if g.leak > 0 else 1.0, dtype=dtype) for g in topology.agent_groups
        ]).to(self.device)
        self._build_replay(settings["buffer_size"])
        weights = (weights if weights is not None else NetworkWeights.init(topology, seed)).checked(topology)
        weights = weights.to(self.device, dtype)
        #: Actor tensor ``[S, P + 1]`` per group (blocks side by side, bias last).
        self.actor: list[torch.Tensor] = self.actor_tensors(self.layouts, weights)
        self.target_actor = [w.clone() for w in self.actor]
        self._build_critics(seed + 1, critic_groups)
        #: Per-group Adam moments of the actor (``actor_optimizer="adam"``; empty for SGD).
        self.actor_optimizer_state: list[Params] = [{} for _ in self.layouts]
        #: Number of ``update`` calls so far.
        self.num_updates = 0

    def _is_output(self, group: str) -> bool:
        return self.topology.group[group].role == "output"

    def _set_options(self, granularity: str, settings: dict[str, Any]) -> None:
        self.critic_kind = settings["critic"]
        self.gamma = float(settings["gamma"])
        self.tau = float(settings["tau"])
        self.lr_critic = float(settings["lr_critic"])
        self.lr_actor = float(settings["lr_actor"])
        hidden_rate = settings["lr_actor_hidden"]
        self.lr_actor_hidden = self.lr_actor if hidden_rate is None else float(hidden_rate)
        self.actor_optimizer = settings["actor_optimizer"]
        self.policy_delay = settings["policy_delay"]
        max_norm = settings["actor_max_norm"]
        self.actor_max_norm = None if max_norm is None else float(max_norm)
        self.batch_size = int(settings["batch_size"])
        self.critic_context = settings["critic_context"]
        self.granularity = granularity
        self.critic_hidden = int(settings["critic_hidden"])
        self.replay_voltages = settings["replay_voltages"]
        self.target_noise = float(settings["target_noise"])
        self.target_noise_clip = float(settings["target_noise_clip"])

    def _build_exploration(self, noise: str, noise_scale: float, noise_scale_hidden: float | None) -> None:
        self.noise = make_noise(noise, self.topology.num_agents, noise_scale, self.generator)
        # Gain on the shared process per group: σ_hidden / σ for hidden groups (both processes are
        # linear in σ), exactly 1 where no separate hidden scale is set.
        hidden_gain = 1.0 if noise_scale_hidden is None or noise_scale == 0 else noise_scale_hidden / noise_scale
        #: Noise gain of each group (1 for outputs; ``noise_scale_hidden / noise_scale`` for the others).
        self.noise_gains = [1.0 if self._is_output(lay.name) else hidden_gain for lay in self.layouts]

    def _build_replay(self, buffer_size: int) -> None:
        topology = self.topology
        # settled: a transition's non-input voltages are its actions and the next state is
        # recomputed from the next input, so only input voltages are stored (``store``)
        settled = self.granularity == "settled"
        stored_voltages = self._input.stop - self._input.start if settled else topology.num_neurons
        #: The agents whose actions the buffer keeps (``None``: every agent). Re-settled replay in a
        #: learner whose hidden groups have no critic reads the outputs' actions only.
        self.replayed_agents: torch.Tensor | None = None
        #: ``replayed_agents`` as a column index (a slice when contiguous: a copy instead of an index_put).
        self._replayed_columns: Index | None = None
        if self.replay_voltages == "current" and not self.replays_hidden_actions:
            self.replayed_agents = torch.cat([
                torch.arange(lay.agent_slice.start, lay.agent_slice.stop) for lay in self.layouts
                if self._is_output(lay.name)]).to(self.device)
            self._replayed_columns = as_index(self.replayed_agents.cpu().numpy(), self.device)
        stored_actions = topology.num_agents if self.replayed_agents is None else len(self.replayed_agents)
        self.buffer = ReplayBuffer(buffer_size, stored_voltages, stored_actions, self.device, self.dtype)

    def _build_critics(self, seed: int, critic_groups: list[bool] | None) -> None:
        """Each group's critic, target and optimizer state; ``{}`` for a group without a critic.

        Every group's critic is drawn, in ``layouts`` order, from one generator: a learner that keeps
        only the outputs' critics gets the same output critics as one that keeps all, for one seed.
        Each critic (and target, and Adam moments) is a set of views into one flat buffer, so that its
        Adam step and Polyak update are one op per line instead of one per tensor (``optim.flatten_params``).
        """
        generator = torch.Generator(device=self.device).manual_seed(seed)
        drawn = [self._kind.init(lay.size, lay.context_dim, lay.pre_dim, generator, self.dtype, self.critic_hidden)
                 for lay in self.layouts]
        keep = critic_groups if critic_groups is not None else [True] * len(self.layouts)
        self.critic: list[Params] = [flatten_params(p) if kept else {} for p, kept in zip(drawn, keep, strict=True)]
        self.target_critic: list[Params] = [flatten_params(p) for p in self.critic]
        self.optimizer_state: list[Params] = [{} for _ in self.layouts]

    # ------------------------------------------------------------------ acting
    def _group_action(self, voltages: torch.Tensor, index: int, explore: bool, uniform: bool) -> torch.Tensor:
        """``μ`` plus clipped noise, or a uniform draw in the range (warm-up), for group ``index``.

        Warm-up (``uniform``) draws the group's voltages uniformly in its activation range; a group
        with an unbounded range acts by ``μ`` plus noise instead.
        """
        lay, num_envs = self.layouts[index], voltages.shape[0]
        if uniform and math.isfinite(lay.low) and math.isfinite(lay.high):
            u = torch.rand(num_envs, lay.size, generator=self.generator, device=self.device, dtype=self.dtype)
            return lay.low + (lay.high - lay.low) * u
        out = self._group_output(voltages, index, self.actor)
        if explore or uniform:
            noise = self.noise.sample(num_envs, lay.agent_slice, self.dtype)
            gain = self.noise_gains[index]
            # in place: ``out`` is the fresh tensor ``_group_output`` made
            out = out.add_(noise if gain == 1.0 else self._gain_operand(gain, noise) * noise).clamp_(lay.low, lay.high)
        return out

    def _gain_operand(self, gain: float, noise: torch.Tensor) -> torch.Tensor | float:
        """A noise gain as the operand of a product with ``noise`` (``tensors.scalar``: the same bits), made once."""
        cache: dict[tuple[float, torch.dtype], torch.Tensor | float] = self.__dict__.setdefault("_gain_operands", {})
        key = (gain, noise.dtype)
        operand = cache.get(key)
        if operand is None:
            operand = cache[key] = scalar(gain, noise)
        return operand

    def _target_action(self, a_next: torch.Tensor, index: int) -> torch.Tensor:
        """Group ``index``'s target actions ``μ'(v_{i+1})``, smoothed as TD3's when it is an output group.

        With ``target_noise > 0`` an output group's target action gets Gaussian noise of that std,
        clipped to ``± target_noise_clip``, and the result is clipped to the activation's range; the
        noise is drawn from the learner's generator only then, so runs without it are unchanged.
        """
        lay = self.layouts[index]
        if self.target_noise == 0 or not self._is_output(lay.name):
            return a_next
        noise = torch.randn(a_next.shape, generator=self.generator, device=a_next.device, dtype=a_next.dtype)
        smoothed = a_next + noise.mul_(self.target_noise).clamp_(-self.target_noise_clip, self.target_noise_clip)
        if math.isfinite(lay.low) and math.isfinite(lay.high):
            smoothed.clamp_(lay.low, lay.high)
        return smoothed

    def reset_noise(self, done: torch.Tensor | None = None) -> None:
        """Reset the noise of env copies whose episode ended (``[E]`` bool), or of all."""
        self.noise.reset(done)

    # ------------------------------------------------------------------ replay
    def store(self, voltages: torch.Tensor, actions: torch.Tensor, rewards: torch.Tensor,
              next_voltages: torch.Tensor, terminated: torch.Tensor,
              truncated: torch.Tensor | None = None, fired: torch.Tensor | None = None) -> None:
        """Add ``E`` transitions to the replay buffer (see ``neuron_env.agents.replay``).

        ``truncated`` is not stored: a truncated transition bootstraps from ``next_voltages``.

        In ``settled`` mode only the input voltages of ``voltages`` and ``next_voltages`` are
        kept: a settled transition's other voltages are its ``actions`` (each group holds the
        voltage it chose), and the next state is settled again from the next input at update
        time. (This keeps a 17-400-300-6 network's row at 3 kB instead of 8.6 kB.)

        ``fired`` (``[E, num_agents]`` bool, the async clock's ``info["fired"]``, ``per_tick`` only):
        an agent that did not fire had no effect with its action; its next voltage is its voltage
        held (``λ v`` in a leaky group). Its transition is stored with the action that has exactly
        that effect in ``E^n`` (its voltage; in a leaky group a drive of 0), never the ignored one,
        so its critic learns what happened and the data stay a true transition of its own
        environment. Every agent fired: the actions are stored as given (``firing_rate=1`` is the
        sync clock, bit for bit).

        Raises:
            LearnerConfigError: If ``fired`` is given in ``settled`` mode (a settled task step needs
                every neuron to fire: the sync clock).
        """
        if fired is not None:
            if self.granularity == "settled":
                raise LearnerConfigError("fired is a per-tick firing mask of the async clock; a learner in granularity "
                                         "'settled' learns under the sync clock only: use granularity='per_tick'")
            silent_actions = voltages[:, self.agent_neuron_index].to(actions.dtype) * self._silent_action_gain
            actions = torch.where(fired.to(actions.device), actions, silent_actions)
        if self.granularity == "settled":
            voltages, next_voltages = voltages[:, self._input], next_voltages[:, self._input]
        if self.replayed_agents is not None:
            columns = self._replayed_columns  # a contiguous range is a view, which the buffer copies
            actions = actions[:, columns if isinstance(columns, slice) else self.replayed_agents.to(actions.device)]
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
            from the stored inputs and actions (``"stored"``) or settled again by the current
            network (``"current"``), and ``next_voltages`` holds the next input voltages only (all
            that ``settle`` reads).
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

    def _batch_or_sample(self, batch: Batch | None) -> Batch:
        """``batch``, or a replay batch of ``batch_size`` when it is ``None`` (an empty buffer is an error)."""
        if batch is not None:
            return batch
        if len(self.buffer) == 0:
            raise LearnerConfigError("the replay buffer is empty: store transitions before update()")
        return self.sample()

    # ------------------------------------------------------------------ actor step
    def _step_actor(self, index: int, batch: GroupBatch, slope: torch.Tensor,
                    message: torch.Tensor | None = None) -> None:
        """Step group ``index``'s actor along ``slope`` (``optim``'s SGD or Adam rule), then cap its norms.

        ``message``: ``σ' · slope`` when the caller has it already (see ``optim.actor_ascent``).
        The caller skips frozen groups (no step, no optimizer state) and delayed actor updates.
        """
        lr = self.actor_lrs[index]
        if self.actor_optimizer == "adam":
            actor_adam_step(self.actor[index], self.actor_optimizer_state[index], batch, slope, lr, message)
        else:
            actor_step(self.actor[index], batch, slope, lr, message)
        if self.actor_max_norm is not None:
            max_norm_(self.actor[index], self.actor_max_norm)

    # ------------------------------------------------------------------ targets
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

    # ------------------------------------------------------------------ persistence
    def state_dict(self, include_buffer: bool = True) -> dict[str, Any]:
        """Everything needed to continue learning exactly, as CPU tensors.

        Parameters, targets, optimizer state, noise state, random generator, counters and
        (with ``include_buffer``) the replay buffer.
        """

        def cpu(params: Params) -> Params:
            return {k: v.detach().cpu().clone() for k, v in params.items()}

        state: dict[str, Any] = {
            "learner": self.name,  # type: ignore[attr-defined]
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
        """Restore ``state_dict`` (same learner, topology and critic kind).

        Raises:
            CheckpointError: If the state belongs to another learner, critic kind or topology.
        """
        check_checkpoint(state, self.name, {  # type: ignore[attr-defined]
            "groups": [lay.name for lay in self.layouts], "critic_kind": self.critic_kind})
        check_shapes(state, "actor", self.actor, self.layouts)

        def dev(params: Params) -> Params:
            return {k: v.to(self.device, v.dtype if k == "step" else self.dtype).clone() for k, v in params.items()}

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
