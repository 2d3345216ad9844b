"""A comparison's report: normalized scores, ``scores.json``, ``scores.md`` and ``curves.png``.

``write_reports(config, rows)`` reads each finished run's evaluation curve (``read_curve``),
averages the seeds (``mean_curve``), normalizes the final returns (random = 0, the task's
reference = 1, ``CompareConfig.reference_for``: with ``--reference auto`` SB3 DDPG on Box-action
tasks, SB3 DQN on Discrete ones; ``compute_scores``, through ``baselines.normalize``) and writes
the three files
atomically: ``scores.json`` (everything, plus the command and ``machine_info()``),
``scores.md`` (``render_scores_md``) and ``curves.png`` (``plot_curves``, needs matplotlib).
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from neuron_env.baselines.compare_config import AUTO_REFERENCE, CompareConfig, RunSpec, command_line
from neuron_env.baselines.errors import MissingDependencyError
from neuron_env.baselines.normalize import (
    finite_values,
    first_step_reaching,
    format_score,
    mean_std,
    normalize_task,
)

from neuron_env.run_output import atomic_write_json, atomic_write_text, machine_info, machine_line


def zoo_networks(config: CompareConfig) -> str:
    """The networks of the zoo-net methods, as the network line ends: ``sb3-ddpg-zoo [400, 300] relu.``."""
    parts = ["sb3-ddpg-zoo [400, 300] relu"]
    if "sb3-recurrent-ppo" in config.methods:
        parts.append("sb3-recurrent-ppo the zoo's LSTM policy for the task (sb3-contrib's defaults where the zoo has "
                     "none)")
    return "; ".join(parts) + "."


def network_line(config: CompareConfig) -> str:
    """The header line that says each side's network (and the local methods' kind and clock when not the defaults)."""
    if config.topology == "mlp" and not config.leak and config.clock == "sync":
        return (f"Networks: local methods and sb3-ddpg, sb3-dqn, sb3-ppo {list(config.hidden)} {config.activation}; "
                f"{zoo_networks(config)}")
    local = list(config.hidden) if config.topology == "mlp" else f"{config.topology} [{config.hidden[0]}]"
    # a leak exists on the recurrent kind only, a density on the sparse kind only (check_network_kind)
    kind_option = (f", density {config.density:g}" if config.topology == "sparse"
                   else f", leak {config.leak:g}" if config.leak else "")
    clock = (f"; async clock, firing rate {config.firing_rate:g} (training and evaluation)" if config.clock == "async"
             else "")
    return (f"Networks: local methods {local} {config.activation}{kind_option}{clock}; sb3-ddpg, sb3-dqn, sb3-ppo "
            f"(MLPs) {list(config.hidden)} {config.activation}; {zoo_networks(config)}")


# ------------------------------------------------------------------------------------------ curves & scores
def read_curve(folder: Path) -> tuple[list[int], list[float]]:
    """``(steps, eval_return_mean)`` from a run's ``metrics.csv`` (empty when missing)."""
    path = folder / "metrics.csv"
    if not path.is_file():
        return [], []
    steps, values = [], []
    with open(path, newline="", encoding="utf-8") as stream:
        for row in csv.DictReader(stream):
            if row.get("eval_return_mean", "") != "":
                steps.append(int(float(row["step"])))
                values.append(float(row["eval_return_mean"]))
    return steps, values


def mean_curve(curves: Sequence[tuple[Sequence[int], Sequence[float]]]) -> dict[str, list[float]]:
    """Mean and std over seeds of evaluation curves, on the steps every seed evaluated at.

    Returns:
        ``{"steps": [...], "mean": [...], "std": [...], "seeds": n}`` (empty lists when no curve).
    """
    curves = [c for c in curves if len(c[0])]
    if not curves:
        return {"steps": [], "mean": [], "std": [], "seeds": 0}
    common = sorted(set(curves[0][0]).intersection(*(set(c[0]) for c in curves[1:])))
    table = np.array([[dict(zip(s, v, strict=True))[step] for step in common] for s, v in curves], dtype=float)
    return {"steps": [int(s) for s in common], "mean": table.mean(axis=0).tolist(), "std": table.std(axis=0).tolist(),
            "seeds": len(curves)}


