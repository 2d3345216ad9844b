"""A study as a grid of plain ``neuron-env`` runs: plan, run (resumable, several at a time), report.

A study (``studies/locomotion.py``, ``studies/memory.py``) is a ``Study``: named methods, each one
``neuron-env`` subcommand with its flags (``neuron-env train --learner feedback --critic joint``,
``neuron-env baseline --algo ddpg``), and named phases, each a task, a budget and seeds
(``Phase``). This module runs a phase's missing runs and writes its table:

* ``run_phase``: every planned ``(method, seed)`` whose folder ``<work>/<phase>/<method>-s<seed>``
  has no completed ``summary.json``, ``workers`` processes at a time (one torch thread each). A
  local run with a checkpoint resumes from it; anything else starts over (``--overwrite``).
* ``report``: ``table.md`` / ``table.json`` / ``curves.png`` under ``<out>/<phase>/``: final
  evaluation return per method (mean ± std over seeds), normalized per seed (the uniform-random
  policy = 0, the phase's reference method = 1), each learned method's paired difference to its
  floor, updates and wall time.
* ``main``: the command line every study shares (``--phase``, ``--methods``, ``--seeds``,
  ``--workers``, ``--report-only``, ``--neuron-env``).

Example (a study of two methods on one task)::

    STUDY = Study(
        name="demo", work="runs/demo", out="docs/results/demo",
        methods={"sb3-ddpg": ("baseline", "--algo", "ddpg"),
                 "feedback": ("train", "--learner", "feedback"),
                 "feedback-frozen": ("train", "--learner", "feedback", "--freeze-hidden")},
        floors={"feedback": "feedback-frozen"},
        phases={"pendulum": Phase("Pendulum-v1", 20_000, (0, 1, 2), methods=("sb3-ddpg", "feedback",
                                                                              "feedback-frozen"))})
    raise SystemExit(main(STUDY))
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
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Phase:
    """One task of a study: its budget, seeds, evaluation and methods."""

    task: str
    """Gymnasium id."""
    steps: int
    """Task steps of every run."""
    seeds: tuple[int, ...]
    """Seeds of the main rows."""
    hidden: tuple[int, ...] | None = (64, 64)
    """Hidden sizes of every network (``--hidden``); ``None``: each method's flags give its own."""
    eval_every: int = 5000
    """Task steps between evaluations."""
    eval_episodes: int = 5
    """Episodes per evaluation (the CLI's default)."""
    diagnostics: tuple[str, ...] = ()
    """Diagnostic methods, run on the first ``diagnostic_seeds`` seeds only."""
    diagnostic_seeds: int = 1
    """How many seeds a diagnostic method runs."""
    methods: tuple[str, ...] = ()
    """The phase's methods (keys of the study's ``methods``)."""
    reference: str = "sb3-ddpg"
    """The method that scores 1 (the random policy scores 0)."""
    shares: str | None = None
    """Another phase of the same task, budget, network and evaluation whose runs this phase reads (and, when
    missing, makes in that phase's folder) for every method and seed both plan, and whose random-policy returns
    it uses: a control run once serves both tables."""
    late_evaluations: int = 0
    """Also report each run's mean over its last ``k`` evaluations, and the paired learned − floor on it (0: not).

    A final evaluation of a few episodes is noisy where episodes end by falling; the late mean
    averages ``k`` of them along the run's end."""

    def planned(self) -> list[tuple[str, int]]:
        """``(method, seed)`` of every run of the phase, seed by seed (a partial grid holds whole seeds)."""
        return [(method, seed) for seed in self.seeds for method in self.methods
                if method not in self.diagnostics or seed in self.seeds[:self.diagnostic_seeds]]

    @property
    def network(self) -> str:
        """The hidden sizes as text (``64-64``), or ``"per method"``."""
        return "-".join(map(str, self.hidden)) if self.hidden else "per method"


@dataclass(frozen=True)
class Study:
    """A study: its methods, their floors, its phases and where its runs and results go."""

    name: str
    """The study's name (its script is ``studies/<name>.py``)."""
    methods: dict[str, tuple[str, ...]]
    """Method name -> ``neuron-env`` subcommand and flags (after the task/network/budget/seed ones)."""
    floors: dict[str, str]
    """Learned method -> its floor (the same learner with its hidden layers frozen)."""
    phases: dict[str, Phase]
    """Phase name -> phase."""
    work: str
    """Where the runs live (git-ignored)."""
    out: str
    """Where the light results go (committed)."""


