"""``neuron-env compare`` end to end at a tiny budget: outputs, resuming, failures, the Ray path."""

from __future__ import annotations

import argparse
import csv
import json
from typing import Any

import gymnasium
import numpy as np
import pytest

pytest.importorskip("stable_baselines3")
pytest.importorskip("matplotlib")

from neuron_env.baselines.cli import add_compare_parser  # noqa: E402
from neuron_env.baselines.compare import RUN_FILE, CompareConfig, RunSpec, compare, plan_runs, read_results  # noqa: E402
from neuron_env.baselines.errors import BaselineConfigError  # noqa: E402

from tests.conftest import MUJOCO_TASK, has_mujoco  # noqa: E402

SECOND_TASK = MUJOCO_TASK if has_mujoco() else "MountainCarContinuous-v0"


class BrokenTask(gymnasium.Env):
    """A task that exists but crashes on reset: its runs fail in their workers, the other runs continue."""

    observation_space = gymnasium.spaces.Box(-1.0, 1.0, (3,), np.float32)
    action_space = gymnasium.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        raise RuntimeError("this task is broken on purpose")

    def step(self, action: Any) -> Any:
        raise RuntimeError("this task is broken on purpose")


if "BrokenTask-v0" not in gymnasium.registry:
    gymnasium.register("BrokenTask-v0", entry_point=f"{__name__}:BrokenTask")
#: ``module:id``: Gymnasium imports this module first, so the spawned workers find the task too.
BROKEN_TASK = f"{__name__}:BrokenTask-v0"
TINY = ["--steps", "200", "--seeds", "1", "--eval-every", "100", "--eval-episodes", "2", "--learning-starts", "50",
        "--hidden", "8", "8", "--no-tensorboard"]


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="neuron-env")
    add_compare_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def metric_steps(folder) -> list[int]:
    with open(folder / "metrics.csv", newline="") as stream:
        return [int(row["step"]) for row in csv.DictReader(stream)]


def test_tiny_compare_outputs_and_resume(tmp_path, capsys):
    out = tmp_path / "cmp"
    argv = ["compare", "--tasks", "Pendulum-v1", SECOND_TASK, "--methods", "random", "sb3-ddpg", "local-linear",
            "--workers", "2", "--threshold", "Pendulum-v1=-1e6", "--out", str(out), *TINY]
    assert run_cli(argv) == 0
    printed = capsys.readouterr().out
    assert printed.count("completed, final eval") == 6  # one line per finished run
    rows = read_results(out / "results.csv")
    assert len(rows) == 6 and {r["status"] for r in rows} == {"completed"}
    assert {(r["task"], r["method"]) for r in rows} == {
        (t, m) for t in ("Pendulum-v1", SECOND_TASK) for m in ("random", "sb3-ddpg", "local-linear")}
    for row in rows:
        assert row["steps"] == ("0" if row["method"] == "random" else "200")
        assert row["final_eval_mean"] != ""
    scores_md = (out / "scores.md").read_text()
    assert "Regenerate with: `neuron-env compare --tasks Pendulum-v1" in scores_md and "CPUs, torch" in scores_md
    assert "## Normalized score" in scores_md and "| Pendulum-v1 | 200 |" in scores_md
    assert (out / "curves.png").stat().st_size > 5000
    scores = json.loads((out / "scores.json").read_text())
    pendulum = scores["tasks"]["Pendulum-v1"]
    assert pendulum["methods"]["sb3-ddpg"]["normalized_mean"] == pytest.approx(1.0)
    assert pendulum["methods"]["random"]["normalized_mean"] == pytest.approx(0.0)
    assert pendulum["methods"]["local-linear"]["curve"]["steps"] == [100, 200]
    assert pendulum["methods"]["local-linear"]["steps_to_threshold"] == 100  # every curve beats -1e6 at once
    assert pendulum["methods"]["random"]["steps_to_threshold"] == 0
    for spec in plan_runs(CompareConfig(tasks=("Pendulum-v1",), methods=("random", "sb3-ddpg", "local-linear"),
                                        seeds=1, out=str(out))):
        folder = spec.folder(out)
        assert (folder / "summary.json").exists() and (folder / "metrics.csv").exists() and (folder / RUN_FILE).exists()

    # the same command again: every run is skipped, the outputs are rebuilt
    local = out / "runs" / "Pendulum-v1" / "local-linear" / "seed0"
    stamp = (local / "summary.json").stat().st_mtime_ns
    assert run_cli(argv) == 0
    assert "6 finished earlier, 0 to run" in capsys.readouterr().out
    assert (local / "summary.json").stat().st_mtime_ns == stamp
    assert len(read_results(out / "results.csv")) == 6

    # an interrupted local run continues from its checkpoint; an SB3 run without a summary starts over
    summary = json.loads((local / "summary.json").read_text())
    (local / "summary.json").write_text(json.dumps({**summary, "status": "interrupted"}))
    (out / "runs" / "Pendulum-v1" / "sb3-ddpg" / "seed0" / "summary.json").unlink()
    assert run_cli(argv) == 0
    assert "4 finished earlier, 2 to run" in capsys.readouterr().out
    assert metric_steps(local) == [100, 200]  # no row written twice
    assert json.loads((local / "summary.json").read_text())["status"] == "completed"
    rows = read_results(out / "results.csv")
    assert len(rows) == 6 and {r["status"] for r in rows} == {"completed"}


