"""Velocity-masked tasks: classic-control tasks that need memory, under the rl-baselines3-zoo's ids.

Description
-----------
A policy that sees a pole's angle but not its angular velocity cannot balance it from one
observation: it has to remember. These tasks are the rl-baselines3-zoo's partially observable
versions of the classic-control tasks, made by ``MaskVelocityWrapper``: every observation is
multiplied by a 0/1 mask that zeroes the velocity entries. Importing ``neuron_env`` registers
them in Gymnasium's registry, so they work wherever a Gymnasium id does::

    import gymnasium
    import neuron_env  # registers the ids below

    env = gymnasium.make("CartPoleNoVel-v1")
    observation, info = env.reset(seed=0)  # [x, 0, θ, 0]

    neuron-env train    --task CartPoleNoVel-v1 --steps 20000 --out runs/cp-novel
    neuron-env baseline --algo recurrent-ppo --task CartPoleNoVel-v1 --zoo-net --out runs/cp-novel-lstm

Source: ``rl_zoo3/wrappers.py`` (``MaskVelocityWrapper``) and ``rl_zoo3/import_envs.py`` (the
``NoVel`` registrations) of DLR-RM/rl-baselines3-zoo, copied at commit 22e3ff2 (April 2026).

Tasks
-----
=================================  ============================  ==============  ====================================
id                                 wraps                         masked indices  what is hidden
=================================  ============================  ==============  ====================================
``CartPoleNoVel-v1``               ``CartPole-v1``               1, 3            cart velocity, pole angular velocity
``MountainCarNoVel-v0``            ``MountainCar-v0``            1               car velocity
``MountainCarContinuousNoVel-v0``  ``MountainCarContinuous-v0``  1               car velocity
``PendulumNoVel-v1``               ``Pendulum-v1``               2               angular velocity
``LunarLanderNoVel-v3``            ``LunarLander-v3``            2, 3, 5         x and y velocity, angular velocity
``LunarLanderContinuousNoVel-v3``  ``LunarLanderContinuous-v3``  2, 3, 5         x and y velocity, angular velocity
=================================  ============================  ==============  ====================================

The LunarLander tasks need Box2D (``pip install 'gymnasium[box2d]'``); their ids are registered
either way, and making one without Box2D fails with Gymnasium's own message.

Spaces and rewards
------------------
The wrapped task's, unchanged: the observation space keeps its shape, dtype and bounds (a masked
entry is 0, inside every bound), so a network sized for ``CartPole-v1`` fits
``CartPoleNoVel-v1``; actions, rewards, terminations and the time limit are the task's. As in the
zoo the velocity entries are multiplied by 0, not dropped: a negative velocity becomes ``-0.0``.

Options
-------
``gymnasium.make("CartPoleNoVel-v1", **kwargs)`` passes ``kwargs`` (``render_mode``,
``sutton_barto_reward``, ``g`` for Pendulum, …) to the wrapped task, and ``max_episode_steps``
replaces its time limit, as for the task itself.

Differences from the zoo
------------------------
The observations, rewards and episode ends are the zoo's step for step. Two things about the
registration differ, neither visible to an agent: an id's spec carries the wrapped task's
``max_episode_steps`` and ``reward_threshold`` (the zoo's specs carry none; the time limit is
applied once, outside the mask, rather than inside it), and the entry point is a module path
(``neuron_env.tasks.masked:make_masked_task``) rather than a closure, so a spec pickles. The
mask is built from the space's shape and dtype rather than from ``observation_space.sample()``,
which would draw from the space's random generator.

Version history
---------------
* v0/v1/v3: the zoo's ids; each carries the version of the task it wraps.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from neuron_env.errors import TaskError

#: The velocity entries of each task's observation, as ``rl_zoo3.wrappers.MaskVelocityWrapper.velocity_indices``.
VELOCITY_INDICES: dict[str, tuple[int, ...]] = {
    "CartPole-v1": (1, 3),
    "MountainCar-v0": (1,),
    "MountainCarContinuous-v0": (1,),
    "Pendulum-v1": (2,),
    "LunarLander-v3": (2, 3, 5),
    "LunarLanderContinuous-v3": (2, 3, 5),
}


def masked_task_id(task: str) -> str:
    """The zoo's id of ``task`` with its velocities masked: ``"CartPole-v1"`` -> ``"CartPoleNoVel-v1"``.

    Raises:
        TaskError: If ``task`` has no ``-vN`` version suffix.
    """
    name, separator, version = task.rpartition("-v")
    if not separator or not version.isdigit():
        raise TaskError(f"task {task!r} has no version suffix; pass an id such as 'CartPole-v1'")
    return f"{name}NoVel-v{version}"


#: Every velocity-masked id -> the Gymnasium id of the task it wraps.
MASKED_TASKS: dict[str, str] = {masked_task_id(task): task for task in VELOCITY_INDICES}


class MaskVelocityWrapper(gym.ObservationWrapper, gym.utils.RecordConstructorArgs):
    """Zero the velocity entries of a task's observations (multiply by a 0/1 mask, as the rl-zoo does).

    Example::

        env = MaskVelocityWrapper(gymnasium.make("Pendulum-v1"))
        observation, _ = env.reset(seed=0)  # [cos θ, sin θ, 0]
    """

    def __init__(self, env: gym.Env, task: str | None = None) -> None:
        """Wrap ``env``.

        Args:
            env: A copy of one of the tasks of ``VELOCITY_INDICES``.
            task: Its Gymnasium id; ``None`` reads ``env.unwrapped.spec.id``, as the zoo does.

        Raises:
            TaskError: If the task is not one of ``VELOCITY_INDICES`` (the zoo raises
                ``NotImplementedError`` there), or ``task`` is ``None`` and ``env`` has no spec.
        """
        gym.utils.RecordConstructorArgs.__init__(self, task=task)
        gym.ObservationWrapper.__init__(self, env)
        if task is None:
            spec = env.unwrapped.spec
            if spec is None:
                raise TaskError("the env has no spec to read its id from; pass task='CartPole-v1' (its Gymnasium id)")
            task = spec.id
        if task not in VELOCITY_INDICES:
            raise TaskError(f"velocity masking is not defined for task {task!r}; choose one of "
                            f"{tuple(VELOCITY_INDICES)}")
        space = env.observation_space
        if not isinstance(space, gym.spaces.Box):
            raise TaskError(f"task {task!r} has observation space {space}; velocity masking needs a Box")
        self.task = task
        #: 1 where the observation passes, 0 at the velocity entries; same shape and dtype as the observation.
        self.mask = np.ones(space.shape, dtype=space.dtype)
        self.mask[list(VELOCITY_INDICES[task])] = 0

    def observation(self, observation: np.ndarray) -> np.ndarray:
        """The observation times the mask (the zoo's ``observation * self.mask``)."""
        return observation * self.mask


def make_masked_task(task: str, **kwargs: Any) -> gym.Env:
    """The entry point of every ``...NoVel-vN`` id: ``task`` made with ``kwargs``, its velocities masked.

    The wrapped task is made without its time limit: ``gymnasium.make`` applies the masked id's,
    registered equal to the task's (or the ``max_episode_steps`` passed to it), once.

    Args:
        task: One of ``VELOCITY_INDICES``.
        **kwargs: Keyword arguments of the task (``render_mode`` included).

    Raises:
        TaskError: If ``task`` is not one of ``VELOCITY_INDICES``.
    """
    if task not in VELOCITY_INDICES:
        raise TaskError(f"velocity masking is not defined for task {task!r}; choose one of {tuple(VELOCITY_INDICES)}")
    return MaskVelocityWrapper(gym.make(task, max_episode_steps=-1, **kwargs), task=task)


def register_masked_tasks() -> None:
    """Register every ``MASKED_TASKS`` id in Gymnasium's registry; an id already there is left as it is.

    So calling it again, or importing ``rl_zoo3`` (which registers the same ids) before or after
    ``neuron_env``, is harmless. A wrapped task this Gymnasium lacks is skipped.
    """
    for masked, task in MASKED_TASKS.items():
        if masked in gym.registry or task not in gym.registry:
            continue
        spec = gym.registry[task]
        gym.register(id=masked, entry_point="neuron_env.tasks.masked:make_masked_task", kwargs={"task": task},
                     max_episode_steps=spec.max_episode_steps, reward_threshold=spec.reward_threshold)
