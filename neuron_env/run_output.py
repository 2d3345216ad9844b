"""Run output files that survive a crash: atomic text, JSON and CSV writes, and the machine's description.

Every run of neuron-env (the trainer, the baselines, the comparison harness, the studies and the
benchmarks) writes its files through this module, so no file is ever left half written: a
process killed at any instant leaves either the previous file or the new one.

How it is atomic
----------------
A write goes to a temporary file in the target's own folder (``.<name>.<random>.tmp``), which
is flushed and ``fsync``-ed, then renamed over the target with ``os.replace``, an atomic rename
on POSIX and Windows alike. Appending a row to a CSV does the same with the whole file: the
old contents plus the new row go to the temporary file, so a crash never leaves half a row
(``metrics.csv`` files hold one row per log interval or evaluation, a few hundred rows, so
rewriting them costs nothing worth measuring).

Functions
---------
``atomic_write(path, write)``
    Replace a file's contents with what ``write(stream)`` writes (``torch.save`` for a checkpoint).
``atomic_write_text(path, text)`` / ``atomic_write_json(path, data)``
    Replace a file's contents. JSON is indented and strict: NaN and infinities become ``null``.
``write_csv(path, rows, fieldnames)``
    Replace a CSV file with a header and rows.
``append_csv_row(path, row)`` / ``append_csv_rows(path, rows, fieldnames)``
    Add one row (or several in one rewrite), writing the header first when the file is new; the
    columns must match the file's header (else ``RunOutputError`` names both).
``drop_csv_rows_after(path, step)``
    Remove the rows past a task step: what a resumed run writes again.
``EpisodeLog(path)``
    A run's ``episodes.csv``, one row per training episode, appended in batches.
``machine_info(*packages)`` / ``machine_line(info)`` / ``load_average_1min()``
    Versions and hardware of this process, for benchmark JSONs, and the one-line summary the
    Markdown reports print under their title.

Run folders (``--out`` checks, ``--overwrite``) are ``neuron_env.run_folders``.

Example::

    from neuron_env.run_output import append_csv_row, atomic_write_json, machine_info

    append_csv_row("runs/x/metrics.csv", {"step": 1000, "eval_return_mean": -812.5})
    atomic_write_json("runs/x/summary.json", {"status": "completed", "machine": machine_info()})
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import math
import os
import platform
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from importlib import import_module
from pathlib import Path
from typing import Any, BinaryIO

from neuron_env.errors import RunOutputError

__all__ = [
    "EPISODES_COLUMNS",
    "EpisodeLog",
    "append_csv_row",
    "append_csv_rows",
    "drop_csv_rows_after",
    "atomic_write",
    "atomic_write_json",
    "atomic_write_text",
    "jsonable",
    "load_average_1min",
    "machine_info",
    "machine_line",
    "write_csv",
]


#: Columns of a run's ``episodes.csv``: one row per training episode (task step it ended at, return, length).
EPISODES_COLUMNS: tuple[str, ...] = ("step", "return", "length")


def jsonable(value: Any) -> Any:
    """``value`` with NaN and infinite floats replaced by ``None`` (strict JSON), recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: The process's umask, read once at import (``os.umask`` can only be read by setting it).
_UMASK = _current_umask()


def atomic_write(path: str | os.PathLike[str], write: Callable[[BinaryIO], object]) -> None:
    """Call ``write(stream)`` on a temporary binary file beside ``path``, then rename it over ``path``.

    The general form of every writer here (``torch.save(payload, stream)`` writes a checkpoint
    this way). On any exception the temporary file is removed and ``path`` is left as it was.

    Args:
        path: The target file; its folder is created when missing.
        write: Writes the whole new contents into the binary stream it is given.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes it private; the result should read like any written file
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8, line endings as given) to ``path`` atomically (see ``atomic_write``)."""
    data = text.encode("utf-8")
    atomic_write(path, lambda stream: stream.write(data))


def atomic_write_json(path: str | os.PathLike[str], data: Mapping[str, Any]) -> None:
    """Write ``data`` as indented strict JSON (NaN becomes ``null``) to ``path`` atomically."""
    atomic_write_text(path, json.dumps(jsonable(dict(data)), indent=2, sort_keys=False) + "\n")


def publish(results: Mapping[str, Any], report: str | None, out: str | os.PathLike[str] | None,
            print_fn: Callable[[str], object] = print) -> dict[str, Any]:
    """A benchmark's last step: print its ``report`` and write ``results`` to ``out`` as JSON, atomically.

    Args:
        results: The measurements (see ``atomic_write_json``; NaN becomes ``null``).
        report: The human-readable table, or ``None`` when it was printed already.
        out: The JSON file; ``None`` or empty: nothing is written.
        print_fn: Where the report and the "wrote" line go.

    Returns:
        ``results`` as a dict.
    """
    if report is not None:
        print_fn(report)
    if out:
        atomic_write_json(out, results)
        print_fn(f"wrote {out}")
    return dict(results)


def _csv_text(rows: Iterable[Mapping[str, Any]], fieldnames: Sequence[str], header: bool) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(fieldnames))
    if header:
        writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def write_csv(path: str | os.PathLike[str], rows: Iterable[Mapping[str, Any]], fieldnames: Sequence[str]) -> None:
    """Replace ``path`` with a CSV file of ``fieldnames`` as header and ``rows``, atomically.

    Args:
        path: The target file; its folder is created when missing.
        rows: Rows keyed by column name (a key outside ``fieldnames`` raises ``ValueError``).
        fieldnames: The columns, in order.
    """
    atomic_write_text(path, _csv_text(rows, fieldnames, header=True))


