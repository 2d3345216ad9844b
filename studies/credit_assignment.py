"""Credit-assignment study: do a local learner's hidden neurons learn, and how far does each rule get?

Every learner of ``neuron_env.agents.registry`` is run on the same seeds next to its **floor**
control (the same learner with its hidden groups frozen at their random init,
``freeze_hidden=True``) and, for the feedback learner, its **ceiling** (feedback through the true
outgoing weights, i.e. pipelined backprop of the output critic's slope: a reference, not
backprop-free). The headline figure of a rule is the paired difference "learned − frozen" of the
normalized score (random policy = 0, Stable-Baselines3 DDPG with the same network, seeds and
evaluation protocol = 1).

Phases (each one ``neuron-env compare`` grid run into ``--work``, git-ignored; the light results
are copied into ``--out``)::

    python studies/credit_assignment.py --phase pendulum            # Pendulum-v1, 20 000 steps, seeds 0-9
    python studies/credit_assignment.py --phase inverted-pendulum   # InvertedPendulum-v5, 50 000 steps, seeds 0-4
    python studies/credit_assignment.py --phase pendulum-narrow     # Pendulum-v1, hidden 8-8, seeds 0-9
    python studies/credit_assignment.py --phase pendulum-narrow-dfa # direct feedback alignment beside it
    python studies/credit_assignment.py --phase mountain-car        # MountainCarContinuous-v0, 50 000 steps, seeds 0-4
    python studies/credit_assignment.py --phase pendulum --report-only   # tables again from what is there
    python studies/credit_assignment.py --phase e2                  # hidden slopes against the true gradient

The ``e2`` phase is experiment E2 (``neuron-env experiment gradient-agreement``) for every learner
whose actor step follows a slope: Stable-Baselines3 DDPG is trained on Pendulum-v1 (5 000 steps),
its actor is frozen into each learner, the learner's critics learn from DDPG's replay, and each
hidden neuron's local gradient is compared with the true gradient ``∇_{K^n} Q^μ`` of DDPG's
critic (cosine and sign agreement). The policy-gradient learners (coagent, weight-max, es) have
no slope and are not in it.

A phase is resumable: compare reuses every finished run whose options match, and continues an
interrupted local run from its checkpoint. ``--methods`` and ``--seeds`` narrow a phase (e.g. to
finish it over several sessions); the tables then say how many seeds each row has. ``--first-seed F``
runs seeds ``F .. F+seeds-1`` only, to split a grid across processes: give each its own ``--out``
and never run two processes over the same seeds (each plans its reuse when it starts).

Outputs in ``<out>/<phase>/``, all from every finished run of the phase's run folder, whichever
compare invocation made it: compare's ``results.csv``, ``scores.md``, ``scores.json`` and
``curves.png``; this study's ``runs.csv`` and ``paired.md`` / ``paired.json``: per learner, the normalized
score of learned and frozen runs (mean ± std), the paired difference per seed, its mean ± std,
and on how many seeds learning beat freezing.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

#: The learners of the study as compare methods (each with its ``-frozen`` twin).
LEARNER_METHODS: tuple[str, ...] = ("local-mlp", "local-feedback", "local-coagent", "local-weight-max", "local-es")
#: Variants of the feedback learner that need no frozen twin of their own: with the hidden groups frozen
#: the feedback kind changes nothing (only the outputs learn, from the output critic alone; checked by
#: tests/test_learner_feedback.py), so the feedback learner's floor is theirs too.
SHARED_FLOORS: dict[str, str] = {"local-feedback-sign": "local-feedback-frozen",
                                 "local-feedback-direct": "local-feedback-frozen",
                                 "local-feedback-ceiling": "local-feedback-frozen"}
#: Controls that have no frozen twin.
CONTROL_METHODS: tuple[str, ...] = ("local-feedback-ceiling",)
#: The main phases' methods: every learner, its frozen twin, the sign-feedback variant and the ceiling.
DEFAULT_METHODS: tuple[str, ...] = (*LEARNER_METHODS, "local-feedback-sign", *CONTROL_METHODS,
                                    *(m + "-frozen" for m in LEARNER_METHODS))


@dataclass(frozen=True)
class Phase:
    """One task of the study."""

    task: str
    """Gymnasium id."""
    steps: int
    """Task-step budget of every run."""
    seeds: int
    """Seeds ``0 .. seeds-1``."""
    methods: tuple[str, ...] | None = None
    """The phase's local methods; ``None``: every learner, its frozen twin and the ceiling."""
    runs: str | None = None
    """The phase whose run folder it shares (its random and SB3 runs); ``None``: its own."""
    hidden: tuple[int, ...] = (64, 64)
    """Hidden sizes of every network of the phase (local methods and SB3 DDPG alike)."""
    local_noise: str = "own"
    """``CompareConfig.local_noise``: ``"task"`` gives the local methods SB3 DDPG's noise on the task."""
    eval_every: int = 2000
    """Task steps between evaluations (``--eval-every`` overrides it)."""


