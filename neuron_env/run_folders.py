"""Run folders: what a command may write into, checked before any work, so no run is ever silently replaced.

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
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from neuron_env.errors import RunOutputError

__all__ = [
    "COMPARE_ENTRIES",
    "RUN_ENTRIES",
    "RunFolderError",
    "RunInterrupted",
    "check_output_file",
    "check_output_path",
    "check_run_folder",
    "clear_run_folder",
    "describe_run",
    "free_run_folder",
    "run_kind",
]


#: What a run writes into its folder: ``train``, ``baseline`` and each run of a comparison.
RUN_ENTRIES: tuple[str, ...] = ("checkpoint.pt", "summary.json", "config.json", "metrics.csv", "episodes.csv",
                                "model.zip", "vecnormalize.pkl", "error.txt", "compare_run.json", "tb")
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
