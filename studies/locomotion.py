"""Locomotion study: the draft's own tasks (MuJoCo), where hidden neurons must learn.

(It also holds the fair-schedule control on Pendulum-v1, ``--phase pendulum-schedule``: SB3 DDPG
run with the local learners' schedule next to its rl-zoo schedule, on the classic-control
headline's seeds and evaluation.)

The first phase is a probe of the framework on HalfCheetah-v5 (17-64-64-6 tanh, 30 000 task steps,
seeds 1-3, a 5-episode evaluation every 5 000 steps; every run is a plain ``neuron-env train`` or
``neuron-env baseline`` command with the CLI's defaults, listed in ``METHODS``). It asks why the
feedback learner's ceiling (exact feedback) scored far below SB3 DDPG there, with one factor per row:

* ``ceiling`` against ``backprop`` (exact feedback without the one-update-per-layer pipeline);
* the schedule: ``ceiling``/``feedback`` with SB3 DDPG's rl-zoo schedule (learning starts 10 000,
  γ 0.98), and ``sb3-ddpg`` with the local learners' (learning starts 1 000, γ 0.99): the fair
  schedule control;
* the output critic: per-neuron critics ``Q^n(s, a_n)`` (the default, ``--critic mlp``) against one
  critic of the output group's joint action ``Q(s, a_1 … a_6)`` as DDPG has (``--critic joint``).

Usage (resumable: a run whose ``summary.json`` says ``completed`` is not run again)::

    python studies/locomotion.py --phase halfcheetah-probe                 # run what is missing, then report
    python studies/locomotion.py --phase halfcheetah-probe --report-only   # tables and curves from the runs there
    python studies/locomotion.py --phase halfcheetah-probe --methods ceiling-joint --seeds 1 2

Outputs in ``<out>/<phase>/``: ``table.md`` / ``table.json`` (final evaluation return per method,
mean ± std over seeds, normalized per seed with the random policy = 0 and ``sb3-ddpg`` = 1, the
paired learned − frozen differences, updates and wall time per run) and ``curves.png``.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Every run of a phase: ``neuron-env`` arguments after the task/network/budget ones of ``Phase``.
METHODS: dict[str, tuple[str, ...]] = {
    "sb3-ddpg": ("baseline", "--algo", "ddpg"),
    "sb3-ddpg-local-schedule": ("baseline", "--algo", "ddpg", "--learning-starts", "1000", "--gamma", "0.99"),
    "sb3-td3": ("baseline", "--algo", "td3"),
    "feedback": ("train", "--learner", "feedback"),
    "feedback-frozen": ("train", "--learner", "feedback", "--freeze-hidden"),
    "ceiling": ("train", "--learner", "feedback", "--feedback", "weights"),
    "backprop": ("train", "--learner", "feedback", "--feedback", "backprop"),
    "ceiling-ls10k-g098": ("train", "--learner", "feedback", "--feedback", "weights", "--learning-starts",
                             "10000", "--gamma", "0.98"),
    "feedback-ls10k-g098": ("train", "--learner", "feedback", "--learning-starts", "10000", "--gamma", "0.98"),
    "ceiling-joint": ("train", "--learner", "feedback", "--feedback", "weights", "--critic", "joint"),
    "feedback-joint": ("train", "--learner", "feedback", "--critic", "joint"),
    "feedback-joint-frozen": ("train", "--learner", "feedback", "--critic", "joint", "--freeze-hidden"),
    "backprop-joint": ("train", "--learner", "feedback", "--feedback", "backprop", "--critic", "joint"),
    "backprop-joint-ls10k-g098": ("train", "--learner", "feedback", "--feedback", "backprop", "--critic", "joint",
                                    "--learning-starts", "10000", "--gamma", "0.98"),
    "ceiling-joint-ls10k-g098": ("train", "--learner", "feedback", "--feedback", "weights", "--critic", "joint",
                                   "--learning-starts", "10000", "--gamma", "0.98"),
    "feedback-joint-ls10k-g098": ("train", "--learner", "feedback", "--critic", "joint", "--learning-starts", "10000",
                                    "--gamma", "0.98"),
    "feedback-joint-frozen-ls10k-g098": ("train", "--learner", "feedback", "--critic", "joint", "--freeze-hidden",
                                           "--learning-starts", "10000", "--gamma", "0.98"),
    # the E4 table's local rows: joint output critic, the reference's own schedule on MuJoCo (learning starts
    # 10 000; γ 0.99 is the local default and the rl-zoo's MuJoCo value)
    "feedback-joint-ref": ("train", "--learner", "feedback", "--critic", "joint", "--learning-starts", "10000"),
    "feedback-joint-ref-frozen": ("train", "--learner", "feedback", "--critic", "joint", "--freeze-hidden",
                                  "--learning-starts", "10000"),
    "ceiling-joint-ref": ("train", "--learner", "feedback", "--feedback", "weights", "--critic", "joint",
                          "--learning-starts", "10000"),
    "sign-joint-ref": ("train", "--learner", "feedback", "--feedback", "sign", "--critic", "joint",
                       "--learning-starts", "10000"),
}
#: Learned method -> its floor (the same learner with its hidden layers frozen).
FLOORS: dict[str, str] = {"feedback": "feedback-frozen", "ceiling": "feedback-frozen",
                          "feedback-joint": "feedback-joint-frozen", "ceiling-joint": "feedback-joint-frozen",
                          "backprop-joint": "feedback-joint-frozen",
                          "ceiling-joint-ls10k-g098": "feedback-joint-frozen-ls10k-g098",
                          "backprop-joint-ls10k-g098": "feedback-joint-frozen-ls10k-g098",
                          "feedback-joint-ls10k-g098": "feedback-joint-frozen-ls10k-g098",
                          **{f"{rule}-joint-ref": "feedback-joint-ref-frozen"
                             for rule in ("feedback", "ceiling", "sign")}}


#: The E4 table's tasks, in the order the grid runs them (the draft's tasks first).
E4_TASKS: tuple[str, ...] = ("HalfCheetah-v5", "Hopper-v5", "Walker2d-v5", "Reacher-v5", "InvertedDoublePendulum-v5")


@dataclass(frozen=True)
class Phase:
    """One task of the study."""

    task: str
    """Gymnasium id."""
    steps: int
    """Task steps of every run."""
    seeds: tuple[int, ...]
    """Seeds of the main rows."""
    hidden: tuple[int, ...] = (64, 64)
    """Hidden sizes of every network."""
    eval_every: int = 5000
    """Task steps between evaluations."""
    eval_episodes: int = 5
    """Episodes per evaluation (the CLI's default)."""
    diagnostics: tuple[str, ...] = ()
    """Diagnostic methods, run on the first ``diagnostic_seeds`` seeds only."""
    diagnostic_seeds: int = 1
    """How many seeds a diagnostic method runs."""
    methods: tuple[str, ...] = tuple(METHODS)
    """The phase's methods (keys of ``METHODS``)."""

    def planned(self) -> list[tuple[str, int]]:
        """``(method, seed)`` of every run of the phase, seed by seed (a partial grid holds whole seeds)."""
        return [(method, seed) for seed in self.seeds for method in self.methods
                if method not in self.diagnostics or seed in self.seeds[:self.diagnostic_seeds]]


PHASES: dict[str, Phase] = {
    "halfcheetah-probe": Phase(
        "HalfCheetah-v5", 30_000, (1, 2, 3), diagnostics=("backprop",)),
    # the probe's best framework at the DDPG paper's budget scale: joint output critic, SB3 DDPG's schedule
    "halfcheetah-100k": Phase(
        "HalfCheetah-v5", 100_000, (1, 2, 3), eval_every=10_000,
        methods=("sb3-ddpg", "feedback-joint-ls10k-g098", "feedback-joint-frozen-ls10k-g098",
                 "ceiling-joint-ls10k-g098")),
    # the fair-schedule control on the classic-control headline's setting (its seeds 0-9, 20-episode evaluations)
    "pendulum-schedule": Phase(
        "Pendulum-v1", 20_000, tuple(range(10)), eval_every=2000, eval_episodes=20,
        methods=("sb3-ddpg", "sb3-ddpg-local-schedule", "feedback", "feedback-frozen")),
    # the E4 table (the DDPG paper's Table 1 tasks): 5 seeds of the main rows, 3 of the diagnostics
    **{f"e4-{task.split('-')[0].lower()}": Phase(
        task, 100_000, (1, 2, 3, 4, 5), eval_every=10_000,
        methods=("sb3-ddpg", "sb3-td3", "feedback-joint-ref", "feedback-joint-ref-frozen", "ceiling-joint-ref",
                 "sign-joint-ref"), diagnostics=("ceiling-joint-ref", "sign-joint-ref"), diagnostic_seeds=3)
       for task in E4_TASKS},
    # one task at the DDPG paper's width
    "e4-halfcheetah-400-300": Phase(
        "HalfCheetah-v5", 100_000, (1, 2, 3), hidden=(400, 300), eval_every=10_000,
        methods=("sb3-ddpg", "feedback-joint-ref", "feedback-joint-ref-frozen")),
}


@dataclass
class StudyConfig:
    """One phase of the study (every field is a flag of the same name)."""

    phase: str = "halfcheetah-probe"
    """A key of ``PHASES``."""
    methods: tuple[str, ...] = ()
    """Run only these methods (default: all of the phase)."""
    seeds: tuple[int, ...] = ()
    """Run only these seeds (default: the phase's plan)."""
    work: str = "runs/locomotion"
    """Where the runs live (git-ignored)."""
    out: str = "docs/results/locomotion"
    """Where the light results go (committed)."""
    report_only: bool = False
    """Write the tables and curves from the runs there are; run nothing."""
    workers: int = 1
    """Runs at a time (each a one-thread process: use at most the number of cores)."""
    neuron_env: list[str] = field(default_factory=lambda: [sys.executable, "-m", "neuron_env.cli"])
    """The command that runs ``neuron-env`` (default: this interpreter's package)."""


def run_command(phase: Phase, method: str, seed: int, folder: Path, neuron_env: list[str]) -> list[str]:
    """The ``neuron-env`` command of one run."""
    command, *options = METHODS[method]
    return [*neuron_env, command, "--task", phase.task, "--hidden", *map(str, phase.hidden), "--steps",
            str(phase.steps), "--eval-every", str(phase.eval_every), "--eval-episodes", str(phase.eval_episodes),
            "--seed", str(seed), *options, "--no-progress", "--no-tensorboard", "--out", str(folder)]


def completed(folder: Path) -> bool:
    """Whether ``folder`` holds a finished run."""
    summary = folder / "summary.json"
    return summary.is_file() and json.loads(summary.read_text()).get("status") == "completed"


def run_phase(config: StudyConfig) -> None:
    """Run every planned run of the phase that is not finished, ``config.workers`` at a time.

    Each run is its own ``neuron-env`` process (one torch thread), so two workers use two cores. A local run
    interrupted after a checkpoint resumes from it; an SB3 run or a run without a checkpoint starts over.
    """
    phase, work = PHASES[config.phase], Path(config.work) / config.phase
    todo = [(m, s) for m, s in phase.planned() if (not config.methods or m in config.methods)
            and (not config.seeds or s in config.seeds) and not completed(work / f"{m}-s{s}")]
    print(f"locomotion {config.phase}: {len(todo)} runs to do, {config.workers} at a time", file=sys.stderr)

    def one_run(index: int, method: str, seed: int) -> None:
        folder = work / f"{method}-s{seed}"
        command = run_command(phase, method, seed, folder, config.neuron_env)
        if method.startswith("sb3-") or not (folder / "checkpoint.pt").is_file():
            command.append("--overwrite")  # an unfinished run without a checkpoint starts over
        else:
            command = [*config.neuron_env, "train", "--resume", str(folder), "--no-progress", "--no-tensorboard"]
        start = time.monotonic()
        print(f"[{index}/{len(todo)}] {method} seed {seed}", file=sys.stderr, flush=True)
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        print(f"[{index}/{len(todo)}] {method} seed {seed}: {time.monotonic() - start:.0f} s", file=sys.stderr,
              flush=True)

    with ThreadPoolExecutor(max_workers=config.workers) as pool:
        for future in [pool.submit(one_run, index, m, s) for index, (m, s) in enumerate(todo, 1)]:
            future.result()


def random_returns(phase: Phase, work: Path, neuron_env: list[str]) -> dict[int, float]:
    """The uniform-random policy's final evaluation return per seed (``neuron-env compare --methods random``)."""
    folder = work / "random"
    for seed in phase.seeds:
        summary = folder / "runs" / phase.task / "random" / f"seed{seed}" / "summary.json"
        if not summary.is_file():
            subprocess.run([*neuron_env, "compare", "--tasks", phase.task, "--methods", "random", "--steps",
                            str(phase.steps), "--hidden", *map(str, phase.hidden), "--eval-every",
                            str(phase.eval_every), "--eval-episodes", str(phase.eval_episodes), "--seeds",
                            str(len(phase.seeds)), "--first-seed", str(phase.seeds[0]), "--workers", "1",
                            "--no-tensorboard", "--out", str(folder)], check=True, stdout=subprocess.DEVNULL)
            break
    return {seed: json.loads((folder / "runs" / phase.task / "random" / f"seed{seed}" / "summary.json").read_text())[
        "final_eval_return_mean"] for seed in phase.seeds}


def read_run(folder: Path) -> dict[str, Any]:
    """Final return, updates, wall time and the evaluation curve of a finished run."""
    summary = json.loads((folder / "summary.json").read_text())
    with open(folder / "metrics.csv", newline="") as stream:
        curve = [(int(row["step"]), float(row["eval_return_mean"])) for row in csv.DictReader(stream)
                 if row.get("eval_return_mean")]
    updates = summary.get("updates", summary.get("num_updates"))
    return {"final": summary["final_eval_return_mean"], "updates": updates,
            "wall_time_s": summary.get("wall_time_s"), "curve": curve}


def _mean_std(values: list[float]) -> str:
    if not values:
        return ""
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.2f} ± {std:.2f}" if abs(statistics.fmean(values)) < 10 else \
        f"{statistics.fmean(values):.0f} ± {std:.0f}"


