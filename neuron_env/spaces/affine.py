"""Affine maps between flat voltages and flat task values: the encoders' and the Box decoder's arithmetic.

``AffineMap`` is ``y = clip(x * scale + offset, low, high)`` per dimension, with a numpy twin;
``affine_encoder_map`` and ``affine_decoder_map`` build the maps of the ``"identity"``/``"affine"``
encoders and of the ``"affine"`` Box decoder (``neuron_env.dynamics`` uses them as well).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class AffineMap:
    """``y = clip(x * scale + offset, low, high)`` with per-dimension tensors."""

    scale: torch.Tensor
    offset: torch.Tensor
    low: torch.Tensor
    high: torch.Tensor

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the map to ``[..., dim]`` values."""
        if self.is_identity:
            return x
        return torch.addcmul(self.offset, x, self.scale).clamp_(self.low, self.high)

    @property
    def is_identity(self) -> bool:
        """Whether the map changes nothing (scale 1, offset 0, no finite bound)."""
        cached = self.__dict__.get("_is_identity")
        if cached is None:
            cached = bool((self.scale == 1).all() and (self.offset == 0).all()
                          and torch.isinf(self.low).all() and torch.isinf(self.high).all())
            object.__setattr__(self, "_is_identity", cached)
        return cached

    def apply_numpy(self, x: np.ndarray) -> np.ndarray:
        """The same map on a float32 numpy array (the CPU fast path; a CPU map only).

        Returns a new array, or ``x`` itself for the identity map (as ``__call__``).
        """
        if self.is_identity:
            return x
        arrays = self.__dict__.get("_numpy")
        if arrays is None:
            arrays = tuple(t.numpy() for t in (self.scale, self.offset, self.low, self.high))
            object.__setattr__(self, "_numpy", arrays)
        scale, offset, low, high = arrays
        y = x * scale
        y += offset
        # two one-sided bounds: np.clip's extra checks cost more than these at a few values
        np.minimum(y, high, out=y)
        np.maximum(y, low, out=y)
        return y

    def to(self, device: str | torch.device) -> AffineMap:
        """Copy to a device."""
        return AffineMap(*(t.to(device) for t in (self.scale, self.offset, self.low, self.high)))


def affine_encoder_map(low: np.ndarray, high: np.ndarray, kind: str) -> AffineMap:
    """The affine part of an encoder over flat bounds ``low``/``high``: ``"identity"`` or ``"affine"``.

    ``"identity"`` passes values through; ``"affine"`` maps finite ``[low, high]`` onto
    ``[-1, 1]`` per dimension. Neither clips.

    Raises:
        ValueError: On another ``kind``.
    """
    low = np.asarray(low, dtype=np.float64)
    high = np.asarray(high, dtype=np.float64)
    scale = np.ones_like(low)
    offset = np.zeros_like(low)
    if kind == "affine":
        finite = np.isfinite(low) & np.isfinite(high) & (high > low)
        scale[finite] = 2.0 / (high[finite] - low[finite])
        offset[finite] = -1.0 - low[finite] * scale[finite]
    elif kind != "identity":
        raise ValueError(f"encoder {kind!r} is unknown; use 'identity' or 'affine'")
    inf = np.full_like(low, np.inf)
    return AffineMap(*(torch.as_tensor(a, dtype=torch.float32) for a in (scale, offset, -inf, inf)))


def affine_decoder_map(output_range: tuple[float, float], low: np.ndarray, high: np.ndarray) -> AffineMap:
    """The Box decoder's map from output voltages in ``output_range`` onto actions in ``[low, high]``.

    ``low + (y − y_min) / (y_max − y_min) · (high − low)`` where both ranges are finite (as
    Stable-Baselines3's ``unscale_action`` does for tanh), else the identity; then clipped to
    the action bounds.
    """
    low = np.asarray(low, dtype=np.float64)
    high = np.asarray(high, dtype=np.float64)
    y_min, y_max = output_range
    scale = np.ones_like(low)
    offset = np.zeros_like(low)
    finite = np.isfinite(low) & np.isfinite(high) & np.isfinite(y_min) & np.isfinite(y_max)
    scale[finite] = (high[finite] - low[finite]) / (y_max - y_min)
    offset[finite] = low[finite] - y_min * scale[finite]
    return AffineMap(*(torch.as_tensor(a, dtype=torch.float32) for a in (scale, offset, low, high)))
