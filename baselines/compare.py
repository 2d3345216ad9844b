r"""``neuron-env compare``: tasks × methods × seeds, a normalized-score table and learning curves.

Every (task, method, seed) is one run in its own process, at the same task-step budget and on
the same evaluation schedule (every ``eval_every`` task steps and at the end, ``eval_episodes``
deterministic episodes from the same start states for every method, see
``neuron_env.agents.train.evaluation_seed``). The methods:

``random``
    A uniform-random policy (``action_space.sample()``), evaluated once with the same
    evaluation episodes; no training. It scores 0.
``sb3-ddpg``
    Stable-Baselines3 DDPG with the *local run's* hidden sizes and activation
    (``baselines.sb3_ddpg``, the rl-zoo's other hyperparameters). It scores 1.
``sb3-ddpg-zoo``
    The same with the zoo's ``[400, 300]`` ReLU network.
``local-linear``, ``local-compatible``, ``local-bilinear``, ``local-mlp``
    ``neuron-env train`` (``neuron_env.agents.train``) with that per-neuron critic and the
    trainer's other defaults.

Every method gets the same ``--steps``; each keeps its own ``learning_starts`` (the zoo's 10 000
for SB3 on Pendulum and the MuJoCo tasks, the trainer's 1 000), which is part of its budget,
unless ``--learning-starts`` overrides it for all.

Command line::

    neuron-env compare --tasks Pendulum-v1 --methods random sb3-ddpg local-linear local-mlp --steps 20000 --seeds 3 \
        --workers 4 --threshold Pendulum-v1=-200 --out runs/compare
    neuron-env compare --tasks Pendulum-v1 InvertedPendulum-v5 --methods random sb3-ddpg sb3-ddpg-zoo local-mlp \
        --steps 20000 --task-steps InvertedPendulum-v5=50000 --seeds 3 --workers 8 --out runs/compare2

Python::

    from neuron_env.baselines.compare import CompareConfig, compare

    result = compare(CompareConfig(tasks=("Pendulum-v1",), methods=("random", "sb3-ddpg", "local-mlp"),
                                   steps=20_000, seeds=3, workers=3, out="runs/compare"))
    result["scores"]["tasks"]["Pendulum-v1"]["methods"]["local-mlp"]["normalized_mean"]

Outputs in ``--out``
--------------------
``runs/<task>/<method>/seed<k>/``
    Each run's own files (``metrics.csv``, ``summary.json``, ``config.json``, ``tb/``, and the
    trainer's ``checkpoint.pt`` or SB3's ``model.zip``) plus ``compare_run.json``, the run's
    identity (task, method, seed, budget, network, evaluation schedule).
``results.csv``
    One row per run: ``task, method, seed, final_eval_mean, final_eval_std, steps, wall_time_s,
    steps_per_s, status, error``. Rebuilt from the run folders when ``compare`` starts, then a row
    is appended (and flushed) as each run finishes, so a crash loses nothing.
``scores.md`` / ``scores.json``
    The normalized score per task and method, ``(R − R_random) / (R_sb3-ddpg − R_random)`` on
    the mean over seeds of the final evaluation returns (``baselines.normalize``),
    mean ± std over seeds; the raw returns; with ``--threshold TASK=VALUE``, the task step at
    which each method's mean evaluation curve first reaches ``VALUE`` (sample efficiency); the
    run counts, wall times and steps/s. The header states the command that regenerates the
    file, the machine and the date.
``curves.png``
    Evaluation return against task steps, mean ± std over seeds per method, one panel per task
    (the random policy as a dashed band, a threshold as a dotted line).

Resuming
--------
Run the same command again: a run whose ``summary.json`` says ``completed`` (or ``diverged``, a
deterministic outcome) is skipped and its summary read; a local run that stopped part-way
(crash, Ctrl-C) continues from its last checkpoint; anything else starts over in its folder.
A folder that holds a run of a *different* configuration (another budget, network or
evaluation schedule) is an error rather than silently mixed in: choose another ``--out``.
Failed runs (an exception in the run) are recorded with status ``failed`` and the error; the
other runs continue, and the next invocation retries them.

Processes and Ray
-----------------
Runs go to a ``concurrent.futures.ProcessPoolExecutor`` with the ``spawn`` start method and
``--workers`` processes, one fresh process per run (Python ≥ 3.11), each with one torch thread
and its progress bar off; one line is printed per finished run. With ``--ray-address ADDR``
(``pip install ray``) runs are Ray tasks (``num_cpus=1`` each) on the cluster at ``ADDR``
(``auto``, ``ray://host:10001``, or ``local`` for a fresh local instance); each runs in a
temporary folder on its worker node and ships its files back (all but the trainer's
``checkpoint.pt``), so no shared filesystem is needed, but every node needs ``neuron-env``
installed. Ray runs do not resume part-way: an unfinished run starts over.
"""