def report(config: StudyConfig) -> dict[str, Any]:
    """Write ``table.md``, ``table.json`` and ``curves.png`` from every finished run of the phase."""
    phase, work = PHASES[config.phase], Path(config.work) / config.phase
    random = random_returns(phase, work, config.neuron_env)
    runs = {(m, s): read_run(work / f"{m}-s{s}") for m, s in phase.planned() if completed(work / f"{m}-s{s}")}
    reference = {s: runs[("sb3-ddpg", s)]["final"] for s in phase.seeds if ("sb3-ddpg", s) in runs}

    def normalized(method: str, seed: int) -> float | None:
        if (method, seed) not in runs or seed not in reference:
            return None
        return (runs[(method, seed)]["final"] - random[seed]) / (reference[seed] - random[seed])

    rows = []
    for method in phase.methods:
        seeds = [s for s in phase.seeds if (method, s) in runs]
        if not seeds:
            continue
        scores = [normalized(method, s) for s in seeds]
        floor = FLOORS.get(method) if FLOORS.get(method) in phase.methods else None
        paired = [normalized(method, s) - normalized(floor, s) for s in seeds  # type: ignore[operator]
                  if floor and normalized(floor, s) is not None]
        rows.append({"method": method, "command": " ".join(METHODS[method]), "seeds": seeds,
                     "returns": [runs[(method, s)]["final"] for s in seeds],
                     "normalized": scores, "floor": floor, "learned_minus_floor": paired,
                     "updates": [runs[(method, s)]["updates"] for s in seeds],
                     "wall_time_s": [runs[(method, s)]["wall_time_s"] for s in seeds]})
    target = Path(config.out) / config.phase
    target.mkdir(parents=True, exist_ok=True)
    lines = [f"{phase.task}, hidden {'-'.join(map(str, phase.hidden))} tanh, {phase.steps} task steps, "
             f"{phase.eval_episodes}-episode evaluations; normalized per seed (random policy "
             f"{statistics.fmean(random.values()):.1f} = 0, sb3-ddpg = 1); mean ± std over seeds.", "",
             "| method | seeds | final return | normalized | learned − floor (paired) | updates | wall time (s) |",
             "|---|---|---|---|---|---|---|"]
    for row in rows:
        paired = _mean_std(row["learned_minus_floor"])
        if paired:
            wins = sum(d > 0 for d in row["learned_minus_floor"])
            paired += f" ({wins} of {len(row['learned_minus_floor'])})"
        lines.append(f"| `{row['method']}` | {', '.join(map(str, row['seeds']))} | {_mean_std(row['returns'])} | "
                     f"{_mean_std([v for v in row['normalized'] if v is not None])} | "
                     f"{paired + ' vs `' + row['floor'] + '`' if paired else ''} | "
                     f"{statistics.fmean(row['updates']):.0f} | {statistics.fmean(row['wall_time_s']):.0f} |")
    command = f"python studies/locomotion.py --phase {config.phase} --report-only"
    shown = next((m for m in phase.methods if METHODS[m][0] == "train"), phase.methods[0])
    example = " ".join(run_command(phase, shown, phase.seeds[0], Path(config.work) / "example", ["neuron-env"]))
    lines += ["", "Each method is one `neuron-env` subcommand with its flags below, after the task, network, "
              f"budget, evaluation and seed flags of the setting, e.g. `{example}`:", ""]
    lines += [f"- `{row['method']}`: `{row['command']}`" for row in rows]
    lines += ["", f"Regenerate: `{command}` (runs: `python studies/locomotion.py --phase {config.phase}`)."]
    (target / "table.md").write_text("\n".join(lines) + "\n")
    (target / "table.json").write_text(json.dumps({"random": random, "rows": rows}, indent=2) + "\n")
    plot_curves(runs, random, reference, phase, target / "curves.png")
    print("\n".join(lines))
    return {"random": random, "rows": rows}


