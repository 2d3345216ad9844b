"""Sample-efficiency sweep of the local ``mlp`` critic on Pendulum-v1 (issue #4).

Runs named variants of ``neuron_env.agents.train.TrainConfig`` (each a dict of overrides over one
base: ``critic=mlp``, ``critic_context=task``, hidden 64 64, 20 000 task steps, evaluation every
2 000 steps over 5 episodes) for the given seeds, one run after the other, and writes:

``<out>/data/<variant>/seed<S>/``
    the run's ``metrics.csv``, ``summary.json``, ``config.json`` and ``provenance.json`` (the git
    commit it started on; light files only: the run
    itself, checkpoint included, lives under ``<work>``, which is git-ignored, and its checkpoint
    is deleted once the run has finished unless ``--keep-checkpoints``).
``<out>/results.csv``
    one row per finished run found under ``<out>/data`` (every phase, every variant).
``<out>/table.md``
    per variant: the tuning-seed rows and the mean ± std over the fresh seeds of the final
    return and the normalized score (random policy = 0, SB3 DDPG 64-64 tanh at the same step
    budget = 1, both read from ``--reference``), steps to the threshold, wall time.
``<out>/table-fresh.md``
    the fresh-seed section of ``table.md`` alone (``docs/results.md`` includes it).
``<out>/curves.png``
    evaluation return against task steps per variant, with SB3 DDPG's curve.

Resumable: a run whose ``summary.json`` under ``<out>/data`` says ``completed`` (or ``diverged``)
is skipped; a run interrupted mid-way continues from its checkpoint under ``<work>``.

The study of ``README.md`` beside this file is three phases, run from the repository root::

    python studies/sample_efficiency_sweep.py --phase A   # one change at a time, tuning seed 100
    python studies/sample_efficiency_sweep.py --phase B   # the chosen variant and the defaults, seeds 0 1 2
    python studies/sample_efficiency_sweep.py --phase C   # the frozen-hidden diagnostic, seeds 0 1 2
    python studies/sample_efficiency_sweep.py --phase check   # the defaults on seed 100 again
    python studies/sample_efficiency_sweep.py --phase D   # two stabilizers of gamma-0.98, seeds 0-4
    python studies/sample_efficiency_sweep.py --phase E   # hidden noise 0.2, 2 updates/step; seeds 0-4
    python studies/sample_efficiency_sweep.py --phase F   # both together, to 30 000 steps; seeds 0-4
    python studies/sample_efficiency_sweep.py --phase G   # hidden noise 0.2 and gamma-0.98, seeds 5-9
    python studies/sample_efficiency_sweep.py --phase H   # max-norm 3 on the actor's weights, seeds 0-4

and ``--report-only`` rewrites ``results.csv``, ``table.md`` and ``curves.png`` from what is there.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from neuron_env.run_output import atomic_write_text
from neuron_env.run_output import write_csv as write_csv_file

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "docs" / "results" / "sample-efficiency"  # where the outputs live (the code lives in studies/)

#: What every variant starts from (the other fields keep TrainConfig's defaults).
BASE: dict[str, Any] = {
    "task": "Pendulum-v1",
    "learner": "ddpg",
    "critic": "mlp",
    "critic_context": "task",
    "hidden": [64, 64],
    "steps": 20_000,
    "eval_every": 2_000,
    "eval_episodes": 5,
    "device": "cpu",
    "threads": 1,
    "progress": False,
    "tensorboard": False,
}

#: Named variants: overrides of ``BASE``, fixed before any run. ``ups4`` and ``batch-256`` were planned
#: but not run: the measured cost of a run (README.md) did not leave room for them in the budget.
VARIANTS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "ups2": {"updates_per_step": 2},
    "ups4": {"updates_per_step": 4},
    "adam-1e-3": {"actor_optimizer": "adam", "lr_actor": 1e-3},
    "gamma-0.98": {"gamma": 0.98},
    "batch-256": {"batch_size": 256},
    "noise-0.2": {"noise_scale": 0.2},
    "frozen-hidden": {"lr_actor_hidden": 0.0},
    # the defaults again under another name: a rerun of the seed-100 timing run on later code
    "defaults-rerun": {},
    # Phase D (third round): the best variant plus one stabilizer each, chosen from the diagnosis
    # (instability of the learned policy), not tuned on any seed
    "gamma-0.98-delay-2": {"gamma": 0.98, "policy_delay": 2},
    "gamma-0.98-hidden-lr-1.25e-3": {"gamma": 0.98, "lr_actor_hidden": 1.25e-3},
    # Phase E (third round): the two levers of the list not yet combined with gamma-0.98,
    # fixed before Phase D's results: more hidden exploration (to identify the hidden slopes, E2)
    # and a replay ratio of 2 (updates are cheap when local)
    "gamma-0.98-hidden-noise-0.2": {"gamma": 0.98, "noise_scale_hidden": 0.2},
    "gamma-0.98-ups2": {"gamma": 0.98, "updates_per_step": 2},
    # Phase F (fourth round): Phase E's two levers together, run on to 30 000 task steps (2x SB3
    # DDPG's steps to -200) so the steps-to-threshold half of the bar is measured; scored at 20 000
    "gamma-0.98-hidden-noise-0.2-ups2-30k": {"gamma": 0.98, "noise_scale_hidden": 0.2, "updates_per_step": 2,
                                             "steps": 30_000},
    # Phase H (fifth round): a per-neuron max-norm cap on the actor's input weights (3, the usual value
    # of max-norm regularization for inputs of unit scale), fixed after sample_efficiency_fallback.py had measured the
    # defaults' weight norms growing 5-10x over a run while the hidden layers saturate; not tuned
    "max-norm-3": {"actor_max_norm": 3.0},
}

#: The phases of the study: (variants, seeds). Phase A: one change at a time on the tuning seed;
#: Phase B: the best Phase A variant by the selection score (mean eval return over the last three
#: evaluations on seed 100) and the defaults, on fresh seeds; Phase C: the frozen-hidden diagnostic
#: on the same fresh seeds (added once Phase B had left compute for it; not a selection). Phase D
#: (third round): two stabilizers on top of gamma-0.98 (TD3's delayed actor updates; a 4x smaller
#: actor step in the hidden layers), and gamma-0.98 and the defaults on two more seeds, so every
#: row has five fresh seeds (0-4; B's runs of seeds 0-2 are reused). Phase E: hidden noise 0.2
#: and two updates per task step on top of gamma-0.98, seeds 0-4. Phase F (fourth round): both
#: levers together, to 30 000 steps, seeds 0-4. Phase G: the highest-mean variant and its base on
#: five more fresh seeds (5-9), so that pair is compared on ten. Phase H (fifth round): the actor
#: max-norm cap against the defaults on seeds 0-4.
PHASES: dict[str, tuple[list[str], list[int]]] = {
    "A": (["defaults", "adam-1e-3", "gamma-0.98", "frozen-hidden", "noise-0.2", "ups2"], [100]),
    "B": (["gamma-0.98", "defaults"], [0, 1, 2]),
    "C": (["frozen-hidden"], [0, 1, 2]),
    "check": (["defaults-rerun"], [100]),
    "D": (["gamma-0.98-delay-2", "gamma-0.98-hidden-lr-1.25e-3", "gamma-0.98", "defaults"], [0, 1, 2, 3, 4]),
    "E": (["gamma-0.98-ups2", "gamma-0.98-hidden-noise-0.2"], [0, 1, 2, 3, 4]),
    "F": (["gamma-0.98-hidden-noise-0.2-ups2-30k"], [0, 1, 2, 3, 4]),
    "G": (["gamma-0.98-hidden-noise-0.2", "gamma-0.98"], [5, 6, 7, 8, 9]),
    "H": (["max-norm-3"], [0, 1, 2, 3, 4]),
}


@dataclass
class SweepConfig:
    """Everything that defines a sweep (one dataclass, a docstring per field)."""

    variants: list[str] = field(default_factory=lambda: ["defaults"])
    """Names of the variants to run (keys of ``VARIANTS``); ignored with ``phase``."""
    seeds: list[int] = field(default_factory=lambda: [100])
    """Seeds to run every variant with; ignored with ``phase``."""
    phase: str | None = None
    """``A`` to ``H`` or ``check``: run that phase's variants and seeds (``PHASES``) instead."""
    shard: str = "0/1"
    """``K/N``: run only planned runs K, K+N, K+2N, ... (split a phase over N processes on N cores)."""
    steps: int | None = None
    """Task steps per run; default the base's 20 000 (a variant may set its own)."""
    eval_every: int | None = None
    """Task steps between evaluations; default the base's 2 000."""
    eval_episodes: int | None = None
    """Episodes per evaluation; default the base's 5."""
    learning_starts: int | None = None
    """Warm-up task steps; default TrainConfig's (1 000)."""
    out: str = str(RESULTS)
    """Folder of ``data/``, ``results.csv``, ``table.md`` and ``curves.png``."""
    work: str = str(REPO / "runs" / "sample-efficiency")
    """Folder the runs train in (checkpoints; git-ignored)."""
    keep_checkpoints: bool = False
    """Keep ``checkpoint.pt`` of finished runs under ``work``."""
    reference: str = str(REPO / "docs" / "results" / "pendulum" / "scores.json")
    """``neuron-env compare`` scores JSON with the random policy and the reference method's curve."""
    reference_method: str = "sb3-ddpg"
    """Method of ``reference`` that scores 1 (SB3 DDPG, 64-64 tanh)."""
    context_method: str = "local-mlp"
    """Method of ``reference`` shown beside the sweep for context (the default local learner's committed
    50 000-step runs, seeds 0-2); empty: none."""
    reference_step: int | None = None
    """Task step of the reference curve to normalize with; default the run length (20 000)."""
    threshold: float = -200.0
    """Return threshold for 'steps to threshold'."""
    tuning_seeds: list[int] = field(default_factory=lambda: [100])
    """Seeds reported as tuning rows in the table; all other seeds are the fresh evaluation seeds."""
    report_only: bool = False
    """Train nothing; only rewrite results.csv, table.md and curves.png."""


