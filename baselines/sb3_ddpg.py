"""Stable-Baselines3 DDPG / TD3 on the same task and network as a local run, and the baselines' entry point.

This is the reference the local learners are measured against: SB3's DDPG (or TD3, one
parameter away) with the **same hidden sizes and activation** as the local run, explicit
exploration noise and ``learning_starts`` (SB3's own defaults use no action noise at all), and
the rl-zoo's tuned hyperparameters for the task. It writes the same files as
``neuron-env train`` (see ``baselines.outputs``), so the two runs compare line by
line.

Command line::

    neuron-env baseline --algo ddpg --task Pendulum-v1 --hidden 64 64 --steps 20000 --out runs/p/sb3-ddpg/0
    neuron-env baseline --algo td3 --task InvertedPendulum-v5 --zoo-net --steps 50000 --out runs/ip

Python::

    from neuron_env.baselines import BaselineConfig, run_baseline

    summary = run_baseline(BaselineConfig(task="Pendulum-v1", hidden=(64, 64), steps=20_000, out="runs/x"))
    print(summary["final_eval_return_mean"])

Hyperparameters
---------------
``ZOO_HYPERPARAMS`` holds the rl-baselines3-zoo values (``hyperparams/ddpg.yml``), keyed by the
task's name without its version suffix:

* ``Pendulum``: 20k steps, gamma 0.98, buffer 200k, learning_starts 10k, normal noise 0.1,
  learning rate 1e-3, net_arch [400, 300], one gradient step per env step (older zoo releases
  wrote the same ratio as ``train_freq: [1, "episode"]``, ``gradient_steps: -1``).
* ``MountainCarContinuous``: 300k steps, Ornstein-Uhlenbeck noise 0.5, SB3's other defaults.
* MuJoCo tasks (the zoo's ``mujoco-defaults``): 1M steps, learning_starts 10k, normal noise 0.1,
  one gradient step per env step, learning rate 1e-3, batch 256, net_arch [400, 300]
  (Humanoid 2M steps, Swimmer gamma 0.9999). InvertedPendulum, InvertedDoublePendulum and Reacher
  are not in the zoo's DDPG file; they get the MuJoCo defaults.

Any other task gets SB3's defaults plus normal noise 0.1 and ``learning_starts`` 10k
(``source: "fallback"`` in the summary). Every value is overridable
(``BaselineConfig`` fields, ``--learning-starts`` etc. on the command line). The noise is
added to the *scaled* action in ``[-1, 1]``, as SB3 does. The replay buffer is capped at the run's
step budget (the same behaviour, less memory).

The network: ``hidden`` and ``activation`` set ``policy_kwargs=dict(net_arch=..., activation_fn=...)``
for actor and critic alike; ``hidden=None`` (``--zoo-net``) uses the zoo's ``net_arch`` with
SB3's ReLU. The actor's output layer is ``tanh`` either way, as in the local network.

Other algorithms
----------------
``build_model``, ``train_sb3``, ``run_baseline`` and ``resolve_hyperparameters`` here take every
``--algo``: ``ddpg`` and ``td3`` are built in this module, ``dqn`` and ``ppo`` (Discrete and other
non-Box actions) in ``baselines.sb3_discrete``, ``recurrent-ppo`` (sb3-contrib's RecurrentPPO, for
tasks that need memory) in ``baselines.sb3_recurrent``; all of them are trained, evaluated and written by
``baselines.sb3_common`` (which also holds ``BaselineConfig``, re-exported here). An algorithm
that cannot act on the task's action space (DDPG on CartPole-v1, DQN on Pendulum-v1) is refused
by ``BaselineConfig.validate`` in one line that names the action space and the algorithm to use.

Evaluation
----------
Every ``eval_every`` task steps and at the end, the policy runs ``eval_episodes`` deterministic
episodes (no noise) on a separate copy of the task; episode ``i`` is reset with the trainer's
seed ``neuron_env.agents.train.evaluation_seed(seed) + i``, so a baseline run and a local run
with the same ``--seed`` are evaluated from the same start states.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from neuron_env.baselines.errors import BaselineConfigError
from neuron_env.baselines.sb3_common import (
    ACTIVATION_MODULES,
    ALGOS,
    LOG_EVERY,
    NOISE_TYPES,
    OFF_POLICY_KWARGS,
    BaselineConfig,
    evaluate,
    evaluation_seed,
    merge_hyperparameters,
    policy_kwargs,
    prepare_run,
    require_sb3,
    task_key,
    train_model,
)
from neuron_env.baselines.sb3_discrete import DISCRETE_ALGOS, build_discrete_model, resolve_discrete_hyperparameters
from neuron_env.baselines.sb3_recurrent import (
    RECURRENT_ALGOS,
    build_recurrent_model,
    resolve_recurrent_hyperparameters,
)

from neuron_env.run_folders import clear_run_folder
from neuron_env.vector import make_task_factory

__all__ = [
    "ACTIVATION_MODULES",
    "ALGOS",
    "DDPG_ALGOS",
    "LOG_EVERY",
    "NOISE_TYPES",
    "SB3_DEFAULTS",
    "ZOO_HYPERPARAMS",
    "BaselineConfig",
    "build_model",
    "evaluate",
    "evaluation_seed",
    "make_action_noise",
    "resolve_hyperparameters",
    "run_baseline",
    "task_key",
    "train_sb3",
    "zoo_hyperparameters",
]

#: The algorithms of this module (Box actions); ``ALGOS`` holds every ``--algo``.
DDPG_ALGOS: tuple[str, ...] = ("ddpg", "td3")
#: Stable-Baselines3's own DDPG/TD3 defaults (used where the zoo says nothing).
SB3_DEFAULTS: dict[str, Any] = {
    "learning_rate": 1e-3,
    "buffer_size": 1_000_000,
    "learning_starts": 100,
    "batch_size": 256,
    "tau": 0.005,
    "gamma": 0.99,
    "train_freq": 1,
    "gradient_steps": 1,
    "net_arch": (400, 300),
    "activation": "relu",
    "noise_type": "none",
    "noise_std": 0.0,
    "n_timesteps": 1_000_000,
}

_MUJOCO: dict[str, Any] = {
    "n_timesteps": 1_000_000,
    "learning_starts": 10_000,
    "noise_type": "normal",
    "noise_std": 0.1,
    "train_freq": 1,
    "gradient_steps": 1,
    "learning_rate": 1e-3,
    "batch_size": 256,
    "net_arch": (400, 300),
}

#: rl-baselines3-zoo DDPG hyperparameters, keyed by task name without the ``-vN`` suffix.
ZOO_HYPERPARAMS: dict[str, dict[str, Any]] = {
    "Pendulum": {
        "n_timesteps": 20_000,
        "gamma": 0.98,
        "buffer_size": 200_000,
        "learning_starts": 10_000,
        "noise_type": "normal",
        "noise_std": 0.1,
        "gradient_steps": 1,
        "train_freq": 1,
        "learning_rate": 1e-3,
        "net_arch": (400, 300),
    },
    "MountainCarContinuous": {"n_timesteps": 300_000, "noise_type": "ornstein-uhlenbeck", "noise_std": 0.5},
    "HalfCheetah": _MUJOCO,
    "Ant": _MUJOCO,
    "Hopper": _MUJOCO,
    "Walker2d": _MUJOCO,
    "Humanoid": {**_MUJOCO, "n_timesteps": 2_000_000},
    "Swimmer": {**_MUJOCO, "gamma": 0.9999},
    "InvertedPendulum": _MUJOCO,
    "InvertedDoublePendulum": _MUJOCO,
    "Reacher": _MUJOCO,
}

_FALLBACK: dict[str, Any] = {"noise_type": "normal", "noise_std": 0.1, "learning_starts": 10_000}
_SB3_KWARGS: tuple[str, ...] = OFF_POLICY_KWARGS


def zoo_hyperparameters(task: str) -> tuple[dict[str, Any], str]:
    """The zoo's DDPG hyperparameters for ``task`` merged over SB3's defaults, and where they came from.

    Returns:
        ``(hyperparameters, source)`` with ``source`` one of ``"rl-zoo"`` or ``"fallback"``.
    """
    key = task_key(task)
    if key in ZOO_HYPERPARAMS:
        return {**SB3_DEFAULTS, **ZOO_HYPERPARAMS[key]}, "rl-zoo"
    return {**SB3_DEFAULTS, **_FALLBACK}, "fallback"


def resolve_hyperparameters(config: BaselineConfig) -> dict[str, Any]:
    """The hyperparameters a run uses: the zoo's for the task and algorithm, then the config's overrides.

    For DDPG/TD3 the result has every SB3 keyword in ``_SB3_KWARGS`` plus ``steps``, ``noise_type``,
    ``noise_std``, ``net_arch``, ``activation`` and ``source``; DQN and PPO resolve in
    ``baselines.sb3_discrete.resolve_discrete_hyperparameters``.
    """
    if config.algo in DISCRETE_ALGOS:
        return resolve_discrete_hyperparameters(config)
    if config.algo in RECURRENT_ALGOS:
        return resolve_recurrent_hyperparameters(config)
    return merge_hyperparameters(config, SB3_DEFAULTS, ZOO_HYPERPARAMS, _FALLBACK,
                                 (*_SB3_KWARGS, "noise_type", "noise_std"))


def make_action_noise(noise_type: str, noise_std: float, act_dim: int) -> Any:
    """SB3 action noise of the given kind (``None`` for ``"none"`` or a zero scale)."""
    from stable_baselines3.common.noise import NormalActionNoise, OrnsteinUhlenbeckActionNoise

    if noise_type == "none" or noise_std == 0:
        return None
    mean, sigma = np.zeros(act_dim), float(noise_std) * np.ones(act_dim)
    if noise_type == "normal":
        return NormalActionNoise(mean, sigma)
    return OrnsteinUhlenbeckActionNoise(mean, sigma)


def build_model(config: BaselineConfig, env: Any | None = None) -> tuple[Any, dict[str, Any]]:
    """An untrained SB3 model for ``config`` (DDPG/TD3 here, DQN/PPO in ``sb3_discrete``) and its hyperparameters.

    Args:
        config: The run's configuration.
        env: The training env (a ``Monitor``-wrapped task copy is made when ``None``).

    Raises:
        BaselineConfigError: On an invalid option or an action space the algorithm cannot act on.
    """
    if config.algo in DISCRETE_ALGOS:
        return build_discrete_model(config, env)
    if config.algo in RECURRENT_ALGOS:
        return build_recurrent_model(config, env)
    config.validate()
    require_sb3()
    import gymnasium as gym
    from stable_baselines3 import DDPG, TD3
    from stable_baselines3.common.logger import Logger
    from stable_baselines3.common.monitor import Monitor

    params = resolve_hyperparameters(config)
    if env is None:
        env = Monitor(make_task_factory(config.task)())
    if not isinstance(env.action_space, gym.spaces.Box):
        raise BaselineConfigError(f"task {config.task!r} has action space {env.action_space}; "
                                  f"--algo {config.algo} needs a Box: use --algo dqn or --algo ppo")
    act_dim = int(np.prod(env.action_space.shape))
    algo = DDPG if config.algo == "ddpg" else TD3
    model = algo(
        "MlpPolicy",
        env,
        action_noise=make_action_noise(params["noise_type"], params["noise_std"], act_dim),
        policy_kwargs=policy_kwargs(params),
        seed=config.seed,
        device=config.device,
        verbose=0,
        **{name: params[name] for name in _SB3_KWARGS},
        **config.extra,
    )
    model.set_logger(Logger(folder=None, output_formats=[]))
    return model, params


def train_sb3(config: BaselineConfig, callbacks: Sequence[Any] = (),
              on_eval: Callable[[int, float], None] | None = None,
              overwrite: bool = False) -> tuple[Any, dict[str, Any]]:
    """Train one SB3 baseline (any ``--algo``), writing every output file into ``config.out``.

    Args:
        config: The run's configuration.
        callbacks: Further SB3 callbacks run after the evaluation callback (the experiments use
            this to train probes on the same replay buffer while DDPG trains).
        on_eval: Called with ``(task step, evaluation return mean)`` after every evaluation
            (``compare`` prints its progress lines with it).
        overwrite: Delete the run files already in ``config.out`` (``tb/`` included, other files
            kept; ``neuron_env.run_folders.clear_run_folder``) once the model is built, before writing.

    Returns:
        ``(model, summary)``: the trained SB3 model (its replay buffer included) and the dict
        written to ``summary.json``.

    Raises:
        BaselineConfigError: On an invalid option (nothing is written then).
        MissingDependencyError: When Stable-Baselines3 is not installed.
        RunInterrupted: On Ctrl-C, after recording the run as interrupted (``train_model``).
    """
    prepare_run(config)
    model, params = build_model(config)
    if overwrite:
        clear_run_folder(config.out)
    summary = train_model(config, model, params, callbacks, on_eval)
    return model, summary


def run_baseline(config: BaselineConfig, on_eval: Callable[[int, float], None] | None = None,
                 overwrite: bool = False) -> dict[str, Any]:
    """Train one SB3 baseline (see ``train_sb3``; ``on_eval`` and ``overwrite`` as there) and return its summary."""
    _, summary = train_sb3(config, on_eval=on_eval, overwrite=overwrite)
    return summary
