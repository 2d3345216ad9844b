"""Update throughput: local learners' ``update()`` against Stable-Baselines3 DDPG's ``train()``, same network, same run.

What it measures
----------------
One learning update of the whole network, timed alone (no environment stepping), in two
configurations, every row labelled with its configuration:

* **benchmark** (the rows this script has always timed): the package module
  ``neuron_env.baselines.experiments.update_benchmark``, whose module documentation describes it in
  full: ``LocalDDPG.update()`` for each critic kind (``--critics``, critic context
  ``presynaptic``, ``--critic-hidden`` units per ``mlp`` sub-critic) against SB3 DDPG's
  ``model.train(gradient_steps=1, batch_size=...)`` on ``Topology.mlp(17, [400, 300], 6)``
  (``--task`` HalfCheetah-v5, ``--hidden``), batch ``--batch-size`` (default 256), with the targets,
  the work per update (GFLOP) and the replay and peak memory figures.
* **train default**: each learner of ``--learners`` (default: the trainer's default learner,
  ``feedback``, and ``ddpg``) built as ``neuron-env train`` builds it by default (``TrainConfig()``
  through ``neuron_env.agents.train.make_learner``: each learner's own options, e.g. ``ddpg``'s
  critic ``mlp`` with context ``task``; the batch at the ``ddpg`` learner's 64 for all) on the same
  network, against SB3 DDPG at the same batch size (64), at the same device and thread settings,
  timed the same way (warm-up, interleaved windows, median; buffers pre-filled with
  ``--buffer-fill`` random transitions). Only off-policy learners have an ``update()`` that can
  be called on a filled buffer; others are skipped with a note. Peak memory is not measured for
  these rows.

How to run
----------
From a checkout of the repository (about a minute on two cores, CPU only)::

    python benchmarks/update_throughput.py
    python benchmarks/update_throughput.py --quick                # smoke run (about 30 s)
    python benchmarks/update_throughput.py --learners ddpg feedback
    python benchmarks/update_throughput.py --no-train-default     # only the benchmark rows, i.e.
    python -m neuron_env.baselines.experiments.update_benchmark    # the package module's command

Every flag of the package module (``--critics``, ``--hidden``, ``--batch-size``, ``--threads``,
``--device``, ``--duration``, ``--repeats``, ``--warmup``, ``--buffer-fill``, ``--memory-mode``,
``--no-check-finite``, ``--out``, ...) works here too, plus ``--learners`` and
``--train-default/--no-train-default`` (``--help`` lists them all).

Output
------
One table on stdout (a row per configuration, setting and method) and a JSON file (default
``benchmarks/results/update_throughput.json``): the package module's results, whose ``settings``
hold the train-default settings after the benchmark ones, each setting with a
``configuration`` key (``"benchmark"`` or ``"train default"``), and a ``configurations`` key
describing both.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from neuron_env.agents import LocalDDPGConfig
from neuron_env.agents.registry import LEARNERS, learner_class, learner_options
from neuron_env.agents.train import TrainConfig, make_learner
from neuron_env.baselines.experiments import update_benchmark as bench

from neuron_env import Topology
from neuron_env.configs import field_docs
from neuron_env.run_output import publish

BENCHMARK = "benchmark"
TRAIN_DEFAULT = "train default"


@dataclass
class Args(bench.Args):
    """The package module's configuration plus the train-default rows (every field is a flag)."""

    learners: tuple[str, ...] = (TrainConfig().learner, "ddpg")
    """Learners (registry names) timed in ``neuron-env train``'s default configuration (off-policy ones only)."""
    train_default: bool = True
    """Also time the train-default configuration (critic mlp, context task, critic_hidden 32, batch 64)."""

    def base(self) -> bench.Args:
        """The package module's ``Args`` (the fields it knows)."""
        known = {f.name for f in dataclasses.fields(bench.Args)}
        return bench.Args(**{k: v for k, v in dataclasses.asdict(self).items() if k in known})


def parse_args(argv: list[str] | None = None) -> Args:
    """Build :class:`Args`: this script's two flags, every other flag parsed by the package module.

    ``--help`` prints the module's flags, then this script's.
    """
    docs = field_docs(Args)
    extra = argparse.ArgumentParser(add_help=False, usage=argparse.SUPPRESS,
                                    description="train-default rows (this script only):")
    extra.add_argument("--learners", nargs="+", default=list(Args.learners), choices=LEARNERS,
                       help=docs["learners"].replace("``", "") + f" (default: {' '.join(Args.learners)})")
    extra.add_argument("--train-default", action=argparse.BooleanOptionalAction, default=Args.train_default,
                       help=docs["train_default"] + " (default: on)")
    argv = sys.argv[1:] if argv is None else list(argv)
    known, rest = extra.parse_known_args(argv)
    try:
        base = bench.parse_args(rest)
    except SystemExit as stop:
        if stop.code == 0:  # --help: the module printed its flags; add this script's
            print(extra.format_help())
        raise
    return Args(**dataclasses.asdict(base), learners=tuple(known.learners), train_default=known.train_default)


# ------------------------------------------------------------------------------------ train-default rows
def train_default_config(args: bench.Args, learner: str) -> TrainConfig:
    """``TrainConfig()`` for ``learner`` on the benchmark's network, at the ``ddpg`` learner's batch size.

    The batch goes in as a learner option, so it reaches a learner whose own default differs
    (the feedback learner's 256) and SB3 DDPG is timed at the same batch.
    """
    sized = {"batch_size": LocalDDPGConfig().batch_size, "buffer_size": args.buffer_fill}
    return TrainConfig(learner=learner, task=args.task, hidden=list(args.hidden), activation=args.activation,
                       seed=args.seed,
                       learner_options={k: v for k, v in sized.items() if k in learner_options(learner)})


