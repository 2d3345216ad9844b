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

The later phases (``PHASES``; 100 000 task steps, evaluations every 10 000):

* ``e4-<task>`` for HalfCheetah, Hopper, Walker2d, Reacher and InvertedDoublePendulum: the E4 table
  (``--e4-table``): SB3 DDPG and TD3, ``feedback`` with one joint output critic on SB3 DDPG's
  schedule, its frozen floor (five seeds), the ceiling and sign feedback (three);
  ``e4-halfcheetah-400-300`` the same main rows at the DDPG paper's width;
* ``<task>-td3`` (Walker2d, Hopper, HalfCheetah): the same rules in TD3's framework (twin output
  critics, target smoothing, the actor every second update) with direct feedback alignment;
* ``<task>-dfa`` (HalfCheetah, Hopper): direct feedback alignment in the E4 table's framework.

A phase with ``shares`` reads the runs it has in common with another phase from that phase's folder.

Usage (resumable: a run whose ``summary.json`` says ``completed`` is not run again)::

    python studies/locomotion.py --phase halfcheetah-probe                 # run what is missing, then report
    python studies/locomotion.py --phase halfcheetah-probe --report-only   # tables and curves from the runs there
    python studies/locomotion.py --phase halfcheetah-probe --methods ceiling-joint --seeds 1 2
    python studies/locomotion.py --e4-table                                # one row per task from the e4 phases
    python studies/locomotion.py --td3-table                               # the same from the <task>-td3 phases

Outputs in ``<out>/<phase>/``: ``table.md`` / ``table.json`` (final evaluation return per method,
mean ± std over seeds, normalized per seed with the random policy = 0 and ``sb3-ddpg`` = 1, the
paired learned − frozen differences, updates and wall time per run) and ``curves.png``.
"""

from __future__ import annotations

import json
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from grid import (  # noqa: E402
    Phase,
    Study,
    StudyConfig,
    config_from,
    mean_std,
    parser_for,
    report,
    run_phase,
    sign_test,
)

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
    "dfa-joint-ref": ("train", "--learner", "feedback", "--feedback", "direct", "--critic", "joint",
                      "--learning-starts", "10000"),
    # TD3's framework around the same rules (twin output critics with clipped double Q, target policy
    # smoothing 0.2 clipped at 0.5, actor and targets every second update: SB3 TD3's defaults)
    **{f"{name}-td3-ref": ("train", "--learner", "feedback", *rule, "--critic", "twin", "--target-noise", "0.2",
                           "--policy-delay", "2", "--learning-starts", "10000")
       for name, rule in (("feedback", ()), ("feedback-frozen", ("--freeze-hidden",)),
                          ("ceiling", ("--feedback", "weights")), ("sign", ("--feedback", "sign")),
                          ("dfa", ("--feedback", "direct")))},
}
#: Learned method -> its floor (the same learner with its hidden layers frozen).
FLOORS: dict[str, str] = {"feedback": "feedback-frozen", "ceiling": "feedback-frozen",
                          "feedback-joint": "feedback-joint-frozen", "ceiling-joint": "feedback-joint-frozen",
                          "backprop-joint": "feedback-joint-frozen",
                          "ceiling-joint-ls10k-g098": "feedback-joint-frozen-ls10k-g098",
                          "backprop-joint-ls10k-g098": "feedback-joint-frozen-ls10k-g098",
                          "feedback-joint-ls10k-g098": "feedback-joint-frozen-ls10k-g098",
                          **{f"{rule}-joint-ref": "feedback-joint-ref-frozen"
                             for rule in ("feedback", "ceiling", "sign", "dfa")},
                          **{f"{rule}-td3-ref": "feedback-frozen-td3-ref"
                             for rule in ("feedback", "ceiling", "sign", "dfa")}}


#: The probe's methods: every method of the table above except the later phases' own.
PROBE_METHODS: tuple[str, ...] = tuple(m for m in METHODS if not m.endswith("-ref") and m not in ("sb3-td3",))

def short_name(task: str) -> str:
    """A task's lower-case name without its version, as phase names use it (``HalfCheetah-v5`` -> ``halfcheetah``)."""
    return task.split("-")[0].lower()