def test_workers_print_a_progress_line_per_evaluation_unless_quiet(tmp_path, capfd):
    argv = ["compare", "--tasks", "Pendulum-v1", "--methods", "sb3-ddpg", "local-linear", "--workers", "1",
            "--out", str(tmp_path / "loud"), *TINY]
    assert run_cli(argv) == 0
    printed = capfd.readouterr().out  # the workers' own stdout (inherited file descriptor)
    for method in ("sb3-ddpg", "local-linear"):
        assert f"Pendulum-v1 {method} seed0: step 100/200, eval -" in printed
    assert "step 200/200" not in printed  # the last evaluation is the parent's "completed, final eval" line
    argv = ["compare", "--tasks", "Pendulum-v1", "--methods", "local-linear", "--workers", "1", "--quiet",
            "--out", str(tmp_path / "quiet"), *TINY]
    assert run_cli(argv) == 0
    assert "step 100/200" not in capfd.readouterr().out


def test_failed_run_is_recorded_and_the_others_continue(tmp_path, capsys):
    # a task that exists but crashes fails in its run, not up front
    out = tmp_path / "fail"
    argv = ["compare", "--tasks", "Pendulum-v1", BROKEN_TASK, "--methods", "local-linear", "--workers", "1",
            "--out", str(out), *TINY]
    assert run_cli(argv) == 1
    assert f"{BROKEN_TASK} local-linear seed0: failed (" in capsys.readouterr().out
    rows = {r["task"]: r for r in read_results(out / "results.csv")}
    assert rows["Pendulum-v1"]["status"] == "completed"
    assert rows[BROKEN_TASK]["status"] == "failed" and "broken on purpose" in rows[BROKEN_TASK]["error"]
    assert (out / "runs" / BROKEN_TASK / "local-linear" / "seed0" / "error.txt").exists()
    scores_md = (out / "scores.md").read_text()
    assert f"| {BROKEN_TASK} | local-linear | 1 failed |" in scores_md and "n/a" in scores_md


def test_an_unknown_task_id_is_refused_before_anything_runs(tmp_path):
    with pytest.raises(BaselineConfigError, match="NoSuchTask-v0"):
        compare(CompareConfig(tasks=("NoSuchTask-v0",), methods=("random",), seeds=1, out=str(tmp_path / "x")))
    assert not (tmp_path / "x").exists()


def test_folder_of_another_configuration_is_an_error(tmp_path):
    config = CompareConfig(tasks=("Pendulum-v1",), methods=("random",), seeds=1, steps=100, out=str(tmp_path))
    spec = plan_runs(config)[0]
    folder = spec.folder(tmp_path)
    folder.mkdir(parents=True)
    other = RunSpec(**{**spec.__dict__, "steps": 999})
    (folder / RUN_FILE).write_text(json.dumps(other.identity()))
    with pytest.raises(BaselineConfigError, match=r"steps=999 \(now 100\)"):
        compare(config)
    (folder / RUN_FILE).unlink()
    (folder / "something.txt").write_text("not ours")
    with pytest.raises(BaselineConfigError, match="did not write"):
        compare(config)
    (folder / RUN_FILE).write_text(json.dumps(other.identity()))
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(BaselineConfigError, match="pass --overwrite") as refused:
        compare(config)
    assert len(str(refused.value).splitlines()) == 1
    result = compare(config, print_fn=lambda _text: None, overwrite=True)  # deletes the other run, starts over
    assert [row["status"] for row in result["rows"]] == ["completed"]
    assert json.loads((folder / RUN_FILE).read_text()) == spec.identity() and not (folder / "something.txt").exists()
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert compare(config, print_fn=lambda _text: None)["skipped"] == 1  # the same config again: reused


