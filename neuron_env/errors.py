"""Typed errors raised by neuron-env.

Every error names the offending agent or value and says how to fix it. They subclass the
built-in exception a Gymnasium/PettingZoo user would expect (``ValueError`` for bad input,
``RuntimeError`` for calls in the wrong order), so ``except ValueError`` keeps working.
"""

from __future__ import annotations


class NeuronEnvError(Exception):
    """Base class of every error raised by neuron-env."""


class TopologyError(NeuronEnvError, ValueError):
    """A topology, its weights or its pairing with a task is invalid."""


class InvalidActionError(NeuronEnvError, ValueError):
    """An action is missing, unknown, badly shaped, not finite or out of range."""


class TaskError(NeuronEnvError, ValueError):
    """The task cannot be driven by a network: a space with no encoder/decoder, or a bad ``encoder=``/``decoder=``."""


class ResetNeeded(NeuronEnvError, RuntimeError):
    """``step`` was called before ``reset`` or after the episode ended."""


class RunOutputError(NeuronEnvError, ValueError):
    """A run file cannot take the write asked for (e.g. a CSV row whose columns differ from the file's)."""


class RenderError(NeuronEnvError, RuntimeError):
    """A task cannot draw its frame (e.g. MuJoCo without an OpenGL context: set ``MUJOCO_GL``)."""
