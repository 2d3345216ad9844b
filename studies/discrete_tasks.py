"""Discrete-action tasks: the local learners on CartPole-v1 and Acrobot-v1, next to SB3 DQN and the published figures.

Every learner of ``neuron_env.agents.registry`` that acts on Discrete actions (through the
default ``argmax`` decoder: one output neuron per action) is run on the same seeds as a random
policy and Stable-Baselines3 DQN with the same network (the rl-zoo's other hyperparameters), by
one ``neuron-env compare`` grid. Two figures per run:

* **final evaluation**: the mean return of ``eval_episodes`` deterministic episodes at the end of
  the budget (compare's protocol; normalized with random = 0 and SB3 DQN = 1);
* **training average**: the mean return of the first ``first_episodes`` training episodes (all of
  them when the budget holds fewer), read from the run's ``episodes.csv``. This is the figure
  Weight Maximization reports (Chung, "Learning by Competition of Self-Interested Reinforcement
  Learning Agents", AAAI 2022, github stephen-chung-mh/weight_max: the average return over 1 000
  training episodes, 10 runs, actor 64-32), so the table prints it next to the published one.

The budget is counted in task steps (as every comparison of the package is), not in episodes,
and is the rl-zoo's DQN budget for each task (``TASK_STEPS``: 50 000 on CartPole-v1, 100 000 on
Acrobot-v1):
1 000 CartPole episodes at Weight Maximization's level (390 on average) are about 390 000 steps,
far past ``steps`` here, so the training averages here cover fewer and earlier episodes than the
published ones; the table says how many.

Command::

    python studies/discrete_tasks.py                  # CartPole-v1 50 000 steps, Acrobot-v1 100 000, seeds 0-4
    python studies/discrete_tasks.py --report-only    # the tables again from the runs there are

Outputs in ``<out>/``: ``table.md`` / ``table.json`` (per task and method: seeds, final
evaluation, normalized score, training average and its episodes, steps/s) and ``curves.png``
(evaluation return against task steps), over the seeds on which every method finished, so
every row averages the same seeds (a run stopped on a non-finite value is finished: its row
averages the method's other seeds and the table names the diverged ones). The runs stay in
``--work`` (git-ignored); a rerun reuses every finished run, and ``--first-seed`` splits the grid
across processes.
"""

from __future__ import annotations

import csv
import json
import math
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]

#: The methods: the random floor, the reference (SB3 DQN) and every local learner.
METHODS: tuple[str, ...] = ("random", "sb3-dqn", "local-feedback", "local-coagent", "local-weight-max", "local-es")
#: Task-step budget per task: the rl-zoo's DQN budgets (``hyperparams/dqn.yml``).
TASK_STEPS: dict[str, int] = {"CartPole-v1": 50_000, "Acrobot-v1": 100_000}
#: Published figures: ``task -> [(rule, mean, std, what it averages)]``.
PUBLISHED: dict[str, list[tuple[str, float, float, str]]] = {
    "CartPole-v1": [("Weight Maximization", 390.38, 43.25, "1 000 training episodes, 10 runs"),
                    ("Weight Maximization with traces", 373.11, 17.86, "1 000 training episodes, 10 runs")],
    "Acrobot-v1": [("Weight Maximization", -97.05, 2.90, "1 000 training episodes, 10 runs"),
                   ("Weight Maximization with traces", -105.00, 4.38, "1 000 training episodes, 10 runs")],
}
PUBLISHED_SOURCE = ("Chung, AAAI 2022, README of github stephen-chung-mh/weight_max "
                    "(average return over all 1 000 training episodes; std over runs)")


