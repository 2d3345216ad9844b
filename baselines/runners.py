"""One run of a comparison: where it stands in its folder, how each method runs, and ``results.csv``.

- ``run_state``: a run folder is ``finished`` (its ``summary.json`` says ``completed`` or
  ``diverged``), ``resume`` (a local run whose checkpoint resumes it exactly: at a segment
  boundary, with its replay buffer; ``resume_point``) or ``fresh``; a folder of another
  configuration raises ``BaselineConfigError``.
- ``execute_run``: runs one ``RunSpec`` into its folder (``random``: the uniform-random policy
  ``action_space.sample()`` evaluated once, on any action space; ``sb3-…``: ``neuron-env baseline
  --algo`` of ``SB3_METHODS``; ``local-…``: ``neuron-env train``) and returns its summary;
  ``run_in_worker`` (process pool) and ``run_and_ship`` (Ray) wrap it so a failure becomes a
  ``failed`` row instead of an exception, and Ctrl-C an ``interrupted`` row instead of a
  traceback (``worker_init`` sets a pool worker up for that). With ``progress`` the worker
  prints a ``progress_line`` per evaluation before the last ("Pendulum-v1 local-feedback seed0:
  step 4000/20000, eval -1234.5"); the parent prints the final line (``dispatch.describe_row``).
- ``ResultsFile`` / ``read_results``: ``results.csv``, one row per run (``result_row``), each
  row written atomically (``neuron_env.run_output``), so a crash loses nothing and never
  leaves half a row.

Ctrl-C and exact resume
-----------------------
A local run of a comparison writes its checkpoint (replay buffer included) every
``checkpoint_every`` task steps and none on Ctrl-C (``train(save_on_interrupt=False)``), so the
checkpoint on disk is always at a segment boundary and the next ``compare`` resumes the run to
the result an uninterrupted run ends with, bitwise (``agents.train``: "Resume and
reproducibility"). A checkpoint that is not at a boundary (written on Ctrl-C by an earlier
version) or lacks the replay buffer is not resumed: the run starts over. SB3 runs and the random
policy keep no checkpoint and start over. A pool worker starts with SIGINT blocked (the pool
blocks it while it starts them) and ``worker_init`` installs a handler that stops the run in
progress once (a second Ctrl-C changes nothing) and unblocks it, so no worker prints a traceback.
"""

from __future__ import annotations

import csv
import json
import math
import os
import signal
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from neuron_env.baselines.compare_config import (
    FINISHED,
    NOT_SHIPPED,
    RESULTS_COLUMNS,
    RUN_FILE,
    SB3_METHODS,
    ZOO_NET_METHODS,
    RunSpec,
    local_method,
    task_noise_options,
)
from neuron_env.baselines.errors import BaselineConfigError

from neuron_env.run_output import append_csv_row, atomic_write_json, drop_csv_rows_after, write_csv


# ------------------------------------------------------------------------------------------ one run
def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as stream:
            return json.load(stream)
    except (OSError, ValueError):
        return None


def resume_point(folder: str | os.PathLike[str], steps: int) -> tuple[int | None, str]:
    """The task step a local run's checkpoint resumes it from *exactly*, or ``None`` and why not.

    Exact means at a segment boundary (a multiple of the run's ``checkpoint_every``, or its budget
    ``steps``) and with the replay buffer in the checkpoint (``checkpoint_replay``), as
    ``agents.train`` explains; anything else would continue differently from the run never stopped.
    """
    from neuron_env.agents.errors import CheckpointError
    from neuron_env.agents.train import TrainConfig, load_checkpoint

    path = Path(folder)
    if not (path / "checkpoint.pt").is_file():
        return None, "no checkpoint yet"
    try:
        payload = load_checkpoint(path)
    except CheckpointError as error:
        return None, f"its checkpoint cannot be read ({error})"
    step = int(payload["trainer"]["task_step"])
    stored = payload.get("config") or {}
    every = int(stored.get("checkpoint_every") or TrainConfig.checkpoint_every)  # absent: the trainer's default
    if not stored.get("checkpoint_replay"):
        return None, f"its checkpoint at task step {step} holds no replay buffer, so it would not resume exactly"
    if step % every and step != steps:
        return None, (f"its checkpoint at task step {step} lies between segment boundaries (every {every}: an "
                      "earlier version wrote it on Ctrl-C), so it would not resume exactly")
    return step, ""


