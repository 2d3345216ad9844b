"""sb3-contrib RecurrentPPO: the backprop baseline with memory, for tasks a feed-forward policy cannot solve.

``neuron-env baseline --algo recurrent-ppo`` trains sb3-contrib's ``RecurrentPPO`` with its
``MlpLstmPolicy`` (an LSTM between the observation and the policy and value networks, trained by
backpropagation through time over each rollout's sequences). It is the reference for the
velocity-masked tasks (``CartPoleNoVel-v1``, ``PendulumNoVel-v1``,
``MountainCarContinuousNoVel-v0``, …; ``neuron_env.tasks.masked``), where a policy must
remember, and it writes the same files as every baseline (``metrics.csv``, ``summary.json``,
``config.json``, ``tb/``, ``model.zip``; ``baselines.sb3_common``), and the zoo's ``VecNormalize``
statistics in ``vecnormalize.pkl`` beside ``model.zip``. Load the model with
``sb3_contrib.RecurrentPPO.load`` and the statistics with ``stable_baselines3``'s
``VecNormalize.load("vecnormalize.pkl", venv)`` (then ``training = False``, ``norm_reward = False``).

sb3-contrib is optional: ``pip install 'sb3-contrib>=2.0'`` (or ``pip install 'neuron-env[recurrent]'``);
without it ``--algo recurrent-ppo`` stops in one line that names that command.

Command line::

    neuron-env baseline --algo recurrent-ppo --task CartPoleNoVel-v1 --zoo-net --out runs/cp-novel/recurrent-ppo/0
    neuron-env baseline --algo recurrent-ppo --task PendulumNoVel-v1 --hidden 64 64 --out runs/p-novel/lstm

Python::

    from neuron_env.baselines import BaselineConfig, run_baseline

    summary = run_baseline(BaselineConfig(algo="recurrent-ppo", task="CartPoleNoVel-v1", hidden=None, out="runs/x"))

The network
-----------
``MlpLstmPolicy``: observation -> LSTM (one layer of ``lstm_hidden_size`` cells; the critic has an
LSTM of its own, ``enable_critic_lstm``) -> policy and value networks of ``net_arch`` -> action
head and value. ``hidden`` (``--hidden``) and ``activation`` set ``net_arch`` and its activation
for the policy and value networks alike, as for ``ppo``; ``hidden=None`` (``--zoo-net``) takes
the zoo's (``[64]`` ReLU on CartPoleNoVel, PendulumNoVel and LunarLanderNoVel, ``[64]`` tanh on
MountainCarContinuousNoVel; sb3-contrib's ``[64, 64]`` tanh elsewhere). The LSTM's size is always
the zoo's for the task (64, or 32 on MountainCarContinuousNoVel; sb3-contrib's 256 where the zoo
has none), as are ``ortho_init``, ``log_std_init`` and ``enable_critic_lstm``: they are what the
zoo tuned the memory with, and ``--hidden`` matches a local run's layers, which have no LSTM.

Hyperparameters
---------------
sb3-contrib's defaults (``RECURRENT_PPO_SB3_DEFAULTS``), replaced for the tasks below by the
rl-baselines3-zoo's (``hyperparams/ppo_lstm.yml`` of DLR-RM/rl-baselines3-zoo, commit 22e3ff2),
keyed by the task's name without its version suffix (``RECURRENT_PPO_ZOO_HYPERPARAMS``). Every
one of these entries has the zoo's ``normalize: true`` (see "Normalization" below):

* ``CartPoleNoVel``: 100k steps, 8 copies, n_steps 32, batch 256, gae_lambda 0.8, gamma 0.98,
  n_epochs 20, ent_coef 0, learning rate and clip range falling linearly from 1e-3 and 0.2 to 0
  (``lin_0.001`` / ``lin_0.2``); LSTM 64, ``ortho_init=False``, net_arch [64] ReLU.
* ``PendulumNoVel``: 100k steps, 4 copies, n_steps 1024, gae_lambda 0.95, gamma 0.9, n_epochs 10,
  ent_coef 0, learning rate 1e-3, clip range 0.2, gSDE (``use_sde``, ``sde_sample_freq`` 4);
  LSTM 64, ``ortho_init=False``, net_arch [64] ReLU.
* ``MountainCarContinuousNoVel``: 300k steps, 8 copies, n_steps 1024, batch 256, gamma 0.9999,
  learning rate 7.77e-5, ent_coef 0.00429, clip range 0.1, n_epochs 10, gae_lambda 0.9,
  max_grad_norm 5, vf_coef 0.19, gSDE (``sde_sample_freq`` 8); LSTM 32, ``ortho_init=False``,
  ``log_std_init=0``, net_arch [64] tanh.
* ``MountainCarNoVel`` (the zoo's "to be tuned"): 1M steps, 16 copies, n_steps 16,
  gae_lambda 0.98, gamma 0.99, n_epochs 4, ent_coef 0.
* ``LunarLanderNoVel`` and ``LunarLanderContinuousNoVel`` (the zoo's file names them ``-v2``;
  its wrapper registers ``-v3`` now): 5M steps, 32 copies, n_steps 512, batch 128,
  gae_lambda 0.98, gamma 0.999, n_epochs 4, ent_coef 0.01; LSTM 64, ``ortho_init=False``,
  net_arch [64] ReLU.
* ``Acrobot`` (the plain task): 1M steps, 16 copies, n_steps 256, gae_lambda 0.94, gamma 0.99,
  n_epochs 4, ent_coef 0.

Any other task gets sb3-contrib's defaults and the zoo's default budget, 1M steps, without
normalization (``source: "sb3-defaults"`` in the summary; the zoo's ``default`` entry has no
``normalize``). Overrides: ``learning_rate``, ``gamma``, ``batch_size`` and ``ppo``'s (``n_envs``, ``n_steps``,
``n_epochs``, ``gae_lambda``, ``clip_range``, ``ent_coef``); a zoo schedule overridden by a number
becomes that constant.

Normalization
-------------
As the zoo (``rl_zoo3/exp_manager.py``, ``_preprocess_normalization`` and ``_maybe_normalize``):
``normalize: true`` wraps the ``n_envs`` training copies in SB3's ``VecNormalize`` with its
defaults (observations and discounted returns normalized by running statistics, both clipped at
10) and ``gamma`` the run's discount; ``summary.json``'s ``hyperparameters`` record ``normalize``
and ``normalize_kwargs``. ``--no-normalize`` (``normalize=False``) trains on the raw task, as this
baseline did before; ``--normalize`` normalizes a task the zoo has no entry for. Evaluations
normalize the observations with the training statistics of that moment, frozen for the
evaluation, and score the task's raw rewards (the zoo's evaluation env: ``training=False``,
``norm_reward=False``); training episode returns (``episodes.csv``) are raw too.

Steps and evaluations
---------------------
As ``ppo``'s: the budget counts task steps over all ``n_envs`` copies and the run stops at it.
Each evaluation runs ``eval_episodes`` deterministic episodes from the local trainer's start
states, the LSTM's state carried from step to step within an episode and reset at its start
(``baselines.sb3_common.evaluate``). ``updates`` counts epochs × minibatches per rollout;
``num_agents`` the neurons of the policy network after the LSTM and of the action head.
"""