#: The framework ablation: the ceiling (exact feedback) with the replay as acted, and in LocalDDPG's framework.
FRAMEWORK_METHODS: tuple[str, ...] = ("local-feedback-ceiling", "local-feedback-ceiling-stored",
                                      "local-feedback-ceiling-ddpg")
#: The narrow network's methods: the off-policy learner (its floor and ceiling) and ES (its floor).
NARROW_METHODS: tuple[str, ...] = ("local-feedback", "local-feedback-frozen", "local-feedback-sign",
                                   "local-feedback-ceiling", "local-es", "local-es-frozen")
#: MountainCarContinuous-v0's methods: the learner that learns on Pendulum-v1, its floor and its ceiling.
MOUNTAIN_CAR_METHODS: tuple[str, ...] = ("local-feedback", "local-feedback-frozen", "local-feedback-ceiling")
PHASES: dict[str, Phase] = {
    "pendulum": Phase("Pendulum-v1", 20_000, 10),
    "framework": Phase("Pendulum-v1", 20_000, 3, FRAMEWORK_METHODS, runs="pendulum"),
    "inverted-pendulum": Phase("InvertedPendulum-v5", 50_000, 5),
    # the discriminating setting: 8 hidden neurons per layer are too few random features
    "pendulum-narrow": Phase("Pendulum-v1", 20_000, 10, NARROW_METHODS, hidden=(8, 8)),
    # direct feedback alignment, added later, beside the same random and SB3 DDPG runs
    "pendulum-narrow-dfa": Phase("Pendulum-v1", 20_000, 10, ("local-feedback-direct",), runs="pendulum-narrow",
                                 hidden=(8, 8)),
    "e2": Phase("Pendulum-v1", 5_000, 1),
    # the sparse-reward task: the goal is found by exploring, so every method explores as SB3 DDPG does
    # there (the rl-zoo's Ornstein-Uhlenbeck noise 0.5); the zoo trains 300 000 steps, this phase 50 000
    "mountain-car": Phase("MountainCarContinuous-v0", 50_000, 5, MOUNTAIN_CAR_METHODS, local_noise="task",
                          eval_every=5000),
}
#: The feedback learner's kinds that E2 measures (besides the ``ddpg`` learner's mlp sub-critics).
E2_FEEDBACK: tuple[str, ...] = ("random", "sign", "weights")


@dataclass
class StudyConfig:
    """One phase of the study (every field is a flag of the same name)."""

    phase: str = "pendulum"
    """A key of ``PHASES``: ``pendulum``, ``framework``, ``inverted-pendulum``, ``pendulum-narrow``, ``mountain-car``
    or ``e2``."""
    methods: tuple[str, ...] = ()
    """Local methods to run; default the phase's (``random`` and ``sb3-ddpg`` always run: they normalize)."""
    seeds: int | None = None
    """Seeds ``first_seed .. first_seed + seeds - 1``; default the phase's."""
    first_seed: int = 0
    """First seed of the grid: splits a phase across processes (each with its own ``--out``)."""
    eval_every: int | None = None
    """Task steps between evaluations; default the phase's (2000; 5000 on MountainCarContinuous-v0)."""
    eval_episodes: int = 20
    """Evaluation episodes (20 starts: 5 misread a policy, see docs/results/sample-efficiency)."""
    workers: int = 2
    """Runs in parallel (processes)."""
    work: str = "runs/credit-assignment"
    """Where the runs live (checkpoints included; git-ignored)."""
    out: str = "docs/results/credit-assignment"
    """Where the light results go (committed)."""
    report_only: bool = False
    """Rewrite the tables from the runs there are; run nothing."""


