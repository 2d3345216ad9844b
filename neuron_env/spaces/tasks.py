"""Tasks: a Gymnasium id or callable as an env factory, its spaces, and the encoder/decoder it gets.

``task_interface`` is what ``Topology.for_task`` and the envs call: one copy of the task is made
to read its spaces, and the default (or named) encoder and decoder come back, sized to them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym

from neuron_env.errors import TaskError
from neuron_env.spaces.decoders import ActionDecoder, DecoderSpec, make_action_decoder
from neuron_env.spaces.encoders import EncoderSpec, ObservationEncoder, make_observation_encoder

TaskSpec = str | Callable[[], gym.Env]


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