from __future__ import annotations

from typing import Any

from neuron_env.baselines.errors import MissingDependencyError
from neuron_env.baselines.sb3_common import (
    ACTIVATION_MODULES,
    BaselineConfig,
    merge_hyperparameters,
    require_sb3,
    wrap_normalize,
)
from neuron_env.baselines.sb3_discrete import schedule

from neuron_env.vector import make_task_factory

#: The algorithms of this module.
RECURRENT_ALGOS: tuple[str, ...] = ("recurrent-ppo",)
#: What to run when sb3-contrib is missing.
SB3_CONTRIB_INSTALL = "pip install 'sb3-contrib>=2.0'"
#: sb3-contrib's own RecurrentPPO and ``MlpLstmPolicy`` defaults, one task copy, and the zoo's default 1M steps.
RECURRENT_PPO_SB3_DEFAULTS: dict[str, Any] = {
    "learning_rate": 3e-4,
    "n_steps": 128,
    "batch_size": 128,
    "n_epochs": 10,
    "gamma": 0.99,
    "gae_lambda": 0.95,
    "clip_range": 0.2,
    "ent_coef": 0.0,
    "vf_coef": 0.5,
    "max_grad_norm": 0.5,
    "use_sde": False,
    "sde_sample_freq": -1,
    "n_envs": 1,
    "net_arch": (64, 64),
    "activation": "tanh",
    "lstm_hidden_size": 256,
    "enable_critic_lstm": True,
    "ortho_init": True,
    "log_std_init": 0.0,
    "n_timesteps": 1_000_000,
    "normalize": False,  # the zoo's `default` entry has no `normalize`
}
# The zoo's policy_kwargs of its tuned NoVel tasks: dict(ortho_init=False, activation_fn=nn.ReLU,
# lstm_hidden_size=64, enable_critic_lstm=True, net_arch=dict(pi=[64], vf=[64])); equal pi and vf
# layers are SB3's net_arch=[64] (separate policy and value networks).
_ZOO_LSTM_64: dict[str, Any] = {
    "ortho_init": False,
    "activation": "relu",
    "lstm_hidden_size": 64,
    "enable_critic_lstm": True,
    "net_arch": (64,),
}
_LUNAR_LANDER: dict[str, Any] = {
    "normalize": True,
    "n_envs": 32,
    "n_timesteps": 5_000_000,
    "n_steps": 512,
    "batch_size": 128,
    "gae_lambda": 0.98,
    "gamma": 0.999,
    "n_epochs": 4,
    "ent_coef": 0.01,
    **_ZOO_LSTM_64,
}
#: rl-baselines3-zoo RecurrentPPO hyperparameters (``hyperparams/ppo_lstm.yml`` at commit 22e3ff2; ``lin_X``: linear
#: from X to 0; ``normalize``: the zoo's ``normalize`` entry, ``True`` or VecNormalize kwargs), keyed by task name
#: without ``-vN``.
RECURRENT_PPO_ZOO_HYPERPARAMS: dict[str, dict[str, Any]] = {
    "CartPoleNoVel": {
        "normalize": True,
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
        **_ZOO_LSTM_64,
    },
    "PendulumNoVel": {
        "normalize": True,
        "n_envs": 4,
        "n_timesteps": 100_000,
        "n_steps": 1024,
        "gae_lambda": 0.95,
        "gamma": 0.9,
        "n_epochs": 10,
        "ent_coef": 0.0,
        "learning_rate": 1e-3,
        "clip_range": 0.2,
        "use_sde": True,
        "sde_sample_freq": 4,
        **_ZOO_LSTM_64,
    },
    "MountainCarNoVel": {"normalize": True, "n_envs": 16, "n_timesteps": 1_000_000, "n_steps": 16, "gae_lambda": 0.98,
                         "gamma": 0.99, "n_epochs": 4, "ent_coef": 0.0},
    "MountainCarContinuousNoVel": {
        "normalize": True,
        "n_envs": 8,
        "n_timesteps": 300_000,
        "batch_size": 256,
        "n_steps": 1024,
        "gamma": 0.9999,
        "learning_rate": 7.77e-05,
        "ent_coef": 0.00429,
        "clip_range": 0.1,
        "n_epochs": 10,
        "gae_lambda": 0.9,
        "max_grad_norm": 5.0,
        "vf_coef": 0.19,
        "use_sde": True,
        "sde_sample_freq": 8,
        "log_std_init": 0.0,
        "ortho_init": False,
        "lstm_hidden_size": 32,
        "enable_critic_lstm": True,
        "net_arch": (64,),  # the zoo leaves activation_fn at sb3-contrib's tanh here
    },
    "LunarLanderNoVel": _LUNAR_LANDER,
    "LunarLanderContinuousNoVel": _LUNAR_LANDER,  # the zoo's `<<: *lunar-defaults`
    "Acrobot": {"normalize": True, "n_envs": 16, "n_timesteps": 1_000_000, "n_steps": 256, "gae_lambda": 0.94,
                "gamma": 0.99, "n_epochs": 4, "ent_coef": 0.0},
}
#: RecurrentPPO's keyword arguments set here (the rest stay sb3-contrib's).
_RECURRENT_PPO_KWARGS: tuple[str, ...] = (
    "learning_rate", "n_steps", "batch_size", "n_epochs", "gamma", "gae_lambda", "clip_range", "ent_coef", "vf_coef",
    "max_grad_norm", "use_sde", "sde_sample_freq")