from __future__ import annotations

import csv
import datetime
import json
import math
import os
import platform
import shlex
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from neuron_env.baselines.errors import BaselineConfigError, MissingDependencyError
from neuron_env.baselines.normalize import (
    finite_values,
    first_step_reaching,
    format_score,
    mean_std,
    normalize_task,
)
from neuron_env.baselines.outputs import atomic_write_json, atomic_write_text

#: Every method ``compare`` knows, in table order.
METHODS: tuple[str, ...] = (
    "random",
    "sb3-ddpg",
    "sb3-ddpg-zoo",
    "local-linear",
    "local-compatible",
    "local-bilinear",
    "local-mlp",
)
#: Hidden activations both the trainer and the SB3 baseline accept.
ACTIVATIONS: tuple[str, ...] = ("tanh", "relu", "sigmoid", "identity")
#: Statuses of a run that is not run again.
FINISHED: tuple[str, ...] = ("completed", "diverged")
#: Columns of ``results.csv``.
RESULTS_COLUMNS: tuple[str, ...] = (
    "task",
    "method",
    "seed",
    "final_eval_mean",
    "final_eval_std",
    "steps",
    "wall_time_s",
    "steps_per_s",
    "status",
    "error",
)
RUN_FILE = "compare_run.json"
#: Files of a run that a Ray worker does not ship back (the trainer's replay-buffer checkpoint).
NOT_SHIPPED: tuple[str, ...] = ("checkpoint.pt",)


@dataclass
class CompareConfig:
    """Configuration of one comparison (every field has a ``neuron-env compare`` flag of the same name)."""

    tasks: tuple[str, ...] = ("Pendulum-v1",)
    """Gymnasium ids of the tasks (Box observation and action spaces)."""
    methods: tuple[str, ...] = ("random", "sb3-ddpg", "local-mlp")
    """Methods to run, from ``METHODS``; ``random`` and the ``reference`` are needed for normalized scores."""
    steps: int = 20_000
    """Task steps per run (the same budget for every method)."""
    task_steps: dict[str, int] = field(default_factory=dict)
    """Per-task budgets overriding ``steps`` (``{"InvertedPendulum-v5": 50000}``)."""
    seeds: int = 3
    """Seeds per (task, method): ``0 .. seeds-1``."""
    out: str = "runs/compare"
    """Output directory (see the module doc)."""
    workers: int = 1
    """Runs in parallel (processes; ignored with ``ray_address``)."""
    hidden: tuple[int, ...] = (64, 64)
    """Hidden sizes of the local networks and of ``sb3-ddpg`` (not of ``sb3-ddpg-zoo``)."""
    activation: str = "tanh"
    """Hidden activation of the local networks and of ``sb3-ddpg``."""
    eval_every: int = 1000
    """Task steps between evaluations (and one at the end), for every method."""
    eval_episodes: int = 5
    """Deterministic evaluation episodes per evaluation, from the same start states for every method."""
    learning_starts: int | None = None
    """Override ``learning_starts`` of every learning method; ``None``: each method's own default."""
    thresholds: dict[str, float] = field(default_factory=dict)
    """Per-task return thresholds; scores report the step where each mean curve first reaches it."""
    reference: str = "sb3-ddpg"
    """The method that scores 1 (``random`` scores 0)."""
    ray_address: str | None = None
    """Dispatch runs to the Ray cluster at this address instead of the process pool."""
    tensorboard: bool = True
    """Write each run's TensorBoard scalars into its ``tb/``."""
    verbose: bool = True
    """Print one line per finished run."""

    def budget(self, task: str) -> int:
        """The task-step budget of ``task``'s runs."""
        return int(self.task_steps.get(task, self.steps))

    def validate(self) -> None:
        """Check every option before anything runs.

        Raises:
            BaselineConfigError: Naming the bad option and the fix.
        """
        if not self.tasks:
            raise BaselineConfigError("tasks is empty; pass one or more Gymnasium ids with --tasks")
        if len(set(self.tasks)) != len(self.tasks):
            raise BaselineConfigError(f"tasks {list(self.tasks)} has duplicates")
        unknown = [m for m in self.methods if m not in METHODS]
        if not self.methods or unknown:
            raise BaselineConfigError(
                f"methods {list(unknown or self.methods)} unknown or empty; choose from {METHODS}")
        if len(set(self.methods)) != len(self.methods):
            raise BaselineConfigError(f"methods {list(self.methods)} has duplicates")
        if self.reference not in METHODS or self.reference == "random":
            raise BaselineConfigError(f"reference {self.reference!r} must be a learning method from {METHODS[1:]}")
        for name in ("steps", "seeds", "workers", "eval_every", "eval_episodes"):
            if int(getattr(self, name)) < 1:
                raise BaselineConfigError(f"{name}={getattr(self, name)!r} must be >= 1")
        if not self.hidden or any(int(h) < 1 for h in self.hidden):
            raise BaselineConfigError(f"hidden {list(self.hidden)} must be one or more sizes >= 1")
        if self.activation not in ACTIVATIONS:
            raise BaselineConfigError(f"activation {self.activation!r} is unknown; choose one of {ACTIVATIONS}")
        if self.learning_starts is not None and self.learning_starts < 0:
            raise BaselineConfigError(f"learning_starts {self.learning_starts!r} must be >= 0")
        for option, mapping in (("task_steps", self.task_steps), ("thresholds", self.thresholds)):
            stray = [t for t in mapping if t not in self.tasks]
            if stray:
                raise BaselineConfigError(f"{option} names {stray}, which are not among tasks {list(self.tasks)}")
        if any(int(v) < 1 for v in self.task_steps.values()):
            raise BaselineConfigError(f"task_steps {self.task_steps} must all be >= 1")


