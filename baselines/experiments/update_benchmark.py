"""Update throughput: ``LocalDDPG.update()`` against Stable-Baselines3 DDPG's ``train()``, same network, same run.

What it measures
----------------
One learning update of the whole network, timed alone (no environment stepping):

* **local-<kind>**: ``LocalDDPG.update()`` for each critic kind (``linear``, ``compatible``,
  ``bilinear``, ``mlp``) on ``Topology.mlp(17, [400, 300], 6)`` (the DDPG paper's
  17-400-300-6 HalfCheetah actor; every one of its 706 neurons is trained per update),
  ``settled`` granularity, batch 256, replay sampling included;
* **sb3-ddpg**: SB3 DDPG's ``model.train(gradient_steps=1, batch_size=256)`` (one critic step,
  one actor step, Polyak targets, replay sampling included) with ``net_arch=[400, 300]`` and the
  same activation, built on ``HalfCheetah-v5`` (observation 17, action 6).

Both replay buffers are pre-filled with random transitions (``--buffer-fill`` of them) before
timing, so only the update is timed. Each method gets ``--warmup`` untimed updates per setting;
then ``--repeats`` timed windows of at least ``--duration`` seconds each, interleaved across
methods (so a slow spell of the shared machine hits every method), and the median rate is
reported: **updates/s** and **transitions/s** (updates/s × batch size; one transition is one
task step of the whole network for both). The ratio local / SB3 is printed per critic kind.

**Work per update.** ``torch.profiler`` (``with_flops``) counts the floating-point operations
of every matrix product in an update (``GFLOP/upd``), and ``GFLOP/s`` is that count at the
measured rate. The ratio of two methods' counts is what one can gain over the other when both
run their products equally fast; a method far below the other's GFLOP/s has overhead to cut.

Settings, all in the same run:

* CPU with 1 torch thread and with all threads (``torch.set_num_threads``; ``--threads 1 0``,
  0 meaning ``os.cpu_count()``);
* CUDA where present (``--device cpu cuda``, the default; both learners and SB3's networks on
  the GPU, SB3's numpy replay buffer stays on the host as SB3 keeps it). On a CPU-only machine
  the CUDA rows are skipped with a note.

**Targets: ``linear`` >= 3x SB3 DDPG on CPU (each thread setting), >= 20x on GPU.** The table
says met / NOT met for each, whatever the numbers are.

Memory
------
* **Replay memory for 10^6 transitions**: bytes per row of the learner's buffer tensors
  (``voltages``, ``actions``, ``rewards``, ``next_voltages``, ``terminated``, read off the
  allocated tensors of the benchmark's buffer: shape × dtype size) times 10^6, *computed, not
  allocated* (it would take several GB); SB3's buffer the same way from its numpy arrays.
* **Peak memory of an update**: on CPU the growth of the resident set size (RSS, via psutil,
  sampled every millisecond by a thread) over the first ``--memory-updates`` updates of each
  method, each in a *fresh* Python process with 1 thread (``--memory-mode subprocess``, the
  default; it includes optimizer state created lazily at the first step: SB3's Adam moments and
  the ``mlp`` critics'). In one long process the C heap keeps what torch freed, so later updates
  reuse it and show no growth; ``--memory-mode in-process`` (``--quick``'s) measures that way
  anyway, after the timing, as a lower bound. tracemalloc cannot see torch's allocations. On
  CUDA ``torch.cuda.max_memory_allocated()`` over those updates minus the memory allocated
  before them (exact, for torch's caching allocator), in the benchmark's own process.

How to run
----------
The module runs as a script, from any installed copy of the package; from a checkout of the
repository, ``benchmarks/update_throughput.py`` is the same command (a thin entry that calls
:func:`main`), and ``neuron-env experiment throughput`` (E3) runs the same measurement and adds
a bar chart. Full run (about a minute on two cores, CPU only)::

    python -m neuron_env.baselines.experiments.update_benchmark
    python benchmarks/update_throughput.py      # the same, from a checkout

Smoke run (about 20 s)::

    python -m neuron_env.baselines.experiments.update_benchmark --quick

On a GPU machine, only the CUDA rows::

    python -m neuron_env.baselines.experiments.update_benchmark --device cuda

Other flags: ``--critics``, ``--hidden``, ``--batch-size``, ``--threads``, ``--duration``,
``--repeats``, ``--warmup``, ``--buffer-fill``, ``--no-check-finite``, ``--out`` (``--help``).

Timings are wall-clock: run on an otherwise idle machine (the JSON records the load average
at start and end).

Python
------
:func:`run_benchmark` is the reusable core (the ``throughput`` experiment, E3, calls it)::

    from neuron_env.baselines.experiments.update_benchmark import Args, run_benchmark

    results = run_benchmark(Args(quick=True, device=("cpu",)))
    print(results["settings"][0]["methods"]["local-linear"]["updates_per_s"])

Output
------
A table on stdout and a JSON file (default ``benchmarks/results/update_throughput.json``, relative
to the current directory) with the configuration, every rate and ratio, the target checks, the
memory figures, the skipped settings and the machine (versions, CPU count, platform, GPU name,
load average, date).

One module: one benchmark (settings, timing, table, JSON and command line), runnable alone.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import torch
from neuron_env.agents import LocalDDPG
from neuron_env.agents.critics import CRITIC_KINDS

from neuron_env import Topology
from neuron_env.configs import field_docs
from neuron_env.run_output import load_average_1min, machine_info, publish

CPU_TARGET = 3.0
GPU_TARGET = 20.0
MEMORY_TRANSITIONS = 1_000_000
SB3 = "sb3-ddpg"
#: The module :func:`peak_memory_in_subprocess` runs in a fresh process (``python -m``).
MODULE = "neuron_env.baselines.experiments.update_benchmark"
#: Fields of :class:`Args` that are tuples (lists in JSON and on the command line).
TUPLE_FIELDS: tuple[str, ...] = ("hidden", "critics", "device", "threads")

_ArgsT = TypeVar("_ArgsT", bound="Args")


@dataclass
class Args:
    """Benchmark configuration (every field is a command-line flag)."""

    task: str = "HalfCheetah-v5"
    """Task SB3's model is built on (its observation and action sizes set the network's ends)."""
    hidden: tuple[int, ...] = (400, 300)
    """Hidden sizes of the actor (and of SB3's critic)."""
    activation: str = "tanh"
    """Hidden activation of both networks (the output layer is tanh in both)."""
    critics: tuple[str, ...] = CRITIC_KINDS
    """LocalDDPG critic kinds to time."""
    critic_hidden: int = 32
    """Hidden units of the ``mlp`` sub-critics (LocalDDPG's default)."""
    batch_size: int = 256
    """Transitions per update, for every method."""
    device: tuple[str, ...] = ("cpu", "cuda")
    """Devices to time; ``cuda`` is skipped with a note where CUDA is absent."""
    threads: tuple[int, ...] = (1, 0)
    """CPU torch thread counts to time (0: all, ``os.cpu_count()``); CUDA runs use all threads."""
    buffer_fill: int = 10_000
    """Random transitions pre-filled into each replay buffer."""
    warmup: int = 10
    """Untimed updates per method and setting before timing."""
    duration: float = 1.0
    """Minimum seconds of one timed window (whole updates; at least ``min_updates``)."""
    min_updates: int = 3
    """Minimum updates of one timed window."""
    repeats: int = 3
    """Timed windows per method and setting, interleaved across methods; the median is reported."""
    memory_updates: int = 5
    """Updates over which the peak memory of an update is measured (per method and device)."""
    memory_mode: str = "subprocess"
    """CPU peak memory: ``subprocess`` (a fresh process per method, 1 thread) or ``in-process`` (after timing)."""
    check_finite: bool = True
    """``LocalDDPG.update(check_finite=...)``: the trainer's default (one device sync per update)."""
    seed: int = 0
    """Seed of both learners and of the random transitions."""
    quick: bool = False
    """Smoke run (about 20 s): short windows, one repeat, a small buffer."""
    out: str = "benchmarks/results/update_throughput.json"
    """Where to write the JSON results (empty: do not write)."""
    targets: dict[str, float] = field(default_factory=lambda: {"cpu": CPU_TARGET, "cuda": GPU_TARGET})
    """Target ratio local-linear / sb3-ddpg per device kind (not a flag)."""

    @classmethod
    def from_dict(cls: type[_ArgsT], values: Mapping[str, Any]) -> _ArgsT:
        """An instance from ``{field name: value}``; the lists of JSON or argparse become the tuple fields' tuples.

        Args:
            values: Field values (any subset of the fields; the others keep their defaults).

        Raises:
            TypeError: On a key that is not a field.
        """
        values = dict(values)
        for name in TUPLE_FIELDS:
            if name in values:
                values[name] = tuple(values[name])
        return cls(**values)

    def apply_quick(self) -> None:
        """Shrink every count for a smoke run."""
        self.buffer_fill = min(self.buffer_fill, 1000)
        self.warmup = min(self.warmup, 2)
        self.duration = min(self.duration, 0.15)
        self.min_updates = 1
        self.repeats = 1
        self.memory_updates = min(self.memory_updates, 2)
        self.memory_mode = "in-process"

    def validate(self) -> None:
        """Check the options.

        Raises:
            ValueError: Naming the bad option.
        """
        unknown = [k for k in self.critics if k not in CRITIC_KINDS]
        if unknown:
            raise ValueError(f"critics {unknown} are unknown; choose from {CRITIC_KINDS}")
        bad_devices = [d for d in self.device if d not in ("cpu", "cuda")]
        if bad_devices:
            raise ValueError(f"device {bad_devices} is unknown; choose cpu and/or cuda")
        for name in ("batch_size", "buffer_fill", "min_updates", "repeats", "critic_hidden"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be >= 1")
        if self.warmup < 0 or self.memory_updates < 0 or self.duration < 0:
            raise ValueError("warmup, memory_updates and duration must be >= 0")
        if self.memory_mode not in ("subprocess", "in-process"):
            raise ValueError(f"memory_mode={self.memory_mode!r} must be 'subprocess' or 'in-process'")
        if any(t < 0 for t in self.threads):
            raise ValueError(f"threads {self.threads} must be >= 0 (0: all)")


def parse_args(argv: list[str] | None = None) -> Args:
    """Build :class:`Args` from the command line (one flag per field, help from the field docs)."""
    docs = field_docs(Args)
    defaults = Args()
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--task", default=defaults.task, help=docs["task"])
    parser.add_argument("--hidden", type=int, nargs="+", default=list(defaults.hidden), help=docs["hidden"])
    parser.add_argument("--activation", default=defaults.activation, choices=("tanh", "relu", "sigmoid"),
                        help=docs["activation"])
    parser.add_argument("--critics", nargs="+", default=list(defaults.critics), choices=CRITIC_KINDS,
                        help=docs["critics"])
    parser.add_argument("--device", nargs="+", default=list(defaults.device), choices=("cpu", "cuda"),
                        help=docs["device"])
    parser.add_argument("--threads", type=int, nargs="+", default=list(defaults.threads), help=docs["threads"])
    for name in ("critic_hidden", "batch_size", "buffer_fill", "warmup", "min_updates", "repeats",
                 "memory_updates", "seed"):
        parser.add_argument("--" + name.replace("_", "-"), type=int, default=getattr(defaults, name), help=docs[name])
    parser.add_argument("--duration", type=float, default=defaults.duration, help=docs["duration"])
    parser.add_argument("--check-finite", action=argparse.BooleanOptionalAction, default=defaults.check_finite,
                        help=docs["check_finite"])
    parser.add_argument("--memory-mode", choices=("subprocess", "in-process"), default=defaults.memory_mode,
                        help=docs["memory_mode"])
    parser.add_argument("--quick", action="store_true", help=docs["quick"])
    parser.add_argument("--out", default=defaults.out, help=docs["out"])
    args = Args.from_dict(vars(parser.parse_args(argv)))
    if args.quick:
        args.apply_quick()
    try:
        args.validate()
    except ValueError as error:
        parser.error(str(error))
    return args


# ------------------------------------------------------------------------------------ the learners
def _spaces_env(task: str) -> tuple[Any, str]:
    """SB3's training env: the task itself, or a stand-in with its spaces where it cannot be made.

    Returns:
        ``(env, note)``; the note is empty when the real task was made.
    """
    import gymnasium as gym

    try:
        return gym.make(task), ""
    except Exception as error:  # noqa: BLE001 - any failure (no mujoco, unknown id) falls back
        if task != Args.task:
            raise

        class Spaces(gym.Env):  # the HalfCheetah-v5 spaces, for machines without MuJoCo
            observation_space = gym.spaces.Box(-np.inf, np.inf, (17,), np.float64)
            action_space = gym.spaces.Box(-1.0, 1.0, (6,), np.float32)

            def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
                super().reset(seed=seed)
                return np.zeros(17), {}

            def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
                return np.zeros(17), 0.0, False, False, {}

        return Spaces(), f"{task} could not be made ({type(error).__name__}); SB3 built on a stand-in with its spaces"


def build_sb3(args: Args, device: str) -> tuple[Any, str]:
    """SB3 DDPG with ``net_arch=args.hidden``, its replay buffer filled with random transitions.

    Returns:
        ``(model, note)``.
    """
    from neuron_env.baselines.sb3_ddpg import BaselineConfig, build_model
    from stable_baselines3.common.monitor import Monitor

    env, note = _spaces_env(args.task)
    config = BaselineConfig(
        task=args.task, hidden=tuple(args.hidden), activation=args.activation, steps=args.buffer_fill,
        buffer_size=args.buffer_fill, batch_size=args.batch_size, learning_starts=0, seed=args.seed, device=device,
        threads=None, tensorboard=False, save_model=False, progress=False,
    )
    model, _ = build_model(config, env=Monitor(env))
    buffer = model.replay_buffer
    rng = np.random.default_rng(args.seed)
    shape = buffer.observations.shape
    buffer.observations[:] = rng.standard_normal(shape).astype(buffer.observations.dtype)
    buffer.next_observations[:] = rng.standard_normal(shape).astype(buffer.next_observations.dtype)
    buffer.actions[:] = rng.uniform(-1, 1, buffer.actions.shape).astype(buffer.actions.dtype)
    buffer.rewards[:] = rng.standard_normal(buffer.rewards.shape).astype(buffer.rewards.dtype)
    buffer.dones[:] = (rng.random(buffer.dones.shape) < 0.01).astype(buffer.dones.dtype)
    buffer.timeouts[:] = 0
    buffer.pos, buffer.full = 0, True
    return model, note


#: Critic input of the benchmark's rows: each neuron's presynaptic voltages, the draft's E^n observation (the
#: rows measured before learners took their config's defaults used it too).
BENCHMARK_CRITIC_CONTEXT = "presynaptic"


def build_local(args: Args, critic: str, device: str, obs_dim: int, act_dim: int) -> LocalDDPG:
    """A ``LocalDDPG`` on ``Topology.mlp(obs_dim, hidden, act_dim)``, its buffer filled with random transitions."""
    topology = Topology.mlp(obs_dim, list(args.hidden), act_dim, activation=args.activation)
    learner = LocalDDPG(topology, critic=critic, device=device, batch_size=args.batch_size,
                        buffer_size=args.buffer_fill, seed=args.seed, critic_hidden=args.critic_hidden,
                        critic_context=BENCHMARK_CRITIC_CONTEXT)
    fill_with_random_transitions(learner, topology, obs_dim, args.buffer_fill, args.seed)
    return learner


def fill_with_random_transitions(learner: Any, topology: Topology, obs_dim: int, count: int, seed: int) -> None:
    """Store ``count`` random transitions (uniform voltages and actions, Gaussian observations and rewards)."""
    generator = torch.Generator().manual_seed(seed)
    n, a = topology.num_neurons, topology.num_agents

    def voltages() -> torch.Tensor:
        v = torch.rand(count, n, generator=generator) * 2 - 1
        v[:, :obs_dim] = torch.randn(count, obs_dim, generator=generator)
        return v

    learner.store(voltages(), torch.rand(count, a, generator=generator) * 2 - 1,
                  torch.randn(count, generator=generator), voltages(),
                  (torch.rand(count, generator=generator) < 0.01).float())


def buffer_bytes_per_transition(learner: LocalDDPG) -> int:
    """Bytes of one row of the learner's replay tensors (shape × dtype size of the allocated buffer)."""
    buffer = learner.buffer
    tensors = (buffer.voltages, buffer.actions, buffer.rewards, buffer.next_voltages, buffer.terminated)
    return int(sum(t[0].numel() * t.element_size() for t in tensors))


def sb3_bytes_per_transition(model: Any) -> int:
    """Bytes of one row (one env) of SB3's replay arrays."""
    buffer = model.replay_buffer
    arrays = (buffer.observations, buffer.next_observations, buffer.actions, buffer.rewards, buffer.dones,
              buffer.timeouts)
    return int(sum(a[0].nbytes for a in arrays if a is not None))


# ------------------------------------------------------------------------------------ timing
def _synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def time_window(update: Callable[[], Any], device: str, duration: float, min_updates: int) -> float:
    """Updates per second over a window of at least ``duration`` s and ``min_updates`` updates."""
    _synchronize(device)
    start = time.perf_counter()
    count = 0
    while True:
        update()
        count += 1
        if count >= min_updates and time.perf_counter() - start >= duration:
            _synchronize(device)
            elapsed = time.perf_counter() - start
            if elapsed >= duration:
                return count / elapsed


def rss_bytes() -> int:
    """Resident set size of this process."""
    import psutil

    return int(psutil.Process().memory_info().rss)


def peak_update_memory(update: Callable[[], Any], device: str, updates: int) -> dict[str, Any]:
    """Peak memory growth over ``updates`` updates (see the module docstring for the method)."""
    if updates == 0:
        return {"peak_bytes": None, "method": "not measured"}
    if device == "cuda":
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        for _ in range(updates):
            update()
        torch.cuda.synchronize()
        return {"peak_bytes": int(torch.cuda.max_memory_allocated() - before),
                "method": "torch.cuda.max_memory_allocated - memory_allocated before"}
    try:
        before = rss_bytes()
    except ImportError:
        return {"peak_bytes": None, "method": "psutil missing"}
    peak = [before]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], rss_bytes())
            time.sleep(0.001)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        for _ in range(updates):
            update()
    finally:
        stop.set()
        sampler.join()
    peak[0] = max(peak[0], rss_bytes())
    return {"peak_bytes": int(peak[0] - before), "method": "RSS growth (psutil, sampled every 1 ms)"}


