"""The e-prop learner's re-run: replayed rows re-run by the current network through their stored window.

``EpropLearner(replay_voltages="current")`` (``neuron_env.agents.eprop``, the default) does not learn on a
replayed row's voltages as stored: it re-runs the row from its stored voltages ``replay_window`` ticks back
(fewer at its episode's start; ``TraceReplayBuffer.window_tensors`` of ``neuron_env.agents.eprop_replay`` finds
them). Every agent group ticks noise-free with the current weights, the recorded inputs clamped and the
recorded firing masks, and every hidden neuron's trace runs forward with it from 0, exactly as on a live
tick (R2D2's burn-in, with the stored voltages as the window's start state; dependencies older than the
window are cut, ``λ^window`` of a trace). The critic learns on the re-run ``v(τ)`` and ``v(τ+1)`` (one more
tick with the next input), the actor at ``μ(v(τ))``, as DDPG evaluates its actor on replayed states with
the current network (the ``feedback`` learner's ``replay_voltages="current"``). Nothing per synapse is
stored: a group at distance ``d`` from the outputs keeps ``E(τ − d + 1)``, a relay its gain ``c(τ − d)`` (0
across an episode start), computed in closed form over the window (``eprop_rule.window_trace``).

Cost: the re-run is a loop over the window's ticks of a few small ops per group (on a 16-unit layer the ops'
overhead, not their arithmetic, is its cost), so it is written for few ops per tick: the window is gathered
in one op per tensor and each tick written in place into one copy of it, through views made once; a group's
``σ'`` is computed once over all its ticks after the loop (elementwise: the same values as tick by tick); a
group whose voltage no group reads inside the window (a leak-free output under the sync clock) is computed on
the last tick only; and the output groups' ``(p, μ, σ')`` at ``v(τ)`` are returned, for the critic's batch and
the actor's step to share. Every number is the same as ticking the groups one by one: each value is made by
the same ops on the same operands (a matrix product's operands are fresh tensors, as before: MKL's result can
depend on an operand's memory alignment).

References:
    S. Kapturowski et al., "Recurrent experience replay in distributed reinforcement learning"
    (R2D2), ICLR 2019.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from neuron_env.agents.eprop_ceiling import WindowTick, read_columns
from neuron_env.agents.eprop_rule import window_trace
from neuron_env.agents.tensors import activation_derivative, constant, scalar

from neuron_env.dynamics import activate

#: A window as stacked tensors, newest (the rows) first: ``(voltages [L + 1, B, N], fired [L + 1, B, A] bool,
#: episode start [L + 1, B] bool)``; entry ``k`` is ``k`` ticks back (``TraceReplayBuffer.window_tensors``).
WindowTensors = tuple[torch.Tensor, torch.Tensor, torch.Tensor]
#: Group ``i``'s ``(p [B, P + 1], μ [B, S], σ' [B, S])`` at the re-run ``v(τ)``, as ``EpropNetwork._potential``'s.
Potentials = dict[int, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


def window_ticks(window: WindowTensors) -> list[WindowTick]:
    """The stacked window as ``eprop_ceiling``'s list of ticks (views), newest first."""
    return list(zip(*(t.unbind(0) for t in window), strict=True))


def unread_groups(layouts: Sequence[Any], leaks: Sequence[float], keep: frozenset[int], masked: bool) -> frozenset[int]:
    """The groups whose voltage inside a window nothing reads: leak-free, unmasked, no group's input, no trace.

    Such a group's voltage on a tick depends only on the tick before and is read by nothing but the
    re-run's result, so the re-run computes it on the window's last tick only (the same values there).

    Args:
        layouts: The learner's group layouts.
        leaks: Each group's ``λ`` (a leaky group reads its own voltage).
        keep: The groups whose potentials the window keeps (traces, gains).
        masked: Whether firing masks apply (a silent neuron holds its own voltage).
    """
    if masked:
        return frozenset()
    read = read_columns(layouts)
    return frozenset(i for i, lay in enumerate(layouts) if leaks[i] == 0 and i not in keep
                     and read.isdisjoint(range(lay.neuron_slice.start, lay.neuron_slice.stop)))