@dataclass(frozen=True)
class RunSpec:
    """One run of a comparison: what it is, and the options that must match for a finished run to be reused."""

    task: str
    """Gymnasium id."""
    method: str
    """One of ``METHODS``."""
    seed: int
    """The run's seed."""
    steps: int
    """Task-step budget."""
    hidden: tuple[int, ...]
    """Hidden sizes (local methods and ``sb3-ddpg``)."""
    activation: str
    """Hidden activation (local methods and ``sb3-ddpg``)."""
    eval_every: int
    """Task steps between evaluations."""
    eval_episodes: int
    """Episodes per evaluation."""
    learning_starts: int | None
    """The ``learning_starts`` override, or ``None``."""
    tensorboard: bool = True
    """Write TensorBoard scalars (not part of the run's identity)."""

    def identity(self) -> dict[str, Any]:
        """The fields a reused run must match (everything but ``tensorboard``), JSON-ready."""
        data = asdict(self)
        data.pop("tensorboard")
        data["hidden"] = list(self.hidden)
        return data

    def folder(self, out: str | os.PathLike[str]) -> Path:
        """The run's folder under a comparison's output directory."""
        return Path(out) / "runs" / _safe(self.task) / self.method / f"seed{self.seed}"

    @property
    def label(self) -> str:
        """``"Pendulum-v1 local-mlp seed0"``."""
        return f"{self.task} {self.method} seed{self.seed}"


def _safe(name: str) -> str:
    """A task id as one folder name (``ALE/Pong-v5`` -> ``ALE_Pong-v5``)."""
    return name.replace("/", "_").replace(os.sep, "_")


def plan_runs(config: CompareConfig) -> list[RunSpec]:
    """Every run of the comparison, seed-major (all of seed 0 first, so early results span the grid)."""
    return [
        RunSpec(task=task, method=method, seed=seed, steps=config.budget(task),
                hidden=tuple(int(h) for h in config.hidden), activation=config.activation,
                eval_every=config.eval_every, eval_episodes=config.eval_episodes,
                learning_starts=config.learning_starts, tensorboard=config.tensorboard)
        for seed in range(config.seeds) for task in config.tasks for method in config.methods
    ]


# ------------------------------------------------------------------------------------------ one run
def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as stream:
            return json.load(stream)
    except (OSError, ValueError):
        return None


def run_state(spec: RunSpec, out: str | os.PathLike[str]) -> tuple[str, dict[str, Any] | None]:
    """Where a run stands in its folder.

    Returns:
        ``("finished", summary)``, ``("resume", None)`` (a local run with a checkpoint to continue
        from) or ``("fresh", None)`` (nothing usable: start over).

    Raises:
        BaselineConfigError: If the folder holds a run of another configuration, or files that
            ``compare`` did not write.
    """
    folder = spec.folder(out)
    if not folder.exists() or not any(folder.iterdir()):
        return "fresh", None
    stored = _read_json(folder / RUN_FILE)
    if stored is None:
        raise BaselineConfigError(f"{folder} holds files that compare did not write (no {RUN_FILE}); "
                                  "choose another --out or remove the folder")
    if stored != spec.identity():
        wanted = spec.identity()
        differ = sorted(k for k in set(stored) | set(wanted) if stored.get(k) != wanted.get(k))
        found = ", ".join(f"{k}={stored.get(k)!r} (now {wanted.get(k)!r})" for k in differ)
        raise BaselineConfigError(f"{folder} holds a run with other settings: {found}; choose another --out, "
                                  "or remove the folder to run it again")
    summary = _read_json(folder / "summary.json")
    if summary is not None and summary.get("status") in FINISHED:
        return "finished", summary
    if spec.method.startswith("local-") and (folder / "checkpoint.pt").is_file():
        return "resume", None
    return "fresh", None