def compare_config(config: StudyConfig) -> Any:
    """The ``CompareConfig`` of a phase."""
    from neuron_env.baselines.compare import CompareConfig

    phase = PHASES[config.phase]
    return CompareConfig(
        tasks=(phase.task,), methods=("random", "sb3-ddpg", *phase_methods(config)), steps=phase.steps,
        hidden=phase.hidden,
        seeds=config.seeds or phase.seeds, first_seed=config.first_seed,
        eval_every=config.eval_every or phase.eval_every,
        eval_episodes=config.eval_episodes,
        workers=config.workers, out=str(Path(config.work) / (phase.runs or config.phase)), tensorboard=False,
        local_noise=phase.local_noise,
    )


def phase_methods(config: StudyConfig) -> tuple[str, ...]:
    """The local methods a phase runs: ``--methods`` if given, else the phase's own, else every learner's."""
    if config.methods:
        return config.methods
    return PHASES[config.phase].methods or DEFAULT_METHODS


def collect_final_returns(task_folder: Path) -> dict[str, dict[int, float]]:
    """``method -> seed -> final evaluation return`` of every completed run under a compare run folder.

    Reads ``<method>/seed<S>/summary.json`` directly, so that runs of several compare invocations
    (different methods or seed counts over several sessions) all count.
    """
    table: dict[str, dict[int, float]] = {}
    for summary_path in sorted(task_folder.glob("*/seed*/summary.json")):
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
        value = summary.get("final_eval_return_mean")
        if summary.get("status") == "completed" and value is not None:
            seed = int(summary_path.parent.name.removeprefix("seed"))
            table.setdefault(summary_path.parent.parent.name, {})[seed] = float(value)
    return table


def _mean_std(values: list[float]) -> tuple[float, float]:
    if not values:
        return math.nan, math.nan
    return statistics.fmean(values), statistics.pstdev(values) if len(values) > 1 else 0.0


def sign_test_p(differences: list[float]) -> float:
    """Exact two-sided sign test: the chance of a win/loss split at least this uneven if each seed were a coin flip.

    Ties (a difference of exactly 0, e.g. learned and frozen both at a task's maximum) are left out,
    as the sign test does; with no untied seed the answer is 1.
    """
    wins = sum(d > 0 for d in differences)
    losses = sum(d < 0 for d in differences)
    n = wins + losses
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(wins, losses) + 1)) / 2**n
    return min(1.0, 2.0 * tail)