def test_an_out_holding_another_commands_run_is_refused_in_one_line(tmp_path, capsys):
    from neuron_env.run_folders import RunFolderError

    (tmp_path / "checkpoint.pt").write_bytes(b"x")
    (tmp_path / "summary.json").write_text(json.dumps({"status": "completed", "steps": 600}))
    config = CompareConfig(tasks=("Pendulum-v1",), methods=("random",), seeds=1, steps=100, out=str(tmp_path))
    with pytest.raises(RunFolderError, match="holds a `neuron-env train` run .*, not a comparison"):
        compare(config)
    from neuron_env.cli import main

    assert main(["compare", "--tasks", "Pendulum-v1", "--methods", "random", "--out", str(tmp_path), *TINY]) == 2
    error = capsys.readouterr().err.strip()
    assert "--overwrite" in error and len(error.splitlines()) == 1
    assert not (tmp_path / "runs").exists()
    result = compare(config, print_fn=lambda _text: None, overwrite=True)
    assert result["rows"][0]["status"] == "completed" and not (tmp_path / "checkpoint.pt").exists()


def test_ray_dispatch_on_a_local_instance(tmp_path):
    ray = pytest.importorskip("ray")
    # a local instance bound to loopback: nothing leaves this machine
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1")
    try:
        result = compare(CompareConfig(tasks=("Pendulum-v1",), methods=("random", "local-linear"), steps=200,
                                       seeds=1, eval_every=100, eval_episodes=1, learning_starts=50, hidden=(4,),
                                       tensorboard=False, ray_address="local", out=str(tmp_path)))
    finally:
        ray.shutdown()
    assert [r["status"] for r in result["rows"]] == ["completed", "completed"]
    local = tmp_path / "runs" / "Pendulum-v1" / "local-linear" / "seed0"
    assert (local / "metrics.csv").exists() and (local / "summary.json").exists()
    assert not (local / "checkpoint.pt").exists()  # not shipped back
    assert (tmp_path / "scores.md").exists() and (tmp_path / "curves.png").exists()


def test_local_noise_task_reaches_the_learner_through_the_command_line(tmp_path, capsys):
    from neuron_env.agents.train import load_checkpoint

    out = tmp_path / "noise"
    assert run_cli(["compare", "--tasks", "MountainCarContinuous-v0", "--methods", "local-feedback", "--local-noise",
                    "task", "--out", str(out), "--workers", "1", *TINY]) == 0
    folder = out / "runs" / "MountainCarContinuous-v0" / "local-feedback" / "seed0"
    used = json.loads((folder / "config.json").read_text())["learner_config"]
    assert (used["noise"], used["noise_scale"]) == ("ou", 0.5)  # the zoo's Ornstein-Uhlenbeck noise of SB3 DDPG there
    assert json.loads((folder / RUN_FILE).read_text())["local_noise"] == "task"
    assert load_checkpoint(folder)["trainer"]["task_step"] == 200
    assert "--local-noise task" in (out / "scores.md").read_text()