def result_row(spec: RunSpec, summary: Mapping[str, Any] | None, status: str | None = None,
               error: str | None = None) -> dict[str, Any]:
    """The ``results.csv`` row of a run from its summary (or only a status and error)."""
    summary = summary or {}

    def number(key: str) -> Any:
        value = summary.get(key)
        return "" if value is None or (isinstance(value, float) and not math.isfinite(value)) else value

    return {
        "task": spec.task,
        "method": spec.method,
        "seed": spec.seed,
        "final_eval_mean": number("final_eval_return_mean"),
        "final_eval_std": number("final_eval_return_std"),
        "steps": number("steps"),
        "wall_time_s": number("wall_time_s"),
        "steps_per_s": number("steps_per_s"),
        "status": status or summary.get("status", ""),
        "error": error if error is not None else summary.get("error", "") or "",
    }


def _run_random(spec: RunSpec, folder: Path) -> dict[str, Any]:
    """Evaluate a uniform-random policy with the trainer's evaluation episodes; write the run files."""
    from neuron_env.agents.train import evaluation_seed
    from neuron_env.baselines.outputs import MetricsWriter

    from neuron_env.vector import make_task_factory

    start = time.perf_counter()
    env = make_task_factory(spec.task)()
    env.action_space.seed(spec.seed)
    seed = evaluation_seed(spec.seed)
    returns = np.zeros(spec.eval_episodes)
    try:
        for episode in range(spec.eval_episodes):
            env.reset(seed=seed + episode)
            done = False
            while not done:
                _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
                returns[episode] += float(reward)
                done = bool(terminated or truncated)
    finally:
        env.close()
    wall = time.perf_counter() - start
    atomic_write_json(folder / "config.json", {**spec.identity(), "policy": "uniform random, no training"})
    with MetricsWriter(folder, tensorboard=spec.tensorboard) as writer:
        writer.row(0, wall, float(returns.mean()), float(returns.std()), None, updates=0)
    summary = {
        "status": "completed",
        "final_eval_return_mean": float(returns.mean()),
        "final_eval_return_std": float(returns.std()),
        "final_eval_returns": returns.tolist(),
        "steps": 0,
        "transitions": 0,
        "updates": 0,
        "episodes": 0,
        "wall_time_s": wall,
        "steps_per_s": None,
        "device": "cpu",
        "num_agents": None,
        "granularity": None,
        "config": spec.identity(),
        "method": "random",
        "task": spec.task,
        "seed": spec.seed,
    }
    atomic_write_json(folder / "summary.json", summary)
    return summary


def _run_sb3(spec: RunSpec, folder: Path) -> dict[str, Any]:
    from neuron_env.baselines.sb3_ddpg import BaselineConfig, run_baseline

    zoo = spec.method == "sb3-ddpg-zoo"
    return run_baseline(BaselineConfig(
        algo="ddpg", task=spec.task, hidden=None if zoo else spec.hidden, activation="relu" if zoo else spec.activation,
        steps=spec.steps, seed=spec.seed, out=str(folder), eval_every=spec.eval_every,
        eval_episodes=spec.eval_episodes, learning_starts=spec.learning_starts, threads=1,
        tensorboard=spec.tensorboard, progress=False,
    ))


