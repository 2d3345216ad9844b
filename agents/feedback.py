"""``FeedbackDDPG``: output neurons learn by DDPG, hidden neurons by feedback from their neighbours.

The output neurons learn exactly as in ``LocalDDPG``: each has its own critic ``Q^n``
(``critic="mlp"`` on the ``"task"`` context by default), trained by TD from replay with
target copies, and steps its actor along that critic's action slope. The hidden neurons
have no critic. A hidden neuron's stand-in for ``∂Q/∂a`` is a *message* from its
postsynaptic neighbours, weighted by its feedback synapses, and it reaches the neuron
through the network's tick delay, one group per update, like a pipelined backward pass.

The rule
--------
For every neuron ``n`` of a group and every transition ``i`` of the batch it learns on::

    output n:   gⁿᵢ = ∂Qⁿ/∂a (xᵢ, μⁿ(vᵢ))                   (its own critic, after its TD step)
    hidden n:   gⁿᵢ = Σ_m F_mn eᵐᵢ                          (m: the neurons n projects to)
    message:    eⁿᵢ = σ'(Kⁿ vᵢ + bⁿ) gⁿᵢ                      (sent to n's presynaptic neurons)
    actor:      [Kⁿ, bⁿ] += η_A mean_i gⁿᵢ σ'(Kⁿ vᵢ + bⁿ) [vᵢ, 1]

The feedback weight ``F_mn`` (``feedback=``):

``"random"`` (feedback alignment)
    a fixed random matrix ``R`` of the forward block's shape, drawn once from ``seed``
    uniform in ``±1/√fan_in`` of the target group (the forward init's bound, or
    ``±feedback_scale``), zero where the forward block is masked.
``"sign"`` (sign-symmetric feedback)
    ``sign(W_mn) · |R_mn|``: the current sign of the forward weight with the fixed random
    magnitude of ``"random"`` (Liao et al.'s random-magnitude sign-concordant feedback).
``"direct"`` (direct feedback alignment, Nøkland 2016)
    every hidden neuron reads the *output* neurons' messages directly, through a fixed random
    matrix ``B`` drawn as ``"random"``'s (bound ``1/√fan_in`` of the output group, or
    ``±feedback_scale``): ``gⁿᵢ = Σ_o B_on eᵒᵢ``. It assumes a feedback synapse from each output
    neuron to each hidden neuron that reaches it; through those its feedback path is one hop, so
    every hidden group learns on the previous update's batch (its *depth* is 1), however deep it is
    in the forward network. It reads no other hidden group's messages or weights.
``"weights"`` (the ceiling control, pipelined backprop)
    the true current forward weight ``W_mn``. Not weight-transport-free: a reference, the
    ceiling of the design page (``docs/design.md``).
``"backprop"`` (reference only, not local)
    ``F = W`` and no pipeline: every group learns on the current batch and the messages
    run down the whole network within one update (an exact backward pass of the output
    critic's slope). It fails the locality audit by design.

Pipelining through the tick delay
---------------------------------
A group's *depth* is its distance from the outputs (outputs 0, the last hidden layer 1, …;
with skip connections, the longest path). At update ``t`` the outputs learn on the new replay
batch ``t``; a group of depth ``d`` learns on batch ``t − d`` with the messages its
postsynaptic groups computed about that batch. In an MLP those messages were sent at update
``t − 1``; over a skip connection a message waits ``d − d_m`` updates in the synapse. The
learner keeps the voltages of the last ``depth`` batches and each group's recent messages;
a group whose messages have not arrived yet (the first ``d`` updates) does not step. So at
update ``t`` a change of the output neurons' parameters changes the last hidden layer's
update (``feedback="weights"``/``"sign"``: it reads their weights now; ``"random"``: through
their message, one update later) and reaches a group ``k`` hops away no sooner than update
``t + k − 1``.

A group learns on the voltages its batch was sampled with (``replay_voltages``, see
``neuron_env.agents.off_policy``): with ``"current"`` (the default here) the stored observation settled by the
network as it was when the batch was sampled, noise-free, as DDPG evaluates its actor on
replayed states; with ``"stored"`` the voltages as acted, exploration noise included. ``σ'`` is
evaluated with the current parameters at those voltages, and a queued batch is not settled
again. With noise-free voltages and unchanged weights, ``"weights"`` gives exactly autograd's
``∂Q/∂a_n`` through the network (the critic input ``x`` held fixed).

Defaults
--------
``FeedbackConfig``'s defaults (the learner's only ones: ``FeedbackDDPG(topology)`` uses them) are
the framework of Stable-Baselines3 DDPG (output critic on the task observation and its action,
64 units; per-weight Adam at 1e-3; batch 256; noise on the outputs only;
``replay_voltages="current"``), not ``LocalDDPG``'s: with them the ceiling reaches SB3 DDPG on
Pendulum-v1, with ``LocalDDPG``'s it does not learn (``docs/results/credit-assignment``).

What is local
-------------
Hidden neuron ``n`` reads its own parameters and feedback synapses, its presynaptic voltages
for a replayed transition, and its postsynaptic neighbours' messages ``eᵐ`` (and, for
``"sign"``/``"weights"``, their weights onto ``n``). Output neurons read what ``LocalDDPG``'s
do (their critic input, the reward, and the next state settled by the target network).
Every neuron steps at once; there is no global backward pass (except ``"backprop"``).

Exploration: every acting neuron adds its own noise (scaled by ``noise_scale_hidden`` in the
hidden groups; 0 by default, so only the outputs explore). ``freeze_hidden``
(``lr_actor_hidden = 0``) is the floor control: hidden neurons keep their init, messages
still flow. With ``policy_delay > 1`` the pipeline advances every update and every group
steps on actor updates only.

Statistics of ``update``: ``td_error`` (mean ``|D|`` over output neurons), ``td_error/<group>``,
``q_slope`` (mean ``|∂Q/∂a|`` over output neurons) and ``feedback_slope/<group>`` (mean ``|g|``
of each hidden group that received its messages this update).

References:
    T. P. Lillicrap, D. Cownden, D. B. Tweed, C. J. Akerman, "Random synaptic feedback
    weights support error backpropagation for deep learning", Nature Communications 7,
    13276 (2016), https://doi.org/10.1038/ncomms13276.
    Q. Liao, J. Z. Leibo, T. Poggio, "How important is weight symmetry in
    backpropagation?", AAAI 2016, https://arxiv.org/abs/1510.05067.
    A. Kosson, V. Chiley, A. Venigalla, J. Hestness, U. Köster, "Pipelined backpropagation
    at scale: training large models without batches", MLSys 2021,
    https://arxiv.org/abs/2003.11666.

The rule and its pipeline (queued batches, messages in flight) are this module; replay, noise,
targets and the output critics are the shared core (``neuron_env.agents.off_policy``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from neuron_env.agents.errors import CheckpointError, LearnerConfigError
from neuron_env.agents.network import check_checkpoint, require_settled
from neuron_env.agents.off_policy import OffPolicyConfig, OffPolicyNetwork
from neuron_env.agents.optim import params_sum
from neuron_env.agents.replay import Batch
from neuron_env.agents.tensors import GroupBatch, activation_derivative, constant, one_minus, scalar

from neuron_env.dynamics import activate
from neuron_env.topology import NetworkWeights, Topology

FEEDBACK_KINDS: tuple[str, ...] = ("random", "sign", "direct", "weights", "backprop")


@dataclass
class FeedbackConfig(OffPolicyConfig):
    """Options of ``FeedbackDDPG`` (``neuron-env train --learner feedback``): ``OffPolicyConfig``'s, plus below.

    The critic options (``critic``, ``critic_context``, ``critic_hidden``, ``lr_critic``) apply
    to the output neurons only; hidden neurons have no critic. The defaults below differ from
    ``LocalDDPG``'s: they are the framework of Stable-Baselines3 DDPG (the output critic sees the
    task observation and its action, 64 hidden units; per-weight Adam at 1e-3 on the actor; batch
    256; exploration noise on the outputs only; replay re-settled by the current network), with
    which the ceiling (``feedback="weights"``) reaches SB3 DDPG on Pendulum-v1
    (``docs/results/credit-assignment``).
    """

    critic_context: str = "observation"
    """Output critic input: ``observation`` (the task observation, as DDPG's critic), ``task``, ``presynaptic``."""
    critic_hidden: int = 64
    """Hidden units per layer of the output neurons' ``mlp`` critics."""
    actor_optimizer: str = "adam"
    """Actor step rule: ``adam`` (per-weight Adam, local) or ``sgd``."""
    lr_actor: float = 1e-3
    """Actor step size."""
    batch_size: int = 256
    """Transitions per update."""
    noise_scale_hidden: float | None = 0.0
    """Noise scale of the hidden neurons (0: only the outputs explore, as in DDPG); ``None``: ``noise_scale``."""
    replay_voltages: str = "current"
    """``current``: a replayed observation is settled by the current network (DDPG's actor update); ``stored``."""
    feedback: str = "random"
    """Hidden neurons' feedback: ``random`` (FA), ``sign``, ``direct`` (DFA), ``weights`` (ceiling), ``backprop``."""
    feedback_scale: float | None = None
    """Bound of the random feedback magnitudes (``random``/``sign``/``direct``); default ``1/sqrt(fan_in)``."""


@dataclass(frozen=True)
class FeedbackEdge:
    """One projection from a hidden group ``n`` to an agent group ``m``, seen from ``n``.

    Attributes:
        projection: Index of the projection in ``topology.projections``; under ``"direct"`` a negative key
            (``direct_key``) of a feedback matrix with no forward block.
        target: Index of ``m`` in ``layouts``.
        columns: The projection's columns in ``m``'s actor tensor (``W_mn`` is ``actor[m][:, columns]``).
        delay: Updates the message of ``m`` waits before ``n`` reads it (``depth_n − depth_m``).
    """

    projection: int
    target: int
    columns: slice
    delay: int


@dataclass
class _Signals:
    """What one update computes per group (``layouts`` order; ``None`` where a group computed none)."""

    slopes: list[torch.Tensor | None]
    """``g`` ``[B, S]``: the critic's ``∂Q/∂a`` (outputs) or the received message sum (hidden)."""
    batches: list[GroupBatch | None]
    """What the group's actor step reads."""
    messages: list[torch.Tensor | None]
    """``e = σ' g`` ``[B, S]``, sent to the presynaptic groups."""
    tds: list[torch.Tensor | None]
    """TD errors ``[B, S]`` (outputs)."""

    @classmethod
    def empty(cls, count: int) -> _Signals:
        """No group's signals yet."""
        return cls([None] * count, [None] * count, [None] * count, [None] * count)


def _times(value: torch.Tensor, count: int) -> torch.Tensor:
    """``value * count`` (``value`` itself for 1: the same number, one op fewer)."""
    return value if count == 1 else value * count


def _total(values: list[torch.Tensor]) -> torch.Tensor:
    """The sum of 0-d ``values`` (the one value itself: a sum of one non-negative number is that number)."""
    return values[0] if len(values) == 1 else torch.stack(values).sum()


def group_depths(topology: Topology) -> dict[str, int | None]:
    """Longest path from each agent group to an output group (outputs 0); ``None`` if none reaches one."""
    depth: dict[str, int | None] = {}

    def visit(name: str) -> int | None:
        if name not in depth:
            if topology.group[name].role == "output":
                depth[name] = 0
            else:
                below = [visit(p.target) for p in topology.projections if p.source == name]
                reached = [d for d in below if d is not None]
                depth[name] = 1 + max(reached) if reached else None
        return depth[name]

    return {g.name: visit(g.name) for g in topology.agent_groups}


def reaches(topology: Topology, source: str, target: str) -> bool:
    """Whether a forward path leads from group ``source`` to group ``target``."""
    frontier, seen = [source], {source}
    while frontier:
        name = frontier.pop()
        for projection in topology.projections:
            if projection.source == name and projection.target not in seen:
                if projection.target == target:
                    return True
                seen.add(projection.target)
                frontier.append(projection.target)
    return False


def direct_key(hidden: int, output: int, groups: int) -> int:
    """The key of ``"direct"``'s feedback matrix from output group ``output`` to hidden group ``hidden``.

    Negative, so it never collides with a projection index (the keys of ``"random"``/``"sign"``).
    """
    return -1 - (hidden * groups + output)


class FeedbackDDPG(OffPolicyNetwork):
    """DDPG output neurons; hidden neurons learn from their neighbours' messages (module doc).

    Args:
        topology: An acyclic, leak-free network (settled mode).
        config: Its options (``FeedbackConfig``: the one set of defaults); ``None``: the defaults.
        device: Torch device of every tensor.
        seed: Seed of weights, critics, noise, replay sampling and (``seed + 2``) the random
            feedback matrices.
        weights: Initial network weights; ``None`` draws ``NetworkWeights.init(topology, seed)``.
        dtype: Floating dtype.
        **options: ``FeedbackConfig`` fields overriding ``config``'s: ``feedback`` (``"random"``,
            ``"sign"``, ``"weights"`` or ``"backprop"``, module doc), ``feedback_scale`` (bound of the
            random feedback magnitudes; ``None``: ``1/sqrt(fan_in)`` of the target group, as the
            forward init), the output critics' options (``critic``, ``critic_context``, …) and the
            shared ones (``lr_actor_hidden`` is the hidden groups' step size; 0 freezes them).

    Raises:
        LearnerConfigError: On an unknown ``feedback``, a bad ``feedback_scale``, ``per_tick``
            granularity, or a cyclic or leaky topology.
    """

    name = "feedback"
    config_class = FeedbackConfig
    #: One settled forward pass per task step: acyclic, leak-free networks on the sync clock (``agents.capabilities``).
    topologies = ("acyclic",)
    clocks = ("sync",)
    finite_columns = ("td_error", "actor", "critic", "feedback_slope")
    divergence_advice = "lower lr_actor/lr_critic (or feedback_scale)"
    replays_hidden_actions = False  # hidden groups have no critic: re-settled replay keeps the outputs' actions

    def _build(self, topology: Topology, *, device: str | torch.device, seed: int, weights: NetworkWeights | None,
               dtype: torch.dtype, feedback: str, feedback_scale: float | None, granularity: str | None,
               **settings: Any) -> None:
        require_settled(topology, "feedback")
        if feedback not in FEEDBACK_KINDS:
            raise LearnerConfigError(f"feedback={feedback!r} is unknown; choose one of {FEEDBACK_KINDS}")
        if granularity not in (None, "settled"):
            raise LearnerConfigError(
                f"granularity={granularity!r}: learner 'feedback' learns settled transitions only; "
                "leave granularity unset (or use --learner ddpg for per_tick)")
        if feedback_scale is not None:
            if feedback not in ("random", "sign", "direct"):
                raise LearnerConfigError(
                    f"feedback_scale={feedback_scale!r} applies to feedback='random', 'sign' or 'direct' only; "
                    f"feedback={feedback!r} uses the forward weights: leave feedback_scale unset")
            if not (math.isfinite(feedback_scale) and feedback_scale > 0):
                raise LearnerConfigError(f"feedback_scale={feedback_scale!r} must be a finite number > 0")
        is_output = [group.role == "output" for group in topology.agent_groups]
        self._build_off_policy(topology, device=device, seed=seed, weights=weights, dtype=dtype,
                               critic_groups=is_output, granularity="settled", **settings)
        self.feedback = feedback
        self.feedback_scale = None if feedback_scale is None else float(feedback_scale)
        #: Whether each group (``layouts`` order, which is ``agent_groups`` order) is an output group (has a critic).
        self.is_output = is_output
        depth_by_name = group_depths(topology)
        #: Hops of each group's feedback path to the outputs (``None``: no path to an output, never steps): its
        #: distance from the outputs, or 1 for every hidden group under ``"direct"`` (its feedback synapses).
        self.depths: list[int | None] = [
            depth if depth is None or feedback != "direct" else min(depth, 1)
            for depth in (depth_by_name[lay.name] for lay in self.layouts)]
        #: The feedback edges of each group (empty for outputs and groups that reach none).
        self.edges: list[tuple[FeedbackEdge, ...]] = self._feedback_edges()
        #: Fixed random feedback matrix per projection (``"random"``/``"sign"``, shaped like ``W``) or per direct
        #: edge (``"direct"``: ``[S_out, S_n]``, keyed by ``direct_key``).
        self.feedback_weights: dict[int, torch.Tensor] = (
            self._random_feedback(seed + 2) if feedback in ("random", "sign", "direct") else {})
        self._build_pipeline()

    def _feedback_edges(self) -> list[tuple[FeedbackEdge, ...]]:
        """The projections each hidden group sends to a group that reaches an output, with their delays.

        Under ``"direct"``: one edge from each hidden group to each output group it reaches, keyed by a
        negative index (``direct_key``), with delay 1.
        """
        topology = self.topology
        index = {lay.name: i for i, lay in enumerate(self.layouts)}
        if self.feedback == "direct":
            return [tuple(FeedbackEdge(direct_key(i, m, len(self.layouts)), m, slice(0, 0), 1)
                          for m in range(len(self.layouts))
                          if self.is_output[m] and reaches(topology, lay.name, self.layouts[m].name))
                    if not self.is_output[i] and self.depths[i] is not None else ()
                    for i, lay in enumerate(self.layouts)]
        edges_by_group = []
        for i, lay in enumerate(self.layouts):
            edges = []
            if not self.is_output[i] and self.depths[i] is not None:
                for p, projection in enumerate(topology.projections):
                    if projection.source != lay.name or projection.target not in index:
                        continue
                    m = index[projection.target]
                    if self.depths[m] is None:
                        continue
                    columns = dict(self.layouts[m].projection_columns)[p]
                    delay = self.depths[i] - self.depths[m]  # type: ignore[operator]  # both set here
                    edges.append(FeedbackEdge(p, m, columns, delay))
            edges_by_group.append(tuple(edges))
        return edges_by_group

    def _random_feedback(self, seed: int) -> dict[int, torch.Tensor]:
        """One fixed random matrix per feedback edge's projection, uniform in ``±bound``, masked like ``W``."""
        topology = self.topology
        matrices = {}
        generator = torch.Generator().manual_seed(seed)  # on the CPU: the same matrices on every device
        for source, edges in enumerate(self.edges):
            for edge in edges:
                target = self.layouts[edge.target].name
                bound = self.feedback_scale or 1.0 / math.sqrt(len(topology.presynaptic_index[target]))
                direct = edge.projection < 0  # "direct": output group m onto hidden group n, no forward block
                width = self.layouts[source].size if direct else edge.columns.stop - edge.columns.start
                draw = (torch.rand(self.layouts[edge.target].size, width, generator=generator) * 2 - 1) * bound
                mask = None if direct else topology.projections[edge.projection].mask
                if mask is not None:
                    draw = draw * torch.as_tensor(np.array(mask, dtype=np.float32))
                matrices[edge.projection] = draw.to(self.device, self.dtype)
        return matrices

    def _build_pipeline(self) -> None:
        """The queue of past batches and each group's outbox of messages in flight (module doc)."""
        pipelined = self.feedback != "backprop"
        #: Past batches a group can learn on (``depth`` of the deepest group; 0 for ``"backprop"``).
        self.queue_length = max((d for d in self.depths if d is not None), default=0) if pipelined else 0
        outbox_lengths = [0] * len(self.layouts)
        if pipelined:
            for edges in self.edges:
                for edge in edges:
                    outbox_lengths[edge.target] = max(outbox_lengths[edge.target], edge.delay)
        #: Voltages ``[B, N]`` of the last ``queue_length`` batches, newest first (``batch_queue[k]``: batch ``t−1−k``).
        self.batch_queue: list[torch.Tensor] = []
        #: Each group's last messages ``eᵐ`` ``[B, S]``, newest first (``None`` where it did not compute one).
        self.outbox: list[list[torch.Tensor | None]] = [[None] * length for length in outbox_lengths]
        #: The slopes ``g`` ``[B, S]`` each group used at the last update (``None``: it did not learn).
        self.slopes: list[torch.Tensor | None] = [None] * len(self.layouts)

    # ------------------------------------------------------------------ learning
    def _batch_for(self, voltages: torch.Tensor, index: int) -> GroupBatch:
        """What the actor step of a hidden group reads (``pre1``, ``dmu``, ``mask1``; no critic fields)."""
        lay = self.layouts[index]
        pre1 = self._pre1(voltages, lay)
        potential = pre1 @ self._actor_views(self.actor, index)[2]
        mu = activate(potential, lay.activation)
        no_columns, no_rows = constant((voltages.shape[0], 0), 0.0, voltages), constant((0,), 0.0, voltages)
        return GroupBatch(x=no_columns, a=mu, reward=no_rows, not_done=no_rows, x_next=no_columns, a_next=mu, pre1=pre1,
                          mu=mu, dmu=activation_derivative(potential, mu, lay.activation), mask1=lay.mask1)

    def _output_batch(self, batch: Batch, settled_next: torch.Tensor, index: int, smooth: bool = True) -> GroupBatch:
        """What an output group's critic and actor steps read (as ``LocalDDPG.group_batches``).

        ``smooth=False`` leaves the target action unsmoothed (and the generator untouched): for reading slopes.
        """
        lay = self.layouts[index]
        v = batch.voltages
        pre1 = self._pre1(v, lay)
        potential = pre1 @ self._actor_views(self.actor, index)[2]
        mu = activate(potential, lay.activation)
        a_next = settled_next[:, lay.neuron_slice]
        return GroupBatch(
            x=v[:, lay.context], a=batch.actions[:, lay.agent_slice], reward=batch.rewards,
            not_done=one_minus(batch.terminated), x_next=settled_next[:, lay.context],
            a_next=self._target_action(a_next, index) if smooth else a_next, pre1=pre1, mu=mu,
            dmu=activation_derivative(potential, mu, lay.activation), mask1=lay.mask1,
        )

    def feedback_matrix(self, edge: FeedbackEdge) -> torch.Tensor:
        """``F`` ``[S_m, S_n]`` of one feedback edge, as read now (before this update's steps)."""
        if self.feedback in ("weights", "backprop"):
            return self.actor[edge.target][:, edge.columns]
        magnitude = self.feedback_weights[edge.projection]
        if self.feedback == "sign":
            return torch.sign(self.actor[edge.target][:, edge.columns]) * magnitude.abs()
        return magnitude

    def update(self, batch: Batch | None = None, check_finite: bool = True) -> dict[str, torch.Tensor]:
        """One learning step: outputs on a new replay batch, hidden groups on their queued batches.

        Args:
            batch: The new transitions (``voltages`` ``[B, N]`` settled, as ``sample`` returns);
                ``None`` samples ``batch_size`` from the buffer.
            check_finite: Raise ``DivergenceError`` if a TD error, slope or parameter is not finite.

        Returns:
            ``td_error``, ``td_error/<output group>``, ``q_slope`` and ``feedback_slope/<hidden
            group>`` (for the hidden groups that learned this update), 0-d tensors on the device.

        Raises:
            DivergenceError: Naming the group, when ``check_finite`` and a value is NaN or inf.
        """
        with torch.no_grad():
            sampled = batch is None
            batch = self._batch_or_sample(batch)
            actor_turn = self.num_updates % self.policy_delay == 0
            signals = _Signals.empty(len(self.layouts))
            stats: dict[str, torch.Tensor] = {}
            td_sums, slope_sums, output_neurons = self._learn_outputs(batch, signals, stats)
            self._receive_messages(batch.voltages, signals, stats)
            if actor_turn:  # every group steps after every slope is read: "weights"/"sign" read W as it was
                self._step_actors(signals)
            self._advance_pipeline(batch.voltages, signals.messages, sampled)
            self.slopes = signals.slopes
            if actor_turn:  # TD3 moves the targets with the actor
                self._move_targets()
            self.num_updates += 1
            neurons = scalar(float(output_neurons), td_sums[0])
            stats["td_error"] = _total(td_sums) / neurons
            stats["q_slope"] = _total(slope_sums) / neurons
            if check_finite:
                self._check_update_finite(signals, batch.voltages)
            return stats

    def _learn_outputs(self, batch: Batch, signals: _Signals,
                       stats: dict[str, torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor], int]:
        """TD and critic step of every output group on the new batch; their slopes and messages into ``signals``.

        Returns:
            The size-weighted ``|D|`` and ``|∂Q/∂a|`` means per output group, and the output neuron count.
        """
        td_sums, slope_sums, output_neurons = [], [], 0
        settled_next = self.settle(batch.next_voltages, target=True)
        for i in range(len(self.layouts)):
            if not self.is_output[i]:
                continue
            gb = self._output_batch(batch, settled_next, i)
            td, dq_da = self._kind.update(self.critic[i], self.target_critic[i], self.optimizer_state[i], gb,
                                          self.gamma, self.lr_critic)
            signals.slopes[i], signals.batches[i], signals.messages[i], signals.tds[i] = dq_da, gb, gb.dmu * dq_da, td
            td_abs, size = td.abs().mean(), self.layouts[i].size
            stats[f"td_error/{self.layouts[i].name}"] = td_abs
            td_sums.append(_times(td_abs, size))
            slope_sums.append(_times(dq_da.abs().mean(), size))
            output_neurons += size
        return td_sums, slope_sums, output_neurons

    def _receive_messages(self, voltages: torch.Tensor, signals: _Signals, stats: dict[str, torch.Tensor]) -> None:
        """Each hidden group's slope from the messages that reached it, on the batch it learns on now.

        Nearer groups first, so that ``"backprop"`` finds its postsynaptic messages of this update. A
        group whose batch is not that old yet, or whose messages have not all arrived, does not learn.
        """
        hidden = sorted((depth, i) for i, depth in enumerate(self.depths)
                        if depth is not None and not self.is_output[i])
        for depth, i in hidden:
            if self.feedback == "backprop":
                learn_on = voltages
                received = [signals.messages[edge.target] for edge in self.edges[i]]
            else:
                if len(self.batch_queue) < depth:
                    continue  # the batch it learns on is not that old yet
                learn_on = self.batch_queue[depth - 1]
                received = [self.outbox[edge.target][edge.delay - 1] for edge in self.edges[i]]
            arrived = [message for message in received if message is not None]
            if len(arrived) < len(received):
                continue  # its messages have not arrived yet
            slope = arrived[0] @ self.feedback_matrix(self.edges[i][0])
            for edge, message in zip(self.edges[i][1:], arrived[1:], strict=True):
                slope.add_(message @ self.feedback_matrix(edge))
            gb = self._batch_for(learn_on, i)
            signals.slopes[i], signals.batches[i], signals.messages[i] = slope, gb, gb.dmu * slope
            stats[f"feedback_slope/{self.layouts[i].name}"] = slope.abs().mean()

    def _step_actors(self, signals: _Signals) -> None:
        """Every group that has a slope and is not frozen steps its actor (the message is its ``σ' g``)."""
        for i, (gb, slope) in enumerate(zip(signals.batches, signals.slopes, strict=True)):
            if gb is None or slope is None or self.actor_lrs[i] == 0.0:
                continue
            self._step_actor(i, gb, slope, signals.messages[i])

    def _advance_pipeline(self, voltages: torch.Tensor, messages: list[torch.Tensor | None], sampled: bool) -> None:
        """Post this update's messages to the outboxes and queue its batch for the deeper groups."""
        for i, outbox in enumerate(self.outbox):
            if outbox:
                outbox.insert(0, messages[i])
                outbox.pop()
        if self.queue_length:  # a sampled batch is the learner's own: only a caller's is copied
            self.batch_queue.insert(0, voltages if sampled else voltages.clone())
            del self.batch_queue[self.queue_length:]

    def _check_update_finite(self, signals: _Signals, like: torch.Tensor) -> None:
        """Raise ``DivergenceError`` if a TD error, actor, output critic or hidden slope is not finite.

        A sum is NaN/inf iff an element is (or the sum overflows): one pass per tensor, one sync.
        """
        zero = constant((), 0.0, like)
        sums = []
        for i in range(len(self.layouts)):
            td, slope = signals.tds[i], None if self.is_output[i] else signals.slopes[i]
            sums += [zero if td is None else td.sum(), self.actor[i].sum(),
                     zero if td is None else params_sum(self.critic[i]), zero if slope is None else slope.sum()]
        self._raise_if_not_finite_sums(sums, 4)

    def action_slopes(self, voltages: torch.Tensor) -> list[torch.Tensor]:
        """Each group's slope ``g`` ``[B, S]`` at settled ``voltages``, once the pipeline has settled.

        The outputs' critic slopes at ``μ``, then every hidden group's message sum, nearest
        groups first, all on the same states and with the current parameters: what the pipeline
        delivers when the weights stop changing (E2 measures it against the true gradient).
        """
        with torch.no_grad():
            slopes: list[torch.Tensor | None] = [None] * len(self.layouts)
            messages: list[torch.Tensor | None] = [None] * len(self.layouts)
            zeros = voltages.new_zeros(voltages.shape[0])
            batch = Batch(voltages, voltages[:, self.agent_neuron_index], zeros, voltages, zeros)
            for i in range(len(self.layouts)):
                if self.is_output[i]:
                    gb = self._output_batch(batch, voltages, i, smooth=False)
                    slopes[i] = self._kind.action_gradient(self.critic[i], gb)
                    messages[i] = gb.dmu * slopes[i]
            for _, i in sorted((d, i) for i, d in enumerate(self.depths) if d is not None and not self.is_output[i]):
                slope = voltages.new_zeros(voltages.shape[0], self.layouts[i].size)
                for edge in self.edges[i]:
                    slope.add_(messages[edge.target] @ self.feedback_matrix(edge))
                slopes[i], messages[i] = slope, self._batch_for(voltages, i).dmu * slope
            return [s if s is not None else voltages.new_zeros(voltages.shape[0], lay.size)
                    for s, lay in zip(slopes, self.layouts, strict=True)]

    # ------------------------------------------------------------------ persistence
    def state_dict(self, include_buffer: bool = True) -> dict[str, Any]:
        """The core's state plus the feedback kind and matrices, the batch queue and the messages.

        The queue and the messages in flight are always included (they are a few batches), so a
        restored learner continues the pipeline exactly.
        """
        state = super().state_dict(include_buffer)
        state["feedback"] = self.feedback
        state["depths"] = list(self.depths)
        state["feedback_weights"] = {p: w.cpu().clone() for p, w in self.feedback_weights.items()}
        state["batch_queue"] = [v.cpu().clone() for v in self.batch_queue]
        state["outbox"] = [[None if m is None else m.cpu().clone() for m in box] for box in self.outbox]
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore ``state_dict`` (same topology, critic kind and feedback kind).

        Raises:
            CheckpointError: If the state belongs to another learner, feedback kind or topology.
        """
        check_checkpoint(state, self.name, {"feedback": self.feedback, "groups": [lay.name for lay in self.layouts],
                                            "depths": list(self.depths)})
        if set(state["feedback_weights"]) != set(self.feedback_weights):
            raise CheckpointError(f"checkpoint has feedback matrices for projections "
                                  f"{sorted(state['feedback_weights'])}; this learner expects "
                                  f"{sorted(self.feedback_weights)}")
        super().load_state_dict(state)
        self.feedback_weights = {p: w.to(self.device, self.dtype).clone() for p, w in state["feedback_weights"].items()}
        self.batch_queue = [v.to(self.device, self.dtype).clone() for v in state["batch_queue"]]
        self.outbox = [[None if m is None else m.to(self.device, self.dtype).clone() for m in box]
                       for box in state["outbox"]]

    def __repr__(self) -> str:
        return (f"FeedbackDDPG({self.topology!r}, feedback={self.feedback!r}, critic={self.critic_kind!r}, "
                f"context={self.critic_context!r}, device={self.device})")
