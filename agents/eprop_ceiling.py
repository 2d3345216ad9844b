"""The e-prop learner's ceiling: exact credit by truncated backpropagation through time (a reference, not local).

``EpropLearner(credit="bptt")`` (``neuron_env.agents.eprop``) gives its hidden groups, on the live
tick ``τ``, the exact gradient of the output critic's value at the network's action,
``Q(x(τ), μ_out(v(τ)))``, with respect to every hidden weight, through the last ``window`` ticks:

* the window is what the learner stored of the last ``window + 1`` ticks: each tick's voltages,
  firing mask and whether the tick starts an episode;
* ``v(τ)`` is recomputed by autograd from the recorded voltages at the window's start, one
  noise-free tick at a time (``network_tick``: ``v' = λ v + (1 − λ) σ(K v_pre + b)`` on the neurons
  that fired, ``v`` held, or ``λ v`` in a leaky group, on the others), with the current weights, the
  recorded input voltages clamped, and the recorded voltages restored where an episode starts;
* ``x(τ)``, the critic's input, is the recorded one, held fixed (as DDPG's actor gradient holds the
  state fixed); the critic's slope ``∂Q/∂a`` is taken at the recomputed action.

The gradient is per task copy (the weights are expanded to ``[E, S, P + 1]`` leaves and every tick is
a batched product), so the learner can gate each copy's part by that copy's firing mask as it gates
its local rule. Truncation: dependencies older than ``window`` ticks are cut (the window's first
voltages are constants); ``window`` is ``EpropConfig.bptt_window`` (16 by default). The
hidden weights are the autograd leaves; the outputs' weights are constants (their step is the local
rule's, DDPG's on the live tick). This needs every weight of the network at once: a reference for
the study's ceiling (``docs/design.md``), never a local rule.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from neuron_env.agents.tensors import constant, scalar

from neuron_env.dynamics import activate
from neuron_env.topology import Topology

#: One stored tick of the window: ``(voltages [E, N], fired [E, num_agents] bool, episode start [E] bool)``.
WindowTick = tuple[torch.Tensor, torch.Tensor, torch.Tensor]
#: ``(group index, pre1 [E, P + 1], potential [E, S], μ [E, S]) -> ∂Q/∂a [E, S]`` of an output group.
OutputSlope = Callable[[int, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def with_bias(voltages: torch.Tensor, pre: Any) -> torch.Tensor:
    """``[v_pre, 1]`` ``[E, P + 1]``."""
    return torch.cat([voltages[:, pre], constant((voltages.shape[0], 1), 1.0, voltages)], 1)


def potential(weights: torch.Tensor, pre1: torch.Tensor) -> torch.Tensor:
    """``u = [K, b] [v_pre, 1]`` ``[E, S]`` with per-copy ``[E, S, P + 1]`` or shared ``[S, P + 1]`` weights."""
    if weights.dim() == 2:
        return pre1 @ weights.T
    return torch.bmm(weights, pre1[:, :, None])[:, :, 0]


#: Per group in voltage order: ``(its voltage columns, its index in layouts (None: the input), λ, λ and 1 − λ as
#: operands, whether it is idle)``.
TickPlan = list[tuple[slice, int | None, float, Any, Any, bool]]


def read_columns(layouts: Sequence[Any]) -> set[int]:
    """The voltage columns that some agent group reads (the union of their presynaptic indices)."""
    read: set[int] = set()
    for lay in layouts:
        pre = lay.pre
        read.update(range(pre.start, pre.stop) if isinstance(pre, slice) else pre.tolist())
    return read


def tick_plan(topology: Topology, layouts: Sequence[Any], like: torch.Tensor, idle: frozenset[int] = frozenset()
              ) -> TickPlan:
    """What ``network_tick`` reads of the network on every tick, made once per window (``like``: the voltages).

    ``idle``: groups whose voltage nothing reads (``window_gradients``): they hold their columns, untouched.
    """
    index = {lay.name: i for i, lay in enumerate(layouts)}
    plan = []
    for group in topology.groups:
        leak = float(group.leak)
        i = None if group.role == "input" else index[group.name]
        plan.append((topology.group_slice[group.name], i, leak, scalar(leak, like), scalar(1 - leak, like),
                     i in idle))
    return plan


def network_tick(voltages: torch.Tensor, actor: Sequence[torch.Tensor], topology: Topology, layouts: Sequence[Any],
                 fired: torch.Tensor, plan: TickPlan | None = None, masked: bool = True) -> torch.Tensor:
    """One noise-free tick of every agent group, with weights ``actor[i]`` per copy ``[E, S, P + 1]`` or shared.

    Args:
        voltages: ``[E, N]``.
        actor: Per group (``layouts`` order) its weights, expanded per copy or shared ``[S, P + 1]``.
        topology: The network (groups in voltage order, leaks).
        layouts: The learner's group layouts.
        fired: ``[E, num_agents]`` bool: who fired on this tick.
        plan: ``tick_plan(topology, layouts, voltages)`` when the caller has it (an idle group's columns are
            held, cut from the graph).
        masked: Whether ``fired`` may hold a silent neuron; ``False``: it is all true, and the tick applies no
            mask (the same values; the gradient loses only exact zeros, see ``window_gradients``).

    Returns:
        ``[E, N]`` the next voltages, the input neurons unchanged.
    """
    parts = []
    for columns, i, leak, times_leak, times_rest, idle in plan or tick_plan(topology, layouts, voltages):
        own = voltages[:, columns]
        if i is None:
            parts.append(own)
            continue
        if idle:
            parts.append(own.detach())
            continue
        lay = layouts[i]
        drive = activate(potential(actor[i], with_bias(voltages, lay.pre)), lay.activation)
        moved = drive if leak == 0 else times_leak * own + times_rest * drive
        if not masked:
            parts.append(moved)
            continue
        held = own if leak == 0 else times_leak * own
        parts.append(torch.where(fired[:, lay.agent_slice], moved, held))
    return torch.cat(parts, 1)


def window_gradients(window: Sequence[WindowTick], actor: Sequence[torch.Tensor], learning: Sequence[int],
                     outputs: Sequence[int], topology: Topology, layouts: Sequence[Any], inputs: slice,
                     output_slope: OutputSlope, per_copy: bool = True, masked: bool = True) -> dict[int, torch.Tensor]:
    """Per-copy ``∂Q(x(τ), μ_out(v(τ)))/∂[K, b]`` ``[E, S, P + 1]`` of each ``learning`` group (module doc).

    ``per_copy=False``: the weights are shared leaves and the result is the sum over copies ``[S, P + 1]``
    (what a replayed batch's mean step needs, without a weight copy per row).

    Cost: a group whose voltage no group reads and whose weights are no leaf (a leak-free output: the outputs'
    actions are recomputed from their inputs at the end) is not run through the window, and with ``masked=False``
    no firing mask is applied. Both cut from the graph only branches whose gradient is exactly 0 (a mask that
    is all true, a column nothing reads): they added ±0 to gradients that also receive +0 from the input
    neurons' columns on every tick, so every gradient, zeros' signs included, is the same.

    Args:
        window: The stored ticks, newest (the live tick ``τ``) first.
        actor: Every group's current weights ``[S, P + 1]`` (``layouts`` order).
        learning: The groups whose weights are the leaves.
        outputs: The output groups.
        topology: The network.
        layouts: The learner's group layouts.
        inputs: The input neurons' voltage slice (clamped to the recorded inputs).
        output_slope: The critic's ``∂Q/∂a`` of an output group at the recomputed action.
        per_copy: Per-copy leaves and gradients (else shared leaves, the gradient summed over copies).
        masked: Whether a stored firing mask may hold a silent neuron (``False``: every one is all true).

    Returns:
        The gradient per learning group (zeros where no weight reaches an output within the window).
    """
    copies = window[0][0].shape[0]
    with torch.enable_grad():
        if per_copy:
            leaves = {i: actor[i].detach().expand(copies, -1, -1).clone().requires_grad_(True) for i in learning}
            expanded = [leaves.get(i, w.detach().expand(copies, -1, -1)) for i, w in enumerate(actor)]
        else:
            leaves = {i: actor[i].detach().clone().requires_grad_(True) for i in learning}
            expanded = [leaves.get(i, w.detach()) for i, w in enumerate(actor)]
        state = window[-1][0]
        read = read_columns(layouts)
        idle = frozenset(i for i, lay in enumerate(layouts) if i not in leaves
                         and read.isdisjoint(range(lay.neuron_slice.start, lay.neuron_slice.stop)))
        plan = tick_plan(topology, layouts, state, idle)
        # step from each stored tick (its firing mask) to the next one's recorded inputs and episode starts
        for (recorded, _, fresh), (_, fired, _) in zip(reversed(window[:-1]), reversed(window[1:]), strict=True):
            state = network_tick(state, expanded, topology, layouts, fired, plan, masked)
            state = torch.cat([state[:, :inputs.start], recorded[:, inputs], state[:, inputs.stop:]], 1)
            state = torch.where(fresh[:, None], recorded, state)
        actions, slopes = [], []
        for i in outputs:
            lay = layouts[i]
            pre1 = with_bias(state, lay.pre)
            drive = potential(expanded[i], pre1)
            mu = activate(drive, lay.activation)
            if mu.requires_grad:  # else no hidden weight reaches it within the window (e.g. its first tick)
                actions.append(mu)
                slopes.append(output_slope(i, pre1.detach(), drive.detach(), mu.detach()))
        grads: Sequence[torch.Tensor | None] = [None] * len(learning)
        if actions:
            grads = torch.autograd.grad(actions, [leaves[i] for i in learning], grad_outputs=slopes,
                                        allow_unused=True)
    return {i: torch.zeros_like(leaves[i]) if g is None else g for i, g in zip(learning, grads, strict=True)}
