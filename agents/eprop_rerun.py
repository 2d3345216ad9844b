"""The e-prop learner's re-run: replayed rows re-run by the current network through their stored window.

``EpropLearner(replay_voltages="current")`` (``neuron_env.agents.eprop``, the default) does not learn on a
replayed row's voltages as stored: it re-runs the row from its stored voltages ``replay_window`` ticks back
(fewer at its episode's start; ``TraceReplayBuffer.windows`` of ``neuron_env.agents.eprop_replay`` finds
them). Every agent group ticks noise-free with the current weights, the recorded inputs clamped and the
recorded firing masks, and every hidden neuron's trace runs forward with it from 0, exactly as on a live
tick (R2D2's burn-in, with the stored voltages as the window's start state; dependencies older than the
window are cut, ``λ^window`` of a trace). The critic learns on the re-run ``v(τ)`` and ``v(τ+1)`` (one more
tick with the next input), the actor at ``μ(v(τ))``, as DDPG evaluates its actor on replayed states with
the current network (the ``feedback`` learner's ``replay_voltages="current"``). Nothing per synapse is
stored: a group at distance ``d`` from the outputs keeps ``E(τ − d + 1)``, a relay its gain ``c(τ − d)`` (0
across an episode start), computed in closed form over the window (``eprop_rule.window_trace``).

References:
    S. Kapturowski et al., "Recurrent experience replay in distributed reinforcement learning"
    (R2D2), ICLR 2019.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from neuron_env.agents.eprop_ceiling import WindowTick
from neuron_env.agents.eprop_rule import window_trace

#: ``(voltages [B, N], group index) -> (p [B, P + 1], μ [B, S], σ' [B, S])`` with the current weights.
Potential = Callable[[torch.Tensor, int], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


def rerun_tick(voltages: torch.Tensor, fired: torch.Tensor | None, potential: Potential, layouts: Sequence[Any],
               leaks: Sequence[float]) -> tuple[torch.Tensor, dict[int, tuple[torch.Tensor, torch.Tensor]]]:
    """One noise-free tick of every agent group (the env's leaky tick; with ``fired``, silent neurons held).

    Args:
        voltages: ``[B, N]``.
        fired: ``[B, num_agents]`` bool, who fired on the tick; ``None``: everyone.
        potential: Each group's ``(p, μ, σ')`` at given voltages.
        layouts: The learner's group layouts.
        leaks: Each group's ``λ``.

    Returns:
        The next voltages (inputs unchanged) and each group's ``(p, σ')`` at ``voltages``.
    """
    following = voltages.clone()
    potentials = {}
    for i, lay in enumerate(layouts):
        pre1, mu, dmu = potential(voltages, i)
        potentials[i] = (pre1, dmu)
        own, leak = voltages[:, lay.neuron_slice], leaks[i]
        moved = mu if leak == 0 else torch.add(own * leak, mu, alpha=1 - leak)
        following[:, lay.neuron_slice] = moved if fired is None else torch.where(
            fired[:, lay.agent_slice], moved, own * (leak or 1.0))
    return following, potentials


def rerun_window(window: Sequence[WindowTick], next_inputs: torch.Tensor, potential: Potential, *,
                 layouts: Sequence[Any], leaks: Sequence[float], distances: Sequence[int | None], inputs: slice,
                 trace_shapes: dict[int, tuple[int, int]], gain_sizes: dict[int, int], masked: bool
                 ) -> tuple[torch.Tensor, torch.Tensor, dict[int, torch.Tensor], dict[int, torch.Tensor]]:
    """Re-run each row through its window (module doc): its voltages, next voltages, traces and gains.

    Args:
        window: ``TraceReplayBuffer.windows`` of the rows: ``(voltages, fired, episode start)``, newest first.
        next_inputs: ``[B, N]`` the rows' stored next voltages (only the inputs are read).
        potential: Each group's ``(p, μ, σ')`` with the current weights.
        layouts: The learner's group layouts.
        leaks: Each group's ``λ``.
        distances: Each group's distance to an output group.
        inputs: The input neurons' voltage slice.
        trace_shapes: ``{group: (S, P + 1)}`` of the groups whose trace ``E(τ − d + 1)`` is wanted.
        gain_sizes: ``{group: S}`` of the relays whose gain ``c(τ − d)`` is wanted.
        masked: Whether to apply the recorded firing masks (else every neuron fires).

    Returns:
        The re-run ``v(τ)`` and ``v(τ + 1)`` ``[B, N]``, the traces ``[B, S, P + 1]`` and gains ``[B, S]``.
    """
    state = window[-1][0]
    zero = torch.zeros((), dtype=state.dtype, device=state.device)
    products: dict[int, list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]] = {i: [] for i in trace_shapes}
    gains: dict[int, torch.Tensor] = {}
    for k in range(len(window) - 1, 0, -1):  # the tick from τ − k to τ − k + 1
        fired, (recorded, _, fresh) = window[k][1], window[k - 1]
        state, potentials = rerun_tick(state, fired if masked else None, potential, layouts, leaks)
        for i, (pre1, dmu) in potentials.items():
            d = distances[i]
            if i in products and k >= d:  # type: ignore[operator]
                products[i].append((pre1, dmu, fired[:, layouts[i].agent_slice]))
            if i in gain_sizes and k == d:
                gain = dmu * (1 - leaks[i])
                if masked:
                    gain = torch.where(fired[:, layouts[i].agent_slice], gain, zero)
                gains[i] = torch.where(fresh[:, None], zero, gain)
        state[:, inputs] = recorded[:, inputs]
        state = torch.where(fresh[:, None], recorded, state)
    following, _ = rerun_tick(state, window[0][1] if masked else None, potential, layouts, leaks)
    following[:, inputs] = next_inputs[:, inputs]
    rows = state.shape[0]
    traces = {}
    for i, shape in trace_shapes.items():
        d = distances[i]
        if not products[i]:  # farther back than the window: no trace
            traces[i] = torch.zeros(rows, *shape, dtype=state.dtype, device=state.device)
            continue
        newest_first = products[i][::-1]  # tick k = d, d + 1, …
        # keep_k: the state after tick k is no episode start (entry k − 1 not fresh)
        keep = torch.stack([~window[k - 1][2] for k in range(d, d + len(newest_first))])  # type: ignore[operator]
        traces[i] = window_trace(torch.stack([t[0] for t in newest_first]), torch.stack([t[1] for t in newest_first]),
                                 torch.stack([t[2] for t in newest_first]).to(state.dtype), keep.to(state.dtype),
                                 leaks[i])
    for i, size in gain_sizes.items():
        gains.setdefault(i, torch.zeros(rows, size, dtype=state.dtype, device=state.device))
    return state, following, traces, gains