def rerun_window(window: WindowTensors, next_inputs: torch.Tensor, actor: Sequence[torch.Tensor], *,
                 layouts: Sequence[Any], leaks: Sequence[float], distances: Sequence[int | None], inputs: slice,
                 trace_shapes: dict[int, tuple[int, int]], gain_sizes: dict[int, int], masked: bool,
                 unread: frozenset[int] = frozenset(), potentials: Sequence[int] = (), every_fired: bool = False
                 ) -> tuple[torch.Tensor, torch.Tensor, dict[int, torch.Tensor], dict[int, torch.Tensor], Potentials]:
    """Re-run each row through its window (module doc): its voltages, next voltages, traces and gains.

    Each tick, every agent group ``v' = λ v + (1 − λ) σ([v_pre, 1] [K, b]ᵀ)`` (on the neurons that fired,
    ``masked``; a silent one holds ``v``, or ``λ v`` in a leaky group), then the recorded inputs are clamped
    and the recorded voltages restored where an episode starts.

    Args:
        window: ``TraceReplayBuffer.window_tensors`` of the rows.
        next_inputs: ``[B, N]`` the rows' stored next voltages (only the inputs are read).
        actor: Every group's current ``[K, b]`` ``[S, P + 1]``.
        layouts: The learner's group layouts.
        leaks: Each group's ``λ``.
        distances: Each group's distance to an output group.
        inputs: The input neurons' voltage slice.
        trace_shapes: ``{group: (S, P + 1)}`` of the groups whose trace ``E(τ − d + 1)`` is wanted.
        gain_sizes: ``{group: S}`` of the relays whose gain ``c(τ − d)`` is wanted.
        masked: Whether to apply the recorded firing masks (else every neuron fires).
        unread: Groups computed on the window's last tick only (``unread_groups``).
        potentials: Groups whose ``(p, μ, σ')`` at the re-run ``v(τ)`` are wanted (the output critic's).
        every_fired: Whether every firing mask of the window is all true (the traces then read none of them).

    Returns:
        The re-run ``v(τ)`` and ``v(τ + 1)`` ``[B, N]``, the traces ``[B, S, P + 1]`` and gains ``[B, S]``,
        and the wanted groups' potentials at ``v(τ)``.
    """
    voltages, fired, fresh = window
    length = voltages.shape[0] - 1
    # every tick's state, written in place into a copy of the recorded window: its inputs are clamped (and an
    # unread group's column, read by nothing, holds the recorded voltage) before its tick is run
    states = voltages.clone()
    started = fresh[:, :, None].unbind(0)
    state = states[length]
    rows, dtype, device = state.shape[0], state.dtype, state.device
    ones = constant((rows, 1), 1.0, state)
    zero = torch.zeros((), dtype=dtype, device=device)

    def ticks(columns: Any) -> tuple[torch.Tensor, ...] | None:
        """Each tick's view of ``columns`` of ``states`` (a slice; made once, they show the writes), or None."""
        return states[:, :, columns].unbind(0) if isinstance(columns, slice) else None

    # per group, made once: (index, layout, [K, b]ᵀ, λ, λ as an operand, what a silent neuron's voltage is
    # times, its own columns per tick, its inputs per tick, its firing per tick)
    plans = [(i, lay, w.T, leak, scalar(leak, state), scalar(leak or 1.0, state), ticks(lay.neuron_slice),
              ticks(lay.pre), fired[:, :, lay.agent_slice].unbind(0) if masked else None)
             for (i, lay), w, leak in zip(enumerate(layouts), actor, leaks, strict=True)]
    during = [plan for plan in plans if plan[0] not in unread]
    # each kept group's (p, u, μ) of the ticks k >= d its trace (gain) reads, oldest first
    kept: dict[int, list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]] = {
        i: [] for i in (*trace_shapes, *gain_sizes)}

    def tick(k: int, plan: tuple[Any, ...]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Group ``plan``'s tick ``k`` (from ``τ − k``): ``(p, u, μ)`` and its next voltage."""
        _, lay, kernel, leak, times_leak, held, own, pre, on = plan
        pre1 = torch.cat([states[k][:, lay.pre] if pre is None else pre[k], ones], 1)
        potential = pre1 @ kernel
        mu = activate(potential, lay.activation)
        moved = mu if leak == 0 else torch.add(own[k] * times_leak, mu, alpha=1 - leak)
        if masked:
            moved = torch.where(on[k], moved, own[k] * held)
        return pre1, potential, mu, moved

    for k in range(length, 0, -1):  # the tick from τ − k to τ − k + 1
        for plan in during if k > 1 else plans:
            i, own = plan[0], plan[6]
            pre1, potential, mu, moved = tick(k, plan)
            if i in kept and k >= distances[i]:  # type: ignore[operator]
                kept[i].append((pre1, potential, mu))
            # where an episode starts after the tick, the state keeps the recorded voltages
            torch.where(started[k - 1], own[k - 1], moved, out=own[k - 1])
    state = states[0]
    following = state.clone()
    computed = {}
    for plan in plans:
        *computed[plan[0]], moved = tick(0, plan)
        following[:, plan[1].neuron_slice] = moved
    following[:, inputs] = next_inputs[:, inputs]
    at_state = {}
    for i in potentials:
        pre1, potential, mu = computed[i]
        at_state[i] = (pre1, mu, activation_derivative(potential, mu, layouts[i].activation))
    dmus, traces, gains = {}, {}, {}
    for i, entries in kept.items():
        if entries:  # else farther back than the window: no trace, no gain
            # σ' reads the potential only for relu (the same elementwise values as tick by tick)
            mu = torch.stack([t[2] for t in entries[::-1]])  # newest first: tick k = d, d + 1, …
            potential = torch.stack([t[1] for t in entries[::-1]]) if layouts[i].activation == "relu" else mu
            dmus[i] = activation_derivative(potential, mu, layouts[i].activation)
    for i, shape in trace_shapes.items():
        lay, d = layouts[i], distances[i]
        if i not in dmus:
            traces[i] = torch.zeros(rows, *shape, dtype=dtype, device=device)
            continue
        end = d + dmus[i].shape[0]  # type: ignore[operator]
        # keep_k: the state after tick k is no episode start (entry k − 1 not fresh)
        on = None if every_fired else fired[d:end, :, lay.agent_slice].to(dtype)
        traces[i] = window_trace(torch.stack([t[0] for t in kept[i][::-1]]), dmus[i], on,
                                 (~fresh[d - 1:end - 1]).to(dtype), leaks[i])
    # in the order the ticks reach them (the farthest group first), then the groups the window does not reach
    for i in sorted((i for i in gain_sizes if i in dmus), key=lambda i: -distances[i]):  # type: ignore[operator]
        lay, d = layouts[i], distances[i]
        gain = dmus[i][0] * (1 - leaks[i])
        if masked:
            gain = torch.where(fired[d][:, lay.agent_slice], gain, zero)
        gains[i] = torch.where(fresh[d - 1][:, None], zero, gain)  # type: ignore[operator]
    for i, size in gain_sizes.items():
        gains.setdefault(i, torch.zeros(rows, size, dtype=dtype, device=device))
    return state, following, traces, gains, at_state