#: The E4 table's tasks, in the order the grid runs them (the draft's tasks first).
E4_TASKS: tuple[str, ...] = ("HalfCheetah-v5", "Hopper-v5", "Walker2d-v5", "Reacher-v5", "InvertedDoublePendulum-v5")

PHASES: dict[str, Phase] = {
    "halfcheetah-probe": Phase(
        "HalfCheetah-v5", 30_000, (1, 2, 3), diagnostics=("backprop",), methods=PROBE_METHODS),
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
    **{f"e4-{short_name(task)}": Phase(
        task, 100_000, (1, 2, 3, 4, 5), eval_every=10_000, late_evaluations=3,
        methods=("sb3-ddpg", "sb3-td3", "feedback-joint-ref", "feedback-joint-ref-frozen", "ceiling-joint-ref",
                 "sign-joint-ref"), diagnostics=("ceiling-joint-ref", "sign-joint-ref"), diagnostic_seeds=3)
       for task in E4_TASKS},
    # the Walker2d diagnosis (studies/locomotion_diagnosis.py measured Q overestimation by the one output
    # critic): the same rules in TD3's framework, beside SB3 DDPG and TD3 (e4-walker2d's runs, the same commands)
    "walker2d-td3": Phase(
        "Walker2d-v5", 100_000, (1, 2, 3, 4, 5), eval_every=10_000, late_evaluations=3, shares="e4-walker2d",
        methods=("sb3-ddpg", "sb3-td3", "feedback-td3-ref", "feedback-frozen-td3-ref", "ceiling-td3-ref",
                 "sign-td3-ref", "dfa-td3-ref"), diagnostics=("ceiling-td3-ref", "sign-td3-ref"), diagnostic_seeds=3),
    # TD3's framework on Hopper-v5, whose one output critic overestimates most, and on HalfCheetah-v5, where
    # no single critic overestimates (three seeds; the e4 phases' SB3 runs)
    **{f"{short_name(task)}-td3": Phase(
        task, 100_000, (1, 2, 3), eval_every=10_000, late_evaluations=3, shares=f"e4-{short_name(task)}",
        methods=("sb3-ddpg", "sb3-td3", "feedback-td3-ref", "feedback-frozen-td3-ref", "ceiling-td3-ref",
                 "dfa-td3-ref"))
       for task in ("Hopper-v5", "HalfCheetah-v5")},
    # direct feedback alignment in the E4 table's framework, beside the e4 rows of the same seeds (the same commands)
    **{f"{short_name(task)}-dfa": Phase(
        task, 100_000, (1, 2, 3), eval_every=10_000, late_evaluations=3, shares=f"e4-{short_name(task)}",
        methods=("sb3-ddpg", "feedback-joint-ref", "feedback-joint-ref-frozen", "ceiling-joint-ref", "dfa-joint-ref"))
       for task in ("HalfCheetah-v5", "Hopper-v5")},
    # one task at the DDPG paper's width
    "e4-halfcheetah-400-300": Phase(
        "HalfCheetah-v5", 100_000, (1, 2, 3), hidden=(400, 300), eval_every=10_000,
        methods=("sb3-ddpg", "feedback-joint-ref", "feedback-joint-ref-frozen")),
}


STUDY = Study(name="locomotion", methods=METHODS, floors=FLOORS, phases=PHASES, work="runs/locomotion",
              out="docs/results/locomotion")


@dataclass(frozen=True)
class TaskTable:
    """A table of one row per task from one phase per task: normalized scores (random 0, SB3 DDPG 1).

    Attributes:
        name: The folder under ``--out`` it is written to (``<name>/table.md``, ``table.json``) and
            its flag (``--<name>-table``).
        phases: Task -> the phase whose finished runs make its row.
        columns: (heading, method) of every normalized column after SB3 DDPG's return.
        paired: (heading, learned method) of every paired learned − floor column (the floor: ``FLOORS``).
        methods_text: The paragraph under the table that names each method's command.
        networks: The caption's words on the networks.
    """

    name: str
    phases: dict[str, str]
    columns: tuple[tuple[str, str], ...]
    paired: tuple[tuple[str, str], ...]
    methods_text: str
    networks: str = "tanh with 64-64 hidden layers"