def sign_test(differences: list[float]) -> float:
    """Two-sided sign test of "the median difference is 0": ``P(|wins − n/2| ≥ observed)`` (ties dropped)."""
    wins, count = sum(d > 0 for d in differences), sum(d != 0 for d in differences)
    if count == 0:
        return 1.0
    extreme = max(wins, count - wins)
    return min(1.0, 2 * sum(math.comb(count, i) for i in range(extreme, count + 1)) / 2**count)


#: The E4 table's columns: (heading, method).
E4_COLUMNS: tuple[tuple[str, str], ...] = (
    ("SB3 TD3", "sb3-td3"), ("`feedback`", "feedback-joint-ref"), ("frozen floor", "feedback-joint-ref-frozen"),
    ("ceiling (exact feedback)", "ceiling-joint-ref"), ("sign feedback", "sign-joint-ref"))


def e4_table(config: StudyConfig) -> dict[str, Any]:
    """The E4 table in the DDPG paper's layout: one row per task, normalized scores (random 0, SB3 DDPG 1).

    Reports every ``e4-<task>`` phase first (its own ``table.md``), then writes ``e4/table.md`` and
    ``e4/table.json`` under ``config.out`` from the runs finished so far (a column shows how many seeds).
    """
    rows = []
    for task in E4_TASKS:
        name = f"e4-{task.split('-')[0].lower()}"
        if not (Path(config.work) / name).is_dir():
            continue
        result = report(StudyConfig(phase=name, work=config.work, out=config.out, neuron_env=config.neuron_env))
        by_method = {row["method"]: row for row in result["rows"]}
        if "sb3-ddpg" not in by_method:
            continue
        learned = by_method.get("feedback-joint-ref", {})
        rows.append({"task": task, "random": statistics.fmean(result["random"].values()),
                     "sb3_ddpg_return": by_method["sb3-ddpg"]["returns"],
                     "normalized": {method: [v for v in by_method[method]["normalized"] if v is not None]
                                    for _, method in E4_COLUMNS if method in by_method},
                     "learned_minus_floor": learned.get("learned_minus_floor", []),
                     "updates": {method: row["updates"] for method, row in by_method.items()},
                     "wall_time_s": {method: row["wall_time_s"] for method, row in by_method.items()}})
    lines = ["Normalized final evaluation return per task (random policy 0, SB3 DDPG 1, per seed), mean ± std "
             "(seeds); 17-64-64-6-style tanh networks (every network of every method has the task's inputs, "
             "64-64 hidden, the task's outputs), 100 000 task steps, 5-episode evaluations.", "",
             "| task | random | SB3 DDPG (return) | " + " | ".join(h for h, _ in E4_COLUMNS)
             + " | `feedback` − floor (paired) |", "|---" * (4 + len(E4_COLUMNS)) + "|"]
    for row in rows:
        cells = []
        for _, method in E4_COLUMNS:
            values = row["normalized"].get(method, [])
            cells.append(f"{_mean_std(values)} ({len(values)})" if values else "")
        paired = row["learned_minus_floor"]
        paired_cell = (f"{_mean_std(paired)}: {sum(d > 0 for d in paired)} of {len(paired)}, "
                       f"sign test p = {sign_test(paired):.2f}") if paired else ""
        lines.append(f"| {row['task']} | {row['random']:.0f} | {_mean_std(row['sb3_ddpg_return'])} "
                     f"({len(row['sb3_ddpg_return'])}) | " + " | ".join(cells) + f" | {paired_cell} |")
    lines += ["", "Methods (each a `neuron-env` command after the task, network, budget and seed flags): SB3 DDPG "
              "`baseline --algo ddpg`, SB3 TD3 `baseline --algo td3` (the rl-zoo's MuJoCo schedule: learning starts "
              "10 000, γ 0.99, Gaussian action noise 0.1, batch 256, one update per step); `feedback` "
              "`train --learner feedback --critic joint --learning-starts 10000` (the same schedule); the floor adds "
              "`--freeze-hidden`, the ceiling `--feedback weights`, sign feedback `--feedback sign`. Updates: 90 000 "
              "per run for every method.", "",
              "Regenerate: `python studies/locomotion.py --e4-table` (runs: `python studies/locomotion.py --phase "
              "e4-<task>` for each task)."]
    target = Path(config.out) / "e4"
    target.mkdir(parents=True, exist_ok=True)
    (target / "table.md").write_text("\n".join(lines) + "\n")
    (target / "table.json").write_text(json.dumps({"rows": rows}, indent=2) + "\n")
    print("\n".join(lines))
    return {"rows": rows}