def _trim_metrics(path: Path, keep: Callable[[int], bool]) -> None:
    """Drop ``metrics.csv`` rows whose step fails ``keep`` (rows a resumed run will write again)."""
    if not path.is_file():
        return
    with open(path, newline="", encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))
        fieldnames = list(rows[0]) if rows else None
    if fieldnames is None:
        return
    kept = [row for row in rows if keep(int(float(row["step"])))]
    with open(path, "w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=fieldnames)
        writer.writeheader()
        writer.writerows(kept)


def _run_local(spec: RunSpec, folder: Path, resume: bool) -> dict[str, Any]:
    from neuron_env.agents.errors import DivergenceError
    from neuron_env.agents.train import TrainConfig, load_checkpoint, train

    config = TrainConfig(
        task=spec.task, hidden=list(spec.hidden), activation=spec.activation, critic=spec.method.removeprefix("local-"),
        steps=spec.steps, seed=spec.seed, out=str(folder), eval_every=spec.eval_every,
        eval_episodes=spec.eval_episodes, progress=False, tensorboard=spec.tensorboard, threads=1, device="cpu",
    )
    if spec.learning_starts is not None:
        config.learning_starts = spec.learning_starts
    if resume:
        done = int(load_checkpoint(folder)["trainer"]["task_step"])
        # the resumed run writes every row after its checkpoint again, and the final row when it is at the end
        _trim_metrics(folder / "metrics.csv", (lambda s: s < done) if done >= spec.steps else (lambda s: s <= done))
    try:
        return train(config, resume=folder if resume else None)
    except DivergenceError:
        summary = _read_json(folder / "summary.json")
        if summary is None:
            raise
        return summary


def execute_run(spec: RunSpec, folder: str | os.PathLike[str], resume: bool = False) -> dict[str, Any]:
    """Run one (task, method, seed) into ``folder`` (created) and return its summary.

    Args:
        spec: The run.
        folder: Its output folder; ``compare_run.json`` is written first.
        resume: Continue a local run from the checkpoint in ``folder`` (else start over).

    Raises:
        Exception: Whatever the run raises (``compare`` records it as ``failed``).
    """
    import torch

    torch.set_num_threads(1)
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path / RUN_FILE, spec.identity())
    if spec.method == "random":
        return _run_random(spec, path)
    if spec.method.startswith("sb3-"):
        return _run_sb3(spec, path)
    return _run_local(spec, path, resume)


def run_in_worker(spec: RunSpec, folder: str, resume: bool) -> dict[str, Any]:
    """Pool entry point: run, and turn an exception into a ``failed`` row (never raises)."""
    try:
        summary = execute_run(spec, folder, resume)
    except Exception as error:  # noqa: BLE001 - every failure is recorded, the others continue
        message = f"{type(error).__name__}: {error}"
        try:
            (Path(folder) / "error.txt").write_text(traceback.format_exc(), encoding="utf-8")
        except OSError:
            pass
        return result_row(spec, None, status="failed", error=message)
    return result_row(spec, summary)


def run_and_ship(spec: RunSpec) -> dict[str, Any]:
    """Ray entry point: run in a temporary folder; return the row and the run's files (path -> bytes)."""
    with tempfile.TemporaryDirectory(prefix="neuron-env-compare-") as folder:
        row = run_in_worker(spec, folder, resume=False)
        files: dict[str, bytes] = {}
        for path in Path(folder).rglob("*"):
            if path.is_file() and path.name not in NOT_SHIPPED:
                files[path.relative_to(folder).as_posix()] = path.read_bytes()
    return {"row": row, "files": files}


# ------------------------------------------------------------------------------------------ results.csv
class ResultsFile:
    """``results.csv``: rewritten from rows at the start, then appended to (and flushed) per finished run."""

    def __init__(self, path: str | os.PathLike[str], rows: Iterable[Mapping[str, Any]]) -> None:
        self.path = Path(path)
        text_rows = list(rows)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        with open(tmp, "w", newline="", encoding="utf-8") as stream:
            writer = csv.DictWriter(stream, fieldnames=RESULTS_COLUMNS)
            writer.writeheader()
            writer.writerows(text_rows)
        os.replace(tmp, self.path)

    def append(self, row: Mapping[str, Any]) -> None:
        """Append one row and flush it to disk."""
        with open(self.path, "a", newline="", encoding="utf-8") as stream:
            csv.DictWriter(stream, fieldnames=RESULTS_COLUMNS).writerow(row)
            stream.flush()
            os.fsync(stream.fileno())


