"""Training-loop throughput: ``neuron-env train``'s whole loop against SB3 DDPG's ``learn()``, same network, same run.

What it measures
----------------
For every task in ``--tasks`` (default ``Pendulum-v1`` with a 3-64-64-1 tanh network and
``HalfCheetah-v5`` with the DDPG paper's 17-400-300-6 tanh network, 723 neurons), in one run:

1. **Task steps/s of the whole training loop.** *local-<learner>*: the package's trainer
   (``neuron_env.agents.train.Trainer.run``) with ``neuron-env train``'s defaults (``TrainConfig()``:
   learner ``ddpg``, critic ``mlp`` with context ``task``, ``critic_hidden`` 32, batch 64, one
   update per task step, settled granularity) on the task's network, CPU. *sb3-ddpg*: Stable-Baselines3
   DDPG's ``model.learn()`` built by ``neuron_env.baselines.sb3_ddpg.build_model`` with the same hidden
   sizes and activation (actor and critic), the same batch size, the same ``learning_starts`` and one
   gradient step per task step. Both run ``--steps`` task steps (default 4 000, the first
   ``--learning-starts`` = 1 000 of them acting at random without updates) on
   ``torch.set_num_threads(--threads)`` (default 1, ``neuron-env train``'s default). Each replay buffer
   holds ``min(100 000, steps)`` transitions (SB3's baseline caps its buffer at the step budget; the
   local one is capped the same way). Not timed: building the learner, model and env, and, on
   the local side, the trainer's final evaluation and checkpoint (replaced by no-ops: they are
   not part of the loop; TensorBoard and the progress bar are off on both sides). Reported: steps/s
   of each (median over ``--repeats`` runs, local and SB3 alternating) and the ratio local / SB3.
2. **Updates/s.** On the replay buffers the runs of 1. filled, ``--updates`` calls of the local
   learner's ``update()`` (sampling included) against SB3's ``model.train(gradient_steps=--updates,
   batch_size=...)`` (one critic and one actor step per gradient step, Polyak targets, sampling
   included), same batch size, same threads, after ``--update-warmup`` untimed updates each;
   median over ``--repeats`` interleaved windows, ratio local / SB3. Learners that are not off-policy
   (their ``update()`` consumes a rollout) are skipped with a note.
3. **Replay bytes per transition.** The local learner's buffer tensors (every tensor of
   ``learner.buffer`` with one row per transition: their bytes / capacity) against SB3's replay
   buffer (its numpy arrays' ``nbytes`` / ``buffer_size``), for each task's network, read off the
   buffers of the runs of 1.; and at 17-400-300-6 (723 neurons) even where HalfCheetah-v5 is not
   run, from buffers of capacity 16 built for the purpose. Beside them, the bytes of the learner's
   part of ``checkpoint.pt`` as ``neuron-env train`` writes it by default (no replay buffer).
4. **Profile** (``--profile``): one more run of each loop per task, with timers wrapped around
   methods of the trainer's objects (monkeypatched on the instances): *act* (``learner.act``, or
   ``act_settled`` for a settled learner's whole task step), *env step* (``env.step``: one tick
   of the core, or ``env.step_task``: the task step's ticks in one call), *store*
   (``learner.store``), *sample+update* (``learner.update``) and *bookkeeping* (everything else:
   the trainer's episode counters, logging, the loop itself). SB3's loop is split the same way
   (``_sample_action``, ``env.step``, ``_store_transition``, ``train``). The split is printed as
   a table (µs per task step and share) and written to the JSON; the timers cost a few µs per
   call, so the profiled run is a little slower than the timed ones.

How to run
----------
Full run (a few minutes on two cores; HalfCheetah-v5's local loop dominates)::

    python benchmarks/loop_throughput.py

Pendulum-v1 only, with the profile::

    python benchmarks/loop_throughput.py --tasks Pendulum-v1 --profile

Another learner of the registry (``neuron_env.agents.registry.LEARNERS``)::

    python benchmarks/loop_throughput.py --learner feedback

Smoke run (seconds)::

    python benchmarks/loop_throughput.py --tasks Pendulum-v1 --steps 60 --learning-starts 20 --updates 5

Other flags: ``--threads``, ``--repeats``, ``--batch-size``, ``--update-warmup``, ``--seed``,
``--out`` (``python benchmarks/loop_throughput.py --help``). A task whose environment cannot be
made (e.g. ``HalfCheetah-v5`` without MuJoCo: ``pip install 'gymnasium[mujoco]'``) is skipped with a
message saying why.

Timings are wall-clock on a shared CPU: run on an otherwise idle machine. The JSON records the
1-minute load average at the start and at the end, and the table warns when the machine was busy.

Output
------
Tables on stdout (loop steps/s, updates/s, replay bytes, and the profile with ``--profile``) and a
JSON file (default ``benchmarks/results/loop_throughput.json``) with the configuration, every
number per task (``loop``, ``updates``, ``replay``, ``profile``), the skipped tasks, notes and the
machine (CPU model and count, torch, SB3, gymnasium and MuJoCo versions, threads, platform, load
average, date).
"""

