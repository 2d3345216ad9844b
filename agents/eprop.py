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
Every neuron keeps, per input synapse, an eligibility trace ``E`` (the derivative of its own voltage with
respect to that weight through its own dynamics, filtered by its leak ``λ``) and its gain ``c = (1 − λ) σ'(u)``.
An output neuron steps by DDPG's actor step along the joint critic's slope ``∂Q/∂a`` and sends
``σ'(u) ∂Q/∂a`` to its presynaptic neurons. A hidden neuron at distance ``d`` from the outputs sums the
messages it receives through fixed random feedback weights ``F`` (``feedback="weights"``: the true ones)
into its learning signal ``L``, steps along ``L`` times its trace ``2d − 1`` ticks old, and passes ``c L``
on. The equations, their timing and their sources (e-prop, RFLO, RTRRL) are the page of
``neuron_env.agents.eprop_rule``, whose functions compute them.

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
    back (fewer at its episode's start), noise-free, with the recorded inputs and firing masks, every
    hidden neuron's trace running forward with it from 0, exactly as on a live tick (R2D2's burn-in;
    ``neuron_env.agents.eprop_rerun``). The critic learns on the re-run ``v(τ)`` and ``v(τ+1)``, the actor
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
    N. Heess, J. J. Hunt, T. P. Lillicrap, D. Silver, "Memory-based control with recurrent neural
    networks" (RDPG), 2015, https://arxiv.org/abs/1512.04455.
    S. Kapturowski et al., "Recurrent experience replay in distributed reinforcement learning"
    (R2D2), ICLR 2019.
    The rule's (e-prop, RFLO, RTRRL): ``neuron_env.agents.eprop_rule``.

