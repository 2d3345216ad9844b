"""The e-prop rule as pure tensor functions: message wiring, eligibility traces, learning signals, actor steps.

``EpropLearner`` (``neuron_env.agents.eprop``) holds the rule's state (traces, gains, messages in flight,
queued batches, Adam moments) and calls these functions on it; nothing here keeps state.

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

The async clock
---------------
A neuron that did not fire on tick ``τ`` neither acted nor advanced its trace: its trace follows its
voltage (``h`` above; ``advance_trace``), its gain and message are 0, and it steps neither its parameters
nor its Adam moments (``row_adam_ascent_``: each neuron counts its own Adam steps).

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
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from neuron_env.agents.optim import ADAM_BETAS, ADAM_EPS
from neuron_env.agents.tensors import Params

from neuron_env.topology import Topology

#: One group's actor step: ``(group index, ascent [S, P + 1], which of its neurons step [S] bool (None: all))``.
Step = tuple[int, torch.Tensor, torch.Tensor | None]


# ------------------------------------------------------------------ wiring
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


def message_edges(topology: Topology, distances: list[int | None]) -> list[tuple[MessageEdge, ...]]:
    """Per agent group (``topology.agent_groups`` order), the projections to groups one hop closer to an output."""
    index = {g.name: i for i, g in enumerate(topology.agent_groups)}
    edges = []
    for i, group in enumerate(topology.agent_groups):
        d = distances[i]
        own = [] if d is None or d == 0 else [
            MessageEdge(p, index[proj.target]) for p, proj in enumerate(topology.projections)
            if proj.source == group.name and proj.target in index and proj.target != group.name
            and distances[index[proj.target]] == d - 1]
        edges.append(tuple(own))
    return edges


def stored_shapes(topology: Topology, distances: list[int | None], edges: list[tuple[MessageEdge, ...]]
                  ) -> tuple[dict[int, tuple[int, int]], dict[int, int]]:
    """The trace ``(S, P + 1)`` and gain ``S`` that each replayed row holds, per group.

    Every hidden group with a path to an output holds its trace; a group that deeper groups send
    messages through holds its gain.
    """
    groups = topology.agent_groups
    traces = {i: (g.size, len(topology.presynaptic_index[g.name]) + 1) for i, g in enumerate(groups)
              if distances[i] not in (None, 0)}
    relays = {edge.target for own in edges for edge in own}
    gains = {i: groups[i].size for i in sorted(relays) if distances[i] not in (None, 0)}
    return traces, gains


def random_feedback(topology: Topology, edges: list[tuple[MessageEdge, ...]], seed: int, scale: float | None,
                    device: str | torch.device, dtype: torch.dtype) -> dict[int, torch.Tensor]:
    """One fixed random matrix ``F`` ``[S_m, S_n]`` per message edge: uniform in ``±bound``, masked like its block.

    Args:
        topology: The network.
        edges: Each group's message edges (``message_edges``).
        seed: Seed of the draw (on the CPU: the same matrices on every device).
        scale: The bound; ``None``: ``1/sqrt(fan_in)`` of the postsynaptic group.
        device: Where the matrices live.
        dtype: Their floating dtype.

    Returns:
        ``{projection index: F}``.
    """
    matrices = {}
    generator = torch.Generator().manual_seed(seed)
    for own in edges:
        for edge in own:
            projection = topology.projections[edge.projection]
            bound = scale or 1.0 / math.sqrt(len(topology.presynaptic_index[projection.target]))
            shape = (topology.group[projection.target].size, topology.group[projection.source].size)
            draw = (torch.rand(shape, generator=generator) * 2 - 1) * bound
            if projection.mask is not None:
                draw = draw * torch.as_tensor(np.array(projection.mask, dtype=np.float32))
            matrices[edge.projection] = draw.to(device, dtype)
    return matrices


# ------------------------------------------------------------------ traces
def advance_trace(previous: torch.Tensor, pre1: torch.Tensor, dmu: torch.Tensor, leak: float,
                  fired: torch.Tensor | None, done: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One tick of a group's traces and its gain (module doc: ``E(τ+1)``, ``c(τ)``).

    Args:
        previous: ``[E, S, P + 1]`` the traces ``E(τ)``.
        pre1: ``[E, P + 1]`` ``p(τ) = [v_pre, 1]``.
        dmu: ``[E, S]`` ``σ'(u(τ))``.
        leak: The group's ``λ``.
        fired: ``[E, S]`` bool: who fired on the tick; ``None``: everyone (the same numbers as all true).
        done: ``[E]`` bool: copies whose episode ended on the tick (their trace restarts at 0).

    Returns:
        ``E(τ+1)`` ``[E, S, P + 1]`` and ``c(τ)`` ``[E, S]``.
    """
    zero = torch.zeros((), dtype=previous.dtype, device=previous.device)
    product = dmu[:, :, None] * pre1[:, None, :]
    if leak > 0:
        advanced = torch.add(previous * leak, product, alpha=1 - leak)
        gain = dmu * (1 - leak)
    else:
        advanced, gain = product, dmu
    if fired is None:
        return torch.where(done[:, None, None], zero, advanced), gain
    silent = previous * leak if leak > 0 else previous
    trace = torch.where(fired[:, :, None], advanced, silent)
    trace = torch.where(done[:, None, None], zero, trace)
    return trace, torch.where(fired, gain, zero)


