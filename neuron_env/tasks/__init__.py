"""Tasks neuron-env adds to Gymnasium's registry (registered on ``import neuron_env``).

* ``neuron_env.tasks.masked``: the rl-baselines3-zoo's velocity-masked tasks, which need memory
  (``CartPoleNoVel-v1``, ``PendulumNoVel-v1``, ``MountainCarContinuousNoVel-v0``, …)::

      import gymnasium
      import neuron_env

      env = gymnasium.make("PendulumNoVel-v1")  # Pendulum-v1 with its angular velocity zeroed
"""

from neuron_env.tasks.masked import (
    MASKED_TASKS,
    VELOCITY_INDICES,
    MaskVelocityWrapper,
    make_masked_task,
    masked_task_id,
    register_masked_tasks,
)

__all__ = [
    "MASKED_TASKS",
    "VELOCITY_INDICES",
    "MaskVelocityWrapper",
    "make_masked_task",
    "masked_task_id",
    "register_masked_tasks",
]
