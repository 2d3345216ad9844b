"""The trainer and the train/enjoy CLI: outputs, checkpoints, resume, divergence, interrupts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from neuron_env.agents import CheckpointError, DivergenceError
from neuron_env.agents.registry import learner_options
from neuron_env.agents.train import TrainConfig, Trainer, load_checkpoint, train

from neuron_env.cli import main


def tiny(out: Path, **overrides: object) -> TrainConfig:
    base = {"task": "Pendulum-v1", "learner": "ddpg", "hidden": [4], "critic": "mlp", "critic_hidden": 4, "steps": 200,
            "learning_starts": 40, "batch_size": 16, "buffer_size": 1000, "eval_every": 0, "eval_episodes": 1,
            "checkpoint_every": 100, "out": str(out), "progress": False, "tensorboard": False}
    base.update(overrides)
    config = TrainConfig.from_settings(base)
    # the small learner options above, for the learners that have them (coagent has no replay)
    config.learner_options = {k: v for k, v in config.learner_options.items() if k in learner_options(config.learner)}
    return config


def test_cli_train_writes_every_output_then_enjoy_runs(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "run"
    code = main(["train", "--task", "Pendulum-v1", "--steps", "300", "--hidden", "8", "8", "--learning-starts", "50",
                 "--eval-every", "150", "--eval-episodes", "1", "--checkpoint-every", "150", "--out", str(out),
                 "--no-progress", "--critic", "bilinear"])
    assert code == 0
    for name in ("config.json", "metrics.csv", "summary.json", "checkpoint.pt"):
        assert (out / name).is_file(), name
    assert list((out / "tb").glob("events.out.tfevents.*"))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["steps"] == 300
    assert summary["learner_config"]["critic"] == "bilinear" and summary["final_eval_return_mean"] < 0
    rows = (out / "metrics.csv").read_text().strip().splitlines()
    assert rows[0].startswith("step,") and len(rows) == 3  # header, step 150, step 300
    assert not list(out.glob(".checkpoint.pt.*"))  # no temporary files left
    assert main(["enjoy", "--checkpoint", str(out), "--episodes", "1"]) == 0
    assert "episode 0: return" in capsys.readouterr().out
    gif = tmp_path / "episode.gif"
    assert main(["render", "--checkpoint", str(out), "--out", str(gif), "--max-ticks", "12"]) == 0
    from PIL import Image

    with Image.open(gif) as picture:
        assert picture.n_frames == 12 and picture.size[0] > picture.size[1]  # task frame beside the panel
    assert main(["render", "--checkpoint", str(out), "--out", str(tmp_path / "x.avi")]) == 2
    assert "must end in .gif or .mp4" in capsys.readouterr().err
    assert main(["train", "--resume", str(out), "--steps", "320", "--no-progress"]) == 0
    assert json.loads((out / "summary.json").read_text())["steps"] == 320


def test_tensorboard_scalars_have_the_fixed_names(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train(tiny(tmp_path, steps=220, log_every=50, checkpoint_every=200, tensorboard=True))
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"charts/episodic_return", "charts/SPS", "losses/td_error", "eval/return_mean"} <= tags


@pytest.mark.parametrize(
    "overrides",
    [{}, {"topology": "recurrent", "critic": "linear", "noise": "ou", "leak": 0.5}],
    ids=["mlp-settled", "recurrent-per_tick-ou"],
)
def test_resume_gives_the_same_result_as_an_uninterrupted_run(tmp_path: Path, overrides: dict) -> None:
    overrides = {**overrides, "checkpoint_replay": True}
    whole = train(tiny(tmp_path / "whole", steps=300, **overrides))
    first = train(tiny(tmp_path / "split", steps=200, **overrides))
    assert first["steps"] == 200
    resumed = train(tiny(tmp_path / "ignored", steps=300, **overrides), resume=tmp_path / "split")
    assert resumed["steps"] == 300 and resumed["updates"] == whole["updates"]
    assert resumed["final_eval_return_mean"] == whole["final_eval_return_mean"]
    a = load_checkpoint(tmp_path / "whole")["learner"]
    b = load_checkpoint(tmp_path / "split")["learner"]
    for wa, wb in zip(a["actor"] + a["target_actor"], b["actor"] + b["target_actor"], strict=True):
        assert torch.equal(wa, wb)
    for pa, pb in zip(a["critic"], b["critic"], strict=True):
        assert all(torch.equal(pa[k], pb[k]) for k in pa)
    assert torch.equal(a["buffer"]["voltages"], b["buffer"]["voltages"])
    assert (tmp_path / "split" / "episodes.csv").read_text() == (tmp_path / "whole" / "episodes.csv").read_text()


def test_episodes_csv_has_every_training_episode_and_a_resume_drops_rows_past_its_checkpoint(tmp_path: Path) -> None:
    import csv

    # segments of 200 steps: Pendulum's episodes are not cut at a segment boundary (see agents.train)
    whole = train(tiny(tmp_path / "whole", steps=300, checkpoint_every=200, checkpoint_replay=True))
    with open(tmp_path / "whole" / "episodes.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert len(rows) == whole["episodes"] == 1
    assert rows[0]["step"] == "200" and rows[0]["length"] == "200" and float(rows[0]["return"]) < 0
    train(tiny(tmp_path / "split", steps=200, checkpoint_every=200, checkpoint_replay=True))
    # a crash after the checkpoint at 200 left rows past it: the resume writes them again, once
    from neuron_env.run_output import append_csv_rows

    append_csv_rows(tmp_path / "split" / "episodes.csv", [{"step": 250, "return": 0.0, "length": 50}],
                    ("step", "return", "length"))
    train(tiny(tmp_path / "ignored", steps=300, checkpoint_every=200, checkpoint_replay=True),
          resume=tmp_path / "split")
    assert (tmp_path / "split" / "episodes.csv").read_text() == (tmp_path / "whole" / "episodes.csv").read_text()


def test_a_crash_while_writing_a_checkpoint_keeps_the_previous_one(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    real_save = torch.save
    calls = []

    def crashing_save(obj: object, stream: object, *args: object, **kwargs: object) -> None:
        calls.append(1)
        if len(calls) == 2:
            stream.write(b"half a checkpoint")  # type: ignore[attr-defined]
            raise OSError("disk full (simulated)")
        real_save(obj, stream, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(torch, "save", crashing_save)
    with pytest.raises(OSError, match="simulated"):
        train(tiny(tmp_path, steps=300))
    payload = load_checkpoint(tmp_path)
    assert payload["trainer"]["task_step"] == 100
    assert not list(tmp_path.glob(".checkpoint.pt.*"))


def test_divergence_stops_the_run_naming_the_group_and_keeps_the_last_good_checkpoint(tmp_path: Path) -> None:
    def inject_nan(trainer: Trainer) -> None:
        if trainer.task_step == 150:
            trainer.learner.actor[0][0, 0] = float("nan")  # group h1

    with pytest.raises(DivergenceError, match="'h1'") as info:
        train(tiny(tmp_path, steps=300, critic="linear"), on_step=inject_nan)
    assert info.value.group == "h1"
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "diverged" and "h1" in summary["error"]
    payload = load_checkpoint(tmp_path)
    assert payload["trainer"]["task_step"] == 100
    assert all(torch.isfinite(w).all() for w in payload["learner"]["actor"])


def test_cli_reports_divergence_with_exit_status_3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture) -> None:
    import neuron_env.agents.commands as commands

    def diverging(config: TrainConfig, resume: object = None, **options: object) -> dict:
        raise DivergenceError("non-finite td error in group 'out' at update 7", group="out", what="td_error")

    monkeypatch.setattr(commands, "train", diverging)
    assert main(["train", "--steps", "10", "--out", str(tmp_path)]) == 3
    assert "group 'out'" in capsys.readouterr().err


def test_stop_request_writes_a_checkpoint_and_marks_the_run_interrupted(tmp_path: Path) -> None:
    def stop(trainer: Trainer) -> None:
        if trainer.task_step == 130:
            trainer.request_stop()

    summary = train(tiny(tmp_path, steps=300), on_step=stop)
    assert summary["status"] == "interrupted" and summary["steps"] == 130
    assert load_checkpoint(tmp_path)["trainer"]["task_step"] == 130
    resumed = train(tiny(tmp_path, steps=160), resume=tmp_path)
    assert resumed["status"] == "completed" and resumed["steps"] == 160


def test_resume_refuses_to_change_the_run(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    train(tiny(tmp_path, steps=50, learning_starts=10))
    assert main(["train", "--resume", str(tmp_path), "--critic", "linear"]) == 2
    assert "--critic" in capsys.readouterr().err


def test_missing_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(tmp_path)
    assert main(["enjoy", "--checkpoint", str(tmp_path)]) == 2


def test_bad_config_values_are_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="steps=0"):
        train(tiny(tmp_path, steps=0))


def test_resume_without_steps_continues_to_the_stored_target(tmp_path: Path) -> None:
    trainer = Trainer(tiny(tmp_path, steps=160, checkpoint_every=80), on_step=lambda t: (
        t.request_stop() if t.task_step == 80 else None))
    assert trainer.run()["status"] == "interrupted"
    assert main(["train", "--resume", str(tmp_path), "--no-progress"]) == 0
    assert json.loads((tmp_path / "summary.json").read_text())["steps"] == 160


def test_resume_refuses_a_file_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    train(tiny(tmp_path, steps=50, learning_starts=10))
    assert main(["train", "--resume", str(tmp_path / "checkpoint.pt")]) == 2
    error = capsys.readouterr().err.strip()
    assert "run directory" in error and len(error.splitlines()) == 1
    with pytest.raises(CheckpointError, match="not the file"):
        train(tiny(tmp_path, steps=60), resume=tmp_path / "checkpoint.pt")


def test_resume_of_a_finished_run_says_nothing_to_do_and_changes_no_file(tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture) -> None:
    train(tiny(tmp_path, steps=50, learning_starts=10))
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    assert main(["train", "--resume", str(tmp_path), "--steps", "50", "--no-progress"]) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before


def test_resume_with_adam_round_trips_its_moments(tmp_path: Path) -> None:
    overrides = {"actor_optimizer": "adam", "steps": 200, "checkpoint_replay": True}
    whole = train(tiny(tmp_path / "whole", **overrides))
    train(tiny(tmp_path / "split", **{**overrides, "steps": 100}))
    state = load_checkpoint(tmp_path / "split")["learner"]["actor_optimizer"]
    assert any(len(group) for group in state)  # the moments are in the checkpoint
    resumed = train(tiny(tmp_path / "ignored", **overrides), resume=tmp_path / "split")
    assert resumed["final_eval_return_mean"] == whole["final_eval_return_mean"]
    a, b = load_checkpoint(tmp_path / "whole")["learner"], load_checkpoint(tmp_path / "split")["learner"]
    for ga, gb in zip(a["actor_optimizer"], b["actor_optimizer"], strict=True):
        assert all(torch.equal(ga[k], gb[k]) for k in ga)


def test_a_misspelled_task_is_one_line_and_creates_no_folder(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "run"
    assert main(["train", "--task", "Pendulm-v1", "--out", str(out), "--no-progress"]) == 2
    error = capsys.readouterr().err.strip()
    assert "Pendulm-v1" in error and len(error.splitlines()) == 1
    assert not out.exists()


def test_enjoy_on_a_baseline_folder_says_what_it_is_in_one_line(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "model.zip").write_bytes(b"sb3")
    assert main(["enjoy", "--checkpoint", str(tmp_path)]) == 2
    error = capsys.readouterr().err.strip()
    assert "baseline" in error and "DDPG.load" in error and len(error.splitlines()) == 1


def test_metrics_has_a_row_every_log_interval_with_blank_eval_columns_between_evaluations(tmp_path: Path) -> None:
    import csv

    from neuron_env.baselines.report import read_curve

    train(tiny(tmp_path, steps=300, log_every=100, eval_every=150, checkpoint_every=300))
    with open(tmp_path / "metrics.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert [int(r["step"]) for r in rows] == [100, 150, 200, 300]
    evaluated = [r["eval_return_mean"] != "" and r["eval_return_std"] != "" for r in rows]
    assert evaluated == [False, True, False, True]
    assert all(float(r["wall_time_s"]) > 0 and int(r["updates"]) >= 0 for r in rows)
    assert rows[2]["episodic_return"] != ""  # the 200-step episode ended in (150, 200]
    assert read_curve(tmp_path)[0] == [150, 300]  # compare's learning curves: the evaluations only


def test_run_logger_progress_postfix_shows_the_current_windows_rate(tmp_path: Path) -> None:
    import io

    from neuron_env.agents.run_log import RunLogger

    now = [0.0]
    logger = RunLogger(tmp_path, total=100, initial=0, num_envs=2, progress=True, clock=lambda: now[0])
    logger._bar.fp = io.StringIO()
    now[0] = 0.5
    logger.advance(5)  # under a second since the last refresh: not yet
    assert logger._postfix["sps"] == "-"
    now[0] = 2.0
    logger.advance(10)  # 10 steps of 2 copies in 2 s
    assert logger._postfix["sps"] == "10"
    now[0] = 12.0
    logger.advance(20)  # then 10 steps in 10 s: the postfix shows this window's rate, not the run's
    assert logger._postfix["sps"] == "2" and "sps=2" in str(logger._bar.postfix)
    logger.close()


def test_render_shows_a_progress_bar_over_the_frames(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from neuron_env.agents.enjoy import render_checkpoint

    train(tiny(tmp_path / "run", steps=50, learning_starts=20))
    capsys.readouterr()
    assert render_checkpoint(tmp_path / "run", tmp_path / "a.gif", max_ticks=6) == 6
    err = capsys.readouterr().err
    assert "render Pendulum-v1" in err and "6/6" in err
    assert render_checkpoint(tmp_path / "run", tmp_path / "b.gif", max_ticks=6, progress=False) == 6
    assert "6/6" not in capsys.readouterr().err


def test_cli_checkpoint_replay_flag_puts_the_buffer_in_the_checkpoint(tmp_path: Path) -> None:
    common = ["train", "--task", "Pendulum-v1", "--steps", "60", "--hidden", "4", "--learning-starts", "20",
              "--eval-every", "0", "--eval-episodes", "1", "--no-progress", "--no-tensorboard"]
    assert main([*common, "--out", str(tmp_path / "with"), "--checkpoint-replay"]) == 0
    assert main([*common, "--out", str(tmp_path / "without")]) == 0
    assert "buffer" in load_checkpoint(tmp_path / "with")["learner"]
    assert "buffer" not in load_checkpoint(tmp_path / "without")["learner"]
    # a resume may switch it (the next checkpoints follow the flag)
    assert main(["train", "--resume", str(tmp_path / "without"), "--steps", "80", "--checkpoint-replay",
                 "--no-progress"]) == 0
    assert len(load_checkpoint(tmp_path / "without")["learner"]["buffer"]["rewards"]) == 20



@pytest.mark.parametrize("learner", ["feedback", "coagent"])
def test_many_copies_keep_the_update_to_data_ratio(tmp_path: Path, learner: str) -> None:
    summary = train(tiny(tmp_path, learner=learner, num_envs=3, steps=60, learning_starts=20,
                         **({"critic_hidden": 4} if learner == "feedback" else {})))
    assert summary["status"] == "completed" and summary["steps"] == 60
    if learner == "feedback":  # off-policy: 3 updates after every 3 stored transitions past learning_starts
        assert summary["transitions"] == 180 and summary["updates"] == 3 * (60 - 20)
    else:  # on-policy: one update per batch of copies, from the first step
        assert summary["updates"] == 60


def test_without_save_on_interrupt_a_stopped_run_keeps_its_boundary_checkpoint_and_resumes_exactly(
        tmp_path: Path) -> None:
    overrides = {"steps": 300, "checkpoint_replay": True}
    whole = train(tiny(tmp_path / "whole", **overrides))

    def stop(trainer: Trainer) -> None:
        if trainer.task_step == 250:
            trainer.request_stop()

    stopped = train(tiny(tmp_path / "split", **overrides), on_step=stop, save_on_interrupt=False)
    assert stopped["status"] == "interrupted" and stopped["steps"] == 250 and stopped["checkpoint_step"] == 200
    assert load_checkpoint(tmp_path / "split")["trainer"]["task_step"] == 200
    resumed = train(tiny(tmp_path / "ignored", **overrides), resume=tmp_path / "split")
    assert resumed["final_eval_return_mean"] == whole["final_eval_return_mean"]
    assert resumed["checkpoint_step"] == whole["checkpoint_step"] == 300
    a, b = load_checkpoint(tmp_path / "whole")["learner"], load_checkpoint(tmp_path / "split")["learner"]
    for wa, wb in zip(a["actor"] + a["target_actor"], b["actor"] + b["target_actor"], strict=True):
        assert torch.equal(wa, wb)
    assert (tmp_path / "split" / "episodes.csv").read_text() == (tmp_path / "whole" / "episodes.csv").read_text()


def test_overwrite_deletes_the_old_runs_files_tensorboard_included(tmp_path: Path) -> None:
    train(tiny(tmp_path, steps=50, learning_starts=10, tensorboard=True))
    (tmp_path / "notes.txt").write_text("mine")
    old_events = {p.name for p in (tmp_path / "tb").iterdir()}
    summary = train(tiny(tmp_path, steps=60, learning_starts=10, tensorboard=True), overwrite=True)
    assert summary["steps"] == 60
    new_events = {p.name for p in (tmp_path / "tb").iterdir()}
    assert len(new_events) == 1 and not new_events & old_events
    assert (tmp_path / "notes.txt").read_text() == "mine"
    with pytest.raises(ValueError, match="cannot be combined with resume"):
        train(tiny(tmp_path, steps=80), resume=tmp_path, overwrite=True)


def test_a_resumed_run_hides_the_tensorboard_events_written_past_its_checkpoint(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    def stop(trainer: Trainer) -> None:
        if trainer.task_step == 150:
            trainer.request_stop()

    config = {"steps": 200, "log_every": 50, "tensorboard": True}
    train(tiny(tmp_path, **config), on_step=stop, save_on_interrupt=False)  # events to 150, checkpoint at 100
    train(tiny(tmp_path, **config), resume=tmp_path)
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    assert [event.step for event in events.Scalars("charts/SPS")] == [50, 100, 150, 200]  # 150 once


def test_a_run_whose_logger_cannot_start_leaves_ctrl_c_and_the_thread_count_as_they_were(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import signal
    import sys

    train_module = sys.modules[Trainer.__module__]  # the module: ``neuron_env.agents.train`` is also the function

    def refuse(*_: object, **__: object) -> None:
        raise OSError("disk full")

    trainer = Trainer(tiny(tmp_path, threads=1))
    handler, threads = signal.getsignal(signal.SIGINT), torch.get_num_threads()
    monkeypatch.setattr(train_module, "RunLogger", refuse)
    with pytest.raises(OSError, match="disk full"):
        trainer.run()
    assert signal.getsignal(signal.SIGINT) is handler and torch.get_num_threads() == threads
