r"""Study throughput: task steps per second summed over a study's seeds, by how the runs are scheduled.

What it measures
----------------
A study (``studies/grid.py``) is many independent ``neuron-env`` runs, one per method and seed.
This benchmark runs one small phase of such a study, the same runs in every arm, and reports
the study's throughput: the task steps of all its runs divided by the wall time of the whole
phase. Each arm is one way of scheduling the same runs:

* ``one-at-a-time`` (the reference, timed in the same invocation): the seeds as separate
  processes, one after another (``run_phase`` with ``--workers 1``), as the studies ran before
  ``studies/grid.py``;
* ``workers-N``: the same processes, ``N`` at a time (``--workers N``), one torch thread each;
* with ``--neuron-env-before CMD``, every arm also runs under that command (e.g. a fixed install
  of an earlier commit), so a change to the code is timed against the code before it.

Every run is ``neuron-env train`` on ``--task`` with ``--hidden``, the method's flags (default
the locomotion study's local rows: ``--learner feedback --critic joint``), ``--steps`` task steps
of which ``--learning-starts`` act at random, one update per step after them, and no evaluation but
the final one. Reported per arm: wall time, summed task steps/s, its ratio to the reference, and
the CPU time of the runs (their ``summary.json`` wall times summed), so a busy machine shows as a
ratio below the number of workers. The runs are the study's own machinery (``grid.run_phase``):
a scheduling gain measured here is the gain of a real study. What it cannot gain: runs that are
alone on a core do not get faster, so the ratio is bounded by the number of idle cores.

How to run
----------
Time it on an otherwise idle machine (the JSON records the load average at the start and end)::

    python benchmarks/study_throughput.py                         # about 4 minutes on two idle cores
    python benchmarks/study_throughput.py --workers 1 2 --seeds 1 2 3 4
    python benchmarks/study_throughput.py --neuron-env-before "/tmp/old/bin/neuron-env"
    python benchmarks/study_throughput.py --quick                 # smoke run: Pendulum-v1, seconds

Output
------
A table on stdout and ``benchmarks/results/study_throughput.json`` (``--out``): per arm the
command, workers, wall time, summed task steps/s and the ratio to the reference.
"""

from __future__ import annotations

import json
import shlex
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "studies"))
from grid import Phase, Study, StudyConfig, run_phase  # noqa: E402

from neuron_env.configs import config_parser  # noqa: E402
from neuron_env.run_output import load_average_1min, machine_info, publish  # noqa: E402

#: The arm every other arm is divided by.
REFERENCE = "one-at-a-time"


@dataclass
class Args:
    """Benchmark configuration (every field is a command-line flag)."""

    task: str = "HalfCheetah-v5"
    """Gymnasium id of every run (the locomotion study's first task)."""
    hidden: list[int] = field(default_factory=lambda: [64, 64])
    """Hidden sizes of every run."""
    method: str = "--learner feedback --critic joint"
    """The ``neuron-env train`` flags of every run (the locomotion study's local rows)."""
    steps: int = 5000
    """Task steps per run."""
    learning_starts: int = 500
    """Task steps of random acting before updates start (one update per step after them: 0.9 updates per
    step, as the locomotion study's 90 000 updates in 100 000 steps)."""
    seeds: list[int] = field(default_factory=lambda: [1, 2])
    """Seeds: one run each, per arm."""
    workers: list[int] = field(default_factory=lambda: [2])
    """Runs at a time of each arm beside the reference (which runs one at a time)."""
    neuron_env_before: str = ""
    """A second ``neuron-env`` command (e.g. an install of an earlier commit): every arm also runs under it."""
    quick: bool = False
    """Smoke run: Pendulum-v1, 3-8-1, at most 300 steps."""
    out: str = "benchmarks/results/study_throughput.json"
    """Where to write the JSON results (empty: nowhere)."""

    def apply_quick(self) -> None:
        """Shrink the plan for a smoke run."""
        self.task, self.hidden = "Pendulum-v1", [8]
        self.steps, self.learning_starts = min(self.steps, 300), min(self.learning_starts, 100)