from __future__ import annotations

import dataclasses
import datetime
import io
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from neuron_env.agents import LocalDDPGConfig
from neuron_env.agents.registry import LEARNERS, learner_class, learner_options
from neuron_env.agents.train import TrainConfig, Trainer, make_learner

from neuron_env import Topology
from neuron_env.configs import config_parser
from neuron_env.run_output import publish

SB3 = "sb3-ddpg"
#: Hidden sizes of each task's network (other tasks get ``TrainConfig``'s default, 64-64).
TASK_HIDDEN: dict[str, tuple[int, ...]] = {"Pendulum-v1": (64, 64), "HalfCheetah-v5": (400, 300)}
#: The network the replay bytes are always reported at: obs 17, action 6 (HalfCheetah), 723 neurons.
REFERENCE_NETWORK: tuple[str, int, tuple[int, ...], int] = ("HalfCheetah-v5", 17, (400, 300), 6)
#: The parts of the profile, in table order (``bookkeeping`` is the rest of the loop's time).
PARTS: tuple[str, ...] = ("act", "env_step", "store", "sample_update", "bookkeeping")
PART_NAMES: dict[str, str] = {
    "act": "act (learner.act / SB3 _sample_action)",
    "env_step": "env step (env.step: tick / task step)",
    "store": "store (learner.store / SB3 _store_transition)",
    "sample_update": "sample+update (learner.update / SB3 train)",
    "bookkeeping": "bookkeeping (everything else)",
}
_DEFAULTS = TrainConfig()
#: The ``ddpg`` learner's options: the batch and buffer both methods are timed at.
_DDPG_DEFAULTS = LocalDDPGConfig()