def run_state(spec: RunSpec, out: str | os.PathLike[str]) -> tuple[str, dict[str, Any] | None]:
    """Where a run stands in its folder.

    Returns:
        ``("finished", summary)``; ``("resume", {"checkpoint_step": N})`` (a local run whose
        checkpoint at task step ``N`` resumes it exactly, ``resume_point``); ``("fresh", None)``
        (an empty or missing folder); or ``("fresh", {"restart": reason})`` (an unfinished run
        that starts over: SB3 and the random policy keep no checkpoint, a local run may have none
        yet or one that would not resume exactly).

    Raises:
        BaselineConfigError: If the folder holds a run of another configuration, or files that
            ``compare`` did not write.
    """
    folder = spec.folder(out)
    if not folder.exists() or not any(folder.iterdir()):
        return "fresh", None
    stored = _read_json(folder / RUN_FILE)
    if stored is None:
        raise BaselineConfigError(f"{folder} holds files that compare did not write (no {RUN_FILE}); choose another "
                                  "--out, remove the folder, or pass --overwrite to delete the comparison in --out")
    if stored != spec.identity():
        wanted = spec.identity()
        differ = sorted(k for k in set(stored) | set(wanted) if stored.get(k) != wanted.get(k))
        found = ", ".join(f"{k}={stored.get(k)!r} (now {wanted.get(k)!r})" for k in differ)
        raise BaselineConfigError(f"{folder} holds a run with other settings: {found}; rerun that comparison's own "
                                  "command to resume it, choose another --out, or pass --overwrite to delete the "
                                  "comparison in --out and start over")
    summary = _read_json(folder / "summary.json")
    if summary is not None and summary.get("status") in FINISHED:
        return "finished", summary
    if not spec.method.startswith("local-"):
        kind = "the random policy is" if spec.method == "random" else "SB3 runs are"
        return "fresh", {"restart": f"{kind} not checkpointed"}
    step, reason = resume_point(folder, spec.steps)
    if step is None:
        return "fresh", {"restart": reason}
    return "resume", {"checkpoint_step": step}


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


def progress_line(spec: RunSpec, step: int, eval_mean: float | None) -> str:
    """The line a worker prints at each evaluation before the last (``compare`` with ``verbose``)."""
    text = f"{spec.task} {spec.method} seed{spec.seed}: step {step}/{spec.steps}"
    return text + (f", eval {eval_mean:.1f}" if eval_mean is not None else "")


def _reporter(spec: RunSpec, progress: bool) -> Callable[[int, float | None], None] | None:
    """Prints ``progress_line`` (flushed: the worker's stdout is the terminal's) at evaluations before the end."""
    if not progress:
        return None

    def report(step: int, eval_mean: float | None) -> None:
        if step < spec.steps:
            print(progress_line(spec, step, eval_mean), flush=True)

    return report


def _run_sb3(spec: RunSpec, folder: Path, progress: bool = False) -> dict[str, Any]:
    """An ``sb3-…`` method: ``neuron-env baseline --algo SB3_METHODS[method]`` (on-policy: no ``learning_starts``)."""
    from neuron_env.baselines.sb3_common import OVERRIDE_ALGOS
    from neuron_env.baselines.sb3_ddpg import BaselineConfig, run_baseline

    algo = SB3_METHODS[spec.method]
    zoo = spec.method in ZOO_NET_METHODS
    return run_baseline(BaselineConfig(
        algo=algo, task=spec.task, hidden=None if zoo else spec.hidden, activation="relu" if zoo else spec.activation,
        steps=spec.steps, seed=spec.seed, out=str(folder), eval_every=spec.eval_every, eval_episodes=spec.eval_episodes,
        learning_starts=spec.learning_starts if algo in OVERRIDE_ALGOS["learning_starts"] else None, threads=1,
        tensorboard=spec.tensorboard, progress=False,
    ), on_eval=_reporter(spec, progress))


