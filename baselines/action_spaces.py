"""Which Stable-Baselines3 algorithm can act on which action space, and which one is the reference.

The baselines and ``neuron-env compare`` check a task's action space before anything runs, so a
method that cannot act on it is refused (or skipped) in one line instead of failing deep inside SB3:

=============  =============================================  =========================================
action space   algorithms (``--algo``)                        reference of ``compare --reference auto``
=============  =============================================  =========================================
Box            ``ddpg``, ``td3``, ``ppo``, ``recurrent-ppo``  ``sb3-ddpg``
Discrete       ``dqn``, ``ppo``, ``recurrent-ppo``            ``sb3-dqn``
MultiDiscrete  ``ppo``, ``recurrent-ppo``                     ``sb3-ppo``
MultiBinary    ``ppo``, ``recurrent-ppo``                     ``sb3-ppo``
=============  =============================================  =========================================

Any other action space (``Tuple``, ``Dict``, …) has no SB3 algorithm here.

Example::

    from neuron_env.baselines.action_spaces import action_space_kind, check_algo_fits, task_action_space

    action_space_kind(task_action_space("CartPole-v1"))  # 'Discrete'
    check_algo_fits("ddpg", "CartPole-v1")  # BaselineConfigError: ... use --algo dqn or --algo ppo
"""

from __future__ import annotations

import functools
from typing import Any

from neuron_env.baselines.errors import BaselineConfigError, check_task_id

#: The action-space kinds the baselines know, by Gymnasium class name.
ACTION_SPACE_KINDS: tuple[str, ...] = ("Box", "Discrete", "MultiDiscrete", "MultiBinary")
#: The action-space kinds each ``--algo`` can act on (SB3's own support).
ALGO_ACTION_SPACES: dict[str, tuple[str, ...]] = {
    "ddpg": ("Box",),
    "td3": ("Box",),
    "dqn": ("Discrete",),
    "ppo": ("Box", "Discrete", "MultiDiscrete", "MultiBinary"),
    "recurrent-ppo": ("Box", "Discrete", "MultiDiscrete", "MultiBinary"),  # sb3-contrib's RecurrentPPO
}
#: The method that scores 1 under ``compare --reference auto``, per action-space kind.
AUTO_REFERENCES: dict[str, str] = {
    "Box": "sb3-ddpg",
    "Discrete": "sb3-dqn",
    "MultiDiscrete": "sb3-ppo",
    "MultiBinary": "sb3-ppo",
}


def action_space_kind(space: Any) -> str:
    """``"Box"``, ``"Discrete"``, ``"MultiDiscrete"``, ``"MultiBinary"``, or the class name of any other space."""
    import gymnasium

    for kind in ACTION_SPACE_KINDS:
        if isinstance(space, getattr(gymnasium.spaces, kind)):
            return kind
    return type(space).__name__


@functools.cache
def task_action_space(task: str) -> Any:
    """The action space of Gymnasium task ``task`` (the task is made once per process, then closed).

    Raises:
        BaselineConfigError: If Gymnasium has no such task or cannot make it (e.g. a missing extra).
    """
    import gymnasium

    check_task_id(task)
    try:
        env = gymnasium.make(task)
    except Exception as error:  # noqa: BLE001 - any failure to build the task is the user's to fix
        raise BaselineConfigError(f"task {task!r} cannot be made: {type(error).__name__}: {error}") from None
    try:
        return env.action_space
    finally:
        env.close()


def algos_for(kind: str) -> tuple[str, ...]:
    """The ``--algo`` values that can act on actions of ``kind`` (empty for a kind no algorithm serves)."""
    return tuple(algo for algo, kinds in ALGO_ACTION_SPACES.items() if kind in kinds)


def describe_action_space(task: str) -> str:
    """``"a Discrete action space (Discrete(2))"``: the kind and the space, for messages."""
    space = task_action_space(task)
    return f"a {action_space_kind(space)} action space ({space})"


def check_algo_fits(algo: str, task: str) -> None:
    """Raise in one line unless SB3's ``algo`` can act on ``task``'s action space.

    Args:
        algo: One of ``ALGO_ACTION_SPACES``.
        task: A Gymnasium id.

    Raises:
        BaselineConfigError: Naming the task's action space and the algorithms to use instead.
    """
    kind = action_space_kind(task_action_space(task))
    if kind in ALGO_ACTION_SPACES[algo]:
        return
    others = algos_for(kind)
    fix = ("use " + " or ".join(f"--algo {name}" for name in others)) if others else (
        "no SB3 baseline here acts on it")
    served = "/".join(ALGO_ACTION_SPACES[algo])
    raise BaselineConfigError(f"task {task!r} has {describe_action_space(task)}; --algo {algo} acts on {served} "
                              f"actions only: {fix}")