def paired_table(returns: dict[str, dict[int, float]], methods: tuple[str, ...]) -> dict[str, Any]:
    """Normalized scores per seed and the paired "learned − frozen" difference per learner.

    Each seed's return is normalized against the *means* over seeds of ``random`` (0) and
    ``sb3-ddpg`` (1), as ``neuron-env compare`` does.

    Args:
        returns: ``method -> seed -> final return`` (from ``read_final_returns``).
        methods: The local methods of the phase.

    Returns:
        ``{"random_mean", "reference_mean", "rows": {method: {...}}}``; a row holds ``normalized``
        per seed, ``mean``/``std``, and for learners with a floor (their frozen twin, or the one
        ``SHARED_FLOORS`` names) the paired figures and the floor's name under ``floor``.
    """
    random_mean = _mean_std(list(returns.get("random", {}).values()))[0]
    reference_mean = _mean_std(list(returns.get("sb3-ddpg", {}).values()))[0]
    scale = reference_mean - random_mean

    def normalized(method: str) -> dict[int, float]:
        return {seed: (value - random_mean) / scale for seed, value in returns.get(method, {}).items()}

    rows: dict[str, Any] = {}
    for method in ("sb3-ddpg", *methods):
        if method.endswith("-frozen"):
            continue
        scores = normalized(method)
        mean, std = _mean_std(list(scores.values()))
        row: dict[str, Any] = {"normalized": scores, "mean": mean, "std": std, "seeds": len(scores)}
        frozen_method = method + "-frozen" if method + "-frozen" in methods else SHARED_FLOORS.get(method, "")
        if frozen_method in methods:
            row["floor"] = frozen_method
            frozen = normalized(frozen_method)
            paired = sorted(set(scores) & set(frozen))
            differences = [scores[s] - frozen[s] for s in paired]
            row["frozen"] = frozen
            row["frozen_mean"], row["frozen_std"] = _mean_std(list(frozen.values()))
            row["difference"] = dict(zip(paired, differences, strict=True))
            row["difference_mean"], row["difference_std"] = _mean_std(differences)
            row["wins"] = sum(d > 0 for d in differences)
            row["sign_test_p"] = sign_test_p(differences)
            row["paired_seeds"] = len(paired)
        rows[method] = row
    return {"random_mean": random_mean, "reference_mean": reference_mean, "rows": rows}


def _format(mean: float, std: float) -> str:
    return "n/a" if math.isnan(mean) else f"{mean:.2f} ± {std:.2f}"


def render_paired(table: dict[str, Any], phase: Phase, command: str) -> str:
    """``paired.md``: the summary table and the per-seed table."""
    rows = table["rows"]
    lines = [
        f"{phase.task}, hidden {'-'.join(map(str, phase.hidden))} tanh, {phase.steps} task steps; "
        f"normalized score (random {table['random_mean']:.1f} = 0, "
        f"SB3 DDPG {table['reference_mean']:.1f} = 1, means over seeds); mean ± std over seeds."
        + (" Local methods explore with SB3 DDPG's noise on the task (--local-noise task)."
           if phase.local_noise == "task" else ""),
        "",
        "| method | seeds | learned | frozen hidden | learned − frozen (paired) | learned > frozen | sign test p |",
        "|---|---|---|---|---|---|---|",
    ]
    for method, row in rows.items():
        if "frozen" in row:
            lines.append(f"| {method} | {row['seeds']} | {_format(row['mean'], row['std'])} | "
                         f"{_format(row['frozen_mean'], row['frozen_std'])} | "
                         f"{_format(row['difference_mean'], row['difference_std'])} | "
                         f"{row['wins']} of {row['paired_seeds']} | {row['sign_test_p']:.3f} |")
        else:
            lines.append(f"| {method} | {row['seeds']} | {_format(row['mean'], row['std'])} | | | | |")
    seeds = sorted({s for row in rows.values() for s in row["normalized"]})
    lines += ["", "Per seed (normalized; learned / frozen):", "",
              "| method | " + " | ".join(f"seed {s}" for s in seeds) + " |",
              "|---|" + "---|" * len(seeds)]
    for method, row in rows.items():
        cells = []
        for s in seeds:
            learned = row["normalized"].get(s)
            text = "–" if learned is None else f"{learned:.2f}"
            if "frozen" in row:
                frozen = row["frozen"].get(s)
                text += " / " + ("–" if frozen is None else f"{frozen:.2f}")
            cells.append(text)
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    shared = {method: row["floor"] for method, row in rows.items()
              if "floor" in row and row["floor"] != method + "-frozen"}
    if shared:
        lines += ["", "Paired with another learner's floor: " + "; ".join(
            f"{method} with {floor}" for method, floor in shared.items())
            + " (with the hidden groups frozen, the feedback kind changes nothing)."]
    if any("frozen" in row for row in rows.values()):
        lines += ["", "Sign test: exact two-sided p of the learned/frozen win-loss split over seeds (ties left out); "
                  "below 0.05 needs at least 6 of 6, 8 of 9 or 9 of 10 seeds one way."]
    lines += ["", f"Regenerate: `{command}`"]
    return "\n".join(lines) + "\n"