# ----------------------------------------------------------------------------------- config
def parse_args(argv: list[str] | None = None) -> SweepConfig:
    """Build a ``SweepConfig`` from the command line (one flag per field, help from its docstring)."""
    from neuron_env.configs import field_docs

    docs = field_docs(SweepConfig)
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    kinds = {"variants": str, "seeds": int, "tuning_seeds": int}
    for f in dataclasses.fields(SweepConfig):
        flag = "--" + f.name.replace("_", "-")
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        if f.name in kinds:
            parser.add_argument(flag, nargs="+", type=kinds[f.name], default=default, help=docs.get(f.name))
        elif f.type in (bool, "bool"):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default, help=docs.get(f.name))
        elif f.name in ("steps", "eval_every", "eval_episodes", "learning_starts", "reference_step"):
            parser.add_argument(flag, type=int, default=default, help=docs.get(f.name))
        elif f.name == "threshold":
            parser.add_argument(flag, type=float, default=default, help=docs.get(f.name))
        elif f.name == "phase":
            parser.add_argument(flag, choices=sorted(PHASES), default=default, help=docs.get(f.name))
        else:
            parser.add_argument(flag, type=str, default=default, help=docs.get(f.name))
    config = SweepConfig(**vars(parser.parse_args(argv)))
    try:
        shard_index, shard_count = (int(x) for x in config.shard.split("/"))
        if not 0 <= shard_index < shard_count:
            raise ValueError
    except ValueError:
        parser.error(f"--shard {config.shard!r}; use K/N with 0 <= K < N, e.g. 0/2 and 1/2 for two processes")
    unknown = [v for v in config.variants if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s) {unknown}; choose from {sorted(VARIANTS)}")
    return config