def append_csv_row(path: str | os.PathLike[str], row: Mapping[str, Any],
                   fieldnames: Sequence[str] | None = None) -> None:
    """Add ``row`` to the CSV file ``path`` atomically (the header first when the file is new or empty).

    The file is rewritten whole through a temporary file and ``os.replace``, so a crash leaves
    either the old file or the new one, never half a row.

    Args:
        path: The CSV file.
        row: The row, keyed by column name.
        fieldnames: The columns, in order; default the row's keys in their order.

    Raises:
        RunOutputError: If the file already has a header with other columns (the message names
            both; write to a new file, or pass the file's columns as ``fieldnames``).
    """
    append_csv_rows(path, [row], fieldnames if fieldnames is not None else list(row))


def append_csv_rows(path: str | os.PathLike[str], rows: Sequence[Mapping[str, Any]],
                    fieldnames: Sequence[str]) -> None:
    """Add ``rows`` to the CSV file ``path`` in one atomic rewrite (see ``append_csv_row``).

    Nothing is written when ``rows`` is empty and the file exists; a new file gets its header.

    Raises:
        RunOutputError: If the file already has a header with other columns.
    """
    target = Path(path)
    columns = list(fieldnames)
    old = ""
    if target.is_file():
        with open(target, encoding="utf-8", newline="") as stream:  # newline="": keep csv's \r\n as written
            old = stream.read()
    if old:
        existing = next(csv.reader(io.StringIO(old)), [])
        if existing != columns:
            raise RunOutputError(f"{target} has columns {existing}, not {columns}; write the row to a new file, "
                                 "or pass the file's columns as fieldnames")
        if not rows:
            return
        if not old.endswith("\n"):
            old += "\r\n"  # a file someone else wrote without a final line break: the row starts a new line
    atomic_write_text(target, old + _csv_text(rows, columns, header=not old))


def drop_csv_rows_after(path: str | os.PathLike[str], step: int, column: str = "step") -> None:
    """Remove the rows of ``path`` whose ``column`` is above ``step`` (atomically; no file: nothing).

    A run resumed from a checkpoint at task step ``step`` writes again what it did after it, so
    the rows a crashed process wrote past its last checkpoint go first (no row twice).
    """
    target = Path(path)
    if not target.is_file():
        return
    with open(target, encoding="utf-8", newline="") as stream:
        rows = list(csv.DictReader(stream))
        fieldnames = list(rows[0].keys()) if rows else None
    if not rows or fieldnames is None or column not in fieldnames:
        return
    kept = [row for row in rows if not row[column] or int(float(row[column])) <= step]
    if len(kept) != len(rows):
        write_csv(target, kept, fieldnames)


class EpisodeLog:
    """A run's ``episodes.csv``: one row per training episode (``EPISODES_COLUMNS``), appended in batches.

    Rows wait in memory until ``write`` (the run's writers call it with each ``metrics.csv`` row and
    at the end), so an episode costs no file rewrite.

    Args:
        path: The file.
        new: Start a new file (the header alone); ``False`` keeps its rows (a resumed run), writing
            the header only when the file is missing.
    """

    def __init__(self, path: str | os.PathLike[str], new: bool = True) -> None:
        self.path = Path(path)
        if new:
            write_csv(self.path, [], EPISODES_COLUMNS)
        else:
            append_csv_rows(self.path, [], EPISODES_COLUMNS)
        self._pending: list[dict[str, float | int]] = []

    def add(self, step: int, episodic_return: float, length: int) -> None:
        """An episode ended at task step ``step`` with return ``episodic_return`` over ``length`` steps."""
        self._pending.append({"step": int(step), "return": round(float(episodic_return), 6), "length": int(length)})

    def write(self) -> None:
        """Append the episodes added since the last ``write``."""
        if self._pending:
            append_csv_rows(self.path, self._pending, EPISODES_COLUMNS)
            self._pending = []


def _version(package: str) -> str | None:
    """``package.__version__``, or ``None`` when it is not installed."""
    try:
        return str(getattr(import_module(package), "__version__", "unknown"))
    except ImportError:
        return None


def load_average_1min() -> float | None:
    """The system's 1-minute load average, or ``None`` where the platform has none (Windows)."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):  # not on every platform (Windows has no getloadavg)
        return None


def machine_info(*packages: str) -> dict[str, Any]:
    """Versions and hardware of this process, for report headers and benchmark JSONs.

    Args:
        *packages: Import names of further packages whose version to record (``"stable_baselines3"``,
            ``"pettingzoo"``, ``"mujoco"``); each becomes a key, ``None`` when it is not installed.

    Returns:
        ``python``, ``torch``, ``gymnasium``, ``numpy``, one key per name in ``packages``,
        ``cpu_count``, ``torch_threads`` (torch's intra-op threads now), ``platform``,
        ``processor``, ``cuda`` (the first GPU's name, or ``None``), ``load_average_1min``
        (``None`` where the platform has none) and ``date`` (UTC, ISO 8601, to the second).
    """
    import torch  # here, not at the top: writing a file should not need torch imported

    info: dict[str, Any] = {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "gymnasium": _version("gymnasium"),
        "numpy": _version("numpy"),
    }
    info.update({package: _version(package) for package in packages})
    info.update({
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "load_average_1min": load_average_1min(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    })
    return info


def machine_line(info: Mapping[str, Any]) -> str:
    """The line a Markdown report prints about its machine: ``Machine: 16 CPUs, torch 2.5.1, Python 3.11.9, …``."""
    return (f"Machine: {info['cpu_count']} CPUs, torch {info['torch']}, Python {info['python']}, "
            f"{info['platform']}; date {info['date']}.")
