"""What the commands tell a user: no-update warning, render progress, the SB3 class of a baseline folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from neuron_env.agents.enjoy import expected_frames, write_video
from neuron_env.agents.errors import CheckpointError
from neuron_env.agents.train import load_checkpoint

from neuron_env.cli import main


def test_a_run_that_ends_before_learning_starts_warns_in_one_line(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--task", "CartPole-v1", "--steps", "20", "--hidden", "4", "--eval-episodes", "1",
                 "--out", str(tmp_path / "run"), "--no-progress", "--no-tensorboard"]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert warnings == ["neuron-env train: warning: --steps 20 is not above --learning-starts 1000: the 'feedback' "
                        "learner only fills its replay buffer and makes no update; pass a larger --steps or a "
                        "smaller --learning-starts"]
    assert main(["train", "--task", "CartPole-v1", "--steps", "30", "--learning-starts", "10", "--hidden", "4",
                 "--eval-episodes", "1", "--out", str(tmp_path / "run2"), "--no-progress",
                 "--no-tensorboard"]) == 0
    assert "warning" not in capsys.readouterr().err


def test_feedback_on_a_mujoco_task_with_the_classic_control_defaults_gets_a_one_line_note(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("mujoco")
    tiny = ["--steps", "4", "--hidden", "4", "--eval-every", "0", "--eval-episodes", "1", "--no-progress",
            "--no-tensorboard"]
    assert main(["train", "--task", "Reacher-v5", *tiny, "--out", str(tmp_path / "a")]) == 0
    notes = [line for line in capsys.readouterr().err.splitlines() if ": note: " in line]
    assert notes == ["neuron-env train: note: Reacher-v5 is a MuJoCo task and these defaults (per-neuron output "
                     "critics, --learning-starts 1000) were measured on classic control; on MuJoCo tasks the "
                     "locomotion study measured TD3's output critic: --critic twin --target-noise 0.2 --policy-delay 2 "
                     "--learning-starts 10000 (and --feedback direct scored highest there on average; "
                     "docs/results/locomotion)"]
    # a chosen critic or schedule, or a classic-control task, gets none
    for task, extra, out in (("Reacher-v5", ["--critic", "joint"], "b"),
                             ("Reacher-v5", ["--learning-starts", "2"], "c"), ("Pendulum-v1", [], "d")):
        assert main(["train", "--task", task, *tiny, *extra, "--out", str(tmp_path / out)]) == 0
        assert ": note: " not in capsys.readouterr().err, (task, extra)


def test_render_progress_counts_full_length_episodes_capped_at_max_ticks() -> None:
    assert expected_frames("Pendulum-v1", 3, 1, 3000) == 1 + 200 * 3
    assert expected_frames("Pendulum-v1", 3, 2, 3000) == 2 * 601
    assert expected_frames("Pendulum-v1", 3, 10, 3000) == 3000
    assert expected_frames("not-a-registered-task", 3, 1, 123) == 123


def test_encoding_reports_every_frame(tmp_path: Path) -> None:
    frames = [np.full((8, 8, 3), i * 20, dtype=np.uint8) for i in range(5)]
    advanced: list[int] = []
    write_video(frames, tmp_path / "x.gif", 10, advanced.append)
    assert advanced == [1] * 5 and (tmp_path / "x.gif").stat().st_size > 0


@pytest.mark.parametrize(("algo", "name"), [("dqn", "DQN"), ("ppo", "PPO"), ("td3", "TD3"), ("ddpg", "DDPG")])
def test_a_baseline_folder_names_the_sb3_class_that_loads_it(tmp_path: Path, algo: str, name: str) -> None:
    (tmp_path / "model.zip").write_bytes(b"")
    (tmp_path / "config.json").write_text(json.dumps({"algo": algo}))
    with pytest.raises(CheckpointError, match=rf"stable_baselines3's {name}\.load$"):
        load_checkpoint(tmp_path)
