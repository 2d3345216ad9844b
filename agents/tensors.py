"""Tensor types and small helpers that every learner's pure functions share.

``Params`` is a named set of tensors (one group's critic, or its optimizer state); ``GroupBatch``
is what one group's update reads for a batch of transitions. ``constant``/``scalar`` cache the
small constant tensors an update would otherwise allocate dozens of times (the same values, so
the same arithmetic); ``activation_derivative`` is ``σ'`` from a forward pass's output.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch

Params = dict[str, torch.Tensor]


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
