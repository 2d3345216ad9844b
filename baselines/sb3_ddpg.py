"""Stable-Baselines3 DDPG / TD3 on the same task and network as a local run.

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

Evaluation
----------
Every ``eval_every`` task steps and at the end, the policy runs ``eval_episodes`` deterministic
episodes (no noise) on a separate copy of the task; episode ``i`` is reset with the trainer's
seed ``neuron_env.agents.train.evaluation_seed(seed) + i``, so a baseline run and a local run
with the same ``--seed`` are evaluated from the same start states.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from neuron_env.baselines.errors import BaselineConfigError, MissingDependencyError, check_task_id
from neuron_env.baselines.outputs import MetricsWriter, atomic_write_json
from torch import nn

from neuron_env.topology import Topology
from neuron_env.vector import make_task_factory

ALGOS: tuple[str, ...] = ("ddpg", "td3")
NOISE_TYPES: tuple[str, ...] = ("normal", "ornstein-uhlenbeck", "none")
ACTIVATION_MODULES: dict[str, type[nn.Module]] = {
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "identity": nn.Identity,
}
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
_SB3_KWARGS: tuple[str, ...] = (
    "learning_rate",
    "buffer_size",
    "learning_starts",
    "batch_size",
    "tau",
    "gamma",
    "train_freq",
    "gradient_steps",
)


@dataclass
class BaselineConfig:
    """Configuration of one SB3 baseline run (every field has a command-line flag of the same name)."""

    algo: str = "ddpg"
    """``"ddpg"`` or ``"td3"`` (TD3 = DDPG with twin critics, delayed actor and target smoothing)."""
    task: str = "Pendulum-v1"
    """Gymnasium id of the task (a Box action space)."""
    hidden: tuple[int, ...] | None = (64, 64)
    """Hidden sizes of actor and critic, as in the local run; ``None``: the zoo's net_arch with ReLU."""
    activation: str = "tanh"
    """Hidden activation: ``tanh``, ``relu``, ``sigmoid`` or ``identity`` (ignored when ``hidden`` is None)."""
    steps: int | None = None
    """Task steps to train for; ``None``: the zoo's ``n_timesteps`` for the task."""
    seed: int = 0
    """Seed of SB3 (networks, noise, replay sampling) and of the training env."""
    out: str = "runs/baseline"
    """Run directory: metrics.csv, summary.json, config.json, tb/, model.zip."""
    eval_every: int = 1000
    """Evaluate every this many task steps (and at the end)."""
    eval_episodes: int = 5
    """Deterministic episodes per evaluation."""
    noise_type: str | None = None
    """Override the exploration noise: ``normal``, ``ornstein-uhlenbeck`` or ``none``."""
    noise_std: float | None = None
    """Override the noise's standard deviation (in the scaled action space ``[-1, 1]``)."""
    learning_starts: int | None = None
    """Override the number of random-action steps before learning starts."""
    learning_rate: float | None = None
    """Override the learning rate of actor and critic."""
    gamma: float | None = None
    """Override the discount factor."""
    batch_size: int | None = None
    """Override the minibatch size."""
    buffer_size: int | None = None
    """Override the replay buffer capacity (always capped at ``steps``)."""
    tau: float | None = None
    """Override the soft target update rate."""
    train_freq: int | None = None
    """Override: env steps between training phases."""
    gradient_steps: int | None = None
    """Override: gradient steps per training phase."""
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
        """Check the options that would otherwise fail deep inside SB3.

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


def task_key(task: str) -> str:
    """The zoo-table key of a Gymnasium id: its name without the ``-vN`` suffix."""
    name = task.split("/")[-1]
    head, sep, version = name.rpartition("-v")
    return head if sep and version.isdigit() else name


def zoo_hyperparameters(task: str) -> tuple[dict[str, Any], str]:
    """The zoo's hyperparameters for ``task`` merged over SB3's defaults, and where they came from.

    Returns:
        ``(hyperparameters, source)`` with ``source`` one of ``"rl-zoo"`` or ``"fallback"``.
    """
    key = task_key(task)
    if key in ZOO_HYPERPARAMS:
        return {**SB3_DEFAULTS, **ZOO_HYPERPARAMS[key]}, "rl-zoo"
    return {**SB3_DEFAULTS, **_FALLBACK}, "fallback"


def resolve_hyperparameters(config: BaselineConfig) -> dict[str, Any]:
    """The hyperparameters a run uses: the zoo's for the task, then the config's overrides.

    The result has every SB3 keyword in ``_SB3_KWARGS`` plus ``steps``, ``noise_type``,
    ``noise_std``, ``net_arch``, ``activation`` and ``source``.
    """
    params, source = zoo_hyperparameters(config.task)
    for name in (*_SB3_KWARGS, "noise_type", "noise_std"):
        value = getattr(config, name)
        if value is not None:
            params[name] = value
    params["steps"] = int(config.steps if config.steps is not None else params.pop("n_timesteps"))
    params.pop("n_timesteps", None)
    params["buffer_size"] = int(min(params["buffer_size"], params["steps"]))
    if config.hidden is None:
        params["net_arch"] = list(params["net_arch"])
        params["activation"] = "relu"
    else:
        params["net_arch"] = [int(h) for h in config.hidden]
        params["activation"] = config.activation
    params["source"] = source
    return params


def _require_sb3() -> Any:
    try:
        import stable_baselines3
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise MissingDependencyError(
            "the baseline needs Stable-Baselines3: pip install 'neuron-env[baselines]'"
        ) from error
    return stable_baselines3


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
    """An untrained SB3 DDPG/TD3 model for ``config`` and the hyperparameters it was built with.

    Args:
        config: The run's configuration.
        env: The training env (a ``Monitor``-wrapped task copy is made when ``None``).

    Raises:
        BaselineConfigError: On an invalid option or a task without a Box action space.
    """
    config.validate()
    _require_sb3()
    import gymnasium as gym
    from stable_baselines3 import DDPG, TD3
    from stable_baselines3.common.logger import Logger
    from stable_baselines3.common.monitor import Monitor

    params = resolve_hyperparameters(config)
    if env is None:
        env = Monitor(make_task_factory(config.task)())
    if not isinstance(env.action_space, gym.spaces.Box):
        raise BaselineConfigError(f"task {config.task!r} has action space {env.action_space}; DDPG needs a Box")
    act_dim = int(np.prod(env.action_space.shape))
    algo = DDPG if config.algo == "ddpg" else TD3
    model = algo(
        "MlpPolicy",
        env,
        action_noise=make_action_noise(params["noise_type"], params["noise_std"], act_dim),
        policy_kwargs={"net_arch": list(params["net_arch"]), "activation_fn": ACTIVATION_MODULES[params["activation"]]},
        seed=config.seed,
        device=config.device,
        verbose=0,
        **{name: params[name] for name in _SB3_KWARGS},
        **config.extra,
    )
    model.set_logger(Logger(folder=None, output_formats=[]))
    return model, params


def evaluation_seed(seed: int) -> int:
    """The reset seed of the first evaluation episode: the local trainer's, so both see the same starts."""
    from neuron_env.agents.train import evaluation_seed as trainer_evaluation_seed

    return int(trainer_evaluation_seed(seed))


