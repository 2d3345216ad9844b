"""Run outputs in the format of ``neuron-env train``, so baseline and local runs compare line by line.

A run directory (``--out``) holds:

``metrics.csv``
    One row per evaluation (every ``eval_every`` task steps and at the end, none at step 0),
    written and flushed as it happens, columns ``METRICS_COLUMNS``, the trainer's:

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

import csv
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

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


def _jsonable(value: Any) -> Any:
    """``value`` with NaN/inf floats replaced by ``None`` (strict JSON), recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` atomically: a temporary file in the same folder, then ``os.replace``."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: str | os.PathLike[str], data: dict[str, Any]) -> None:
    """Write ``data`` as indented strict JSON (NaN becomes ``null``) to ``path`` atomically."""
    atomic_write_text(path, json.dumps(_jsonable(data), indent=2, sort_keys=False) + "\n")


class MetricsWriter:
    """Appends evaluation rows to ``metrics.csv`` (flushed each row) and scalars to ``tb/``.

    Args:
        out: Run directory (created if missing).
        tensorboard: Whether to write TensorBoard event files into ``out/tb``.
    """

    def __init__(self, out: str | os.PathLike[str], tensorboard: bool = True) -> None:
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self._csv_file = open(self.out / "metrics.csv", "w", newline="", encoding="utf-8")  # noqa: SIM115
        self._csv = csv.DictWriter(self._csv_file, fieldnames=METRICS_COLUMNS)
        self._csv.writeheader()
        self._csv_file.flush()
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
        """Write one ``metrics.csv`` row (and its ``eval/…`` scalars) and flush it to disk."""
        self._csv.writerow({
            "step": int(step),
            "wall_time_s": round(wall_time_s, 3),
            "sps": round(step / wall_time_s, 2) if wall_time_s > 0 else "",
            "episodic_return": "" if episodic_return is None else round(float(episodic_return), 4),
            "eval_return_mean": round(float(eval_mean), 4),
            "eval_return_std": round(float(eval_std), 4),
            "td_error": "" if td_error is None else round(float(td_error), 6),
            "updates": int(updates),
        })
        self._csv_file.flush()
        self.scalar("eval/return_mean", eval_mean, step)
        self.scalar("eval/return_std", eval_std, step)

    def scalar(self, name: str, value: float, step: int) -> None:
        """Log one TensorBoard scalar (no-op when TensorBoard is off)."""
        if self._tb is not None:
            self._tb.add_scalar(name, float(value), int(step))

    def close(self) -> None:
        """Flush and close the CSV file and the TensorBoard writer."""
        if not self._csv_file.closed:
            self._csv_file.close()
        if self._tb is not None:
            self._tb.flush()
            self._tb.close()
            self._tb = None

    def __enter__(self) -> MetricsWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