@dataclass
class StudyConfig:
    """One phase of a study (every field is a flag of the same name)."""

    phase: str = ""
    """A key of the study's phases."""
    methods: tuple[str, ...] = ()
    """Run only these methods (default: all of the phase)."""
    seeds: tuple[int, ...] = ()
    """Run only these seeds (default: the phase's plan)."""
    work: str = ""
    """Where the runs live (default: the study's)."""
    out: str = ""
    """Where the light results go (default: the study's)."""
    report_only: bool = False
    """Write the tables and curves from the runs there are; run nothing."""
    workers: int = 1
    """Runs at a time (each a one-thread process: use at most the number of cores)."""
    neuron_env: list[str] = field(default_factory=lambda: [sys.executable, "-m", "neuron_env.cli"])
    """The command that runs ``neuron-env`` (default: this interpreter's package)."""


def run_folder(study: Study, phase_name: str, method: str, seed: int, work: str | Path) -> Path:
    """Where run ``(method, seed)`` of a phase lives under ``work``: the shared phase's folder when it plans it too."""
    phase = study.phases[phase_name]
    if phase.shares is not None and (method, seed) in study.phases[phase.shares].planned():
        phase_name = phase.shares
    return Path(work) / phase_name / f"{method}-s{seed}"


def random_folder(study: Study, phase_name: str, work: str | Path) -> Path:
    """The folder of a phase's random-policy returns (the shared phase's, if it has one)."""
    return Path(work) / (study.phases[phase_name].shares or phase_name) / "random"


def run_command(study: Study, phase: Phase, method: str, seed: int, folder: Path,
                neuron_env: list[str]) -> list[str]:
    """The ``neuron-env`` command of one run."""
    command, *options = study.methods[method]
    hidden = ["--hidden", *map(str, phase.hidden)] if phase.hidden else []
    # the replay buffer goes into every checkpoint, so that an interrupted run resumes to the uninterrupted one
    exact_resume = ["--checkpoint-replay"] if command == "train" else []
    return [*neuron_env, command, "--task", phase.task, *hidden, "--steps", str(phase.steps), "--eval-every",
            str(phase.eval_every), "--eval-episodes", str(phase.eval_episodes), "--seed", str(seed), *options,
            *exact_resume, "--no-progress", "--no-tensorboard", "--out", str(folder)]


def completed(folder: Path) -> bool:
    """Whether ``folder`` holds a finished run that is the uninterrupted run (never resumed without replay)."""
    summary = folder / "summary.json"
    if not summary.is_file():
        return False
    record = json.loads(summary.read_text())
    return record.get("status") == "completed" and not record.get("resumes_without_replay")


def resumes_exactly(folder: Path) -> bool:
    """Whether ``folder`` holds a checkpoint that carries its replay buffer (``--checkpoint-replay``)."""
    config = folder / "config.json"
    return ((folder / "checkpoint.pt").is_file() and config.is_file()
            and bool(json.loads(config.read_text()).get("checkpoint_replay")))


def run_phase(study: Study, config: StudyConfig) -> None:
    """Run every planned run of the phase that is not finished, ``config.workers`` at a time.

    Each run is its own ``neuron-env`` process (one torch thread), so two workers use two cores. A local run
    interrupted after a checkpoint resumes from it exactly (its checkpoints carry the replay buffer); an SB3 run,
    a run without such a checkpoint, and a run once resumed without its buffer start over.
    """
    phase = study.phases[config.phase]
    todo = [(m, s) for m, s in phase.planned() if (not config.methods or m in config.methods)
            and (not config.seeds or s in config.seeds)
            and not completed(run_folder(study, config.phase, m, s, config.work))]
    print(f"{study.name} {config.phase}: {len(todo)} runs to do, {config.workers} at a time", file=sys.stderr)

    def one_run(index: int, method: str, seed: int) -> None:
        folder = run_folder(study, config.phase, method, seed, config.work)
        command = run_command(study, phase, method, seed, folder, config.neuron_env)
        if study.methods[method][0] != "train" or not resumes_exactly(folder):
            command.append("--overwrite")  # an unfinished run without an exact checkpoint starts over
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