def plan(config: SweepConfig) -> list[tuple[str, int]]:
    """The (variant, seed) runs the config asks for, in order."""
    variants, seeds = PHASES[config.phase] if config.phase else (config.variants, config.seeds)
    shard_index, shard_count = (int(x) for x in config.shard.split("/"))
    return [(variant, seed) for variant in variants for seed in seeds][shard_index::shard_count]


def train_config(config: SweepConfig, variant: str, seed: int) -> dict[str, Any]:
    """The TrainConfig fields of one run (without ``out``)."""
    fields_ = dict(BASE)
    for name in ("steps", "eval_every", "eval_episodes", "learning_starts"):
        if getattr(config, name) is not None:
            fields_[name] = getattr(config, name)
    fields_.update(VARIANTS[variant])
    fields_["seed"] = seed
    return fields_


#: Fields that do not change what a run computes (ignored when checking a run folder's config).
_COSMETIC = ("out", "progress", "tensorboard", "threads")


def _flat(stored: dict[str, Any]) -> dict[str, Any]:
    """A stored ``config`` as one flat mapping (this version's holds the learner's options under ``learner_config``)."""
    return {**stored, **stored.get("learner_config", {})}


def _same_run(stored: dict[str, Any], wanted: dict[str, Any]) -> bool:
    flat = _flat(stored)
    return all(flat.get(k) == v for k, v in wanted.items() if k not in _COSMETIC)