def evaluate(model: Any, env: Any, episodes: int, seed: int) -> np.ndarray:
    """Returns of ``episodes`` deterministic episodes of ``model`` on ``env`` (episode ``i`` seeded ``seed + i``)."""
    returns = np.zeros(episodes)
    for episode in range(episodes):
        observation, _ = env.reset(seed=seed + episode)
        done = False
        while not done:
            action, _ = model.predict(observation, deterministic=True)
            observation, reward, terminated, truncated, _ = env.step(action)
            returns[episode] += float(reward)
            done = terminated or truncated
    return returns


#: Task steps between ``charts/SPS`` scalars (the trainer's ``log_every``).
LOG_EVERY = 1000


def _make_callback(writer: MetricsWriter, eval_env: Any, config: BaselineConfig, total: int,
                   on_eval: Callable[[int, float], None] | None = None) -> Any:
    from stable_baselines3.common.callbacks import BaseCallback
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

        def _evaluate(self) -> None:
            step = int(self.num_timesteps)
            returns = evaluate(self.model, eval_env, config.eval_episodes, self.eval_seed)
            elapsed = time.perf_counter() - self.start
            episodic = float(np.mean(self.pending)) if self.pending else None
            self.pending = []
            writer.row(step, elapsed, float(returns.mean()), float(returns.std()), episodic,
                       updates=int(self.model._n_updates))
            values = self.model.logger.name_to_value
            for source, name in (("train/actor_loss", "losses/actor_loss"), ("train/critic_loss", "losses/qf_loss")):
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
                    writer.scalar("charts/episodic_return", float(episode["r"]), step)
                    writer.scalar("charts/episodic_length", float(episode["l"]), step)
            if step % LOG_EVERY == 0:
                now = time.perf_counter()
                writer.scalar("charts/SPS", (step - self.window[1]) / max(now - self.window[0], 1e-9), step)
                self.window = (now, step)
            if step % config.eval_every == 0 and step < total:
                self._evaluate()
            if self.bar is not None:
                self.bar.update(step - self.bar.n)
            return True

        def _on_training_end(self) -> None:
            self._evaluate()
            if self.bar is not None:
                self.bar.close()

    return EvalCallback()