def random_returns(phase: Phase, folder: Path, neuron_env: list[str]) -> dict[int, float]:
    """The uniform-random policy's final evaluation return per seed (``neuron-env compare --methods random``).

    ``folder``: where they live (``random_folder``); the missing ones are run there.
    """
    for seed in phase.seeds:
        summary = folder / "runs" / phase.task / "random" / f"seed{seed}" / "summary.json"
        if not summary.is_file():
            subprocess.run([*neuron_env, "compare", "--tasks", phase.task, "--methods", "random", "--steps",
                            str(phase.steps), "--hidden", *map(str, phase.hidden or (64, 64)), "--eval-every",
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


def late_mean(run: dict[str, Any], count: int) -> float | None:
    """Mean of a run's last ``count`` evaluations (``None`` if it has fewer)."""
    returns = [value for _, value in run["curve"]][-count:]
    return statistics.fmean(returns) if count and len(returns) == count else None


def mean_std(values: list[float]) -> str:
    """``mean ± std`` of ``values`` (two decimals below 10 in size, none above); empty for no values."""
    if not values:
        return ""
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.2f} ± {std:.2f}" if abs(statistics.fmean(values)) < 10 else \
        f"{statistics.fmean(values):.0f} ± {std:.0f}"


def sign_test(differences: list[float]) -> float:
    """Two-sided sign test of "the median difference is 0": ``P(|wins − n/2| ≥ observed)`` (ties dropped)."""
    wins, count = sum(d > 0 for d in differences), sum(d != 0 for d in differences)
    if count == 0:
        return 1.0
    extreme = max(wins, count - wins)
    return min(1.0, 2 * sum(math.comb(count, i) for i in range(extreme, count + 1)) / 2**count)


def report(study: Study, config: StudyConfig) -> dict[str, Any]:
    """Write ``table.md``, ``table.json`` and ``curves.png`` from every finished run of the phase."""
    phase = study.phases[config.phase]
    random = random_returns(phase, random_folder(study, config.phase, config.work), config.neuron_env)
    folders = {(m, s): run_folder(study, config.phase, m, s, config.work) for m, s in phase.planned()}
    runs = {run: read_run(folder) for run, folder in folders.items() if completed(folder)}
    reference = {s: runs[(phase.reference, s)]["final"] for s in phase.seeds if (phase.reference, s) in runs}

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
        floor = study.floors.get(method) if study.floors.get(method) in phase.methods else None
        paired = [normalized(method, s) - normalized(floor, s) for s in seeds  # type: ignore[operator]
                  if floor and normalized(floor, s) is not None and normalized(method, s) is not None]
        row = {"method": method, "command": " ".join(study.methods[method]), "seeds": seeds,
               "returns": [runs[(method, s)]["final"] for s in seeds],
               "normalized": scores, "floor": floor, "learned_minus_floor": paired,
               "updates": [runs[(method, s)]["updates"] for s in seeds],
               "wall_time_s": [runs[(method, s)]["wall_time_s"] for s in seeds]}
        if phase.late_evaluations:
            late = {s: late_mean(runs[(method, s)], phase.late_evaluations) for s in seeds}
            floor_late = {s: late_mean(runs[(floor, s)], phase.late_evaluations) for s in seeds
                          if floor and (floor, s) in runs}
            row["late_returns"] = [v for v in late.values() if v is not None]
            row["late_minus_floor"] = [late[s] - floor_late[s] for s in seeds  # type: ignore[operator]
                                       if late[s] is not None and floor_late.get(s) is not None]
        rows.append(row)
    target = Path(config.out) / config.phase
    target.mkdir(parents=True, exist_ok=True)
    lines = [f"{phase.task}, hidden {phase.network} tanh, {phase.steps} task steps, "
             f"{phase.eval_episodes}-episode evaluations; normalized per seed (random policy "
             f"{statistics.fmean(random.values()):.1f} = 0, {phase.reference} = 1); mean ± std over seeds.", "",
             "| method | seeds | final return | normalized | learned − floor (paired) | updates | wall time (s) |"
             + (f" mean of the last {phase.late_evaluations} evaluations | its learned − floor (paired, return) |"
                if phase.late_evaluations else ""),
             "|---|---|---|---|---|---|---|" + ("---|---|" if phase.late_evaluations else "")]

    def with_wins(differences: list[float]) -> str:
        text = mean_std(differences)
        return f"{text} ({sum(d > 0 for d in differences)} of {len(differences)})" if text else ""

    for row in rows:
        paired = with_wins(row["learned_minus_floor"])
        late = (f" {mean_std(row['late_returns'])} | {with_wins(row['late_minus_floor'])} |"
                if phase.late_evaluations else "")
        lines.append(f"| `{row['method']}` | {', '.join(map(str, row['seeds']))} | {mean_std(row['returns'])} | "
                     f"{mean_std([v for v in row['normalized'] if v is not None])} | "
                     f"{paired + ' vs `' + row['floor'] + '`' if paired else ''} | "
                     f"{statistics.fmean(row['updates']):.0f} | {statistics.fmean(row['wall_time_s']):.0f} |{late}")
    script = f"python studies/{study.name}.py --phase {config.phase}"
    shown = next((m for m in phase.methods if study.methods[m][0] == "train"), phase.methods[0])
    example = " ".join(run_command(study, phase, shown, phase.seeds[0], Path(config.work) / "example",
                                   ["neuron-env"]))
    lines += ["", "Each method is one `neuron-env` subcommand with its flags below, after the task, network, "
              f"budget, evaluation and seed flags of the setting, e.g. `{example}`:", ""]
    lines += [f"- `{row['method']}`: `{row['command']}`" for row in rows]
    lines += ["", f"Regenerate: `{script} --report-only` (runs: `{script}`)."]
    (target / "table.md").write_text("\n".join(lines) + "\n")
    (target / "table.json").write_text(json.dumps({"random": random, "rows": rows}, indent=2) + "\n")
    plot_curves(runs, random, phase, target / "curves.png")
    print("\n".join(lines))
    return {"random": random, "rows": rows}


def plot_curves(runs: dict[tuple[str, int], dict[str, Any]], random: dict[int, float], phase: Phase,
                path: Path) -> None:
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
    axis.set_title(f"{phase.task}, {phase.network} tanh")
    axis.legend(fontsize=7, loc="upper left")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def parser_for(study: Study, description: str) -> argparse.ArgumentParser:
    """The command line every study shares (a study may add its own flags before parsing)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--phase", choices=sorted(study.phases), default=next(iter(study.phases)),
                        help="the phase to run and report (default: %(default)s)")
    parser.add_argument("--methods", nargs="+", choices=sorted(study.methods), default=[], metavar="METHOD",
                        help="run only these of the phase's rows (default: all of them); rows: "
                             + ", ".join(sorted(study.methods)))
    parser.add_argument("--seeds", nargs="+", type=int, default=[], metavar="SEED",
                        help="run only these of the phase's seeds (default: all of them)")
    parser.add_argument("--work", default=study.work, help="where the runs live (default: %(default)s)")
    parser.add_argument("--out", default=study.out, help="where the reports go (default: %(default)s)")
    parser.add_argument("--report-only", action="store_true", help="write the reports from the runs there are")
    parser.add_argument("--workers", type=int, default=StudyConfig.workers,
                        help="runs at a time (default: %(default)s)")
    parser.add_argument("--neuron-env", nargs="+", default=None,
                        help="the command that runs neuron-env (default: this interpreter's package), e.g. a "
                             "separate venv's bin/neuron-env, so a long grid runs one fixed version of the code")
    return parser


def config_from(args: argparse.Namespace) -> StudyConfig:
    """The ``StudyConfig`` of parsed ``parser_for`` arguments."""
    return StudyConfig(phase=args.phase, methods=tuple(args.methods), seeds=tuple(args.seeds), work=args.work,
                       out=args.out, report_only=args.report_only, workers=args.workers,
                       **({"neuron_env": args.neuron_env} if args.neuron_env else {}))


def main(study: Study, description: str, argv: list[str] | None = None,
         extra: Callable[[argparse.ArgumentParser], None] | None = None) -> int:
    """Run a phase's missing runs (unless ``--report-only``), then write its report."""
    parser = parser_for(study, description)
    if extra is not None:
        extra(parser)
    config = config_from(parser.parse_args(argv))
    if not config.report_only:
        run_phase(study, config)
    report(study, config)
    return 0
