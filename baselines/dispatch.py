"""Where a comparison's runs execute: a process pool on this machine, or a Ray cluster.

``dispatch(jobs, config, on_row)`` sends every ``(RunSpec, resume)`` job to a
``ProcessPoolExecutor`` (``spawn``, ``config.workers`` processes, a fresh process per run on
Python ≥ 3.11) or, with ``config.ray_address``, to Ray tasks (``num_cpus=1`` each) whose files
are shipped back into the run folders. ``on_row`` receives each finished run's ``results.csv``
row as it arrives; a worker that dies becomes a ``failed`` row. ``describe_row`` is the line
printed per finished run; with ``config.verbose`` each worker also prints a line per evaluation
(``runners.progress_line``) to the stdout it inherits (on Ray: the driver's log stream).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import Any

from neuron_env.baselines.compare_config import CompareConfig, RunSpec
from neuron_env.baselines.errors import MissingDependencyError
from neuron_env.baselines.runners import result_row, run_and_ship, run_in_worker


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
        pending = {executor.submit(run_in_worker, spec, str(spec.folder(config.out)), resume,
                                   config.verbose): spec
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
    """
    (_dispatch_ray if config.ray_address else _dispatch_pool)(jobs, config, on_row)
