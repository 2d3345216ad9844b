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

Run folders
-----------
Every command that writes a run (``train``, ``baseline``, ``compare``, ``render``) checks its
``--out`` here, before any work, so no run is ever silently replaced:

``check_run_folder(path, command, overwrite, resume)``
    Refuse, in one line (``RunFolderError``, exit status 2 at the command line), an ``--out``
    that is a file, lies under a file, or holds a run (``run_kind``: a ``train``, ``baseline``
    or ``compare`` run, or a run of a comparison); the message names the ``--resume`` command
    where there is one, ``--overwrite`` and another ``--out``.
``clear_run_folder(path)``
    What ``--overwrite`` does once the new run's options are checked: delete the files and
    folders a run writes (``RUN_ENTRIES``, ``COMPARE_ENTRIES``, ``tb/``, the run folders of a
    comparison under ``runs/``), and nothing else.
``free_run_folder(path)``
    A default folder name that is taken gets the first free numbered suffix
    (``runs/Pendulum-v1-feedback-seed0-2``, ``-3``, …).
``check_output_file(path, suffixes, overwrite)``
    The same for one output file (``render``'s ``.gif`` / ``.mp4``).
``RunInterrupted``
    A ``KeyboardInterrupt`` that says what a stopped run saved (``baseline`` and ``compare`` raise
    it on Ctrl-C; the command line prints it in one line with the command that resumes).

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
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from importlib import import_module
from pathlib import Path
from typing import Any, BinaryIO

from neuron_env.errors import RunOutputError

__all__ = [
    "COMPARE_ENTRIES",
    "EPISODES_COLUMNS",
    "RUN_ENTRIES",
    "EpisodeLog",
    "RunFolderError",
    "RunInterrupted",
    "append_csv_row",
    "append_csv_rows",
    "drop_csv_rows_after",
    "atomic_write",
    "atomic_write_json",
    "atomic_write_text",
    "check_output_file",
    "check_output_path",
    "check_run_folder",
    "clear_run_folder",
    "describe_run",
    "free_run_folder",
    "jsonable",
    "load_average_1min",
    "machine_info",
    "machine_line",
    "run_kind",
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


# ---------------------------------------------------------------------------------- run folders
#: What a run writes into its folder: ``train``, ``baseline`` and each run of a comparison.
RUN_ENTRIES: tuple[str, ...] = ("checkpoint.pt", "summary.json", "config.json", "metrics.csv", "episodes.csv",
                                "model.zip", "error.txt", "compare_run.json", "tb")
#: What ``compare`` writes at the top of its folder, beside ``runs/`` (its runs' folders).
COMPARE_ENTRIES: tuple[str, ...] = ("results.csv", "scores.md", "scores.json", "curves.png")
#: The file that marks a run folder of a comparison (``baselines.compare_config.RUN_FILE``).
COMPARE_RUN_FILE = "compare_run.json"


class RunFolderError(RunOutputError):
    """An output path that cannot take a new run (the message names the path and the fix).

    A file where a folder goes, a path under a file, a folder that holds a run, or a file name
    with the wrong suffix.
    """


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped a run or a comparison after it saved what it could; ``str(error)`` says what was saved.

    A ``KeyboardInterrupt``, so code that stops on Ctrl-C keeps stopping; the command line prints
    it in one line with the command that resumes.
    """


def _read_json_file(path: Path) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as stream:
            data = json.load(stream)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _compare_run_folders(folder: Path) -> list[Path]:
    """The run folders of a comparison under ``folder/runs`` (``runs/<task>/<method>/seed<k>`` holding its mark)."""
    runs = folder / "runs"
    if not runs.is_dir():
        return []
    return sorted(path.parent for path in runs.glob(f"*/*/*/{COMPARE_RUN_FILE}"))


def run_kind(folder: str | os.PathLike[str]) -> str | None:
    """What kind of run a folder holds, or ``None`` (missing, empty, or only files no run writes).

    Returns:
        ``"compare"`` (a comparison: ``results.csv``, ``scores.*`` or run folders under ``runs/``),
        ``"compare run"`` (one run folder of a comparison), ``"train"``, ``"baseline"``, ``"run"``
        (a run's files, e.g. ``metrics.csv`` or ``tb/`` alone) or ``None``.
    """
    path = Path(folder)
    if not path.is_dir():
        return None
    names = set(os.listdir(path))
    if COMPARE_RUN_FILE in names:
        return "compare run"
    if names & set(COMPARE_ENTRIES) or _compare_run_folders(path):
        return "compare"
    if "checkpoint.pt" in names:
        return "train"
    if "model.zip" in names:
        return "baseline"
    for name in ("config.json", "summary.json"):
        data = _read_json_file(path / name) or {}
        data = data.get("config", data) if name == "summary.json" else data
        if isinstance(data, dict) and "algo" in data:
            return "baseline"
        if isinstance(data, dict) and "learner" in data:
            return "train"
    return "run" if names & set(RUN_ENTRIES) else None


def describe_run(folder: str | os.PathLike[str]) -> str:
    """``"a `neuron-env train` run (completed at task step 600)"``: what ``run_kind`` found, for messages."""
    path = Path(folder)
    kind = run_kind(path)
    if kind == "compare":
        count = len(_compare_run_folders(path))
        return f"a `neuron-env compare` grid ({count} run folder{'s' if count != 1 else ''})"
    if kind == "compare run":
        return "a run folder of a `neuron-env compare` grid"
    if kind not in ("train", "baseline"):
        found = sorted(set(os.listdir(path)) & set(RUN_ENTRIES)) if path.is_dir() else []
        return f"a run's files ({', '.join(found)})"
    summary = _read_json_file(path / "summary.json")
    if summary is None:
        return f"an unfinished `neuron-env {kind}` run (no summary.json)"
    return f"a `neuron-env {kind}` run ({summary.get('status', 'unknown status')} at task step {summary.get('steps')})"


def check_output_path(path: str | os.PathLike[str], option: str = "--out") -> Path:
    """``path`` as a ``Path`` if a folder can be made there: refuse a file, or a path under a file.

    Raises:
        RunFolderError: Naming the file in the way and the fix.
    """
    target = Path(path)
    if target.is_file():
        raise RunFolderError(f"{option} {str(target)!r} is a file, not a folder; pass a folder path (new or empty), "
                             "or remove the file")
    for parent in target.parents:
        if parent.is_file():
            raise RunFolderError(f"{option} {str(target)!r} lies under the file {str(parent)!r}; pass a path whose "
                                 "folders are folders")
    return target


def check_run_folder(path: str | os.PathLike[str], command: str, overwrite: bool = False, resume: str | None = None,
                     option: str = "--out") -> Path:
    """Refuse an output folder that is a file, lies under a file, or holds a run (unless ``overwrite``).

    Call it before any work; with ``overwrite`` call ``clear_run_folder`` once the new run's options
    are checked, right before it writes its first file.

    Args:
        path: The ``--out`` folder.
        command: The command, for messages (``"train"``).
        overwrite: ``--overwrite`` was given: a folder holding a run is accepted (to be cleared).
        resume: The command that continues the run in ``path`` (``"neuron-env train --resume runs/x"``),
            named in the message; ``None`` where the command does not resume.
        option: The option's name in messages.

    Returns:
        ``path`` as a ``Path``.

    Raises:
        RunFolderError: In one line naming the path, what it holds and the fixes.
    """
    target = check_output_path(path, option)
    if overwrite or run_kind(target) is None:
        return target
    fixes = ([f"continue it with `{resume}`"] if resume else []) + [
        f"pass --overwrite to delete it and start `neuron-env {command}` over", f"choose another {option}"]
    raise RunFolderError(f"{option} {str(target)!r} holds {describe_run(target)}; "
                         + ", ".join(fixes[:-1]) + f", or {fixes[-1]}")


def clear_run_folder(path: str | os.PathLike[str]) -> list[str]:
    """Delete what a run wrote into ``path`` (what ``--overwrite`` does); other files stay.

    Removed: ``RUN_ENTRIES`` (``tb/`` included) and ``COMPARE_ENTRIES`` at the top of ``path``, the run
    folders of a comparison under ``runs/`` (those holding ``compare_run.json``), and the folders
    under ``runs/`` left empty. A file written by hand (``notes.txt``) is never removed.

    Returns:
        The removed entries, relative to ``path``.
    """
    folder = Path(path)
    if not folder.is_dir():
        return []
    removed: list[str] = []
    for run in _compare_run_folders(folder):
        removed += [f"{run.relative_to(folder).as_posix()}/{name}" for name in clear_run_folder(run)]
    for name in (*RUN_ENTRIES, *COMPARE_ENTRIES):
        entry = folder / name
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        elif entry.exists() or entry.is_symlink():
            entry.unlink()
        else:
            continue
        removed.append(name)
    runs = folder / "runs"
    if runs.is_dir():
        for sub in sorted((p for p in runs.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
            if not any(sub.iterdir()):
                sub.rmdir()
        if not any(runs.iterdir()):
            runs.rmdir()
    return removed


def free_run_folder(path: str | os.PathLike[str]) -> Path:
    """``path`` if nothing is there (or an empty folder), else the first free ``<path>-2``, ``<path>-3`` and so on.

    What a command does with its *default* output folder name: a second run with the same defaults
    goes beside the first instead of replacing it.
    """
    target = Path(path)

    def taken(candidate: Path) -> bool:
        return candidate.exists() and not (candidate.is_dir() and not any(candidate.iterdir()))

    number = 2
    candidate = target
    while taken(candidate):
        candidate = target.with_name(f"{target.name}-{number}")
        number += 1
    return candidate


def check_output_file(path: str | os.PathLike[str], suffixes: Sequence[str], overwrite: bool = False,
                      option: str = "--out") -> Path:
    """Refuse, before any work, an output file that cannot be written as asked.

    Refused: another suffix, a folder, a path under a file, and (unless ``overwrite``) a file
    that exists.

    Raises:
        RunFolderError: In one line naming the path and the fix.
    """
    target = Path(path)
    wanted = " or ".join(suffixes)
    if target.suffix.lower() not in tuple(s.lower() for s in suffixes):
        raise RunFolderError(f"{option} {str(target)!r} must end in {wanted}")
    if target.is_dir():
        raise RunFolderError(f"{option} {str(target)!r} is a folder; pass a file path ending in {wanted}")
    for parent in target.parents:
        if parent.is_file():
            raise RunFolderError(f"{option} {str(target)!r} lies under the file {str(parent)!r}; pass a path whose "
                                 "folders are folders")
    if target.exists() and not overwrite:
        raise RunFolderError(f"{option} {str(target)!r} exists; pass --overwrite to replace it, or choose another "
                             f"{option}")
    return target
