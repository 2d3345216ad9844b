"""Stable-Baselines3 DQN and PPO: the baselines for tasks with Discrete (and other non-Box) actions.

``neuron-env baseline --algo dqn`` (Discrete actions) and ``--algo ppo`` (Box, Discrete,
MultiDiscrete, MultiBinary) train SB3's DQN or PPO with the **same hidden sizes and activation**
as a local run (``policy_kwargs=dict(net_arch=hidden, activation_fn=...)`` for the Q-network, or
for PPO's policy and value networks alike) and write the same files as the DDPG baseline
(``metrics.csv``, ``summary.json``, ``config.json``, ``tb/``, ``model.zip``), evaluated on the
same protocol (``baselines.sb3_common``). ``neuron-env compare`` runs them as ``sb3-dqn`` and
``sb3-ppo``; ``sb3-dqn`` is the reference (score 1) of Discrete-action tasks.

Command line::

    neuron-env baseline --algo dqn --task CartPole-v1 --hidden 64 64 --steps 50000 --out runs/cp/sb3-dqn/0
    neuron-env baseline --algo ppo --task Acrobot-v1 --zoo-net --out runs/acrobot/sb3-ppo/0

Python::

    from neuron_env.baselines import BaselineConfig, run_baseline

    summary = run_baseline(BaselineConfig(algo="dqn", task="CartPole-v1", hidden=(64, 64), out="runs/x"))

Hyperparameters
---------------
SB3's own defaults (``DQN_SB3_DEFAULTS``, ``PPO_SB3_DEFAULTS``), replaced for the tasks below by
the rl-baselines3-zoo's values (``hyperparams/dqn.yml`` and ``hyperparams/ppo.yml`` of
DLR-RM/rl-baselines3-zoo), keyed by the task's name without its version suffix:

* DQN (``DQN_ZOO_HYPERPARAMS``), net_arch [256, 256] for all four:

  - ``CartPole``: 50k steps, learning rate 2.3e-3, batch 64, buffer 100k, learning_starts 1000,
    gamma 0.99, target_update_interval 10, train_freq 256, gradient_steps 128,
    exploration_fraction 0.16, exploration_final_eps 0.04;
  - ``Acrobot`` and ``LunarLander``: 100k steps, learning rate 6.3e-4, batch 128, buffer 50k,
    learning_starts 0, gamma 0.99, target_update_interval 250, train_freq 4, gradient_steps -1,
    exploration_fraction 0.12, exploration_final_eps 0.1;
  - ``MountainCar``: 120k steps, learning rate 4e-3, batch 128, buffer 10k, learning_starts 1000,
    gamma 0.98, target_update_interval 600, train_freq 16, gradient_steps 8,
    exploration_fraction 0.2, exploration_final_eps 0.07.

* PPO (``PPO_ZOO_HYPERPARAMS``), SB3's [64, 64] tanh networks:

  - ``CartPole``: 100k steps, 8 copies, n_steps 32, batch 256, gae_lambda 0.8, gamma 0.98,
    n_epochs 20, ent_coef 0, learning rate and clip range falling linearly from 1e-3 and 0.2 to 0
    (the zoo's ``lin_0.001`` / ``lin_0.2``);
  - ``Acrobot``: 1M steps, 16 copies, n_steps 256, gae_lambda 0.94, gamma 0.99, n_epochs 4, ent_coef 0;
  - ``MountainCar``: 1M steps, 16 copies, n_steps 16, gae_lambda 0.98, gamma 0.99, n_epochs 4, ent_coef 0;
  - ``LunarLander``: 1M steps, 16 copies, n_steps 1024, batch 64, gae_lambda 0.98, gamma 0.999,
    n_epochs 4, ent_coef 0.01.

  The zoo also wraps Acrobot and MountainCar in ``VecNormalize`` (``normalize: true`` in
  ``hyperparams/ppo.yml``, commit 22e3ff2; its CartPole and LunarLander entries have none); this
  baseline does not by default, on purpose, so that every method on these tasks sees the task's raw
  observations (``PPO_ZOO_HYPERPARAMS`` holds no ``normalize``). ``--normalize``
  (``normalize=True``) adds the zoo's ``VecNormalize`` (``baselines.sb3_common.wrap_normalize``:
  observations and returns, ``gamma`` the run's; evaluations with the statistics frozen, raw
  rewards; ``vecnormalize.pkl`` beside ``model.zip``). DQN takes no ``--normalize``: the zoo's
  ``dqn.yml`` normalizes none of its tasks.

Any other task gets SB3's defaults (``source: "sb3-defaults"`` in the summary) and 1M steps
unless ``steps`` is given. Every value is overridable (``BaselineConfig`` fields, ``--exploration-fraction``,
``--n-envs`` etc. on the command line); a zoo schedule overridden by a number becomes that constant.
The replay buffer is capped at the run's step budget. ``hidden=None`` (``--zoo-net``) uses the
zoo's net_arch (SB3's when the zoo has none) with SB3's activation (DQN ReLU, PPO tanh).

Steps and evaluations
---------------------
A step budget counts task steps over all of PPO's ``n_envs`` copies (they advance the step by
``n_envs`` at once), and the run stops at the budget, not at the end of its last rollout.
Evaluations run at the first step at or past each multiple of ``eval_every`` (exactly on it
when ``n_envs`` divides ``eval_every``) and at the end, each ``eval_episodes`` deterministic
episodes (DQN: greedy; PPO: the most likely action) from the local trainer's start states.
``updates`` counts gradient steps (PPO: epochs × minibatches per rollout); ``transitions`` the
replay buffer's content (DQN) or the last rollout's (PPO).
"""

