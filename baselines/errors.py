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


def check_task_id(task: str) -> None:
    """Raise ``BaselineConfigError`` in one line if Gymnasium has no task ``task`` (with its suggestion).

    Only the registry is read: nothing is built, so a bad id is refused before any folder is made.
    A ``"module:Task-v0"`` id imports ``module`` first (it registers the task), as ``gymnasium.make`` does.
    """
    import importlib

    import gymnasium

    module, _, name = task.rpartition(":")
    try:
        if module:
            importlib.import_module(module)
        gymnasium.spec(name)
    except (gymnasium.error.Error, ImportError) as error:
        raise BaselineConfigError(f"task {task!r} cannot be made: {error}") from None
