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

The actor step is the same for every kind and lives in ``neuron_env.agents.optim``
(``actor_step``, ``actor_adam_step``): the critic only supplies the slope ``∂Q^n/∂a``.

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
``joint``
    Not per neuron: one MLP per *group* on ``[x, a_1 … a_S]`` (the group's actions together), as
    DDPG's critic is for the output layer; neuron ``n``'s slope is ``∂Q/∂a_n``. Every neuron of the
    group reads its group-mates' actions (activity, not parameters), so it is the output layer's
    framework critic, not a per-neuron one: with several outputs, a per-neuron critic ``Q^n(x, a_n)``
    sees the other outputs' actions only as noise.
``twin``
    Two ``joint`` critics, as TD3's clipped double Q (Fujimoto et al., 2018): both regress to
    ``r + γ (1 − done) min(Q'_1, Q'_2)(x_{i+1}, a_{i+1})`` and the slope is ``∂Q_1/∂a_n``. A single
    critic's maximisation bias is what the actor climbs; on MuJoCo tasks that end when the body falls
    (Walker2d-v5, Hopper-v5) the E4 runs measured ``Q − G`` of +100 to +240 with one critic, and
    SB3 TD3's critics below zero (``studies/locomotion_diagnosis.py``). Its parameters are the two
    critics' stacked on a leading axis of 2, so both steps are the same batched products. Only the
    fused ``update`` is defined (its two TD errors need the targets): ``td_error`` returns the first
    critic's error, for monitoring.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
from neuron_env.agents.optim import adam_step
from neuron_env.agents.tensors import GroupBatch, Params, scalar

CRITIC_KINDS: tuple[str, ...] = ("linear", "compatible", "bilinear", "mlp", "joint", "twin")


def _targets(reward: torch.Tensor, not_done: torch.Tensor, next_q: torch.Tensor, gamma: float) -> torch.Tensor:
    return torch.addcmul(reward[:, None], not_done[:, None], next_q, value=gamma)


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
def _linear_uniform(shape: tuple[int, ...], fan_in: int, generator: torch.Generator,
                    dtype: torch.dtype) -> torch.Tensor:
    """``nn.Linear``'s init: uniform in ``±1/sqrt(fan_in)``, drawn from ``generator``."""
    bound = 1.0 / math.sqrt(fan_in)
    return (torch.rand(shape, generator=generator, device=generator.device, dtype=dtype) * 2 - 1) * bound


def mlp_init(size: int, context: int, pre: int, generator: torch.Generator, dtype: torch.dtype,
             hidden: int = 32) -> Params:
    """Per-neuron ``[x, a] -> hidden -> hidden -> 1`` ReLU MLPs, ``nn.Linear``'s uniform init."""

    def uniform(shape: tuple[int, ...], fan_in: int) -> torch.Tensor:
        return _linear_uniform(shape, fan_in, generator, dtype)

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


# ----------------------------------------------------------------------------------------- joint
def joint_init(size: int, context: int, pre: int, generator: torch.Generator, dtype: torch.dtype,
               hidden: int = 32) -> Params:
    """One ``[x, a_1 … a_S] -> hidden -> hidden -> 1`` ReLU MLP for the whole group, ``nn.Linear``'s uniform init."""

    def uniform(shape: tuple[int, ...], fan_in: int) -> torch.Tensor:
        return _linear_uniform(shape, fan_in, generator, dtype)

    w1 = uniform((context + size, hidden), context + size)
    return {"w1x": w1[:context].contiguous(), "w1a": w1[context:].contiguous(),
            "b1": uniform((hidden,), context + size), "w2": uniform((hidden, hidden), hidden),
            "b2": uniform((hidden,), hidden), "w3": uniform((hidden,), hidden), "b3": uniform((), hidden)}


def _joint_forward(params: Params, x: torch.Tensor, a: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """``(q [B], z1, h1, z2, h2)`` with hidden tensors ``[B, H]``."""
    z1 = torch.addmm(params["b1"], x, params["w1x"]).addmm_(a, params["w1a"])
    h1 = torch.relu(z1)
    z2 = torch.addmm(params["b2"], h1, params["w2"])
    h2 = torch.relu(z2)
    return h2 @ params["w3"] + params["b3"], z1, h1, z2, h2


def joint_q(params: Params, x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """The group's value ``Q(x, a_1 … a_S)``, ``[B]``."""
    return _joint_forward(params, x, a)[0]


def _joint_td(target: Params, batch: GroupBatch, gamma: float, q: torch.Tensor) -> torch.Tensor:
    next_q = joint_q(target, batch.x_next, batch.a_next)
    return torch.addcmul(batch.reward, batch.not_done, next_q, value=gamma) - q


def joint_td_error(params: Params, target: Params, batch: GroupBatch, gamma: float) -> torch.Tensor:
    """TD errors of the group critic, ``[B, S]`` (the same error for every neuron of the group)."""
    td = _joint_td(target, batch, gamma, joint_q(params, batch.x, batch.a))
    return td[:, None].expand(-1, batch.a.shape[1])


def joint_gradients(params: Params, x: torch.Tensor, a: torch.Tensor, td: torch.Tensor,
                    forward: tuple[torch.Tensor, ...] | None = None) -> Params:
    """Gradients of ``mean_i D_i²`` w.r.t. the group critic (TD target held fixed); ``td``: ``[B]``."""
    _, z1, h1, z2, h2 = forward if forward is not None else _joint_forward(params, x, a)
    dq = td * (-2.0 / td.shape[0])
    grads: Params = {"w3": h2.T @ dq, "b3": dq.sum()}
    dz2 = _relu_backward(dq[:, None] * params["w3"][None, :], z2)
    grads["w2"], grads["b2"] = h1.T @ dz2, dz2.sum(0)
    dz1 = _relu_backward(dz2 @ params["w2"].T, z1)
    grads["w1x"], grads["w1a"], grads["b1"] = x.T @ dz1, a.T @ dz1, dz1.sum(0)
    return grads


def joint_critic_step(params: Params, state: Params, batch: GroupBatch, td: torch.Tensor, lr: float) -> None:
    """One Adam step of the group critic on its squared TD error (``td``: ``[B, S]`` as ``joint_td_error``)."""
    adam_step(params, state, joint_gradients(params, batch.x, batch.a, td[:, 0]), lr)


def joint_action_gradient(params: Params, batch: GroupBatch) -> torch.Tensor:
    """``∂Q/∂a_n`` for every neuron ``n`` of the group at ``(x_i, μ(v_i))``, ``[B, S]``."""
    _, z1, _, z2, _ = _joint_forward(params, batch.x, batch.mu)
    dz2 = _relu_backward(params["w3"][None, :].expand(z2.shape[0], -1), z2)
    dz1 = _relu_backward(dz2 @ params["w2"].T, z1)
    return dz1 @ params["w1a"].T


def joint_update(params: Params, target: Params, state: Params, batch: GroupBatch, gamma: float,
                 lr: float) -> tuple[torch.Tensor, torch.Tensor]:
    """TD error, one Adam step and the action slopes, sharing the TD error's forward pass."""
    forward = _joint_forward(params, batch.x, batch.a)
    td = _joint_td(target, batch, gamma, forward[0])
    adam_step(params, state, joint_gradients(params, batch.x, batch.a, td, forward), lr)
    return td[:, None].expand(-1, batch.a.shape[1]), joint_action_gradient(params, batch)


def twin_init(size: int, context: int, pre: int, generator: torch.Generator, dtype: torch.dtype,
              hidden: int = 32) -> Params:
    """Two ``joint`` critics drawn one after the other, stacked on a leading axis of 2."""
    first = joint_init(size, context, pre, generator, dtype, hidden)
    second = joint_init(size, context, pre, generator, dtype, hidden)
    return {name: torch.stack([first[name], second[name]]) for name in first}


def _twin_forward(params: Params, x: torch.Tensor, a: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """``(q [2, B], z1, h1, z2, h2)`` with hidden tensors ``[2, B, H]``: both critics at once."""
    z1 = torch.matmul(x, params["w1x"]).add_(torch.matmul(a, params["w1a"])).add_(params["b1"][:, None, :])
    h1 = torch.relu(z1)
    z2 = torch.baddbmm(params["b2"][:, None, :], h1, params["w2"])
    h2 = torch.relu(z2)
    return torch.bmm(h2, params["w3"][:, :, None])[..., 0] + params["b3"][:, None], z1, h1, z2, h2


def twin_q(params: Params, x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """Both critics' values ``Q_k(x, a_1 … a_S)``, ``[2, B]``."""
    return _twin_forward(params, x, a)[0]


def _twin_td(target: Params, batch: GroupBatch, gamma: float, q: torch.Tensor) -> torch.Tensor:
    """``[2, B]`` TD errors of both critics against the clipped double-Q target."""
    next_q = twin_q(target, batch.x_next, batch.a_next).amin(dim=0)
    return torch.addcmul(batch.reward, batch.not_done, next_q, value=gamma)[None, :] - q


def twin_td_error(params: Params, target: Params, batch: GroupBatch, gamma: float) -> torch.Tensor:
    """The first critic's TD errors, ``[B, S]`` (the same for every neuron of the group)."""
    td = _twin_td(target, batch, gamma, twin_q(params, batch.x, batch.a))
    return td[0][:, None].expand(-1, batch.a.shape[1])


def twin_gradients(params: Params, x: torch.Tensor, a: torch.Tensor, td: torch.Tensor,
                   forward: tuple[torch.Tensor, ...]) -> Params:
    """Gradients of ``Σ_k mean_i D_{k,i}²`` w.r.t. both critics (target held fixed); ``td``: ``[2, B]``."""
    _, z1, h1, z2, h2 = forward
    dq = td * (-2.0 / td.shape[1])
    grads: Params = {"w3": torch.bmm(h2.transpose(1, 2), dq[:, :, None])[..., 0], "b3": dq.sum(1)}
    dz2 = _relu_backward(dq[:, :, None] * params["w3"][:, None, :], z2)
    grads["w2"], grads["b2"] = torch.bmm(h1.transpose(1, 2), dz2), dz2.sum(1)
    dz1 = _relu_backward(torch.bmm(dz2, params["w2"].transpose(1, 2)), z1)
    grads["w1x"], grads["w1a"], grads["b1"] = torch.matmul(x.T, dz1), torch.matmul(a.T, dz1), dz1.sum(1)
    return grads


def twin_critic_step(params: Params, state: Params, batch: GroupBatch, td: torch.Tensor, lr: float) -> None:
    """Not defined: the second critic's TD error needs the targets; ``twin_update`` steps both."""
    raise NotImplementedError("the twin critic steps through CriticKind.update (twin_update), which has its targets")


def twin_action_gradient(params: Params, batch: GroupBatch) -> torch.Tensor:
    """``∂Q_1/∂a_n`` (the first critic's slope, as TD3's actor reads) at ``(x_i, μ(v_i))``, ``[B, S]``."""
    return joint_action_gradient({name: tensor[0] for name, tensor in params.items()}, batch)


def twin_update(params: Params, target: Params, state: Params, batch: GroupBatch, gamma: float,
                lr: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Both critics' TD errors and one Adam step, then the first critic's slopes; returns its ``D [B, S]``."""
    forward = _twin_forward(params, batch.x, batch.a)
    td = _twin_td(target, batch, gamma, forward[0])
    adam_step(params, state, twin_gradients(params, batch.x, batch.a, td, forward), lr)
    return td[0][:, None].expand(-1, batch.a.shape[1]), twin_action_gradient(params, batch)


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
    "joint": CriticKind("joint", joint_init, joint_td_error, joint_critic_step, joint_action_gradient, joint_update),
    "twin": CriticKind("twin", twin_init, twin_td_error, twin_critic_step, twin_action_gradient, twin_update),
}