#: ``MlpLstmPolicy`` keyword arguments set here besides ``net_arch`` and ``activation_fn``.
_LSTM_POLICY_KWARGS: tuple[str, ...] = ("lstm_hidden_size", "enable_critic_lstm", "ortho_init", "log_std_init")
_RECURRENT_PPO_OVERRIDES: tuple[str, ...] = (
    "learning_rate", "n_steps", "batch_size", "n_epochs", "gamma", "gae_lambda", "clip_range", "ent_coef", "n_envs")


def require_sb3_contrib() -> Any:
    """The ``sb3_contrib`` module.

    Raises:
        MissingDependencyError: When sb3-contrib is not installed (the message names the pip command).
    """
    try:
        import sb3_contrib
    except ImportError:
        raise MissingDependencyError(f"--algo recurrent-ppo needs sb3-contrib: {SB3_CONTRIB_INSTALL}") from None
    return sb3_contrib


def resolve_recurrent_hyperparameters(config: BaselineConfig) -> dict[str, Any]:
    """The hyperparameters a RecurrentPPO run uses: sb3-contrib's defaults, the zoo's for the task, then the overrides.

    The result has every keyword of ``_RECURRENT_PPO_KWARGS`` and ``_LSTM_POLICY_KWARGS`` plus
    ``steps``, ``net_arch``, ``activation``, ``source``, ``n_envs``, ``normalize`` and ``normalize_kwargs``.

    Raises:
        ValueError: If ``config.algo`` is not ``recurrent-ppo``.
    """
    if config.algo not in RECURRENT_ALGOS:
        raise ValueError(f"algo {config.algo!r} is not one of {RECURRENT_ALGOS}")
    return merge_hyperparameters(config, RECURRENT_PPO_SB3_DEFAULTS, RECURRENT_PPO_ZOO_HYPERPARAMS, {},
                                 _RECURRENT_PPO_OVERRIDES)


