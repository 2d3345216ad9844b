"""Tasks and spaces: how a task's observations become input voltages, and output voltages its actions.

neuron-env drives any Gymnasium task whose spaces it can encode. The **encoder** ε maps a batch
of task observations to the voltages of the input neurons (``[E, ...] -> [E, obs_dim]``); the
**decoder** δ maps the output neurons' voltages to a batch of task actions
(``[E, act_dim] -> [E, *action shape]``). Both are chosen from the task's spaces by default and
can be overridden with the ``encoder=`` and ``decoder=`` arguments of ``NeuronVecEnv``,
``neuron_v0.parallel_env``/``env``, ``SubEnv`` and ``Topology.for_task``. Whatever the task's
spaces, the agents' own spaces stay ``Box`` per neuron: neurons always see and set voltages.

Observations
------------

| Observation space | Default encoder | Input neurons | Other ``encoder=`` |
|---|---|---|---|
| ``Box``, any shape | ``"identity"``: flattened as is | ``prod(shape)`` | ``"affine"``, ``"projection"`` |
| image (below) | ``"projection"``: fixed random, to 64 | 64 | ``"identity"``, a module |
| ``Discrete(n)`` | one-hot | ``n`` | ``"affine"`` |
| ``MultiDiscrete(nvec)`` | one-hot per dimension | ``sum(nvec)`` | ``"affine"`` |
| ``MultiBinary(n)`` | 0/1 as floats | ``n`` | ``"affine"`` |
| ``Tuple``, ``Dict`` of these | parts as above, concatenated | ``flatdim(space)`` | ``"affine"`` |
| ``Text``, ``Graph``, ``Sequence`` | ``TaskError`` naming ``encoder=`` | | an ``ObservationEncoder`` |

Any of these also takes a ``torch.nn.Module`` as ``encoder=`` (a frozen encoder, below).
An *image* is a ``uint8`` ``Box`` of shape ``H×W`` or ``H×W×C`` (``C`` ∈ 1, 3, 4, first or
last) with bounds 0 and 255. Parts of a ``Tuple``/``Dict`` are concatenated in
``gymnasium.spaces.flatten_space`` order (a ``Dict``'s keys as the space lists them).

``"identity"`` is Gymnasium's own ``gymnasium.spaces.flatten`` of every observation, batched
(one-hot for ``Discrete`` parts, as float32 voltages); ``"affine"`` maps each finite bound pair
``[low, high]`` of ``flatten_space(space)`` onto ``[-1, 1]`` and leaves unbounded dimensions
unchanged. Neither clips.

**Images.** By default an image observation ``x`` is flattened, scaled to ``[0, 1]`` (``x / 255``)
and multiplied by a fixed matrix ``W`` of shape ``[H·W·C, 64]`` with entries drawn from
``N(0, 1 / (H·W·C))`` by ``numpy.random.default_rng(0)``: the same matrix on every run, every
machine and every device (``RandomProjectionEncoder(space, size, seed)`` for another size or
seed). Any ``torch.nn.Module`` passed as ``encoder=`` is used instead: it receives the batch as a
float32 tensor ``[E, *obs_shape]`` (raw values: 0…255 for images, ``[E, H, W, C]`` as the task
returns them; permute and scale inside the module), or ``[E, flatdim]`` (the flattened
observation) for a non-``Box`` space, and returns ``[E, k]`` (or ``[E, ...]``, flattened) giving
``k`` input neurons. **The encoder is not a learner**: it is put in ``eval()`` mode and called
under ``torch.no_grad()``, so no learner's update ever reaches it. Train it beforehand (e.g. a
pretrained CNN), or freeze it at its random initialisation.

Actions
-------

| Action space | Default decoder | Output neurons | Other ``decoder=`` |
|---|---|---|---|
| ``Box``, any shape | ``"affine"`` (as before: range onto bounds) | ``prod(shape)`` | |
| ``Discrete(n)`` | ``"argmax"``: one neuron per action | ``n`` | ``"sample"`` |
| ``MultiDiscrete(nvec)`` | ``"argmax"`` per block of ``nvec[i]`` | ``sum(nvec)`` | ``"sample"`` |
| ``MultiBinary(n)`` | ``"threshold"`` at the range's middle | ``n`` | |
| anything else | ``TaskError`` naming ``decoder=`` | | an ``ActionDecoder`` |

``"affine"`` maps the output activation's range onto ``[low, high]`` and clips (unbounded:
identity). ``"threshold"`` sets 1 where a voltage exceeds the middle of the output activation's
range: 0 for tanh and identity, 0.5 for sigmoid, 0 for relu (an active neuron).
``"argmax"`` breaks ties towards the lowest action (as ``numpy.argmax`` and ``torch.argmax`` do).
``"sample"`` draws one uniform number per task copy (and block) from its own
``numpy.random.Generator``, seeded by the env's ``reset(seed=...)`` (``None`` keeps it going),
and picks the first action whose cumulative softmax probability (float64) exceeds it: the same
draws on every device, deterministic under a seed.

Writing your own
----------------

Subclass ``ObservationEncoder`` (set ``space``, ``size``, ``description``; implement
``__call__``, and ``as_tensors`` for a space ``batch_to_tensors`` cannot convert) or
``ActionDecoder`` (``size``, ``description``, ``__call__``) and pass an instance. Both have a
numpy twin, ``apply_numpy``, which the core uses on CPU (there a tick runs in numpy); its default
calls the torch version on CPU tensors.

Every function here is pure and batched over a leading axis ``E``: the flatten functions
(``flatten_batch`` in numpy, ``flatten_batch_tensor`` in torch) and the encoders' and decoders'
calls, which hold only frozen parameters (and, for ``"sample"``, the generator of its draws).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector.utils import concatenate, create_empty_array
from torch import nn

from neuron_env.errors import TaskError

TaskSpec = str | Callable[[], gym.Env]
#: Input neurons of the default image encoder (``RandomProjectionEncoder``).
IMAGE_PROJECTION_SIZE = 64
#: Seed of the default image encoder's projection matrix.
IMAGE_PROJECTION_SEED = 0
#: The encoder kinds a string ``encoder=`` may name.
ENCODER_KINDS: tuple[str, ...] = ("identity", "affine", "projection")
#: Spaces the built-in encoders flatten, alone or inside a ``Tuple``/``Dict``.
FLAT_SPACES: tuple[type[gym.Space], ...] = (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary)
# Entropy added to the reset seed for the "sample" decoder's generator: its draws stay
# independent of whatever the task's own generator does with the same seed.
_SAMPLE_STREAM = 0x5A3D1E


# ---------------------------------------------------------------------------------- tasks
def make_task_factory(task: TaskSpec, task_kwargs: dict[str, Any] | None = None) -> Callable[[], gym.Env]:
    """A zero-argument factory for a task given as a Gymnasium id or a callable."""
    kwargs = dict(task_kwargs or {})
    if isinstance(task, str):
        return lambda: gym.make(task, **kwargs)
    if callable(task):
        return (lambda: task(**kwargs)) if kwargs else task
    raise TaskError(f"task {task!r} must be a Gymnasium id (e.g. 'Pendulum-v1') or a callable returning an env")


def task_name(task: TaskSpec) -> str:
    """How error messages name a task: its id, or the callable's name."""
    return repr(task) if isinstance(task, str) else repr(getattr(task, "__name__", task))