def parse_args(argv: list[str] | None = None) -> Args:
    """Build :class:`Args` from the command line (one flag per field, help from the field docs)."""
    parser = config_parser(Args, __doc__.split("\n\n")[0] if __doc__ else None)
    args = Args(**vars(parser.parse_args(argv)))
    if args.quick:
        args.apply_quick()
    if args.steps <= args.learning_starts or args.learning_starts < 1:
        parser.error(f"--steps {args.steps} must exceed --learning-starts {args.learning_starts} (at least 1), "
                     "so that every run updates")
    if not args.seeds or any(w < 1 for w in args.workers):
        parser.error("--seeds needs at least one seed and every --workers value must be at least 1")
    return args


def phase_study(args: Args, work: Path) -> tuple[Study, Phase]:
    """The one-method, one-phase study every arm runs."""
    phase = Phase(args.task, args.steps, tuple(args.seeds), hidden=tuple(args.hidden), eval_every=0,
                  eval_episodes=1, methods=("local",), reference="local")
    flags = ("train", *shlex.split(args.method), "--learning-starts", str(args.learning_starts))
    study = Study(name="throughput", methods={"local": flags}, floors={}, phases={"plan": phase}, work=str(work),
                  out=str(work / "out"))
    return study, phase


def time_arm(args: Args, label: str, neuron_env: list[str], workers: int) -> dict[str, Any]:
    """Run the phase once in a fresh folder, ``workers`` at a time; its wall time and summed task steps/s."""
    with tempfile.TemporaryDirectory(prefix="study-throughput-") as folder:
        study, phase = phase_study(args, Path(folder))
        config = StudyConfig(phase="plan", work=folder, workers=workers, neuron_env=neuron_env)
        start = time.perf_counter()
        run_phase(study, config)
        wall = time.perf_counter() - start
        summaries = [json.loads((Path(folder) / "plan" / f"local-s{seed}" / "summary.json").read_text())
                     for seed in phase.seeds]
    steps = sum(int(summary["steps"]) for summary in summaries)
    run_seconds = sum(float(summary["wall_time_s"]) for summary in summaries)
    return {"arm": label, "command": " ".join(neuron_env), "workers": workers, "runs": len(summaries),
            "task_steps": steps, "wall_s": wall, "steps_per_s": steps / wall, "run_seconds_summed": run_seconds,
            "updates": sum(int(summary["updates"]) for summary in summaries)}


def report(rows: list[dict[str, Any]], load: tuple[float | None, float | None]) -> str:
    """The table: one row per arm, ratios to the reference arm of the same command."""
    lines = ["| code | arm | runs at a time | wall (s) | task steps/s, summed | × one at a time |",
             "|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['code']} | {row['arm']} | {row['workers']} | {row['wall_s']:.1f} | "
                     f"{row['steps_per_s']:.0f} | {row['ratio_vs_reference']:.2f} |")
    start, end = load
    lines.append(f"\nload average (1 min): {start} at the start, {end} at the end"
                 + ("; the machine was busy: ratios understate the gain" if (end or 0) > 0.5 else ""))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Time every arm, print the table and write the JSON."""
    args = parse_args(argv)
    codes = {"current": [sys.executable, "-m", "neuron_env.cli"]}
    if args.neuron_env_before:
        codes = {"before": shlex.split(args.neuron_env_before), **codes}
    load_start, rows = load_average_1min(), []
    for code, command in codes.items():
        reference = time_arm(args, REFERENCE, command, 1)
        for row in [reference, *(time_arm(args, f"workers-{w}", command, w) for w in args.workers)]:
            row["code"] = code
            row["ratio_vs_reference"] = row["steps_per_s"] / reference["steps_per_s"]
            rows.append(row)
    if len(codes) > 1:  # every arm of the current code against the earlier code's reference as well
        first = next(row for row in rows if row["code"] == "before" and row["arm"] == REFERENCE)
        for row in rows:
            row["ratio_vs_before_one_at_a_time"] = row["steps_per_s"] / first["steps_per_s"]
    load = (load_start, load_average_1min())
    results = {"args": asdict(args), "rows": rows, "load_average_1min": list(load), "machine": machine_info("torch")}
    return publish(results, report(rows, load), args.out)


if __name__ == "__main__":
    main()
