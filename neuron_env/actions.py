"""The action contract: what every entry point of neuron-env accepts as one agent's action.

An agent (a neuron) acts with its next voltage: **one finite real number**. The PettingZoo
views (``neuron_v0.parallel_env`` and the AEC view ``neuron_v0.env``), ``SubEnv`` and the native
TorchRL env (``neuron_env.integrations.torchrl``) all apply the rules of this module, so the
same action is accepted, or refused with the same ``InvalidActionError``, wherever it is given.

Accepted forms of one action (``ACCEPTED_FORMS``, tested one by one):

* a Python ``float``, ``int`` or ``bool`` (``True`` is 1.0, as in numpy and torch);
* a numpy scalar of a real dtype (``np.float32(0.5)``, ``np.int64(0)``, ``np.bool_(True)``);
* a numpy array of shape ``(1,)`` or ``()`` of a real dtype (bool, integer or floating):
  ``np.array([0.5], dtype=np.float32)`` is what the action space ``Box(1,)`` samples;
* a torch tensor of shape ``(1,)`` or ``()`` of a real dtype, on any device;
* a list or tuple holding one such number (``[0.5]``).

The number must be finite once stored as a float32 voltage (no NaN, no ±inf, no magnitude
above float32's largest). Everything else is refused with ``InvalidActionError`` naming the
agent, showing the value and saying what to pass instead: strings and bytes (even ``"0.5"``),
complex numbers, ``None``, arbitrary objects, and any other shape (``(2,)``, ``(1, 1)``, a list
of two numbers). Whether the number lies in the agent's range (its activation's, e.g. tanh
``[-1, 1]``) is the env's ``out_of_range`` rule, checked by the core (``NeuronVecEnv.check_actions``).

The TorchRL env takes one tensor per agent group: ``[E, n, 1]`` (its action spec) or ``[E, n]``
for the group's ``n`` agents in ``E`` task copies, of a real dtype (``group_actions``).

Bulk checks stay vectorized: ``action_array`` converts a whole sequence of actions with one
numpy call when they share a form and falls back to ``action_value`` per agent only to accept a
mix of forms or to name the agent whose action is refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from neuron_env.errors import InvalidActionError
from neuron_env.topology import ACTIVATION_RANGE, Topology

__all__ = [
    "ACCEPTED_FORMS",
    "REAL_KINDS",
    "action_array",
    "action_value",
    "group_actions",
    "invalid_action_message",
    "non_finite_message",
]

#: The accepted forms of one action, as the error messages and the docs name them.
ACCEPTED_FORMS: tuple[str, ...] = (
    "a Python float, int or bool",
    "a numpy scalar of a real dtype (np.float32(0.5))",
    "a numpy array of shape (1,) or () of a real dtype (np.array([0.5], dtype=np.float32))",
    "a torch tensor of shape (1,) or () of a real dtype, on any device",
    "a list or tuple holding one such number ([0.5])",
)

#: numpy dtype kinds of real numbers: bool, signed and unsigned integer, floating.
REAL_KINDS = "biuf"

#: The largest float32: an action of larger magnitude would become an infinite voltage.
_LARGEST = float(np.finfo(np.float32).max)

#: torch's integer dtypes (the unsigned ones beyond ``uint8`` exist from torch 2.3).
_TORCH_INTEGERS = frozenset(getattr(torch, name) for name in
                            ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")
                            if hasattr(torch, name))

_FIX = "pass one finite real number, e.g. np.array([0.5], dtype=np.float32) or 0.5"


def _shown(value: Any, limit: int = 80) -> str:
    """``repr(value)`` on one line, cut to ``limit`` characters."""
    text = " ".join(repr(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _real_torch_dtype(dtype: torch.dtype) -> bool:
    """Whether a torch dtype holds real numbers: bool, an integer or a floating type (not complex)."""
    return dtype == torch.bool or dtype.is_floating_point or dtype in _TORCH_INTEGERS


def _type_error(agent: str, action: Any) -> InvalidActionError:
    return InvalidActionError(
        f"action of agent {agent!r} is {_shown(action)} ({type(action).__name__}), not a real number; {_FIX}"
    )


def _shape_error(agent: str, shape: tuple[int, ...]) -> InvalidActionError:
    return InvalidActionError(
        f"action of agent {agent!r} has shape {shape}; expected shape (1,) or a scalar "
        f"(each neuron chooses one voltage): {_FIX}"
    )


def non_finite_message(agent: str, value: float, where: str = "") -> str:
    """The error text for an action that is NaN, ±inf, or too large for a float32 voltage.

    Args:
        agent: The agent id.
        value: The action as a number.
        where: Extra location text after the agent id (e.g. ``" in env copy 1"``).
    """
    return (f"action of agent {agent!r}{where} is {value}; actions must be finite float32 numbers "
            "(check the policy's output for NaN or inf)")


def invalid_action_message(agent: str, value: float, topology: Topology, where: str = "") -> str:
    """The error text for a non-finite or out-of-range action of ``agent``.

    Args:
        agent: The agent id.
        value: The action as a number.
        topology: The network (for the agent's activation range).
        where: Extra location text after the agent id (e.g. ``" in env copy 1"``).
    """
    if not -_LARGEST <= value <= _LARGEST:  # NaN fails both comparisons
        return non_finite_message(agent, value, where)
    activation = topology.group_of_agent(agent).activation
    low, high = ACTIVATION_RANGE[activation]
    return (
        f"action of agent {agent!r}{where} is {value:.6g}, outside its range [{low}, {high}] "
        f"({activation} neuron); clip it, or construct the env with out_of_range='clip'"
    )


def action_value(agent: str, action: Any) -> float:
    """One agent's action as a Python float, checked against the action contract.

    Accepted forms (``ACCEPTED_FORMS``): a Python ``float``, ``int`` or ``bool``; a numpy
    scalar of a real dtype; a numpy array of shape ``(1,)`` or ``()`` of a real dtype (bool,
    integer or floating); a torch tensor of shape ``(1,)`` or ``()`` of a real dtype, on any
    device; a list or tuple holding one such number. The number must be finite as a float32.
    The agent's range is not checked here (that is the env's ``out_of_range`` rule).

    Args:
        agent: The agent id, named in the error.
        action: The action.

    Returns:
        The action as a finite float.

    Raises:
        InvalidActionError: For a string, bytes, complex number, ``None`` or any other object
            that is not a real number; for any shape but ``(1,)`` or ``()``; for NaN, ±inf or a
            magnitude above float32's largest. The message names the agent and shows the value.
    """
    if isinstance(action, torch.Tensor):
        if not _real_torch_dtype(action.dtype):
            raise _type_error(agent, action)
        if tuple(action.shape) not in ((), (1,)):
            raise _shape_error(agent, tuple(action.shape))
        value = float(action.item())
    else:
        if isinstance(action, str | bytes):  # numpy would make a string array of it; say so plainly
            raise _type_error(agent, action)
        try:
            array = np.asarray(action)
        except (TypeError, ValueError, RuntimeError, OverflowError):  # ragged lists, exotic objects
            raise _type_error(agent, action) from None
        if array.dtype.kind not in REAL_KINDS:
            raise _type_error(agent, action)
        if array.shape not in ((), (1,)):
            raise _shape_error(agent, array.shape)
        value = float(array.reshape(()))
    if not -_LARGEST <= value <= _LARGEST:  # NaN fails both comparisons
        raise InvalidActionError(non_finite_message(agent, value))
    return value


def action_array(agents: Sequence[str], actions: Sequence[Any]) -> np.ndarray:
    """One action per agent, as a float32 array in the order of ``agents``.

    Actions that share a form (all floats, all arrays of shape ``(1,)``, …) are converted by one
    numpy call and checked in bulk (dtype kind and shape); a mix of forms, or a refused action,
    goes through ``action_value`` agent by agent, which names the first agent at fault.
    Finiteness is checked by the env's core in bulk (``NeuronVecEnv.check_actions``), and by
    ``action_value`` on the per-agent path.

    Args:
        agents: The agent ids, in order.
        actions: One action per agent, in the same order.

    Returns:
        A new float32 array of shape ``(len(agents),)``.

    Raises:
        InvalidActionError: As ``action_value``, naming the agent.
    """
    count = len(agents)
    try:
        array = np.array(actions)
    except (TypeError, ValueError, RuntimeError, OverflowError):  # a mix of shapes, CUDA tensors, …
        array = None
    if array is not None and array.dtype.kind in REAL_KINDS and array.shape in ((count,), (count, 1)):
        return array.reshape(count).astype(np.float32)
    values = np.empty(count, dtype=np.float32)
    for i, (agent, action) in enumerate(zip(agents, actions, strict=True)):
        values[i] = action_value(agent, action)
    return values


def group_actions(group: str, agents: Sequence[str], actions: Any, num_envs: int) -> torch.Tensor:
    """A group's action tensor as ``[E, n]``, checked against the action contract.

    The TorchRL env's form of the contract: each agent's action is one real number, so a group
    of ``n`` agents in ``E`` task copies acts with a tensor of shape ``[E, n, 1]`` (the action
    spec's) or ``[E, n]``, of a real dtype (bool, integer or floating). Finiteness and range are
    checked by the core in bulk, naming the agent and the copy.

    Args:
        group: The group's name (``"h1"``), named in the error.
        agents: The group's agent ids, in order.
        actions: The value found under ``(group, "action")``, or ``None`` when it is missing.
        num_envs: The number of task copies ``E``.

    Returns:
        ``actions`` reshaped to ``[E, n]`` (a view where possible).

    Raises:
        InvalidActionError: If the action is missing, not a tensor, of a complex or non-numeric
            dtype, or of another shape; names the group, its agents and the expected shape.
    """
    size = len(agents)
    expected = f"[{num_envs}, {size}, 1] (num_envs, agents, 1) or [{num_envs}, {size}]"
    who = f"group {group!r} (agents {agents[0]} … {agents[-1]})" if size > 1 else f"group {group!r} ({agents[0]})"
    if actions is None:
        raise InvalidActionError(
            f"no action for {who}: set td[{group!r}, 'action'] to a real tensor of shape {expected}"
        )
    if not isinstance(actions, torch.Tensor):
        raise InvalidActionError(
            f"action of {who} is {_shown(actions)} ({type(actions).__name__}); "
            f"expected a real tensor of shape {expected}"
        )
    if not _real_torch_dtype(actions.dtype):
        raise InvalidActionError(
            f"action of {who} has dtype {actions.dtype}; expected a real tensor (e.g. float32) of shape {expected}"
        )
    if tuple(actions.shape) not in ((num_envs, size, 1), (num_envs, size)):
        raise InvalidActionError(
            f"action of {who} has shape {list(actions.shape)}; expected {expected}: one number per agent"
        )
    return actions.reshape(num_envs, size)