#: The E4 table: every method in the E4 framework (one joint output critic, SB3 DDPG's schedule).
E4_TABLE = TaskTable(
    "e4", {**{task: f"e4-{short_name(task)}" for task in E4_TASKS}, "HalfCheetah-v5 400-300": "e4-halfcheetah-400-300"},
    columns=(("SB3 TD3", "sb3-td3"), ("`feedback`", "feedback-joint-ref"),
             ("frozen floor", "feedback-joint-ref-frozen"), ("ceiling (exact feedback)", "ceiling-joint-ref"),
             ("sign feedback", "sign-joint-ref")),
    paired=(("`feedback` − floor (paired)", "feedback-joint-ref"),),
    methods_text="Methods (each a `neuron-env` command after the task, network, budget and seed flags): SB3 DDPG "
                 "`baseline --algo ddpg`, SB3 TD3 `baseline --algo td3` (the rl-zoo's MuJoCo schedule: learning "
                 "starts 10 000, γ 0.99, Gaussian action noise 0.1, batch 256, one update per step); `feedback` "
                 "`train --learner feedback --critic joint --learning-starts 10000` (the same schedule); the floor "
                 "adds `--freeze-hidden`, the ceiling `--feedback weights`, sign feedback `--feedback sign`. Updates: "
                 "90 000 per run for every method.",
    networks="tanh with 64-64 hidden layers (400-300 where the row says so)")

#: The same rules in TD3's framework (twin output critics, target smoothing, the actor every second update).
TD3_TABLE = TaskTable(
    "td3", {task: f"{short_name(task)}-td3" for task in ("HalfCheetah-v5", "Hopper-v5", "Walker2d-v5")},
    columns=(("SB3 TD3", "sb3-td3"), ("`feedback`", "feedback-td3-ref"), ("frozen floor", "feedback-frozen-td3-ref"),
             ("ceiling (exact feedback)", "ceiling-td3-ref"), ("direct feedback (DFA)", "dfa-td3-ref")),
    paired=(("`feedback` − floor (paired)", "feedback-td3-ref"), ("DFA − floor (paired)", "dfa-td3-ref")),
    methods_text="Methods (each a `neuron-env` command after the task, network, budget and seed flags): SB3 DDPG "
                 "and SB3 TD3 as in the E4 table (the same runs); the local rows run TD3's output critic around each "
                 "rule: `train --learner feedback --critic twin --target-noise 0.2 --policy-delay 2 --learning-starts "
                 "10000` (two joint critics trained to the smaller target, target smoothing 0.2 clipped at 0.5, the "
                 "actor and targets every second update: SB3 TD3's defaults); the floor adds `--freeze-hidden`, the "
                 "ceiling `--feedback weights`, DFA `--feedback direct` (Walker2d-v5's phase also runs sign feedback: "
                 "its own table). Updates: 90 000 per run (the actor's 45 000).")

TASK_TABLES: dict[str, TaskTable] = {table.name: table for table in (E4_TABLE, TD3_TABLE)}


def paired_cell(differences: list[float]) -> str:
    """``mean ± std: k of n, sign test p``, or blank without pairs."""
    if not differences:
        return ""
    return (f"{mean_std(differences)}: {sum(d > 0 for d in differences)} of {len(differences)}, "
            f"sign test p = {sign_test(differences):.2f}")


