"""E3 ``throughput``: how many updates per second, local rules against DDPG, same network, same run.

The seed claims that the local rule beats DDPG's speed. This experiment measures it: it runs the
update-throughput benchmark (:mod:`neuron_env.baselines.experiments.update_benchmark`, whose
module documentation describes the measurement in full; ``benchmarks/update_throughput.py`` runs
it from a checkout) with the experiment's configuration and writes its figures and a bar chart.

What it measures
----------------
Updates/s and transitions/s of ``LocalDDPG.update()`` for each critic kind (``linear``,
``compatible``, ``bilinear``, ``mlp``) against Stable-Baselines3 DDPG's
``train(gradient_steps=1)`` on the same 17-400-300-6 network (HalfCheetah-v5's sizes), batch
256, only the update timed (replay buffers pre-filled with random transitions, warm-up
excluded, the median of interleaved windows), on CPU with 1 thread and with all threads, and on
CUDA where present; the ratio local / SB3 per critic kind against the targets (``linear``
>= 3x on CPU, >= 20x on GPU); replay memory for 10^6 transitions and the peak memory of an
update.

Outputs in ``OUT``: ``throughput.json`` (everything the benchmark reports, plus the
experiment's config) and ``throughput.png`` (updates/s per method and setting, log scale, with
the ratio to SB3 DDPG over each bar).

Command line (wired as ``neuron-env experiment throughput``)::

    neuron-env experiment throughput --out runs/e3
    neuron-env experiment throughput --quick --device cpu --out runs/e3-smoke
    neuron-env experiment throughput --device cuda --critics linear mlp --out runs/e3-gpu

Python::

    from neuron_env.baselines.experiments.throughput import ThroughputConfig, run_throughput

    results = run_throughput(ThroughputConfig(quick=True, device=("cpu",), out="runs/e3-smoke"))
"""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
from neuron_env.agents.critics import CRITIC_KINDS
from neuron_env.baselines.errors import BaselineConfigError, MissingDependencyError
from neuron_env.baselines.experiments.update_benchmark import Args, format_table, run_benchmark

from neuron_env.run_output import atomic_write_json


@dataclass
class ThroughputConfig(Args):
    """Configuration of the throughput experiment (E3): the benchmark's :class:`Args`, ``out`` an output directory.

    Every other field is the benchmark's option of the same name, with the same default and
    meaning (see :class:`~neuron_env.baselines.experiments.update_benchmark.Args`).
    """

    out: str = "runs/throughput"
    """Output directory (``throughput.json``, ``throughput.png``); the benchmark's own JSON file is not written."""

    def validate(self) -> None:
        """Check the options.

        Raises:
            BaselineConfigError: Naming the bad option.
        """
        try:
            self.benchmark_args().validate()
        except ValueError as error:
            raise BaselineConfigError(str(error)) from error

    def benchmark_args(self) -> Args:
        """A copy of this configuration as the benchmark's own :class:`Args`, with ``out=""``.

        The experiment writes its JSON itself, so the benchmark writes none; ``run_benchmark``
        applies ``quick`` to the copy, not to this configuration.
        """
        return Args.from_dict({**asdict(self), "out": ""})


def run_throughput(config: ThroughputConfig) -> dict[str, Any]:
    """Run E3; write ``throughput.json`` and ``throughput.png`` into ``config.out``.

    Returns:
        The dict written to the JSON file: the benchmark's results (``settings``,
        ``target_checks``, ``memory``, ``skipped``, ``machine``, …) plus ``experiment`` and
        ``experiment_config``.

    Raises:
        BaselineConfigError: On an invalid option.
        MissingDependencyError: When matplotlib (the plot) is missing.
    """
    config.validate()
    start = time.perf_counter()
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    results = run_benchmark(config.benchmark_args())
    results = {"experiment": "throughput", "experiment_config": asdict(config), **results,
               "wall_time_s": time.perf_counter() - start}
    atomic_write_json(out / "throughput.json", results)
    plot(out / "throughput.png", results)
    return results


