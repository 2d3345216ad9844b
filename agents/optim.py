"""Step rules and optimizer plumbing of the local learners: actor steps, per-weight Adam, flat buffers.

Everything here is elementwise per weight, so per neuron: a neuron's step reads only its own
weights, its own gradient and its own optimizer moments, and no state is shared across neurons.

Actor steps (every rule that steps a group's actor along a slope ``g = ∂Q/∂a`` or a message):
``[K, b] += η_A mean_i g_i σ'(K v_i + b) [v_i, 1]`` by plain SGD (``actor_step``, the draft's
rule) or through per-weight Adam (``actor_adam_step``), optionally followed by a max-norm cap per
neuron (``max_norm_``).

Flat buffers: a group's critic, its target copy and its Adam moments are views into one 1-D
buffer each (``flatten_params``), so that an elementwise step over all of them (Adam, the Polyak
update) is one op over the buffer instead of one op per tensor, with the same arithmetic.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from neuron_env.agents.tensors import GroupBatch, Params, constant, scalar

ACTOR_OPTIMIZERS: tuple[str, ...] = ("sgd", "adam")


def actor_ascent(batch: GroupBatch, dq_da: torch.Tensor, scale: float = 1.0,
                 message: torch.Tensor | None = None) -> torch.Tensor:
    """The local policy gradient ``mean_i ∂Q/∂a σ'(K v_i + b) [v_i, 1]``, ``[S, P + 1]`` (masked), times ``scale``.

    ``message``: the product ``σ'(K v_i + b) ∂Q/∂a`` ``[B, S]`` when the caller has it already (the
    feedback learner's message), saving its recomputation. ``scale=-1`` gives the negated gradient
    with the same bits as negating the result (rounding is symmetric in sign), one op fewer.
    """
    signal = dq_da * batch.dmu if message is None else message
    step = signal.T @ batch.pre1
    step.mul_(scalar(scale / batch.pre1.shape[0], step))
    if batch.mask1 is not None:
        step.mul_(batch.mask1)
    return step


def actor_step(weight: torch.Tensor, batch: GroupBatch, dq_da: torch.Tensor, lr: float,
               message: torch.Tensor | None = None) -> None:
    """``[K, b] += η_A mean_i ∂Q/∂a σ'(K v_i + b) [v_i, 1]`` in place on ``weight`` ``[S, P + 1]``.

    ``message``: as in ``actor_ascent``.
    """
    weight.add_(actor_ascent(batch, dq_da, message=message), alpha=lr)


def max_norm_(weight: torch.Tensor, max_norm: float) -> None:
    """Rescale in place every row of ``weight`` ``[S, P + 1]`` whose input weights exceed ``max_norm``.

    Max-norm regularization (Srebro and Shraibman 2005; Srivastava et al. 2014) per neuron: row
    ``n``'s input weights ``K^n`` (the bias column excluded) are scaled down to L2 norm
    ``max_norm`` when longer; shorter rows are untouched. A neuron reads only its own row, so the
    constraint is as local as the step. Masked (zero) weights stay zero.
    """
    inputs = weight[:, :-1]
    norms = torch.linalg.vector_norm(inputs, dim=1, keepdim=True)
    inputs.mul_(norms.clamp_min_(max_norm).reciprocal_().mul_(max_norm))


def actor_adam_step(weight: torch.Tensor, state: Params, batch: GroupBatch, dq_da: torch.Tensor, lr: float,
                    message: torch.Tensor | None = None) -> None:
    """The same ascent direction through Adam (moments per weight, so per neuron) in place.

    Masked weights get a zero gradient, hence zero moments and a zero step: they stay zero.
    ``message``: as in ``actor_ascent``.
    """
    adam_step({"actor": weight}, state, {"actor": actor_ascent(batch, dq_da, -1.0, message)}, lr)


ADAM_BETAS = (0.9, 0.999)


ADAM_EPS = 1e-8


#: Bytes from the start of one tensor of a flat buffer to the next: c10's CPU allocation alignment, so
#: that each view starts as aligned as a tensor of its own would (a kernel may pick its path by alignment).
FLAT_ALIGNMENT = 64


def flat_cat(tensors: Iterable[torch.Tensor]) -> torch.Tensor:
    """``tensors`` flattened one after another into one new 1-D tensor: the layout of ``flatten_params``.

    Each is followed by zeros up to a multiple of ``FLAT_ALIGNMENT`` bytes.
    """
    pieces = []
    for t in tensors:
        flat = t.reshape(-1)
        pieces.append(flat)
        step = max(1, FLAT_ALIGNMENT // flat.element_size())
        pad = -flat.numel() % step
        if pad:
            pieces.append(constant((pad,), 0.0, flat))
    return torch.cat(pieces)


def flatten_params(params: Params) -> Params:
    """The same values, copied into one new buffer (``flat_cat``): ``params``' tensors as views of it, in order.

    An elementwise step over every tensor of such a dict (Adam, the Polyak target update) then runs as
    one op over the buffer (``flat_buffer``) instead of one op per tensor: element by element the same
    arithmetic, with a few kernel launches instead of dozens (the padding stays zero). Tensors of
    mixed dtypes or devices are copied one by one instead.
    """
    tensors = list(params.values())
    if not tensors:
        return {}
    if any(t.dtype != tensors[0].dtype or t.device != tensors[0].device for t in tensors):
        return {name: t.clone() for name, t in params.items()}
    flat = flat_cat(tensors)
    step = max(1, FLAT_ALIGNMENT // flat.element_size())
    views: Params = {}
    start = 0
    for name, t in params.items():
        views[name] = flat[start:start + t.numel()].view(t.shape)
        start += t.numel() + (-t.numel() % step)
    return views


def flat_buffer(tensors: Iterable[torch.Tensor]) -> torch.Tensor | None:
    """The 1-D buffer that ``tensors`` are, in order, the contiguous views of (``flatten_params``' layout).

    ``None`` when they are not (a plain dict, an empty one, or a tensor replaced since): callers then
    run one op per tensor.
    """
    base: torch.Tensor | None = None
    end = step = 0
    for t in tensors:
        if base is None:
            base = t._base
            if base is None or base.dim() != 1 or not base.is_contiguous():
                return None
            end, step = base.storage_offset(), max(1, FLAT_ALIGNMENT // base.element_size())
        if t._base is not base or t.storage_offset() != end or not t.is_contiguous():
            return None
        numel = t.numel()
        end += numel + (-numel % step)
    if base is None or end != base.storage_offset() + base.numel():
        return None
    return base


def params_sum(params: Params) -> torch.Tensor:
    """A 0-d sum of every value of ``params`` (finite iff all are, barring overflow): one op when flat."""
    flat = flat_buffer(params.values())
    if flat is not None:
        return flat.sum()
    return torch.stack([p.sum() for p in params.values()]).sum()


def _adam_tensors(params: Params, state: Params,
                  grads: Params) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]:
    """``(parameter, m, v, gradient)`` per tensor, or one row of flat buffers when parameters and moments are flat."""
    names = list(params)
    flat = flat_buffer(params.values())
    if flat is not None:
        m = flat_buffer([state[f"m/{name}"] for name in names])
        v = flat_buffer([state[f"v/{name}"] for name in names])
        if m is not None and v is not None:
            return [(flat, m, v, flat_cat(grads[name] for name in names))]
    return [(params[name], state[f"m/{name}"], state[f"v/{name}"], grads[name]) for name in names]


def adam_step(params: Params, state: Params, grads: Params, lr: float) -> None:
    """One Adam step (``torch.optim.Adam``'s arithmetic, elementwise, so per neuron) in place.

    ``state`` holds ``step`` (a 0-d tensor) and ``m/<name>``, ``v/<name>`` moments, created on
    the first call (flat like ``params`` when ``params`` is flat, so that the step is one op per
    line below instead of one per tensor; the same arithmetic either way).
    """
    beta1, beta2 = ADAM_BETAS
    if "step" not in state:
        state["step"] = torch.zeros((), dtype=torch.float64)
        zeros = {name: torch.zeros_like(p) for name, p in params.items()}
        if flat_buffer(params.values()) is not None:
            m, v = flatten_params(zeros), flatten_params(zeros)
        else:
            m, v = zeros, {name: z.clone() for name, z in zeros.items()}
        for name in params:
            state[f"m/{name}"], state[f"v/{name}"] = m[name], v[name]
    state["step"].add_(scalar(1.0, state["step"]))
    t = float(state["step"])
    correction1 = 1 - beta1**t
    correction2_sqrt = math.sqrt(1 - beta2**t)
    for p, m, v, g in _adam_tensors(params, state, grads):
        m.lerp_(g, 1 - beta1)
        v.mul_(scalar(beta2, v)).addcmul_(g, g, value=1 - beta2)
        denom = (v.sqrt() / correction2_sqrt).add_(scalar(ADAM_EPS, v))
        p.addcdiv_(m, denom, value=-lr / correction1)


def flatten_adam_state(state: Params) -> Params:
    """``state`` (``adam_step``'s) with its ``m/`` and its ``v/`` moments each copied into one flat buffer.

    For a restored checkpoint: the moments of flat parameters are flat again (``_adam_tensors``).
    """
    if "step" not in state:
        return state
    m = flatten_params({k: t for k, t in state.items() if k.startswith("m/")})
    v = flatten_params({k: t for k, t in state.items() if k.startswith("v/")})
    return {k: m[k] if k in m else v[k] if k in v else t for k, t in state.items()}
