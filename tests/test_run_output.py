"""neuron_env.run_output: atomic text/JSON/CSV writes and the machine description."""

from __future__ import annotations

import csv
import json
import math
import os

import pytest

from neuron_env.errors import RunOutputError
from neuron_env.run_output import append_csv_row, atomic_write_json, atomic_write_text, machine_info, write_csv


def read_rows(path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


def test_append_csv_row_writes_the_header_once_and_keeps_rows(tmp_path):
    path = tmp_path / "run" / "metrics.csv"
    append_csv_row(path, {"step": 100, "eval_return_mean": -812.5})
    append_csv_row(path, {"step": 200, "eval_return_mean": ""})
    assert read_rows(path) == [{"step": "100", "eval_return_mean": "-812.5"}, {"step": "200", "eval_return_mean": ""}]
    assert path.read_bytes().count(b"step,") == 1
    assert not list(path.parent.glob(".*.tmp"))


def test_append_csv_row_rejects_other_columns(tmp_path):
    path = tmp_path / "metrics.csv"
    write_csv(path, [], ("step", "eval_return_mean"))
    with pytest.raises(RunOutputError, match=r"has columns \['step', 'eval_return_mean'\], not \['step'\]"):
        append_csv_row(path, {"step": 1})
    append_csv_row(path, {"eval_return_mean": 2.0, "step": 1}, fieldnames=("step", "eval_return_mean"))
    assert read_rows(path) == [{"step": "1", "eval_return_mean": "2.0"}]


def test_a_crash_during_a_write_leaves_the_old_file(tmp_path, monkeypatch):
    """A failure before the rename (a crash, a full disk) leaves the previous file whole and no temporary."""
    path = tmp_path / "results.csv"
    write_csv(path, [{"a": 1}], ("a",))
    before = path.read_bytes()

    def crash(*_args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    for write in (lambda: append_csv_row(path, {"a": 2}), lambda: atomic_write_text(path, "x"),
                  lambda: atomic_write_json(path, {"a": 1})):
        with pytest.raises(OSError, match="disk full"):
            write()
        assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["results.csv"]


def test_atomic_write_json_is_strict_json(tmp_path):
    atomic_write_json(tmp_path / "x.json", {"a": math.nan, "b": [1.0, -math.inf], "c": {"d": 2}})
    assert json.loads((tmp_path / "x.json").read_text()) == {"a": None, "b": [1.0, None], "c": {"d": 2}}


def test_machine_info_has_the_keys_reports_read():
    info = machine_info("pettingzoo", "no_such_package_xyz")
    for key in ("python", "torch", "gymnasium", "numpy", "cpu_count", "torch_threads", "platform", "processor",
                "cuda", "load_average_1min", "date"):
        assert key in info
    assert info["pettingzoo"] and info["no_such_package_xyz"] is None
    assert info["date"].endswith("+00:00")


def test_written_files_are_readable_like_any_other(tmp_path):
    import os
    import stat

    from neuron_env.run_output import atomic_write_text

    path = tmp_path / "page.md"
    atomic_write_text(path, "x")
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask


def test_append_csv_rows_writes_several_rows_in_one_rewrite_and_nothing_for_none(tmp_path):
    from neuron_env.run_output import append_csv_rows

    path = tmp_path / "episodes.csv"
    append_csv_rows(path, [], ("step", "return"))
    assert read_rows(path) == [] and path.read_text().startswith("step,return")
    append_csv_rows(path, [{"step": 1, "return": 2.5}, {"step": 3, "return": -1}], ("step", "return"))
    append_csv_rows(path, [], ("step", "return"))
    assert read_rows(path) == [{"step": "1", "return": "2.5"}, {"step": "3", "return": "-1"}]
    with pytest.raises(RunOutputError, match="has columns"):
        append_csv_rows(path, [{"step": 1}], ("step",))


def test_drop_csv_rows_after_keeps_rows_up_to_the_step(tmp_path):
    from neuron_env.run_output import drop_csv_rows_after

    path = tmp_path / "metrics.csv"
    write_csv(path, [{"step": s, "x": s * 2} for s in (100, 200, 300)], ("step", "x"))
    drop_csv_rows_after(path, 200)
    assert read_rows(path) == [{"step": "100", "x": "200"}, {"step": "200", "x": "400"}]
    drop_csv_rows_after(tmp_path / "absent.csv", 5)  # no file: nothing
    assert not (tmp_path / "absent.csv").exists()


# ---------------------------------------------------------------------------------- run folders
def test_run_kind_tells_the_commands_runs_apart(tmp_path):
    from neuron_env.run_folders import run_kind

    assert run_kind(tmp_path / "missing") is None and run_kind(tmp_path) is None
    (tmp_path / "notes.txt").write_text("mine")
    assert run_kind(tmp_path) is None  # files no run writes do not make a run
    train, baseline, grid, only_tb = (tmp_path / name for name in ("train", "baseline", "grid", "tb_only"))
    train.mkdir()
    (train / "checkpoint.pt").write_bytes(b"x")
    baseline.mkdir()
    (baseline / "config.json").write_text(json.dumps({"algo": "dqn"}))
    (grid / "runs" / "CartPole-v1" / "random" / "seed0").mkdir(parents=True)
    (grid / "runs" / "CartPole-v1" / "random" / "seed0" / "compare_run.json").write_text("{}")
    (only_tb / "tb").mkdir(parents=True)
    assert [run_kind(p) for p in (train, baseline, grid, only_tb)] == ["train", "baseline", "compare", "run"]
    assert run_kind(grid / "runs" / "CartPole-v1" / "random" / "seed0") == "compare run"


def test_check_run_folder_refuses_a_run_a_file_and_a_path_under_a_file_in_one_line(tmp_path):
    from neuron_env.run_folders import RunFolderError, check_run_folder

    assert check_run_folder(tmp_path / "new", "train") == tmp_path / "new"
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "summary.json").write_text(json.dumps({"status": "completed", "steps": 600,
                                                               "config": {"learner": "es"}}))
    with pytest.raises(RunFolderError) as refused:
        check_run_folder(tmp_path / "run", "train", resume="neuron-env train --resume run")
    message = str(refused.value)
    assert "completed at task step 600" in message and "`neuron-env train --resume run`" in message
    assert "--overwrite" in message and len(message.splitlines()) == 1
    assert check_run_folder(tmp_path / "run", "train", overwrite=True) == tmp_path / "run"
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunFolderError, match="is a file"):
        check_run_folder(tmp_path / "file", "baseline", overwrite=True)
    with pytest.raises(RunFolderError, match="lies under the file"):
        check_run_folder(tmp_path / "file" / "run", "compare")
    assert isinstance(RunFolderError("x"), RunOutputError)


