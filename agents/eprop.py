"""``EpropLearner``: a local learner for recurrent and leaky networks (e-prop / RFLO with a DDPG output critic).

The network is a recurrent policy: its voltages are its memory. Every neuron learns from a
*per-synapse eligibility trace* (what its own input weights did to its own voltage, filtered by its
own leak, run forward in time) times a *learning signal* that reaches it from its neighbours: the
output critic's action slope ``∂Q/∂a``, sent back through fixed random feedback weights, one hop per
update. No backpropagation through time; every neuron steps at once. By default (``actor_batch=
"replay"``, ``replay_voltages="current"``) it steps on replayed batches as DDPG does, each replayed
row re-run by the current network through its stored window (below); ``actor_batch="live"`` is the
purely online rule, one step per tick on the live tick.

Quick start::

    from neuron_env import Topology
    from neuron_env.agents.eprop import EpropLearner

    topology = Topology.recurrent(4, 16, 2, leak=0.5)
    learner = EpropLearner(topology)                       # EpropConfig's defaults: the local rule, replayed
    floor = EpropLearner(topology, freeze_hidden=True)     # the reservoir: only the outputs learn
    ceiling = EpropLearner(topology, credit="bptt")        # exact credit by truncated BPTT (reference)
    online = EpropLearner(topology, actor_batch="live", replay_voltages="stored")   # the online rule

    neuron-env train --learner eprop --task CartPoleNoVel-v1 --topology recurrent --hidden 16 --leak 0.5

The env's tick (``neuron_env.dynamics``) for an agent group with leak ``λ``: ``v' = λ v + (1 − λ) a``
(``v' = a`` at ``λ = 0``), ``a = σ(u)``, ``u = K v_pre + b``. Under the async clock a neuron that does
not fire keeps ``v`` (a leaky one decays to ``λ v``) and its action is ignored.

The rule (``credit="eprop"``, the default)
------------------------------------------
For every neuron ``n`` of a group, every task copy ``e`` and every tick ``τ`` (``p = [v_pre, 1]``,
``f`` = fired, 1 under the sync clock)::

    trace:    Eⁿ(τ+1) = fⁿ(τ) [λ Eⁿ(τ) + (1−λ) σ'(uⁿ(τ)) p(τ)] + (1 − fⁿ(τ)) h Eⁿ(τ)      per synapse, [P + 1]
              (h = λ in a leaky group, 1 in a leak-free one: a silent neuron's trace follows its voltage)
    gain:     cⁿ(τ) = fⁿ(τ) (1−λ) σ'(uⁿ(τ))                       (∂vⁿ(τ+1)/∂v_pre(τ) = cⁿ(τ) Kⁿ)
    output n: gⁿ(τ) = ∂Q/∂aₙ (x(τ), μ(v(τ)))                        (the joint critic's slope, after its TD step)
              [Kⁿ, bⁿ] += η_A mean_e fⁿ(τ) gⁿ(τ) σ'(uⁿ(τ)) p(τ)     (DDPG's actor step on the live tick)
              mⁿ(τ) = fⁿ(τ) σ'(uⁿ(τ)) gⁿ(τ)                         (sent to its presynaptic neurons)
    hidden n at distance d from the outputs, on tick τ:
              Lⁿ = Σ_m F_mn mᵐ                                      (the messages sent on tick τ−1)
              [Kⁿ, bⁿ] += η_A mean_e fⁿ(τ) Lⁿ Eⁿ(τ − 2d + 1)
              mⁿ(τ) = cⁿ(τ − 2d) Lⁿ                                 (sent on to its own presynaptic neurons)

``F_mn`` is a fixed random feedback weight (``feedback``'s ``"random"``: uniform in ``±1/√fan_in`` of
``m``, or ``±feedback_scale``, masked like the forward block, drawn from ``seed + 2``); ``m`` ranges over
the groups ``n`` projects to that are one hop closer to an output (the *distance* of a group is its
shortest path to an output group along projections; a projection within a distance, such as the
recurrent ``h → h``, carries no message: credit through recurrence travels forward, in the traces). The
steps are Adam's (``actor_optimizer="adam"``, per weight, so per neuron) or plain SGD, ascending.

Why ``Eⁿ(τ − 2d + 1)``: the output's slope at tick ``τ−1`` is about the output's action on ``v(τ−1)``,
so about the hidden voltages ``v_h(τ−1)``, whose dependence on the hidden weights is ``E_h(τ−1)``; it
reaches the hidden neuron one tick later, when its newest trace is ``E_h(τ+1)``. Each further hop adds
a tick of transit and a tick of the dynamics (``v_h(τ) = f(v_g(τ−1))``), so a group at distance ``d``
pairs the message with its trace ``2d − 1`` ticks old and forwards it with its gain ``2d`` ticks old.
It keeps its last ``2d + 1`` traces and gains. Until its messages arrive, a group does not step.

This is e-prop's factorization (Bellec et al. 2020, eq. 1: ``dE/dW_ji ≈ Σ_t L_j^t e_ji^t``, with the
eligibility vector ``ε^t = (∂h^t/∂h^{t−1}) ε^{t−1} + ∂h^t/∂W`` of the neuron's own dynamics, here the leak
``λ``; random e-prop's learning signal ``L_j = Σ_k B_jk (…)_k`` through fixed random broadcast weights)
and exactly RFLO's trace (Murray 2019, eq. 9: ``P_ij ← (1 − 1/τ) P_ij + (1/τ) φ'(u_i) r_j`` with
``1/τ = 1 − λ``). What is new here is only the error: the DDPG critic's action slope instead of a
supervised error or a TD error times ``∇ log π`` (reward-based e-prop; RTRRL, Lemmel & Grosu 2025,
RFLO with random feedback in a CTRNN actor-critic), and a message that crosses one hop per tick
instead of a broadcast.

Replay meets recurrence
-----------------------
A tick is stored as a per-tick transition ``(v(τ), a(τ), r(τ), v(τ+1), done)`` with *all* voltages: the
network's voltages are its recurrent state, observed, as R2D2 stores its LSTM states. The critic
learns off-policy from these: one ``joint`` critic over the output group's actions, TD(0) from replay
with target copies, its input ``x`` the output group's ``critic_context``. The default ``"task"`` is its
presynaptic voltages and the task observation: on a recurrent layer, the hidden voltages, i.e. the
memory, as context (a velocity-masked task is only partially observed; the critic needs the memory).
``store`` advances every live trace on every tick, warm-up included.

``replay_voltages`` (``eprop_replay``: the buffer also keeps each row's tick, age in its episode, copy
and firing mask, so a row's earlier ticks can be found):

``"current"`` (default): the re-run
    A sampled row is re-run by the current network from its stored voltages ``replay_window`` ticks
    back (fewer at its episode's start): every agent group ticks noise-free with the current weights,
    the recorded inputs clamped and the recorded firing masks, and every hidden neuron's trace runs
    forward with it from 0, exactly as on a live tick (R2D2's burn-in, with the stored voltages as the
    window's start state; dependencies older than the window are cut, ``λ^window`` of a trace). The
    critic learns on the re-run ``v(τ)`` and ``v(τ+1)`` (one more tick with the next input), the actor
    at ``μ(v(τ))``, as DDPG evaluates its actor on replayed states with the current network (the
    ``feedback`` learner's ``replay_voltages="current"``). Nothing per synapse is stored.
``"stored"``: the voltages and traces as stored
    The row's voltages as acted, and the traces stored with it on its tick (``E(τ − d + 1)`` of a group
    at distance ``d``, a relay's gain ``c(τ − d)``, 0 across an episode start): stale as the hidden
    weights learn, as the stored voltages are. A row stores ``Σ S (P + 1) + Σ S`` floats (336 for a
    16-unit recurrent group with 4 inputs, 132 MiB for a 100 000-row buffer); the learner refuses a
    buffer above ``replay_trace_mib``.

``actor_batch``:

``"replay"`` (default): DDPG's actor step on every update
    After the critic's TD step on the batch, the outputs step along DDPG's slope at ``(x_b, μ(v_b))``
    averaged over the batch, and send their messages ``m_b = σ'(u_b) ∂Q/∂a_b``. A hidden group at
    distance ``d`` steps on the batch of ``d`` updates ago: ``[K, b] += η mean_b L_b E_b`` with
    ``L_b = Σ_m F_mn m_b`` the messages its postsynaptic groups sent last update about that batch, and
    passes ``c_b L_b`` on. Messages cross one hop per update (the ``feedback`` learner's pipeline); the
    learner queues the last ``d`` batches' traces and gains. A neuron steps when it fired on the last
    stored tick; every update makes an actor step (``policy_delay`` 1).
``"live"``: the online rule above
    The first ``update`` after a ``store`` makes one critic step on a replay batch and then the live
    tick's actor step; further ``update`` calls in the tick make critic steps only. With
    ``replay_voltages="stored"`` this is the rule as first committed.

Measured (``docs/learners/eprop.md``): on Pendulum-v1 neither the live actor step nor replayed stored
voltages let the local rule learn; the re-run does (the replayed ceiling learns with stored voltages
too, its BPTT re-running the window).

The async clock
---------------
``store(..., fired=mask)``: a neuron that did not fire on tick ``τ`` neither acted nor advanced its
trace: its trace follows its voltage, kept in a leak-free group and multiplied by ``λ`` in a leaky one
(its voltage decayed to ``λ v`` with no drive: ``∂v(τ+1)/∂K = λ ∂v(τ)/∂K``, exactly). Its gain that tick
is 0 (its voltage did not read its inputs), an output's message is 0, and it does not step its
parameters (nor its Adam moments; each neuron counts its own Adam steps). The replay buffer keeps the
action that had the effect (``OffPolicyNetwork.store``). An all-true mask is the sync clock, bit for bit.

Controls (``docs/design.md``)
-----------------------------
The floor is the reservoir: ``freeze_hidden`` (``lr_actor_hidden = 0``) keeps every hidden and
recurrent weight at its init and only the outputs learn. The ceiling, ``credit="bptt"``, is the same
learner whose hidden groups get exact credit: the gradient of ``Q(x(τ), μ_out(v(τ)))`` with respect to
every hidden weight through a window of stored ticks, by autograd (truncated BPTT). The window's
voltages are recomputed from the recorded voltages at its start by the current weights, with the
recorded inputs and firing masks, no exploration noise, and restarted at episode starts; the critic's
input ``x(τ)`` is held fixed. Replayed (``actor_batch="replay"``), it is the batch's mean over each row's
``replay_window`` (the window the re-run runs through: floor, rule and ceiling differ only in the hidden
credit); live, it is the live tick's over the last ``bptt_window`` ticks. It is a reference, not a local
rule; the outputs' step is the same as the local rule's.

Statistics of ``update``: ``td_error``, ``td_error/<output group>``, ``q_slope`` (mean ``|∂Q/∂a|`` of the
actor step), ``learning_signal/<group>`` (mean ``|L|`` of each hidden group that stepped;
``credit="bptt"``: the mean ``|∂Q/∂K|``, per copy live, of the batch's sum replayed).

What is local
-------------
Hidden neuron ``n`` reads its own parameters, trace, gains and feedback synapses, its presynaptic
voltages (for its trace), and the messages of the neurons it projects to, one tick (update) late.
Output neurons read their critic (their presynaptic voltages and the task observation, the reward,
the target copies' next action: activity, not parameters). Nothing else: a non-neighbour's parameters
reach ``n`` only through activity or through a neighbour's message, a hop per tick (update). The
re-run is activity: every neuron recomputes its own voltage and trace from its own parameters and its
presynaptic re-run voltages, tick by tick, so a parameter reaches a non-neighbour through the
replayed activity (as through the live activity), never directly.

References:
    G. Bellec, F. Scherr, A. Subramoney, E. Hajek, D. Salaj, R. Legenstein, W. Maass, "A solution to
    the learning dilemma for recurrent networks of spiking neurons", Nature Communications 11, 3625
    (2020), https://doi.org/10.1038/s41467-020-17236-y; code: github.com/IGITUGraz/eligibility_propagation
    (``numerical_verification_eprop_factorization_vs_BPTT.py``; reward-based e-prop in
    ``Figure_4_and_5_ATARI/``).
    J. M. Murray, "Local online learning in recurrent networks with random feedback (RFLO)", eLife 8,
    e43299 (2019), https://doi.org/10.7554/eLife.43299.
    J. Lemmel, R. Grosu, "Real-Time Recurrent Reinforcement Learning", AAAI 2025,
    https://arxiv.org/abs/2311.04830; code: github.com/FranzKnut/jax_rtrl
    (``jax_rtrl/models/cells/ctrnn.py``: ``rflo_murray``, ``jw += (1/τ) (M_immediate − jw)``) and the
    paper's code appendix ``rtrrl.py`` (TD(λ) actor-critic over RFLO traces, ``f_align``).
    N. Heess, J. J. Hunt, T. P. Lillicrap, D. Silver, "Memory-based control with recurrent neural
    networks" (RDPG), 2015, https://arxiv.org/abs/1512.04455.
    S. Kapturowski et al., "Recurrent experience replay in distributed reinforcement learning"
    (R2D2), ICLR 2019.

The rule's tensors (traces, gains, messages in flight, queued batches, the per-row Adam step), the
re-run and the live ceiling's window are this module's; the buffer that keeps rows in time is
``neuron_env.agents.eprop_replay``; noise, targets and the critic are the shared core
(``neuron_env.agents.off_policy``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from neuron_env.agents.eprop_ceiling import WindowTick, window_gradients
from neuron_env.agents.eprop_replay import TraceReplayBuffer, row_bytes
from neuron_env.agents.errors import CheckpointError, LearnerConfigError
from neuron_env.agents.network import check_checkpoint
from neuron_env.agents.off_policy import REPLAY_VOLTAGES, OffPolicyConfig, OffPolicyNetwork
from neuron_env.agents.optim import ADAM_BETAS, ADAM_EPS, params_sum
from neuron_env.agents.replay import Batch
from neuron_env.agents.tensors import GroupBatch, Params, activation_derivative, one_minus

from neuron_env.dynamics import activate
from neuron_env.topology import NetworkWeights, Topology

CREDITS: tuple[str, ...] = ("eprop", "bptt")
FEEDBACKS: tuple[str, ...] = ("random", "weights")
ACTOR_BATCHES: tuple[str, ...] = ("replay", "live")


@dataclass
class EpropConfig(OffPolicyConfig):
    """Options of ``EpropLearner`` (``neuron-env train --learner eprop``): ``OffPolicyConfig``'s, plus below.

    The critic options apply to the output group only (one ``joint`` critic over its actions). The
    framework is Stable-Baselines3 DDPG's, as the feedback learner's (critic of 64 units, Adam at
    1e-3, batch 256, noise on the outputs only, the actor stepping on every update's replayed batch,
    replayed states evaluated by the current network: here re-run through their stored window).
    """

    critic: str = "joint"
    """Output critic: ``joint`` (one critic over the output group's actions, as DDPG's) or a per-neuron kind."""
    critic_context: str = "task"
    """Output critic input: ``task`` (its presynaptic voltages, the memory, and the observation), ``all``, …"""
    granularity: str | None = "per_tick"
    """Always ``per_tick``: one transition per tick (the network's state is its voltages on each tick)."""
    critic_hidden: int = 64
    """Hidden units per layer of the output critic."""
    actor_optimizer: str = "adam"
    """Actor step rule: ``adam`` (per weight, each neuron counting its own steps) or ``sgd``."""
    lr_actor: float = 1e-3
    """Actor step size (per update; ``actor_batch="live"``: per tick)."""
    batch_size: int = 256
    """Replayed transitions per critic step."""
    noise_scale_hidden: float | None = 0.0
    """Noise scale of the hidden neurons (0: only the outputs explore); ``None``: ``noise_scale``."""
    credit: str = "eprop"
    """Hidden credit: ``eprop`` (traces × random feedback, local) or ``bptt`` (truncated BPTT: the ceiling)."""
    bptt_window: int = 16
    """Ticks the live ``bptt`` ceiling backpropagates through (replayed: ``replay_window``)."""
    feedback_scale: float | None = None
    """Bound of the random feedback weights; default ``1/sqrt(fan_in)`` of the postsynaptic group."""
    feedback: str = "random"
    """Feedback weights of the messages: ``random`` (fixed, local) or ``weights`` (the true ones: symmetric e-prop)."""
    actor_batch: str = "replay"
    """Actor steps on ``replay`` (every update, the critic's replayed batch) or on the ``live`` tick (once per tick)."""
    replay_voltages: str = "current"
    """Replayed rows: ``current`` (re-run through their stored window by the current network) or ``stored``."""
    replay_window: int = 16
    """Stored ticks a replayed row is re-run through (``current``) and the replayed ceiling backpropagates through."""
    replay_trace_mib: float = 1024.0
    """Budget (MiB) of the traces ``replay_voltages="stored"`` keeps with the replay buffer; above it, refuse."""


@dataclass(frozen=True)
class MessageEdge:
    """A projection ``n -> m`` that carries messages back from ``m`` to ``n`` (``m`` one hop closer to an output).

    Attributes:
        projection: Index of the projection in ``topology.projections``.
        target: Index of ``m`` in ``layouts``.
    """

    projection: int
    target: int


def output_distances(topology: Topology) -> list[int | None]:
    """Shortest path (in projections) from each agent group to an output group; ``None`` if none reaches one."""
    names = [g.name for g in topology.agent_groups]
    dist: dict[str, int] = {g.name: 0 for g in topology.agent_groups if g.role == "output"}
    changed = True
    while changed:
        changed = False
        for p in topology.projections:
            if p.source in names and p.target in dist and p.source != p.target:
                if p.source not in dist or dist[p.target] + 1 < dist[p.source]:
                    dist[p.source] = dist[p.target] + 1
                    changed = True
    return [dist.get(name) for name in names]


def row_adam_ascent_(weight: torch.Tensor, state: Params, ascent: torch.Tensor, rows: torch.Tensor,
                     lr: float) -> None:
    """One Adam ascent step on the rows of ``weight`` where ``rows`` is true; other rows and their moments untouched.

    ``torch.optim.Adam``'s arithmetic per weight, with a step count per row (neuron), so a neuron that
    did not fire neither moves nor ages its moments: the same as one Adam per neuron, stepped when it fires.

    Args:
        weight: ``[S, P + 1]`` in place.
        state: ``{"step": [S] float64, "m": …, "v": …}``, created on the first call.
        ascent: ``[S, P + 1]`` the direction to ascend.
        rows: ``[S]`` bool.
        lr: Step size.
    """
    beta1, beta2 = ADAM_BETAS
    if not state:
        state["step"] = torch.zeros(weight.shape[0], dtype=torch.float64, device=weight.device)
        state["m"], state["v"] = torch.zeros_like(weight), torch.zeros_like(weight)
    step = state["step"] + rows.to(torch.float64)
    m = torch.lerp(state["m"], ascent, 1 - beta1)
    v = (state["v"] * beta2).addcmul_(ascent, ascent, value=1 - beta2)
    count = step.clamp_min(1.0)
    correction1 = (1 - beta1**count).to(weight.dtype)[:, None]
    correction2_sqrt = torch.sqrt(1 - beta2**count).to(weight.dtype)[:, None]
    moved = weight + (lr / correction1) * m / ((v.sqrt() / correction2_sqrt) + ADAM_EPS)
    keep = rows[:, None]
    weight.copy_(torch.where(keep, moved, weight))
    state["m"].copy_(torch.where(keep, m, state["m"]))
    state["v"].copy_(torch.where(keep, v, state["v"]))
    state["step"].copy_(step)


class EpropLearner(OffPolicyNetwork):
    """Per-synapse eligibility traces × random-feedback learning signals; a replayed joint output critic (module doc).

    Args:
        topology: Any network (recurrent, leaky, acyclic); it learns per tick.
        config: Its options (``EpropConfig``: the one set of defaults); ``None``: the defaults.
        device: Torch device of every tensor.
        seed: Seed of weights, critic, noise, replay sampling and (``seed + 2``) the feedback weights.
        weights: Initial network weights; ``None`` draws ``NetworkWeights.init(topology, seed)``.
        dtype: Floating dtype (float64 for exact tests).
        **options: ``EpropConfig`` fields overriding ``config``'s.

    Raises:
        LearnerConfigError: On an unknown ``credit``, a bad ``bptt_window`` or ``feedback_scale``, or
            ``granularity='settled'``.
    """

    name = "eprop"
    config_class = EpropConfig
    topologies = ("acyclic", "recurrent", "leaky")
    clocks = ("sync", "async")
    finite_columns = ("td_error", "actor", "critic", "learning_signal")
    divergence_advice = "lower lr_actor/lr_critic (or feedback_scale)"

    def _build(self, topology: Topology, *, device: str | torch.device, seed: int, weights: NetworkWeights | None,
               dtype: torch.dtype, credit: str, bptt_window: int, feedback_scale: float | None,
               granularity: str | None, actor_batch: str, replay_trace_mib: float, feedback: str,
               replay_voltages: str, replay_window: int, **settings: Any) -> None:
        if credit not in CREDITS:
            raise LearnerConfigError(f"credit={credit!r} is unknown; choose one of {CREDITS}")
        if granularity not in (None, "per_tick"):
            raise LearnerConfigError(f"granularity={granularity!r}: learner 'eprop' learns per tick (its traces "
                                     "follow the voltages tick by tick); leave granularity='per_tick'")
        if isinstance(bptt_window, bool) or not isinstance(bptt_window, int) or bptt_window < 1:
            raise LearnerConfigError(f"bptt_window={bptt_window!r} must be an integer >= 1 (ticks)")
        if feedback_scale is not None and not (math.isfinite(feedback_scale) and feedback_scale > 0):
            raise LearnerConfigError(f"feedback_scale={feedback_scale!r} must be a finite number > 0")
        if feedback not in FEEDBACKS:
            raise LearnerConfigError(f"feedback={feedback!r} is unknown; choose one of {FEEDBACKS}")
        if replay_voltages not in REPLAY_VOLTAGES:
            raise LearnerConfigError(f"replay_voltages={replay_voltages!r} is unknown; choose one of {REPLAY_VOLTAGES}")
        if isinstance(replay_window, bool) or not isinstance(replay_window, int) or replay_window < 1:
            raise LearnerConfigError(f"replay_window={replay_window!r} must be an integer >= 1 (ticks)")
        if actor_batch not in ACTOR_BATCHES:
            raise LearnerConfigError(f"actor_batch={actor_batch!r} is unknown; choose one of {ACTOR_BATCHES}")
        if isinstance(replay_trace_mib, bool) or not (math.isfinite(replay_trace_mib) and replay_trace_mib > 0):
            raise LearnerConfigError(f"replay_trace_mib={replay_trace_mib!r} must be a finite number > 0 (MiB)")
        is_output = [group.role == "output" for group in topology.agent_groups]
        self.is_output = is_output
        self.credit, self.bptt_window, self.feedback_scale = credit, bptt_window, feedback_scale
        self.actor_batch, self.replay_trace_mib, self.feedback = actor_batch, float(replay_trace_mib), feedback
        self.replay_window = replay_window
        #: Whether replayed rows are re-run (``replay_voltages="current"``; the core's option means settling).
        self.rerun = replay_voltages == "current"
        #: Each group's distance to an output group (``None``: no path, no learning signal).
        self.distances = output_distances(topology)
        #: The projections each group receives messages through.
        self.edges = self._message_edges(topology)
        self._build_off_policy(topology, device=device, seed=seed, weights=weights, dtype=dtype,
                               critic_groups=is_output, granularity="per_tick", replay_voltages="stored", **settings)
        self.replay_voltages = replay_voltages  # the core knows only settled re-settling; the re-run is this module's
        #: Each group's leak ``λ`` and the factor ``h`` of a silent neuron's voltage (``λ``, or 1 leak-free).
        self.leaks = [float(g.leak) for g in topology.agent_groups]
        self.holds = [leak if leak > 0 else 1.0 for leak in self.leaks]
        #: Fixed random feedback weights ``F`` ``[S_m, S_n]`` per message-carrying projection.
        self.feedback_weights = self._random_feedback(seed + 2)
        #: Ticks of history each group keeps (``2d + 1`` traces and gains; 0: it keeps none).
        self.history = [0 if d is None or d == 0 else 2 * d + 1 for d in self.distances]
        #: ``actor_batch="replay"``: past batches whose stored traces are kept (the deepest group's distance).
        self.queue_length = max((d for d in self.distances if d is not None), default=0)
        self._reset_tick_state()

    def _message_edges(self, topology: Topology) -> list[tuple[MessageEdge, ...]]:
        """Per agent group (``layouts`` order), the projections to groups one hop closer to an output."""
        index = {g.name: i for i, g in enumerate(topology.agent_groups)}
        edges = []
        for i, group in enumerate(topology.agent_groups):
            d = self.distances[i]
            own = [] if d is None or d == 0 else [
                MessageEdge(p, index[proj.target]) for p, proj in enumerate(topology.projections)
                if proj.source == group.name and proj.target in index and proj.target != group.name
                and self.distances[index[proj.target]] == d - 1]
            edges.append(tuple(own))
        return edges

    def _stored_shapes(self) -> tuple[dict[int, tuple[int, int]], dict[int, int]]:
        """``actor_batch="replay"``: the trace ``(S, P + 1)`` and gain ``S`` each stored row holds, per group.

        Every hidden group with a path to an output stores its trace; a group that deeper groups send
        messages through stores its gain.
        """
        groups = self.topology.agent_groups
        traces = {i: (g.size, len(self.topology.presynaptic_index[g.name]) + 1) for i, g in enumerate(groups)
                  if self.distances[i] not in (None, 0)}
        relays = {edge.target for edges in self.edges for edge in edges}
        gains = {i: groups[i].size for i in sorted(relays) if self.distances[i] not in (None, 0)}
        return traces, gains

    def _rerun(self, rows: torch.Tensor, batch: Batch, credit: bool = True
               ) -> tuple[Batch, dict[int, torch.Tensor], dict[int, torch.Tensor], list[WindowTick]]:
        """``replay_voltages="current"``: the rows re-run by the current network through their stored window.

        From the stored voltages ``replay_window`` ticks back (fewer at an episode start), every agent group
        ticks noise-free with the current weights, the recorded inputs clamped and the recorded firing masks;
        every hidden neuron's trace runs forward with it from 0, as on the live tick. A group at distance ``d``
        keeps ``E(τ − d + 1)``, a relay its gain ``c(τ − d)`` (0 across an episode start). One more tick from
        ``v(τ)`` with the next input gives ``v(τ + 1)``.

        The trace is linear in each tick's product ``σ'(u) p``: it is computed in closed form over the window,
        ``E = Σ_k w_k σ'(u_k) p_k`` with ``w_k`` the tick's gate times the factors of the later ticks (``λ``
        each in a leaky group; ``1 − f`` in a leak-free one, whose trace a firing tick replaces; 0 across an
        episode start): one batched product instead of a loop of per-synapse updates.

        Args:
            rows: The buffer rows ``[B]``.
            batch: Their stored transitions.
            credit: Whether the hidden groups' traces and gains are wanted (e-prop's replayed actor step).

        Returns:
            The batch with the re-run ``v(τ)``, ``v(τ + 1)`` (stored actions, rewards, ends), the traces and
            gains, and the window.
        """
        window = self.buffer.windows(rows, self.replay_window, max(self.copies, 1))  # type: ignore[attr-defined]
        shapes, relays = self._stored_shapes() if credit and self.credit == "eprop" else ({}, {})
        zero = torch.zeros((), dtype=self.dtype, device=self.device)
        products: dict[int, list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]] = {i: [] for i in shapes}
        gains: dict[int, torch.Tensor] = {}
        masked = self.asynchronous
        state = window[-1][0]
        for k in range(len(window) - 1, 0, -1):  # the tick from τ − k to τ − k + 1
            fired, (recorded, _, fresh) = window[k][1], window[k - 1]
            state, potentials = self._network_tick(state, fired if masked else None)
            for i, (pre1, dmu) in potentials.items():
                d = self.distances[i]
                if i in products and k >= d:  # type: ignore[operator]
                    products[i].append((pre1, dmu, fired[:, self.layouts[i].agent_slice]))
                if i in relays and k == d:
                    gain = dmu * (1 - self.leaks[i])
                    if masked:
                        gain = torch.where(fired[:, self.layouts[i].agent_slice], gain, zero)
                    gains[i] = torch.where(fresh[:, None], zero, gain)
            state[:, self._input] = recorded[:, self._input]
            state = torch.where(fresh[:, None], recorded, state)
        following, _ = self._network_tick(state, window[0][1] if masked else None)
        following[:, self._input] = batch.next_voltages[:, self._input]
        traces = {}
        for i, shape in shapes.items():
            d = self.distances[i]
            if not products[i]:  # farther back than the window: no trace
                traces[i] = torch.zeros(rows.shape[0], *shape, dtype=self.dtype, device=self.device)
                continue
            newest_first = products[i][::-1]  # tick k = d, d + 1, …
            pre1 = torch.stack([t[0] for t in newest_first])  # [K, B, P + 1]
            dmu = torch.stack([t[1] for t in newest_first])  # [K, B, S]
            on = torch.stack([t[2] for t in newest_first]).to(self.dtype)
            # keep_k: the state after tick k is no episode start (entry k − 1 not fresh)
            keep = torch.stack([~window[k - 1][2] for k in range(d, d + len(newest_first))]).to(self.dtype)
            leak = self.leaks[i]
            later = torch.full_like(dmu, leak) if leak > 0 else 1 - on  # what each tick does to an older term
            carried = torch.cumprod(torch.cat([torch.ones_like(later[:1]), later[:-1]]), 0)
            weight = on * carried * torch.cumprod(keep, 0)[:, :, None] * (1 - leak if leak > 0 else 1.0)
            traces[i] = torch.einsum("kbs,kbp->bsp", weight * dmu, pre1)
        for i in relays:
            gains.setdefault(i, torch.zeros(rows.shape[0], relays[i], dtype=self.dtype, device=self.device))
        return batch._replace(voltages=state, next_voltages=following), traces, gains, window

    def _network_tick(self, voltages: torch.Tensor, fired: torch.Tensor | None
                      ) -> tuple[torch.Tensor, dict[int, tuple[torch.Tensor, torch.Tensor]]]:
        """One noise-free tick of every agent group (the env's leaky tick; with ``fired``, silent neurons held).

        Returns:
            The next voltages (inputs unchanged) and each group's ``(p, σ')`` at ``voltages``.
        """
        following = voltages.clone()
        potentials = {}
        for i, lay in enumerate(self.layouts):
            pre1, mu, dmu = self._potential(voltages, i)
            potentials[i] = (pre1, dmu)
            own, leak = voltages[:, lay.neuron_slice], self.leaks[i]
            moved = mu if leak == 0 else torch.add(own * leak, mu, alpha=1 - leak)
            following[:, lay.neuron_slice] = moved if fired is None else torch.where(
                fired[:, lay.agent_slice], moved, own * (leak or 1.0))
        return following, potentials

    def _build_replay(self, buffer_size: int) -> None:
        """The core's buffer (live actor, stored voltages), or one that keeps rows in time (and their traces)."""
        if self.actor_batch == "live" and not self.rerun:
            super()._build_replay(buffer_size)
            return
        traces, gains = ({}, {}) if self.rerun or self.actor_batch == "live" else self._stored_shapes()
        per_row = row_bytes(traces, gains, self.topology.num_agents, self.dtype)
        budget = self.replay_trace_mib * 2**20
        if traces and buffer_size * per_row > budget:  # the re-run stores only 24 B of ticks and the firing mask
            floats = sum(s * p for s, p in traces.values()) + sum(gains.values())
            raise LearnerConfigError(
                f"actor_batch='replay' stores each tick's eligibility traces with its transition: {floats} floats "
                f"({per_row} B) per row x buffer_size={buffer_size} is {buffer_size * per_row / 2**20:.0f} MiB, "
                f"above replay_trace_mib={self.replay_trace_mib:g}: lower buffer_size (at most "
                f"{int(budget // per_row)}), raise replay_trace_mib, or use replay_voltages='current' (rows re-run, "
                "no trace stored)")
        self.replayed_agents, self._replayed_columns = None, None
        self.buffer = TraceReplayBuffer(buffer_size, self.topology.num_neurons, self.topology.num_agents, traces,
                                        gains, self.device, self.dtype)

    def _random_feedback(self, seed: int) -> dict[int, torch.Tensor]:
        """One fixed random matrix per message edge, uniform in ``±bound``, masked like the forward block."""
        matrices = {}
        generator = torch.Generator().manual_seed(seed)  # on the CPU: the same matrices on every device
        for edges in self.edges:
            for edge in edges:
                projection = self.topology.projections[edge.projection]
                bound = self.feedback_scale or 1.0 / math.sqrt(len(self.topology.presynaptic_index[projection.target]))
                shape = (self.topology.group[projection.target].size, self.topology.group[projection.source].size)
                draw = (torch.rand(shape, generator=generator) * 2 - 1) * bound
                if projection.mask is not None:
                    draw = draw * torch.as_tensor(np.array(projection.mask, dtype=np.float32))
                matrices[edge.projection] = draw.to(self.device, self.dtype)
        return matrices

    def _reset_tick_state(self) -> None:
        #: Each group's last traces ``E`` ``[E, S, P + 1]``, newest first (``[0]``: of the voltage after the tick).
        self.traces: list[list[torch.Tensor]] = [[] for _ in self.layouts]
        #: Each group's last gains ``c`` ``[E, S]``, newest first.
        self.gains: list[list[torch.Tensor]] = [[] for _ in self.layouts]
        #: Each group's message of this tick and of the last (``None``: none sent), ``[E, S]``.
        self.outbox: list[list[torch.Tensor | None]] = [[None, None] for _ in self.layouts]
        #: The live tick awaiting its actor step: ``(voltages [E, N], fired [E, A] bool)``.
        self.live: tuple[torch.Tensor, torch.Tensor] | None = None
        #: ``credit="bptt"``: the last ``bptt_window + 1`` ticks, newest first: ``(voltages, fired, episode start)``.
        self.window: list[WindowTick] = []
        #: Which copies start an episode on the next stored tick.
        self.fresh: torch.Tensor | None = None
        #: Ticks stored so far.
        self.ticks = 0
        #: Whether a stored tick had a silent neuron (the re-run then applies the firing masks).
        self.asynchronous = False
        #: Each copy's ticks since its episode started, of the voltages the next stored tick acted on ``[E]``.
        self.age: torch.Tensor | None = None
        #: Task copies per stored tick (the stride between a copy's consecutive rows in the buffer).
        self.copies = 0
        #: ``actor_batch="replay"``: the stored traces and gains of the last batches, newest first.
        self.queue: list[tuple[dict[int, torch.Tensor], dict[int, torch.Tensor]]] = []
        #: The ascent ``[S, P + 1]`` each group computed at the last actor step (``None``: it computed none).
        self.ascents: list[torch.Tensor | None] = [None] * len(self.layouts)

    # ------------------------------------------------------------------ the tick
    def _potential(self, voltages: torch.Tensor, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(p [E, P + 1], μ [E, S], σ' [E, S])`` of group ``index`` at ``voltages`` with the current weights."""
        lay = self.layouts[index]
        pre1 = self._pre1(voltages, lay)
        potential = pre1 @ self._actor_views(self.actor, index)[2]
        mu = activate(potential, lay.activation)
        return pre1, mu, activation_derivative(potential, mu, lay.activation)

    def store(self, voltages: torch.Tensor, actions: torch.Tensor, rewards: torch.Tensor,
              next_voltages: torch.Tensor, terminated: torch.Tensor, truncated: torch.Tensor | None = None,
              fired: torch.Tensor | None = None) -> None:
        """Store the tick's ``E`` transitions for the critic and advance every trace by the tick (module doc).

        Args:
            voltages: ``[E, N]`` voltages the agents acted on (``v(τ)``).
            actions: ``[E, num_agents]`` their actions.
            rewards: ``[E]`` rewards of the tick.
            next_voltages: ``[E, N]`` voltages after the tick (the final ones where an episode ended).
            terminated: ``[E]`` episode ends by the task.
            truncated: ``[E]`` time-limit ends (bootstrapped; a trace restarts either way).
            fired: ``[E, num_agents]`` bool, the async clock's firing mask; ``None``: every agent fired.
        """
        with torch.no_grad():
            start = self.buffer.position
            super().store(voltages, actions, rewards, next_voltages, terminated, truncated, fired=fired)
            v = voltages.to(self.device, self.dtype)
            copies = v.shape[0]
            if fired is not None and not self.asynchronous and self.actor_batch == "replay":
                self.asynchronous = not bool(fired.all())
            fired = (torch.ones(copies, self.topology.num_agents, dtype=torch.bool, device=self.device)
                     if fired is None else fired.to(self.device).bool())
            done = terminated.to(self.device).bool()
            if truncated is not None:
                done = done | truncated.to(self.device).bool()
            age = self.age if self.age is not None and self.age.shape[0] == copies else torch.zeros(
                copies, dtype=torch.int64, device=self.device)
            for i, lay in enumerate(self.layouts):
                if self.history[i]:
                    self._advance_trace(i, v, fired[:, lay.agent_slice], done)
            if isinstance(self.buffer, TraceReplayBuffer):
                self.buffer.add_extras(start, *self._stored_traces(age), fired, self.ticks, age)
            if self.actor_batch == "live":  # messages cross a hop per tick (replayed: per update)
                for box in self.outbox:
                    box.insert(0, None)
                    box.pop()
            self.live = (v.clone(), fired.clone())
            self.age = torch.where(done, torch.zeros_like(age), age + 1)
            self.copies = copies
            if self.credit == "bptt" and self.actor_batch == "live":
                fresh = self.fresh if self.fresh is not None else torch.ones(copies, dtype=torch.bool,
                                                                            device=self.device)
                self.window.insert(0, (v.clone(), fired.clone(), fresh.clone()))
                del self.window[self.bptt_window + 1:]
            self.fresh = done.clone()
            self.ticks += 1

    def _advance_trace(self, index: int, v: torch.Tensor, fired: torch.Tensor, done: torch.Tensor) -> None:
        """Push group ``index``'s trace and gain of the tick (``E(τ+1)``, ``c(τ)``) onto its history."""
        lay, leak, hold = self.layouts[index], self.leaks[index], self.holds[index]
        pre1, _, dmu = self._potential(v, index)
        ring, gains = self.traces[index], self.gains[index]
        previous = ring[0] if ring else torch.zeros(v.shape[0], lay.size, pre1.shape[1], device=self.device,
                                                    dtype=self.dtype)
        product = dmu[:, :, None] * pre1[:, None, :]
        if leak > 0:
            advanced = torch.add(previous * leak, product, alpha=1 - leak)
            silent = previous * hold
            gain = dmu * (1 - leak)
        else:
            advanced, silent, gain = product, previous, dmu
        trace = torch.where(fired[:, :, None], advanced, silent)
        trace = torch.where(done[:, None, None], torch.zeros((), dtype=self.dtype, device=self.device), trace)
        ring.insert(0, trace)
        gains.insert(0, torch.where(fired, gain, torch.zeros((), dtype=self.dtype, device=self.device)))
        del ring[self.history[index]:], gains[self.history[index]:]

    def _stored_traces(self, age: torch.Tensor) -> tuple[dict[int, torch.Tensor], dict[int, torch.Tensor]]:
        """The traces ``E(τ − d + 1)`` and gains ``c(τ − d)`` the tick's rows store (``eprop_replay``).

        Read after the tick's advance (``ring[d]``).

        A trace or gain from before the row's episode started (``age < d − 1``, ``age < d``) is 0: the row's
        action depends on nothing before its episode started.
        """
        traces, gains = {}, {}
        zero = torch.zeros((), dtype=self.dtype, device=self.device)
        for i in self.buffer.traces:  # type: ignore[attr-defined]
            d, ring = self.distances[i], self.traces[i]
            trace = ring[d] if len(ring) > d else torch.zeros_like(ring[0])  # type: ignore[index]
            traces[i] = torch.where((age >= d - 1)[:, None, None], trace, zero)  # type: ignore[operator]
        for i in self.buffer.gains:  # type: ignore[attr-defined]
            d, ring = self.distances[i], self.gains[i]
            gain = ring[d] if len(ring) > d else torch.zeros_like(ring[0])  # type: ignore[index]
            gains[i] = torch.where((age >= d)[:, None], gain, zero)  # type: ignore[operator]
        return traces, gains

    def reset_noise(self, done: torch.Tensor | None = None) -> None:
        """Episodes of the copies marked ``done`` (all when ``None``) restart: their noise and newest traces reset.

        A restarted network holds 0 in every agent, so the derivative of its voltages is 0: the newest
        trace restarts at 0. Older traces and messages in flight are about the ended episode and stay
        paired with each other.
        """
        super().reset_noise(done)
        with torch.no_grad():
            zero = torch.zeros((), dtype=self.dtype, device=self.device)
            for ring in self.traces:
                if ring:
                    ring[0] = torch.zeros_like(ring[0]) if done is None else torch.where(
                        done.to(self.device).bool()[:, None, None], zero, ring[0])
            if self.fresh is not None:
                self.fresh = torch.ones_like(self.fresh) if done is None else self.fresh | done.to(self.device).bool()
            if self.age is not None:
                self.age = torch.zeros_like(self.age) if done is None else torch.where(
                    done.to(self.device).bool(), torch.zeros_like(self.age), self.age)

    # ------------------------------------------------------------------ learning
    def _critic_batch(self, batch: Batch, index: int) -> GroupBatch:
        """What the output critic's TD step reads (per-tick replay: stored voltages, target actor's next action)."""
        lay = self.layouts[index]
        pre1, mu, dmu = self._potential(batch.voltages, index)
        return GroupBatch(
            x=batch.voltages[:, lay.context], a=batch.actions[:, lay.agent_slice], reward=batch.rewards,
            not_done=one_minus(batch.terminated), x_next=batch.next_voltages[:, lay.context],
            a_next=self._group_output(batch.next_voltages, index, self.target_actor), pre1=pre1, mu=mu, dmu=dmu,
            mask1=lay.mask1)

    def update(self, batch: Batch | None = None, check_finite: bool = True,
               rows: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """One critic step on a replay batch, then an actor step (module doc: ``actor_batch``).

        ``actor_batch="replay"``: every actor turn, every group steps on the same replayed batch (the
        outputs) or on an earlier one whose messages have reached it (the hidden groups).
        ``actor_batch="live"``: the first call after a ``store`` makes the live tick's actor step.
        ``replay_voltages="current"``: the sampled rows are re-run by the current network first.

        Args:
            batch: Per-tick transitions (``[B, N]`` voltages) for the critic, learned on as given
                (``actor_batch="live"`` only); ``None`` samples ``batch_size`` rows from the buffer.
            check_finite: Raise ``DivergenceError`` if a TD error, slope or parameter is not finite.
            rows: The buffer rows to learn on (``[B]`` indices) instead of a sample (a buffer that keeps
                rows in time: ``actor_batch="replay"`` or ``replay_voltages="current"``).

        Returns:
            ``td_error``, ``td_error/<output group>``; with an actor step ``q_slope`` and
            ``learning_signal/<hidden group>``; 0-d tensors on the device.

        Raises:
            DivergenceError: Naming the group, when ``check_finite`` and a value is NaN or inf.
            LearnerConfigError: On ``batch`` with ``actor_batch="replay"`` (its rows' traces are needed),
                ``rows`` without a buffer that keeps rows in time, or an empty buffer.
        """
        with torch.no_grad():
            replay = self.actor_batch == "replay"
            traces: dict[int, torch.Tensor] = {}
            gains: dict[int, torch.Tensor] = {}
            window: list[WindowTick] = []
            if batch is not None:
                if replay:
                    raise LearnerConfigError("actor_batch='replay' learns on stored rows (their traces): pass "
                                             "rows=<buffer row indices> instead of a batch, or neither to sample")
            elif isinstance(self.buffer, TraceReplayBuffer):
                if rows is None:
                    if len(self.buffer) == 0:
                        raise LearnerConfigError("the replay buffer is empty: store transitions before update()")
                    rows = self.buffer.sample_rows(self.batch_size, self.generator)
                rows = rows.to(self.device)
                batch = self.buffer.gather(rows)
                if self.rerun:
                    batch, traces, gains, window = self._rerun(rows, batch, replay)
                elif replay:
                    traces, gains = self.buffer.gather_traces(rows)
                    if self.credit == "bptt":
                        window = self.buffer.windows(rows, self.replay_window, max(self.copies, 1))
            elif rows is not None:
                raise LearnerConfigError("rows= selects stored rows of a buffer that keeps them in time "
                                         "(actor_batch='replay' or replay_voltages='current'); pass a batch or nothing")
            else:
                batch = self._batch_or_sample(batch)
            actor_turn = self.num_updates % self.policy_delay == 0
            stats: dict[str, torch.Tensor] = {}
            tds: list[torch.Tensor | None] = [None] * len(self.layouts)
            signals: list[torch.Tensor | None] = [None] * len(self.layouts)
            td_sums, outputs = [], 0
            for i, lay in enumerate(self.layouts):
                if not self.is_output[i]:
                    continue
                gb = self._critic_batch(batch, i)
                td = self._kind.td_error(self.critic[i], self.target_critic[i], gb, self.gamma)
                self._kind.critic_step(self.critic[i], self.optimizer_state[i], gb, td, self.lr_critic)
                tds[i] = td
                stats[f"td_error/{lay.name}"] = td.abs().mean()
                td_sums.append(stats[f"td_error/{lay.name}"] * lay.size)
                outputs += lay.size
            if actor_turn and replay:
                self._replay_actor_step(batch, (traces, gains), window, stats, signals)
            elif actor_turn and self.live is not None:
                self._actor_step(stats, signals)
                self.live = None
            if actor_turn:
                self._move_targets()
            self.num_updates += 1
            stats["td_error"] = torch.stack(td_sums).sum() / outputs
            if check_finite:
                self._check_finite(tds, signals)
            return stats

    def _apply_steps(self, steps: list[tuple[int, torch.Tensor, torch.Tensor]], sent: list[torch.Tensor | None],
                     slopes: list[torch.Tensor], stats: dict[str, torch.Tensor]) -> None:
        """Every group steps once every signal of the update is read; post the messages; log ``q_slope``."""
        self.ascents = [None] * len(self.layouts)
        for i, ascent, rows in steps:
            self.ascents[i] = ascent
            if self.actor_lrs[i] != 0.0:
                self._row_step(i, ascent, rows)
        for i, message in enumerate(sent):
            self.outbox[i][0] = message
        stats["q_slope"] = torch.stack(slopes).sum() / sum(lay.size for i, lay in enumerate(self.layouts)
                                                           if self.is_output[i])

    def _replay_actor_step(self, batch: Batch, replayed: tuple[dict[int, torch.Tensor], dict[int, torch.Tensor]],
                           window: list[WindowTick], stats: dict[str, torch.Tensor],
                           signals: list[torch.Tensor | None]) -> None:
        """``actor_batch="replay"``: outputs by DDPG's step at ``(x_b, μ(v_b))``; hidden groups by credit.

        A neuron steps when it fired on the last stored tick (under the sync clock: always), as it computes
        when it fires; every replayed row counts.
        """
        v, size = batch.voltages, batch.voltages.shape[0]
        fired = self.live[1] if self.live is not None else torch.ones(
            1, self.topology.num_agents, dtype=torch.bool, device=self.device)
        gates = [fired[:, lay.agent_slice].any(0) for lay in self.layouts]
        for box in self.outbox:  # messages cross a hop per update
            box.insert(0, None)
            box.pop()
        sent: list[torch.Tensor | None] = [None] * len(self.layouts)
        steps: list[tuple[int, torch.Tensor, torch.Tensor]] = []
        slopes = []
        for i, lay in enumerate(self.layouts):
            if not self.is_output[i]:
                continue
            pre1, mu, dmu = self._potential(v, i)
            slope = self._output_slope(i, v, pre1, mu, dmu)
            sent[i] = dmu * slope
            steps.append((i, sent[i].T @ pre1 / size, gates[i]))
            slopes.append(slope.abs().mean() * lay.size)
        if self.credit == "bptt":
            for i, grad in self.bptt_gradients(v, window, per_copy=False).items():
                steps.append((i, grad / size, gates[i]))
                signals[i] = grad
                stats[f"learning_signal/{self.layouts[i].name}"] = grad.abs().mean()
        else:
            steps += self._replay_eprop_steps(sent, gates, stats, signals)
            if self.queue_length:
                self.queue.insert(0, replayed)
                del self.queue[self.queue_length:]
        self._apply_steps(steps, sent, slopes, stats)

    def _replay_eprop_steps(self, sent: list[torch.Tensor | None], gates: list[torch.Tensor],
                            stats: dict[str, torch.Tensor],
                            signals: list[torch.Tensor | None]) -> list[tuple[int, torch.Tensor, torch.Tensor]]:
        """Each hidden group's ascent: the messages sent last update × its traces on the batch they concern.

        A group at distance ``d`` learns on the batch of ``d`` updates ago (``queue[d − 1]``: its traces and
        gains, re-run or stored), about which the groups one hop closer sent their messages last update; it
        passes them on times its gain.
        """
        steps = []
        for i, lay in enumerate(self.layouts):
            d = self.distances[i]
            if d in (None, 0) or len(self.queue) < d:  # type: ignore[operator]
                continue  # no path to an output, or no batch that old yet
            received = [self.outbox[edge.target][1] for edge in self.edges[i]]
            if any(message is None for message in received):
                continue  # a message has not arrived
            signal = self._learning_signal(i, received)  # type: ignore[arg-type]
            traces, gains = self.queue[d - 1]  # type: ignore[operator]
            steps.append((i, torch.einsum("bs,bsp->sp", signal, traces[i]) / signal.shape[0], gates[i]))
            if i in gains:
                sent[i] = gains[i] * signal
            signals[i] = signal
            stats[f"learning_signal/{lay.name}"] = signal.abs().mean()
        return steps

    def _actor_step(self, stats: dict[str, torch.Tensor], signals: list[torch.Tensor | None]) -> None:
        """The live tick's actor step of every group (outputs: critic slope; hidden: messages × traces)."""
        v, fired = self.live  # type: ignore[misc]
        copies = v.shape[0]
        sent: list[torch.Tensor | None] = [None] * len(self.layouts)
        steps: list[tuple[int, torch.Tensor, torch.Tensor]] = []
        slopes = []
        for i, lay in enumerate(self.layouts):
            if not self.is_output[i]:
                continue
            pre1, mu, dmu = self._potential(v, i)
            slope = self._output_slope(i, v, pre1, mu, dmu)
            on = fired[:, lay.agent_slice].to(self.dtype)
            sent[i] = on * dmu * slope
            steps.append((i, sent[i].T @ pre1 / copies, on.sum(0) > 0))
            slopes.append(slope.abs().mean() * lay.size)
        if self.credit == "bptt":
            steps += self._bptt_steps(v, fired, stats, signals)
        else:
            steps += self._eprop_steps(fired, sent, stats, signals)
        self._apply_steps(steps, sent, slopes, stats)

    def _output_slope(self, index: int, voltages: torch.Tensor, pre1: torch.Tensor, mu: torch.Tensor,
                      dmu: torch.Tensor) -> torch.Tensor:
        """The critic's ``∂Q/∂a`` ``[E, S]`` of output group ``index`` at ``(x(voltages), mu)``."""
        lay = self.layouts[index]
        x, rows = voltages[:, lay.context], voltages[:, 0]
        gb = GroupBatch(x=x, a=mu, reward=rows, not_done=rows, x_next=x, a_next=mu, pre1=pre1, mu=mu, dmu=dmu,
                        mask1=lay.mask1)
        return self._kind.action_gradient(self.critic[index], gb)

    def _eprop_steps(self, fired: torch.Tensor, sent: list[torch.Tensor | None], stats: dict[str, torch.Tensor],
                     signals: list[torch.Tensor | None]) -> list[tuple[int, torch.Tensor, torch.Tensor]]:
        """Each hidden group's ascent from the messages sent last tick and its trace ``2d − 1`` ticks old."""
        steps = []
        for i, lay in enumerate(self.layouts):
            depth = self.history[i] - 1  # 2d
            if not self.history[i] or len(self.traces[i]) <= depth:
                continue  # no path to an output, or not that many ticks stored yet
            received = [self.outbox[edge.target][1] for edge in self.edges[i]]
            if any(message is None for message in received):
                continue  # a message has not arrived
            signal = self._learning_signal(i, received)  # type: ignore[arg-type]
            on = fired[:, lay.agent_slice].to(self.dtype)
            ascent = torch.einsum("es,esp->sp", on * signal, self.traces[i][depth]) / signal.shape[0]
            steps.append((i, ascent, on.sum(0) > 0))
            sent[i] = self.gains[i][depth] * signal
            signals[i] = signal
            stats[f"learning_signal/{lay.name}"] = signal.abs().mean()
        return steps

    def feedback_matrix(self, edge: MessageEdge) -> torch.Tensor:
        """``F`` ``[S_m, S_n]`` of a message edge: the fixed random matrix, or (``feedback="weights"``) ``W_mn`` now."""
        if self.feedback == "weights":
            columns = dict(self.layouts[edge.target].projection_columns)[edge.projection]
            return self.actor[edge.target][:, columns]
        return self.feedback_weights[edge.projection]

    def _learning_signal(self, index: int, received: list[torch.Tensor]) -> torch.Tensor:
        """``L = Σ_m F_mn mᵐ`` ``[B, S]`` of group ``index`` from the messages it received."""
        edges = self.edges[index]
        signal = received[0] @ self.feedback_matrix(edges[0])
        for edge, message in zip(edges[1:], received[1:], strict=True):
            signal = signal + message @ self.feedback_matrix(edge)
        return signal

    def _row_step(self, index: int, ascent: torch.Tensor, rows: torch.Tensor) -> None:
        """Step group ``index``'s actor along ``ascent`` on ``rows`` (masked connections stay 0), then cap norms."""
        mask1 = self.layouts[index].mask1
        if mask1 is not None:
            ascent = ascent * mask1
        weight, lr = self.actor[index], self.actor_lrs[index]
        if self.actor_optimizer == "adam":
            row_adam_ascent_(weight, self.actor_optimizer_state[index], ascent, rows, lr)
        else:
            weight.copy_(torch.where(rows[:, None], weight + lr * ascent, weight))
        if self.actor_max_norm is not None:
            norms = torch.linalg.vector_norm(weight[:, :-1], dim=1, keepdim=True)
            capped = weight[:, :-1] * (self.actor_max_norm / norms.clamp_min(self.actor_max_norm))
            weight[:, :-1] = torch.where(rows[:, None] & (norms > self.actor_max_norm), capped, weight[:, :-1])

    # ------------------------------------------------------------------ the ceiling: truncated BPTT
    def bptt_gradients(self, voltages: torch.Tensor, window: list[WindowTick] | None = None,
                       per_copy: bool = True) -> dict[int, torch.Tensor]:
        """Per-copy ``∂Q(x(τ), μ_out(v(τ)))/∂[K, b]`` ``[E, S, P + 1]`` of every hidden group with a path to an output.

        Truncated BPTT over ``window`` (``neuron_env.agents.eprop_ceiling``; default the live window);
        ``voltages`` is its newest recorded ``v(τ)`` (a copy's, or a replayed row's), whose critic input is
        held fixed. ``per_copy=False``: the sum over rows ``[S, P + 1]``.
        """
        learning = [i for i in range(len(self.layouts)) if not self.is_output[i] and self.distances[i] is not None]
        outputs = [i for i in range(len(self.layouts)) if self.is_output[i]]

        def slope(index: int, pre1: torch.Tensor, potential: torch.Tensor, mu: torch.Tensor) -> torch.Tensor:
            return self._output_slope(index, voltages, pre1, mu, activation_derivative(
                potential, mu, self.layouts[index].activation))

        return window_gradients(self.window if window is None else window, self.actor, learning, outputs,
                                self.topology, self.layouts, self._input, slope, per_copy)

    def _bptt_steps(self, v: torch.Tensor, fired: torch.Tensor, stats: dict[str, torch.Tensor],
                    signals: list[torch.Tensor | None]) -> list[tuple[int, torch.Tensor, torch.Tensor]]:
        """Each hidden group's exact ascent from truncated BPTT, gated by firing as the local rule's."""
        steps = []
        for i, grad in self.bptt_gradients(v).items():
            lay = self.layouts[i]
            on = fired[:, lay.agent_slice].to(self.dtype)
            steps.append((i, (on[:, :, None] * grad).sum(0) / v.shape[0], on.sum(0) > 0))
            signals[i] = grad
            stats[f"learning_signal/{lay.name}"] = grad.abs().mean()
        return steps

    def _check_finite(self, tds: list[torch.Tensor | None], signals: list[torch.Tensor | None]) -> None:
        zero = torch.zeros((), dtype=self.dtype, device=self.device)
        sums = []
        for i in range(len(self.layouts)):
            td, signal = tds[i], signals[i]
            sums += [zero if td is None else td.sum(), self.actor[i].sum(),
                     params_sum(self.critic[i]) if self.critic[i] else zero, zero if signal is None else signal.sum()]
        self._raise_if_not_finite_sums(sums, 4)

    # ------------------------------------------------------------------ persistence
    def state_dict(self, include_buffer: bool = True) -> dict[str, Any]:
        """The core's state plus the feedback weights, traces, gains, messages in flight, live tick and window."""

        def cpu(tensor: torch.Tensor | None) -> torch.Tensor | None:
            return None if tensor is None else tensor.cpu().clone()

        state = super().state_dict(include_buffer)
        state["credit"] = self.credit
        state["distances"] = list(self.distances)
        state["feedback_weights"] = {p: w.cpu().clone() for p, w in self.feedback_weights.items()}
        state["traces"] = [[cpu(t) for t in ring] for ring in self.traces]
        state["gains"] = [[cpu(g) for g in ring] for ring in self.gains]
        state["outbox"] = [[cpu(m) for m in box] for box in self.outbox]
        state["live"] = None if self.live is None else [cpu(t) for t in self.live]
        state["window"] = [[cpu(t) for t in entry] for entry in self.window]
        state["fresh"] = cpu(self.fresh)
        state["ticks"] = self.ticks
        state["asynchronous"] = self.asynchronous
        state["actor_batch"] = self.actor_batch
        state["age"] = cpu(self.age)
        state["copies"] = self.copies
        state["queue"] = [({i: t.cpu().clone() for i, t in traces.items()},
                           {i: g.cpu().clone() for i, g in gains.items()}) for traces, gains in self.queue]
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore ``state_dict`` (same topology, critic kind and credit).

        Raises:
            CheckpointError: If the state belongs to another learner, credit or topology.
        """
        check_checkpoint(state, self.name, {"credit": self.credit, "groups": [lay.name for lay in self.layouts],
                                            "distances": list(self.distances)})
        saved = state.get("actor_batch", "live")  # a checkpoint from before the option stepped live
        if saved != self.actor_batch:
            raise CheckpointError(f"checkpoint has actor_batch={saved!r}; this 'eprop' learner has actor_batch="
                                  f"{self.actor_batch!r}: build it with the checkpoint's options")
        if set(state["feedback_weights"]) != set(self.feedback_weights):
            raise CheckpointError(f"checkpoint has feedback weights for projections "
                                  f"{sorted(state['feedback_weights'])}; this learner expects "
                                  f"{sorted(self.feedback_weights)}")
        super().load_state_dict(state)

        def dev(tensor: torch.Tensor | None) -> torch.Tensor | None:
            if tensor is None:
                return None
            return tensor.to(self.device, tensor.dtype if tensor.dtype == torch.bool else self.dtype).clone()

        self.feedback_weights = {p: dev(w) for p, w in state["feedback_weights"].items()}  # type: ignore[misc]
        self.traces = [[dev(t) for t in ring] for ring in state["traces"]]  # type: ignore[misc]
        self.gains = [[dev(g) for g in ring] for ring in state["gains"]]  # type: ignore[misc]
        self.outbox = [[dev(m) for m in box] for box in state["outbox"]]
        self.live = None if state["live"] is None else (dev(state["live"][0]), dev(state["live"][1]))  # type: ignore
        self.window = [tuple(dev(t) for t in entry) for entry in state["window"]]  # type: ignore[misc]
        self.fresh = dev(state["fresh"])
        self.ticks = int(state["ticks"])
        self.asynchronous = bool(state.get("asynchronous", False))
        age = state.get("age")
        self.age = None if age is None else age.to(self.device).clone()
        self.copies = int(state.get("copies", 0))
        self.queue = [({int(i): dev(t) for i, t in traces.items()}, {int(i): dev(g) for i, g in gains.items()})
                      for traces, gains in state.get("queue", [])]  # type: ignore[misc]

    def __repr__(self) -> str:
        return (f"EpropLearner({self.topology!r}, credit={self.credit!r}, critic={self.critic_kind!r}, "
                f"context={self.critic_context!r}, device={self.device})")
