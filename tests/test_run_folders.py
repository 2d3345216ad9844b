"""Run folders are never silently replaced, and Ctrl-C says what was saved and how to resume.

``train``, ``baseline``, ``compare`` and ``render`` check ``--out`` before any work
(``neuron_env.run_folders.check_run_folder``): a folder that holds a run is refused in one line
naming ``--resume`` and ``--overwrite``, a file in one line, exit status 2. ``compare``'s own
folder rules are tested in ``tests/test_compare.py``.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
from pathlib import Path

import pytest

from neuron_env.cli import main

#: A run of a few hundred task steps on CartPole-v1 (the ES learner: no warm-up, no replay).
TINY = ["--task", "CartPole-v1", "--learner", "es", "--steps", "200", "--hidden", "4", "--eval-episodes", "1",
        "--checkpoint-every", "100", "--no-progress"]


def files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, lines
    assert "Traceback" not in text
    return lines[0]


def test_train_refuses_a_folder_that_holds_a_run_and_overwrite_replaces_it(tmp_path: Path,
                                                                           capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "x"
    assert main(["train", *TINY, "--out", str(out)]) == 0
    (out / "notes.txt").write_text("mine")
    before = files(out)
    capsys.readouterr()
    assert main(["train", "--task", "CartPole-v1", "--steps", "100", "--hidden", "4", "--out", str(out),
                 "--no-progress"]) == 2
    error = one_line(capsys.readouterr().err)
    assert f"--out {str(out)!r} holds a `neuron-env train` run (completed at task step 200)" in error
    assert f"`neuron-env train --resume {out} --no-progress --steps N`" in error and "--overwrite" in error
    assert files(out) == before  # nothing replaced, no event file added to tb/
    assert main(["train", *TINY, "--steps", "100", "--out", str(out), "--overwrite"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 100 and summary["status"] == "completed"
    assert len(list((out / "tb").iterdir())) == 1  # the old run's event file is gone, not mixed in
    assert (out / "notes.txt").read_text() == "mine"  # a file no run writes stays
    assert main(["train", "--resume", str(out), "--overwrite", "--no-progress"]) == 2
    assert "cannot be combined with --resume" in one_line(capsys.readouterr().err)


def test_a_default_folder_that_exists_gets_a_numbered_suffix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["train", *TINY]) == 0
    first = tmp_path / "runs" / "CartPole-v1-es-seed0"
    assert (first / "summary.json").is_file()
    before = files(first)
    capsys.readouterr()
    assert main(["train", *TINY, "--steps", "100"]) == 0
    captured = capsys.readouterr()
    assert "writing to 'runs/CartPole-v1-es-seed0-2'" in captured.err
    assert "outputs in runs/CartPole-v1-es-seed0-2" in captured.out
    assert files(first) == before
    assert json.loads((tmp_path / "runs" / "CartPole-v1-es-seed0-2" / "summary.json").read_text())["steps"] == 100


def test_train_help_names_the_default_folder_and_its_numbered_suffix(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "runs/<task>-<learner>-seed<seed>" in text and "<name>-2" in text and "--overwrite" in text


@pytest.mark.parametrize("argv", [
    ["train", "--task", "CartPole-v1", "--no-progress"],
    ["baseline", "--algo", "dqn", "--task", "CartPole-v1", "--no-progress"],
    ["compare", "--tasks", "CartPole-v1", "--methods", "random", "--seeds", "1"],
], ids=["train", "baseline", "compare"])
def test_an_out_that_is_a_file_is_one_line_and_exit_status_2(argv: list[str], tmp_path: Path,
                                                             capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "afile").write_text("x")
    assert main([*argv, "--out", str(tmp_path / "afile")]) == 2
    assert "is a file, not a folder" in one_line(capsys.readouterr().err)
    assert main([*argv, "--out", str(tmp_path / "afile" / "run")]) == 2
    assert "lies under the file" in one_line(capsys.readouterr().err)
    assert (tmp_path / "afile").read_text() == "x"


def test_baseline_refuses_a_folder_that_holds_a_run(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "model.zip").write_bytes(b"sb3")
    (tmp_path / "summary.json").write_text(json.dumps({"status": "completed", "steps": 300}))
    assert main(["baseline", "--algo", "dqn", "--task", "CartPole-v1", "--out", str(tmp_path)]) == 2
    error = one_line(capsys.readouterr().err)
    assert "holds a `neuron-env baseline` run (completed at task step 300)" in error and "--overwrite" in error


@pytest.mark.parametrize("target, words", [
    ("x.txt/y.gif", "lies under the file"),
    ("x.txt", "must end in .gif or .mp4"),
    ("old.gif", "exists; pass --overwrite"),
])
def test_render_refuses_its_target_before_rendering(target: str, words: str, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "x.txt").write_text("x")
    (tmp_path / "old.gif").write_bytes(b"GIF89a")
    # the checkpoint does not exist: the target is refused before it is even read
    assert main(["render", "--checkpoint", str(tmp_path / "no-run"), "--out", str(tmp_path / target)]) == 2
    assert words in one_line(capsys.readouterr().err)
    assert (tmp_path / "old.gif").read_bytes() == b"GIF89a"


def test_ctrl_c_in_train_is_one_line_with_the_command_that_resumes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture) -> None:
    from neuron_env.agents.train import Trainer

    real_step = Trainer._task_step

    def step_then_ctrl_c(self: Trainer, voltages: object) -> object:
        if self.task_step == 130:  # a real SIGINT: the trainer's handler stops after this task step
            os.kill(os.getpid(), signal.SIGINT)
        return real_step(self, voltages)

    monkeypatch.setattr(Trainer, "_task_step", step_then_ctrl_c)
    out = tmp_path / "run"
    assert main(["train", *TINY, "--steps", "300", "--no-tensorboard", "--out", str(out)]) == 130
    captured = capsys.readouterr()
    line = one_line(captured.err)
    command = f"neuron-env train --resume {out} --no-tensorboard --no-progress"
    assert line == (f"neuron-env train: interrupted at task step 131 of 300; saved its checkpoint (replay buffer "
                    f"included), metrics and summary.json in {str(out)!r}; resume with: {command}")
    assert json.loads((out / "summary.json").read_text())["status"] == "interrupted"
    monkeypatch.setattr(Trainer, "_task_step", real_step)
    assert main(shlex.split(command)[1:]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["steps"] == 300
    assert not (out / "tb").exists()


def test_ctrl_c_in_baseline_is_one_line_and_records_the_run_as_interrupted(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch,
                                                                           capsys: pytest.CaptureFixture) -> None:
    pytest.importorskip("stable_baselines3")
    from neuron_env.baselines import sb3_common

    real_evaluate = sb3_common.evaluate

    def evaluate_then_ctrl_c(*args: object, **kwargs: object) -> object:
        returns = real_evaluate(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGINT)  # Python's own handler: KeyboardInterrupt inside SB3's learn()
        return returns

    monkeypatch.setattr(sb3_common, "evaluate", evaluate_then_ctrl_c)
    out = tmp_path / "dqn"
    argv = ["baseline", "--algo", "dqn", "--task", "CartPole-v1", "--hidden", "4", "--steps", "400",
            "--learning-starts", "50", "--eval-every", "100", "--eval-episodes", "1", "--no-progress",
            "--no-tensorboard", "--out", str(out)]
    assert main(argv) == 130
    line = one_line(capsys.readouterr().err)
    assert line.startswith("neuron-env baseline: interrupted at task step 100 of 400; kept its metrics.csv")
    assert line.endswith(f"start it again with: {shlex.join(['neuron-env', *argv, '--overwrite'])}")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["steps"] == 100 and not (out / "model.zip").exists()
    monkeypatch.setattr(sb3_common, "evaluate", real_evaluate)
    assert main(argv) == 2  # the interrupted run is not replaced silently either
    assert main([*argv, "--overwrite"]) == 0
    assert json.loads((out / "summary.json").read_text())["status"] == "completed"


def test_ctrl_c_raises_keyboard_interrupt_in_the_tests_even_when_pytest_starts_with_sigint_ignored(
        tmp_path: Path) -> None:
    """``make test &`` in a script starts pytest with SIGINT ignored; ``tests/conftest.py`` makes Ctrl-C work again.

    Else the Ctrl-C tests above (and ``compare``'s, whose subprocess inherits it) exit 0 instead of 130.
    """
    import subprocess
    import sys

    if not hasattr(signal, "pthread_sigmask"):
        pytest.skip("POSIX signals only")
    (tmp_path / "test_ctrl_c.py").write_text(
        "import os, signal, subprocess, sys\n"
        "import pytest\n\n"
        "def test_ctrl_c():\n"
        "    with pytest.raises(KeyboardInterrupt):\n"
        "        os.kill(os.getpid(), signal.SIGINT)\n"
        "    check = 'import signal; assert signal.getsignal(signal.SIGINT) is signal.default_int_handler'\n"
        "    subprocess.run([sys.executable, '-c', check], check=True)  # what a command the test starts inherits\n")
    root = Path(__file__).resolve().parents[1]
    pytest_command = [sys.executable, "-m", "pytest", "-q", "-p", "tests.conftest", "-p", "no:cacheprovider",
                      str(tmp_path / "test_ctrl_c.py")]
    # the shell ignores SIGINT, then becomes pytest: it starts with SIGINT ignored, as a background job does
    result = subprocess.run(["sh", "-c", 'trap "" INT; exec "$0" "$@"', *pytest_command], cwd=root,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