This module holds the learner's options and its updates (the critic's TD step, the actor steps). Its
state in time (traces, gains, messages in flight, queued batches, the live ceiling's window) and the tick
that advances it are its base's, ``EpropNetwork`` (``neuron_env.agents.eprop_network``). Its tensor
functions are ``neuron_env.agents.eprop_rule`` (wiring, traces, learning signals, actor steps),
``neuron_env.agents.eprop_rerun`` (the re-run) and ``neuron_env.agents.eprop_ceiling`` (the ceiling's
BPTT); the buffer that keeps rows in time is ``neuron_env.agents.eprop_replay``; noise, targets and the
critic are the shared core (``neuron_env.agents.off_policy``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from neuron_env.agents.eprop_ceiling import WindowTick, window_gradients
from neuron_env.agents.eprop_network import ACTOR_BATCHES, CREDITS, FEEDBACKS, EpropNetwork
from neuron_env.agents.eprop_replay import TraceReplayBuffer
from neuron_env.agents.eprop_rerun import Potentials, window_ticks
from neuron_env.agents.eprop_rule import (
    MessageEdge,
    Step,
    hidden_ascent,
    learning_signal,
    output_ascent,
    output_distances,
    row_adam_ascent_,
    row_ascent_,
)
from neuron_env.agents.errors import LearnerConfigError
from neuron_env.agents.off_policy import OffPolicyConfig
from neuron_env.agents.optim import params_sum
from neuron_env.agents.replay import Batch
from neuron_env.agents.tensors import GroupBatch, activation_derivative, one_minus

__all__ = ["ACTOR_BATCHES", "CREDITS", "FEEDBACKS", "EpropConfig", "EpropLearner", "MessageEdge", "output_distances",
           "row_adam_ascent_"]


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


class EpropLearner(EpropNetwork):
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

    def _critic_batch(self, batch: Batch, index: int,
                      potential: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None) -> GroupBatch:
        """What the output critic's TD step reads (per-tick replay: stored voltages, target actor's next action).

        ``potential``: ``_potential(batch.voltages, index)`` when the caller has it already.
        """
        lay = self.layouts[index]
        pre1, mu, dmu = self._potential(batch.voltages, index) if potential is None else potential
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
            # each output group's (p, μ, σ') at the batch's v(τ): its critic batch and its replayed actor step
            # read the same, as the critic's step leaves the actor as it is
            at_v: Potentials = {}
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
                    batch, traces, gains, stacked, at_v = self._rerun_rows(rows, batch, replay, self._outputs)
                    if self.credit == "bptt" and replay:
                        window = window_ticks(stacked)
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
                if i not in at_v:
                    at_v[i] = self._potential(batch.voltages, i)
                gb = self._critic_batch(batch, i, at_v[i])
                td = self._kind.td_error(self.critic[i], self.target_critic[i], gb, self.gamma)
                self._kind.critic_step(self.critic[i], self.optimizer_state[i], gb, td, self.lr_critic)
                tds[i] = td
                stats[f"td_error/{lay.name}"] = td.abs().mean()
                td_sums.append(stats[f"td_error/{lay.name}"] * lay.size)
                outputs += lay.size
            if actor_turn and replay:
                self._replay_actor_step(batch, (traces, gains), window, stats, signals, at_v)
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

    def _apply_steps(self, steps: list[Step], sent: list[torch.Tensor | None],
                     slopes: list[torch.Tensor], stats: dict[str, torch.Tensor]) -> None:
        """Every group steps once every signal of the update is read; post the messages; log ``q_slope``."""
        self.ascents = [None] * len(self.layouts)
        for i, ascent, rows in steps:
            self.ascents[i] = ascent
            if self.actor_lrs[i] != 0.0:
                adam = self.actor_optimizer_state[i] if self.actor_optimizer == "adam" else None
                row_ascent_(self.actor[i], ascent, rows, self.actor_lrs[i], adam=adam, mask1=self.layouts[i].mask1,
                            max_norm=self.actor_max_norm)
        for i, message in enumerate(sent):
            self.outbox[i][0] = message
        stats["q_slope"] = torch.stack(slopes).sum() / sum(lay.size for i, lay in enumerate(self.layouts)
                                                           if self.is_output[i])

    def _replay_actor_step(self, batch: Batch, replayed: tuple[dict[int, torch.Tensor], dict[int, torch.Tensor]],
                           window: list[WindowTick], stats: dict[str, torch.Tensor],
                           signals: list[torch.Tensor | None], potentials: Potentials | None = None) -> None:
        """``actor_batch="replay"``: outputs by DDPG's step at ``(x_b, μ(v_b))``; hidden groups by credit.

        A neuron steps when it fired on the last stored tick (under the sync clock: always), as it computes
        when it fires; every replayed row counts. A hidden group at distance ``d`` learns on the batch of ``d``
        updates ago (``queue[d − 1]``: its traces and gains, re-run or stored), about which the groups one hop
        closer sent their messages last update. ``potentials``: the output groups' ``_potential`` at the batch.
        """
        v, size = batch.voltages, batch.voltages.shape[0]
        fired = self.live[1] if self.live is not None and not self.live_all_fired else None
        self._shift_outbox()  # messages cross a hop per update
        steps, sent, slopes = self._output_steps(v, fired, per_row=False, potentials=potentials)
        if self.credit == "bptt":
            for i, grad in self.bptt_gradients(v, window, per_copy=False, masked=self.asynchronous).items():
                steps.append((i, grad / size, None if fired is None else fired[:, self.layouts[i].agent_slice].any(0)))
                signals[i] = grad
                stats[f"learning_signal/{self.layouts[i].name}"] = grad.abs().mean()
        else:
            paired = [None if d in (None, 0) or len(self.queue) < d  # type: ignore[operator]
                      else (self.queue[d - 1][0][i], self.queue[d - 1][1].get(i))  # type: ignore[operator]
                      for i, d in enumerate(self.distances)]
            steps += self._hidden_steps(paired, fired, False, sent, stats, signals)
            if self.queue_length:
                self.queue.insert(0, replayed)
                del self.queue[self.queue_length:]
        self._apply_steps(steps, sent, slopes, stats)

    def _actor_step(self, stats: dict[str, torch.Tensor], signals: list[torch.Tensor | None]) -> None:
        """The live tick's actor step of every group (outputs: critic slope; hidden: messages × traces).

        A hidden group at distance ``d`` pairs the messages sent last tick with its trace ``2d − 1`` ticks old
        and passes them on times its gain ``2d`` ticks old.
        """
        v, fired = self.live  # type: ignore[misc]
        if self.live_all_fired:
            fired = None
        steps, sent, slopes = self._output_steps(v, fired, per_row=True)
        if self.credit == "bptt":
            steps += self._bptt_steps(v, fired, stats, signals)
        else:
            paired = [(ring[depth - 1], gains[depth - 1]) if depth and len(ring) >= depth else None
                      for ring, gains, depth in zip(self.traces, self.gains, self.history, strict=True)]
            steps += self._hidden_steps(paired, fired, True, sent, stats, signals)
        self._apply_steps(steps, sent, slopes, stats)

    def _output_steps(self, voltages: torch.Tensor, fired: torch.Tensor | None, per_row: bool,
                      potentials: Potentials | None = None
                      ) -> tuple[list[Step], list[torch.Tensor | None], list[torch.Tensor]]:
        """Every output group's DDPG step at ``(x(v), μ(v))``, the messages it sends and its ``q_slope`` term.

        Args:
            voltages: ``[B, N]``: the live tick's copies, or a replayed batch.
            fired: ``[E, num_agents]`` bool: a neuron steps where it fired in some copy; ``None``: every neuron
                fired (the same steps as an all-true mask, with no mask applied).
            per_row: Whether ``fired`` is per row of ``voltages`` (the live tick: a row where the neuron was
                silent sends no message and adds nothing to its ascent), or the last stored tick's (a replayed
                batch: every row counts).
            potentials: Each output group's ``_potential(voltages, i)`` where the caller has it already.

        Returns:
            The output groups' steps; the messages (``[B, S]`` per output group, ``None`` for the others); each
            output group's mean ``|∂Q/∂a|`` times its size.
        """
        sent: list[torch.Tensor | None] = [None] * len(self.layouts)
        steps: list[Step] = []
        slopes = []
        for i, lay in enumerate(self.layouts):
            if not self.is_output[i]:
                continue
            pre1, mu, dmu = potentials[i] if potentials and i in potentials else self._potential(voltages, i)
            slope = self._output_slope(i, voltages, pre1, mu, dmu)
            own = None if fired is None else fired[:, lay.agent_slice]
            on = own.to(self.dtype) if per_row and own is not None else None
            sent[i], ascent = output_ascent(pre1, dmu, slope, on)
            steps.append((i, ascent, None if own is None else own.any(0)))
            slopes.append(slope.abs().mean() * lay.size)
        return steps, sent, slopes

    def _hidden_steps(self, paired: list[tuple[torch.Tensor, torch.Tensor | None] | None], fired: torch.Tensor | None,
                      per_row: bool, sent: list[torch.Tensor | None], stats: dict[str, torch.Tensor],
                      signals: list[torch.Tensor | None]) -> list[Step]:
        """Each hidden group's ascent from the messages sent last tick (update) and the traces they are about.

        Args:
            paired: Per group, the traces ``[B, S, P + 1]`` and gains ``[B, S]`` (``None``: it relays no message)
                that its arriving messages are about; ``None``: none yet, or no path to an output.
            fired: As ``_output_steps``'s.
            per_row: As ``_output_steps``'s.
            sent: This step's messages, where each group's ``c L`` is posted.
            stats: Where ``learning_signal/<group>`` is logged.
            signals: Where each group's learning signal ``L`` is kept.

        Returns:
            The steps of the groups whose messages have arrived.
        """
        steps = []
        for i, lay in enumerate(self.layouts):
            if paired[i] is None:
                continue
            received = [self.outbox[edge.target][1] for edge in self.edges[i]]
            if any(message is None for message in received):
                continue  # a message has not arrived
            feedback = [self.feedback_matrix(edge) for edge in self.edges[i]]
            signal = learning_signal(received, feedback)  # type: ignore[arg-type]
            traces, gains = paired[i]  # type: ignore[misc]
            own = None if fired is None else fired[:, lay.agent_slice]
            on = own.to(self.dtype) if per_row and own is not None else None
            steps.append((i, hidden_ascent(signal, traces, on), None if own is None else own.any(0)))
            if gains is not None:
                sent[i] = gains * signal
            signals[i] = signal
            stats[f"learning_signal/{lay.name}"] = signal.abs().mean()
        return steps

    def _output_slope(self, index: int, voltages: torch.Tensor, pre1: torch.Tensor, mu: torch.Tensor,
                      dmu: torch.Tensor) -> torch.Tensor:
        """The critic's ``∂Q/∂a`` ``[E, S]`` of output group ``index`` at ``(x(voltages), mu)``."""
        lay = self.layouts[index]
        x, rows = voltages[:, lay.context], voltages[:, 0]
        gb = GroupBatch(x=x, a=mu, reward=rows, not_done=rows, x_next=x, a_next=mu, pre1=pre1, mu=mu, dmu=dmu,
                        mask1=lay.mask1)
        return self._kind.action_gradient(self.critic[index], gb)

    # ------------------------------------------------------------------ the ceiling: truncated BPTT
    def bptt_gradients(self, voltages: torch.Tensor, window: list[WindowTick] | None = None,
                       per_copy: bool = True, masked: bool | None = None) -> dict[int, torch.Tensor]:
        """Per-copy ``∂Q(x(τ), μ_out(v(τ)))/∂[K, b]`` ``[E, S, P + 1]`` of every hidden group with a path to an output.

        Truncated BPTT over ``window`` (``neuron_env.agents.eprop_ceiling``; default the live window);
        ``voltages`` is its newest recorded ``v(τ)`` (a copy's, or a replayed row's), whose critic input is
        held fixed. ``per_copy=False``: the sum over rows ``[S, P + 1]``. ``masked``: whether a firing mask
        of the window may hold a silent neuron (``False`` skips the masks, the same numbers); ``None``: the
        live window's own record, else ``True``.
        """
        learning = [i for i in range(len(self.layouts)) if not self.is_output[i] and self.distances[i] is not None]
        outputs = [i for i in range(len(self.layouts)) if self.is_output[i]]

        def slope(index: int, pre1: torch.Tensor, potential: torch.Tensor, mu: torch.Tensor) -> torch.Tensor:
            return self._output_slope(index, voltages, pre1, mu, activation_derivative(
                potential, mu, self.layouts[index].activation))

        if masked is None:
            masked = window is not None or not (len(self.window_all_fired) == len(self.window)
                                                and all(self.window_all_fired))
        return window_gradients(self.window if window is None else window, self.actor, learning, outputs,
                                self.topology, self.layouts, self._input, slope, per_copy, masked)

    def _bptt_steps(self, v: torch.Tensor, fired: torch.Tensor | None, stats: dict[str, torch.Tensor],
                    signals: list[torch.Tensor | None]) -> list[Step]:
        """Each hidden group's exact ascent from truncated BPTT, gated by firing as the local rule's."""
        steps = []
        for i, grad in self.bptt_gradients(v).items():
            lay = self.layouts[i]
            if fired is None:  # every copy fired: 1 · grad is grad
                steps.append((i, grad.sum(0) / v.shape[0], None))
            else:
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

    def __repr__(self) -> str:
        return (f"EpropLearner({self.topology!r}, credit={self.credit!r}, critic={self.critic_kind!r}, "
                f"context={self.critic_context!r}, device={self.device})")