def probe_task_spaces(task: TaskSpec, task_kwargs: dict[str, Any] | None = None) -> tuple[gym.Space, gym.Space]:
    """The task's ``(observation_space, action_space)``, read from one copy made and closed at once."""
    env = make_task_factory(task, task_kwargs)()
    try:
        return env.observation_space, env.action_space
    finally:
        env.close()


# ---------------------------------------------------------------------------------- affine maps
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


# ---------------------------------------------------------------------------------- batches
def is_image_space(space: gym.Space) -> bool:
    """Whether ``space`` is an image: a ``uint8`` Box ``H×W`` or ``H×W×C`` (``C`` ∈ 1, 3, 4, first or last), 0…255."""
    if not isinstance(space, spaces.Box) or space.dtype != np.uint8:
        return False
    shape = space.shape
    channels_fit = len(shape) == 2 or (len(shape) == 3 and (shape[-1] in (1, 3, 4) or shape[0] in (1, 3, 4)))
    return channels_fit and bool(np.all(space.low == 0) and np.all(space.high == 255))


def unsupported_part(space: gym.Space) -> gym.Space | None:
    """The first part of ``space`` the built-in encoders cannot flatten, or ``None`` when every part fits."""
    if isinstance(space, FLAT_SPACES):
        return None
    if isinstance(space, spaces.Tuple | spaces.Dict):
        parts = space.spaces.values() if isinstance(space, spaces.Dict) else space.spaces
        return next((bad for bad in map(unsupported_part, parts) if bad is not None), None)
    return space