def read_results(path: str | os.PathLike[str]) -> list[dict[str, str]]:
    """The rows of a ``results.csv``."""
    with open(path, newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


# ------------------------------------------------------------------------------------------ dispatch
def _describe(row: Mapping[str, Any]) -> str:
    label = f"{row['task']} {row['method']} seed{row['seed']}"
    if row["status"] == "failed":
        return f"{label}: failed ({row['error']})"
    text = f"{label}: {row['status']}"
    if row["final_eval_mean"] != "":
        text += f", final eval {float(row['final_eval_mean']):.2f} ± {float(row['final_eval_std']):.2f}"
    if row["method"] == "random" and row["wall_time_s"] != "":
        text += f" (no training; evaluated in {float(row['wall_time_s']):.1f}s)"
    elif row["wall_time_s"] != "":
        text += f", {row['steps']} steps in {float(row['wall_time_s']):.1f}s"
    if row["steps_per_s"] != "":
        text += f" ({float(row['steps_per_s']):.0f} steps/s)"
    return text


def _dispatch_pool(jobs: list[tuple[RunSpec, bool]], config: CompareConfig,
                   on_row: Callable[[dict[str, Any]], None]) -> None:
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    options: dict[str, Any] = {"max_workers": min(config.workers, len(jobs)),
                               "mp_context": multiprocessing.get_context("spawn")}
    if sys.version_info >= (3, 11):
        options["max_tasks_per_child"] = 1  # a fresh process per run
    executor = ProcessPoolExecutor(**options)
    try:
        pending = {executor.submit(run_in_worker, spec, str(spec.folder(config.out)), resume): spec
                   for spec, resume in jobs}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                spec = pending.pop(future)
                try:
                    row = future.result()
                except Exception as error:  # noqa: BLE001 - a worker that died (e.g. killed for memory)
                    row = result_row(spec, None, status="failed", error=f"{type(error).__name__}: {error}")
                on_row(row)
    except BaseException:
        executor.shutdown(wait=False, cancel_futures=True)
        raise
    executor.shutdown(wait=True)


def _dispatch_ray(jobs: list[tuple[RunSpec, bool]], config: CompareConfig,
                  on_row: Callable[[dict[str, Any]], None]) -> None:
    try:
        import ray
    except ImportError as error:
        raise MissingDependencyError("--ray-address needs Ray: pip install 'ray[default]'") from error
    started = False
    if not ray.is_initialized():
        ray.init(address=config.ray_address)
        started = True
    try:
        remote = ray.remote(num_cpus=1, max_retries=0)(run_and_ship)
        pending = {remote.remote(spec): spec for spec, _ in jobs}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            spec = pending.pop(ready[0])
            try:
                shipped = ray.get(ready[0])
            except Exception as error:  # noqa: BLE001 - a task or worker that died
                on_row(result_row(spec, None, status="failed", error=f"{type(error).__name__}: {error}"))
                continue
            folder = spec.folder(config.out)
            for name, data in shipped["files"].items():
                target = folder / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
            on_row(shipped["row"])
    finally:
        if started:
            ray.shutdown()


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

    Args:
        config: The comparison.
        rows: One ``results.csv`` row per run of the grid (finished, failed or missing runs may be absent).
    """
    by_key = {(r["task"], r["method"], int(r["seed"])): r for r in rows}
    tasks: dict[str, Any] = {}
    for task in config.tasks:
        returns: dict[str, list[float | None]] = {}
        curves: dict[str, dict[str, Any]] = {}
        runs: dict[str, dict[str, Any]] = {}
        for method in config.methods:
            values: list[float | None] = []
            seed_curves = []
            counts: dict[str, int] = {}
            walls, speeds = [], []
            for seed in range(config.seeds):
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
        scores = normalize_task(returns, random="random", reference=config.reference)
        threshold = config.thresholds.get(task)
        methods: dict[str, Any] = {}
        for method in config.methods:
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
        tasks[task] = {
            "steps": config.budget(task),
            "random_mean": scores.random_mean,
            "reference_mean": scores.reference_mean,
            "threshold": threshold,
            "notes": scores.notes,
            "methods": methods,
        }
    return {"reference": config.reference, "random": "random", "seeds": config.seeds, "tasks": tasks}


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def command_line(config: CompareConfig) -> str:
    """The ``neuron-env compare`` command that regenerates a comparison's outputs."""
    parts = ["neuron-env", "compare", "--tasks", *config.tasks, "--methods", *config.methods,
             "--steps", str(config.steps), "--seeds", str(config.seeds), "--out", str(config.out),
             "--workers", str(config.workers), "--hidden", *map(str, config.hidden), "--activation", config.activation,
             "--eval-every", str(config.eval_every), "--eval-episodes", str(config.eval_episodes)]
    if config.task_steps:
        parts += ["--task-steps", *(f"{t}={n}" for t, n in config.task_steps.items())]
    if config.learning_starts is not None:
        parts += ["--learning-starts", str(config.learning_starts)]
    if config.thresholds:
        parts += ["--threshold", *(f"{t}={v:g}" for t, v in config.thresholds.items())]
    if config.reference != "sb3-ddpg":
        parts += ["--reference", config.reference]
    if not config.tensorboard:
        parts.append("--no-tensorboard")
    return shlex.join(parts)


def machine_info() -> dict[str, Any]:
    """CPU count, torch/Python versions, platform and the current UTC date (for report headers)."""
    try:
        import torch

        torch_version = torch.__version__
    except ImportError:  # pragma: no cover - torch is a hard dependency
        torch_version = "not installed"
    return {
        "cpu_count": os.cpu_count(),
        "torch": torch_version,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def _steps_text(step: int | None, budget: int) -> str:
    return f"not in {budget}" if step is None else str(step)


def render_scores_md(config: CompareConfig, scores: Mapping[str, Any], machine: Mapping[str, Any],
                     command: str) -> str:
    """The text of ``scores.md``."""
    methods = list(config.methods)
    budgets = ", ".join(f"{t} {config.budget(t)}" for t in config.tasks)
    lines = [
        "# neuron-env compare: scores",
        "",
        f"Regenerate with: `{command}`",
        "",
        f"Machine: {machine['cpu_count']} CPUs, torch {machine['torch']}, Python {machine['python']}, "
        f"{machine['platform']}; date {machine['date']}.",
        "",
        f"Budget: {budgets} task steps per run, {config.seeds} seed(s) per method; evaluation every "
        f"{config.eval_every} task steps and at the end, {config.eval_episodes} deterministic episodes from the same "
        f"start states for every method. learning_starts: "
        + (f"{config.learning_starts} for every learning method." if config.learning_starts is not None
           else "each method's own (SB3: the rl-zoo's, 10 000 on Pendulum and MuJoCo; local: the trainer's 1 000)."),
        f"Networks: local methods and sb3-ddpg {list(config.hidden)} {config.activation}; "
        "sb3-ddpg-zoo [400, 300] relu.",
        "",
        f"Normalized score = (R − R_random) / (R_{config.reference} − R_random), R the final evaluation return; each "
        f"seed is normalized against the two baselines' means over seeds, then mean ± std over seeds (ddof 0). "
        f"random = 0 and {config.reference} = 1 by construction.",
        "",
        "## Normalized score (mean ± std over seeds)",
        "",
        "| task | steps | " + " | ".join(methods) + " |",
        "|---|---:|" + "---:|" * len(methods),
    ]
    for task, entry in scores["tasks"].items():
        cells = [format_score(entry["methods"][m]["normalized_mean"], entry["methods"][m]["normalized_std"])
                 for m in methods]
        lines.append(f"| {task} | {entry['steps']} | " + " | ".join(cells) + " |")
    lines += ["", "## Final evaluation return (mean ± std over seeds)", "",
              "| task | " + " | ".join(methods) + " |", "|---|" + "---:|" * len(methods)]
    for task, entry in scores["tasks"].items():
        cells = [format_score(entry["methods"][m]["return_mean"], entry["methods"][m]["return_std"], digits=1)
                 for m in methods]
        lines.append(f"| {task} | " + " | ".join(cells) + " |")
    thresholds = {t: e for t, e in scores["tasks"].items() if e["threshold"] is not None}
    if thresholds:
        lines += ["", "## Task steps until the mean evaluation curve first reaches the threshold", "",
                  "Evaluations happen every eval-every steps, so a step is an upper bound to that resolution; "
                  "random is evaluated once (step 0).", "",
                  "| task | threshold | " + " | ".join(methods) + " |", "|---|---:|" + "---:|" * len(methods)]
        for task, entry in thresholds.items():
            cells = [_steps_text(entry["methods"][m]["steps_to_threshold"], entry["steps"]) for m in methods]
            lines.append(f"| {task} | {entry['threshold']:g} | " + " | ".join(cells) + " |")
    lines += ["", "## Runs", "", "| task | method | runs by status | wall time (s, mean) | steps/s (mean) |",
              "|---|---|---|---:|---:|"]
    for task, entry in scores["tasks"].items():
        for method in methods:
            run = entry["methods"][method]
            counts = ", ".join(f"{n} {s}" for s, n in sorted(run["status_counts"].items()))
            wall, speed = run["wall_time_s_mean"], run["steps_per_s_mean"]
            lines.append(f"| {task} | {method} | {counts} | {format_score(wall, digits=1)} | "
                         f"{format_score(speed, digits=0)} |")
    notes = [f"- {task}: {note}" for task, entry in scores["tasks"].items() for note in entry["notes"]]
    if notes:
        lines += ["", "## Notes", "", *notes]
    return "\n".join(lines) + "\n"


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
    fig, axes = plt.subplots(rows, columns, figsize=(5.2 * columns, 3.8 * rows), squeeze=False)
    colors = {m: f"C{i}" for i, m in enumerate(config.methods)}
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
            ax.plot(steps, mean, color=colors[method], lw=1.5, marker="." if len(steps) < 30 else None, label=label)
            ax.fill_between(steps, mean - std, mean + std, color=colors[method], alpha=0.18)
        if entry["threshold"] is not None:
            ax.axhline(entry["threshold"], color="black", ls=":", lw=1, label=f"threshold {entry['threshold']:g}")
        ax.set_xlim(0, budget)
        ax.set_title(f"{task} ({budget} steps)", fontsize=10)
        ax.set_xlabel("task steps")
        ax.set_ylabel("eval return")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
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
                  command: str | None = None) -> dict[str, Any]:
    """Write ``scores.json``, ``scores.md`` and ``curves.png`` from the runs' rows; return ``scores.json``'s content."""
    out = Path(config.out)
    command = command or command_line(config)
    machine = machine_info()
    scores = compute_scores(config, rows)
    document = {"command": command, "machine": machine, "config": asdict(config), **scores}
    atomic_write_json(out / "scores.json", document)
    atomic_write_text(out / "scores.md", render_scores_md(config, scores, machine, command))
    plot_curves(out / "curves.png", config, scores)
    return document


# ------------------------------------------------------------------------------------------ the comparison
def compare(config: CompareConfig, print_fn: Callable[[str], None] = print) -> dict[str, Any]:
    """Run (or resume) a comparison and write all of its outputs (see the module doc).

    Args:
        config: The comparison.
        print_fn: Where the per-run progress lines go (``print`` by default).

    Returns:
        ``{"rows": [...], "ran": n, "skipped": n, "failed": n, "scores": scores.json's content}``.

    Raises:
        BaselineConfigError: On an invalid option, or a run folder of another configuration.
        MissingDependencyError: When Ray (with ``ray_address``) or matplotlib is missing.
    """
    config.validate()
    say = print_fn if config.verbose else (lambda _text: None)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    specs = plan_runs(config)
    states = {spec: run_state(spec, out) for spec in specs}  # raises before anything runs
    rows: dict[RunSpec, dict[str, Any]] = {}
    for spec, (state, summary) in states.items():
        if state == "finished":
            rows[spec] = result_row(spec, summary)
    results = ResultsFile(out / "results.csv", rows.values())
    jobs: list[tuple[RunSpec, bool]] = []
    for spec in specs:
        state = states[spec][0]
        if state == "finished":
            continue
        resume = state == "resume" and config.ray_address is None
        if not resume and spec.folder(out).exists():
            shutil.rmtree(spec.folder(out))
        jobs.append((spec, resume))
    say(f"compare: {len(specs)} runs ({len(config.tasks)} tasks × {len(config.methods)} methods × {config.seeds} "
        f"seeds); {len(rows)} finished earlier, {len(jobs)} to run "
        + (f"on Ray at {config.ray_address}" if config.ray_address else f"with {config.workers} worker(s)")
        + f" -> {out}")
    by_label = {(s.task, s.method, s.seed): s for s in specs}
    failed = 0

    def on_row(row: dict[str, Any]) -> None:
        nonlocal failed
        spec = by_label[(row["task"], row["method"], int(row["seed"]))]
        rows[spec] = row
        failed += row["status"] == "failed"
        results.append(row)
        say(f"[{len(rows)}/{len(specs)}] {_describe(row)}")

    if jobs:
        (_dispatch_ray if config.ray_address else _dispatch_pool)(jobs, config, on_row)
    ordered = [rows[s] for s in specs if s in rows]
    scores = write_reports(config, ordered)
    say(f"compare: wrote {out / 'results.csv'}, {out / 'scores.md'}, {out / 'scores.json'}, {out / 'curves.png'}")
    return {"rows": ordered, "ran": len(jobs), "skipped": len(specs) - len(jobs), "failed": failed, "scores": scores}


def parse_assignments(items: Sequence[str] | None, kind: Callable[[str], Any], option: str) -> dict[str, Any]:
    """``["Pendulum-v1=-200", ...]`` -> ``{"Pendulum-v1": -200.0}`` (the value converted by ``kind``).

    Raises:
        BaselineConfigError: On an item without ``=`` or with a value ``kind`` rejects.
    """
    parsed: dict[str, Any] = {}
    for item in items or ():
        task, sep, value = item.rpartition("=")
        if not sep or not task:
            raise BaselineConfigError(f"{option} {item!r} must look like TASK=VALUE (e.g. Pendulum-v1=-200)")
        try:
            parsed[task] = kind(value)
        except ValueError as error:
            raise BaselineConfigError(f"{option} {item!r}: {value!r} is not a valid value") from error
    return parsed
