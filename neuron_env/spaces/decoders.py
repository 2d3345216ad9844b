"""Action decoders δ: output voltages to a batch of task actions, and how one is chosen.

``ActionDecoder`` is the base class; ``AffineDecoder`` (Box), ``CategoricalDecoder`` (``"argmax"``
and ``"sample"`` for Discrete and MultiDiscrete) and ``ThresholdDecoder`` (MultiBinary) the
built-in ones; ``make_action_decoder`` picks one for a space (``DECODER_KINDS``).
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

from neuron_env.errors import TaskError
from neuron_env.spaces.affine import AffineMap, affine_decoder_map

# Entropy added to the reset seed for the "sample" decoder's generator: its draws stay
# independent of whatever the task's own generator does with the same seed.
_SAMPLE_STREAM = 0x5A3D1E


class ActionDecoder:
    """The decoder δ: ``[E, size]`` output voltages to a batch of task actions (base class).

    Subclasses set ``space`` (the task's action space), ``size`` (the output neurons) and
    ``description`` and implement ``__call__`` on tensors; ``apply_numpy`` (the CPU core's path)
    defaults to ``__call__`` on CPU tensors.

    Attributes:
        space: The task's action space.
        size: Number of output neurons.
        description: One line for ``neuron-env info``.
    """

    space: gym.Space
    size: int
    description: str

    def __call__(self, voltages: torch.Tensor) -> torch.Tensor:
        """Decode ``[E, size]`` voltages into ``[E, *action shape]`` actions of the space's dtype."""
        raise NotImplementedError

    def apply_numpy(self, voltages: np.ndarray) -> np.ndarray:
        """The numpy twin of ``__call__``."""
        return self(torch.from_numpy(np.asarray(voltages))).numpy()

    def seed(self, seed: int | None) -> None:
        """Reseed any randomness of the decoder (the env's ``reset(seed=...)`` calls it); none by default."""

    def to(self, device: str | torch.device) -> ActionDecoder:
        """This decoder with its parameters on ``device`` (itself where it holds none)."""
        return self

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.description})"


class AffineDecoder(ActionDecoder):
    """``"affine"`` for a Box of any shape: the output activation's range onto the action bounds, clipped.

    Args:
        space: The task's Box action space.
        output_range: ``(y_min, y_max)`` of the output group's activation.
        affine: The map itself, when known (``to`` passes the moved copy).
    """

    def __init__(self, space: spaces.Box, output_range: tuple[float, float], affine: AffineMap | None = None) -> None:
        self.space, self.output_range = space, output_range
        self.affine = affine if affine is not None else \
            affine_decoder_map(output_range, space.low.reshape(-1), space.high.reshape(-1))
        self.size = int(np.prod(space.shape))
        self._shape = None if len(space.shape) == 1 else space.shape  # a 1-D Box needs no reshape
        self.description = (f"affine: output range [{output_range[0]}, {output_range[1]}] onto the action bounds "
                            f"<- {self.size} output neurons")

    def __call__(self, voltages: torch.Tensor) -> torch.Tensor:
        """Decode ``[E, size]`` voltages into float32 actions ``[E, *shape]``."""
        actions = self.affine(voltages)
        return actions if self._shape is None else actions.reshape(actions.shape[0], *self._shape)

    def apply_numpy(self, voltages: np.ndarray) -> np.ndarray:
        """The numpy twin (float32; the core casts to the space's dtype)."""
        actions = self.affine.apply_numpy(voltages)
        return actions if self._shape is None else actions.reshape(actions.shape[0], *self._shape)

    def to(self, device: str | torch.device) -> AffineDecoder:
        """A copy with its map on ``device``."""
        return AffineDecoder(self.space, self.output_range, self.affine.to(device))