def stack_observations(space: gym.Space, observations: Sequence[Any]) -> Any:
    """Single observations as one batch, in the layout ``gymnasium.vector`` gives it (``np.stack`` for a Box)."""
    if isinstance(space, spaces.Box):
        return np.stack(observations)
    return concatenate(space, observations, create_empty_array(space, len(observations)))


def batch_to_tensors(space: gym.Space, batch: Any, device: str | torch.device) -> Any:
    """A numpy batch as tensors on ``device``, leaf by leaf: float32 for Box parts, int64 for the others."""
    if isinstance(space, spaces.Tuple):
        return tuple(batch_to_tensors(s, b, device) for s, b in zip(space.spaces, batch, strict=True))
    if isinstance(space, spaces.Dict):
        return {key: batch_to_tensors(s, batch[key], device) for key, s in space.spaces.items()}
    dtype = np.float32 if isinstance(space, spaces.Box) else np.int64
    return torch.from_numpy(np.asarray(batch, dtype=dtype)).to(device)


def _multi_discrete_index(space: spaces.MultiDiscrete) -> tuple[np.ndarray, np.ndarray]:
    """``(start, offsets)`` of a MultiDiscrete's one-hot: ``x[i]`` sets column ``x[i] − start[i] + offsets[i]``."""
    nvec = space.nvec.reshape(-1).astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(nvec)[:-1]]).astype(np.int64)
    return np.asarray(space.start, dtype=np.int64).reshape(-1), offsets


def flatten_batch(space: gym.Space, batch: Any) -> np.ndarray:
    """``gymnasium.spaces.flatten`` of every observation of a batch, as float32: ``[E, flatdim(space)]``.

    Box and MultiBinary parts are flattened, Discrete parts one-hot, MultiDiscrete parts one-hot
    per dimension, Tuple and Dict parts concatenated in ``flatten_space`` order.

    Raises:
        TaskError: On a part none of these (see ``unsupported_part``).
    """
    if isinstance(space, spaces.Box | spaces.MultiBinary):
        array = np.asarray(batch)
        return array.reshape(len(array), -1).astype(np.float32, copy=False)
    if isinstance(space, spaces.Discrete):
        index = np.asarray(batch, dtype=np.int64).reshape(-1) - int(space.start)
        out = np.zeros((len(index), int(space.n)), dtype=np.float32)
        out[np.arange(len(index)), index] = 1.0
        return out
    if isinstance(space, spaces.MultiDiscrete):
        start, offsets = _multi_discrete_index(space)
        array = np.asarray(batch, dtype=np.int64)
        index = array.reshape(len(array), -1) - start + offsets
        out = np.zeros((len(array), int(space.nvec.sum())), dtype=np.float32)
        np.put_along_axis(out, index, 1.0, axis=1)
        return out
    if isinstance(space, spaces.Tuple):
        return np.concatenate([flatten_batch(s, b) for s, b in zip(space.spaces, batch, strict=True)], axis=1)
    if isinstance(space, spaces.Dict):
        return np.concatenate([flatten_batch(s, batch[key]) for key, s in space.spaces.items()], axis=1)
    raise TaskError(f"observation space {space} cannot be flattened into voltages; pass encoder=<an "
                    "ObservationEncoder subclass>")