def window_trace(pre1: torch.Tensor, dmu: torch.Tensor, on: torch.Tensor | None, keep: torch.Tensor,
                 leak: float) -> torch.Tensor:
    """A group's trace at the end of a window of ticks, in closed form (what ``advance_trace`` gives from 0).

    The trace is linear in each tick's product ``σ'(u) p``: ``E = Σ_k w_k σ'(u_k) p_k`` with ``w_k`` the tick's
    gate times the factors of the later ticks (``λ`` each in a leaky group; ``1 − f`` in a leak-free one, whose
    trace a firing tick replaces; 0 across an episode start): one batched product instead of a loop of
    per-synapse updates.

    Args:
        pre1: ``[K, B, P + 1]`` each tick's ``p``, newest first.
        dmu: ``[K, B, S]`` each tick's ``σ'(u)``, newest first.
        on: ``[K, B, S]`` each tick's firing (0 or 1); ``None``: every neuron fired on every tick (the same
            numbers as all ones, with no product by it).
        keep: ``[K, B]`` 1 where the state after the tick is no episode start, else 0.
        leak: The group's ``λ``.

    Returns:
        ``[B, S, P + 1]``.
    """
    ticks = dmu.shape[0]
    if on is None and leak <= 0:
        on = torch.ones_like(dmu)
    if leak > 0:
        # λ^k: the same per-lane cumulative product as over a [K, B, S] tensor of λ, made on one lane
        later = torch.full((ticks, 1, 1), leak, dtype=dmu.dtype, device=dmu.device)
        carried = torch.cumprod(torch.cat([torch.ones_like(later[:1]), later[:-1]]), 0)
        # on and keep are 0 or 1, so only carried · (1 − λ) rounds: ((on · carried) · keep) · (1 − λ) is
        # on · ((carried · keep) · (1 − λ)) bit for bit, and all but the last product are on [K, B, 1]
        weight = carried * torch.cumprod(keep, 0)[:, :, None] * (1 - leak)
        if on is not None:
            weight = on * weight
    else:
        # Π_{j<k} (1 − f_j) of 0/1 factors: exact in any order, so one product per tick (a cumulative product
        # along the first axis costs several times more)
        later = 1 - on  # type: ignore[operator]
        carried = torch.empty_like(later)
        carried[0] = 1
        for k in range(1, ticks):
            torch.mul(carried[k - 1], later[k - 1], out=carried[k])
        weight = on * carried * torch.cumprod(keep, 0)[:, :, None]  # · 1.0, exact, left out
    return torch.einsum("kbs,kbp->bsp", weight * dmu, pre1)


# ------------------------------------------------------------------ learning signals and steps
def learning_signal(received: list[torch.Tensor], feedback: list[torch.Tensor]) -> torch.Tensor:
    """``L = Σ_m F_mn mᵐ`` ``[B, S]`` from the messages ``mᵐ`` ``[B, S_m]`` received through ``F_mn`` ``[S_m, S]``."""
    signal = received[0] @ feedback[0]
    for matrix, message in zip(feedback[1:], received[1:], strict=True):
        signal = signal + message @ matrix
    return signal