def build_train_default(args: bench.Args, learner: str, device: str, obs_dim: int, act_dim: int) -> Any:
    """Learner ``learner`` as ``neuron-env train`` builds it, its buffer filled with random transitions."""
    config = train_default_config(args, learner)
    topology = Topology.mlp(obs_dim, list(args.hidden), act_dim, activation=args.activation)
    built = make_learner(config, topology, torch.device(device))
    bench.fill_with_random_transitions(built, topology, obs_dim, args.buffer_fill, args.seed)
    return built


def time_train_default(args: Args, log: Callable[[str], None]) -> tuple[list[dict[str, Any]], list[str]]:
    """The train-default settings (one per device and thread count) and notes on skipped learners."""
    base = args.base()
    batch = LocalDDPGConfig().batch_size
    timing = dataclasses.replace(base, batch_size=batch, memory_updates=0)
    notes: list[str] = []
    learners = []
    for name in dict.fromkeys(args.learners):
        if learner_class(name).off_policy:
            learners.append(name)
        else:
            notes.append(f"train default: learner {name!r} is not off-policy (its update() consumes a rollout); "
                         "not timed")
    settings: list[dict[str, Any]] = []
    all_threads = os.cpu_count() or 1
    for device in dict.fromkeys(base.device):
        if device == "cuda" and not torch.cuda.is_available():
            continue  # the benchmark rows already say why
        torch.manual_seed(base.seed)
        model, _ = bench.build_sb3(timing, device)
        obs_dim = int(np.prod(model.observation_space.shape))
        act_dim = int(np.prod(model.action_space.shape))
        updates: dict[str, Callable[[], Any]] = {
            bench.SB3: lambda m=model: m.train(gradient_steps=1, batch_size=batch)}
        for name in learners:
            built = build_train_default(base, name, device, obs_dim, act_dim)
            updates[f"local-{name}"] = lambda le=built: le.update(check_finite=base.check_finite)
        thread_counts = [t or all_threads for t in base.threads] if device == "cpu" else [all_threads]
        for threads in dict.fromkeys(thread_counts):
            setting = bench._time_setting(timing, device, threads, updates, lambda line: log(f"{TRAIN_DEFAULT} {line}"))
            setting["configuration"] = TRAIN_DEFAULT
            setting["batch_size"] = batch
            setting["label"] = f"{TRAIN_DEFAULT}: {setting['label']}"
            settings.append(setting)
        del model, updates
        if device == "cuda":
            torch.cuda.empty_cache()
    return settings, notes


def describe(args: Args) -> dict[str, Any]:
    """What each configuration is (for the JSON and the table's footer)."""
    defaults = LocalDDPGConfig()  # the options listed for the train-default rows: the ddpg learner's
    return {
        BENCHMARK: {"learner": "LocalDDPG(...) per critic kind", "critics": list(args.critics),
                    "critic_context": bench.BENCHMARK_CRITIC_CONTEXT, "critic_hidden": args.critic_hidden,
                    "batch_size": args.batch_size},
        TRAIN_DEFAULT: {"learners": list(args.learners), "critic": defaults.critic,
                        "critic_context": defaults.critic_context, "critic_hidden": defaults.critic_hidden,
                        "batch_size": defaults.batch_size, "built_by": "neuron_env.agents.train.make_learner"},
    }


def run(args: Args, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The package module's benchmark, then the train-default rows; the combined results.

    Args:
        args: The configuration.
        log: Progress lines go here (default: stderr).

    Returns:
        The module's results (``bench.run_benchmark``) with the train-default settings appended to
        ``settings``, a ``configuration`` key on every setting and a ``configurations`` key.
    """
    if log is None:
        def log(line: str) -> None:
            print(line, file=sys.stderr, flush=True)
    results = bench.run_benchmark(args.base(), log=log)
    for setting in results["settings"]:
        setting["configuration"] = BENCHMARK
        setting["batch_size"] = args.batch_size
        setting["label"] = f"{BENCHMARK}: {setting['label']}"
    results["config"].update(learners=list(args.learners), train_default=args.train_default)
    results["configurations"] = describe(args)
    if args.train_default:
        settings, notes = time_train_default(args, log)
        results["settings"].extend(settings)
        results["notes"].extend(notes)
    return results


def format_table(results: dict[str, Any]) -> str:
    """The module's table (every row labelled with its configuration) and what each configuration is."""
    lines = [bench.format_table(results)]
    configurations = results["configurations"]
    ours, default = configurations[BENCHMARK], configurations[TRAIN_DEFAULT]
    lines.append(f"configuration {BENCHMARK!r}: LocalDDPG, critics {', '.join(ours['critics'])}, context "
                 f"{ours['critic_context']}, critic_hidden {ours['critic_hidden']}, batch {ours['batch_size']}; "
                 f"{TRAIN_DEFAULT!r} (neuron-env train's TrainConfig()): learners {', '.join(default['learners'])}, "
                 f"critic {default['critic']}, context {default['critic_context']}, critic_hidden "
                 f"{default['critic_hidden']}, batch {default['batch_size']}; SB3 DDPG at each one's batch")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """The command line (see the module doc): ``argv`` (``None``: ``sys.argv``) -> the results it wrote."""
    args = parse_args(argv)
    results = run(args)
    return publish(results, format_table(results), args.out)


if __name__ == "__main__":
    main()