# ----------------------------------------------------------------------------------- running
def run_one(config: SweepConfig, variant: str, seed: int) -> str:
    """Train one run unless it is finished; copy its light outputs to ``<out>/data``. Returns what happened."""
    from neuron_env.agents.errors import DivergenceError
    from neuron_env.agents.train import CHECKPOINT_NAME, TrainConfig, train

    wanted = train_config(config, variant, seed)
    data = Path(config.out) / "data" / variant / f"seed{seed}"
    work = Path(config.work) / variant / f"seed{seed}"
    done = data / "summary.json"
    if done.is_file():
        summary = json.loads(done.read_text())
        if summary["status"] in ("completed", "diverged") and _same_run(summary["config"], wanted):
            _relative_out(data)
            return "skipped"
    train_cfg = TrainConfig.from_settings(wanted, out=str(work))
    resume = None
    work_summary = work / "summary.json"
    if (work / "config.json").is_file():
        stored = json.loads((work / "config.json").read_text())
        finished = work_summary.is_file() \
            and json.loads(work_summary.read_text())["status"] in ("completed", "diverged")
        if not _same_run(stored, wanted):
            shutil.rmtree(work)  # another configuration under the same name: start over
        elif finished and (work / "metrics.csv").is_file():
            resume = "finished"
        elif (work / CHECKPOINT_NAME).is_file():
            resume = str(work)
        else:
            shutil.rmtree(work)
    outcome = "adopted" if resume == "finished" else "resumed" if resume else "trained"
    data.mkdir(parents=True, exist_ok=True)
    if resume != "finished":
        atomic_write_text(data / "provenance.json", json.dumps(provenance(), indent=2))
        try:
            train(train_cfg, resume=resume)
        except DivergenceError:
            outcome = "diverged"
    for name in ("metrics.csv", "summary.json", "config.json"):
        if (work / name).is_file():
            shutil.copy2(work / name, data / name)
    _relative_out(data)
    if not config.keep_checkpoints:
        (work / CHECKPOINT_NAME).unlink(missing_ok=True)
    return outcome


