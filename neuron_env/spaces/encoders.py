"""Observation encoders ε: a batch of task observations to input voltages, and how one is chosen.

``ObservationEncoder`` is the base class; ``FlattenEncoder`` (``"identity"``, ``"affine"``),
``RandomProjectionEncoder`` (``"projection"``, the image default) and ``ModuleEncoder`` (a frozen
``torch.nn.Module``) the built-in ones; ``make_observation_encoder`` picks one for a space.
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from neuron_env.errors import TaskError
from neuron_env.spaces.affine import AffineMap, affine_encoder_map
from neuron_env.spaces.flatten import (
    batch_to_tensors,
    flat_description,
    flatten_batch,
    flatten_batch_tensor,
    is_image_space,
    unsupported_part,
)

#: Input neurons of the default image encoder (``RandomProjectionEncoder``).
IMAGE_PROJECTION_SIZE = 64
#: Seed of the default image encoder's projection matrix.
IMAGE_PROJECTION_SEED = 0
#: The encoder kinds a string ``encoder=`` may name.
ENCODER_KINDS: tuple[str, ...] = ("identity", "affine", "projection")


class ObservationEncoder:
    """The encoder ε: a batch of task observations to ``[E, size]`` input voltages (base class).

    Subclasses set ``space`` (the task's observation space), ``size`` (the input neurons) and
    ``description``, and implement ``__call__`` on tensors. ``apply_numpy`` (the CPU core's path)
    defaults to ``__call__`` on CPU tensors; ``bounds`` to unbounded voltages.

    Attributes:
        space: The task's observation space.
        size: Number of input neurons (the encoded observation's length).
        description: One line for ``neuron-env info``.
        is_identity: Whether ``apply_numpy`` returns a 1-D Box's observations unchanged (the
            core then writes them into the voltages without a call).
    """

    space: gym.Space
    size: int
    description: str
    is_identity: bool = False

    def as_tensors(self, observations: Any, device: str | torch.device) -> Any:
        """The vector env's batch of observations as tensors on ``device`` (``batch_to_tensors``)."""
        return batch_to_tensors(self.space, observations, device)

    def __call__(self, observations: Any) -> torch.Tensor:
        """Encode a batch given as tensors (``as_tensors``): ``[E, size]`` float32."""
        raise NotImplementedError

    def apply_numpy(self, observations: Any) -> np.ndarray:
        """Encode the vector env's numpy batch: ``[E, size]`` float32 (the numpy twin of ``__call__``)."""
        with torch.no_grad():
            return self(self.as_tensors(observations, "cpu")).numpy()

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Lowest and highest voltage of every input neuron: two ``[size]`` float32 arrays."""
        return np.full(self.size, -np.inf, dtype=np.float32), np.full(self.size, np.inf, dtype=np.float32)

    def to(self, device: str | torch.device) -> ObservationEncoder:
        """This encoder with its parameters on ``device`` (itself where it holds none)."""
        return self

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.description})"


class FlattenEncoder(ObservationEncoder):
    """``"identity"`` or ``"affine"``: Gymnasium's flatten of each observation, then an affine map.

    For a 1-D Box with ``"identity"`` this is exactly the observation; for ``"affine"`` every
    finite bound pair of ``flatten_space(space)`` goes onto ``[-1, 1]``.

    Args:
        space: The task's observation space (Box, Discrete, MultiDiscrete, MultiBinary, or a
            Tuple/Dict of these).
        kind: ``"identity"`` or ``"affine"``.
        affine: The map itself, when known (``to`` passes the moved copy).
    """

    def __init__(self, space: gym.Space, kind: str = "identity", affine: AffineMap | None = None) -> None:
        flat = spaces.flatten_space(space)
        self.space = space
        self.kind = kind
        self.affine = affine if affine is not None else affine_encoder_map(flat.low, flat.high, kind)
        self.size = int(flat.shape[0])
        self._box_dims = len(space.shape) if isinstance(space, spaces.Box) else None
        self.is_identity = self._box_dims == 1 and self.affine.is_identity
        self.description = f"{kind}: {flat_description(space)} -> {self.size} input neurons"

    def __call__(self, observations: Any) -> torch.Tensor:
        """Encode tensors: a Box batch ``[..., *shape]`` (batched or not), or any supported batch ``[E, ...]``."""
        if self._box_dims == 1:  # a 1-D Box: the observation is already flat (the map takes [..., dim])
            return self.affine(observations)
        if self._box_dims is not None:
            leading = observations.shape[:observations.dim() - self._box_dims]
            return self.affine(observations.reshape(*leading, self.size))
        return self.affine(flatten_batch_tensor(self.space, observations))

    def apply_numpy(self, observations: Any) -> np.ndarray:
        """The numpy twin: the same values as ``__call__`` (float32)."""
        flat = flatten_batch(self.space, observations) if self._box_dims != 1 else \
            np.asarray(observations, dtype=np.float32)
        return self.affine.apply_numpy(flat)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """The flat space's bounds, through the map (on the map's device, then as numpy)."""
        flat = spaces.flatten_space(self.space)
        device = self.affine.scale.device
        with torch.no_grad():
            low, high = (self.affine(torch.as_tensor(b, dtype=torch.float32, device=device)).cpu().numpy()
                         for b in (flat.low, flat.high))
        return low, high

    def to(self, device: str | torch.device) -> FlattenEncoder:
        """A copy with its map on ``device``."""
        return FlattenEncoder(self.space, self.kind, self.affine.to(device))


class RandomProjectionEncoder(ObservationEncoder):
    """``"projection"``: flatten, scale finite bounds onto ``[0, 1]``, multiply by a fixed random matrix.

    The default for images: ``y = (x / 255) W`` with ``W[i, j] ~ N(0, 1 / D)``, ``D`` the
    number of pixels × channels, drawn by ``numpy.random.default_rng(seed)``: the same matrix
    everywhere. Unbounded dimensions (for a non-image space) enter unscaled.

    Args:
        space: The task's observation space (any space ``flatten_batch`` handles).
        size: Number of input neurons (the projection's width).
        seed: Seed of the matrix.
        device: Device of the matrix.
    """

    def __init__(self, space: gym.Space, size: int = IMAGE_PROJECTION_SIZE, seed: int = IMAGE_PROJECTION_SEED,
                 device: str | torch.device = "cpu") -> None:
        if not isinstance(size, int | np.integer) or isinstance(size, bool) or size < 1:
            raise TaskError(f"projection size={size!r} must be an integer >= 1 (input neurons)")
        flat = spaces.flatten_space(space)
        low, high = flat.low.astype(np.float64), flat.high.astype(np.float64)
        finite = np.isfinite(low) & np.isfinite(high) & (high > low)
        scale = np.where(finite, 1.0 / np.where(finite, high - low, 1.0), 1.0)
        offset = np.where(finite, -low * scale, 0.0)
        dims = int(flat.shape[0])
        matrix = np.random.default_rng(seed).standard_normal((dims, int(size))) / math.sqrt(dims)
        self.space, self.size, self.seed = space, int(size), seed
        self.description = (f"projection: {'pixels / 255' if is_image_space(space) else 'scaled observation'} "
                            f"times a fixed N(0, 1/{dims}) matrix (seed {seed}) -> {self.size} input neurons")
        self._scale, self._offset, self._matrix = (a.astype(np.float32) for a in (scale, offset, matrix))
        # the voltage range, by interval arithmetic over the scaled bounds (float64, then widened a
        # little so that float32 rounding of the product never leaves it)
        scaled_low = np.where(finite, 0.0, low)[:, None]
        scaled_high = np.where(finite, 1.0, high)[:, None]
        positive = matrix >= 0
        with np.errstate(invalid="ignore"):
            self._low = np.where(positive, matrix * scaled_low, matrix * scaled_high).sum(0)
            self._high = np.where(positive, matrix * scaled_high, matrix * scaled_low).sum(0)
        self._tensors = tuple(torch.as_tensor(a, device=device) for a in (self._scale, self._offset, self._matrix))

    def __call__(self, observations: Any) -> torch.Tensor:
        """Encode tensors ``[E, ...]``: ``[E, size]`` float32."""
        scale, offset, matrix = self._tensors
        return (flatten_batch_tensor(self.space, observations) * scale + offset) @ matrix

    def apply_numpy(self, observations: Any) -> np.ndarray:
        """The numpy twin (equal to ``__call__`` up to float32 rounding of the product)."""
        return (flatten_batch(self.space, observations) * self._scale + self._offset) @ self._matrix

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """The projection's exact range over the space, widened by a relative 1e-5."""
        margin = 1e-5 * (np.abs(self._low) + np.abs(self._high)) + 1e-6
        return (self._low - margin).astype(np.float32), (self._high + margin).astype(np.float32)

    def to(self, device: str | torch.device) -> RandomProjectionEncoder:
        """A copy with its matrix on ``device``."""
        return RandomProjectionEncoder(self.space, self.size, self.seed, device)


class ModuleEncoder(ObservationEncoder):
    """A user's ``torch.nn.Module`` as a frozen encoder (``eval()`` mode, called under ``torch.no_grad()``).

    The module receives a float32 tensor ``[E, *obs_shape]`` for a Box space (raw values), or
    ``[E, flatdim]`` (``flatten_batch_tensor``) for any other space, and returns ``[E, k]`` (or
    ``[E, ...]``, flattened to ``k``). It is not a learner: nothing updates it.

    Args:
        space: The task's observation space.
        module: The encoder; its output width ``k``, found by one call on a zero observation,
            is the number of input neurons.
    """

    def __init__(self, space: gym.Space, module: nn.Module) -> None:
        if not isinstance(space, spaces.Box) and unsupported_part(space) is not None:
            raise TaskError(f"a torch.nn.Module encoder receives the flattened observation, but {space} cannot be "
                            "flattened; pass encoder=<an ObservationEncoder subclass> instead")
        self.space = space
        self.module = module.eval()
        parameter = next(iter(module.parameters()), None)
        device = parameter.device if parameter is not None else torch.device("cpu")
        # what the module receives, for one zero observation
        shape = space.shape if isinstance(space, spaces.Box) else (spaces.flatdim(space),)
        zeros = torch.zeros(1, *shape, device=device)
        try:
            with torch.no_grad():
                probe = self.module(zeros)
        except Exception as error:
            raise TaskError(f"encoder module {type(module).__name__} failed on a zero observation of {space} "
                            f"(it receives float32 tensors of shape (E, {', '.join(map(str, shape))})): "
                            f"{error}") from error
        probe = probe.reshape(1, -1)
        self.size = int(probe.shape[1])
        self.description = f"module: {type(module).__name__} (frozen) -> {self.size} input neurons"

    def _module_input(self, observations: Any) -> torch.Tensor:
        if isinstance(self.space, spaces.Box):
            return observations.to(torch.float32)
        return flatten_batch_tensor(self.space, observations)

    def __call__(self, observations: Any) -> torch.Tensor:
        """Run the module under ``torch.no_grad()``: ``[E, size]`` float32."""
        with torch.no_grad():
            out = self.module(self._module_input(observations))
        return out.reshape(out.shape[0], -1).to(torch.float32)

    def to(self, device: str | torch.device) -> ModuleEncoder:
        """Move the module to ``device`` (in place, as ``nn.Module.to`` does) and return this encoder."""
        self.module.to(device)
        return self


EncoderSpec = str | nn.Module | ObservationEncoder | None


def make_observation_encoder(space: gym.Space, encoder: EncoderSpec = None,
                             name: str = "the task") -> ObservationEncoder:
    """The encoder of a task's observation space: the default for the space, or the one ``encoder`` names.

    Args:
        space: The task's observation space.
        encoder: ``None`` (``"projection"`` for images, else ``"identity"``), one of
            ``ENCODER_KINDS``, a ``torch.nn.Module`` (a frozen encoder) or an ``ObservationEncoder``
            (used as given).
        name: The task's name for error messages.

    Raises:
        TaskError: For a space the built-in encoders cannot encode, or an unknown ``encoder``;
            the message names the space (or value) and the ``encoder=`` argument.
    """
    if isinstance(encoder, ObservationEncoder):
        return encoder
    if isinstance(encoder, nn.Module):
        return ModuleEncoder(space, encoder)
    if encoder is None:
        encoder = "projection" if is_image_space(space) else "identity"
    if not isinstance(encoder, str) or encoder not in ENCODER_KINDS:
        raise TaskError(f"encoder={encoder!r} is unknown; use one of {ENCODER_KINDS}, a torch.nn.Module (a frozen "
                        "encoder) or a neuron_env.spaces.ObservationEncoder, or leave it None for the space's default")
    bad = unsupported_part(space)
    if bad is not None:
        inside = "" if bad is space else f" (its part {bad})"
        raise TaskError(
            f"task {name} has observation space {space}{inside}, which neuron-env cannot encode into input "
            f"voltages: {type(bad).__name__} has no fixed-size encoding. Pass encoder=<a neuron_env.spaces."
            "ObservationEncoder subclass> that maps a batch of these observations to [E, k] voltages, or wrap the "
            "task to observe a Box, Discrete, MultiDiscrete, MultiBinary, Tuple or Dict"
        )
    if encoder == "projection":
        return RandomProjectionEncoder(space)
    return FlattenEncoder(space, encoder)