def same_state(a: Any, b: Any) -> bool:
    """Whether two checkpoint entries (tensors, dicts, lists, numbers) are bitwise equal."""
    import torch

    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same_state(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(map(same_state, a, b))
    return a == b


def learning_rows(folder) -> list[dict[str, str]]:
    """``metrics.csv`` without its wall-clock columns."""
    with open(folder / "metrics.csv", newline="") as stream:
        return [{k: v for k, v in row.items() if k not in ("wall_time_s", "sps")} for row in csv.DictReader(stream)]


#: A grid with three checkpoints per local run (segments of 100 task steps).
EXACT = ["compare", "--tasks", "CartPole-v1", "--methods", "local-feedback", "sb3-dqn", "--steps", "300",
         "--seeds", "1", "--checkpoint-every", "100", "--eval-every", "100", "--eval-episodes", "2",
         "--learning-starts", "50", "--hidden", "8", "8", "--workers", "2", "--no-tensorboard"]


def test_an_interrupted_comparison_resumes_every_run_exactly(tmp_path, capsys):
    """Stopped at task step 250 as Ctrl-C stops it, the grid resumes and ends bitwise where it ends unstopped."""
    from neuron_env.agents.train import load_checkpoint
    from neuron_env.baselines.cli import compare_config_from_args
    from neuron_env.baselines.runners import execute_run

    split, whole = tmp_path / "split", tmp_path / "whole"
    parser = argparse.ArgumentParser()
    add_compare_parser(parser.add_subparsers(dest="command"))
    local, sb3 = plan_runs(compare_config_from_args(parser.parse_args([*EXACT, "--out", str(split)])))
    # the uninterrupted runs, as a compare worker runs them (execute_run), in this process
    expected = {spec.method: execute_run(spec, spec.folder(whole)) for spec in (local, sb3)}

    def ctrl_c_at_250(trainer: Any) -> None:
        if trainer.task_step == 250:
            trainer.request_stop()  # what the trainer's SIGINT handler does

    stopped = execute_run(local, local.folder(split), on_step=ctrl_c_at_250)
    assert stopped["status"] == "interrupted" and stopped["steps"] == 250 and stopped["checkpoint_step"] == 200
    assert load_checkpoint(local.folder(split))["trainer"]["task_step"] == 200  # the boundary, not step 250
    execute_run(sb3, sb3.folder(split))  # an SB3 run stopped on Ctrl-C: its summary says so, no model.zip
    summary = json.loads((sb3.folder(split) / "summary.json").read_text())
    (sb3.folder(split) / "summary.json").write_text(json.dumps({**summary, "status": "interrupted"}))
    (sb3.folder(split) / "model.zip").unlink()
    capsys.readouterr()

    assert run_cli([*EXACT, "--out", str(split)]) == 0
    printed = capsys.readouterr().out
    assert "0 finished earlier, 2 to run (1 resumed from its checkpoint)" in printed
    assert "compare: resuming CartPole-v1 local-feedback seed0 from its checkpoint at task step 200 of 300" in printed
    assert "compare: starting CartPole-v1 sb3-dqn seed0 over from task step 0: SB3 runs are not checkpointed" in printed
    rows = {row["method"]: row for row in read_results(split / "results.csv")}
    for method, summary in expected.items():
        assert rows[method]["status"] == summary["status"] == "completed"
        assert float(rows[method]["final_eval_mean"]) == summary["final_eval_return_mean"]
    whole_local = local.folder(whole)
    a, b = load_checkpoint(whole_local), load_checkpoint(local.folder(split))
    assert same_state(a["learner"], b["learner"]) and same_state(a["weights"], b["weights"])
    assert learning_rows(local.folder(split)) == learning_rows(whole_local)
    assert (local.folder(split) / "episodes.csv").read_text() == (whole_local / "episodes.csv").read_text()


@pytest.mark.parametrize("sigint", ["default", "ignored"])
def test_ctrl_c_in_compare_prints_one_line_and_no_traceback(tmp_path, sigint):
    """A real Ctrl-C (SIGINT to the process group, as a terminal sends it) while a local and an SB3 run train.

    ``ignored``: ``compare`` starts with SIGINT ignored (a background job of a shell without job
    control); the workers still stop their runs, and ``compare`` says so instead of exiting 0.
    """
    import os
    import re
    import shlex
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "cmp"
    argv = ["compare", "--tasks", "CartPole-v1", "--methods", "local-feedback", "sb3-dqn", "--steps", "4000",
            "--seeds", "1", "--checkpoint-every", "500", "--eval-every", "500", "--eval-episodes", "1",
            "--learning-starts", "50", "--hidden", "8", "8", "--workers", "2", "--no-tensorboard", "--out", str(out)]
    log = tmp_path / "log.txt"
    with open(log, "w") as stream:
        command = [sys.executable, "-m", "neuron_env.cli", *argv]
        if sigint == "ignored":  # the shell ignores SIGINT, then becomes the command: it starts with SIGINT ignored
            command = ["sh", "-c", 'trap "" INT; exec "$0" "$@"', *command]
        process = subprocess.Popen(command, stdout=stream, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + 120
            while "local-feedback seed0: step 500/4000" not in log.read_text() and time.monotonic() < deadline:
                assert process.poll() is None, log.read_text()
                time.sleep(0.05)
            os.killpg(process.pid, signal.SIGINT)
            assert process.wait(timeout=120) == 130
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
    text = log.read_text()
    assert "Traceback" not in text and "Error" not in text, text
    lines = [line for line in text.splitlines() if line.startswith("neuron-env compare:")]
    assert len(lines) == 1, text
    assert re.search(r"interrupted; 0 of 2 runs finished .*, 1 resumes exactly from its last checkpoint "
                     r"\(CartPole-v1 local-feedback seed0 at task step (500|1000|1500)\), 1 starts over", lines[0])
    assert lines[0].endswith(f"resume with: {shlex.join(['neuron-env', *argv])}")


def test_a_run_stopped_by_ctrl_c_interrupts_the_comparison_even_when_this_process_saw_none(tmp_path, monkeypatch):
    """A worker's run comes back ``interrupted`` with no ``KeyboardInterrupt`` here: no report of a partial grid."""
    from neuron_env.baselines import compare as compare_module

    from neuron_env.run_folders import RunInterrupted

    config = CompareConfig(tasks=("CartPole-v1",), methods=("random", "sb3-dqn"), steps=100, seeds=1,
                           out=str(tmp_path), tensorboard=False)

    def fake_dispatch(jobs: list, _config: Any, on_row: Any) -> None:
        for spec, _ in jobs:  # the random run finished, the SB3 run was stopped by a SIGINT sent to its worker
            status = "completed" if spec.method == "random" else "interrupted"
            on_row({"task": spec.task, "method": spec.method, "seed": spec.seed, "final_eval_mean": 20.0,
                    "final_eval_std": 0.0, "steps": spec.steps, "wall_time_s": 1.0, "steps_per_s": 100.0,
                    "status": status, "error": ""})

    monkeypatch.setattr(compare_module, "dispatch", fake_dispatch)
    with pytest.raises(RunInterrupted, match=r"^interrupted; 1 of 2 runs finished .*, 1 starts over"):
        compare(config, print_fn=lambda _text: None)
    assert not (tmp_path / "scores.md").exists()
    assert [row["method"] for row in read_results(tmp_path / "results.csv")] == ["random"]


def test_a_ctrl_c_that_code_wraps_in_another_error_is_an_interruption_not_a_failure(tmp_path, monkeypatch):
    # Python wraps an exception raised in __set_name__ (a class body being built while a module imports)
    # in a RuntimeError: a Ctrl-C landing there must not count as a broken run
    from neuron_env.baselines import runners

    spec = plan_runs(CompareConfig(tasks=("Pendulum-v1",), methods=("random",), seeds=1, steps=100,
                                   out=str(tmp_path)))[0]

    def interrupted_import(*args: Any) -> None:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as ctrl_c:
            raise RuntimeError("Error calling __set_name__ on 'cached_property' instance") from ctrl_c

    def broken(*args: Any) -> None:
        raise RuntimeError("a real failure")

    monkeypatch.setattr(runners, "execute_run", interrupted_import)
    row = runners.run_in_worker(spec, str(tmp_path / "run"), resume=False)
    assert row["status"] == "interrupted" and "__set_name__" in row["error"]
    monkeypatch.setattr(runners, "execute_run", broken)
    assert runners.run_in_worker(spec, str(tmp_path / "run"), resume=False)["status"] == "failed"


def test_recurrent_ppo_is_a_compare_method_and_can_be_the_reference(tmp_path, capsys):
    """``sb3-recurrent-ppo`` runs ``baseline --algo recurrent-ppo --zoo-net``: the memory tasks' reference."""
    pytest.importorskip("sb3_contrib")
    out = tmp_path / "memory"
    argv = ["compare", "--tasks", "CartPoleNoVel-v1", "--methods", "random", "sb3-recurrent-ppo", "--reference",
            "sb3-recurrent-ppo", "--steps", "256", "--eval-every", "256", "--eval-episodes", "2", "--seeds", "1",
            "--workers", "1", "--no-tensorboard", "--out", str(out)]
    assert run_cli(argv) == 0
    summary = json.loads((out / "runs" / "CartPoleNoVel-v1" / "sb3-recurrent-ppo" / "seed0" / "summary.json")
                         .read_text())
    assert summary["status"] == "completed" and summary["method"] == "sb3-recurrent-ppo"
    assert summary["config"]["algo"] == "recurrent-ppo" and (out / "runs" / "CartPoleNoVel-v1" / "sb3-recurrent-ppo" /
                                                             "seed0" / "vecnormalize.pkl").is_file()
    assert summary["hyperparameters"]["net_arch"] == [64] and summary["hyperparameters"]["normalize"] is True
    scores = json.loads((out / "scores.json").read_text())
    assert scores["tasks"]["CartPoleNoVel-v1"]["reference"] == "sb3-recurrent-ppo"
    assert "sb3-recurrent-ppo the zoo's LSTM policy" in (out / "scores.md").read_text()


def test_recurrent_ppo_without_sb3_contrib_is_refused_in_one_line(monkeypatch):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args, **kwargs: None if name == "sb3_contrib" else
                        find_spec(name, *args, **kwargs))
    with pytest.raises(BaselineConfigError, match=r"sb3-recurrent-ppo needs sb3-contrib: pip install") as error:
        CompareConfig(tasks=("CartPoleNoVel-v1",), methods=("random", "sb3-recurrent-ppo")).validate()
    assert "\n" not in str(error.value)