def test_clear_run_folder_deletes_what_runs_wrote_and_nothing_else(tmp_path):
    from neuron_env.run_folders import clear_run_folder, run_kind

    for name in ("checkpoint.pt", "metrics.csv", "results.csv", "notes.txt"):
        (tmp_path / name).write_text("x")
    (tmp_path / "tb").mkdir()
    (tmp_path / "tb" / "events.out.tfevents.1").write_text("x")
    seed = tmp_path / "runs" / "Pendulum-v1" / "local-mlp" / "seed0"
    seed.mkdir(parents=True)
    (seed / "compare_run.json").write_text("{}")
    (tmp_path / "runs" / "mine").mkdir()
    (tmp_path / "runs" / "mine" / "keep.txt").write_text("x")
    removed = clear_run_folder(tmp_path)
    assert {"checkpoint.pt", "metrics.csv", "results.csv", "tb",
            "runs/Pendulum-v1/local-mlp/seed0/compare_run.json"} <= set(removed)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == [
        "notes.txt", "runs", "runs/mine", "runs/mine/keep.txt"]
    assert run_kind(tmp_path) is None


def test_free_run_folder_numbers_a_taken_default_name(tmp_path):
    from neuron_env.run_folders import free_run_folder

    target = tmp_path / "Pendulum-v1-feedback-seed0"
    assert free_run_folder(target) == target
    target.mkdir()
    assert free_run_folder(target) == target  # an empty folder takes the run
    (target / "summary.json").write_text("{}")
    assert free_run_folder(target) == tmp_path / "Pendulum-v1-feedback-seed0-2"
    (tmp_path / "Pendulum-v1-feedback-seed0-2").write_text("a file takes the name too")
    assert free_run_folder(target) == tmp_path / "Pendulum-v1-feedback-seed0-3"


def test_check_output_file_refuses_before_any_work(tmp_path):
    from neuron_env.run_folders import RunFolderError, check_output_file

    suffixes = (".gif", ".mp4")
    assert check_output_file(tmp_path / "a.GIF", suffixes) == tmp_path / "a.GIF"
    (tmp_path / "x.txt").write_text("x")
    (tmp_path / "y.gif").write_bytes(b"GIF")
    (tmp_path / "dir.gif").mkdir()
    for path, words in ((tmp_path / "x.txt", "must end in .gif or .mp4"),
                        (tmp_path / "x.txt" / "y.gif", "lies under the file"),
                        (tmp_path / "dir.gif", "is a folder"),
                        (tmp_path / "y.gif", "exists; pass --overwrite")):
        with pytest.raises(RunFolderError, match=words):
            check_output_file(path, suffixes)
    assert check_output_file(tmp_path / "y.gif", suffixes, overwrite=True) == tmp_path / "y.gif"