def lstm_policy_kwargs(params: dict[str, Any]) -> dict[str, Any]:
    """``MlpLstmPolicy``'s ``policy_kwargs`` for ``params``: net_arch and activation, the LSTM's size and init."""
    return {"net_arch": list(params["net_arch"]), "activation_fn": ACTIVATION_MODULES[params["activation"]],
            **{name: params[name] for name in _LSTM_POLICY_KWARGS}}


def build_recurrent_model(config: BaselineConfig, env: Any | None = None) -> tuple[Any, dict[str, Any]]:
    """An untrained sb3-contrib RecurrentPPO model for ``config`` and the hyperparameters it was built with.

    Args:
        config: The run's configuration (``algo`` ``recurrent-ppo``).
        env: The training env; when ``None``, SB3's ``make_vec_env`` of ``n_envs`` ``Monitor``-wrapped copies.
            Either is wrapped in ``VecNormalize`` when the run normalizes (``sb3_common.wrap_normalize``).

    Raises:
        BaselineConfigError: On an invalid option or an action space the algorithm cannot act on.
        MissingDependencyError: When Stable-Baselines3 or sb3-contrib is not installed.
    """
    config.validate()
    require_sb3()
    require_sb3_contrib()
    from sb3_contrib import RecurrentPPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.logger import Logger

    params = resolve_recurrent_hyperparameters(config)
    if env is None:
        env = make_vec_env(make_task_factory(config.task), n_envs=int(params["n_envs"]), seed=config.seed)
    env = wrap_normalize(env, params)
    kwargs = {name: params[name] for name in _RECURRENT_PPO_KWARGS}
    kwargs["learning_rate"] = schedule(kwargs["learning_rate"])
    kwargs["clip_range"] = schedule(kwargs["clip_range"])
    model = RecurrentPPO("MlpLstmPolicy", env, policy_kwargs=lstm_policy_kwargs(params), seed=config.seed,
                         device=config.device, verbose=0, **kwargs, **config.extra)
    model.set_logger(Logger(folder=None, output_formats=[]))
    return model, params
