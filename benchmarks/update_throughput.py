r"""Update throughput: local learners' ``update()`` against SB3 DDPG's ``train()`` and a plain-torch DDPG, same run.

What it measures
----------------
One learning update of the whole network, timed alone (no environment stepping; sampling from
a replay buffer pre-filled with ``--buffer-fill`` random transitions included), in two
configurations, every row labelled with its configuration:

* **benchmark** (the rows this script has always timed): the package module
  ``neuron_env.baselines.experiments.update_benchmark``, whose module documentation describes it in
  full: ``LocalDDPG.update()`` for each critic kind (``--critics``, critic context
  ``presynaptic``, ``--critic-hidden`` units per ``mlp`` sub-critic) against SB3 DDPG's
  ``model.train(gradient_steps=1, batch_size=...)`` on ``Topology.mlp(17, [400, 300], 6)``
  (``--task`` HalfCheetah-v5, ``--hidden``), batch ``--batch-size`` (default 256), with the targets,
  the work per update (GFLOP) and the replay and peak memory figures. ``--no-benchmark`` skips them.
* **train default**: for every network of ``--networks`` (default ``Pendulum-v1:64-64``,
  ``HalfCheetah-v5:64-64``: 17-64-64-6 tanh, the locomotion study's width, and
  ``HalfCheetah-v5:400-300``: the DDPG paper's 17-400-300-6), every learner variant of
  ``--learners`` (default ``feedback``: the trainer's default learner with its per-neuron output
  critics; ``feedback:critic=joint``: the same with one critic of the output group's joint action,
  as the locomotion study runs it, ``--critic joint``; ``ddpg``) built as ``neuron-env train`` builds
  it (``TrainConfig`` through ``neuron_env.agents.train.make_learner``, the learner's own options
  plus the variant's), against two references at the same batch:

  - **sb3-ddpg**: Stable-Baselines3 DDPG's ``train(gradient_steps=1)`` with ``net_arch`` the
    network's hidden sizes for actor and critic, the same activation;
  - **torch-ddpg**: a lean DDPG in plain torch, ``benchmarks/reference_ddpg.py`` (CleanRL's update:
    critic MSE to ``r + γ(1−d) Q'(s', μ'(s'))``, actor loss ``−Q(s, μ(s)).mean()``, Polyak targets;
    Adam; the same widths for actor and critic), i.e. the cost of the backprop algorithm itself
    without SB3's bookkeeping.

  The batch (``--batches``): ``own`` (the default) times each learner at its own default batch
  (``feedback`` 256, ``ddpg`` 64) and the references at that batch beside it; an integer times
  every learner at that batch (``--batches 64`` is this configuration as earlier rounds timed it,
  every learner at the ``ddpg`` learner's 64; ``--batches own 64`` both). Each setting is one
  network, batch, device and thread count; every method in it records its ``batch_size`` and
  ``batch_source`` (``own default``, ``fixed``, or ``reference``), and its ratios to both
  references (``ratio_vs_sb3``, ``ratio_vs_torch``: the reference's time per update over the
  method's). Learners that are not off-policy are skipped with a note. Peak memory is not
  measured for these rows.

Both configurations use the package module's timing (warm-up, ``--repeats`` interleaved windows of
at least ``--duration`` seconds and ``--min-updates`` updates, median) and count the FLOPs of the
matrix products of one update (``torch.profiler``): a learner's GFLOP/upd against a reference's
is what it saves by construction (the local rules make no backward pass through the actor's
autograd graph), its ms/update what it saves in practice. The train-default rows also time each
window by this process's CPU time (``time.process_time``; ``cpu_ms_per_update`` and the
``cpu_ratio_vs_*`` ratios): on a machine other jobs share, wall-clock windows stretch with their
load and CPU time much less, so the CPU ratios are the steadier figure there (on one torch thread
both measure the same work).

How to run
----------
From a checkout of the repository (CPU only; a few minutes on two cores)::

    python benchmarks/update_throughput.py
    python benchmarks/update_throughput.py --quick                # smoke run (Pendulum-v1 rows only; ~1 min)
    # the docs' table (train-default rows only, 1 thread, 5 windows of at least 60 updates each):
    python benchmarks/update_throughput.py --no-benchmark --device cpu --threads 1 --repeats 5 --min-updates 60 \
        --batches own 64 --out benchmarks/results/update_throughput_references.json
    # one network, the locomotion study's learner beside the default one, at both batches:
    python benchmarks/update_throughput.py --no-benchmark --networks HalfCheetah-v5:64-64 \
        --learners feedback feedback:critic=joint --batches own 64
    python benchmarks/update_throughput.py --no-train-default     # only the benchmark rows, i.e.
    python -m neuron_env.baselines.experiments.update_benchmark    # the package module's command

Every flag of the package module (``--critics``, ``--hidden``, ``--batch-size``, ``--threads``,
``--device``, ``--duration``, ``--repeats``, ``--warmup``, ``--min-updates``, ``--buffer-fill``,
``--memory-mode``, ``--no-check-finite``, ``--out``, ...) works here too (the timing and device
flags apply to both configurations), plus ``--networks``, ``--learners``, ``--batches``,
``--benchmark/--no-benchmark`` and ``--train-default/--no-train-default`` (``--help`` lists them
all; the network and learner forms are ``benchmarks/benchmark_settings.py``'s).

Output
------
Tables on stdout (the benchmark rows as the package module prints them; the train-default rows
with ms/update, updates/s, the two ratios and GFLOP per update) and a JSON file (default
``benchmarks/results/update_throughput.json``): the package module's results, whose ``settings``
hold the train-default settings after the benchmark ones, each setting with a
``configuration`` key (``"benchmark"`` or ``"train default"``), and a ``configurations`` key
describing both.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from neuron_env.agents.train import TrainConfig, make_learner
from neuron_env.baselines.experiments import update_benchmark as bench

from neuron_env import Topology
from neuron_env.configs import field_docs
from neuron_env.run_output import load_average_1min, machine_info, publish

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/: the shared reference and settings
from benchmark_settings import LearnerVariant, NetworkSpec, batch_plan, parse_batches  # noqa: E402
from reference_ddpg import ReferenceConfig, ReferenceDDPG, fill_with_random_transitions  # noqa: E402

BENCHMARK = "benchmark"
TRAIN_DEFAULT = "train default"
#: Method name of the plain-torch DDPG (``benchmarks/reference_ddpg.py``).
TORCH = "torch-ddpg"
#: ``batch_source`` of the two references: the batch of the learners beside them.
REFERENCE_BATCH = "reference"


@dataclass
class Args(bench.Args):
    """The package module's configuration plus the train-default rows (every field is a flag)."""

    networks: tuple[str, ...] = ("Pendulum-v1:64-64", "HalfCheetah-v5:64-64", "HalfCheetah-v5:400-300")
    """Networks of the train-default rows, ``TASK:H1-H2`` (``benchmarks/benchmark_settings.py``)."""
    learners: tuple[str, ...] = (TrainConfig().learner, f"{TrainConfig().learner}:critic=joint", "ddpg")
    """Learner variants of the train-default rows, ``NAME[:OPTION=VALUE,...]`` (off-policy ones only)."""
    batches: tuple[str, ...] = ("own",)
    """Batches of the train-default rows: ``own`` (each learner's default) and/or integers (every learner)."""
    benchmark: bool = True
    """Time the package module's benchmark rows (LocalDDPG critic kinds against SB3 DDPG)."""
    train_default: bool = True
    """Time the train-default rows (learners as ``neuron-env train`` builds them, against SB3 and torch DDPG)."""

    def base(self) -> bench.Args:
        """The package module's ``Args`` (the fields it knows)."""
        known = {f.name for f in dataclasses.fields(bench.Args)}
        return bench.Args(**{k: v for k, v in dataclasses.asdict(self).items() if k in known})

    def network_specs(self) -> list[NetworkSpec]:
        """``networks`` read (unique, in order)."""
        return list(dict.fromkeys(NetworkSpec.parse(text) for text in self.networks))

    def variants(self) -> list[LearnerVariant]:
        """``learners`` read (unique, in order)."""
        return list(dict.fromkeys(LearnerVariant.parse(text) for text in self.learners))

    def validate_rows(self) -> None:
        """Check this script's options.

        Raises:
            ValueError: Naming the bad value and the form expected.
        """
        self.network_specs()
        self.variants()
        parse_batches(self.batches)
        if not (self.benchmark or self.train_default):
            raise ValueError("--no-benchmark with --no-train-default times nothing; keep one of them")