class CategoricalDecoder(ActionDecoder):
    """``"argmax"`` or ``"sample"`` for Discrete and MultiDiscrete: one block of neurons per dimension.

    Block ``i`` holds ``nvec[i]`` neurons (``n`` for a Discrete), one per value; ``"argmax"``
    picks the highest voltage of every block, ``"sample"`` a value drawn from the softmax of the
    block's voltages (see the module doc for the draws).

    Args:
        space: The task's Discrete or MultiDiscrete action space.
        mode: ``"argmax"`` or ``"sample"``.
        device: Device of the decoder's index tensors.
        generator: The draws' generator to share (``to`` passes it on); ``None`` makes an
            unseeded one until ``seed``.
    """

    def __init__(self, space: spaces.Discrete | spaces.MultiDiscrete, mode: str = "argmax",
                 device: str | torch.device = "cpu", generator: np.random.Generator | None = None) -> None:
        discrete = isinstance(space, spaces.Discrete)
        nvec = np.array([int(space.n)]) if discrete else space.nvec.reshape(-1).astype(np.int64)
        self.space, self.mode, self.device = space, mode, torch.device(device)
        self.size = int(nvec.sum())
        self._shape: tuple[int, ...] = () if discrete else space.nvec.shape
        self._start = np.asarray(space.start, dtype=np.int64).reshape(-1)
        self._last = nvec - 1
        # Blocks as a [k, m] gather of neuron positions, padded to the widest block with -inf
        # voltages: every block's argmax / softmax is then one batched call.
        width = int(nvec.max())
        offsets = np.concatenate([[0], np.cumsum(nvec)[:-1]])
        columns = np.arange(width)
        self._padding = columns[None, :] >= nvec[:, None]
        self._gather = np.where(self._padding, 0, offsets[:, None] + columns[None, :])
        self._equal_blocks = bool(np.all(nvec == width))
        self._tensors = tuple(torch.as_tensor(a, device=self.device)
                              for a in (self._gather, self._padding, self._start, self._last))
        self._generator = generator if generator is not None else np.random.default_rng()
        what = f"{space}" if discrete else f"one block per dimension of {space}"
        verb = "highest voltage" if mode == "argmax" else "categorical draw over softmax(voltages)"
        self.description = f"{mode}: {verb}, {what} <- {self.size} output neurons"

    def seed(self, seed: int | None) -> None:
        """Reseed the ``"sample"`` draws (from the env's reset seed); ``None`` keeps them going."""
        if seed is not None:
            self._generator = np.random.default_rng([int(seed), _SAMPLE_STREAM])

    def _uniforms(self, copies: int) -> np.ndarray:
        return self._generator.random((copies, len(self._last)))

    def __call__(self, voltages: torch.Tensor) -> torch.Tensor:
        """Decode ``[E, size]`` voltages into int64 actions ``[E]`` (Discrete) or ``[E, *nvec.shape]``."""
        gather, padding, start, last = self._tensors
        copies = voltages.shape[0]
        if self._equal_blocks:
            blocks = voltages.reshape(copies, *gather.shape)
        else:
            blocks = voltages[:, gather].masked_fill(padding, -math.inf)
        if self.mode == "argmax":
            index = blocks.argmax(-1)
        else:
            uniforms = torch.from_numpy(self._uniforms(copies)).to(voltages.device)
            cumulative = torch.softmax(blocks.to(torch.float64), -1).cumsum(-1)
            index = torch.minimum((cumulative < uniforms[..., None]).sum(-1), last)
        return (index + start).reshape(copies, *self._shape)

    def apply_numpy(self, voltages: np.ndarray) -> np.ndarray:
        """The numpy twin: the same actions (the same draws, from the same generator)."""
        copies = voltages.shape[0]
        if self._equal_blocks:
            blocks = voltages.reshape(copies, *self._gather.shape)
        else:
            blocks = np.where(self._padding, -np.inf, voltages[:, self._gather])
        if self.mode == "argmax":
            index = blocks.argmax(-1)
        else:
            uniforms = self._uniforms(copies)
            shifted = np.exp(blocks.astype(np.float64) - blocks.max(-1, keepdims=True))
            cumulative = np.cumsum(shifted / shifted.sum(-1, keepdims=True), -1)
            index = np.minimum((cumulative < uniforms[..., None]).sum(-1), self._last)
        return (index + self._start).reshape(copies, *self._shape)

    def to(self, device: str | torch.device) -> CategoricalDecoder:
        """A copy with its index tensors on ``device``, drawing from the same generator."""
        return CategoricalDecoder(self.space, self.mode, device, self._generator)


