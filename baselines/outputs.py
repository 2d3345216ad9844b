"""Run outputs in the format of ``neuron-env train``, so baseline and local runs compare line by line.

A run directory (``--out``) holds:

``metrics.csv``
    One row per evaluation (every ``eval_every`` task steps and at the end, none at step 0;
    the local trainer adds rows every ``log_every`` task steps with blank evaluation columns,
    which ``report.read_curve`` skips), written atomically as it happens
    (``neuron_env.run_output.append_csv_row``: a crash never leaves half a row), columns
    ``METRICS_COLUMNS``, the trainer's:

    * ``step``: task (environment) steps taken so far;
    * ``wall_time_s``: seconds since the run started;
    * ``sps``: task steps per second so far;
    * ``episodic_return``: mean return of the *training* episodes (with exploration noise) that
      ended since the previous row; empty when none ended;
    * ``eval_return_mean`` / ``eval_return_std``: mean and standard deviation of the returns of
      deterministic evaluation episodes on a separate copy of the task;
    * ``td_error``: the local trainer's mean ``|TD error|``; empty for methods that do not
      measure it (SB3 reports a critic loss instead, in TensorBoard as ``losses/qf_loss``);
    * ``updates``: gradient updates so far.

``episodes.csv``
    One row per training episode (``neuron_env.run_output.EPISODES_COLUMNS``: the task step it
    ended at, its return with exploration, its length), written with each ``metrics.csv`` row and
    at the end; the trainer writes the same file.

``summary.json``
    Written at the end, atomically (temporary file + ``os.replace``), with the trainer's keys
    ``SUMMARY_KEYS`` (``status``, ``final_eval_return_mean``, ``final_eval_return_std``,
    ``final_eval_returns``, ``steps``, ``transitions``, ``updates``, ``episodes``, ``wall_time_s``,
    ``steps_per_s``, ``device``, ``num_agents``, ``granularity``, ``config``) plus, for the
    baseline, ``method``, ``task``, ``seed`` and ``hyperparameters``.

``config.json``
    The run's configuration.

``tb/``
    TensorBoard scalars under CleanRL's names, against the task step: ``charts/episodic_return``,
    ``charts/episodic_length``, ``charts/SPS``, ``eval/return_mean``, ``eval/return_std``, and the
    method's losses under ``losses/…``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

# The atomic writers live in neuron_env.run_output (the trainer uses them too); re-exported here for
# the baselines' callers.
from neuron_env.run_output import EpisodeLog, append_csv_row, atomic_write_json, atomic_write_text, write_csv

__all__ = ["METRICS_COLUMNS", "SUMMARY_KEYS", "MetricsWriter", "atomic_write_json", "atomic_write_text"]

METRICS_COLUMNS: tuple[str, ...] = (
    "step",
    "wall_time_s",
    "sps",
    "episodic_return",
    "eval_return_mean",
    "eval_return_std",
    "td_error",
    "updates",
)
SUMMARY_KEYS: tuple[str, ...] = (
    "status",
    "final_eval_return_mean",
    "final_eval_return_std",
    "final_eval_returns",
    "steps",
    "transitions",
    "updates",
    "episodes",
    "wall_time_s",
    "steps_per_s",
    "device",
    "num_agents",
    "granularity",
    "config",
)


class MetricsWriter:
    """Appends evaluation rows to ``metrics.csv`` (atomically, one row at a time) and scalars to ``tb/``.

    Args:
        out: Run directory (created if missing).
        tensorboard: Whether to write TensorBoard event files into ``out/tb``.
    """

    def __init__(self, out: str | os.PathLike[str], tensorboard: bool = True) -> None:
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self._metrics = self.out / "metrics.csv"
        write_csv(self._metrics, [], METRICS_COLUMNS)  # a new run starts a new file: the header alone
        self._episodes = EpisodeLog(self.out / "episodes.csv")  # a new run: a new file
        self._tb: Any = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(log_dir=str(self.out / "tb"))

    def row(
        self,
        step: int,
        wall_time_s: float,
        eval_mean: float,
        eval_std: float,
        episodic_return: float | None,
        updates: int,
        td_error: float | None = None,
    ) -> None:
        """Append one ``metrics.csv`` row atomically (and log its ``eval/…`` scalars)."""
        append_csv_row(self._metrics, {
            "step": int(step),
            "wall_time_s": round(wall_time_s, 3),
            "sps": round(step / wall_time_s, 2) if wall_time_s > 0 else "",
            "episodic_return": "" if episodic_return is None else round(float(episodic_return), 4),
            "eval_return_mean": round(float(eval_mean), 4),
            "eval_return_std": round(float(eval_std), 4),
            "td_error": "" if td_error is None else round(float(td_error), 6),
            "updates": int(updates),
        }, METRICS_COLUMNS)
        self.scalar("eval/return_mean", eval_mean, step)
        self.scalar("eval/return_std", eval_std, step)
        self._episodes.write()

    def episode(self, step: int, episodic_return: float, length: int) -> None:
        """A training episode ended at task step ``step`` (its row goes out with the next ``row`` or at ``close``)."""
        self._episodes.add(step, episodic_return, length)
        self.scalar("charts/episodic_return", episodic_return, step)
        self.scalar("charts/episodic_length", float(length), step)

    def scalar(self, name: str, value: float, step: int) -> None:
        """Log one TensorBoard scalar (no-op when TensorBoard is off)."""
        if self._tb is not None:
            self._tb.add_scalar(name, float(value), int(step))

    def close(self) -> None:
        """Write the pending episodes; flush and close the TensorBoard writer."""
        self._episodes.write()
        if self._tb is not None:
            self._tb.flush()
            self._tb.close()
            self._tb = None

    def __enter__(self) -> MetricsWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