from __future__ import annotations

from typing import Any

from neuron_env.baselines.sb3_common import (
    OFF_POLICY_KWARGS,
    BaselineConfig,
    merge_hyperparameters,
    policy_kwargs,
    require_sb3,
    wrap_normalize,
)

from neuron_env.vector import make_task_factory

#: The algorithms of this module.
DISCRETE_ALGOS: tuple[str, ...] = ("dqn", "ppo")
#: Stable-Baselines3's own DQN defaults (its ``DQNPolicy``: [64, 64] ReLU), and 1M steps.
DQN_SB3_DEFAULTS: dict[str, Any] = {
    "learning_rate": 1e-4,
    "buffer_size": 1_000_000,
    "learning_starts": 100,
    "batch_size": 32,
    "tau": 1.0,
    "gamma": 0.99,
    "train_freq": 4,
    "gradient_steps": 1,
    "target_update_interval": 10_000,
    "exploration_fraction": 0.1,
    "exploration_initial_eps": 1.0,
    "exploration_final_eps": 0.05,
    "net_arch": (64, 64),
    "activation": "relu",
    "n_timesteps": 1_000_000,
}
_DQN_ACROBOT: dict[str, Any] = {
    "n_timesteps": 100_000,
    "learning_rate": 6.3e-4,
    "batch_size": 128,
    "buffer_size": 50_000,
    "learning_starts": 0,
    "gamma": 0.99,
    "target_update_interval": 250,
    "train_freq": 4,
    "gradient_steps": -1,
    "exploration_fraction": 0.12,
    "exploration_final_eps": 0.1,
    "net_arch": (256, 256),
}
#: rl-baselines3-zoo DQN hyperparameters (``hyperparams/dqn.yml``), keyed by task name without ``-vN``.
DQN_ZOO_HYPERPARAMS: dict[str, dict[str, Any]] = {
    "CartPole": {
        "n_timesteps": 50_000,
        "learning_rate": 2.3e-3,
        "batch_size": 64,
        "buffer_size": 100_000,
        "learning_starts": 1000,
        "gamma": 0.99,
        "target_update_interval": 10,
        "train_freq": 256,
        "gradient_steps": 128,
        "exploration_fraction": 0.16,
        "exploration_final_eps": 0.04,
        "net_arch": (256, 256),
    },
    "Acrobot": _DQN_ACROBOT,
    "LunarLander": _DQN_ACROBOT,  # the zoo's LunarLander-v2 entry holds the same values
    "MountainCar": {
        "n_timesteps": 120_000,
        "learning_rate": 4e-3,
        "batch_size": 128,
        "buffer_size": 10_000,
        "learning_starts": 1000,
        "gamma": 0.98,
        "target_update_interval": 600,
        "train_freq": 16,
        "gradient_steps": 8,
        "exploration_fraction": 0.2,
        "exploration_final_eps": 0.07,
        "net_arch": (256, 256),
    },
}
#: Stable-Baselines3's own PPO defaults (its ``ActorCriticPolicy``: [64, 64] tanh), one task copy, 1M steps.
PPO_SB3_DEFAULTS: dict[str, Any] = {
    "learning_rate": 3e-4,
    "n_steps": 2048,
    "batch_size": 64,
    "n_epochs": 10,
    "gamma": 0.99,
    "gae_lambda": 0.95,
    "clip_range": 0.2,
    "ent_coef": 0.0,
    "n_envs": 1,
    "net_arch": (64, 64),
    "activation": "tanh",
    "n_timesteps": 1_000_000,
    "normalize": False,  # on purpose for every task, including the zoo's normalized Acrobot and MountainCar
}
#: rl-baselines3-zoo PPO hyperparameters (``hyperparams/ppo.yml``; ``lin_X``: linear from X to 0), without the zoo's
#: ``normalize: true`` of Acrobot and MountainCar (raw observations for every method; ``--normalize`` adds it).
PPO_ZOO_HYPERPARAMS: dict[str, dict[str, Any]] = {
    "CartPole": {
        "n_envs": 8,
        "n_timesteps": 100_000,
        "n_steps": 32,
        "batch_size": 256,
        "gae_lambda": 0.8,
        "gamma": 0.98,
        "n_epochs": 20,
        "ent_coef": 0.0,
        "learning_rate": "lin_0.001",
        "clip_range": "lin_0.2",
    },
    "Acrobot": {"n_envs": 16, "n_timesteps": 1_000_000, "n_steps": 256, "gae_lambda": 0.94, "gamma": 0.99,
                "n_epochs": 4, "ent_coef": 0.0},
    "MountainCar": {"n_envs": 16, "n_timesteps": 1_000_000, "n_steps": 16, "gae_lambda": 0.98, "gamma": 0.99,
                    "n_epochs": 4, "ent_coef": 0.0},
    "LunarLander": {"n_envs": 16, "n_timesteps": 1_000_000, "n_steps": 1024, "batch_size": 64, "gae_lambda": 0.98,
                    "gamma": 0.999, "n_epochs": 4, "ent_coef": 0.01},
}
#: DQN's keyword arguments: the off-policy ones DDPG takes too, and its own.
_DQN_KWARGS: tuple[str, ...] = (
    *OFF_POLICY_KWARGS,
    "target_update_interval",
    "exploration_fraction",
    "exploration_initial_eps",
    "exploration_final_eps",
)
_PPO_KWARGS: tuple[str, ...] = (
    "learning_rate", "n_steps", "batch_size", "n_epochs", "gamma", "gae_lambda", "clip_range", "ent_coef")
