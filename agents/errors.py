"""Typed errors of the local learners.

They subclass ``neuron_env.NeuronEnvError`` (so ``neuron-env`` prints them cleanly) and
the built-in exception a caller would expect.
"""

from __future__ import annotations

from neuron_env.errors import NeuronEnvError


class LearnerConfigError(NeuronEnvError, ValueError):
    """A learner or trainer option is invalid (the message names it and the fix)."""


class DivergenceError(NeuronEnvError, ArithmeticError):
    """A parameter or TD error became NaN or infinite.

    Attributes:
        group: Name of the agent group (layer) where the non-finite value appeared.
        what: Which quantity: ``"td_error"``, ``"actor"``, ``"critic"``, ``"feedback_slope"`` or ``"return"``.
    """

    def __init__(self, message: str, group: str, what: str) -> None:
        super().__init__(message)
        self.group = group
        self.what = what


class CheckpointError(NeuronEnvError, RuntimeError):
    """A checkpoint is missing, unreadable or was written by an incompatible version."""