def _run_local(spec: RunSpec, folder: Path, resume: bool, progress: bool = False,
               on_step: Callable[[Any], None] | None = None) -> dict[str, Any]:
    from neuron_env.agents.errors import DivergenceError
    from neuron_env.agents.train import NothingToDo, TrainConfig, load_checkpoint, train

    learner, options = local_method(spec.method, spec.clock)
    if spec.local_noise == "task":
        options.update(task_noise_options(spec.task))
    config = TrainConfig(
        task=spec.task, hidden=list(spec.hidden), activation=spec.activation, topology=spec.topology, leak=spec.leak,
        density=spec.density, clock=spec.clock, firing_rate=spec.firing_rate, learner=learner, learner_options=options,
        steps=spec.steps,
        seed=spec.seed, out=str(folder),
        eval_every=spec.eval_every, eval_episodes=spec.eval_episodes, progress=False, tensorboard=spec.tensorboard,
        threads=1, device="cpu",
        checkpoint_replay=True,  # an interrupted comparison resumes to the uninterrupted run's result
    )
    if spec.learning_starts is not None:
        config.learning_starts = spec.learning_starts
    if spec.checkpoint_every is not None:
        config.checkpoint_every = spec.checkpoint_every
    done = int(load_checkpoint(folder)["trainer"]["task_step"]) if resume else 0
    if done >= spec.steps:
        # at the budget the resumed run writes its final row again; rows past an earlier checkpoint
        # are dropped by the run itself (agents.run_log.RunLogger)
        drop_csv_rows_after(folder / "metrics.csv", done - 1)
    report = _reporter(spec, progress)

    def each_step(trainer: Any) -> None:
        if report is not None and spec.eval_every and trainer.task_step % spec.eval_every == 0:
            report(trainer.task_step, trainer.last_eval[0] if trainer.last_eval else None)
        if on_step is not None:
            on_step(trainer)

    try:
        # no checkpoint on Ctrl-C: the last one, at a segment boundary, resumes the run exactly
        return train(config, resume=folder if resume else None,
                     on_step=each_step if report is not None or on_step is not None else None,
                     save_on_interrupt=False)
    except NothingToDo:  # its checkpoint is at the budget already: the summary of that run stands
        summary = _read_json(folder / "summary.json")
        if summary is None:
            raise
        return summary
    except DivergenceError:
        summary = _read_json(folder / "summary.json")
        if summary is None:
            raise
        return summary


def execute_run(spec: RunSpec, folder: str | os.PathLike[str], resume: bool = False,
                progress: bool = False, on_step: Callable[[Any], None] | None = None) -> dict[str, Any]:
    """Run one (task, method, seed) into ``folder`` (created) and return its summary.

    Args:
        spec: The run.
        folder: Its output folder; ``compare_run.json`` is written first.
        resume: Continue a local run from the checkpoint in ``folder`` (else start over).
        progress: Print a ``progress_line`` at every evaluation before the last (trained methods).
        on_step: A local run calls it with its ``agents.train.Trainer`` after every task step (tests
            stop a run at a fixed step with ``trainer.request_stop()``, which is what Ctrl-C does).

    Raises:
        Exception: Whatever the run raises (``compare`` records it as ``failed``).
        KeyboardInterrupt: On Ctrl-C in an SB3 run (a local run returns its summary, status
            ``interrupted``, instead).
    """
    import torch

    torch.set_num_threads(1)
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path / RUN_FILE, spec.identity())
    if spec.method == "random":
        return _run_random(spec, path)
    if spec.method.startswith("sb3-"):
        return _run_sb3(spec, path, progress)
    return _run_local(spec, path, resume, progress, on_step)


# ------------------------------------------------------------------------------------------ pool workers
#: The comparison's stop event in a pool worker (``worker_init``): set when the comparison is interrupted.
_STOP: Any = None
#: A Ctrl-C reached this worker.
_INTERRUPTED = False
#: A run is in progress in this worker (a Ctrl-C then stops it).
_RUNNING = False


