"""Per-neuron critics, all neurons of a group at once, as pure tensor functions.

Every neuron ``n`` of an agent group has its own critic ``Q^n(x, a)`` of its critic input
``x`` (its presynaptic voltages by default; see ``critic_context`` in
``LocalDDPG``) and its own action ``a`` (its next voltage). A group's
critic parameters are stacked along a leading neuron axis ``S``, so the update of every
neuron of the group is a few batched matrix products. Nothing here is shared across neurons:
neuron ``n``'s update reads only neuron ``n``'s parameters, inputs and TD error.

A critic kind is three pure functions over a ``GroupBatch`` (``B`` transitions):

* ``td_error(params, target_params, batch, gamma)`` -> ``D [B, S]``, with
  ``D_i = r_i + γ (1 − done_i) Q^{n'}(x_{i+1}, μ^{n'}(v_{i+1})) − Q^n(x_i, a_i)``;
* ``critic_step(params, optimizer_state, batch, D, lr)``: one in-place critic step;
* ``action_gradient(params, batch)`` -> ``∂Q^n/∂a`` at ``(x_i, μ^n(v_i))``, ``[B, S]``.

The actor step is the same for every kind (``actor_step``):
``K^n += η_A mean_i ∂Q^n/∂a · σ'(K^n v_i) v_i`` (bias: input 1), by plain SGD (the draft's
rule) or, with ``actor_optimizer="adam"``, through a per-weight Adam (``actor_adam_step``; its
moments belong to one weight of one neuron, so the step stays local).

Kinds:

``linear``
    The draft's rule. ``Q = θ_vᵀx + θ_a a``, TD(0) by plain SGD:
    ``θ_v += η_Q mean_i D_i x_i``, ``θ_a += η_Q mean_i D_i a_i``. ``∂Q/∂a = θ_a`` is a
    constant, so the actor only learns a state-independent push per neuron.
``compatible``
    COPDAC-Q (Silver et al., 2014). ``φ(v) = ∇_{K^n} μ^n(v) = σ'(K^n v)·[v_pre, 1]``,
    ``Q = (a − μ^n(v)) φᵀw + θ_vᵀx``; ``w += η_Q mean D (a − μ) φ``, ``θ_v += η_Q mean D x``;
    the target value is ``V'(x_{i+1})`` (the advantage term vanishes at ``a = μ'``).
    ``∂Q/∂a = φᵀw``, so the shared actor step is ``K^n += η_A mean φ (φᵀw)``.
``bilinear``
    ``Q = θ_vᵀx + a (θ_a + wᵀx)``: the slope ``∂Q/∂a = θ_a + wᵀx`` depends on the state.
    Plain SGD on ``θ_v`` (input ``x``), ``θ_a`` (``a``) and ``w`` (``a x``).
``mlp``
    A small MLP per neuron on ``[x, a]`` (two ReLU layers of ``hidden`` units), trained by
    Adam on the squared TD error ``mean_i D_i²`` (target from the target sub-critic). The
    forward and backward passes are written out by hand as batched matrix products over the
    neuron axis, so no autograd graph is ever built.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import torch

Params = dict[str, torch.Tensor]

CRITIC_KINDS: tuple[str, ...] = ("linear", "compatible", "bilinear", "mlp")


class GroupBatch(NamedTuple):
    """What one group's update needs, for a batch of ``B`` transitions.

    Attributes:
        x: ``[B, C]`` critic input at ``v_i``.
        a: ``[B, S]`` actions taken by the group's neurons.
        reward: ``[B]`` rewards.
        not_done: ``[B]`` ``1 − terminated``.
        x_next: ``[B, C]`` critic input at ``v_{i+1}``.
        a_next: ``[B, S]`` target actor's actions ``μ^{n'}(v_{i+1})``.
        pre1: ``[B, P + 1]`` presynaptic voltages at ``v_i`` and a column of ones (bias input).
        mu: ``[B, S]`` current actor's actions ``μ^n(v_i)``.
        dmu: ``[B, S]`` ``σ'(K^n v_i + b^n)``.
        mask1: ``[S, P + 1]`` 0/1 connection mask (ones where fully connected), or ``None``.
    """

    x: torch.Tensor
    a: torch.Tensor
    reward: torch.Tensor
    not_done: torch.Tensor
    x_next: torch.Tensor
    a_next: torch.Tensor
    pre1: torch.Tensor
    mu: torch.Tensor
    dmu: torch.Tensor
    mask1: torch.Tensor | None


_CONSTANTS: dict[tuple[Any, ...], torch.Tensor] = {}


def constant(shape: tuple[int, ...], value: float, like: torch.Tensor) -> torch.Tensor:
    """A cached tensor of ``shape`` filled with ``value``, on ``like``'s device and dtype; never write to it.

    One allocation per shape and value instead of one per use (a bias column of ones, empty fields).
    """
    key = (shape, value, like.dtype, like.device)
    tensor = _CONSTANTS.get(key)
    if tensor is None:
        tensor = _CONSTANTS[key] = torch.full(shape, value, dtype=like.dtype, device=like.device)
    return tensor


def scalar(value: float, like: torch.Tensor) -> torch.Tensor | float:
    """``value`` as the operand of an op on ``like``: a cached 0-d tensor of its dtype, on the CPU.

    An op on a Python number first converts it to a 0-d tensor of the op's dtype (a few µs on the CPU,
    dozens of times an update); this is that tensor, made once, so the kernel reads the same rounded
    value and the arithmetic is the same. Only for float32/float64 CPU tensors; elsewhere ``value``
    itself, as before (half-precision kernels read a Python number at a higher precision, and GPU
    kernels were not checked).
    """
    if like.dtype not in (torch.float32, torch.float64) or like.device.type != "cpu":
        return value
    return constant((), value, like)


def one_minus(x: torch.Tensor) -> torch.Tensor:
    """``1 - x`` with the one as a cached scalar (``scalar``): the same bits as ``1.0 - x``."""
    return torch.sub(scalar(1.0, x), x)


def activation_derivative(potential: torch.Tensor, output: torch.Tensor, activation: str) -> torch.Tensor:
    """``σ'(potential)`` given ``output = σ(potential)``."""
    if activation == "tanh":
        return one_minus(output * output)
    if activation == "sigmoid":
        return output * one_minus(output)
    if activation == "relu":
        return (potential > 0).to(potential.dtype)
    return torch.ones_like(potential)