def flatten_batch_tensor(space: gym.Space, batch: Any) -> torch.Tensor:
    """``flatten_batch`` in torch, on the batch's device: ``[E, flatdim(space)]`` float32 (the same values)."""
    if isinstance(space, spaces.Box | spaces.MultiBinary):
        return batch.reshape(batch.shape[0], -1).to(torch.float32)
    if isinstance(space, spaces.Discrete):
        index = batch.reshape(-1, 1).long() - int(space.start)
        out = torch.zeros(index.shape[0], int(space.n), device=batch.device)
        return out.scatter_(1, index, 1.0)
    if isinstance(space, spaces.MultiDiscrete):
        start, offsets = (torch.as_tensor(a, device=batch.device) for a in _multi_discrete_index(space))
        index = batch.reshape(batch.shape[0], -1).long() - start + offsets
        out = torch.zeros(batch.shape[0], int(space.nvec.sum()), device=batch.device)
        return out.scatter_(1, index, 1.0)
    if isinstance(space, spaces.Tuple):
        return torch.cat([flatten_batch_tensor(s, b) for s, b in zip(space.spaces, batch, strict=True)], dim=1)
    if isinstance(space, spaces.Dict):
        return torch.cat([flatten_batch_tensor(s, batch[key]) for key, s in space.spaces.items()], dim=1)
    raise TaskError(f"observation space {space} cannot be flattened into voltages; pass encoder=<an "
                    "ObservationEncoder subclass>")


def _flat_description(space: gym.Space) -> str:
    """How the built-in flatten treats ``space``, in a few words (for ``description``)."""
    if is_image_space(space):
        return "pixels flattened"
    if isinstance(space, spaces.Box):
        return "flattened" if len(space.shape) != 1 else "as they are"
    if isinstance(space, spaces.Discrete):
        return "one-hot"
    if isinstance(space, spaces.MultiDiscrete):
        return "one-hot per dimension"
    if isinstance(space, spaces.MultiBinary):
        return "0/1 as floats"
    return "every part flattened (one-hot for discrete parts), in flatten_space order"


# ---------------------------------------------------------------------------------- encoders
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
        self.description = f"{kind}: {_flat_description(space)} -> {self.size} input neurons"

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


# ---------------------------------------------------------------------------------- decoders
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


# ---------------------------------------------------------------------------------- choosing
EncoderSpec = str | nn.Module | ObservationEncoder | None
DecoderSpec = str | ActionDecoder | None
#: The decoder kinds each action space takes (the first is the default).
DECODER_KINDS: dict[type[gym.Space], tuple[str, ...]] = {
    spaces.Box: ("affine",),
    spaces.Discrete: ("argmax", "sample"),
    spaces.MultiDiscrete: ("argmax", "sample"),
    spaces.MultiBinary: ("threshold",),
}


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


def task_interface(task: TaskSpec, output_range: tuple[float, float], encoder: EncoderSpec = None,
                   decoder: DecoderSpec = None,
                   task_kwargs: dict[str, Any] | None = None) -> tuple[ObservationEncoder, ActionDecoder]:
    """The encoder and decoder a task gets (one copy of the task is made to read its spaces).

    Their ``size`` attributes are the input and output group sizes a topology for the task needs
    (``Topology.for_task`` uses them).

    Args:
        task: Gymnasium id or callable returning an env.
        output_range: ``(y_min, y_max)`` of the output group's activation.
        encoder: See ``make_observation_encoder``.
        decoder: See ``make_action_decoder``.
        task_kwargs: Keyword arguments of the task.
    """
    observation_space, action_space = probe_task_spaces(task, task_kwargs)
    name = task_name(task)
    return (make_observation_encoder(observation_space, encoder, name),
            make_action_decoder(action_space, output_range, decoder, name))
