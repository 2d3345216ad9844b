"""Batched flattening of task observations: Gymnasium's ``flatten`` over a leading axis, in numpy and torch.

Also the checks the encoders make of a space: ``is_image_space`` (the default encoder's choice)
and ``unsupported_part`` (the first part no built-in encoder flattens), and how a batch of
observations is stacked (``stack_observations``) and moved to a device (``batch_to_tensors``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector.utils import concatenate, create_empty_array

from neuron_env.errors import TaskError

#: Spaces the built-in encoders flatten, alone or inside a ``Tuple``/``Dict``.
FLAT_SPACES: tuple[type[gym.Space], ...] = (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary)


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
    return np.concatenate(_flatten_parts(space, batch, flatten_batch), axis=1)


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
    return torch.cat(_flatten_parts(space, batch, flatten_batch_tensor), dim=1)


def _flatten_parts(space: gym.Space, batch: Any, flatten: Any) -> list[Any]:
    """The flattened parts of a ``Tuple``/``Dict`` batch, in ``flatten_space`` order (``flatten`` per part).

    Raises:
        TaskError: For any other space (nothing left to flatten it with).
    """
    if isinstance(space, spaces.Tuple):
        return [flatten(s, b) for s, b in zip(space.spaces, batch, strict=True)]
    if isinstance(space, spaces.Dict):
        return [flatten(s, batch[key]) for key, s in space.spaces.items()]
    raise TaskError(f"observation space {space} cannot be flattened into voltages; pass encoder=<an "
                    "ObservationEncoder subclass>")


def flat_description(space: gym.Space) -> str:
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