def plot_curves(runs: dict[tuple[str, int], dict[str, Any]], random: dict[int, float],
                reference: dict[int, float], phase: Phase, path: Path) -> None:
    """Mean evaluation return over seeds against task steps, one line per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(9, 5))
    colors = plt.get_cmap("tab20").colors
    for index, method in enumerate(phase.methods):
        curves = [runs[(method, s)]["curve"] for s in phase.seeds if (method, s) in runs]
        if not curves:
            continue
        steps = [step for step, _ in curves[0]]
        means = [statistics.fmean(c[i][1] for c in curves) for i in range(len(steps))]
        style = "--" if "frozen" in method else "-"
        axis.plot(steps, means, style, color=colors[index % 20], label=f"{method} ({len(curves)} seeds)")
    axis.axhline(statistics.fmean(random.values()), color="grey", linestyle=":", label="random")
    axis.set_xlabel("task steps")
    axis.set_ylabel("evaluation return (mean over seeds)")
    axis.set_title(f"{phase.task}, {'-'.join(map(str, phase.hidden))} tanh")
    axis.legend(fontsize=7, loc="upper left")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python studies/locomotion.py --phase NAME [--report-only]``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--phase", choices=sorted(PHASES), default=StudyConfig.phase)
    parser.add_argument("--methods", nargs="+", choices=sorted(METHODS), default=[])
    parser.add_argument("--seeds", nargs="+", type=int, default=[])
    parser.add_argument("--work", default=StudyConfig.work)
    parser.add_argument("--out", default=StudyConfig.out)
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--workers", type=int, default=StudyConfig.workers)
    parser.add_argument("--neuron-env", nargs="+", default=None,
                        help="the command that runs neuron-env (default: this interpreter's package), e.g. a "
                             "separate venv's bin/neuron-env, so a long grid runs one fixed version of the code")
    parser.add_argument("--e4-table", action="store_true",
                        help="write the combined E4 table from the e4-* phases' finished runs (runs only the random "
                             "policy's evaluations where they are missing)")
    args = parser.parse_args(argv)
    config = StudyConfig(phase=args.phase, methods=tuple(args.methods), seeds=tuple(args.seeds), work=args.work,
                         out=args.out, report_only=args.report_only, workers=args.workers,
                         **({"neuron_env": args.neuron_env} if args.neuron_env else {}))
    if args.e4_table:
        e4_table(config)
        return 0
    if not config.report_only:
        run_phase(config)
    report(config)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
