r"""Training-loop throughput: ``neuron-env train``'s whole loop against SB3 DDPG and a plain-torch DDPG, same run.

What it measures
----------------
For every network of ``--tasks`` (default ``Pendulum-v1``: 3-64-64-1 tanh; ``HalfCheetah-v5:64-64``:
17-64-64-6, the locomotion study's width; ``HalfCheetah-v5:400-300``: the DDPG paper's
17-400-300-6, 723 neurons), every learner variant of ``--learners`` (default ``feedback``, the
trainer's default learner with its per-neuron output critics, and ``feedback:critic=joint``, one
critic of the output group's joint action, as the locomotion study runs it with ``--critic
joint``) and every batch of ``--batches`` (default ``own``: each learner at its own default batch,
``feedback``'s 256; an integer: every learner at that batch, e.g. ``--batches 64`` as earlier rounds
timed it), in one run and on one CPU thread budget:

1. **Task steps/s of the whole training loop**, three kinds of method at the same batch, the same
   ``learning_starts`` and one update per task step:

   * *local-<variant>*: the package's trainer (``neuron_env.agents.train.Trainer.run``) with
     ``neuron-env train``'s defaults (``TrainConfig()``, settled granularity) plus the variant's
     options, CPU;
   * *sb3-ddpg*: Stable-Baselines3 DDPG's ``model.learn()`` built by
     ``neuron_env.baselines.sb3_ddpg.build_model`` with the same hidden sizes and activation (actor
     and critic) and one gradient step per task step;
   * *torch-ddpg*: the plain-torch DDPG of ``benchmarks/reference_ddpg.py`` (CleanRL's update and
     loop: act, step one ``gym.Env``, store, update), actor and critic of the same hidden sizes:
     the backprop algorithm itself, without a library around it.

   Each runs ``--steps`` task steps (default 4 000, the first ``--learning-starts`` = 1 000 of them
   acting at random without updates) on ``torch.set_num_threads(--threads)`` (default 1,
   ``neuron-env train``'s default). Each replay buffer holds ``min(100 000, steps)`` transitions.
   Not timed: building the learner, model, reference and env, and, on the local side, the
   trainer's final evaluation and checkpoint (replaced by no-ops; TensorBoard and the progress
   bar are off on every side). Reported: steps/s of each (median over ``--repeats`` runs, the
   methods alternating) and each method's ratio to SB3 (``ratio_vs_sb3``) and to the plain-torch
   DDPG (``ratio_vs_torch``); and the same by this process's CPU time (``time.process_time``:
   ``steps_per_cpu_s``, ``cpu_ratio_vs_*``), which other jobs on a shared machine stretch much
   less than the wall clock (on one torch thread both measure the same work).
2. **Updates/s.** On the replay buffers the runs of 1. filled, ``--updates`` calls of each local
   learner's ``update()`` (sampling included), SB3's ``model.train(gradient_steps=--updates,
   batch_size=...)`` and the reference's ``update()``, same batch, same threads, after
   ``--update-warmup`` untimed updates each; median over ``--repeats`` interleaved windows, both
   ratios, by wall clock and by CPU time. Learners that are not off-policy (their ``update()``
   consumes a rollout) are skipped with a note.
3. **Replay bytes per transition** of the first learner variant against SB3's, per network (the
   local learner's buffer tensors with one row per transition: their bytes / capacity; SB3's
   numpy arrays' ``nbytes`` / ``buffer_size``), read off the buffers of the runs of 1.; and at
   17-400-300-6 (723 neurons) even where it is not run, from buffers of capacity 16 built for the
   purpose. Beside them, the bytes of the learner's part of ``checkpoint.pt`` as ``neuron-env
   train`` writes it by default (no replay buffer).
4. **Profile** (``--profile``): one more run of the first variant's loop, SB3's and the
   reference's per network and batch, with timers wrapped around methods of their objects
   (monkeypatched on the instances): *act* (``learner.act``/``act_settled``; SB3's
   ``_sample_action``; the reference loop's ``act``), *env step* (``env.step``/``step_task``),
   *store*, *sample+update* and *bookkeeping* (everything else). Printed as a table (µs per
   task step by the wall clock and by this process's CPU time, share, and µs per task step outside
   the update: everything but sample+update) and written to the JSON (``us_per_step``,
   ``cpu_us_per_step``, ``us_per_step_outside_update``, ``cpu_us_per_step_outside_update``); the
   timers cost a few µs per call.
5. **E task copies** (``--num-envs 1 4 16``): each E > 1 adds a row for the first network's first
   batch: the first variant's loop with ``--num-envs E`` against SB3 DDPG with ``n_envs=E``,
   ``gradient_steps=-1`` (one update per transition on both sides).

How to run
----------
Full run (about 5 minutes on two shared cores; HalfCheetah-v5 at 400-300 and batch 256 dominates)::

    python benchmarks/loop_throughput.py

The docs' table (``docs/results.md``): both batches, three repeats, the profile, written beside the
earlier results (about 30 minutes on two shared cores)::

    python benchmarks/loop_throughput.py --batches own 64 --repeats 3 --profile \
        --out benchmarks/results/loop_throughput_references.json

Pendulum-v1 only, with the profile; another learner of the registry, or an option set on one::

    python benchmarks/loop_throughput.py --tasks Pendulum-v1 --profile
    python benchmarks/loop_throughput.py --learners ddpg feedback:critic=joint,feedback=weights

Smoke run (seconds: Pendulum-v1 only unless ``--tasks`` says otherwise, 60 steps, 5 updates)::

    python benchmarks/loop_throughput.py --quick

Other flags: ``--threads``, ``--repeats``, ``--update-warmup``, ``--seed``, ``--out``
(``python benchmarks/loop_throughput.py --help``; the network and learner forms are
``benchmarks/benchmark_settings.py``'s). A task whose environment cannot be made (e.g. ``HalfCheetah-v5``
without MuJoCo: ``pip install 'gymnasium[mujoco]'``) is skipped with a message saying why.

Timings are wall-clock on a shared CPU: run on an otherwise idle machine. The JSON records the
1-minute load average at the start and at the end, and the table warns when the machine was busy.

Output
------
Tables on stdout (loop steps/s, updates/s, replay bytes, and the profile with ``--profile``) and a
JSON file (default ``benchmarks/results/loop_throughput.json``) with the configuration, every
number per network and batch (``tasks``: one entry each, with ``loop``, ``updates``, ``replay``,
``copies``, ``profile``; every method with its ``batch_size``, ``batch_source`` and both ratios),
the skipped tasks, notes and the machine (CPU model and count, torch, SB3, gymnasium and MuJoCo
versions, threads, platform, load average, date).
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
from neuron_env.agents.train import TrainConfig, Trainer, make_learner

from neuron_env import Topology
from neuron_env.configs import config_parser
from neuron_env.run_output import publish

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/: the shared reference and settings
from benchmark_settings import LearnerVariant, NetworkSpec, batch_plan, parse_batches  # noqa: E402
from reference_ddpg import ReferenceConfig, ReferenceLoop  # noqa: E402

SB3 = "sb3-ddpg"
#: Method name of the plain-torch DDPG (``benchmarks/reference_ddpg.py``).
TORCH = "torch-ddpg"
#: ``batch_source`` of the two references: the batch of the learners beside them.
REFERENCE_BATCH = "reference"
#: Hidden sizes of a bare task id in ``--tasks`` (others get ``TrainConfig``'s default, 64-64).
TASK_HIDDEN: dict[str, tuple[int, ...]] = {"Pendulum-v1": (64, 64), "HalfCheetah-v5": (400, 300)}
#: The network the replay bytes are always reported at: obs 17, action 6 (HalfCheetah), 723 neurons.
REFERENCE_NETWORK: tuple[str, int, tuple[int, ...], int] = ("HalfCheetah-v5", 17, (400, 300), 6)
#: The parts of the profile, in table order (``bookkeeping`` is the rest of the loop's time).
PARTS: tuple[str, ...] = ("act", "env_step", "store", "sample_update", "bookkeeping")
PART_NAMES: dict[str, str] = {
    "act": "act (learner.act / SB3 _sample_action / torch act)",
    "env_step": "env step (env.step: tick / task step)",
    "store": "store (learner.store / SB3 _store_transition / torch store)",
    "sample_update": "sample+update (learner.update / SB3 train / torch update)",
    "bookkeeping": "bookkeeping (everything else)",
}
_DEFAULTS = TrainConfig()
#: The ``ddpg`` learner's options: its buffer size caps every method's buffer, its batch is the fallback batch.
_DDPG_DEFAULTS = LocalDDPGConfig()


@dataclass
class Args:
    """Benchmark configuration (every field is a command-line flag)."""

    steps: int = 4000
    """Task steps of each timed loop (every method alike)."""
    learning_starts: int = 1000
    """Task steps of random acting before updates start (every loop)."""
    tasks: tuple[str, ...] = ("Pendulum-v1", "HalfCheetah-v5:64-64", "HalfCheetah-v5:400-300")
    """Networks, ``TASK`` or ``TASK:H1-H2`` (bare: Pendulum-v1 64-64, HalfCheetah-v5 400-300, others 64-64)."""
    learners: tuple[str, ...] = (_DEFAULTS.learner, f"{_DEFAULTS.learner}:critic=joint")
    """Local learner variants, ``NAME[:OPTION=VALUE,...]`` (registry names at ``TrainConfig``'s defaults)."""
    batches: tuple[str, ...] = ("own",)
    """Batches: ``own`` (each learner's default; the references at that batch) and/or integers (every learner)."""
    threads: int = _DEFAULTS.threads
    """Torch CPU threads of every measurement (``torch.set_num_threads``)."""
    repeats: int = 1
    """Timed loops (and update windows) per method and setting, the methods alternating; the median is reported."""
    updates: int = 200
    """Updates per timed window of the updates/s measurement."""
    update_warmup: int = 10
    """Untimed updates per method before the updates/s windows."""
    num_envs: tuple[int, ...] = (1,)
    """Task copies E of the loop measurement; each E > 1 adds a row: the first variant with ``--num-envs E`` (UTD 1)
    against SB3 DDPG with ``n_envs=E``, ``train_freq=1``, ``gradient_steps=-1`` (UTD 1), ``--steps`` transitions."""
    profile: bool = False
    """Also run each loop once more with timers around act, env step, store and update; print and record the split."""
    quick: bool = False
    """Smoke run (seconds): 60 steps, 20 of them random, 5 updates per window, Pendulum-v1 unless ``--tasks`` given."""
    seed: int = 0
    """Seed of every method (networks, noise, sampling, task resets)."""
    out: str = "benchmarks/results/loop_throughput.json"
    """Where to write the JSON results (empty: do not write)."""

    def apply_quick(self) -> None:
        """Shrink every count for a smoke run (the default tasks become Pendulum-v1 alone)."""
        if self.tasks == Args.tasks:
            self.tasks = ("Pendulum-v1",)
        self.steps = min(self.steps, 60)
        self.learning_starts = min(self.learning_starts, 20)
        self.updates = min(self.updates, 5)
        self.update_warmup = min(self.update_warmup, 1)
        self.repeats = 1

    def networks(self) -> list[NetworkSpec]:
        """``tasks`` read (unique, in order)."""
        return list(dict.fromkeys(NetworkSpec.parse(text, TASK_HIDDEN, tuple(_DEFAULTS.hidden))
                                  for text in self.tasks))

    def variants(self) -> list[LearnerVariant]:
        """``learners`` read (unique, in order)."""
        return list(dict.fromkeys(LearnerVariant.parse(text) for text in self.learners))

    def validate(self) -> None:
        """Check the options.

        Raises:
            ValueError: Naming the bad option and the fix.
        """
        for name in ("steps", "threads", "repeats", "updates"):
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
        if not self.tasks:
            raise ValueError("--tasks needs at least one Gymnasium id")
        if not self.learners:
            raise ValueError("--learners needs at least one learner, e.g. feedback")
        self.networks()
        self.variants()
        parse_batches(self.batches)


def parse_args(argv: list[str] | None = None) -> Args:
    """Build :class:`Args` from the command line (one flag per field, help from the field docs)."""
    parser = config_parser(Args, __doc__.split("\n\n")[0] if __doc__ else None)
    values = vars(parser.parse_args(argv))
    for name in ("tasks", "learners", "batches", "num_envs"):
        values[name] = tuple(values[name])
    args = Args(**values)
    if args.quick:
        args.apply_quick()
    try:
        args.validate()
    except ValueError as error:
        parser.error(str(error))
    return args


# ---------------------------------------------------------------------------- helpers
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
    """Accumulates wall and CPU time per part of a loop, from wrappers around bound methods.

    A call made while another timed call is running (e.g. a wrapped method calling another)
    is counted in the outer part only, so the parts never overlap. CPU time is this process's
    (``time.process_time``), which other jobs on a shared machine stretch much less than the wall clock.
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = dict.fromkeys(PARTS, 0.0)
        self.cpu_seconds: dict[str, float] = dict.fromkeys(PARTS, 0.0)
        self.calls: dict[str, int] = dict.fromkeys(PARTS, 0)
        self._active = False

    def wrap(self, part: str, function: Callable[..., Any]) -> Callable[..., Any]:
        """``function`` with its time added to ``part``."""

        def timed(*args: Any, **kwargs: Any) -> Any:
            if self._active:
                return function(*args, **kwargs)
            self._active = True
            start, cpu_start = time.perf_counter(), time.process_time()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[part] += time.perf_counter() - start
                self.cpu_seconds[part] += time.process_time() - cpu_start
                self.calls[part] += 1
                self._active = False

        return timed

    def split(self, total: float, steps: int, cpu_total: float | None = None) -> dict[str, Any]:
        """The split of ``total`` seconds (and ``cpu_total`` CPU seconds) over ``steps`` task steps.

        Bookkeeping is the rest; ``*_outside_update`` is everything but sample+update per task step.
        """
        split: dict[str, Any] = {"steps": steps, "wall_s": total, "steps_per_s": steps / total}
        timings = [("", self.seconds, total)]
        if cpu_total is not None:
            timings.append(("cpu_", self.cpu_seconds, cpu_total))
        for prefix, measured, whole in timings:
            seconds = {**measured, "bookkeeping": whole - sum(measured[p] for p in PARTS if p != "bookkeeping")}
            split[f"{prefix}us_per_step"] = {**{p: 1e6 * seconds[p] / steps for p in PARTS},
                                             "total": 1e6 * whole / steps}
            split[f"{prefix}us_per_step_outside_update"] = 1e6 * (whole - seconds["sample_update"]) / steps
            if not prefix:
                split["share"] = {p: seconds[p] / whole for p in PARTS}
        split["calls"] = {p: self.calls[p] for p in PARTS if p != "bookkeeping"}
        split["us_per_call"] = {p: 1e6 * self.seconds[p] / self.calls[p] for p in PARTS
                                if p != "bookkeeping" and self.calls[p]}
        return split


# ---------------------------------------------------------------------------- the three loops
def buffer_size(args: Args) -> int:
    """Replay capacity of every method: ``min(100 000, steps)`` (SB3's baseline caps its buffer at the budget)."""
    return min(_DDPG_DEFAULTS.buffer_size, args.steps)


def train_config(args: Args, network: NetworkSpec, variant: LearnerVariant, batch: int, out: str,
                 num_envs: int = 1) -> TrainConfig:
    """``neuron-env train``'s defaults on ``network`` for ``variant``, with the benchmark's steps, threads and batch.

    With ``num_envs`` copies the run lasts ``steps // num_envs`` vector steps (``--steps``
    transitions) and the trainer keeps one update per transition.
    """
    return TrainConfig(
        task=network.task, learner=variant.learner, hidden=list(network.hidden), steps=args.steps // num_envs,
        learning_starts=args.learning_starts // num_envs, num_envs=num_envs, device="cpu", seed=args.seed,
        threads=args.threads,
        eval_every=0, checkpoint_every=args.steps, progress=False, tensorboard=False, out=out,
        learner_options=variant.options_at(batch, buffer_size(args)),
    )


def build_trainer(args: Args, network: NetworkSpec, variant: LearnerVariant, batch: int, out: str,
                  num_envs: int = 1) -> Trainer:
    """The trainer of the local loop, its final evaluation and checkpoint replaced by no-ops."""
    trainer = Trainer(train_config(args, network, variant, batch, out, num_envs))
    trainer._evaluate = lambda: np.zeros(1)  # type: ignore[method-assign]
    trainer.save = lambda elapsed: None  # type: ignore[method-assign]
    return trainer


def build_sb3(args: Args, network: NetworkSpec, batch: int, num_envs: int = 1) -> Any:
    """SB3 DDPG on ``network``: same hidden sizes, activation, batch size and ``learning_starts``.

    With ``num_envs`` copies: ``make_vec_env(n_envs=num_envs)``, one gradient step per transition
    (``gradient_steps=-1``) and the action noise drawn per copy.
    """
    from neuron_env.baselines.sb3_ddpg import BaselineConfig, build_model

    config = BaselineConfig(
        task=network.task, hidden=network.hidden, activation=_DEFAULTS.activation, steps=args.steps,
        learning_starts=args.learning_starts, batch_size=batch, train_freq=1,
        gradient_steps=1 if num_envs == 1 else -1,
        seed=args.seed, device="cpu", threads=args.threads, tensorboard=False, save_model=False, progress=False,
    )
    if num_envs == 1:
        return build_model(config)[0]
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.noise import VectorizedActionNoise

    model, _ = build_model(config, make_vec_env(network.task, n_envs=num_envs, seed=args.seed))
    model.action_noise = VectorizedActionNoise(model.action_noise, num_envs)
    return model


def build_torch(args: Args, network: NetworkSpec, batch: int) -> ReferenceLoop:
    """The plain-torch DDPG's loop on ``network``: same widths (actor and critic), activation, batch and buffer."""
    return ReferenceLoop(network.task, ReferenceConfig(hidden=network.hidden, activation=_DEFAULTS.activation,
                                                       batch_size=batch, buffer_size=buffer_size(args),
                                                       seed=args.seed))


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


def profile_torch(loop: ReferenceLoop) -> PartTimer:
    """Wrap the reference loop's acting, env step, storing and update with timers (on the instances)."""
    timer = PartTimer()
    loop.act = timer.wrap("act", loop.act)  # type: ignore[method-assign]
    loop.env.step = timer.wrap("env_step", loop.env.step)  # type: ignore[method-assign]
    loop.agent.store = timer.wrap("store", loop.agent.store)  # type: ignore[method-assign]
    loop.agent.update = timer.wrap("sample_update", loop.agent.update)  # type: ignore[method-assign]
    return timer


@dataclass
class LoopRun:
    """One timed training loop."""

    wall_s: float
    """Wall-clock seconds."""
    cpu_s: float
    """CPU seconds of this process (``time.process_time``) over the same span."""
    handle: Any
    """The trainer, SB3 model or reference loop that ran (its learner, buffers and counters)."""
    split: dict[str, Any] | None = None
    """The profile split (``PartTimer.split``) of a profiled run."""


def timed(run: Callable[[], Any]) -> tuple[float, float]:
    """``(wall seconds, CPU seconds of this process)`` of ``run()``."""
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu


def run_local(args: Args, network: NetworkSpec, variant: LearnerVariant, batch: int, profile: bool = False,
              num_envs: int = 1) -> LoopRun:
    """One local training loop."""
    with tempfile.TemporaryDirectory(prefix="loop-throughput-") as out:
        trainer = build_trainer(args, network, variant, batch, out, num_envs)
        timer = profile_trainer(trainer) if profile else None
        wall, cpu = timed(trainer.run)
    return LoopRun(wall, cpu, trainer, timer.split(wall, args.steps, cpu) if timer is not None else None)


def run_sb3(args: Args, network: NetworkSpec, batch: int, profile: bool = False, num_envs: int = 1) -> LoopRun:
    """One SB3 DDPG training loop."""
    model = build_sb3(args, network, batch, num_envs)
    timer = profile_sb3(model) if profile else None
    wall, cpu = timed(lambda: model.learn(total_timesteps=args.steps, log_interval=None))
    model.env.close()
    return LoopRun(wall, cpu, model, timer.split(wall, args.steps, cpu) if timer is not None else None)


def run_torch(args: Args, network: NetworkSpec, batch: int, profile: bool = False) -> LoopRun:
    """One plain-torch DDPG training loop."""
    loop = build_torch(args, network, batch)
    timer = profile_torch(loop) if profile else None
    wall, cpu = timed(lambda: loop.run(args.steps, args.learning_starts))
    loop.close()
    return LoopRun(wall, cpu, loop, timer.split(wall, args.steps, cpu) if timer is not None else None)


# ---------------------------------------------------------------------------- updates and replay
def time_updates(args: Args, windows: dict[str, Callable[[int], Any]]
                 ) -> dict[str, tuple[list[float], list[float]]]:
    """Updates/s of every method, windows interleaved: ``{method: ([per wall s], [per CPU s]) per repeat}``.

    Args:
        args: The configuration (``updates`` per window, ``update_warmup``, ``repeats``).
        windows: ``{method: run(n)}``, where ``run(n)`` makes ``n`` updates.
    """
    if args.update_warmup:
        for window in windows.values():
            window(args.update_warmup)
    rates: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in windows}
    for _ in range(args.repeats):
        for name, window in windows.items():
            wall, cpu = timed(lambda w=window: w(args.updates))
            rates[name][0].append(args.updates / wall)
            rates[name][1].append(args.updates / max(cpu, 1e-9))
    return rates


def repeated(update: Callable[[], Any]) -> Callable[[int], None]:
    """``run(n)``: ``n`` calls of ``update``."""
    def run(count: int) -> None:
        for _ in range(count):
            update()

    return run


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
    """Replay bytes at 17-400-300-6 (723 neurons) from buffers of capacity 16 (no loop run), first variant."""
    from stable_baselines3.common.buffers import ReplayBuffer

    task, obs_dim, hidden, act_dim = REFERENCE_NETWORK
    topology = Topology.mlp(obs_dim, list(hidden), act_dim, activation=_DEFAULTS.activation)
    variant = args.variants()[0]
    config = train_config(args, NetworkSpec(task, hidden), variant, variant.default_batch() or 1, "")
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


# ---------------------------------------------------------------------------- one network and batch
def time_loops(args: Args, network: NetworkSpec, batch: int, members: list[tuple[LearnerVariant, str]],
               log: Callable[[str], None]) -> dict[str, list[LoopRun]]:
    """``--repeats`` rounds of every method's loop (locals, SB3, torch, alternating).

    Returns:
        ``{method: [LoopRun per repeat]}``.
    """
    runs: dict[str, Callable[[], LoopRun]] = {
        variant.method: (lambda v=variant: run_local(args, network, v, batch)) for variant, _ in members}
    runs[SB3] = lambda: run_sb3(args, network, batch)
    runs[TORCH] = lambda: run_torch(args, network, batch)
    done: dict[str, list[LoopRun]] = {name: [] for name in runs}
    for repeat in range(args.repeats):
        for name, run in runs.items():
            done[name].append(run())
        log(f"[{network} batch {batch}] repeat {repeat + 1}/{args.repeats}: " + ", ".join(
            f"{name} {r[-1].wall_s:,.1f} s ({r[-1].cpu_s:,.1f} CPU)" for name, r in done.items()))
    return done


def add_ratios(figures: dict[str, dict[str, Any]], rate: str, cpu_rate: str) -> None:
    """Each method's ``rate`` over SB3's and torch-ddpg's (``ratio_vs_*``), and of ``cpu_rate`` (``cpu_ratio_vs_*``)."""
    for key, prefix in ((rate, ""), (cpu_rate, "cpu_")):
        sb3, reference = figures[SB3][key], figures[TORCH][key]
        for values in figures.values():
            values[f"{prefix}ratio_vs_sb3"] = values[key] / sb3
            values[f"{prefix}ratio_vs_torch"] = values[key] / reference


def time_copies(args: Args, network: NetworkSpec, variant: LearnerVariant, batch: int,
                log: Callable[[str], None]) -> list[dict[str, Any]]:
    """The E > 1 rows: ``variant`` with ``--num-envs E`` against SB3 DDPG with ``n_envs=E`` (UTD 1 both)."""
    copies = []
    for num_envs in sorted(set(args.num_envs) - {1}):
        local_runs, sb3_runs = [], []
        for _ in range(args.repeats):
            local_runs.append(run_local(args, network, variant, batch, num_envs=num_envs))
            sb3_runs.append(run_sb3(args, network, batch, num_envs=num_envs))
        transitions = (args.steps // num_envs) * num_envs
        local_rate = transitions / statistics.median(r.wall_s for r in local_runs)
        sb3_rate = args.steps / statistics.median(r.wall_s for r in sb3_runs)
        copies.append({"num_envs": num_envs, "transitions": transitions, "batch_size": batch,
                       variant.method: {"transitions_per_s": local_rate,
                                        "updates": local_runs[-1].handle.learner.num_updates},
                       SB3: {"transitions_per_s": sb3_rate, "updates": int(sb3_runs[-1].handle._n_updates)},
                       "ratio_local_vs_sb3": local_rate / sb3_rate})
        log(f"[{network}] {num_envs} copies: {variant.method} {local_rate:,.0f}, {SB3} {sb3_rate:,.0f} transitions/s")
    return copies


def bench_setting(args: Args, network: NetworkSpec, batch: int, members: list[tuple[LearnerVariant, str]],
                  first_of_network: bool, log: Callable[[str], None]) -> dict[str, Any]:
    """Loop steps/s and updates/s of every method at one network and batch (replay, copies, profile: see module doc).

    Replay bytes and the E-copies rows are measured at a network's first batch only (``None``/``[]``
    at the others): they do not depend on the batch, or are timed once.
    """
    done = time_loops(args, network, batch, members, log)
    last = {name: runs[-1].handle for name, runs in done.items()}
    sources = {variant.method: source for variant, source in members} | {SB3: REFERENCE_BATCH,
                                                                            TORCH: REFERENCE_BATCH}
    first_variant, _ = members[0]
    trainer: Trainer = last[first_variant.method]
    topology = trainer.topology
    loop: dict[str, dict[str, Any]] = {}
    for name, runs in done.items():
        rates = [args.steps / r.wall_s for r in runs]
        cpu_rates = [args.steps / r.cpu_s for r in runs]
        figures: dict[str, Any] = {"steps_per_s": statistics.median(rates), "repeats_steps_per_s": rates,
                                   "wall_s": statistics.median(r.wall_s for r in runs),
                                   "steps_per_cpu_s": statistics.median(cpu_rates),
                                   "cpu_s": statistics.median(r.cpu_s for r in runs), "batch_size": batch,
                                   "batch_source": sources[name]}
        if name == SB3:
            figures["updates"] = int(last[name]._n_updates)
        elif name == TORCH:
            figures["updates"] = last[name].agent.num_updates
        else:
            figures.update(updates=last[name].learner.num_updates, granularity=last[name].learner.granularity,
                           learner=last[name].config.learner, options=dict(last[name].config.learner_options))
        loop[name] = figures
    add_ratios(loop, "steps_per_s", "steps_per_cpu_s")
    result: dict[str, Any] = {
        "task": network.task,
        "hidden": list(network.hidden),
        "network": network_label(topology.obs_dim, network.hidden, topology.act_dim),
        "batch_size": batch,
        "neurons": topology.num_neurons,
        "agents": topology.num_agents,
        "activation": _DEFAULTS.activation,
        "loop": loop,
        "notes": [],
    }

    # updates/s on the buffers the last runs filled
    windows: dict[str, Callable[[int], Any]] = {}
    for variant, _ in members:
        learner = last[variant.method].learner
        if bool(getattr(learner, "off_policy", False)) and learner.ready():
            windows[variant.method] = repeated(learner.update)
        else:
            result["notes"].append(f"learner {variant.method!r} is not off-policy (its update() consumes a rollout): "
                                   "no updates/s")
    model = last[SB3]
    windows[SB3] = lambda n: model.train(gradient_steps=n, batch_size=batch)
    windows[TORCH] = repeated(last[TORCH].agent.update)
    threads_before = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        rates = time_updates(args, windows)
    finally:
        torch.set_num_threads(threads_before)
    updates: dict[str, Any] = {"batch_size": batch, "updates_per_window": args.updates}
    for name, (wall_rates, cpu_rates) in rates.items():
        rate, cpu_rate = statistics.median(wall_rates), statistics.median(cpu_rates)
        updates[name] = {"updates_per_s": rate, "ms_per_update": 1000.0 / rate, "repeats_updates_per_s": wall_rates,
                         "updates_per_cpu_s": cpu_rate, "cpu_ms_per_update": 1000.0 / cpu_rate,
                         "repeats_updates_per_cpu_s": cpu_rates, "batch_size": batch, "batch_source": sources[name]}
    add_ratios({k: v for k, v in updates.items() if isinstance(v, dict)}, "updates_per_s", "updates_per_cpu_s")
    result["updates"] = updates
    log(f"[{network} batch {batch}] updates/s: " + ", ".join(
        f"{k} {v['updates_per_s']:,.1f}" for k, v in updates.items() if isinstance(v, dict)))

    result["replay"] = None
    result["copies"] = []
    if first_of_network:
        learner = trainer.learner
        replay = replay_row(local_replay_bytes(learner), sb3_replay_bytes(model.replay_buffer),
                            f"the buffers of the timed runs ({first_variant.method} and {SB3})")
        replay["local_checkpoint_bytes_without_replay"] = checkpoint_bytes_without_replay(learner)
        if replay["local"] is None:
            result["notes"].append(f"learner {first_variant.method!r} has no replay buffer: no local replay bytes")
        result["replay"] = replay
        result["copies"] = time_copies(args, network, first_variant, batch, log)

    if args.profile:
        result["profile"] = {first_variant.method: run_local(args, network, first_variant, batch, profile=True).split,
                             SB3: run_sb3(args, network, batch, profile=True).split,
                             TORCH: run_torch(args, network, batch, profile=True).split}
        log(f"[{network} batch {batch}] profiled")
    return result


def run_benchmark(args: Args, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run every measurement on every network and batch; the results (what :func:`main` writes as JSON).

    Args:
        args: The configuration.
        log: Progress lines go here (default: stderr).

    Returns:
        ``{"config", "machine", "tasks": [results per network and batch], "replay_723", "skipped",
        "notes", "load_average_1min_end", "wall_time_s"}``.

    Raises:
        ValueError: On an invalid option.
    """
    if log is None:
        def log(line: str) -> None:
            print(line, file=sys.stderr, flush=True)
    args.validate()
    start = time.perf_counter()
    threads_before = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    plan = batch_plan(args.variants(), parse_batches(args.batches), fallback=_DDPG_DEFAULTS.batch_size)
    results: dict[str, Any] = {"config": dataclasses.asdict(args), "machine": machine_info(args.threads),
                               "plan": {str(batch): [[variant.method, source] for variant, source in members]
                                        for batch, members in plan.items()},
                               "tasks": [], "skipped": [], "notes": []}
    try:
        for network in args.networks():
            problem = task_problem(network.task)
            if problem is not None:
                message = f"{network.task}: its environment cannot be made ({problem}); task skipped"
                if "mujoco" in problem.lower():
                    message += " (install MuJoCo: pip install 'gymnasium[mujoco]')"
                results["skipped"].append(message)
                log(f"[{network.task}] skipped: {problem}")
                continue
            for index, (batch, members) in enumerate(plan.items()):
                results["tasks"].append(bench_setting(args, network, batch, members, index == 0, log))
        reference = next((t for t in results["tasks"] if t["replay"] is not None and t["network"] == network_label(
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
    """The results as plain-text tables: loop, copies, updates, replay bytes, profile, then the machine."""
    config = results["config"]
    lines = [f"Training loop, {config['steps']:,} task steps (learning_starts {config['learning_starts']:,}), one "
             f"update per step, {config['threads']} thread(s), median of {config['repeats']}; batches "
             f"{' '.join(config['batches'])} (local: the learner's own default or a fixed batch; SB3 and torch: the "
             "batch of the learners beside them)"]
    rows: list[tuple[str, ...]] = [("task", "network", "batch", "method", "batch from", "steps/s", "x SB3",
                                    "x torch", "steps/CPU s", "CPU x SB3", "CPU x torch")]
    for task in results["tasks"]:
        for method, figures in task["loop"].items():
            rows.append((task["task"], f"{task['network']} ({task['neurons']} neurons)", str(task["batch_size"]),
                         method, figures["batch_source"], f"{figures['steps_per_s']:,.1f}",
                         f"{figures['ratio_vs_sb3']:.2f}x", f"{figures['ratio_vs_torch']:.2f}x",
                         f"{figures['steps_per_cpu_s']:,.1f}", f"{figures['cpu_ratio_vs_sb3']:.2f}x",
                         f"{figures['cpu_ratio_vs_torch']:.2f}x"))
    lines += _table(rows, 5)
    if any(task.get("copies") for task in results["tasks"]):
        lines.append("\nLoop with E task copies, one update per transition on both sides (local: --num-envs E; "
                     "SB3: n_envs=E, gradient_steps=-1); transitions/s")
        rows = [("task", "batch", "E", "local", "SB3 DDPG", "local / SB3")]
        for task in results["tasks"]:
            for copy in task.get("copies", []):
                local = next(v for k, v in copy.items() if k.startswith("local-"))
                rows.append((task["task"], str(copy["batch_size"]), str(copy["num_envs"]),
                             f"{local['transitions_per_s']:,.1f}", f"{copy[SB3]['transitions_per_s']:,.1f}",
                             f"{copy['ratio_local_vs_sb3']:.2f}x"))
        lines += _table(rows, 2)

    lines.append(f"\nUpdates on the filled buffers, {config['updates']} per window after {config['update_warmup']} "
                 "warm-up (local: learner.update(); SB3: model.train(gradient_steps, batch_size); torch: "
                 "ReferenceDDPG.update())")
    rows = [("task", "network", "batch", "method", "ms/update", "updates/s", "x SB3", "x torch", "CPU ms/upd",
             "CPU x SB3", "CPU x torch")]
    for task in results["tasks"]:
        for method, figures in task["updates"].items():
            if isinstance(figures, dict):
                rows.append((task["task"], task["network"], str(task["batch_size"]), method,
                             f"{figures['ms_per_update']:.2f}", f"{figures['updates_per_s']:,.1f}",
                             f"{figures['ratio_vs_sb3']:.2f}x", f"{figures['ratio_vs_torch']:.2f}x",
                             f"{figures['cpu_ms_per_update']:.2f}", f"{figures['cpu_ratio_vs_sb3']:.2f}x",
                             f"{figures['cpu_ratio_vs_torch']:.2f}x"))
    lines += _table(rows, 4)

    lines.append("\nReplay bytes per transition (local: buffer tensors' bytes / capacity; SB3: arrays' nbytes / "
                 "buffer_size)")
    rows = [("network", "neurons", "local B", "SB3 B", "local / SB3", "checkpoint w/o replay", "source")]
    replays = [(f"{t['task']} {t['network']}", t["neurons"], t["replay"]) for t in results["tasks"] if t["replay"]]
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
        lines.append(f"\nProfile, {task['task']} {task['network']}, batch {task['batch_size']} (one more run of each "
                     "loop, timers wrapped around the instances' methods; us per task step, wall and CPU, and share)")
        methods = list(profile)
        cpu = all("cpu_us_per_step" in profile[m] for m in methods)  # results written before CPU time have none
        rows = [("part", *[f"{m} us/step" for m in methods], *[f"{m} CPU us/step" for m in methods if cpu],
                 *[f"{m} share" for m in methods])]
        for part in PARTS:
            rows.append((PART_NAMES[part], *[f"{profile[m]['us_per_step'][part]:,.1f}" for m in methods],
                         *[f"{profile[m]['cpu_us_per_step'][part]:,.1f}" for m in methods if cpu],
                         *[f"{100 * profile[m]['share'][part]:.1f} %" for m in methods]))
        rows.append(("total", *[f"{profile[m]['us_per_step']['total']:,.1f}" for m in methods],
                     *[f"{profile[m]['cpu_us_per_step']['total']:,.1f}" for m in methods if cpu],
                     *["" for _ in methods]))
        if all("us_per_step_outside_update" in profile[m] for m in methods):
            rows.append(("outside the update (total - sample+update)",
                         *[f"{profile[m]['us_per_step_outside_update']:,.1f}" for m in methods],
                         *[f"{profile[m]['cpu_us_per_step_outside_update']:,.1f}" for m in methods if cpu],
                         *["" for _ in methods]))
        rows.append(("(profiled run: steps/s)", *[f"{profile[m]['steps_per_s']:,.1f}" for m in methods],
                     *["" for m in methods if cpu], *["" for _ in methods]))
        lines += _table(rows, 1)

    for task in results["tasks"]:
        lines += [f"note: {task['task']} batch {task['batch_size']}: {note}" for note in task["notes"]]
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