def task_table(config: StudyConfig, table: TaskTable = E4_TABLE) -> dict[str, Any]:
    """One row per task, normalized scores (random 0, SB3 DDPG 1), in the DDPG paper's layout.

    Reports every phase of ``table`` first (its own ``table.md``), then writes ``<name>/table.md``
    and ``<name>/table.json`` under ``config.out`` from the runs finished so far (a column shows how
    many seeds).

    Args:
        config: Where the runs are (``work``) and the tables go (``out``); its ``phase`` is not read.
        table: Which table: its phases, columns and caption.

    Returns:
        ``{"rows": [...]}``: per task its phase, random return, SB3 DDPG's returns, the normalized
        scores of every column, the paired differences, updates and wall times.
    """
    rows = []
    for task, name in table.phases.items():
        if not (Path(config.work) / name).is_dir():
            continue
        result = report(STUDY, StudyConfig(phase=name, work=config.work, out=config.out,
                                           neuron_env=config.neuron_env))
        by_method = {row["method"]: row for row in result["rows"]}
        if "sb3-ddpg" not in by_method:
            continue
        rows.append({"task": task, "phase": name, "random": statistics.fmean(result["random"].values()),
                     "sb3_ddpg_return": by_method["sb3-ddpg"]["returns"],
                     "normalized": {method: [v for v in by_method[method]["normalized"] if v is not None]
                                    for _, method in table.columns if method in by_method},
                     "paired": {method: by_method.get(method, {}).get("learned_minus_floor", [])
                                for _, method in table.paired},
                     "updates": {method: row["updates"] for method, row in by_method.items()},
                     "wall_time_s": {method: row["wall_time_s"] for method, row in by_method.items()}})
        rows[-1]["learned_minus_floor"] = rows[-1]["paired"][table.paired[0][1]]
    lines = ["Normalized final evaluation return per task (random policy 0, SB3 DDPG 1, per seed), mean ± std "
             f"(seeds); every network of every method is {table.networks} between the task's inputs and "
             "outputs; 100 000 task steps, 5-episode evaluations.", "",
             "| task | random | SB3 DDPG (return) | " + " | ".join(h for h, _ in table.columns)
             + " | " + " | ".join(h for h, _ in table.paired) + " |",
             "|---" * (3 + len(table.columns) + len(table.paired)) + "|"]
    for row in rows:
        cells = []
        for _, method in table.columns:
            values = row["normalized"].get(method, [])
            cells.append(f"{mean_std(values)} ({len(values)})" if values else "")
        cells += [paired_cell(row["paired"][method]) for _, method in table.paired]
        lines.append(f"| {row['task']} | {row['random']:.0f} | {mean_std(row['sb3_ddpg_return'])} "
                     f"({len(row['sb3_ddpg_return'])}) | " + " | ".join(cells) + " |")
    lines += ["", table.methods_text, "",
              f"Regenerate: `python studies/locomotion.py --{table.name}-table` (runs: `python studies/locomotion.py "
              f"--phase <phase>` for each of {', '.join(f'`{phase}`' for phase in table.phases.values())})."]
    target = Path(config.out) / table.name
    target.mkdir(parents=True, exist_ok=True)
    (target / "table.md").write_text("\n".join(lines) + "\n")
    (target / "table.json").write_text(json.dumps({"rows": rows}, indent=2) + "\n")
    print("\n".join(lines))
    return {"rows": rows}


def e4_table(config: StudyConfig) -> dict[str, Any]:
    """The E4 table (``task_table`` of ``E4_TABLE``)."""
    return task_table(config, E4_TABLE)


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python studies/locomotion.py --phase NAME [--report-only]``, or a task table's flag."""
    parser = parser_for(STUDY, __doc__.split("\n\n")[0])
    for table in TASK_TABLES.values():
        parser.add_argument(f"--{table.name}-table", action="store_true",
                            help=f"write the {table.name} table (one row per task) from its phases' finished runs "
                                 "(runs only the random policy's evaluations where they are missing)")
    args = parser.parse_args(argv)
    config = config_from(args)
    tables = [table for table in TASK_TABLES.values() if getattr(args, f"{table.name}_table")]
    for table in tables:
        task_table(config, table)
    if tables:
        return 0
    if not config.report_only:
        run_phase(STUDY, config)
    report(STUDY, config)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