def output_ascent(pre1: torch.Tensor, dmu: torch.Tensor, slope: torch.Tensor,
                  on: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """An output group's message ``m = f σ'(u) ∂Q/∂a`` ``[B, S]`` and DDPG's ascent ``mean_b m_b p_b`` ``[S, P + 1]``.

    Args:
        pre1: ``[B, P + 1]``.
        dmu: ``[B, S]`` ``σ'(u)``.
        slope: ``[B, S]`` the critic's ``∂Q/∂a``.
        on: ``[B, S]`` firing (0 or 1) per row; ``None``: every row counts.
    """
    message = dmu * slope if on is None else on * dmu * slope
    return message, message.T @ pre1 / pre1.shape[0]


def hidden_ascent(signal: torch.Tensor, traces: torch.Tensor, on: torch.Tensor | None = None) -> torch.Tensor:
    """A hidden group's ascent ``mean_b f_b L_b E_b`` ``[S, P + 1]``.

    Args:
        signal: ``[B, S]`` its learning signal ``L``.
        traces: ``[B, S, P + 1]`` the traces ``E`` the signal is about.
        on: ``[B, S]`` firing (0 or 1) per row; ``None``: every row counts.
    """
    return torch.einsum("bs,bsp->sp", signal if on is None else on * signal, traces) / signal.shape[0]


def row_adam_ascent_(weight: torch.Tensor, state: Params, ascent: torch.Tensor, rows: torch.Tensor | None,
                     lr: float) -> None:
    """One Adam ascent step on the rows of ``weight`` where ``rows`` is true; other rows and their moments untouched.

    ``torch.optim.Adam``'s arithmetic per weight, with a step count per row (neuron), so a neuron that
    did not fire neither moves nor ages its moments: the same as one Adam per neuron, stepped when it fires.

    Args:
        weight: ``[S, P + 1]`` in place.
        state: ``{"step": [S] float64, "m": …, "v": …}``, created on the first call.
        ascent: ``[S, P + 1]`` the direction to ascend.
        rows: ``[S]`` bool; ``None``: every row (the same numbers as all true, stepped in place).
        lr: Step size.
    """
    beta1, beta2 = ADAM_BETAS
    if not state:
        state["step"] = torch.zeros(weight.shape[0], dtype=torch.float64, device=weight.device)
        state["m"], state["v"] = torch.zeros_like(weight), torch.zeros_like(weight)
    if rows is None:  # the arithmetic below, each result written over its operand
        step = state["step"].add_(1.0)
        m = state["m"].lerp_(ascent, 1 - beta1)
        v = state["v"].mul_(beta2).addcmul_(ascent, ascent, value=1 - beta2)
    else:
        step = state["step"] + rows.to(torch.float64)
        m = torch.lerp(state["m"], ascent, 1 - beta1)
        v = (state["v"] * beta2).addcmul_(ascent, ascent, value=1 - beta2)
    count = step.clamp_min(1.0)
    correction1 = (1 - beta1**count).to(weight.dtype)[:, None]
    correction2_sqrt = torch.sqrt(1 - beta2**count).to(weight.dtype)[:, None]
    change = (lr / correction1) * m / ((v.sqrt() / correction2_sqrt) + ADAM_EPS)
    if rows is None:
        weight.add_(change)
        return
    keep = rows[:, None]
    weight.copy_(torch.where(keep, weight + change, weight))
    state["m"].copy_(torch.where(keep, m, state["m"]))
    state["v"].copy_(torch.where(keep, v, state["v"]))
    state["step"].copy_(step)


def row_ascent_(weight: torch.Tensor, ascent: torch.Tensor, rows: torch.Tensor | None, lr: float, *,
                adam: Params | None, mask1: torch.Tensor | None, max_norm: float | None) -> None:
    """Step ``weight`` ``[S, P + 1]`` along ``ascent`` on ``rows`` (masked connections stay 0), then cap row norms.

    Args:
        weight: ``[S, P + 1]`` in place.
        ascent: ``[S, P + 1]`` the direction to ascend.
        rows: ``[S]`` bool: the neurons that step; ``None``: every neuron.
        lr: Step size.
        adam: The group's Adam state (``row_adam_ascent_``); ``None``: plain SGD.
        mask1: ``[S, P + 1]`` connection mask with a ones bias column, or ``None``.
        max_norm: Cap on each stepped row's weight norm (bias excluded), or ``None``.
    """
    if mask1 is not None:
        ascent = ascent * mask1
    if adam is not None:
        row_adam_ascent_(weight, adam, ascent, rows, lr)
    elif rows is None:
        weight.add_(lr * ascent)
    else:
        weight.copy_(torch.where(rows[:, None], weight + lr * ascent, weight))
    if max_norm is not None:
        norms = torch.linalg.vector_norm(weight[:, :-1], dim=1, keepdim=True)
        capped = weight[:, :-1] * (max_norm / norms.clamp_min(max_norm))
        over = norms > max_norm if rows is None else rows[:, None] & (norms > max_norm)
        weight[:, :-1] = torch.where(over, capped, weight[:, :-1])