def parse_args(argv: list[str] | None = None) -> Args:
    """Build :class:`Args`: this script's flags, every other flag parsed by the package module.

    ``--help`` prints the module's flags, then this script's.
    """
    docs = field_docs(Args)
    extra = argparse.ArgumentParser(add_help=False, usage=argparse.SUPPRESS,
                                    description="train-default rows and configurations (this script only):")
    for name in ("networks", "learners", "batches"):
        extra.add_argument("--" + name, nargs="+", default=list(getattr(Args, name)),
                           help=docs[name].replace("``", "") + f" (default: {' '.join(getattr(Args, name))})")
    for name in ("benchmark", "train_default"):
        extra.add_argument("--" + name.replace("_", "-"), action=argparse.BooleanOptionalAction,
                           default=getattr(Args, name), help=docs[name].replace("``", "") + " (default: on)")
    argv = sys.argv[1:] if argv is None else list(argv)
    known, rest = extra.parse_known_args(argv)
    try:
        base = bench.parse_args(rest)
    except SystemExit as stop:
        if stop.code == 0:  # --help: the module printed its flags; add this script's
            print(extra.format_help())
        raise
    args = Args(**dataclasses.asdict(base), networks=tuple(known.networks), learners=tuple(known.learners),
                batches=tuple(known.batches), benchmark=known.benchmark, train_default=known.train_default)
    if args.quick and args.networks == Args.networks:  # a smoke run: the first network only
        args.networks = Args.networks[:1]
    try:
        args.validate_rows()
    except ValueError as error:
        extra.error(str(error))
    return args


