"""Where a training run's numbers go: TensorBoard, ``metrics.csv``, ``episodes.csv``, progress, ``summary.json``.

``RunLogger`` is the trainer's (``agents.train.Trainer``) only writer of these; the trainer
tells it what happened (an episode ended, an update's statistics, a log interval, an
evaluation, a task step) and it decides what to write. See ``agents.train`` for the files.

Example::

    logger = RunLogger(Path("runs/x"), total=30_000, initial=0, num_envs=1)
    logger.episode(step=200, episodic_return=-1234.5, length=200)
    logger.row(step=1000, updates=0, evaluation=None)   # a log-interval row: eval columns blank
    logger.close()
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from neuron_env.run_output import (
    EpisodeLog,
    append_csv_row,
    atomic_write_json,
    drop_csv_rows_after,
)

#: Columns of the trainer's ``metrics.csv`` (the baselines write the same, ``baselines.outputs``).
METRICS_COLUMNS = ("step", "wall_time_s", "sps", "episodic_return", "eval_return_mean", "eval_return_std",
                   "td_error", "updates")

#: Seconds between refreshes of the progress bar's postfix (its steps/s is the rate over that window).
POSTFIX_INTERVAL_S = 1.0


class RunLogger:
    """TensorBoard scalars, ``metrics.csv`` rows, ``episodes.csv``, the progress bar and ``summary.json`` of one run.

    ``episodes.csv`` has one row per training episode (``EPISODES_COLUMNS``: the task step it
    ended at, its return with exploration, its length), written with each ``metrics.csv`` row and
    at ``close``. A resumed run (``initial > 0``) first drops the rows of both files past
    ``initial``: the crashed process wrote them after its last checkpoint, and they are written again;
    TensorBoard hides that process's events past ``initial`` too (``SummaryWriter(purge_step=...)``).

    Args:
        out: The run directory (exists).
        total: Task steps the run trains to (the bar's length).
        initial: Task steps already done (a resumed run).
        num_envs: Task copies stepped in lockstep (steps/s counts every copy's steps).
        elapsed_before: Wall time of the run before this process (a resumed run).
        progress: Show a tqdm progress bar.
        tensorboard: Write TensorBoard scalars under ``out/tb``.
        clock: Seconds since some origin (``time.perf_counter``; tests pass their own).
    """

    def __init__(self, out: Path, total: int, initial: int, num_envs: int, elapsed_before: float = 0.0,
                 progress: bool = False, tensorboard: bool = False,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        from tqdm.auto import tqdm

        self.out = out
        self.num_envs = num_envs
        self.elapsed_before = elapsed_before
        self._clock = clock
        self._start = clock()
        self._writer: Any = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            # a resumed run hides the events an earlier process wrote past its checkpoint (they are written again)
            self._writer = SummaryWriter(str(out / "tb"), purge_step=initial + 1 if initial > 0 else None)
        self._bar = tqdm(total=total, initial=initial, disable=not progress, unit="step", dynamic_ncols=True)
        self._postfix: dict[str, str] = {"ret": "-", "eval": "-", "sps": "-"}
        self._window = (self._clock(), initial)  # the log interval's start: charts/SPS
        self._live = (self._clock(), initial)  # the bar's window: its steps/s
        self._returns_since_row: list[float] = []
        if initial > 0:
            for name in ("metrics.csv", "episodes.csv"):
                drop_csv_rows_after(out / name, initial)
        self._episodes = EpisodeLog(out / "episodes.csv", new=False)  # a new run's file starts with the header
        self._td_sum, self._td_count = 0.0, 0
        self.last_row_step: int | None = None

    def elapsed(self) -> float:
        """Wall time of the run so far, earlier processes included."""
        return self.elapsed_before + self._clock() - self._start

    # ------------------------------------------------------------------ what happened
    def scalar(self, name: str, value: float, step: int) -> None:
        """One TensorBoard scalar (nothing without TensorBoard)."""
        if self._writer is not None:
            self._writer.add_scalar(name, value, step)

    def episode(self, step: int, episodic_return: float, length: int) -> None:
        """An episode ended at task step ``step``."""
        self._returns_since_row.append(episodic_return)
        self._episodes.add(step, episodic_return, length)
        self.scalar("charts/episodic_return", episodic_return, step)
        self.scalar("charts/episodic_length", float(length), step)

    def losses(self, step: int, stats: Mapping[str, Any]) -> None:
        """An update's statistics, logged at a log interval (``losses/<name>``; ``td_error`` feeds the row)."""
        if "td_error" in stats:
            self._td_sum, self._td_count = self._td_sum + float(stats["td_error"]), self._td_count + 1
        for name, value in stats.items():
            self.scalar(f"losses/{name}", float(value), step)

    def interval(self, step: int, recent_returns: Sequence[float], last_eval: tuple[float, float] | None) -> None:
        """A log interval ended: ``charts/SPS`` over the interval, and the bar's return and evaluation."""
        now = self._clock()
        sps = (step - self._window[1]) * self.num_envs / max(now - self._window[0], 1e-9)
        self._window = (now, step)
        self.scalar("charts/SPS", sps, step)
        self._postfix["ret"] = f"{np.mean(recent_returns):.1f}" if len(recent_returns) else "-"
        self._postfix["eval"] = f"{last_eval[0]:.1f}" if last_eval else "-"

    def evaluation(self, step: int, mean: float, std: float) -> None:
        """An evaluation's scalars (``eval/return_mean``, ``eval/return_std``)."""
        self.scalar("eval/return_mean", mean, step)
        self.scalar("eval/return_std", std, step)
        self._postfix["eval"] = f"{mean:.1f}"

    def row(self, step: int, updates: int, evaluation: tuple[float, float] | None) -> None:
        """Append a ``metrics.csv`` row: episodes and TD errors since the previous row, the evaluation or blanks."""
        elapsed = self.elapsed()
        append_csv_row(self.out / "metrics.csv", {
            "step": step,
            "wall_time_s": round(elapsed, 3),
            "sps": round(step * self.num_envs / elapsed, 2) if elapsed > 0 else "",
            "episodic_return": round(float(np.mean(self._returns_since_row)), 4) if self._returns_since_row else "",
            "eval_return_mean": round(evaluation[0], 4) if evaluation else "",
            "eval_return_std": round(evaluation[1], 4) if evaluation else "",
            "td_error": round(self._td_sum / self._td_count, 6) if self._td_count else "",
            "updates": updates,
        }, METRICS_COLUMNS)
        self._returns_since_row, self._td_sum, self._td_count = [], 0.0, 0
        self._episodes.write()
        self.last_row_step = step

    def advance(self, step: int) -> None:
        """One task step done: move the bar; refresh its steps/s (the rate since the last refresh) once a second."""
        self._bar.update(1)
        if self._bar.disable:
            return
        now = self._clock()
        if now - self._live[0] >= POSTFIX_INTERVAL_S:
            self._postfix["sps"] = f"{(step - self._live[1]) * self.num_envs / (now - self._live[0]):.0f}"
            self._live = (now, step)
            self._bar.set_postfix(self._postfix, refresh=False)

    def summary(self, summary: Mapping[str, Any]) -> None:
        """Write ``summary.json`` (atomically)."""
        atomic_write_json(self.out / "summary.json", dict(summary))

    def close(self) -> None:
        """Write the pending episodes; close the bar and the TensorBoard writer."""
        self._episodes.write()
        self._bar.close()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