def train_sb3(config: BaselineConfig, callbacks: Sequence[Any] = (),
              on_eval: Callable[[int, float], None] | None = None) -> tuple[Any, dict[str, Any]]:
    """Train one SB3 baseline, writing every output file into ``config.out``.

    Args:
        config: The run's configuration.
        callbacks: Further SB3 callbacks run after the evaluation callback (the experiments use
            this to train probes on the same replay buffer while DDPG trains).
        on_eval: Called with ``(task step, evaluation return mean)`` after every evaluation
            (``compare`` prints its progress lines with it).

    Returns:
        ``(model, summary)``: the trained SB3 model (its replay buffer included) and the dict
        written to ``summary.json``.

    Raises:
        BaselineConfigError: On an invalid option.
        MissingDependencyError: When Stable-Baselines3 is not installed.
    """
    config.validate()
    _require_sb3()
    from stable_baselines3.common.callbacks import CallbackList

    if config.threads is not None:
        torch.set_num_threads(config.threads)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "config.json", asdict(config))
    model, params = build_model(config)
    steps = params["steps"]
    if params["learning_starts"] >= steps:
        print(f"warning: learning_starts={params['learning_starts']} >= steps={steps}: "
              "the networks never train (pass --learning-starts)")
    eval_env = make_task_factory(config.task)()
    start = time.perf_counter()
    with MetricsWriter(out, tensorboard=config.tensorboard) as writer:
        callback = _make_callback(writer, eval_env, config, steps, on_eval)
        model.learn(total_timesteps=steps, callback=CallbackList([callback, *callbacks]), log_interval=None)
        wall = time.perf_counter() - start
        sps = model.num_timesteps / max(wall, 1e-9)
    eval_env.close()
    returns = callback.final
    buffer = model.replay_buffer
    summary: dict[str, Any] = {
        "status": "completed",
        "final_eval_return_mean": float(returns.mean()),
        "final_eval_return_std": float(returns.std()),
        "final_eval_returns": [float(r) for r in returns],
        "steps": int(model.num_timesteps),
        "transitions": int(buffer.buffer_size if buffer.full else buffer.pos) * int(buffer.n_envs),
        "updates": int(model._n_updates),
        "episodes": int(callback.episodes),
        "wall_time_s": float(wall),
        "steps_per_s": float(sps),
        "device": str(model.device),
        "num_agents": int(Topology.from_module(model.actor.mu)[0].num_agents),
        "granularity": None,
        "learner": None,  # a local run names its learner and its resolved options here
        "learner_config": None,
        "config": asdict(config),
        "method": f"sb3-{config.algo}",
        "task": config.task,
        "seed": config.seed,
        "hyperparameters": copy.deepcopy(params),
    }
    if config.save_model:
        model.save(out / "model.zip")
    atomic_write_json(out / "summary.json", summary)
    return model, summary


def run_baseline(config: BaselineConfig, on_eval: Callable[[int, float], None] | None = None) -> dict[str, Any]:
    """Train one SB3 baseline (see ``train_sb3``; ``on_eval`` as there) and return its summary."""
    _, summary = train_sb3(config, on_eval=on_eval)
    return summary