# ------------------------------------------------------------------------------------ train-default rows
def task_dims(task: str) -> tuple[int, int, np.ndarray, np.ndarray]:
    """Observation size, action size and action bounds of ``task`` (HalfCheetah-v5's written out without MuJoCo)."""
    env, _ = bench._spaces_env(task)
    space = env.action_space
    env.close()
    if not isinstance(space, gym.spaces.Box):
        raise ValueError(f"task {task!r} has action space {space}; the update benchmark needs a Box")
    return (int(np.prod(env.observation_space.shape)), int(np.prod(space.shape)),
            np.asarray(space.low, dtype=np.float64), np.asarray(space.high, dtype=np.float64))


def train_default_config(args: bench.Args, network: NetworkSpec, variant: LearnerVariant,
                         batch_size: int | None) -> TrainConfig:
    """``TrainConfig()`` for ``variant`` on ``network``, its options set, at ``batch_size`` (``None``: its own).

    The buffer is sized to ``args.buffer_fill``, the random transitions it is filled with.
    """
    return TrainConfig(learner=variant.learner, task=network.task, hidden=list(network.hidden),
                       activation=args.activation, seed=args.seed,
                       learner_options=variant.options_at(batch_size, args.buffer_fill))


def build_train_default(args: bench.Args, network: NetworkSpec, variant: LearnerVariant, batch_size: int | None,
                        device: str) -> Any:
    """The learner as ``neuron-env train`` builds it, its buffer filled with random transitions."""
    obs_dim, act_dim, _, _ = task_dims(network.task)
    config = train_default_config(args, network, variant, batch_size)
    topology = Topology.mlp(obs_dim, list(network.hidden), act_dim, activation=args.activation)
    built = make_learner(config, topology, torch.device(device))
    bench.fill_with_random_transitions(built, topology, obs_dim, args.buffer_fill, args.seed)
    return built


def build_reference(args: bench.Args, network: NetworkSpec, batch_size: int, device: str) -> ReferenceDDPG:
    """The plain-torch DDPG on ``network`` at ``batch_size``, its buffer filled with random transitions."""
    obs_dim, act_dim, low, high = task_dims(network.task)
    config = ReferenceConfig(hidden=network.hidden, activation=args.activation, batch_size=batch_size,
                             buffer_size=args.buffer_fill, seed=args.seed, device=device)
    reference = ReferenceDDPG(obs_dim, act_dim, config, low, high)
    fill_with_random_transitions(reference, args.buffer_fill, args.seed)
    return reference


def time_window(update: Callable[[], Any], device: str, duration: float, min_updates: int) -> tuple[float, float]:
    """Updates per wall-clock second and per CPU second of this process, over one window.

    The window is the package module's (at least ``duration`` s and ``min_updates`` updates). CPU
    time (``time.process_time``: every thread of this process) leaves out the time other jobs held
    the cores, so it moves much less than the wall clock on a shared machine (caches and a busy
    sibling hyperthread still slow it); on one torch thread it is the update's own work.
    """
    bench._synchronize(device)
    wall_start, cpu_start = time.perf_counter(), time.process_time()
    count = 0
    while True:
        update()
        count += 1
        if count >= min_updates and time.perf_counter() - wall_start >= duration:
            bench._synchronize(device)
            wall = time.perf_counter() - wall_start
            if wall >= duration:
                return count / wall, count / max(time.process_time() - cpu_start, 1e-9)


