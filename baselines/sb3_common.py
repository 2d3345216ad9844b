"""What every Stable-Baselines3 baseline shares: its config, evaluation, logging and run files.

``neuron-env baseline --algo ddpg|td3|dqn|ppo|recurrent-ppo`` builds an SB3 model per algorithm
(``baselines.sb3_ddpg`` for DDPG/TD3, ``baselines.sb3_discrete`` for DQN/PPO,
``baselines.sb3_recurrent`` for sb3-contrib's RecurrentPPO) and hands it to ``train_model`` here,
so every algorithm is trained, evaluated and logged the same way:

* ``BaselineConfig``: one run (one field per command-line flag), ``validate`` refusing a bad
  option, an override the algorithm has no use for, or a task whose action space the algorithm
  cannot act on (``baselines.action_spaces``), all before any folder is made.
* ``normalize`` / ``wrap_normalize``: the rl-zoo's ``VecNormalize`` (running means of observations
  and discounted returns, ``gamma`` the algorithm's, as ``rl_zoo3/exp_manager.py`` sets it) around
  the training copies of ``ppo`` and ``recurrent-ppo``, where the zoo's entry for the task has
  ``normalize`` (``recurrent-ppo``: all of its tasks here) or ``--normalize`` asks for it.
* ``evaluate`` / ``evaluation_seed``: ``eval_episodes`` deterministic episodes on a separate copy
  of the task, episode ``i`` reset with ``neuron_env.agents.train.evaluation_seed(seed) + i``, the
  local trainer's start states. A recurrent policy's state is carried from step to step of an
  episode and reset at its start. A normalized run's policy sees the observations normalized with
  the training statistics of that moment, frozen for the whole evaluation
  (``frozen_observation_normalizer``: the zoo's evaluation env, ``training=False``), and the
  returns are the task's raw rewards (the zoo's ``norm_reward=False``).
* ``make_eval_callback``: evaluates every ``eval_every`` task steps (at the first step at or past
  each multiple when ``n_envs`` copies advance the step by ``n_envs``), writes ``metrics.csv`` rows
  and TensorBoard scalars (CleanRL's names, ``LOSS_SCALARS`` per algorithm), and stops a run at
  its step budget rather than at the end of a PPO rollout or DQN ``train_freq`` phase past it.
* ``train_model``: trains, then writes ``metrics.csv``, ``summary.json``, ``config.json``, ``tb/``
  and ``model.zip`` (``baselines.outputs``), and ``vecnormalize.pkl`` beside it when the run
  normalizes (SB3's ``VecNormalize.save``; load it with ``VecNormalize.load(path, venv)``, then set
  ``training = False`` and ``norm_reward = False`` to act as the evaluations do). On Ctrl-C it
  writes ``summary.json`` with status ``interrupted`` (no ``model.zip``) and raises
  ``neuron_env.run_folders.RunInterrupted``: SB3 runs keep no checkpoint, so an interrupted
  baseline starts over (``compare`` restarts it from step 0).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from neuron_env.baselines.action_spaces import ALGO_ACTION_SPACES, check_algo_fits
from neuron_env.baselines.errors import BaselineConfigError, MissingDependencyError, check_task_id
from neuron_env.baselines.outputs import MetricsWriter, atomic_write_json
from torch import nn

from neuron_env.run_folders import RunInterrupted
from neuron_env.topology import Topology
from neuron_env.vector import make_task_factory

#: Every ``--algo``: DDPG and TD3 (Box actions), DQN (Discrete), PPO and RecurrentPPO (Box, Discrete, MultiDiscrete,
#: MultiBinary).
ALGOS: tuple[str, ...] = tuple(ALGO_ACTION_SPACES)
NOISE_TYPES: tuple[str, ...] = ("normal", "ornstein-uhlenbeck", "none")
ACTIVATION_MODULES: dict[str, type[nn.Module]] = {
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "identity": nn.Identity,
}
_OFF_POLICY: tuple[str, ...] = ("ddpg", "td3", "dqn")
_PPO_FAMILY: tuple[str, ...] = ("ppo", "recurrent-ppo")
#: The algorithms ``normalize`` (``VecNormalize``) applies to; the zoo normalizes none of the ddpg/td3/dqn tasks here.
NORMALIZE_ALGOS: tuple[str, ...] = _PPO_FAMILY
#: The file a normalized run's ``VecNormalize`` statistics are saved to, beside ``model.zip`` (the zoo's name).
VECNORMALIZE_FILE = "vecnormalize.pkl"
#: Keyword arguments every off-policy SB3 algorithm here takes (DDPG, TD3 and DQN alike).
OFF_POLICY_KWARGS: tuple[str, ...] = ("learning_rate", "buffer_size", "learning_starts", "batch_size", "tau", "gamma",
                                      "train_freq", "gradient_steps")
#: The algorithms each algorithm-specific override applies to (the other overrides apply to all).
OVERRIDE_ALGOS: dict[str, tuple[str, ...]] = {
    "noise_type": ("ddpg", "td3"),
    "noise_std": ("ddpg", "td3"),
    "learning_starts": _OFF_POLICY,
    "buffer_size": _OFF_POLICY,
    "tau": _OFF_POLICY,
    "train_freq": _OFF_POLICY,
    "gradient_steps": _OFF_POLICY,
    "target_update_interval": ("dqn",),
    "exploration_fraction": ("dqn",),
    "exploration_final_eps": ("dqn",),
    "n_envs": _PPO_FAMILY,
    "n_steps": _PPO_FAMILY,
    "n_epochs": _PPO_FAMILY,
    "gae_lambda": _PPO_FAMILY,
    "clip_range": _PPO_FAMILY,
    "ent_coef": _PPO_FAMILY,
}
_PPO_LOSS_SCALARS: tuple[tuple[str, str], ...] = (
    ("train/value_loss", "losses/value_loss"), ("train/policy_gradient_loss", "losses/policy_loss"),
    ("train/entropy_loss", "losses/entropy"), ("train/approx_kl", "losses/approx_kl"),
    ("train/clip_fraction", "losses/clipfrac"), ("train/explained_variance", "losses/explained_variance"))
#: SB3 logger keys -> TensorBoard scalar names (CleanRL's), per algorithm.
LOSS_SCALARS: dict[str, tuple[tuple[str, str], ...]] = {
    "ddpg": (("train/actor_loss", "losses/actor_loss"), ("train/critic_loss", "losses/qf_loss")),
    "td3": (("train/actor_loss", "losses/actor_loss"), ("train/critic_loss", "losses/qf_loss")),
    "dqn": (("train/loss", "losses/td_loss"), ("rollout/exploration_rate", "charts/epsilon")),
    "ppo": _PPO_LOSS_SCALARS,
    "recurrent-ppo": _PPO_LOSS_SCALARS,  # RecurrentPPO logs PPO's keys
}
#: Task steps between ``charts/SPS`` scalars (the trainer's ``log_every``).
LOG_EVERY = 1000


@dataclass
class BaselineConfig:
    """Configuration of one SB3 baseline run (every field has a command-line flag of the same name).

    An override left at ``None`` takes the rl-zoo's value for the task (or SB3's default); an
    override the algorithm has no use for (``OVERRIDE_ALGOS``, e.g. ``noise_std`` with ``dqn``) is
    refused by ``validate``.
    """

    algo: str = "ddpg"
    """``ddpg`` or ``td3`` (Box actions), ``dqn`` (Discrete actions), ``ppo`` or ``recurrent-ppo`` (Box, Discrete,
    MultiDiscrete, MultiBinary); TD3 = DDPG with twin critics, delayed actor and target smoothing; recurrent-ppo =
    sb3-contrib's RecurrentPPO (an LSTM before the policy and value networks, ``pip install 'sb3-contrib>=2.0'``)."""
    task: str = "Pendulum-v1"
    """Gymnasium id of the task (its action space must suit ``algo``)."""
    hidden: tuple[int, ...] | None = (64, 64)
    """Hidden sizes of every network of the algorithm (actor and critic, Q-network, or policy and value
    networks), as in the local run; ``None``: the zoo's net_arch (SB3's default when the zoo has none).
    ``recurrent-ppo``: the layers after the LSTM; the LSTM's size is always the zoo's (sb3-contrib's 256 elsewhere)."""
    activation: str = "tanh"
    """Hidden activation: ``tanh``, ``relu``, ``sigmoid`` or ``identity`` (ignored when ``hidden`` is None)."""
    steps: int | None = None
    """Task steps to train for (over all ``n_envs`` copies); ``None``: the zoo's ``n_timesteps`` for the task."""
    seed: int = 0
    """Seed of SB3 (networks, noise, replay sampling) and of the training env(s)."""
    out: str = "runs/baseline"
    """Run directory: metrics.csv, summary.json, config.json, tb/, model.zip (and vecnormalize.pkl when normalized)."""
    eval_every: int = 1000
    """Evaluate every this many task steps (and at the end)."""
    eval_episodes: int = 5
    """Deterministic episodes per evaluation."""
    noise_type: str | None = None
    """DDPG/TD3: override the exploration noise: ``normal``, ``ornstein-uhlenbeck`` or ``none``."""
    noise_std: float | None = None
    """DDPG/TD3: override the noise's standard deviation (in the scaled action space ``[-1, 1]``)."""
    learning_starts: int | None = None
    """DDPG/TD3/DQN: override the number of random-action steps before learning starts."""
    learning_rate: float | None = None
    """Override the learning rate (of every network; a constant, replacing a zoo schedule)."""
    gamma: float | None = None
    """Override the discount factor."""
    batch_size: int | None = None
    """Override the minibatch size."""
    buffer_size: int | None = None
    """DDPG/TD3/DQN: override the replay buffer capacity (always capped at ``steps``)."""
    tau: float | None = None
    """DDPG/TD3/DQN: override the soft target update rate (DQN: 1 = hard copies)."""
    train_freq: int | None = None
    """DDPG/TD3/DQN: override the env steps between training phases."""
    gradient_steps: int | None = None
    """DDPG/TD3/DQN: override the gradient steps per training phase (-1: as many as env steps)."""
    target_update_interval: int | None = None
    """DQN: override the env steps between target-network updates."""
    exploration_fraction: float | None = None
    """DQN: override the fraction of the run over which epsilon falls to its final value."""
    exploration_final_eps: float | None = None
    """DQN: override the final epsilon of epsilon-greedy exploration."""
    n_envs: int | None = None
    """PPO and recurrent-ppo: override the number of task copies stepped together (the zoo's, else 1)."""
    n_steps: int | None = None
    """PPO and recurrent-ppo: override the steps per copy in each rollout (a rollout: ``n_steps * n_envs`` steps)."""
    n_epochs: int | None = None
    """PPO and recurrent-ppo: override the passes over each rollout."""
    gae_lambda: float | None = None
    """PPO and recurrent-ppo: override the GAE lambda."""
    clip_range: float | None = None
    """PPO and recurrent-ppo: override the clipping range (a constant, replacing a zoo schedule)."""
    ent_coef: float | None = None
    """PPO and recurrent-ppo: override the entropy coefficient."""
    normalize: bool | None = None
    """PPO and recurrent-ppo: wrap the training copies in SB3's ``VecNormalize`` (observations and rewards, the
    zoo's kwargs, ``gamma`` the algorithm's); ``None``: the zoo's ``normalize`` for the task and algo (recurrent-ppo:
    on for every task of its zoo table; ppo: off, see ``baselines.sb3_discrete``). ddpg/td3/dqn refuse ``True``."""
    device: str = "cpu"
    """Torch device of SB3's networks (``cpu`` is usually fastest for these small MLPs)."""
    threads: int | None = 1
    """``torch.set_num_threads`` for the run; ``None`` leaves torch's default."""
    tensorboard: bool = True
    """Write TensorBoard event files into ``out/tb``."""
    save_model: bool = True
    """Save the trained model to ``out/model.zip``."""
    progress: bool = True
    """Show a progress bar (steps/s, last evaluation, last training episode return)."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Further keyword arguments for the SB3 constructor (e.g. ``policy_delay`` for TD3)."""

    def validate(self) -> None:
        """Check the options that would otherwise fail deep inside SB3 (the task is made once to read its spaces).

        Raises:
            BaselineConfigError: Naming the bad option and the fix.
        """
        if self.algo not in ALGOS:
            raise BaselineConfigError(f"algo {self.algo!r} is unknown; choose one of {ALGOS}")
        check_task_id(self.task)
        if self.activation not in ACTIVATION_MODULES:
            raise BaselineConfigError(
                f"activation {self.activation!r} is unknown; choose one of {tuple(ACTIVATION_MODULES)}"
            )
        if self.hidden is not None and (len(self.hidden) == 0 or any(int(h) < 1 for h in self.hidden)):
            raise BaselineConfigError(f"hidden {self.hidden!r} must be one or more sizes >= 1 (or None for the zoo's)")
        if self.steps is not None and self.steps < 1:
            raise BaselineConfigError(f"steps {self.steps!r} must be >= 1")
        if self.eval_every < 1 or self.eval_episodes < 1:
            raise BaselineConfigError(
                f"eval_every={self.eval_every} and eval_episodes={self.eval_episodes} must both be >= 1"
            )
        if self.noise_type is not None and self.noise_type not in NOISE_TYPES:
            raise BaselineConfigError(f"noise_type {self.noise_type!r} is unknown; choose one of {NOISE_TYPES}")
        if self.noise_std is not None and self.noise_std < 0:
            raise BaselineConfigError(f"noise_std {self.noise_std!r} must be >= 0")
        if self.learning_starts is not None and self.learning_starts < 0:
            raise BaselineConfigError(f"learning_starts {self.learning_starts!r} must be >= 0")
        for name, algos in OVERRIDE_ALGOS.items():
            if getattr(self, name) is not None and self.algo not in algos:
                raise BaselineConfigError(f"{name} does not apply to algo {self.algo!r}; it is an option of "
                                          f"{'/'.join(algos)} only (--{name.replace('_', '-')})")
        for name in ("n_envs", "n_steps", "n_epochs", "target_update_interval"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise BaselineConfigError(f"{name} {value!r} must be >= 1")
        for name in ("exploration_fraction", "exploration_final_eps", "gae_lambda"):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= 1:
                raise BaselineConfigError(f"{name} {value!r} must be in [0, 1]")
        if self.clip_range is not None and self.clip_range <= 0:
            raise BaselineConfigError(f"clip_range {self.clip_range!r} must be > 0")
        if self.ent_coef is not None and self.ent_coef < 0:
            raise BaselineConfigError(f"ent_coef {self.ent_coef!r} must be >= 0")
        if self.normalize and self.algo not in NORMALIZE_ALGOS:
            raise BaselineConfigError(f"normalize (--normalize) does not apply to algo {self.algo!r}: VecNormalize is "
                                      f"an option of {'/'.join(NORMALIZE_ALGOS)} only")
        check_algo_fits(self.algo, self.task)


def task_key(task: str) -> str:
    """The zoo-table key of a Gymnasium id: its name without the ``-vN`` suffix."""
    name = task.split("/")[-1]
    head, sep, version = name.rpartition("-v")
    return head if sep and version.isdigit() else name


def merge_hyperparameters(config: BaselineConfig, sb3_defaults: dict[str, Any], zoo: dict[str, dict[str, Any]],
                          fallback: dict[str, Any], overridable: Sequence[str]) -> dict[str, Any]:
    """One algorithm's hyperparameters for a run: SB3's defaults, the zoo's for the task, then the overrides.

    Args:
        config: The run (its task, network and overrides).
        sb3_defaults: SB3's defaults for the algorithm, plus ``n_timesteps``, ``net_arch`` and ``activation``.
        zoo: The rl-zoo's values keyed by ``task_key``.
        fallback: Values for a task the zoo lacks (``source: "fallback"``; empty: ``"sb3-defaults"``).
        overridable: The ``BaselineConfig`` fields that override a value of the same name when set.

    Returns:
        The merged values with ``steps`` (not ``n_timesteps``), ``net_arch`` (a list), ``activation``,
        ``source`` (``"rl-zoo"``, ``"fallback"`` or ``"sb3-defaults"``), ``buffer_size``, when
        there is one, capped at ``steps``, ``normalize`` (a bool: ``config.normalize``, else the
        zoo's entry) and ``normalize_kwargs`` (``vecnormalize_kwargs``; ``None`` when not normalized).
    """
    key = task_key(config.task)
    if key in zoo:
        params, source = {**sb3_defaults, **zoo[key]}, "rl-zoo"
    else:
        params, source = {**sb3_defaults, **fallback}, "fallback" if fallback else "sb3-defaults"
    for name in overridable:
        value = getattr(config, name)
        if value is not None:
            params[name] = value
    zoo_normalize = params.pop("normalize", False)
    params["normalize"] = bool(zoo_normalize) if config.normalize is None else bool(config.normalize)
    params["normalize_kwargs"] = (vecnormalize_kwargs(zoo_normalize, float(params["gamma"]))
                                  if params["normalize"] else None)
    params["steps"] = int(config.steps if config.steps is not None else params.pop("n_timesteps"))
    params.pop("n_timesteps", None)
    if "buffer_size" in params:
        params["buffer_size"] = int(min(params["buffer_size"], params["steps"]))
    if config.hidden is None:
        params["net_arch"] = list(params["net_arch"])
    else:
        params["net_arch"] = [int(h) for h in config.hidden]
        params["activation"] = config.activation
    params["source"] = source
    return params


def vecnormalize_kwargs(zoo_normalize: bool | dict[str, Any], gamma: float) -> dict[str, Any]:
    """SB3 ``VecNormalize`` kwargs of a zoo ``normalize`` entry, as ``rl_zoo3/exp_manager.py`` builds them.

    The zoo's ``normalize: true`` means ``VecNormalize``'s defaults (observations and rewards);
    a dict (the zoo's ``"{'norm_obs': False, 'norm_reward': True}"``) gives the kwargs; either
    way ``gamma`` is the algorithm's discount (``_preprocess_normalization``). ``norm_obs`` and
    ``norm_reward`` are spelled out so that ``summary.json`` says what ran.
    """
    given = dict(zoo_normalize) if isinstance(zoo_normalize, dict) else {}
    return {"norm_obs": True, "norm_reward": True, **given, "gamma": gamma}


def wrap_normalize(env: Any, params: dict[str, Any]) -> Any:
    """``env`` in SB3's ``VecNormalize`` with ``params["normalize_kwargs"]`` when ``params["normalize"]``, else as is.

    A non-vectorized env is put in a ``DummyVecEnv`` first; an env that already normalizes is kept.
    """
    if not params.get("normalize"):
        return env
    from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecNormalize, unwrap_vec_normalize

    if not isinstance(env, VecEnv):
        single = env
        env = DummyVecEnv([lambda: single])
    if unwrap_vec_normalize(env) is not None:
        return env
    return VecNormalize(env, **params["normalize_kwargs"])


def frozen_observation_normalizer(vec_normalize: Any | None) -> Callable[[np.ndarray], np.ndarray] | None:
    """``VecNormalize``'s observation normalization with its statistics as they are now, frozen; ``None`` if none.

    The statistics are copied, so the evaluation an instance serves neither updates them nor sees
    training move them: what the zoo's evaluation env does (``training=False``, synchronized from
    the training env before each evaluation). ``None`` as well when ``vec_normalize`` does not
    normalize observations (``norm_obs=False``).
    """
    if vec_normalize is None or not vec_normalize.norm_obs:
        return None
    mean = np.array(vec_normalize.obs_rms.mean, dtype=np.float64, copy=True)
    scale = np.sqrt(np.array(vec_normalize.obs_rms.var, dtype=np.float64, copy=True) + vec_normalize.epsilon)
    clip = float(vec_normalize.clip_obs)

    def normalize_observation(observation: np.ndarray) -> np.ndarray:
        return np.clip((observation - mean) / scale, -clip, clip).astype(np.float32)

    return normalize_observation


def policy_kwargs(params: dict[str, Any]) -> dict[str, Any]:
    """SB3's ``policy_kwargs`` for ``params``' ``net_arch`` and ``activation`` (every network the same)."""
    return {"net_arch": list(params["net_arch"]), "activation_fn": ACTIVATION_MODULES[params["activation"]]}


def require_sb3() -> Any:
    """The ``stable_baselines3`` module.

    Raises:
        MissingDependencyError: When Stable-Baselines3 is not installed.
    """
    try:
        import stable_baselines3
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise MissingDependencyError(
            "the baseline needs Stable-Baselines3: pip install 'neuron-env[baselines]'"
        ) from error
    return stable_baselines3


def evaluation_seed(seed: int) -> int:
    """The reset seed of the first evaluation episode: the local trainer's, so both see the same starts."""
    from neuron_env.agents.train import evaluation_seed as trainer_evaluation_seed

    return int(trainer_evaluation_seed(seed))


def evaluate(model: Any, env: Any, episodes: int, seed: int,
             normalize_observation: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray:
    """Returns of ``episodes`` deterministic episodes of ``model`` on ``env`` (episode ``i`` seeded ``seed + i``).

    The state ``predict`` returns is passed back on the episode's next step, with ``episode_start``
    true on its first: a recurrent policy (RecurrentPPO's LSTM) remembers within an episode and
    forgets between episodes. A feed-forward SB3 policy returns ``None`` as its state, so this is
    the plain loop for it. ``normalize_observation`` (``frozen_observation_normalizer``) maps
    every observation before the policy sees it; the returns are ``env``'s raw rewards either way.
    """
    returns = np.zeros(episodes)
    seen = normalize_observation or (lambda raw: raw)
    for episode in range(episodes):
        observation, _ = env.reset(seed=seed + episode)
        state: Any = None
        episode_start = np.ones(1, dtype=bool)
        done = False
        while not done:
            action, state = model.predict(seen(observation), state=state, episode_start=episode_start,
                                          deterministic=True)
            episode_start = np.zeros(1, dtype=bool)
            observation, reward, terminated, truncated, _ = env.step(action)
            returns[episode] += float(reward)
            done = terminated or truncated
    return returns


def gradient_updates(model: Any) -> int:
    """Gradient steps so far: SB3's ``_n_updates``, times the minibatches per epoch for PPO (which counts epochs)."""
    from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm

    updates = int(model._n_updates)
    if isinstance(model, OnPolicyAlgorithm):
        rollout = int(model.n_steps) * int(model.n_envs)
        updates *= math.ceil(rollout / int(model.batch_size))
    return updates


def stored_transitions(model: Any) -> int:
    """Transitions the model learns from at once: its replay buffer's content, or a rollout's size (PPO)."""
    buffer = getattr(model, "replay_buffer", None)
    if buffer is None:
        return min(int(model.num_timesteps), int(model.n_steps) * int(model.n_envs))
    return int(buffer.buffer_size if buffer.full else buffer.pos) * int(buffer.n_envs)


def policy_network(model: Any) -> nn.Module:
    """The network from observation to action: DDPG/TD3's actor, DQN's Q-network, PPO's policy net and action head.

    For RecurrentPPO: its policy net and action head after the LSTM (the LSTM is not a layer of a ``Topology``).
    """
    from stable_baselines3 import DQN, TD3

    if isinstance(model, TD3):  # DDPG is TD3 with options
        return model.actor.mu
    if isinstance(model, DQN):
        return model.q_net.q_net
    return nn.Sequential(model.policy.mlp_extractor.policy_net, model.policy.action_net)


def make_eval_callback(writer: MetricsWriter, eval_env: Any, config: BaselineConfig, total: int,
                       on_eval: Callable[[int, float], None] | None = None) -> Any:
    """The SB3 callback that evaluates on the schedule, writes rows and scalars and drives the progress bar.

    Args:
        writer: Where rows and scalars go.
        eval_env: A separate copy of the task for the deterministic evaluations.
        config: The run (``eval_every``, ``eval_episodes``, ``seed``, ``algo``, ``progress``).
        total: The step budget: the final evaluation runs at the end of training, and a run stops
            there instead of finishing a rollout or ``train_freq`` phase past it.
        on_eval: Called with ``(task step, evaluation return mean)`` after every evaluation.
    """
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.type_aliases import TrainFrequencyUnit
    from tqdm import tqdm

    class EvalCallback(BaseCallback):
        """Evaluates on a schedule, writes metrics rows and TensorBoard scalars, drives the progress bar."""

        def __init__(self) -> None:
            super().__init__()
            self.start = time.perf_counter()
            self.window = (self.start, 0)
            self.final: np.ndarray = np.zeros(0)
            self.pending: list[float] = []
            self.episodes = 0
            self.bar: Any = None
            self.eval_seed = evaluation_seed(config.seed)
            self.next_eval = config.eval_every
            self.next_log = LOG_EVERY

        def _evaluate(self) -> None:
            step = int(self.num_timesteps)
            normalizer = frozen_observation_normalizer(self.model.get_vec_normalize_env())
            returns = evaluate(self.model, eval_env, config.eval_episodes, self.eval_seed, normalizer)
            elapsed = time.perf_counter() - self.start
            episodic = float(np.mean(self.pending)) if self.pending else None
            self.pending = []
            writer.row(step, elapsed, float(returns.mean()), float(returns.std()), episodic,
                       updates=gradient_updates(self.model))
            values = self.model.logger.name_to_value
            for source, name in LOSS_SCALARS[config.algo]:
                if source in values:
                    writer.scalar(name, float(values[source]), step)
            self.final = returns
            if on_eval is not None:
                on_eval(step, float(returns.mean()))
            if self.bar is not None:
                self.bar.set_postfix(eval=f"{returns.mean():.1f}", refresh=False)

        def _on_training_start(self) -> None:
            self.start = time.perf_counter()
            self.window = (self.start, 0)
            self.bar = tqdm(total=total, disable=not config.progress, unit="step", mininterval=1.0,
                            desc=f"sb3-{config.algo} {config.task}", dynamic_ncols=True)

        def _on_step(self) -> bool:
            step = int(self.num_timesteps)
            for info in self.locals.get("infos", ()):
                episode = info.get("episode")
                if episode is not None:
                    self.pending.append(float(episode["r"]))
                    self.episodes += 1
                    writer.episode(step, float(episode["r"]), int(episode["l"]))
            if step >= self.next_log:
                now = time.perf_counter()
                writer.scalar("charts/SPS", (step - self.window[1]) / max(now - self.window[0], 1e-9), step)
                self.window = (now, step)
                self.next_log = (step // LOG_EVERY + 1) * LOG_EVERY
            if step >= self.next_eval and step < total:
                self._evaluate()
                self.next_eval = (step // config.eval_every + 1) * config.eval_every
            if self.bar is not None:
                self.bar.update(step - self.bar.n)
            return step < total or self._phase_ends()

        def _phase_ends(self) -> bool:
            """Whether SB3 trains right after this step (its own loop then stops at the budget).

            Otherwise a run past its budget stops here, instead of collecting the rest of a rollout
            (PPO) or of a ``train_freq`` phase (DQN's 256 steps on CartPole) past the budget.
            """
            if "n_rollout_steps" in self.locals:  # on-policy: this step completes the rollout
                return int(self.locals["n_steps"]) + 1 >= int(self.locals["n_rollout_steps"])
            train_freq = self.locals.get("train_freq")
            if train_freq is None:
                return True
            if train_freq.unit == TrainFrequencyUnit.STEP:
                return int(self.locals["num_collected_steps"]) >= int(train_freq.frequency)
            episodes = int(self.locals["num_collected_episodes"]) + int(np.sum(self.locals["dones"]))
            return episodes >= int(train_freq.frequency)

        def _on_training_end(self) -> None:
            self._evaluate()
            if self.bar is not None:
                self.bar.close()

    return EvalCallback()


def train_model(config: BaselineConfig, model: Any, params: dict[str, Any], callbacks: Sequence[Any] = (),
                on_eval: Callable[[int, float], None] | None = None) -> dict[str, Any]:
    """Train a built SB3 model for ``params["steps"]`` task steps and write every output file into ``config.out``.

    Args:
        config: The run's configuration (``config.json`` is written from it).
        model: The untrained SB3 model (``build_model`` of the algorithm's module).
        params: The hyperparameters it was built with (stored in ``summary.json``).
        callbacks: Further SB3 callbacks run after the evaluation callback.
        on_eval: Called with ``(task step, evaluation return mean)`` after every evaluation.

    Returns:
        The dict written to ``summary.json``.

    Raises:
        RunInterrupted: On Ctrl-C, after writing ``summary.json`` with status ``interrupted`` (the
            metrics rows so far are kept; no ``model.zip``: SB3 runs keep no checkpoint to resume from).
    """
    from stable_baselines3.common.callbacks import CallbackList

    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "config.json", asdict(config))
    steps = params["steps"]
    if "learning_starts" in params and params["learning_starts"] >= steps:
        print(f"warning: learning_starts={params['learning_starts']} >= steps={steps}: "
              "the networks never train (pass --learning-starts)")
    eval_env = make_task_factory(config.task)()
    start = time.perf_counter()
    interrupted = False
    with MetricsWriter(out, tensorboard=config.tensorboard) as writer:
        callback = make_eval_callback(writer, eval_env, config, steps, on_eval)
        try:
            model.learn(total_timesteps=steps, callback=CallbackList([callback, *callbacks]), log_interval=None)
        except KeyboardInterrupt:  # Ctrl-C: record what was done, then stop as asked (RunInterrupted below)
            interrupted = True
            if callback.bar is not None:
                callback.bar.close()
        wall = time.perf_counter() - start
        sps = model.num_timesteps / max(wall, 1e-9)
    eval_env.close()
    returns = None if interrupted else callback.final
    summary: dict[str, Any] = {
        "status": "interrupted" if interrupted else "completed",
        "final_eval_return_mean": None if returns is None else float(returns.mean()),
        "final_eval_return_std": None if returns is None else float(returns.std()),
        "final_eval_returns": None if returns is None else [float(r) for r in returns],
        "steps": int(model.num_timesteps),
        "checkpoint_step": None,  # SB3 runs keep no checkpoint (model.zip is the finished model)
        "transitions": stored_transitions(model),
        "updates": gradient_updates(model),
        "episodes": int(callback.episodes),
        "wall_time_s": float(wall),
        "steps_per_s": float(sps),
        "device": str(model.device),
        "num_agents": int(Topology.from_module(policy_network(model))[0].num_agents),
        "granularity": None,
        "learner": None,  # a local run names its learner and its resolved options here
        "learner_config": None,
        "config": asdict(config),
        "method": f"sb3-{config.algo}",
        "task": config.task,
        "seed": config.seed,
        "hyperparameters": copy.deepcopy(params),
    }
    if config.save_model and not interrupted:
        model.save(out / "model.zip")
        vec_normalize = model.get_vec_normalize_env()
        if vec_normalize is not None:
            vec_normalize.save(out / VECNORMALIZE_FILE)
        else:  # an earlier run's (--overwrite keeps the file): it does not belong to this model
            (out / VECNORMALIZE_FILE).unlink(missing_ok=True)
    atomic_write_json(out / "summary.json", summary)
    if interrupted:
        raise RunInterrupted(f"interrupted at task step {summary['steps']} of {steps}; kept its metrics.csv, "
                             f"episodes.csv, config.json and summary.json (status interrupted) in {str(out)!r}; "
                             "SB3 runs keep no checkpoint to resume from")
    return summary


def prepare_run(config: BaselineConfig) -> None:
    """Validate, check SB3 is there and set torch's threads: what every ``train_sb3`` does first."""
    config.validate()
    require_sb3()
    if config.threads is not None:
        torch.set_num_threads(config.threads)