def provenance() -> dict[str, Any]:
    """The code a run starts on: git commit and whether the learner's sources differ from it."""
    import subprocess

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return ""

    return {"commit": git("rev-parse", "HEAD"),
            "uncommitted_learner_changes": bool(git("status", "--porcelain", "agents", "neuron_env")),
            "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}


def _relative_out(data: Path) -> None:
    """Write the ``out`` of the copied config/summary relative to the repository (no machine paths in docs)."""
    for name in ("config.json", "summary.json"):
        path = data / name
        if not path.is_file():
            continue
        content = json.loads(path.read_text())
        config = content.get("config", content)
        out = Path(config.get("out") or "")
        if out.is_absolute() and out.is_relative_to(REPO):
            config["out"] = str(out.relative_to(REPO))
            atomic_write_text(path, json.dumps(content, indent=2))


# ----------------------------------------------------------------------------------- reading
def read_reference(config: SweepConfig, steps: int) -> dict[str, Any]:
    """Random-policy mean and the reference method's eval mean at ``reference_step`` from the scores JSON."""
    scores = json.loads(Path(config.reference).read_text())
    task = scores["tasks"][BASE["task"]]
    method = task["methods"][config.reference_method]
    step = config.reference_step if config.reference_step is not None else steps
    curve = method["curve"]
    if step not in curve["steps"]:
        raise SystemExit(f"{config.reference} has no {config.reference_method} evaluation at step {step} "
                         f"(it has {curve['steps']}); run the baseline at that budget for the reference")
    index = curve["steps"].index(step)
    result: dict[str, Any] = {
        "path": config.reference,
        "method": config.reference_method,
        "step": step,
        "random": float(task["random_mean"]),
        "reference": float(curve["mean"][index]),
        "reference_std": float(curve["std"][index]),
        "reference_seeds": int(curve["seeds"]),
        "reference_steps_to_threshold": method.get("steps_to_threshold"),
        "reference_threshold": task.get("threshold"),
        "reference_eval_every": scores.get("config", {}).get("eval_every"),
        "reference_run_steps": task.get("steps"),
        "curve_steps": list(curve["steps"]),
        "curve_mean": [float(x) for x in curve["mean"]],
        "context": None,
    }
    context = task["methods"].get(config.context_method) if config.context_method else None
    if context is not None:
        c = context["curve"]
        result["context"] = {"method": config.context_method, "seeds": int(c["seeds"]), "steps": list(c["steps"]),
                             "mean": [float(x) for x in c["mean"]], "std": [float(x) for x in c["std"]]}
    return result


def read_metrics(path: Path) -> list[tuple[int, float]]:
    """(step, eval mean) of every row of a metrics.csv."""
    with open(path, newline="") as stream:
        return [(int(r["step"]), float(r["eval_return_mean"])) for r in csv.DictReader(stream) if r["eval_return_mean"]]


def first_reaching(curve: list[tuple[int, float]], threshold: float) -> int | None:
    """First step whose eval mean is >= threshold."""
    return next((step for step, value in curve if value >= threshold), None)


def collect(config: SweepConfig) -> list[dict[str, Any]]:
    """One row per run folder under ``<out>/data`` (variants in ``VARIANTS`` order, then seeds)."""
    rows = []
    root = Path(config.out) / "data"
    order = {name: i for i, name in enumerate(VARIANTS)}
    folders = sorted(root.glob("*/seed*/summary.json"),
                     key=lambda p: (order.get(p.parent.parent.name, len(order)), p.parent.parent.name,
                                    int(p.parent.name[4:])))
    # the scoring budget: a longer run (Phase F) is scored by its evaluations up to it
    budget = config.reference_step or config.steps or BASE["steps"]
    for path in folders:
        summary = json.loads(path.read_text())
        variant, seed = path.parent.parent.name, int(path.parent.name[4:])
        curve = read_metrics(path.parent / "metrics.csv") if (path.parent / "metrics.csv").is_file() else []
        at = dict(curve)
        scored = [(step, value) for step, value in curve if step <= budget]
        overrides = {k: v for k, v in _flat(summary["config"]).items()
                     if k in TRAIN_DEFAULTS and v != BASE.get(k, TRAIN_DEFAULTS[k]) and k not in ("seed", "out")}
        rows.append({
            "variant": variant,
            "seed": seed,
            "overrides": json.dumps(overrides, sort_keys=True),
            "status": summary["status"],
            "steps": summary["steps"],
            "final_eval_mean": summary["final_eval_return_mean"],
            "final_eval_std": summary["final_eval_return_std"],
            "eval_budget": summary["final_eval_return_mean"] if summary["steps"] <= budget else at.get(budget),
            "steps_to_threshold": first_reaching(curve, config.threshold),
            "eval_10k": at.get(10_000),
            "eval_20k": at.get(20_000),
            "last3_mean": float(np.mean([v for _, v in scored[-3:]])) if len(scored) >= 3 else None,
            "wall_s": summary["wall_time_s"],
            "steps_per_s": summary["steps_per_s"],
            "curve": curve,
        })
    return rows


def _train_defaults() -> dict[str, Any]:
    from neuron_env.agents.train import TrainConfig

    return TrainConfig(learner=BASE["learner"]).settings()  # the run's defaults and the sweep's learner's


TRAIN_DEFAULTS: dict[str, Any] = {}


# ----------------------------------------------------------------------------------- writing
CSV_FIELDS = ("variant", "seed", "overrides", "status", "steps", "final_eval_mean", "final_eval_std", "eval_budget",
              "steps_to_threshold", "eval_10k", "eval_20k", "last3_mean", "wall_s", "steps_per_s")


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    """``results.csv``: one line per run (written atomically)."""
    write_csv_file(path, ({k: "" if row[k] is None else (round(row[k], 3) if isinstance(row[k], float) else row[k])
                           for k in CSV_FIELDS} for row in rows), CSV_FIELDS)


def normalized(value: float | None, ref: dict[str, Any]) -> float | None:
    """(R - random) / (reference - random)."""
    if value is None:
        return None
    return (value - ref["random"]) / (ref["reference"] - ref["random"])


def _fmt(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _pm(values: list[float], digits: int = 1) -> str:
    if not values:
        return "n/a"
    return f"{np.mean(values):.{digits}f} ± {np.std(values):.{digits}f}"


def mean_curve(rows: list[dict[str, Any]]) -> tuple[list[int], np.ndarray, np.ndarray]:
    """Steps every run evaluated at, and the mean and std over runs there."""
    common = sorted(set.intersection(*(set(dict(r["curve"])) for r in rows))) if rows else []
    values = np.array([[dict(r["curve"])[s] for s in common] for r in rows]) if common else np.zeros((0, 0))
    if not common:
        return [], np.array([]), np.array([])
    return common, values.mean(axis=0), values.std(axis=0)


def meets_bar(norms: list[float], reach: int | None, bar_steps: int | None, steps: int) -> str:
    """``yes``/``no`` for issue #4's bar (mean normalized >= 0.9 and mean curve at the threshold by ``bar_steps``).

    ``unknown`` when the score part holds but the run ended before ``bar_steps`` without reaching the threshold.
    """
    if not norms or bar_steps is None or float(np.mean(norms)) < 0.9:
        return "no"
    if reach is not None:
        return "yes" if reach <= bar_steps else "no"
    return "no" if steps >= bar_steps else f"unknown (runs end at {steps})"


def write_table(rows: list[dict[str, Any]], ref: dict[str, Any], config: SweepConfig, path: Path) -> None:
    """``table.md``: tuning rows, then mean ± std over the fresh seeds, per variant."""
    steps = ref["step"]
    bar_steps = 2 * ref["reference_steps_to_threshold"] if ref["reference_steps_to_threshold"] else None
    lines = [
        f"Reference (read from `{Path(ref['path']).relative_to(REPO) if Path(ref['path']).is_relative_to(REPO) else ref['path']}`): "  # noqa: E501
        f"random policy {ref['random']:.1f}; {ref['method']} eval mean at step {steps} "
        f"{ref['reference']:.1f} ± {ref['reference_std']:.1f} over {ref['reference_seeds']} seeds "
        f"(its {ref['reference_run_steps']}-step runs, eval every {ref['reference_eval_every']}); "
        f"its mean curve first reaches {config.threshold:g} at step {ref['reference_steps_to_threshold']}. "
        f"Normalized score = (R − random) / (reference − random) with R the eval return at step {steps}. "
        f"The bar (issue #4): normalized ≥ 0.9 and steps to {config.threshold:g} ≤ {bar_steps}.",
        "",
    ]
    context = ref["context"]
    if context is not None:
        at = {s: (m, d) for s, m, d in zip(context["steps"], context["mean"], context["std"], strict=True)}
        cells = [f"step {s}: {at[s][0]:.1f} ± {at[s][1]:.1f} (normalized {normalized(at[s][0], ref):.2f})"
                 for s in (10_000, steps) if s in at]
        lines += [f"For context, `{context['method']}` in the same file (the default local learner, "
                  f"{context['seeds']} seeds, eval every {ref['reference_eval_every']}): " + "; ".join(cells) + ".", ""]
    lines += [
        "Steps to threshold: first evaluation (every "
        f"{BASE['eval_every'] if config.eval_every is None else config.eval_every} steps) whose mean "
        f"return is ≥ {config.threshold:g}; –: not within the run.",
        "",
    ]
    total = sum(r["wall_s"] or 0.0 for r in rows)
    lines += [f"{len(rows)} runs, {total:.0f} s ({total / 60:.1f} min) of training wall time in all, one run at a time "
              "with one torch thread; steps/s vary with the machine's other load, so compare them only loosely.", ""]
    tuning = [r for r in rows if r["seed"] in config.tuning_seeds]
    fresh = [r for r in rows if r["seed"] not in config.tuning_seeds]
    if tuning:
        lines += [
            f"## Tuning seed{'s' if len(config.tuning_seeds) > 1 else ''} "
            f"{', '.join(map(str, config.tuning_seeds))}: every variant",
            "",
            "Sorted by the selection score, the mean eval return over the last three evaluations.",
            "",
            "| variant | seed | overrides | status | eval @10k | eval @20k | normalized @20k | "
            "last-3 mean | steps to threshold | wall s | steps/s |",
            "|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in sorted(tuning, key=lambda r: -(r["last3_mean"] if r["last3_mean"] is not None else -1e9)):
            lines.append(
                f"| {r['variant']} | {r['seed']} | `{r['overrides']}` | {r['status']} | {_fmt(r['eval_10k'])} | "
                f"{_fmt(r['eval_20k'])} | {_fmt(normalized(r['eval_budget'], ref), 2)} | "
                f"{_fmt(r['last3_mean'])} | {r['steps_to_threshold'] or '–'} | {_fmt(r['wall_s'], 0)} | "
                f"{_fmt(r['steps_per_s'], 0)} |")
        lines.append("")
    fresh_lines: list[str] = ["No fresh-seed runs yet."]
    if fresh:
        seeds = sorted({r["seed"] for r in fresh})
        fresh_start = len(lines) + 2  # after the heading and its blank line
        lines += [
            f"## Fresh seeds {', '.join(map(str, seeds))}: mean ± std over seeds (ddof 0)",
            "",
            "Steps to threshold: of the mean curve over seeds (as for the reference), then per seed. "
            f"Last-3 mean: each seed's mean eval return over its last three evaluations up to step {steps}, "
            "then mean ± std. A run longer than that is scored (return, normalized, last-3 mean) at it; its "
            "steps to threshold and best of mean curve cover the whole run. "
            "Best of mean curve: the highest point of the mean curve over seeds and its step.",
            "",
            f"| variant | overrides | seeds | eval @10k | return @{steps} | normalized | last-3 mean | "
            "best of mean curve (step) | steps to threshold (mean curve) | per seed | meets the bar | "
            "wall s (mean) | steps/s (mean) |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|---:|---:|",
        ]
        for variant in dict.fromkeys(r["variant"] for r in fresh):
            group = [r for r in fresh if r["variant"] == variant]
            finished = [r for r in group if r["eval_budget"] is not None]
            finals = [r["eval_budget"] for r in finished]
            norms = [normalized(v, ref) for v in finals]
            at10 = [r["eval_10k"] for r in group if r["eval_10k"] is not None]
            last3 = [r["last3_mean"] for r in group if r["last3_mean"] is not None]
            curve_steps, curve_mean, _ = mean_curve(finished)
            best = int(np.argmax(curve_mean)) if len(curve_mean) else None
            best_cell = f"{curve_mean[best]:.1f} ({curve_steps[best]})" if best is not None else "n/a"
            reach = first_reaching(list(zip(curve_steps, curve_mean.tolist(), strict=True)), config.threshold)
            per_seed = ", ".join(f"{r['seed']}: {r['steps_to_threshold'] or '–'}" for r in group)
            run_steps = max(r["steps"] for r in group)
            meets = meets_bar(norms, reach, bar_steps, run_steps)
            lines.append(
                f"| {variant} | `{group[0]['overrides']}` | {len(finished)}/{len(group)} | {_pm(at10)} | "
                f"{_pm(finals)} | {_pm(norms, 2)} | {_pm(last3)} | {best_cell} | {reach or f'not in {run_steps}'} | "
                f"{per_seed} | {meets} | {_fmt(float(np.mean([r['wall_s'] for r in group])), 0)} | "
                f"{_fmt(float(np.mean([r['steps_per_s'] or 0 for r in group])), 0)} |")
        lines.append("")
        fresh_lines = lines[fresh_start:]
    atomic_write_text(path, "\n".join(lines))
    # the fresh-seed section alone, for the results page (docs/results.md includes it)
    atomic_write_text(path.with_name(path.stem + "-fresh.md"), "\n".join(fresh_lines))


def write_curves(rows: list[dict[str, Any]], ref: dict[str, Any], config: SweepConfig, path: Path) -> None:
    """``curves.png``: tuning seed(s) on the left, fresh seeds (mean ± std) on the right."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tuning = [r for r in rows if r["seed"] in config.tuning_seeds]
    fresh = [r for r in rows if r["seed"] not in config.tuning_seeds]
    figure, axes = plt.subplots(1, 2, figsize=(13, 4.8), sharey=True)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    color = {name: colors[i % len(colors)] for i, name in enumerate(dict.fromkeys(r["variant"] for r in rows))}
    last = max((s for r in rows for s, _ in r["curve"]), default=ref["step"])
    for axis, group, title in ((axes[0], tuning, f"tuning seed(s) {', '.join(map(str, config.tuning_seeds))}"),
                               (axes[1], fresh, "fresh seeds, mean ± std")):
        for variant in dict.fromkeys(r["variant"] for r in group):
            runs = [r for r in group if r["variant"] == variant and r["curve"]]
            if not runs:
                continue
            steps, mean, std = mean_curve(runs)
            axis.plot(steps, mean, marker=".", color=color[variant], label=f"{variant} ({len(runs)})")
            if len(runs) > 1:
                axis.fill_between(steps, mean - std, mean + std, color=color[variant], alpha=0.15)
        shown = [(s, m) for s, m in zip(ref["curve_steps"], ref["curve_mean"], strict=True) if s <= last]
        if shown:
            axis.plot(*zip(*shown, strict=True), "k--", label=f"{ref['method']} (mean of {ref['reference_seeds']})")
        if ref["context"] is not None:
            c = ref["context"]
            shown = [(s, m) for s, m in zip(c["steps"], c["mean"], strict=True) if s <= last]
            if shown:
                axis.plot(*zip(*shown, strict=True), color="grey", ls="--", lw=1,
                          label=f"{c['method']}, {ref['path'].split('/')[-2]}/ (mean of {c['seeds']})")
        axis.axhline(config.threshold, color="grey", lw=0.8, ls=":", label=f"threshold {config.threshold:g}")
        axis.axhline(ref["random"], color="grey", lw=0.8, ls="-.", label="random policy")
        axis.set_title(title)
        axis.set_xlabel("task steps")
        axis.set_xlim(0, last * 1.02)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7, loc="lower right")
    axes[0].set_ylabel("eval return (mean of 5 episodes)")
    figure.suptitle(f"{BASE['task']}: local mlp critic variants")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def report(config: SweepConfig) -> list[dict[str, Any]]:
    """Rewrite results.csv, table.md and curves.png from ``<out>/data``."""
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = collect(config)
    steps = config.steps if config.steps is not None else BASE["steps"]
    ref = read_reference(config, steps)
    write_csv(rows, out / "results.csv")
    write_table(rows, ref, config, out / "table.md")
    write_curves(rows, ref, config, out / "curves.png")
    return rows


# ----------------------------------------------------------------------------------- main
def main(config: SweepConfig | list[str] | None = None) -> dict[str, Any]:
    """Run the sweep (or only the report) and return what was done.

    Args:
        config: A ``SweepConfig``, or command-line arguments to parse (``None``: ``sys.argv``).

    Returns:
        ``{"runs": [(variant, seed, outcome), ...], "rows": [...]}``; outcomes are ``trained``,
        ``resumed``, ``adopted`` (finished under ``work`` before), ``skipped`` or ``diverged``.
    """
    if not isinstance(config, SweepConfig):
        config = parse_args(config)
    TRAIN_DEFAULTS.update(_train_defaults())
    done: list[tuple[str, int, str]] = []
    if not config.report_only:
        runs = plan(config)
        start = time.perf_counter()
        for i, (variant, seed) in enumerate(runs, 1):
            began = time.perf_counter()
            print(f"[{i}/{len(runs)}] {variant} seed {seed}: {json.dumps(VARIANTS[variant])} ...", flush=True)
            outcome = run_one(config, variant, seed)
            summary = json.loads((Path(config.out) / "data" / variant / f"seed{seed}" / "summary.json").read_text())
            print(f"[{i}/{len(runs)}] {variant} seed {seed}: {outcome}, status {summary['status']}, final eval "
                  f"{_fmt(summary['final_eval_return_mean'])}, run {time.perf_counter() - began:.0f} s "
                  f"(trained {summary['wall_time_s']:.0f} s), sweep elapsed {time.perf_counter() - start:.0f} s",
                  flush=True)
            done.append((variant, seed, outcome))
            report(config)
    rows = report(config)
    return {"runs": done, "rows": rows}


if __name__ == "__main__":
    main(sys.argv[1:])