def time_setting(args: bench.Args, device: str, threads: int, updates: dict[str, Callable[[], Any]],
                 log: Callable[[str], None]) -> dict[str, Any]:
    """Warm up and time every method at one setting (interleaved windows, medians); both clocks, both ratios.

    As the package module's ``_time_setting`` (same warm-up, windows and FLOP count; peak memory
    not measured), plus CPU time per update and the ratios to the plain-torch DDPG.
    """
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for update in updates.values():
            for _ in range(args.warmup):
                update()
            bench._synchronize(device)
        wall_rates: dict[str, list[float]] = {name: [] for name in updates}
        cpu_rates: dict[str, list[float]] = {name: [] for name in updates}
        for _ in range(args.repeats):
            for name, update in updates.items():
                wall_rate, cpu_rate = time_window(update, device, args.duration, args.min_updates)
                wall_rates[name].append(wall_rate)
                cpu_rates[name].append(cpu_rate)
        methods: dict[str, Any] = {}
        for name, update in updates.items():
            rate, cpu_rate = statistics.median(wall_rates[name]), statistics.median(cpu_rates[name])
            flops = bench.matmul_flops(update)
            methods[name] = {
                "updates_per_s": rate,
                "transitions_per_s": rate * args.batch_size,
                "ms_per_update": 1000.0 / rate,
                "repeats_updates_per_s": wall_rates[name],
                "cpu_ms_per_update": 1000.0 / cpu_rate,
                "repeats_updates_per_cpu_s": cpu_rates[name],
                "peak_update_memory_bytes": None,
                "peak_memory_method": "not measured",
                "matmul_gflop_per_update": flops / 1e9,
                "matmul_gflop_per_s": flops * rate / 1e9,
            }
        add_reference_ratios(methods)
        label = f"{device}, {threads} thread{'s' if threads > 1 else ''}"
        log(f"[{label}] " + ", ".join(f"{n} {m['ms_per_update']:.2f} ms ({m['cpu_ms_per_update']:.2f} CPU)"
                                      for n, m in methods.items()))
        return {"device": device, "threads": threads, "label": label, "methods": methods}
    finally:
        torch.set_num_threads(previous_threads)


def add_reference_ratios(methods: dict[str, dict[str, Any]]) -> None:
    """Every method's rate over SB3's and over the plain-torch DDPG's, by wall clock and by CPU time."""
    sb3, reference = methods[bench.SB3], methods[TORCH]
    for figures in methods.values():
        figures["ratio_vs_sb3"] = sb3["ms_per_update"] / figures["ms_per_update"]
        figures["ratio_vs_torch"] = reference["ms_per_update"] / figures["ms_per_update"]
        figures["cpu_ratio_vs_sb3"] = sb3["cpu_ms_per_update"] / figures["cpu_ms_per_update"]
        figures["cpu_ratio_vs_torch"] = reference["cpu_ms_per_update"] / figures["cpu_ms_per_update"]


