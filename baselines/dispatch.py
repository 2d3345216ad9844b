"""Where a comparison's runs execute: a process pool on this machine, or a Ray cluster.

``dispatch(jobs, config, on_row)`` sends every ``(RunSpec, resume)`` job to a
``ProcessPoolExecutor`` (``spawn``, ``config.workers`` processes, a fresh process per run on
Python ≥ 3.11) or, with ``config.ray_address``, to Ray tasks (``num_cpus=1`` each) whose files
are shipped back into the run folders. ``on_row`` receives each finished run's ``results.csv``
row as it arrives; a worker that dies becomes a ``failed`` row. ``describe_row`` is the line
printed per finished run; with ``config.verbose`` each worker also prints a line per evaluation
(``runners.progress_line``) to the stdout it inherits (on Ray: the driver's log stream).

Ctrl-C
------
The terminal's Ctrl-C reaches the parent and every worker. Each worker stops its run (a local
run keeps its last segment-boundary checkpoint, ``runners``) and returns an ``interrupted`` row;
the parent sets the pool's stop event (a run not started yet returns at once), cancels the runs
not handed out, forwards SIGINT to workers still running after ``STOP_GRACE_S`` (a Ctrl-C sent
to the parent alone), waits for them (``STOP_TIMEOUT_S`` at most, then terminates them), passes
the rows of runs that finished meanwhile to ``on_row`` and raises ``KeyboardInterrupt``: no
traceback from any process (``compare`` says what was kept in one line). A run that comes back
``interrupted`` while the parent saw no Ctrl-C stops the comparison the same way: the SIGINT
reached the workers only (the parent ignores SIGINT, as a job that a shell without job control
starts in the background does; or it was sent to a worker alone), and the rest of the grid does
not run on as if nothing had been asked.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import CancelledError, Future
from typing import Any

from neuron_env.baselines.compare_config import CompareConfig, RunSpec
from neuron_env.baselines.errors import MissingDependencyError
from neuron_env.baselines.runners import result_row, run_and_ship, run_in_worker, worker_init

#: Seconds the workers get to stop on the terminal's Ctrl-C before the parent forwards it to them.
STOP_GRACE_S = 3.0
#: Seconds the parent waits for the workers to stop before it terminates them.
STOP_TIMEOUT_S = 60.0


# ------------------------------------------------------------------------------------------ dispatch
def describe_row(row: Mapping[str, Any]) -> str:
    """The line printed when a run finishes (its status, final evaluation, wall time and speed)."""
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


@contextlib.contextmanager
def _sigint_blocked() -> Iterator[None]:
    """Block SIGINT in this thread meanwhile: processes and threads started here begin with it blocked.

    A Ctrl-C that arrives meanwhile is delivered (``KeyboardInterrupt``) when the block ends.
    Nothing is blocked where the platform has no ``pthread_sigmask`` (Windows).
    """
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _deliver(spec: RunSpec, future: Future, on_row: Callable[[dict[str, Any]], None]) -> str | None:
    """Pass a finished future's row to ``on_row`` (a worker that died: a ``failed`` row; cancelled: nothing).

    Returns:
        The row's status (``None`` for a cancelled future).
    """
    try:
        row = future.result()
    except CancelledError:
        return None
    except Exception as error:  # noqa: BLE001 - a worker that died (e.g. killed for memory)
        row = result_row(spec, None, status="failed", error=f"{type(error).__name__}: {error}")
    on_row(row)
    return row["status"]


def _stop_pool(executor: Any, pending: dict[Future, RunSpec], stop: Any,
               on_row: Callable[[dict[str, Any]], None]) -> None:
    """After a Ctrl-C in the parent: let every worker stop its run, collect the rows, shut the pool down."""
    import multiprocessing
    from concurrent.futures import wait

    stop.set()  # a worker that has not started its run returns at once
    try:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # more Ctrl-C reach the workers themselves
    except ValueError:  # not the main thread
        previous = None
    try:
        for future in pending:
            future.cancel()  # runs not handed to a worker yet
        done, running = wait(pending, timeout=STOP_GRACE_S)
        if running:  # a Ctrl-C sent to this process alone: pass it on
            for child in multiprocessing.active_children():
                with contextlib.suppress(OSError):
                    os.kill(child.pid, signal.SIGINT)  # type: ignore[arg-type]
            done, running = wait(pending, timeout=STOP_TIMEOUT_S)
        for future in done:
            _deliver(pending[future], future, on_row)
        if running:
            for child in multiprocessing.active_children():
                child.terminate()
        executor.shutdown(wait=True, cancel_futures=True)
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def _dispatch_pool(jobs: list[tuple[RunSpec, bool]], config: CompareConfig,
                   on_row: Callable[[dict[str, Any]], None]) -> None:
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    options: dict[str, Any] = {"max_workers": min(config.workers, len(jobs)), "mp_context": context,
                               "initializer": worker_init, "initargs": (stop,)}
    if sys.version_info >= (3, 11):
        options["max_tasks_per_child"] = 1  # a fresh process per run
    executor = ProcessPoolExecutor(**options)
    pending: dict[Future, RunSpec] = {}
    try:
        # the workers, and the pool's thread that starts their replacements, begin with SIGINT blocked
        # (runners.worker_init unblocks it once its handler is in place)
        with _sigint_blocked():
            for spec, resume in jobs:
                pending[executor.submit(run_in_worker, spec, str(spec.folder(config.out)), resume,
                                        config.verbose)] = spec
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                if _deliver(pending.pop(future), future, on_row) == "interrupted":
                    raise KeyboardInterrupt  # a SIGINT reached a worker, not this process: stop as on Ctrl-C
    except KeyboardInterrupt:
        _stop_pool(executor, pending, stop, on_row)
        raise
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
        pending = {remote.remote(spec, config.verbose): spec for spec, _ in jobs}
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


def dispatch(jobs: list[tuple[RunSpec, bool]], config: CompareConfig,
             on_row: Callable[[dict[str, Any]], None]) -> None:
    """Run every ``(spec, resume)`` job, on Ray when ``config.ray_address`` is set, else in the process pool.

    Args:
        jobs: The runs, each with whether to resume it from its checkpoint (ignored on Ray).
        config: The comparison (``workers``, ``ray_address``, ``out``).
        on_row: Called in this process with each finished run's ``results.csv`` row.

    Raises:
        MissingDependencyError: When ``ray_address`` is set and Ray is not installed.
        KeyboardInterrupt: On Ctrl-C (in a pool, also when a run comes back interrupted), once every worker
            has stopped (see the module doc).
    """
    (_dispatch_ray if config.ray_address else _dispatch_pool)(jobs, config, on_row)