_DQN_OVERRIDES: tuple[str, ...] = tuple(name for name in _DQN_KWARGS if name != "exploration_initial_eps")
_PPO_OVERRIDES: tuple[str, ...] = (*_PPO_KWARGS, "n_envs")


def resolve_discrete_hyperparameters(config: BaselineConfig) -> dict[str, Any]:
    """The hyperparameters a DQN or PPO run uses: SB3's defaults, the zoo's for the task, then the overrides.

    The result has every SB3 keyword the algorithm takes here plus ``steps``, ``net_arch``,
    ``activation``, ``source``, ``normalize``, ``normalize_kwargs`` and, for PPO, ``n_envs``.

    Raises:
        ValueError: If ``config.algo`` is neither ``dqn`` nor ``ppo``.
    """
    if config.algo == "dqn":
        return merge_hyperparameters(config, DQN_SB3_DEFAULTS, DQN_ZOO_HYPERPARAMS, {}, _DQN_OVERRIDES)
    if config.algo == "ppo":
        return merge_hyperparameters(config, PPO_SB3_DEFAULTS, PPO_ZOO_HYPERPARAMS, {}, _PPO_OVERRIDES)
    raise ValueError(f"algo {config.algo!r} is not one of {DISCRETE_ALGOS}")


def schedule(value: float | str) -> Any:
    """A zoo value as SB3 takes it: ``"lin_X"`` -> SB3's ``LinearSchedule`` from X to 0; a number as is."""
    if isinstance(value, str) and value.startswith("lin_"):
        from stable_baselines3.common.utils import LinearSchedule

        return LinearSchedule(float(value.removeprefix("lin_")), 0.0, 1.0)
    return float(value)


def build_discrete_model(config: BaselineConfig, env: Any | None = None) -> tuple[Any, dict[str, Any]]:
    """An untrained SB3 DQN or PPO model for ``config`` and the hyperparameters it was built with.

    Args:
        config: The run's configuration (``algo`` ``dqn`` or ``ppo``).
        env: The training env; when ``None``, a ``Monitor``-wrapped task copy (DQN) or SB3's
            ``make_vec_env`` of ``n_envs`` copies (PPO, wrapped in ``VecNormalize`` when the run normalizes).

    Raises:
        BaselineConfigError: On an invalid option or an action space the algorithm cannot act on.
    """
    config.validate()
    require_sb3()
    from stable_baselines3 import DQN, PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.logger import Logger
    from stable_baselines3.common.monitor import Monitor

    params = resolve_discrete_hyperparameters(config)
    common = {"policy_kwargs": policy_kwargs(params), "seed": config.seed, "device": config.device, "verbose": 0}
    if config.algo == "dqn":
        model = DQN("MlpPolicy", env if env is not None else Monitor(make_task_factory(config.task)()), **common,
                    **{name: params[name] for name in _DQN_KWARGS}, **config.extra)
    else:
        if env is None:
            env = make_vec_env(make_task_factory(config.task), n_envs=int(params["n_envs"]), seed=config.seed)
        env = wrap_normalize(env, params)
        kwargs = {name: params[name] for name in _PPO_KWARGS}
        kwargs["learning_rate"] = schedule(kwargs["learning_rate"])
        kwargs["clip_range"] = schedule(kwargs["clip_range"])
        model = PPO("MlpPolicy", env, **common, **kwargs, **config.extra)
    model.set_logger(Logger(folder=None, output_formats=[]))
    return model, params