def _on_sigint(signum: int, frame: Any) -> None:
    """A pool worker's SIGINT handler: stop the run in progress, once; remember it when idle."""
    global _INTERRUPTED
    if _INTERRUPTED:  # the terminal's Ctrl-C and the one the parent forwards: the second changes nothing
        return
    _INTERRUPTED = True
    if _RUNNING:
        raise KeyboardInterrupt


def worker_init(stop: Any = None) -> None:
    """Set up a pool worker (``ProcessPoolExecutor(initializer=...)``): its SIGINT handler, then unblock SIGINT.

    The pool starts its workers with SIGINT blocked (``dispatch``), so a Ctrl-C while a worker
    imports waits until here instead of killing it with a traceback; a Ctrl-C that waited is
    handled now (the worker's runs then return ``interrupted`` rows without running).

    Args:
        stop: An event the parent sets when the comparison is interrupted (``multiprocessing.Event``).
    """
    global _STOP
    _STOP = stop
    signal.signal(signal.SIGINT, _on_sigint)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def _stopping() -> bool:
    return _INTERRUPTED or (_STOP is not None and _STOP.is_set())


def _raised_by_ctrl_c(error: BaseException) -> bool:
    """Whether a ``KeyboardInterrupt`` is in ``error``'s chain of causes and contexts."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, KeyboardInterrupt):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def run_in_worker(spec: RunSpec, folder: str, resume: bool, progress: bool = False) -> dict[str, Any]:
    """Pool entry point: run, and turn an exception into a ``failed`` row and Ctrl-C into an ``interrupted`` one.

    Never raises. A run asked for after the comparison was interrupted returns an ``interrupted``
    row without starting.
    """
    global _RUNNING
    if _stopping():
        return result_row(spec, None, status="interrupted", error="not started: the comparison was interrupted")
    try:
        _RUNNING = True
        summary = execute_run(spec, folder, resume, progress)
    except KeyboardInterrupt:  # an SB3 run stopped by Ctrl-C (it wrote its summary: status interrupted)
        return result_row(spec, _read_json(Path(folder) / "summary.json"), status="interrupted")
    except Exception as error:  # noqa: BLE001 - every failure is recorded, the others continue
        message = f"{type(error).__name__}: {error}"
        try:
            (Path(folder) / "error.txt").write_text(traceback.format_exc(), encoding="utf-8")
        except OSError:
            pass
        if _stopping() or _raised_by_ctrl_c(error):
            # Ctrl-C inside code that wraps exceptions (e.g. an import's __set_name__ turns the KeyboardInterrupt
            # into a RuntimeError): the run was interrupted, not broken, and the next invocation reruns it
            return result_row(spec, None, status="interrupted", error=message)
        return result_row(spec, None, status="failed", error=message)
    finally:
        _RUNNING = False
    return result_row(spec, summary)


def run_and_ship(spec: RunSpec, progress: bool = False) -> dict[str, Any]:
    """Ray entry point: run in a temporary folder; return the row and the run's files (path -> bytes)."""
    with tempfile.TemporaryDirectory(prefix="neuron-env-compare-") as folder:
        row = run_in_worker(spec, folder, resume=False, progress=progress)
        files: dict[str, bytes] = {}
        for path in Path(folder).rglob("*"):
            if path.is_file() and path.name not in NOT_SHIPPED:
                files[path.relative_to(folder).as_posix()] = path.read_bytes()
    return {"row": row, "files": files}


# ------------------------------------------------------------------------------------------ results.csv
class ResultsFile:
    """``results.csv``: rewritten from rows at the start, then one row added per finished run, atomically."""

    def __init__(self, path: str | os.PathLike[str], rows: Iterable[Mapping[str, Any]]) -> None:
        self.path = Path(path)
        write_csv(self.path, rows, RESULTS_COLUMNS)

    def append(self, row: Mapping[str, Any]) -> None:
        """Add one row (the whole file is replaced atomically: a crash never leaves half a row)."""
        append_csv_row(self.path, row, RESULTS_COLUMNS)


def read_results(path: str | os.PathLike[str]) -> list[dict[str, str]]:
    """The rows of a ``results.csv``."""
    with open(path, newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))