def write_phase_scores(config: StudyConfig, seeds: int, target: Path, command: str) -> list[str]:
    """``results.csv``, ``scores.md``, ``scores.json`` and ``curves.png`` of every finished run of a phase.

    The phase's run folder gathers runs of several compare invocations (method subsets, seed
    ranges, sessions); these files cover them all, whichever invocation ran last.

    Args:
        config: The phase (its methods are the rows, those without a finished run left out).
        seeds: Seeds ``0 .. seeds-1``.
        target: Where the files go.
        command: The study command that regenerates them (quoted in ``scores.md``).

    Returns:
        The methods in the files.
    """
    from dataclasses import replace

    from neuron_env.baselines.compare_config import plan_runs
    from neuron_env.baselines.report import write_reports
    from neuron_env.baselines.runners import RESULTS_COLUMNS, result_row, run_state

    from neuron_env.run_output import write_csv

    every = replace(compare_config(config), seeds=seeds, first_seed=0)
    finished = {}
    for spec in plan_runs(every):
        state, summary = run_state(spec, every.out)
        if state == "finished":
            finished[spec] = result_row(spec, summary)
    ran = {spec.method for spec in finished}
    methods = tuple(m for m in every.methods if m in ran)
    rows = list(finished.values())
    write_csv(target / "results.csv", rows, RESULTS_COLUMNS)
    # the curves are read from the run folders (every.out), the files written into target
    write_reports(replace(every, methods=methods), rows, command, out=target)
    return list(methods)


def report(config: StudyConfig) -> dict[str, Any]:
    """Write the phase's tables into ``out`` from every finished run in its run folder.

    ``paired.md`` / ``paired.json`` and ``runs.csv`` (this study's), and ``results.csv``,
    ``scores.md``, ``scores.json`` and ``curves.png`` (compare's) over seeds
    ``0 .. first_seed + seeds - 1``.
    """
    from neuron_env.run_output import atomic_write_json, atomic_write_text, write_csv

    phase = PHASES[config.phase]
    source = Path(config.work) / (phase.runs or config.phase)
    target = Path(config.out) / config.phase
    target.mkdir(parents=True, exist_ok=True)
    # the normalization and every row over seeds 0 .. first_seed + seeds - 1 only
    seeds = config.first_seed + (config.seeds or phase.seeds)
    returns = {method: {s: v for s, v in by_seed.items() if s < seeds}
               for method, by_seed in collect_final_returns(source / "runs" / phase.task.replace("/", "_")).items()}
    if not returns:
        raise FileNotFoundError(f"no finished runs under {source}: run the phase first")
    rows = [{"method": m, "seed": seed, "final_eval_mean": value}
            for m, by_seed in sorted(returns.items()) for seed, value in sorted(by_seed.items())]
    write_csv(target / "runs.csv", rows, ("method", "seed", "final_eval_mean"))
    table = paired_table(returns, phase_methods(config))
    command = f"python studies/credit_assignment.py --phase {config.phase}" + (
        f" --seeds {config.seeds}" if config.seeds else "") + (
        f" --first-seed {config.first_seed}" if config.first_seed else "") + (
        f" --methods {' '.join(config.methods)}" if config.methods else "")
    write_phase_scores(config, seeds, target, command)
    atomic_write_text(target / "paired.md", render_paired(table, phase, command))
    atomic_write_json(target / "paired.json", {"phase": config.phase, "task": phase.task, "steps": phase.steps,
                                              "command": command, **table})
    return table