def _targets(reward: torch.Tensor, not_done: torch.Tensor, next_q: torch.Tensor, gamma: float) -> torch.Tensor:
    return torch.addcmul(reward[:, None], not_done[:, None], next_q, value=gamma)


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


# ---------------------------------------------------------------------------------------- linear
def linear_init(size: int, context: int, pre: int, generator: torch.Generator, dtype: torch.dtype,
                hidden: int = 32) -> Params:
    """Zero ``θ_v [S, C]`` and ``θ_a [S]``."""
    device = generator.device
    return {"theta_v": torch.zeros(size, context, device=device, dtype=dtype),
            "theta_a": torch.zeros(size, device=device, dtype=dtype)}


def linear_q(params: Params, x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """``Q = θ_vᵀx + θ_a a`` for every neuron: ``[B, S]``."""
    return (x @ params["theta_v"].T).addcmul_(a, params["theta_a"])


def linear_td_error(params: Params, target: Params, batch: GroupBatch, gamma: float) -> torch.Tensor:
    """TD errors ``[B, S]`` of the linear critic."""
    next_q = linear_q(target, batch.x_next, batch.a_next)
    return _targets(batch.reward, batch.not_done, next_q, gamma).sub_(linear_q(params, batch.x, batch.a))


def linear_critic_step(params: Params, state: Params, batch: GroupBatch, td: torch.Tensor, lr: float) -> None:
    """``θ_v += η_Q mean D x``, ``θ_a += η_Q mean D a``."""
    scale = lr / td.shape[0]
    params["theta_v"].add_(td.T @ batch.x, alpha=scale)
    params["theta_a"].add_((td * batch.a).sum(0), alpha=scale)


def linear_action_gradient(params: Params, batch: GroupBatch) -> torch.Tensor:
    """``∂Q/∂a = θ_a`` (the same for every transition)."""
    return params["theta_a"].expand_as(batch.a)


# ------------------------------------------------------------------------------------ compatible
def compatible_init(size: int, context: int, pre: int, generator: torch.Generator, dtype: torch.dtype,
                    hidden: int = 32) -> Params:
    """Zero advantage weights ``w [S, P + 1]`` and value weights ``θ_v [S, C]``."""
    device = generator.device
    return {"w": torch.zeros(size, pre + 1, device=device, dtype=dtype),
            "theta_v": torch.zeros(size, context, device=device, dtype=dtype)}


def _masked_w(params: Params, batch: GroupBatch) -> torch.Tensor:
    """``w`` restricted to existing connections (``φ`` has no component along a masked weight)."""
    return params["w"] if batch.mask1 is None else params["w"] * batch.mask1


def compatible_td_error(params: Params, target: Params, batch: GroupBatch, gamma: float) -> torch.Tensor:
    """TD errors of COPDAC-Q: ``r + γ V'(x') − [(a − μ) φᵀw + V(x)]``."""
    phi_w = batch.dmu * (batch.pre1 @ _masked_w(params, batch).T)
    q = (batch.a - batch.mu) * phi_w + batch.x @ params["theta_v"].T
    next_v = batch.x_next @ target["theta_v"].T
    return _targets(batch.reward, batch.not_done, next_v, gamma) - q


def compatible_critic_step(params: Params, state: Params, batch: GroupBatch, td: torch.Tensor, lr: float) -> None:
    """``w += η_Q mean D (a − μ) φ`` (masked like the actor), ``θ_v += η_Q mean D x``."""
    scale = lr / td.shape[0]
    step = (td * (batch.a - batch.mu) * batch.dmu).T @ batch.pre1
    if batch.mask1 is not None:
        step = step * batch.mask1
    params["w"].add_(step, alpha=scale)
    params["theta_v"].add_(td.T @ batch.x, alpha=scale)


def compatible_action_gradient(params: Params, batch: GroupBatch) -> torch.Tensor:
    """``∂Q/∂a = φ(v)ᵀw``."""
    return batch.dmu * (batch.pre1 @ _masked_w(params, batch).T)


# -------------------------------------------------------------------------------------- bilinear
def bilinear_init(size: int, context: int, pre: int, generator: torch.Generator, dtype: torch.dtype,
                  hidden: int = 32) -> Params:
    """Zero ``θ_v [S, C]``, ``θ_a [S]`` and ``w [S, C]``."""
    device = generator.device
    return {"theta_v": torch.zeros(size, context, device=device, dtype=dtype),
            "theta_a": torch.zeros(size, device=device, dtype=dtype),
            "w": torch.zeros(size, context, device=device, dtype=dtype)}


def bilinear_q(params: Params, x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """``Q = θ_vᵀx + a (θ_a + wᵀx)``: ``[B, S]``."""
    return x @ params["theta_v"].T + a * (params["theta_a"] + x @ params["w"].T)


def bilinear_td_error(params: Params, target: Params, batch: GroupBatch, gamma: float) -> torch.Tensor:
    """TD errors ``[B, S]`` of the bilinear critic."""
    next_q = bilinear_q(target, batch.x_next, batch.a_next)
    return _targets(batch.reward, batch.not_done, next_q, gamma) - bilinear_q(params, batch.x, batch.a)


def bilinear_critic_step(params: Params, state: Params, batch: GroupBatch, td: torch.Tensor, lr: float) -> None:
    """``θ_v += η_Q mean D x``, ``θ_a += η_Q mean D a``, ``w += η_Q mean D a x``."""
    scale = lr / td.shape[0]
    td_a = td * batch.a
    params["theta_v"].add_(td.T @ batch.x, alpha=scale)
    params["theta_a"].add_(td_a.sum(0), alpha=scale)
    params["w"].add_(td_a.T @ batch.x, alpha=scale)


def bilinear_action_gradient(params: Params, batch: GroupBatch) -> torch.Tensor:
    """``∂Q/∂a = θ_a + wᵀx``."""
    return params["theta_a"] + batch.x @ params["w"].T


# ------------------------------------------------------------------------------------------- mlp
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8


def mlp_init(size: int, context: int, pre: int, generator: torch.Generator, dtype: torch.dtype,
             hidden: int = 32) -> Params:
    """Per-neuron ``[x, a] -> hidden -> hidden -> 1`` ReLU MLPs, ``nn.Linear``'s uniform init."""
    device = generator.device

    def uniform(shape: tuple[int, ...], fan_in: int) -> torch.Tensor:
        bound = 1.0 / math.sqrt(fan_in)
        return (torch.rand(shape, generator=generator, device=device, dtype=dtype) * 2 - 1) * bound

    w1 = uniform((size, context + 1, hidden), context + 1)
    return {
        "w1x": w1[:, :context].contiguous(), "w1a": w1[:, context].contiguous(),
        "b1": uniform((size, hidden), context + 1),
        "w2": uniform((size, hidden, hidden), hidden), "b2": uniform((size, hidden), hidden),
        "w3": uniform((size, hidden), hidden), "b3": uniform((size,), hidden),
    }


def _relu_backward(grad: torch.Tensor, preactivation: torch.Tensor) -> torch.Tensor:
    """``grad`` where ``preactivation > 0``, else 0 (ReLU's backward; one fused kernel, no bool tensor)."""
    return torch.ops.aten.threshold_backward(grad, preactivation, 0.0)


def _mlp_forward(params: Params, x: torch.Tensor, a: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Forward pass; returns ``(q [S, B], z1, h1, z2, h2)`` with hidden tensors ``[S, B, H]``."""
    w1x = params["w1x"]
    # [S, B, H], contiguous (einsum's result is a permuted view); bmm on the expanded x is what
    # matmul dispatches to here, without its five reshaping ops
    z1 = torch.bmm(x.expand(w1x.shape[0], -1, -1), w1x)
    z1.addcmul_(a.T[:, :, None], params["w1a"][:, None, :]).add_(params["b1"][:, None, :])
    h1 = torch.relu(z1)
    z2 = torch.baddbmm(params["b2"][:, None, :], h1, params["w2"])
    h2 = torch.relu(z2)
    q = torch.baddbmm(params["b3"].view(-1, 1, 1), h2, params["w3"][:, :, None]).squeeze(-1)  # one view op
    return q, z1, h1, z2, h2


def mlp_q(params: Params, x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """Every neuron's sub-critic value ``[B, S]``."""
    return _mlp_forward(params, x, a)[0].T


def _mlp_td(target: Params, batch: GroupBatch, gamma: float, q: torch.Tensor) -> torch.Tensor:
    """TD errors ``[B, S]`` given the current sub-critics' values ``q`` ``[S, B]``."""
    next_q = mlp_q(target, batch.x_next, batch.a_next)
    return _targets(batch.reward, batch.not_done, next_q, gamma).sub_(q.T)


def mlp_td_error(params: Params, target: Params, batch: GroupBatch, gamma: float) -> torch.Tensor:
    """TD errors ``[B, S]`` of the MLP sub-critics."""
    return _mlp_td(target, batch, gamma, _mlp_forward(params, batch.x, batch.a)[0])


def _mlp_backward(params: Params, x: torch.Tensor, a: torch.Tensor, td: torch.Tensor,
                  forward: tuple[torch.Tensor, ...]) -> Params:
    """Gradients of ``mean_i D_i²`` from a forward pass at ``(x, a)`` (see ``mlp_gradients``)."""
    _, z1, h1, z2, h2 = forward
    dq = td.T * scalar(-2.0 / td.shape[0], td)  # [S, B]
    grads: Params = {"w3": torch.bmm(dq[:, None, :], h2).squeeze(1), "b3": dq.sum(1)}
    dz2 = _relu_backward(dq[:, :, None] * params["w3"][:, None, :], z2)
    grads["w2"] = torch.bmm(h1.transpose(1, 2), dz2)
    grads["b2"] = dz2.sum(1)
    dz1 = _relu_backward(torch.bmm(dz2, params["w2"].transpose(1, 2)), z1)
    grads["w1x"] = torch.bmm(x.T.expand(dz1.shape[0], -1, -1), dz1)  # matmul(x.T, dz1)'s own bmm
    grads["w1a"] = torch.bmm(a.T[:, None, :], dz1).squeeze(1)
    grads["b1"] = dz1.sum(1)
    return grads


def mlp_gradients(params: Params, x: torch.Tensor, a: torch.Tensor, td: torch.Tensor) -> Params:
    """Gradients of ``mean_i D_i²`` per neuron w.r.t. its sub-critic (TD target held fixed).

    With ``D = y − Q``, ``∂/∂Q mean_i D_i² = −2 D_i / B``; backpropagated through each
    neuron's own MLP only.
    """
    return _mlp_backward(params, x, a, td, _mlp_forward(params, x, a))


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


def mlp_critic_step(params: Params, state: Params, batch: GroupBatch, td: torch.Tensor, lr: float) -> None:
    """One Adam step of every neuron's sub-critic on its squared TD error."""
    adam_step(params, state, mlp_gradients(params, batch.x, batch.a, td), lr)


def mlp_action_gradient(params: Params, batch: GroupBatch) -> torch.Tensor:
    """``∂Q^n/∂a`` at ``(x_i, μ^n(v_i))`` by the chain rule through each sub-critic: ``[B, S]``."""
    _, z1, _, _, h2 = _mlp_forward(params, batch.x, batch.mu)
    dz2 = h2.sign_().mul_(params["w3"][:, None, :])  # relu'(z2) w3, in place of the unused h2
    dz1 = _relu_backward(torch.bmm(dz2, params["w2"].transpose(1, 2)), z1)
    return torch.bmm(dz1, params["w1a"][:, :, None]).squeeze(-1).T


def mlp_update(params: Params, target: Params, state: Params, batch: GroupBatch, gamma: float,
               lr: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``mlp_td_error``, ``mlp_critic_step`` and ``mlp_action_gradient`` in one pass.

    The same arithmetic, except that the critic step reuses the TD error's forward pass instead
    of recomputing it.
    """
    forward = _mlp_forward(params, batch.x, batch.a)
    td = _mlp_td(target, batch, gamma, forward[0])
    adam_step(params, state, _mlp_backward(params, batch.x, batch.a, td, forward), lr)
    return td, mlp_action_gradient(params, batch)


class CriticKind(NamedTuple):
    """The pure functions of one critic kind.

    ``update`` runs ``td_error``, ``critic_step`` and ``action_gradient`` in that order and returns
    ``(D, ∂Q/∂a)``; a kind may fuse them (``mlp`` shares one forward pass).
    """

    name: str
    init: Callable[..., Params]
    td_error: Callable[[Params, Params, GroupBatch, float], torch.Tensor]
    critic_step: Callable[[Params, Params, GroupBatch, torch.Tensor, float], None]
    action_gradient: Callable[[Params, GroupBatch], torch.Tensor]
    fused_update: Callable[..., tuple[torch.Tensor, torch.Tensor]] | None = None

    def update(self, params: Params, target: Params, state: Params, batch: GroupBatch, gamma: float,
               lr: float) -> tuple[torch.Tensor, torch.Tensor]:
        """TD error, one in-place critic step, then ``∂Q/∂a`` from the updated critic."""
        if self.fused_update is not None:
            return self.fused_update(params, target, state, batch, gamma, lr)
        td = self.td_error(params, target, batch, gamma)
        self.critic_step(params, state, batch, td, lr)
        return td, self.action_gradient(params, batch)


CRITICS: dict[str, CriticKind] = {
    "linear": CriticKind("linear", linear_init, linear_td_error, linear_critic_step, linear_action_gradient),
    "compatible": CriticKind("compatible", compatible_init, compatible_td_error, compatible_critic_step,
                             compatible_action_gradient),
    "bilinear": CriticKind("bilinear", bilinear_init, bilinear_td_error, bilinear_critic_step,
                           bilinear_action_gradient),
    "mlp": CriticKind("mlp", mlp_init, mlp_td_error, mlp_critic_step, mlp_action_gradient, mlp_update),
}