def compute_scores(config: CompareConfig, rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Normalized scores, raw returns, curves and threshold steps per task and method (``scores.json``'s body).

    Each task's entry names its ``reference`` (the method that scored 1) and its ``action_space``
    kind; a method skipped on a task (it cannot act on its action space, ``CompareConfig.skipped_pairs``)
    has ``skipped`` (the reason) and NaN scores there, and a note says so.

    Args:
        config: The comparison.
        rows: One ``results.csv`` row per run of the grid (finished, failed or missing runs may be absent).
    """
    by_key = {(r["task"], r["method"], int(r["seed"])): r for r in rows}
    skipped = {(task, method): reason for task, method, reason in config.skipped_pairs()}
    tasks: dict[str, Any] = {}
    for task in config.tasks:
        returns: dict[str, list[float | None]] = {}
        curves: dict[str, dict[str, Any]] = {}
        runs: dict[str, dict[str, Any]] = {}
        for method in config.methods:
            if (task, method) in skipped:
                continue
            values: list[float | None] = []
            seed_curves = []
            counts: dict[str, int] = {}
            walls, speeds = [], []
            for seed in config.seed_range:
                row = by_key.get((task, method, seed))
                status = row["status"] if row else "missing"
                counts[status] = counts.get(status, 0) + 1
                if row is None or status == "failed":
                    values.append(None)
                    continue
                values.append(float(row["final_eval_mean"]) if row["final_eval_mean"] not in ("", None) else None)
                if status == "completed":
                    spec = RunSpec(task, method, seed, config.budget(task), tuple(config.hidden), config.activation,
                                   config.eval_every, config.eval_episodes, config.learning_starts)
                    seed_curves.append(read_curve(spec.folder(config.out)))
                walls += finite_values([_float(row["wall_time_s"])])
                speeds += finite_values([_float(row["steps_per_s"])])
            returns[method] = values
            curves[method] = mean_curve(seed_curves)
            runs[method] = {"status_counts": counts, "wall_time_s_mean": mean_std(walls)[0],
                            "steps_per_s_mean": mean_std(speeds)[0]}
        reference = config.reference_for(task)
        scores = normalize_task(returns, random="random", reference=reference)
        threshold = config.thresholds.get(task)
        methods: dict[str, Any] = {}
        for method in config.methods:
            if (task, method) in skipped:
                methods[method] = _skipped_entry(skipped[task, method])
                continue
            score = scores.methods[method]
            curve = curves[method]
            reached = None
            if threshold is not None:
                reached = first_step_reaching(curve["steps"], curve["mean"], threshold)
            methods[method] = {
                "returns": score.returns,
                "return_mean": score.return_mean,
                "return_std": score.return_std,
                "normalized": score.normalized,
                "normalized_mean": score.mean,
                "normalized_std": score.std,
                "normalized_best": score.best,
                "steps_to_threshold": reached,
                "curve": curve,
                **runs[method],
            }
        notes = [*scores.notes, *(f"{method} not run: {skipped[task, method]}" for method in config.methods
                                  if (task, method) in skipped)]
        tasks[task] = {
            "steps": config.budget(task),
            "action_space": config.action_space_kind(task),
            "reference": reference,
            "random_mean": scores.random_mean,
            "reference_mean": scores.reference_mean,
            "threshold": threshold,
            "notes": notes,
            "methods": methods,
        }
    return {"reference": config.reference, "random": "random", "seeds": config.seeds, "tasks": tasks}


def _skipped_entry(reason: str) -> dict[str, Any]:
    """A method's entry on a task it was not run on (it cannot act on the task's action space)."""
    return {"returns": [], "return_mean": math.nan, "return_std": math.nan, "normalized": [],
            "normalized_mean": math.nan, "normalized_std": math.nan, "normalized_best": math.nan,
            "steps_to_threshold": None, "curve": mean_curve([]), "status_counts": {}, "wall_time_s_mean": math.nan,
            "steps_per_s_mean": math.nan, "skipped": reason}


#: A table cell of a method not run on a task.
NOT_RUN = "—"


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _steps_text(step: int | None, budget: int) -> str:
    return f"not in {budget}" if step is None else str(step)


def render_scores_md(config: CompareConfig, scores: Mapping[str, Any], machine: Mapping[str, Any],
                     command: str) -> str:
    """The text of ``scores.md``."""
    methods = list(config.methods)
    budgets = ", ".join(f"{t} {config.budget(t)}" for t in config.tasks)
    auto = config.reference == AUTO_REFERENCE
    if auto:
        normalization = ("Normalized score = (R − R_random) / (R_reference − R_random), R the final evaluation "
                         "return, the reference picked per task from its action space (--reference auto: sb3-ddpg for "
                         "Box actions, sb3-dqn for Discrete, sb3-ppo for MultiDiscrete/MultiBinary) and named in the "
                         "table's last column; ")
    else:
        normalization = (f"Normalized score = (R − R_random) / (R_{config.reference} − R_random), R the final "
                         "evaluation return; ")
    normalization += ("each seed is normalized against the two baselines' means over seeds, then mean ± std over "
                      "seeds (ddof 0). random = 0 and " + ("the reference" if auto else config.reference)
                      + " = 1 by construction.")

    def cell(entry: Mapping[str, Any], method: str, text: str) -> str:
        return NOT_RUN if entry["methods"][method].get("skipped") else text

    lines = [
        "# neuron-env compare: scores",
        "",
        f"Regenerate with: `{command}`",
        "",
        machine_line(machine),
        "",
        f"Budget: {budgets} task steps per run, {config.seeds} seed(s) per method; evaluation every "
        f"{config.eval_every} task steps and at the end, {config.eval_episodes} deterministic episodes from the same "
        f"start states for every method. learning_starts: "
        + (f"{config.learning_starts} for every learning method." if config.learning_starts is not None
           else "each method's own (SB3: the rl-zoo's, 10 000 for DDPG on Pendulum and MuJoCo, 1 000 for DQN on "
           "CartPole; sb3-ppo has none; local: the trainer's 1 000).")
        + (" Local methods explore with sb3-ddpg's noise on each task (--local-noise task: Ornstein-Uhlenbeck 0.5 "
           "on MountainCarContinuous, Gaussian 0.1 elsewhere)." if config.local_noise == "task" else ""),
        network_line(config),
        "",
        normalization,
        "",
        "## Normalized score (mean ± std over seeds)",
        "",
        "| task | steps | " + " | ".join(methods) + " | reference (= 1) |",
        "|---|---:|" + "---:|" * len(methods) + "---|",
    ]
    for task, entry in scores["tasks"].items():
        cells = [cell(entry, m, format_score(entry["methods"][m]["normalized_mean"],
                                             entry["methods"][m]["normalized_std"])) for m in methods]
        reference = entry.get("reference", config.reference)
        kind = entry.get("action_space")
        named = f"{reference} ({kind} actions)" if auto and kind else reference
        lines.append(f"| {task} | {entry['steps']} | " + " | ".join(cells) + f" | {named} |")
    skipped = [f"{m} on {task}" for task, entry in scores["tasks"].items() for m in methods
               if entry["methods"][m].get("skipped")]
    if skipped:
        lines += ["", f"{NOT_RUN}: not run, the method cannot act on the task's action space ({', '.join(skipped)})."]
    lines += ["", "## Final evaluation return (mean ± std over seeds)", "",
              "| task | " + " | ".join(methods) + " |", "|---|" + "---:|" * len(methods)]
    for task, entry in scores["tasks"].items():
        cells = [cell(entry, m, format_score(entry["methods"][m]["return_mean"], entry["methods"][m]["return_std"],
                                             digits=1)) for m in methods]
        lines.append(f"| {task} | " + " | ".join(cells) + " |")
    thresholds = {t: e for t, e in scores["tasks"].items() if e["threshold"] is not None}
    if thresholds:
        lines += ["", "## Task steps until the mean evaluation curve first reaches the threshold", "",
                  "Evaluations happen every eval-every steps, so a step is an upper bound to that resolution; "
                  "random is evaluated once (step 0).", "",
                  "| task | threshold | " + " | ".join(methods) + " |", "|---|---:|" + "---:|" * len(methods)]
        for task, entry in thresholds.items():
            cells = [cell(entry, m, _steps_text(entry["methods"][m]["steps_to_threshold"], entry["steps"]))
                     for m in methods]
            lines.append(f"| {task} | {entry['threshold']:g} | " + " | ".join(cells) + " |")
    lines += ["", "## Runs", "", "| task | method | runs by status | wall time (s, mean) | steps/s (mean) |",
              "|---|---|---|---:|---:|"]
    for task, entry in scores["tasks"].items():
        for method in methods:
            run = entry["methods"][method]
            counts = ", ".join(f"{n} {s}" for s, n in sorted(run["status_counts"].items())) or (
                "not run (cannot act on its actions)" if run.get("skipped") else "")
            wall, speed = run["wall_time_s_mean"], run["steps_per_s_mean"]
            lines.append(f"| {task} | {method} | {counts} | {format_score(wall, digits=1)} | "
                         f"{format_score(speed, digits=0)} |")
    notes = [f"- {task}: {note}" for task, entry in scores["tasks"].items() for note in entry["notes"]]
    if notes:
        lines += ["", "## Notes", "", *notes]
    return "\n".join(lines) + "\n"


#: Legends with more entries than this go beside the panel rather than over the curves.
LEGEND_INSIDE_MAX = 6


def curve_styles(methods: Sequence[str]) -> dict[str, tuple[str, str]]:
    """``method -> (color, line style)`` for ``curves.png``.

    ``random`` is grey and dashed. A frozen-hidden control (``<method>-frozen``) takes its learner's
    color, dashed, so that each learner and its floor read as a pair. Every other method gets the
    next color of matplotlib's default cycle (``C0`` .. ``C9``), or of the ``tab20`` map when there
    are more than ten (then matplotlib is imported).
    """
    frozen_suffix = "-frozen"
    solid = [m for m in methods
             if m != "random" and not (m.endswith(frozen_suffix) and m.removesuffix(frozen_suffix) in methods)]
    if len(solid) <= 10:
        colors = {m: f"C{i}" for i, m in enumerate(solid)}
    else:
        from matplotlib import colormaps
        from matplotlib.colors import to_hex

        tab20 = colormaps["tab20"]
        colors = {m: to_hex(tab20(i % 20)) for i, m in enumerate(solid)}
    styles = {"random": ("grey", "--")}
    for method in methods:
        if method in colors:
            styles[method] = (colors[method], "-")
        elif method != "random":
            styles[method] = (colors[method.removesuffix(frozen_suffix)], "--")
    return {m: styles[m] for m in methods}


def plot_curves(path: str | os.PathLike[str], config: CompareConfig, scores: Mapping[str, Any]) -> None:
    """Write ``curves.png``: evaluation return vs task steps, mean ± std over seeds, one panel per task.

    Raises:
        MissingDependencyError: When matplotlib is not installed.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise MissingDependencyError("curves.png needs matplotlib: pip install 'neuron-env[baselines]'") from error
    tasks = list(scores["tasks"])
    columns = min(3, len(tasks))
    rows = math.ceil(len(tasks) / columns)
    styles = curve_styles(config.methods)
    legend_entries = len(config.methods) + any(scores["tasks"][t]["threshold"] is not None for t in tasks)
    legend_beside = legend_entries > LEGEND_INSIDE_MAX
    fig, axes = plt.subplots(rows, columns, figsize=((5.2 + 2.6 * legend_beside) * columns, 3.8 * rows),
                             squeeze=False)
    for index, task in enumerate(tasks):
        ax = axes[index // columns][index % columns]
        entry = scores["tasks"][task]
        budget = entry["steps"]
        for method in config.methods:
            data = entry["methods"][method]
            curve = data["curve"]
            if not curve["steps"]:
                continue
            label = f"{method} (n={curve['seeds']})"
            mean, std = np.asarray(curve["mean"]), np.asarray(curve["std"])
            if method == "random":
                ax.axhline(mean[0], color="grey", ls="--", lw=1, label=label)
                ax.axhspan(mean[0] - std[0], mean[0] + std[0], color="grey", alpha=0.12)
                continue
            steps = np.asarray(curve["steps"])
            color, line_style = styles[method]
            ax.plot(steps, mean, color=color, ls=line_style, lw=1.5, marker="." if len(steps) < 30 else None,
                    label=label)
            ax.fill_between(steps, mean - std, mean + std, color=color, alpha=0.12 if line_style == "--" else 0.18)
        if entry["threshold"] is not None:
            ax.axhline(entry["threshold"], color="black", ls=":", lw=1, label=f"threshold {entry['threshold']:g}")
        ax.set_xlim(0, budget)
        ax.set_title(f"{task} ({budget} steps)", fontsize=10)
        ax.set_xlabel("task steps")
        ax.set_ylabel("eval return")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            if legend_beside:
                ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
            else:
                ax.legend(fontsize=7, loc="best")
        else:
            ax.text(0.5, 0.5, "no finished runs", ha="center", va="center", transform=ax.transAxes, color="grey")
    for index in range(len(tasks), rows * columns):
        axes[index // columns][index % columns].set_visible(False)
    fig.suptitle(f"evaluation return, mean ± std over {config.seeds} seed(s)", fontsize=11)
    fig.tight_layout()
    target = Path(path)
    tmp = target.with_name(f".{target.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, target)


def write_reports(config: CompareConfig, rows: Sequence[Mapping[str, Any]],
                  command: str | None = None, out: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Write ``scores.json``, ``scores.md`` and ``curves.png`` from the runs' rows; return ``scores.json``'s content.

    Args:
        config: The comparison (its ``out`` holds the run folders the curves are read from).
        rows: One ``results.csv`` row per run.
        command: The command quoted as the one that regenerates them; default ``config``'s compare command.
        out: Where the three files go; default ``config.out``.
    """
    out = Path(config.out if out is None else out)
    command = command or command_line(config)
    machine = machine_info()
    scores = compute_scores(config, rows)
    document = {"command": command, "machine": machine, "config": asdict(config), **scores}
    atomic_write_json(out / "scores.json", document)
    atomic_write_text(out / "scores.md", render_scores_md(config, scores, machine, command))
    plot_curves(out / "curves.png", config, scores)
    return document