@dataclass
class StudyConfig:
    """The study (every field is a flag of the same name)."""

    tasks: tuple[str, ...] = tuple(TASK_STEPS)
    """Gymnasium ids (budgets from ``TASK_STEPS``; another task gets ``steps``)."""
    methods: tuple[str, ...] = METHODS
    """Compare methods (``random`` and ``sb3-dqn`` normalize the scores)."""
    steps: int = 50_000
    """Budget of a task outside ``TASK_STEPS``."""
    task_steps: dict[str, int] = field(default_factory=lambda: dict(TASK_STEPS))
    """Budget per task."""
    seeds: int = 5
    """Seeds ``first_seed .. first_seed + seeds - 1``."""
    first_seed: int = 0
    """The first seed (split the grid across processes by seed; the tables cover seeds below the last)."""
    hidden: tuple[int, ...] = (64, 32)
    """Hidden sizes of every network (Weight Maximization's actor)."""
    eval_every: int = 10_000
    """Task steps between evaluations."""
    eval_episodes: int = 10
    """Deterministic episodes per evaluation."""
    first_episodes: int = 1000
    """The training average covers the first this many training episodes (the published protocol's 1 000)."""
    workers: int = 2
    """Runs in parallel (processes)."""
    work: str = "runs/discrete-tasks"
    """Where the runs live (checkpoints included; git-ignored)."""
    out: str = "docs/results/discrete-tasks"
    """Where the light results go (committed)."""
    report_only: bool = False
    """Rewrite the tables from the runs there are; run nothing."""


def compare_config(config: StudyConfig) -> Any:
    """The ``CompareConfig`` of the study."""
    from neuron_env.baselines.compare import CompareConfig

    return CompareConfig(
        tasks=config.tasks, methods=config.methods, steps=config.steps,
        task_steps={t: n for t, n in config.task_steps.items() if t in config.tasks}, hidden=config.hidden,
        seeds=config.seeds, first_seed=config.first_seed, eval_every=config.eval_every,
        eval_episodes=config.eval_episodes,
        workers=config.workers, out=config.work, tensorboard=False,
    )


def training_average(run: Path, first_episodes: int) -> tuple[float, int] | None:
    """Mean return of the first ``first_episodes`` training episodes of a run, and how many it averages.

    Returns ``None`` for a run without training episodes (``random``, or no ``episodes.csv``).
    """
    path = run / "episodes.csv"
    if not path.is_file():
        return None
    with open(path, newline="", encoding="utf-8") as stream:
        returns = [float(row["return"]) for row in csv.DictReader(stream)][:first_episodes]
    if not returns:
        return None
    return statistics.fmean(returns), len(returns)


def collect_runs(task_folder: Path, seeds: int, first_episodes: int) -> dict[str, dict[int, dict[str, Any]]]:
    """``method -> seed -> run`` for every finished run of seeds ``< seeds``.

    A completed run is ``{final, training, episodes, steps_per_s, diverged: False}``; a run the
    trainer stopped on a non-finite value is ``{final: None, ..., diverged: True}`` (it finished,
    without a final evaluation). Runs still going or failed are left out.
    """
    table: dict[str, dict[int, dict[str, Any]]] = {}
    for summary_path in sorted(task_folder.glob("*/seed*/summary.json")):
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
        seed = int(summary_path.parent.name.removeprefix("seed"))
        if seed >= seeds:
            continue
        method = summary_path.parent.parent.name
        if summary.get("status") == "diverged":
            table.setdefault(method, {})[seed] = {"final": None, "training": None, "episodes": None,
                                                  "steps_per_s": None, "diverged": True}
            continue
        if summary.get("status") != "completed" or summary.get("final_eval_return_mean") is None:
            continue
        average = training_average(summary_path.parent, first_episodes)
        table.setdefault(method, {})[seed] = {
            "final": float(summary["final_eval_return_mean"]),
            "training": None if average is None else average[0],
            "episodes": None if average is None else average[1],
            "steps_per_s": summary.get("steps_per_s"),
            "diverged": False,
        }
    return table


def _mean_std(values: list[float]) -> tuple[float, float]:
    if not values:
        return math.nan, math.nan
    return statistics.fmean(values), statistics.pstdev(values) if len(values) > 1 else 0.0


def complete_seeds(runs: dict[str, dict[int, dict[str, Any]]], methods: tuple[str, ...]) -> list[int]:
    """The seeds on which every method of ``methods`` that has run at all has a finished run.

    A diverged run is finished (it counts as the method's outcome on that seed); a method without
    any finished run (not run yet) does not empty the table: it has no row.
    """
    seeds: set[int] | None = None
    for method in methods:
        done = set(runs.get(method, {}))
        if done:
            seeds = done if seeds is None else seeds & done
    return sorted(seeds or ())


