"""Typed errors of the baselines and experiments.

They subclass ``NeuronEnvError`` (so ``neuron-env`` prints them cleanly) and
the built-in exception a caller would expect.
"""

from __future__ import annotations

from neuron_env.errors import NeuronEnvError


class BaselineConfigError(NeuronEnvError, ValueError):
    """A baseline or experiment option is invalid (the message names it and the fix)."""


class MissingDependencyError(NeuronEnvError, ImportError):
    """An optional dependency (Stable-Baselines3, matplotlib) is not installed."""