def plot(path: Path, results: dict[str, Any]) -> None:
    """Bar chart: updates/s (log scale) per method, grouped by setting, ratio to SB3 DDPG over each bar."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise MissingDependencyError("the plot needs matplotlib: pip install 'neuron-env[baselines]'") from error
    settings = results["settings"]
    methods = list(dict.fromkeys(name for s in settings for name in s["methods"]))
    width = 0.8 / max(len(methods), 1)
    fig, ax = plt.subplots(figsize=(max(6.0, 2.2 * len(settings) + 2), 4.4))
    for k, method in enumerate(methods):
        xs, ys, ratios = [], [], []
        for i, setting in enumerate(settings):
            figures = setting["methods"].get(method)
            if figures:
                xs.append(i - 0.4 + width * (k + 0.5))
                ys.append(figures["updates_per_s"])
                ratios.append(figures["ratio_vs_sb3"])
        bars = ax.bar(xs, ys, width=width * 0.95, color="black" if method == "sb3-ddpg" else f"C{k}", label=method)
        for bar, ratio in zip(bars, ratios, strict=True):
            ax.text(bar.get_x() + bar.get_width() / 2, bar.get_height(), f"{ratio:.2g}x", ha="center",
                    va="bottom", fontsize=6)
    ax.set_xticks(np.arange(len(settings)), [s["label"] for s in settings])
    ax.set_yscale("log")
    ax.set_ylabel("updates / s (log scale; label: ratio to SB3 DDPG)")
    config = results["config"]
    hidden = "-".join(str(h) for h in config["hidden"])
    checks = "; ".join(f"{c['setting']}: linear {c['ratio']:.2f}x (target {c['target']:g}x, "
                       f"{'met' if c['met'] else 'not met'})" for c in results["target_checks"])
    ax.set_title(f"E3 update throughput, {hidden} network, batch {config['batch_size']}\n{checks}", fontsize=8)
    if results["skipped"]:
        ax.text(0.01, 0.98, "; ".join(results["skipped"]), transform=ax.transAxes, fontsize=6, va="top")
    ax.legend(fontsize=7, ncol=min(len(methods), 5), loc="lower center", bbox_to_anchor=(0.5, -0.32))
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)


# ---------------------------------------------------------------------------------------------- command line
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the experiment's options to ``parser`` (``neuron-env experiment throughput``)."""
    defaults = ThroughputConfig()
    parser.add_argument("--out", required=True)
    parser.add_argument("--task", default=defaults.task)
    parser.add_argument("--hidden", type=int, nargs="+", default=list(defaults.hidden))
    parser.add_argument("--critics", nargs="+", choices=CRITIC_KINDS, default=list(defaults.critics))
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--device", nargs="+", choices=("cpu", "cuda"), default=list(defaults.device),
                        help="devices to time (cuda skipped with a note where absent)")
    parser.add_argument("--threads", type=int, nargs="+", default=list(defaults.threads),
                        help="CPU torch thread counts (0: all)")
    parser.add_argument("--duration", type=float, default=defaults.duration, help="seconds per timed window")
    parser.add_argument("--repeats", type=int, default=defaults.repeats)
    parser.add_argument("--warmup", type=int, default=defaults.warmup)
    parser.add_argument("--buffer-fill", type=int, default=defaults.buffer_fill)
    parser.add_argument("--memory-updates", type=int, default=defaults.memory_updates)
    parser.add_argument("--memory-mode", choices=("subprocess", "in-process"), default=defaults.memory_mode)
    parser.add_argument("--no-check-finite", action="store_true", help="LocalDDPG.update(check_finite=False)")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--quick", action="store_true", help="smoke run (about 20 s)")


def config_from_args(args: argparse.Namespace) -> ThroughputConfig:
    """The ``ThroughputConfig`` a parsed command line describes (options it lacks keep their defaults)."""
    names = {f.name for f in fields(ThroughputConfig)}
    values = {name: value for name, value in vars(args).items() if name in names}
    return ThroughputConfig.from_dict({**values, "check_finite": not args.no_check_finite})


def run_from_args(args: argparse.Namespace) -> int:
    """Run E3 from a parsed command line and print the benchmark's table; returns the exit status."""
    config = config_from_args(args)
    results = run_throughput(config)
    print(format_table(results))
    print(f"-> {config.out}")
    return 0