def e2_table(result: dict[str, Any], command: str) -> str:
    """``e2/table.md``: per learner, cosine and sign agreement over hidden neurons and at the output."""
    names = {"mlp": "ddpg (mlp sub-critics)", "feedback-random": "feedback (random, FA)",
             "feedback-sign": "feedback (sign)", "feedback-weights": "feedback (weights: ceiling)"}
    lines = [
        f"E2 on {result['config']['task']}: SB3 DDPG {result['config']['steps']} steps (final eval "
        f"{result['ddpg']['final_eval_return_mean']:.1f}), its actor frozen into each learner, "
        f"{result['config']['local_updates']} critic updates on its replay, {result['held_out_samples']} held-out "
        "states. Per neuron: cosine and sign agreement of the local gradient with ∇_K Q^μ; mean over neurons.",
        "",
        "| learner | hidden cosine | hidden sign agreement | hidden slope sign agreement | output cosine |",
        "|---|---|---|---|---|",
    ]
    for run in result["runs"]:
        hidden = [layer for name, layer in run["layers"].items() if name != "out"]
        cosine = [c for layer in hidden for c in layer["cosine"] if c is not None and not math.isnan(c)]
        sign = [c for layer in hidden for c in layer["sign_agreement"] if c is not None and not math.isnan(c)]
        slope = [c for layer in hidden for c in layer["slope_sign_agreement"] if c is not None and not math.isnan(c)]
        output = run["layers"]["out"]["cosine_mean"]
        lines.append(f"| {names.get(run['critic'], run['critic'])} | {statistics.fmean(cosine):.3f} | "
                     f"{statistics.fmean(sign):.3f} | {statistics.fmean(slope):.3f} | {output:.3f} |")
    lines += ["", "Random directions: cosine 0, sign agreement 0.5.", "", f"Regenerate: `{command}`"]
    return "\n".join(lines) + "\n"


def run_e2(config: StudyConfig) -> dict[str, Any]:
    """E2 for the learners with a slope; writes ``<out>/e2/gradient_agreement.json``, ``.png`` and ``table.md``."""
    from neuron_env.baselines.experiments.gradient_agreement import GradientAgreementConfig, run_gradient_agreement

    from neuron_env.run_output import atomic_write_text

    target = Path(config.out) / "e2"
    result_path = target / "gradient_agreement.json"
    if config.report_only:
        result = json.loads(result_path.read_text(encoding="utf-8"))
    else:
        result = run_gradient_agreement(GradientAgreementConfig(
            steps=PHASES["e2"].steps, critics=("mlp",), feedback=E2_FEEDBACK, critic_context="task",
            out=str(Path(config.work) / "e2"), progress=False))
        target.mkdir(parents=True, exist_ok=True)
        for name in ("gradient_agreement.json", "gradient_agreement.png"):
            shutil.copyfile(Path(config.work) / "e2" / name, target / name)
    atomic_write_text(target / "table.md", e2_table(result, "python studies/credit_assignment.py --phase e2"))
    return {"rows": result["runs"]}


def run(config: StudyConfig) -> dict[str, Any]:
    """Run a phase (unless ``report_only``) and write its tables."""
    if config.phase not in PHASES:
        raise SystemExit(f"--phase {config.phase!r} is unknown; choose one of {sorted(PHASES)}")
    if config.phase == "e2":
        return run_e2(config)
    if not config.report_only:
        from neuron_env.baselines.compare import compare

        compare(compare_config(config))
    return report(config)


def main(argv: list[str] | None = None) -> int:
    """Command line (see the module doc)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    defaults = StudyConfig()
    parser.add_argument("--phase", choices=sorted(PHASES), default=defaults.phase)
    parser.add_argument("--methods", nargs="+", default=list(defaults.methods))  # default: the phase's
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--first-seed", type=int, default=defaults.first_seed)
    parser.add_argument("--eval-every", type=int, default=defaults.eval_every)
    parser.add_argument("--eval-episodes", type=int, default=defaults.eval_episodes)
    parser.add_argument("--workers", type=int, default=defaults.workers)
    parser.add_argument("--work", default=defaults.work)
    parser.add_argument("--out", default=defaults.out)
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args(argv)
    config = StudyConfig(phase=args.phase, methods=tuple(args.methods), seeds=args.seeds,
                         first_seed=args.first_seed, eval_every=args.eval_every,
                         eval_episodes=args.eval_episodes, workers=args.workers, work=args.work, out=args.out,
                         report_only=args.report_only)
    table = run(config)
    page = "table.md" if config.phase == "e2" else "paired.md"
    print((Path(config.out) / config.phase / page).read_text(encoding="utf-8"))
    return 0 if table["rows"] else 1


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    sys.exit(main())