def memory_probe(args: Args, method: str) -> dict[str, Any]:
    """Peak memory of ``method``'s first ``args.memory_updates`` updates on CPU, 1 thread, in this process.

    Meant for a fresh process (see :func:`peak_memory_in_subprocess`): the C heap has not yet
    been grown by earlier updates, so the RSS growth shows the update's transient memory (plus
    any optimizer state created lazily at the first step: SB3's Adam and the ``mlp`` critics').
    """
    import gc

    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    if method == SB3:
        model, _ = build_sb3(args, "cpu")

        def update() -> Any:
            return model.train(gradient_steps=1, batch_size=args.batch_size)
    else:
        learner = build_local(args, method.removeprefix("local-"), "cpu", *_task_dims(args))

        def update() -> Any:
            return learner.update(check_finite=args.check_finite)
    gc.collect()
    figures = peak_update_memory(update, "cpu", args.memory_updates)
    figures["method"] += f", fresh process, first {args.memory_updates} updates, 1 thread"
    return figures


def peak_memory_in_subprocess(args: Args, method: str) -> dict[str, Any]:
    """Run :func:`memory_probe` for ``method`` in a fresh Python process; its result.

    The process runs this module from the installed package (``python -m`` :data:`MODULE`), so
    no source checkout is needed.
    """
    import subprocess

    config = {k: v for k, v in dataclasses.asdict(args).items() if k != "targets"}
    completed = subprocess.run(
        [sys.executable, "-m", MODULE, "--memory-probe", method, json.dumps(config)],
        capture_output=True, text=True, check=False,
    )
    lines = [line for line in completed.stdout.splitlines() if line.startswith("{")]
    if completed.returncode != 0 or not lines:
        return {"peak_bytes": None, "method": f"subprocess failed: {completed.stderr.strip()[-300:]}"}
    return json.loads(lines[-1])