class ThresholdDecoder(ActionDecoder):
    """``"threshold"`` for MultiBinary: 1 where a neuron's voltage exceeds the middle of the output range.

    The threshold is the midpoint of a finite range (0 for tanh, 0.5 for sigmoid), else 0
    (identity, and relu: a neuron that is active).

    Args:
        space: The task's MultiBinary action space.
        output_range: ``(y_min, y_max)`` of the output group's activation.
    """

    def __init__(self, space: spaces.MultiBinary, output_range: tuple[float, float]) -> None:
        low, high = output_range
        self.space, self.output_range = space, output_range
        self.threshold = (low + high) / 2 if math.isfinite(low) and math.isfinite(high) else 0.0
        self.size = int(np.prod(space.shape))
        self._shape = tuple(space.shape)
        self.description = f"threshold: voltage > {self.threshold:g} -> 1, {space} <- {self.size} output neurons"

    def __call__(self, voltages: torch.Tensor) -> torch.Tensor:
        """Decode ``[E, size]`` voltages into int8 actions ``[E, *shape]``."""
        return (voltages > self.threshold).to(torch.int8).reshape(voltages.shape[0], *self._shape)

    def apply_numpy(self, voltages: np.ndarray) -> np.ndarray:
        """The numpy twin: the same actions."""
        return (voltages > self.threshold).astype(self.space.dtype).reshape(voltages.shape[0], *self._shape)


DecoderSpec = str | ActionDecoder | None
#: The decoder kinds each action space takes (the first is the default).
DECODER_KINDS: dict[type[gym.Space], tuple[str, ...]] = {
    spaces.Box: ("affine",),
    spaces.Discrete: ("argmax", "sample"),
    spaces.MultiDiscrete: ("argmax", "sample"),
    spaces.MultiBinary: ("threshold",),
}


def make_action_decoder(space: gym.Space, output_range: tuple[float, float], decoder: DecoderSpec = None,
                        name: str = "the task") -> ActionDecoder:
    """The decoder of a task's action space: the default for the space, or the one ``decoder`` names.

    Args:
        space: The task's action space.
        output_range: ``(y_min, y_max)`` of the output group's activation
            (``neuron_env.topology.ACTIVATION_RANGE``).
        decoder: ``None`` (the space's default), a kind the space takes (``DECODER_KINDS``) or an
            ``ActionDecoder`` (used as given).
        name: The task's name for error messages.

    Raises:
        TaskError: For an action space no built-in decoder serves, or a kind the space does not
            take; the message names the space (or value) and the ``decoder=`` argument.
    """
    if isinstance(decoder, ActionDecoder):
        return decoder
    kinds = next((k for cls, k in DECODER_KINDS.items() if isinstance(space, cls)), None)
    if kinds is None:
        raise TaskError(
            f"task {name} has action space {space}, which neuron-env cannot decode output voltages into: "
            "the built-in decoders serve Box, Discrete, MultiDiscrete and MultiBinary. Pass decoder=<a "
            "neuron_env.spaces.ActionDecoder subclass>, or wrap the task to act in one of those spaces"
        )
    kind = kinds[0] if decoder is None else decoder
    if kind not in kinds:
        raise TaskError(f"decoder={decoder!r} does not fit task {name}'s action space {space}; use one of {kinds}, "
                        "a neuron_env.spaces.ActionDecoder, or None for the default")
    if kind == "affine":
        return AffineDecoder(space, output_range)
    if kind == "threshold":
        return ThresholdDecoder(space, output_range)
    return CategoricalDecoder(space, kind)