def task_table(runs: dict[str, dict[int, dict[str, Any]]], methods: tuple[str, ...],
               reference: str = "sb3-dqn") -> dict[str, Any]:
    """Per method: seeds, final evaluation and normalized score (mean ± std over seeds), training average.

    Only the seeds on which every method finished count (``complete_seeds``). A method's row
    averages its completed runs among them and names the seeds on which it diverged
    (``diverged``). The normalization is compare's: each seed's final return against the means
    over those seeds of ``random`` (0) and ``reference`` (1).
    """
    seeds = complete_seeds(runs, methods)
    runs = {method: {seed: run for seed, run in by_seed.items() if seed in seeds} for method, by_seed in runs.items()}
    completed = {method: {seed: run for seed, run in by_seed.items() if not run["diverged"]}
                 for method, by_seed in runs.items()}
    random_mean = _mean_std([r["final"] for r in completed.get("random", {}).values()])[0]
    reference_mean = _mean_std([r["final"] for r in completed.get(reference, {}).values()])[0]
    scale = reference_mean - random_mean
    rows: dict[str, Any] = {}
    for method in methods:
        by_seed = completed.get(method, {})
        finals = [r["final"] for r in by_seed.values()]
        trained = [r for r in by_seed.values() if r["training"] is not None]
        rate = [r["steps_per_s"] for r in by_seed.values() if r["steps_per_s"]]
        rows[method] = {
            "seeds": len(by_seed),
            "diverged": sorted(seed for seed, run in runs.get(method, {}).items() if run["diverged"]),
            "final": _mean_std(finals),
            "normalized": _mean_std([(v - random_mean) / scale for v in finals]) if scale else (math.nan, math.nan),
            "training": _mean_std([r["training"] for r in trained]),
            "episodes": _mean_std([float(r["episodes"]) for r in trained]),
            "steps_per_s": statistics.fmean(rate) if rate else math.nan,
            "per_seed": {seed: r for seed, r in sorted(by_seed.items())},
        }
    return {"seeds": seeds, "random_mean": random_mean, "reference": reference, "reference_mean": reference_mean,
            "rows": rows}


def _cell(pair: tuple[float, float], digits: int = 1) -> str:
    mean, std = pair
    return "—" if math.isnan(mean) else f"{mean:.{digits}f} ± {std:.{digits}f}"


