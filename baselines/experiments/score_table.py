r"""E4 ``score-table``: the DDPG paper's Table 1, on the rows Gymnasium can run.

Lillicrap et al. (2015), *Continuous control with deep reinforcement learning*, report in their
Table 1 the average and the best score over runs of DDPG on each task, normalized so that a
random policy scores 0 and a reference scores 1. This experiment fills the same layout for the
local learners: it runs ``baselines.compare.compare`` on the Gymnasium
counterparts of the paper's rows that Gymnasium ships,

=======================  ============================
paper row                Gymnasium id
=======================  ============================
pendulum                 Pendulum-v1
cartpoleBalance          InvertedPendulum-v5
cartpoleSerialDouble     InvertedDoublePendulum-v5
cheetah                  HalfCheetah-v5
hopper                   Hopper-v5
walker2d                 Walker2d-v5
reacher                  Reacher-v5
=======================  ============================

and prints one row per task with, for every method, the **average** and the **best**
normalized final score over seeds (the paper's "DDPG (avg) / DDPG (best)" columns), next to
the budget (task steps × seeds) behind the numbers.

Read the numbers with two differences in mind:

* **Different tasks.** The paper's tasks were DeepMind's own MuJoCo models (later the DeepMind
  Control Suite), with their own dynamics, rewards, episode lengths and observation features;
  the Gymnasium tasks are counterparts, not copies (e.g. Gymnasium's InvertedPendulum ends the
  episode when the pole falls, and Pendulum-v1 is a swing-up with a quadratic cost). Raw
  returns are not comparable with the paper's, and neither are normalized scores.
* **A different reference.** The paper normalized against a planner with access to the
  dynamics (iLQG); here the reference (score 1) is Stable-Baselines3 DDPG with the same
  network and the same step budget (``sb3-ddpg``), so the table answers "how close does each
  local rule come to backprop DDPG", and ``sb3-ddpg``'s own average is 1 by construction.

Command line::

    neuron-env experiment score-table --steps 50000 --seeds 3 --workers 4 --out runs/e4
    neuron-env experiment score-table --tasks pendulum cartpoleBalance --steps 20000 \
        --task-steps InvertedPendulum-v5=50000 --seeds 3 --out runs/e4-small

``--tasks`` takes paper row names or Gymnasium ids. Outputs in ``OUT``: everything ``compare``
writes (``runs/``, ``results.csv``, ``scores.md``, ``scores.json``, ``curves.png``) plus
``score_table.md`` and ``score_table.json``. Re-running the command resumes: finished runs are
reused, and the table is rebuilt.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from neuron_env.baselines.compare import METHODS, CompareConfig, compare
from neuron_env.baselines.compare import command_line as compare_command_line
from neuron_env.baselines.errors import BaselineConfigError
from neuron_env.baselines.normalize import format_score

from neuron_env.run_output import atomic_write_json, atomic_write_text, machine_info, machine_line

#: The DDPG paper's Table 1 rows that Gymnasium can run: (paper row name, Gymnasium id).
TABLE1_ROWS: tuple[tuple[str, str], ...] = (
    ("pendulum", "Pendulum-v1"),
    ("cartpoleBalance", "InvertedPendulum-v5"),
    ("cartpoleSerialDouble", "InvertedDoublePendulum-v5"),
    ("cheetah", "HalfCheetah-v5"),
    ("hopper", "Hopper-v5"),
    ("walker2d", "Walker2d-v5"),
    ("reacher", "Reacher-v5"),
)
PAPER_NAMES: dict[str, str] = {gym_id: name for name, gym_id in TABLE1_ROWS}
#: Every method that acts on Box actions (the table's tasks are all continuous control).
DEFAULT_METHODS: tuple[str, ...] = tuple(m for m in METHODS if m not in ("sb3-dqn", "sb3-ppo"))
DIFFERENCES_NOTE = (
    "The paper's tasks were DeepMind's own MuJoCo models (later the DeepMind Control Suite); the Gymnasium "
    "tasks are counterparts with other dynamics, rewards, episode lengths and termination rules, so neither raw "
    "returns nor normalized scores compare with the paper's numbers. The paper normalized against a planner "
    "(iLQG) = 1; here the reference is {reference} (Stable-Baselines3 DDPG, same network, same budget) = 1 and a "
    "uniform-random policy = 0."
)


def resolve_task(name: str) -> str:
    """A paper row name (``cheetah``) or Gymnasium id (``HalfCheetah-v5``) -> the Gymnasium id."""
    rows = dict(TABLE1_ROWS)
    return rows.get(name, name)


@dataclass
class ScoreTableConfig(CompareConfig):
    """Configuration of E4 (every field has a flag of the same name).

    The fields are ``CompareConfig``'s, with E4's defaults: every row of ``TABLE1_ROWS``, every
    method, 50 000 steps, an evaluation every 5 000 steps; ``tasks``, ``task_steps`` and
    ``thresholds`` also take the paper's row names.
    """

    tasks: tuple[str, ...] = tuple(gym_id for _, gym_id in TABLE1_ROWS)
    """Tasks (paper row names or Gymnasium ids); default: every row of ``TABLE1_ROWS``."""
    methods: tuple[str, ...] = DEFAULT_METHODS
    """Methods; must include ``random`` and the reference for normalized scores."""
    steps: int = 50_000
    """Task steps per run (the same for every method)."""
    out: str = "runs/score-table"
    """Output directory (the comparison's outputs plus ``score_table.md`` / ``.json``)."""
    eval_every: int = 5000
    """Task steps between evaluations."""
    reference: str = "sb3-ddpg"
    """The method that scores 1 (the DDPG paper's table: continuous control only)."""

    def compare_config(self) -> CompareConfig:
        """The ``CompareConfig`` this experiment runs (task names resolved to Gymnasium ids).

        Raises:
            BaselineConfigError: On an invalid option.
        """
        tasks = tuple(resolve_task(t) for t in self.tasks)
        if "random" not in self.methods or self.reference not in self.methods:
            raise BaselineConfigError(f"methods {list(self.methods)} must include 'random' and the reference "
                                      f"{self.reference!r}: the table is normalized against them")
        # every field of the same name carries over; task names are resolved to Gymnasium ids
        shared = {f.name: getattr(self, f.name) for f in fields(CompareConfig)}
        config = CompareConfig(**{
            **shared, "tasks": tasks, "methods": tuple(self.methods), "hidden": tuple(self.hidden),
            "task_steps": {resolve_task(t): int(n) for t, n in self.task_steps.items()},
            "thresholds": {resolve_task(t): float(v) for t, v in self.thresholds.items()},
        })
        config.validate()
        return config


def command_line(config: ScoreTableConfig) -> str:
    """The ``neuron-env experiment score-table`` command that regenerates the table (it takes compare's flags)."""
    return compare_command_line(config, ("neuron-env", "experiment", "score-table"))


def build_table(compare_config: CompareConfig, scores: dict[str, Any]) -> dict[str, Any]:
    """The table's content (``score_table.json``'s ``rows``) from ``compare``'s scores.

    Returns:
        ``{"columns": [methods], "rows": [{"paper_row", "task", "steps", "seeds", "random_return",
        "reference_return", "scores": {method: {"avg", "std", "best", "seeds"}}, "notes"}]}``.
    """
    columns = [m for m in compare_config.methods if m != "random"]
    rows = []
    for task in compare_config.tasks:
        entry = scores["tasks"][task]
        cells = {}
        for method in columns:
            data = entry["methods"][method]
            cells[method] = {"avg": data["normalized_mean"], "std": data["normalized_std"],
                             "best": data["normalized_best"], "seeds": len(data["normalized"]),
                             "return_mean": data["return_mean"]}
        rows.append({
            "paper_row": PAPER_NAMES.get(task), "task": task, "steps": entry["steps"], "seeds": compare_config.seeds,
            "random_return": entry["random_mean"], "reference_return": entry["reference_mean"], "scores": cells,
            "notes": entry["notes"],
        })
    return {"columns": columns, "rows": rows}


def render_table(table: dict[str, Any]) -> str:
    """The score table as Markdown, one row per task, ``avg`` and ``best`` columns per method."""
    columns = table["columns"]
    header = "| paper row | Gymnasium task | steps × seeds | " + " | ".join(
        f"{m} (avg) | {m} (best)" for m in columns) + " |"
    lines = [header, "|---|---|---:|" + "---:|---:|" * len(columns)]
    for row in table["rows"]:
        cells = []
        for method in columns:
            cell = row["scores"][method]
            cells += [format_score(cell["avg"]), format_score(cell["best"])]
        lines.append(f"| {row['paper_row'] or '—'} | {row['task']} | {row['steps']} × {row['seeds']} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines)


def render_markdown(config: ScoreTableConfig, compare_config: CompareConfig, table: dict[str, Any],
                    machine: dict[str, Any], command: str) -> str:
    """The text of ``score_table.md``."""
    reference = compare_config.reference
    lines = [
        "# E4 score table (DDPG paper, Table 1 layout)",
        "",
        f"Regenerate with: `{command}`",
        "",
        machine_line(machine),
        "",
        f"Normalized final evaluation return: random policy = 0, {reference} = 1 (means over seeds); "
        "avg = mean over seeds of each seed's normalized score, best = the best seed. Budgets (task steps per run × "
        f"seeds) are in the third column; evaluation: {compare_config.eval_episodes} deterministic episodes at the end "
        f"(curves every {compare_config.eval_every} steps in curves.png). Networks: {list(compare_config.hidden)} "
        f"{compare_config.activation} for the local methods and {reference}; sb3-ddpg-zoo [400, 300] relu.",
        "",
        render_table(table),
        "",
        "## Raw final evaluation returns (mean over seeds)",
        "",
        "| Gymnasium task | random | " + " | ".join(table["columns"]) + " |",
        "|---|---:|" + "---:|" * len(table["columns"]),
    ]
    for row in table["rows"]:
        cells = [format_score(row["scores"][m]["return_mean"], digits=1) for m in table["columns"]]
        lines.append(f"| {row['task']} | {format_score(row['random_return'], digits=1)} | " + " | ".join(cells) + " |")
    lines += ["", "## Read with care", "", DIFFERENCES_NOTE.format(reference=reference)]
    notes = [f"- {row['task']}: {note}" for row in table["rows"] for note in row["notes"]]
    if notes:
        lines += ["", "## Notes", "", *notes]
    lines += ["", "Per-run results: results.csv; full scores, curves and steps-to-threshold: scores.md, curves.png."]
    return "\n".join(lines) + "\n"


def run_score_table(config: ScoreTableConfig, print_fn: Any = print) -> dict[str, Any]:
    """Run E4: the comparison (resumable), then ``score_table.md`` / ``score_table.json`` in ``config.out``.

    Returns:
        The dict written to ``score_table.json``: ``experiment``, ``command``, ``machine``, ``config``,
        ``columns``, ``rows`` and ``note``.

    Raises:
        BaselineConfigError: On an invalid option.
    """
    compare_config = config.compare_config()
    result = compare(compare_config, print_fn=print_fn)
    table = build_table(compare_config, result["scores"])
    machine = machine_info()
    command = command_line(config)
    document = {"experiment": "score-table", "command": command, "machine": machine, "config": asdict(config),
                **table, "note": DIFFERENCES_NOTE.format(reference=compare_config.reference)}
    out = Path(config.out)
    atomic_write_json(out / "score_table.json", document)
    atomic_write_text(out / "score_table.md", render_markdown(config, compare_config, table, machine, command))
    return document