@dataclass
class Args:
    """Benchmark configuration (every field is a command-line flag)."""

    steps: int = 4000
    """Task steps of each timed loop (local and SB3 alike)."""
    learning_starts: int = 1000
    """Task steps of random acting before updates start (both loops)."""
    tasks: tuple[str, ...] = ("Pendulum-v1", "HalfCheetah-v5")
    """Gymnasium ids; Pendulum-v1 gets a 3-64-64-1 network, HalfCheetah-v5 17-400-300-6, others 64-64."""
    learner: str = _DEFAULTS.learner
    """Local learner by registry name (ddpg, feedback, coagent, weight-max, es), at ``TrainConfig``'s defaults."""
    threads: int = _DEFAULTS.threads
    """Torch CPU threads of every measurement (``torch.set_num_threads``)."""
    repeats: int = 1
    """Timed loops (and update windows) per method and task, alternating local and SB3; the median is reported."""
    batch_size: int = _DDPG_DEFAULTS.batch_size
    """Transitions per update, for both methods (the ``ddpg`` learner's default)."""
    updates: int = 200
    """Updates per timed window of the updates/s measurement."""
    update_warmup: int = 10
    """Untimed updates per method before the updates/s windows."""
    num_envs: tuple[int, ...] = (1,)
    """Task copies E of the loop measurement; each E > 1 adds a row: the local loop with ``--num-envs E`` (UTD 1)
    against SB3 DDPG with ``n_envs=E``, ``train_freq=1``, ``gradient_steps=-1`` (UTD 1), ``--steps`` transitions."""
    profile: bool = False
    """Also run each loop once more with timers around act, env step, store and update; print and record the split."""
    seed: int = 0
    """Seed of both methods (networks, noise, sampling, task resets)."""
    out: str = "benchmarks/results/loop_throughput.json"
    """Where to write the JSON results (empty: do not write)."""

    def validate(self) -> None:
        """Check the options.

        Raises:
            ValueError: Naming the bad option and the fix.
        """
        for name in ("steps", "threads", "repeats", "batch_size", "updates"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')}={getattr(self, name)} must be at least 1")
        if not self.num_envs or any(e < 1 or self.learning_starts // e >= self.steps // e for e in self.num_envs):
            raise ValueError(f"--num-envs {list(self.num_envs)} must be counts >= 1 that leave updates to time "
                             f"(learning_starts // E < steps // E)")
        if self.learning_starts < 0 or self.update_warmup < 0:
            raise ValueError("--learning-starts and --update-warmup must be >= 0")
        if self.learning_starts >= self.steps:
            raise ValueError(f"--learning-starts={self.learning_starts} must be below --steps={self.steps}, "
                             "or no update is ever timed")
        if self.learner not in LEARNERS:
            raise ValueError(f"--learner={self.learner!r} is unknown; choose one of {', '.join(LEARNERS)}")
        if not self.tasks:
            raise ValueError("--tasks needs at least one Gymnasium id")


def parse_args(argv: list[str] | None = None) -> Args:
    """Build :class:`Args` from the command line (one flag per field, help from the field docs)."""
    parser = config_parser(Args, __doc__.split("\n\n")[0] if __doc__ else None,
                           {"learner": {"choices": LEARNERS}})
    values = vars(parser.parse_args(argv))
    values["tasks"], values["num_envs"] = tuple(values["tasks"]), tuple(values["num_envs"])
    args = Args(**values)
    try:
        args.validate()
    except ValueError as error:
        parser.error(str(error))
    return args


# ---------------------------------------------------------------------------- helpers
def hidden_for(task: str) -> tuple[int, ...]:
    """Hidden sizes of ``task``'s network (``TASK_HIDDEN``, else ``TrainConfig``'s default)."""
    return TASK_HIDDEN.get(task, tuple(_DEFAULTS.hidden))


def network_label(obs_dim: int, hidden: tuple[int, ...], act_dim: int) -> str:
    """``"17-400-300-6"``."""
    return "-".join(str(size) for size in (obs_dim, *hidden, act_dim))


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``; ``platform.processor()`` elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(threads: int) -> dict[str, Any]:
    """Versions, CPU, threads, platform, load average and date."""
    import stable_baselines3

    try:
        import mujoco

        mujoco_version: str | None = mujoco.__version__
    except ImportError:
        mujoco_version = None
    return {
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": threads,
        "stable_baselines3": stable_baselines3.__version__,
        "gymnasium": gym.__version__,
        "mujoco": mujoco_version,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_1min": os.getloadavg()[0],
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
    }


def task_problem(task: str) -> str | None:
    """Why ``task``'s environment cannot be made, or ``None`` when it can."""
    try:
        env = gym.make(task)
    except Exception as error:  # noqa: BLE001 - any failure (no MuJoCo, unknown id) skips the task
        return f"{type(error).__name__}: {error}"
    env.close()
    return None


class PartTimer:
    """Accumulates wall time per part of a loop, from wrappers around bound methods.

    A call made while another timed call is running (e.g. a wrapped method calling another)
    is counted in the outer part only, so the parts never overlap.
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = dict.fromkeys(PARTS, 0.0)
        self.calls: dict[str, int] = dict.fromkeys(PARTS, 0)
        self._active = False

    def wrap(self, part: str, function: Callable[..., Any]) -> Callable[..., Any]:
        """``function`` with its time added to ``part``."""

        def timed(*args: Any, **kwargs: Any) -> Any:
            if self._active:
                return function(*args, **kwargs)
            self._active = True
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[part] += time.perf_counter() - start
                self.calls[part] += 1
                self._active = False

        return timed

    def split(self, total: float, steps: int) -> dict[str, Any]:
        """The split of ``total`` seconds over ``steps`` task steps; bookkeeping is the rest."""
        seconds = dict(self.seconds)
        seconds["bookkeeping"] = total - sum(seconds[p] for p in PARTS if p != "bookkeeping")
        return {
            "steps": steps,
            "wall_s": total,
            "steps_per_s": steps / total,
            "us_per_step": {**{p: 1e6 * seconds[p] / steps for p in PARTS}, "total": 1e6 * total / steps},
            "share": {p: seconds[p] / total for p in PARTS},
            "calls": {p: self.calls[p] for p in PARTS if p != "bookkeeping"},
            "us_per_call": {p: 1e6 * seconds[p] / self.calls[p] for p in PARTS if p != "bookkeeping" and self.calls[p]},
        }


# ---------------------------------------------------------------------------- the two loops
def train_config(args: Args, task: str, out: str, num_envs: int = 1) -> TrainConfig:
    """``neuron-env train``'s defaults on ``task``, with the benchmark's steps, threads and batch size.

    With ``num_envs`` copies the run lasts ``steps // num_envs`` vector steps (``--steps``
    transitions) and the trainer keeps one update per transition.
    """
    # batch and buffer set for every learner that has them (feedback would keep its batch 256 otherwise)
    sized = {"batch_size": args.batch_size, "buffer_size": min(_DDPG_DEFAULTS.buffer_size, args.steps)}
    return TrainConfig(
        task=task, learner=args.learner, hidden=list(hidden_for(task)), steps=args.steps // num_envs,
        learning_starts=args.learning_starts // num_envs, num_envs=num_envs, device="cpu", seed=args.seed,
        threads=args.threads,
        eval_every=0, checkpoint_every=args.steps, progress=False, tensorboard=False, out=out,
        learner_options={k: v for k, v in sized.items() if k in learner_options(args.learner)},
    )


def build_trainer(args: Args, task: str, out: str, num_envs: int = 1) -> Trainer:
    """The trainer of the local loop, its final evaluation and checkpoint replaced by no-ops."""
    trainer = Trainer(train_config(args, task, out, num_envs))
    trainer._evaluate = lambda: np.zeros(1)  # type: ignore[method-assign]
    trainer.save = lambda elapsed: None  # type: ignore[method-assign]
    return trainer


def build_sb3(args: Args, task: str, num_envs: int = 1) -> Any:
    """SB3 DDPG on ``task``: same hidden sizes, activation, batch size and ``learning_starts``.

    With ``num_envs`` copies: ``make_vec_env(n_envs=num_envs)``, one gradient step per transition
    (``gradient_steps=-1``) and the action noise drawn per copy.
    """
    from neuron_env.baselines.sb3_ddpg import BaselineConfig, build_model

    config = BaselineConfig(
        task=task, hidden=hidden_for(task), activation=_DEFAULTS.activation, steps=args.steps,
        learning_starts=args.learning_starts, batch_size=args.batch_size, train_freq=1,
        gradient_steps=1 if num_envs == 1 else -1,
        seed=args.seed, device="cpu", threads=args.threads, tensorboard=False, save_model=False, progress=False,
    )
    if num_envs == 1:
        return build_model(config)[0]
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.noise import VectorizedActionNoise

    model, _ = build_model(config, make_vec_env(task, n_envs=num_envs, seed=args.seed))
    model.action_noise = VectorizedActionNoise(model.action_noise, num_envs)
    return model


def profile_trainer(trainer: Trainer) -> PartTimer:
    """Wrap the trainer's learner and env methods with timers (on the instances)."""
    timer = PartTimer()
    learner, env = trainer.learner, trainer.env
    # a settled learner acts a task step in one act_settled call, held by one env.step_task call
    learner.act = timer.wrap("act", learner.act)  # type: ignore[method-assign]
    learner.act_settled = timer.wrap("act", learner.act_settled)  # type: ignore[method-assign]
    env.step = timer.wrap("env_step", env.step)  # type: ignore[method-assign]
    env.step_task = timer.wrap("env_step", env.step_task)  # type: ignore[method-assign]
    learner.store = timer.wrap("store", learner.store)  # type: ignore[method-assign]
    learner.update = timer.wrap("sample_update", learner.update)  # type: ignore[method-assign]
    return timer


def profile_sb3(model: Any) -> PartTimer:
    """Wrap SB3's acting, env step, storing and training with timers (on the instances)."""
    timer = PartTimer()
    model._sample_action = timer.wrap("act", model._sample_action)
    model.env.step = timer.wrap("env_step", model.env.step)
    model._store_transition = timer.wrap("store", model._store_transition)
    model.train = timer.wrap("sample_update", model.train)
    return timer


def run_local(args: Args, task: str, profile: bool = False,
              num_envs: int = 1) -> tuple[float, Trainer, dict[str, Any] | None]:
    """One local training loop; ``(wall seconds, trainer, profile split or None)``."""
    with tempfile.TemporaryDirectory(prefix="loop-throughput-") as out:
        trainer = build_trainer(args, task, out, num_envs)
        timer = profile_trainer(trainer) if profile else None
        start = time.perf_counter()
        trainer.run()
        wall = time.perf_counter() - start
    return wall, trainer, timer.split(wall, args.steps) if timer is not None else None


def run_sb3(args: Args, task: str, profile: bool = False,
            num_envs: int = 1) -> tuple[float, Any, dict[str, Any] | None]:
    """One SB3 DDPG training loop; ``(wall seconds, model, profile split or None)``."""
    model = build_sb3(args, task, num_envs)
    timer = profile_sb3(model) if profile else None
    start = time.perf_counter()
    model.learn(total_timesteps=args.steps, log_interval=None)
    wall = time.perf_counter() - start
    model.env.close()
    return wall, model, timer.split(wall, args.steps) if timer is not None else None


# ---------------------------------------------------------------------------- updates and replay
def time_updates(args: Args, local_update: Callable[[], Any] | None, sb3_train: Callable[[int], Any]
                 ) -> dict[str, list[float]]:
    """Updates/s windows of both methods, interleaved: ``{method: [rate per repeat]}``."""
    windows: dict[str, Callable[[], Any]] = {SB3: lambda: sb3_train(args.updates)}
    if local_update is not None:
        def local_window() -> None:
            for _ in range(args.updates):
                local_update()

        windows = {"local": local_window, **windows}
    if args.update_warmup:
        if local_update is not None:
            for _ in range(args.update_warmup):
                local_update()
        sb3_train(args.update_warmup)
    rates: dict[str, list[float]] = {name: [] for name in windows}
    for _ in range(args.repeats):
        for name, window in windows.items():
            start = time.perf_counter()
            window()
            rates[name].append(args.updates / (time.perf_counter() - start))
    return rates


def local_replay_bytes(learner: Any) -> dict[str, Any] | None:
    """Bytes per transition of the learner's replay buffer (its per-row tensors' bytes / capacity)."""
    buffer = getattr(learner, "buffer", None)
    capacity = getattr(buffer, "capacity", None)
    if buffer is None or not capacity:
        return None
    tensors = {name: t for name, t in vars(buffer).items()
               if isinstance(t, torch.Tensor) and t.dim() >= 1 and t.shape[0] == capacity}
    total = sum(t.numel() * t.element_size() for t in tensors.values())
    return {"bytes_per_transition": total / capacity, "capacity": int(capacity),
            "arrays": {name: [list(t.shape), str(t.dtype)] for name, t in tensors.items()}}


def checkpoint_bytes_without_replay(learner: Any) -> int:
    """Bytes of the learner's part of ``checkpoint.pt`` as ``neuron-env train`` writes it by default.

    ``state_dict(include_buffer=False)`` plus the network weights, serialized by ``torch.save``:
    the checkpoint without ``--checkpoint-replay`` (with it, add the buffer's bytes per stored
    transition for every transition it holds).
    """
    weights = learner.weights
    payload = {"learner": learner.state_dict(include_buffer=False),
               "weights": {"blocks": list(weights.blocks), "biases": list(weights.biases)}}
    stream = io.BytesIO()
    torch.save(payload, stream)
    return stream.getbuffer().nbytes


def sb3_replay_bytes(buffer: Any) -> dict[str, Any]:
    """Bytes per transition of SB3's replay buffer (its per-row arrays' ``nbytes`` / rows)."""
    size = int(buffer.buffer_size)
    arrays = {name: a for name, a in vars(buffer).items()
              if isinstance(a, np.ndarray) and a.ndim >= 1 and a.shape[0] == size}
    rows = size * int(buffer.n_envs)
    return {"bytes_per_transition": sum(a.nbytes for a in arrays.values()) / rows, "capacity": rows,
            "arrays": {name: [list(a.shape), str(a.dtype)] for name, a in arrays.items()}}


def replay_row(local: dict[str, Any] | None, sb3: dict[str, Any], source: str) -> dict[str, Any]:
    """The replay figures of one network, with the ratio local / SB3."""
    local_bytes = local["bytes_per_transition"] if local is not None else None
    return {
        "local_bytes_per_transition": local_bytes,
        "sb3_bytes_per_transition": sb3["bytes_per_transition"],
        "ratio_vs_sb3": local_bytes / sb3["bytes_per_transition"] if local_bytes is not None else None,
        "local": local,
        "sb3": sb3,
        "source": source,
    }


def reference_replay(args: Args) -> dict[str, Any]:
    """Replay bytes at 17-400-300-6 (723 neurons) from buffers of capacity 16 (no loop run)."""
    from stable_baselines3.common.buffers import ReplayBuffer

    task, obs_dim, hidden, act_dim = REFERENCE_NETWORK
    topology = Topology.mlp(obs_dim, list(hidden), act_dim, activation=_DEFAULTS.activation)
    config = train_config(args, task, "")
    if "buffer_size" in config.learner_options:  # set there for every learner with a replay buffer
        config.learner_options["buffer_size"] = 16
    learner = make_learner(config, topology, torch.device("cpu"))
    try:
        env = gym.make(task)
        observation_space, action_space, note = env.observation_space, env.action_space, f"{task}'s spaces"
        env.close()
    except Exception:  # noqa: BLE001 - no MuJoCo: its spaces, written out
        observation_space = gym.spaces.Box(-np.inf, np.inf, (obs_dim,), np.float64)
        action_space = gym.spaces.Box(-1.0, 1.0, (act_dim,), np.float32)
        note = f"a stand-in with {task}'s spaces (float64 observations)"
    buffer = ReplayBuffer(16, observation_space, action_space, device="cpu", n_envs=1)
    row = replay_row(local_replay_bytes(learner), sb3_replay_bytes(buffer),
                     f"buffers of capacity 16 built for the figure (SB3: {note})")
    row["local_checkpoint_bytes_without_replay"] = checkpoint_bytes_without_replay(learner)
    return {"network": network_label(obs_dim, hidden, act_dim), "neurons": topology.num_neurons,
            "agents": topology.num_agents, **row}


# ---------------------------------------------------------------------------- one task
def time_loops(args: Args, task: str, num_envs: int, log: Callable[[str], None]
               ) -> tuple[list[float], list[float], Trainer, Any]:
    """``--repeats`` interleaved local and SB3 loops of ``num_envs`` copies: walls, the last trainer and model."""
    local_walls: list[float] = []
    sb3_walls: list[float] = []
    trainer: Trainer | None = None
    model: Any = None
    for repeat in range(args.repeats):
        wall, trainer, _ = run_local(args, task, num_envs=num_envs)
        local_walls.append(wall)
        wall, model, _ = run_sb3(args, task, num_envs=num_envs)
        sb3_walls.append(wall)
        log(f"[{task}] {num_envs} cop{'y' if num_envs == 1 else 'ies'}, repeat {repeat + 1}/{args.repeats}: "
            f"local {local_walls[-1]:,.1f} s, {SB3} {sb3_walls[-1]:,.1f} s")
    assert trainer is not None and model is not None  # repeats >= 1
    return local_walls, sb3_walls, trainer, model


def bench_task(args: Args, task: str, log: Callable[[str], None]) -> dict[str, Any]:
    """Loop steps/s, updates/s, replay bytes (and the profile) of one task."""
    local_name = f"local-{args.learner}"
    local_walls, sb3_walls, trainer, model = time_loops(args, task, 1, log)
    topology = trainer.topology
    local_rates = [args.steps / w for w in local_walls]
    sb3_rates = [args.steps / w for w in sb3_walls]
    local_rate, sb3_rate = statistics.median(local_rates), statistics.median(sb3_rates)
    result: dict[str, Any] = {
        "task": task,
        "network": network_label(topology.obs_dim, hidden_for(task), topology.act_dim),
        "neurons": topology.num_neurons,
        "agents": topology.num_agents,
        "activation": _DEFAULTS.activation,
        "loop": {
            local_name: {"steps_per_s": local_rate, "repeats_steps_per_s": local_rates,
                         "wall_s": statistics.median(local_walls), "granularity": trainer.learner.granularity,
                         "updates": trainer.learner.num_updates},
            SB3: {"steps_per_s": sb3_rate, "repeats_steps_per_s": sb3_rates, "wall_s": statistics.median(sb3_walls),
                  "updates": int(model._n_updates)},
            "ratio_local_vs_sb3": local_rate / sb3_rate,
        },
        "notes": [],
    }

    # updates/s on the buffers the last runs filled
    learner = trainer.learner
    off_policy = bool(getattr(learner, "off_policy", False)) and learner.ready()
    if not off_policy:
        result["notes"].append(f"learner {args.learner!r} is not off-policy (its update() consumes a rollout): "
                               "updates/s timed for SB3 only")
    threads_before = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        rates = time_updates(args, learner.update if off_policy else None,
                             lambda n: model.train(gradient_steps=n, batch_size=args.batch_size))
    finally:
        torch.set_num_threads(threads_before)
    updates: dict[str, Any] = {"batch_size": args.batch_size, "updates_per_window": args.updates}
    sb3_updates = statistics.median(rates[SB3])
    if "local" in rates:
        local_updates = statistics.median(rates["local"])
        updates[local_name] = {"updates_per_s": local_updates, "repeats_updates_per_s": rates["local"]}
    updates[SB3] = {"updates_per_s": sb3_updates, "repeats_updates_per_s": rates[SB3]}
    updates["ratio_local_vs_sb3"] = local_updates / sb3_updates if "local" in rates else None
    result["updates"] = updates
    log(f"[{task}] updates/s: " + ", ".join(f"{k} {v['updates_per_s']:,.1f}" for k, v in updates.items()
                                            if isinstance(v, dict)))

    replay = replay_row(local_replay_bytes(learner), sb3_replay_bytes(model.replay_buffer),
                        "the buffers of the timed runs")
    replay["local_checkpoint_bytes_without_replay"] = checkpoint_bytes_without_replay(learner)
    if replay["local"] is None:
        result["notes"].append(f"learner {args.learner!r} has no replay buffer: no local replay bytes")
    result["replay"] = replay

    copies = []
    for num_envs in sorted(set(args.num_envs) - {1}):
        local_walls, sb3_walls, copy_trainer, copy_model = time_loops(args, task, num_envs, log)
        transitions = (args.steps // num_envs) * num_envs
        local_rate = transitions / statistics.median(local_walls)
        sb3_rate = args.steps / statistics.median(sb3_walls)
        copies.append({"num_envs": num_envs, "transitions": transitions,
                       local_name: {"transitions_per_s": local_rate, "updates": copy_trainer.learner.num_updates},
                       SB3: {"transitions_per_s": sb3_rate, "updates": int(copy_model._n_updates)},
                       "ratio_local_vs_sb3": local_rate / sb3_rate})
        log(f"[{task}] {num_envs} copies: {local_name} {local_rate:,.0f}, {SB3} {sb3_rate:,.0f} transitions/s")
    result["copies"] = copies

    if args.profile:
        _, _, local_split = run_local(args, task, profile=True)
        _, _, sb3_split = run_sb3(args, task, profile=True)
        result["profile"] = {local_name: local_split, SB3: sb3_split}
        log(f"[{task}] profiled")
    return result


def run_benchmark(args: Args, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run every measurement on every task; the results (what :func:`main` writes as JSON).

    Args:
        args: The configuration.
        log: Progress lines go here (default: stderr).

    Returns:
        ``{"config", "machine", "tasks": [per-task results], "replay_723", "skipped", "notes",
        "load_average_1min_end", "wall_time_s"}``.

    Raises:
        ValueError: On an invalid option.
    """
    if log is None:
        def log(line: str) -> None:
            print(line, file=sys.stderr, flush=True)
    args.validate()
    learner_class(args.learner)  # fails early, naming the learners, on an unknown name
    start = time.perf_counter()
    threads_before = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    results: dict[str, Any] = {"config": dataclasses.asdict(args), "machine": machine_info(args.threads),
                               "tasks": [], "skipped": [], "notes": []}
    try:
        for task in dict.fromkeys(args.tasks):
            problem = task_problem(task)
            if problem is not None:
                message = f"{task}: its environment cannot be made ({problem}); task skipped"
                if "mujoco" in problem.lower():
                    message += " (install MuJoCo: pip install 'gymnasium[mujoco]')"
                results["skipped"].append(message)
                log(f"[{task}] skipped: {problem}")
                continue
            results["tasks"].append(bench_task(args, task, log))
        reference = next((t for t in results["tasks"] if t["network"] == network_label(
            REFERENCE_NETWORK[1], REFERENCE_NETWORK[2], REFERENCE_NETWORK[3])), None)
        if reference is not None:
            results["replay_723"] = {"network": reference["network"], "neurons": reference["neurons"],
                                     "agents": reference["agents"], **reference["replay"]}
        else:
            results["replay_723"] = reference_replay(args)
    finally:
        torch.set_num_threads(threads_before)
    results["load_average_1min_end"] = os.getloadavg()[0]
    results["wall_time_s"] = time.perf_counter() - start
    return results


# ---------------------------------------------------------------------------- report
def _table(rows: list[tuple[str, ...]], right_from: int) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for k, row in enumerate(rows):
        lines.append("  ".join(cell.rjust(w) if i >= right_from else cell.ljust(w)
                               for i, (cell, w) in enumerate(zip(row, widths, strict=True))).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return lines


def _bytes(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def format_report(results: dict[str, Any]) -> str:
    """The results as plain-text tables: loop, updates, replay bytes, profile, then the machine."""
    config = results["config"]
    lines = [f"Training loop, {config['steps']:,} task steps (learning_starts {config['learning_starts']:,}), "
             f"batch {config['batch_size']}, {config['threads']} thread(s), median of {config['repeats']}"]
    rows: list[tuple[str, ...]] = [("task", "network", "method", "steps/s", "local / SB3")]
    for task in results["tasks"]:
        loop = task["loop"]
        for method, figures in loop.items():
            if isinstance(figures, dict):
                ratio = f"{loop['ratio_local_vs_sb3']:.2f}x" if method != SB3 else "1.00x"
                rows.append((task["task"], f"{task['network']} ({task['neurons']} neurons)", method,
                             f"{figures['steps_per_s']:,.1f}", ratio))
    lines += _table(rows, 3)
    if any(task.get("copies") for task in results["tasks"]):
        lines.append("\nLoop with E task copies, one update per transition on both sides (local: --num-envs E; "
                     "SB3: n_envs=E, gradient_steps=-1); transitions/s")
        rows = [("task", "E", "local", "SB3 DDPG", "local / SB3")]
        for task in results["tasks"]:
            for copy in task.get("copies", []):
                local = next(v for k, v in copy.items() if k.startswith("local-"))
                rows.append((task["task"], str(copy["num_envs"]), f"{local['transitions_per_s']:,.1f}",
                             f"{copy[SB3]['transitions_per_s']:,.1f}", f"{copy['ratio_local_vs_sb3']:.2f}x"))
        lines += _table(rows, 2)

    lines.append(f"\nUpdates on the filled buffers, {config['updates']} per window after {config['update_warmup']} "
                 "warm-up (local: learner.update(); SB3: model.train(gradient_steps, batch_size))")
    rows = [("task", "method", "updates/s", "local / SB3")]
    for task in results["tasks"]:
        updates = task["updates"]
        for method, figures in updates.items():
            if isinstance(figures, dict):
                ratio = "1.00x" if method == SB3 else f"{updates['ratio_local_vs_sb3']:.2f}x"
                rows.append((task["task"], method, f"{figures['updates_per_s']:,.1f}", ratio))
    lines += _table(rows, 2)

    lines.append("\nReplay bytes per transition (local: buffer tensors' bytes / capacity; SB3: arrays' nbytes / "
                 "buffer_size)")
    rows = [("network", "neurons", "local B", "SB3 B", "local / SB3", "checkpoint w/o replay", "source")]
    replays = [(f"{t['task']} {t['network']}", t["neurons"], t["replay"]) for t in results["tasks"]]
    if not any(t["network"] == results["replay_723"]["network"] for t in results["tasks"]):
        r = results["replay_723"]
        replays.append((r["network"], r["neurons"], r))
    for name, neurons, replay in replays:
        ratio = replay["ratio_vs_sb3"]
        rows.append((name, str(neurons), _bytes(replay["local_bytes_per_transition"]),
                     _bytes(replay["sb3_bytes_per_transition"]), "-" if ratio is None else f"{ratio:.2f}x",
                     _bytes(replay.get("local_checkpoint_bytes_without_replay")), replay["source"]))
    lines += _table(rows, 1)

    for task in results["tasks"]:
        profile = task.get("profile")
        if not profile:
            continue
        lines.append(f"\nProfile, {task['task']} {task['network']} (one more run of each loop, timers wrapped "
                     "around the instances' methods; us per task step and share)")
        methods = list(profile)
        rows = [("part", *[f"{m} us/step" for m in methods], *[f"{m} share" for m in methods])]
        for part in PARTS:
            rows.append((PART_NAMES[part], *[f"{profile[m]['us_per_step'][part]:,.1f}" for m in methods],
                         *[f"{100 * profile[m]['share'][part]:.1f} %" for m in methods]))
        rows.append(("total", *[f"{profile[m]['us_per_step']['total']:,.1f}" for m in methods],
                     *["" for _ in methods]))
        rows.append(("(profiled run: steps/s)", *[f"{profile[m]['steps_per_s']:,.1f}" for m in methods],
                     *["" for _ in methods]))
        lines += _table(rows, 1)

    for task in results["tasks"]:
        lines += [f"note: {task['task']}: {note}" for note in task["notes"]]
    lines += [f"skipped: {line}" for line in results["skipped"]]
    lines += [f"note: {line}" for line in results["notes"]]
    machine = results["machine"]
    cpus = machine["cpu_count"] or 1
    start_load, end_load = machine["load_average_1min"], results["load_average_1min_end"]
    busy = start_load > 0.5 * cpus or end_load > cpus  # the benchmark itself adds about 1 while it runs
    lines.append(f"\nmachine: {machine['cpu']} ({cpus} CPUs), torch {machine['torch']} on {machine['torch_threads']} "
                 f"thread(s), SB3 {machine['stable_baselines3']}, gymnasium {machine['gymnasium']}, "
                 f"mujoco {machine['mujoco']}, python {machine['python']}, {machine['date']}")
    lines.append(f"load average (1 min): {start_load:.2f} at start, {end_load:.2f} at end"
                 f"{' -- busy machine, timings unreliable' if busy else ''}; wall time {results['wall_time_s']:.0f} s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """The command line (see the module doc): ``argv`` (``None``: ``sys.argv``) -> the results it wrote."""
    args = parse_args(argv)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    results = run_benchmark(args)
    return publish(results, format_report(results), args.out)


if __name__ == "__main__":
    main()