def time_train_default(args: Args, log: Callable[[str], None]) -> tuple[list[dict[str, Any]], list[str]]:
    """The train-default settings (one per network, batch, device and thread count) and notes on skipped learners."""
    base = args.base()
    notes: list[str] = []
    variants = []
    for variant in args.variants():
        if variant.off_policy:
            variants.append(variant)
        else:
            notes.append(f"{TRAIN_DEFAULT}: learner {variant.learner!r} is not off-policy (its update() consumes a "
                         "rollout); not timed")
    plan = batch_plan(variants, parse_batches(args.batches))
    settings: list[dict[str, Any]] = []
    all_threads = os.cpu_count() or 1
    for device in dict.fromkeys(base.device):
        if device == "cuda" and not torch.cuda.is_available():
            notes.append(f"{TRAIN_DEFAULT}: cuda: torch.cuda.is_available() is False on this machine; CUDA rows "
                         "skipped")
            continue
        for network in args.network_specs():
            for batch, members in plan.items():
                timing = dataclasses.replace(base, task=network.task, hidden=network.hidden, batch_size=batch,
                                             memory_updates=0)
                torch.manual_seed(base.seed)
                model, note = bench.build_sb3(timing, device)
                if note and note not in notes:
                    notes.append(note)
                reference = build_reference(base, network, batch, device)
                updates: dict[str, Callable[[], Any]] = {
                    bench.SB3: lambda m=model, b=batch: m.train(gradient_steps=1, batch_size=b),
                    TORCH: reference.update}
                sources = {bench.SB3: REFERENCE_BATCH, TORCH: REFERENCE_BATCH}
                for variant, source in members:
                    built = build_train_default(base, network, variant, None if source == "own default" else batch,
                                                device)
                    updates[variant.method] = lambda le=built: le.update(check_finite=base.check_finite)
                    sources[variant.method] = source
                thread_counts = [t or all_threads for t in base.threads] if device == "cpu" else [all_threads]
                for threads in dict.fromkeys(thread_counts):
                    where = f"{network.task} {network.hidden_label}, batch {batch}"
                    setting = time_setting(timing, device, threads, updates,
                                           lambda line, w=where: log(f"{TRAIN_DEFAULT} {w} {line}"))
                    for name, figures in setting["methods"].items():
                        figures.update(batch_size=batch, batch_source=sources[name])
                    setting.update(configuration=TRAIN_DEFAULT, task=network.task, hidden=list(network.hidden),
                                   network=str(network), batch_size=batch,
                                   label=f"{TRAIN_DEFAULT}: {where}, {setting['label']}")
                    settings.append(setting)
                del model, reference, updates
                if device == "cuda":
                    torch.cuda.empty_cache()
    return settings, notes


def describe(args: Args) -> dict[str, Any]:
    """What each configuration is (for the JSON and the tables' footers)."""
    variants = args.variants()
    return {
        BENCHMARK: {"learner": "LocalDDPG(...) per critic kind", "critics": list(args.critics),
                    "critic_context": bench.BENCHMARK_CRITIC_CONTEXT, "critic_hidden": args.critic_hidden,
                    "batch_size": args.batch_size, "network": f"{args.task}:{'-'.join(map(str, args.hidden))}",
                    "timed": args.benchmark},
        TRAIN_DEFAULT: {
            "learners": [variant.method for variant in variants],
            "own_batch": {variant.method: variant.default_batch() for variant in variants},
            "batches": list(args.batches),
            "networks": [str(network) for network in args.network_specs()],
            "built_by": "neuron_env.agents.train.make_learner(TrainConfig(learner, task, hidden, learner_options))",
            "references": {
                bench.SB3: "stable_baselines3 DDPG.train(gradient_steps=1, batch_size), net_arch = hidden for actor "
                           "and critic, same activation",
                TORCH: "benchmarks/reference_ddpg.py ReferenceDDPG.update(): CleanRL's DDPG update in plain torch, "
                       "actor and critic of the hidden sizes, Adam, Polyak targets, sampling included",
            },
            "batch_source": {"own default": "the learner's own default batch", "fixed": "a batch of --batches",
                             REFERENCE_BATCH: "the batch of the learners in the same setting"},
            "timed": args.train_default,
        },
    }


def empty_results(args: Args) -> dict[str, Any]:
    """The results skeleton of a run without the benchmark rows (the keys ``bench.run_benchmark`` returns)."""
    return {"config": dataclasses.asdict(args.base()),
            "machine": machine_info("stable_baselines3"), "settings": [], "skipped": [], "notes": [],
            "memory": {}, "target_checks": []}