def render(tables: dict[str, dict[str, Any]], config: StudyConfig, command: str) -> str:
    """``table.md``: one table per task, the published figures under it."""
    lines = [
        f"Network: hidden {'-'.join(map(str, config.hidden))} tanh for every method; "
        f"final evaluation: {config.eval_episodes} deterministic episodes; normalized: random = 0, SB3 DQN = 1; "
        f"training average: the first {config.first_episodes} training episodes (fewer where the budget ends "
        "first: the episodes column says how many).",
        "",
    ]
    for task, table in tables.items():
        steps = config.task_steps.get(task, config.steps)
        seeds = ", ".join(map(str, table["seeds"])) or "none yet"
        lines += [
            f"### {task}, {steps:,} task steps".replace(f"{steps:,}", f"{steps:,}".replace(",", " ")),
            "",
            f"Seeds on which every method finished: {seeds}.",
            "",
            "| method | seeds | final evaluation | normalized | training average | episodes averaged | steps/s |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for method, row in table["rows"].items():
            if not row["seeds"]:
                continue
            episodes = "—" if math.isnan(row["episodes"][0]) else f"{row['episodes'][0]:.0f}"
            rate = "—" if math.isnan(row["steps_per_s"]) else f"{row['steps_per_s']:.0f}"
            lines.append(f"| {method} | {row['seeds']} | {_cell(row['final'])} | {_cell(row['normalized'], 2)} | "
                         f"{_cell(row['training'])} | {episodes} | {rate} |")
        for rule, mean, std, _what in PUBLISHED.get(task, []):
            lines.append(f"| *{rule} (published)* | 10 | | | {mean:.1f} ± {std:.1f} | 1000 | |")
        lines.append("")
        for method, row in table["rows"].items():
            if row["diverged"]:
                lines += [f"{method} diverged on seed(s) {', '.join(map(str, row['diverged']))}: the trainer stopped "
                          f"the run on a non-finite value. Its row averages its other {row['seeds']} seed(s).", ""]
    lines += [f"Published figures: {PUBLISHED_SOURCE}.", "", f"Regenerate: `{command}`"]
    return "\n".join(lines) + "\n"


def plot_curves(tables: dict[str, dict[str, Any]], runs_folder: Path, path: Path) -> None:
    """``curves.png``: per task, each method's evaluation return against task steps (mean ± std over seeds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from neuron_env.baselines.report import mean_curve, read_curve

    figure, axes = plt.subplots(1, len(tables), figsize=(6 * len(tables), 4), squeeze=False)
    for axis, (task, table) in zip(axes[0], tables.items(), strict=True):
        for method in table["rows"]:
            if method == "random":  # evaluated once, untrained: a flat line at its mean
                axis.axhline(table["random_mean"], color="grey", linestyle=":", label="random")
                continue
            folder = runs_folder / task.replace("/", "_") / method
            curve = mean_curve([read_curve(folder / f"seed{seed}") for seed in table["rows"][method]["per_seed"]])
            mean, std = np.array(curve["mean"]), np.array(curve["std"])
            completed = len(table["rows"][method]["per_seed"])  # fewer than the title's where a run diverged
            label = method if completed == len(table["seeds"]) else f"{method} (n={completed})"
            axis.plot(curve["steps"], mean, label=label)
            axis.fill_between(curve["steps"], mean - std, mean + std, alpha=0.15)
        axis.set_title(f"{task} (seeds {', '.join(map(str, table['seeds']))})")
        axis.set_xlabel("task steps")
        axis.set_ylabel("evaluation return")
        axis.legend(fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def report(config: StudyConfig) -> dict[str, Any]:
    """Write ``table.md`` / ``table.json`` and ``curves.png`` into ``out`` from the runs in ``work``."""
    from neuron_env.run_output import atomic_write_json, atomic_write_text

    source, target = Path(config.work), Path(config.out)
    target.mkdir(parents=True, exist_ok=True)
    tables = {}
    for task in config.tasks:
        runs = collect_runs(source / "runs" / task.replace("/", "_"), config.first_seed + config.seeds,
                            config.first_episodes)
        if runs:
            tables[task] = task_table(runs, config.methods)
    if not tables:
        raise FileNotFoundError(f"no finished runs under {source}: run the study first")
    command = "python studies/discrete_tasks.py" + (f" --seeds {config.seeds}" if config.seeds != 5 else "")
    atomic_write_text(target / "table.md", render(tables, config, command))
    plot_curves(tables, source / "runs", target / "curves.png")
    atomic_write_json(target / "table.json", {"command": command, "task_steps": config.task_steps,
                                              "first_episodes": config.first_episodes, "published": PUBLISHED,
                                              "tasks": tables})
    return tables


def run(config: StudyConfig) -> dict[str, Any]:
    """Run the grid (unless ``report_only``) and write the tables."""
    if not config.report_only:
        from neuron_env.baselines.compare import compare

        compare(compare_config(config))
    return report(config)


def main(argv: list[str] | None = None) -> int:
    """Command line (see the module doc)."""
    from neuron_env.configs import config_parser

    parser = config_parser(StudyConfig, description=__doc__.split("\n\n")[0], overrides={"task_steps": {
        "nargs": "+", "type": str, "metavar": "TASK=STEPS", "default": [f"{t}={n}" for t, n in TASK_STEPS.items()]}})
    values = vars(parser.parse_args(argv))
    try:
        values["task_steps"] = {task: int(steps) for task, steps in (a.split("=", 1) for a in values["task_steps"])}
    except ValueError:
        parser.error(f"--task-steps takes TASK=STEPS pairs (e.g. CartPole-v1=50000), not {values['task_steps']}")
    config = StudyConfig(**{name: tuple(value) if isinstance(value, list) else value for name, value in values.items()})
    tables = run(config)
    print((Path(config.out) / "table.md").read_text(encoding="utf-8"))
    return 0 if tables else 1


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    sys.exit(main())