def _task_dims(args: Args) -> tuple[int, int]:
    env, _ = _spaces_env(args.task)
    dims = int(np.prod(env.observation_space.shape)), int(np.prod(env.action_space.shape))
    env.close()
    return dims


def matmul_flops(update: Callable[[], Any], updates: int = 2) -> float:
    """Floating-point operations of the matrix products (mm, addmm, bmm, …) in one update.

    Counted by ``torch.profiler`` (``with_flops``) over ``updates`` updates, so the figure is
    what the kernels were asked to compute, whatever their speed: the ratio of two methods'
    counts bounds how much faster one can be when both run their products equally fast.
    """
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], with_flops=True) as prof:
        for _ in range(updates):
            update()
    return sum(event.flops for event in prof.key_averages()) / updates


def _time_setting(
    args: Args, device: str, threads: int, updates: dict[str, Callable[[], Any]], log: Callable[[str], None],
    memory: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Warm up, time (interleaved windows) and measure memory of every method at one setting."""
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for update in updates.values():
            for _ in range(args.warmup):
                update()
            _synchronize(device)
        rates: dict[str, list[float]] = {name: [] for name in updates}
        for _ in range(args.repeats):
            for name, update in updates.items():
                rates[name].append(time_window(update, device, args.duration, args.min_updates))
        methods: dict[str, Any] = {}
        for name, update in updates.items():
            rate = statistics.median(rates[name])
            peak = (memory or {}).get(name) or peak_update_memory(update, device, args.memory_updates)
            flops = matmul_flops(update)
            methods[name] = {
                "updates_per_s": rate,
                "transitions_per_s": rate * args.batch_size,
                "ms_per_update": 1000.0 / rate,
                "repeats_updates_per_s": rates[name],
                "peak_update_memory_bytes": peak["peak_bytes"],
                "peak_memory_method": peak["method"],
                "matmul_gflop_per_update": flops / 1e9,
                "matmul_gflop_per_s": flops * rate / 1e9,
            }
        sb3_rate = methods[SB3]["updates_per_s"]
        for figures in methods.values():
            figures["ratio_vs_sb3"] = figures["updates_per_s"] / sb3_rate
        label = f"{device}, {threads} thread{'s' if threads > 1 else ''}"
        log(f"[{label}] " + ", ".join(f"{n} {m['updates_per_s']:.1f}/s" for n, m in methods.items()))
        return {"device": device, "threads": threads, "label": label, "methods": methods}
    finally:
        torch.set_num_threads(previous_threads)


def run_benchmark(args: Args, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Time every method at every setting; return the results (what :func:`main` writes as JSON).

    Args:
        args: The configuration (``args.quick`` is applied here if it was not yet).
        log: Progress lines go here (default: stderr).

    Returns:
        ``{"config", "machine", "settings": [{"device", "threads", "label", "methods": {name:
        figures}}], "target_checks", "memory", "skipped", "notes", "load_average_1min_end",
        "wall_time_s"}``; method names are ``sb3-ddpg`` and ``local-<kind>``.

    Raises:
        ValueError: On an invalid option.
    """
    if log is None:
        def log(line: str) -> None:
            print(line, file=sys.stderr, flush=True)
    if args.quick:
        args.apply_quick()
    args.validate()
    start = time.perf_counter()
    all_threads = os.cpu_count() or 1
    results: dict[str, Any] = {"config": dataclasses.asdict(args), "machine": machine_info("stable_baselines3"),
                               "settings": [], "skipped": [], "notes": []}
    memory: dict[str, Any] = {}
    for device in dict.fromkeys(args.device):
        if device == "cuda" and not torch.cuda.is_available():
            results["skipped"].append("cuda: torch.cuda.is_available() is False on this machine; CUDA rows skipped")
            continue
        torch.manual_seed(args.seed)
        model, note = build_sb3(args, device)
        if note and note not in results["notes"]:
            results["notes"].append(note)
        obs_dim = int(np.prod(model.observation_space.shape))
        act_dim = int(np.prod(model.action_space.shape))
        learners = {kind: build_local(args, kind, device, obs_dim, act_dim) for kind in args.critics}
        updates: dict[str, Callable[[], Any]] = {SB3: lambda m=model: m.train(gradient_steps=1,
                                                                           batch_size=args.batch_size)}
        for kind, learner in learners.items():
            updates[f"local-{kind}"] = lambda le=learner: le.update(check_finite=args.check_finite)
        if not memory:
            any_learner = next(iter(learners.values()), None) or build_local(args, "linear", "cpu", obs_dim, act_dim)
            local_row = buffer_bytes_per_transition(any_learner)
            sb3_row = sb3_bytes_per_transition(model)
            memory = {
                "transitions": MEMORY_TRANSITIONS,
                "local_bytes_per_transition": local_row,
                "local_replay_bytes": local_row * MEMORY_TRANSITIONS,
                "sb3_bytes_per_transition": sb3_row,
                "sb3_replay_bytes": sb3_row * MEMORY_TRANSITIONS,
                "neurons": any_learner.topology.num_neurons,
                "agents": any_learner.topology.num_agents,
                "method": "bytes per row of the allocated buffer tensors/arrays (shape x dtype size) x 10^6; "
                          "computed, not allocated",
            }
        probed: dict[str, dict[str, Any]] = {}
        if device == "cpu" and args.memory_mode == "subprocess" and args.memory_updates > 0:
            for name in updates:
                probed[name] = peak_memory_in_subprocess(args, name)
            log("[cpu] peak update memory (fresh processes): " + ", ".join(
                f"{n} {_mib(m['peak_bytes'])} MiB" for n, m in probed.items()))
        thread_counts = [t or all_threads for t in args.threads] if device == "cpu" else [all_threads]
        for threads in dict.fromkeys(thread_counts):
            results["settings"].append(_time_setting(args, device, threads, updates, log, probed))
        del model, learners, updates
        if device == "cuda":
            torch.cuda.empty_cache()
    results["memory"] = memory
    checks = []
    for setting in results["settings"]:
        if "local-linear" not in setting["methods"]:
            continue
        target = args.targets["cuda" if setting["device"] == "cuda" else "cpu"]
        ratio = setting["methods"]["local-linear"]["ratio_vs_sb3"]
        checks.append({"setting": setting["label"], "device": setting["device"], "threads": setting["threads"],
                       "ratio": ratio, "target": target, "met": bool(ratio >= target)})
    results["target_checks"] = checks
    results["load_average_1min_end"] = load_average_1min()
    results["wall_time_s"] = time.perf_counter() - start
    return results


# ------------------------------------------------------------------------------------ reporting
def _mib(value: int | None) -> str:
    return "-" if value is None else f"{value / 2**20:.1f}"


def format_table(results: dict[str, Any]) -> str:
    """The results as a plain-text table (one row per method and setting), targets and memory below."""
    batch = results["config"]["batch_size"]
    rows = [("setting", "method", "updates/s", "transitions/s", "ms/update", "x SB3", "peak MiB", "GFLOP/upd",
             "GFLOP/s")]
    for setting in results["settings"]:
        for name, m in setting["methods"].items():
            rows.append((setting["label"], name, f"{m['updates_per_s']:,.1f}", f"{m['transitions_per_s']:,.0f}",
                         f"{m['ms_per_update']:.2f}", f"{m['ratio_vs_sb3']:.2f}x",
                         _mib(m["peak_update_memory_bytes"]), f"{m.get('matmul_gflop_per_update', 0):.3f}",
                         f"{m.get('matmul_gflop_per_s', 0):.1f}"))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for k, row in enumerate(rows):
        lines.append("  ".join(str(cell).rjust(w) if i >= 2 else str(cell).ljust(w)
                               for i, (cell, w) in enumerate(zip(row, widths, strict=True))))
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    hidden = "-".join(str(h) for h in results["config"]["hidden"])
    lines.append(f"\nnetwork: {results['config']['task']} actor obs-{hidden}-act ({results['config']['activation']}), "
                 f"batch {batch}; local = LocalDDPG.update() (settled, all neurons), "
                 "sb3-ddpg = DDPG.train(gradient_steps=1); GFLOP/upd: matrix products per update "
                 "(torch.profiler), GFLOP/s: at the measured rate")
    for check in results["target_checks"]:
        lines.append(f"target local-linear >= {check['target']:g}x SB3 DDPG on {check['setting']}: "
                     f"{check['ratio']:.2f}x -> {'met' if check['met'] else 'NOT met'}")
    memory = results.get("memory") or {}
    if memory:
        lines.append(
            f"replay memory for 10^6 transitions ({memory['neurons']} neurons, {memory['agents']} agents): "
            f"LocalDDPG {memory['local_replay_bytes'] / 1e9:.2f} GB ({memory['local_bytes_per_transition']} B/row), "
            f"SB3 {memory['sb3_replay_bytes'] / 1e9:.3f} GB ({memory['sb3_bytes_per_transition']} B/row); "
            f"{memory['method']}")
    methods = {m["peak_memory_method"] for s in results["settings"] for m in s["methods"].values()}
    lines.append("peak memory of an update: " + "; ".join(sorted(methods)))
    for line in results["skipped"] + results["notes"]:
        lines.append(f"note: {line}")
    machine = results["machine"]
    lines.append(f"machine: python {machine['python']}, torch {machine['torch']}, SB3 {machine['stable_baselines3']}, "
                 f"{machine['cpu_count']} CPUs, {machine['processor']}, GPU {machine['cuda'] or 'none'}, "
                 f"load average {machine['load_average_1min']} at start, {results['load_average_1min_end']} at end, "
                 f"{machine['date']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print the table and write the JSON file (the command line of this module).

    ``python -m neuron_env.baselines.experiments.update_benchmark`` and
    ``benchmarks/update_throughput.py`` call it.

    Args:
        argv: Command-line arguments (``None``: ``sys.argv``).

    Returns:
        The results written to the JSON file.
    """
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--memory-probe"]:  # internal: one fresh-process memory measurement
        print(json.dumps(memory_probe(Args.from_dict(json.loads(argv[2])), argv[1])))
        return {}
    args = parse_args(argv)
    results = run_benchmark(args)
    return publish(results, format_table(results), args.out)


if __name__ == "__main__":
    main()