def run(args: Args, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The package module's benchmark (unless ``--no-benchmark``), then the train-default rows; the results.

    Args:
        args: The configuration.
        log: Progress lines go here (default: stderr).

    Returns:
        The module's results (``bench.run_benchmark``; its keys without settings under
        ``--no-benchmark``) with the train-default settings appended to ``settings``, a
        ``configuration`` key on every setting and a ``configurations`` key.
    """
    if log is None:
        def log(line: str) -> None:
            print(line, file=sys.stderr, flush=True)
    args.validate_rows()
    start = time.perf_counter()
    results = bench.run_benchmark(args.base(), log=log) if args.benchmark else empty_results(args)
    for setting in results["settings"]:
        setting["configuration"] = BENCHMARK
        setting["batch_size"] = args.batch_size
        setting["label"] = f"{BENCHMARK}: {setting['label']}"
    results["config"].update(networks=list(args.networks), learners=list(args.learners), batches=list(args.batches),
                             benchmark=args.benchmark, train_default=args.train_default)
    results["configurations"] = describe(args)
    if args.train_default:
        settings, notes = time_train_default(args, log)
        results["settings"].extend(settings)
        results["notes"].extend(notes)
    results["load_average_1min_end"] = load_average_1min()
    results["wall_time_s"] = time.perf_counter() - start
    return results


# ------------------------------------------------------------------------------------ report
def format_train_default(results: dict[str, Any]) -> list[str]:
    """The train-default rows: one line per network, batch, setting and method, both ratios."""
    settings = [s for s in results["settings"] if s.get("configuration") == TRAIN_DEFAULT]
    if not settings:
        return []
    rows = [("network", "batch", "device", "method", "batch from", "ms/update", "x SB3", "x torch", "CPU ms/upd",
             "CPU x SB3", "CPU x torch", "GFLOP/upd")]
    for setting in settings:
        where = setting["label"].removeprefix(f"{TRAIN_DEFAULT}: ").split(", batch")[0]
        device = f"{setting['device']}, {setting['threads']} thr"
        for name, m in setting["methods"].items():
            rows.append((where, str(setting["batch_size"]), device, name, m["batch_source"],
                         f"{m['ms_per_update']:.2f}", f"{m['ratio_vs_sb3']:.2f}x", f"{m['ratio_vs_torch']:.2f}x",
                         f"{m['cpu_ms_per_update']:.2f}", f"{m['cpu_ratio_vs_sb3']:.2f}x",
                         f"{m['cpu_ratio_vs_torch']:.2f}x", f"{m.get('matmul_gflop_per_update', 0):.4f}"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [f"\n{TRAIN_DEFAULT!r} rows: learners as neuron-env train builds them against SB3 DDPG (x SB3) and the "
             "plain-torch DDPG (x torch, benchmarks/reference_ddpg.py), same batch, same run; x: the reference's time "
             "per update over the method's, by wall clock and by this process's CPU time"]
    for k, row in enumerate(rows):
        lines.append("  ".join(cell.rjust(w) if i >= 5 else cell.ljust(w)
                               for i, (cell, w) in enumerate(zip(row, widths, strict=True))).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return lines


def format_table(results: dict[str, Any]) -> str:
    """The benchmark rows as the module prints them, the train-default rows, what each configuration is."""
    configurations = results["configurations"]
    ours, default = configurations[BENCHMARK], configurations[TRAIN_DEFAULT]
    lines: list[str] = []
    if any(s.get("configuration") == BENCHMARK for s in results["settings"]):
        benchmark_only = {**results, "settings": [s for s in results["settings"]
                                                  if s.get("configuration") == BENCHMARK]}
        lines.append(bench.format_table(benchmark_only))
        lines.append(f"configuration {BENCHMARK!r}: LocalDDPG, critics {', '.join(ours['critics'])}, context "
                     f"{ours['critic_context']}, critic_hidden {ours['critic_hidden']}, batch {ours['batch_size']}, "
                     "SB3 DDPG at the same batch")
    lines += format_train_default(results)
    if default["timed"]:
        own = ", ".join(f"{name} {batch}" for name, batch in default["own_batch"].items())
        lines.append(f"configuration {TRAIN_DEFAULT!r}: learners {', '.join(default['learners'])} (own batches: "
                     f"{own}); batches {' '.join(default['batches'])}; networks {', '.join(default['networks'])}; "
                     f"references {bench.SB3} and {TORCH} at each setting's batch")
    if not any(s.get("configuration") == BENCHMARK for s in results["settings"]):
        lines += [f"note: {line}" for line in results["skipped"] + results["notes"]]
        machine = results["machine"]
        lines.append(f"machine: python {machine['python']}, torch {machine['torch']}, SB3 "
                     f"{machine['stable_baselines3']}, {machine['cpu_count']} CPUs, {machine['processor']}, GPU "
                     f"{machine['cuda'] or 'none'}, load average {machine['load_average_1min']} at start, "
                     f"{results['load_average_1min_end']} at end, {machine['date']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """The command line (see the module doc): ``argv`` (``None``: ``sys.argv``) -> the results it wrote."""
    args = parse_args(argv)
    results = run(args)
    return publish(results, format_table(results), args.out)


if __name__ == "__main__":
    main()
