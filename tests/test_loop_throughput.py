"""benchmarks/loop_throughput.py: the training loop against SB3 DDPG and the plain-torch DDPG, updates, replay, profile.

Tiny runs on Pendulum-v1 only; nothing here asserts a speed.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest
from neuron_env.agents.train import TrainConfig

pytest.importorskip("stable_baselines3")

from .conftest import load_script  # noqa: E402

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "loop_throughput.py"
TINY = ["--tasks", "Pendulum-v1", "--steps", "40", "--learning-starts", "20", "--updates", "2",
        "--update-warmup", "1", "--learners", TrainConfig().learner, "--batches", "64"]

LOCAL = f"local-{TrainConfig().learner}"  # the trainer's default learner
REFERENCES = ("sb3-ddpg", "torch-ddpg")


def load() -> ModuleType:
    return load_script(SCRIPT, "loop_throughput_benchmark")


def test_parse_args_defaults_and_bad_values() -> None:
    bench = load()
    args = bench.parse_args([])
    learner = TrainConfig().learner
    assert (args.steps, args.learning_starts, args.threads) == (4000, 1000, 1)
    assert args.learners == (learner, f"{learner}:critic=joint") and args.batches == ("own",)
    assert args.tasks == ("Pendulum-v1", "HalfCheetah-v5:64-64", "HalfCheetah-v5:400-300")
    assert [str(n) for n in args.networks()] == ["Pendulum-v1:64-64", "HalfCheetah-v5:64-64", "HalfCheetah-v5:400-300"]
    assert str(bench.parse_args(["--tasks", "HalfCheetah-v5"]).networks()[0]) == "HalfCheetah-v5:400-300"
    assert args.out == "benchmarks/results/loop_throughput.json"
    assert bench.parse_args(["--tasks", "Pendulum-v1", "--learners", "feedback"]).tasks == ("Pendulum-v1",)
    assert args.num_envs == (1,) and bench.parse_args(["--num-envs", "1", "4"]).num_envs == (1, 4)
    quick = bench.parse_args(["--quick"])
    assert quick.tasks == ("Pendulum-v1",) and (quick.steps, quick.learning_starts, quick.updates) == (60, 20, 5)
    assert bench.parse_args(["--quick", "--tasks", "MountainCarContinuous-v0"]).tasks == ("MountainCarContinuous-v0",)
    for bad in (["--steps", "0"], ["--learning-starts", "10", "--steps", "10"], ["--learners", "sgd"],
                ["--num-envs", "0"], ["--learners", "feedback:critic"], ["--batches", "own", "-1"],
                ["--tasks", "Pendulum-v1:64-"]):
        with pytest.raises(SystemExit):
            bench.parse_args(bad)


def test_part_timer_counts_nested_calls_once() -> None:
    bench = load()
    timer = bench.PartTimer()
    inner = timer.wrap("store", lambda: None)
    outer = timer.wrap("act", lambda: inner())
    outer()
    inner()
    assert timer.calls["act"] == 1 and timer.calls["store"] == 1
    split = timer.split(total=1.0, steps=2)
    assert sum(split["share"].values()) == pytest.approx(1.0)


def test_tiny_run_writes_every_figure_and_a_profile_that_sums_to_the_total(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bench = load()
    out = tmp_path / "loop.json"
    returned = bench.main([*TINY, "--profile", "--out", str(out)])
    results = json.loads(out.read_text())
    assert results["config"] == json.loads(json.dumps(returned["config"]))
    assert {"config", "machine", "tasks", "replay_723", "skipped", "notes", "load_average_1min_end",
            "wall_time_s"} <= set(results)
    assert {"cpu", "torch", "torch_threads", "date", "load_average_1min"} <= set(results["machine"])
    assert results["machine"]["torch_threads"] == 1 and results["skipped"] == []
    (task,) = results["tasks"]
    assert task["task"] == "Pendulum-v1" and task["network"] == "3-64-64-1" and task["neurons"] == 132
    assert task["batch_size"] == 64 and results["plan"] == {"64": [[LOCAL, "fixed"]]}
    loop = task["loop"]
    assert set(loop) == {LOCAL, *REFERENCES}
    for method, figures in loop.items():
        assert figures["steps_per_s"] > 0 and figures["batch_size"] == 64
        assert figures["updates"] == 20, method  # one update per task step after learning_starts, every method
        assert figures["ratio_vs_sb3"] == pytest.approx(figures["steps_per_s"] / loop["sb3-ddpg"]["steps_per_s"])
        assert figures["ratio_vs_torch"] == pytest.approx(figures["steps_per_s"] / loop["torch-ddpg"]["steps_per_s"])
        assert figures["steps_per_cpu_s"] > 0 and figures["cpu_ratio_vs_sb3"] == pytest.approx(
            figures["steps_per_cpu_s"] / loop["sb3-ddpg"]["steps_per_cpu_s"])
    assert loop[LOCAL]["batch_source"] == "fixed" and loop["torch-ddpg"]["batch_source"] == "reference"
    updates = task["updates"]
    assert updates["batch_size"] == 64
    for method in (LOCAL, *REFERENCES):
        assert updates[method]["updates_per_s"] > 0 and updates[method]["ratio_vs_torch"] > 0
        assert updates[method]["cpu_ms_per_update"] > 0 and updates[method]["cpu_ratio_vs_torch"] > 0
    replay = task["replay"]
    # settled rows, re-settled replay (the feedback learner's default): inputs twice, the output's action
    assert replay["local_bytes_per_transition"] == 4 * (2 * 3 + 1 + 2)
    assert 0 < replay["local_checkpoint_bytes_without_replay"] < 1_000_000
    assert replay["sb3_bytes_per_transition"] > 0 and replay["local"]["capacity"] == 40
    assert results["replay_723"]["neurons"] == 723
    assert results["replay_723"]["local_bytes_per_transition"] == 4 * (2 * 17 + 6 + 2)
    for method in (LOCAL, *REFERENCES):
        split = task["profile"][method]
        per_step = split["us_per_step"]
        parts = [per_step[p] for p in bench.PARTS]
        assert all(value >= 0 for value in parts), split
        assert sum(parts) == pytest.approx(per_step["total"], rel=1e-6)
        assert sum(split["share"].values()) == pytest.approx(1.0)
        assert per_step["sample_update"] > 0 and per_step["env_step"] > 0
    calls = task["profile"][LOCAL]["calls"]
    # delay 3, settled: one act_settled and one step_task call per task step (they were 3 ticks of each)
    assert calls == {"act": 40, "env_step": 40, "store": 40, "sample_update": 20}
    assert task["profile"]["torch-ddpg"]["calls"] == calls  # the reference loop: the same calls per task step
    printed = capsys.readouterr().out
    assert "x torch" in printed and "bookkeeping (everything else)" in printed and "723" in printed


def test_a_task_that_cannot_be_made_is_skipped_with_a_message() -> None:
    bench = load()
    args = bench.parse_args(["--tasks", "NoSuchTask-v0", "--out", ""])
    results = bench.run_benchmark(args, log=lambda line: None)
    assert results["tasks"] == []
    assert "NoSuchTask-v0" in results["skipped"][0] and "skipped" in results["skipped"][0]
    assert results["replay_723"]["neurons"] == 723  # reported even without the HalfCheetah run
    assert "skipped: NoSuchTask-v0" in bench.format_report(results)


def test_copies_rows_keep_one_update_per_transition_on_both_sides(capsys: pytest.CaptureFixture) -> None:
    results = load().main([*TINY, "--num-envs", "1", "2", "--out", ""])
    (copy,) = results["tasks"][0]["copies"]
    assert copy["num_envs"] == 2 and copy["transitions"] == 40
    # 10 vector steps past learning_starts (10 of 20), 2 updates each; SB3: gradient_steps=-1 -> 2 per step
    assert copy[LOCAL]["updates"] == 20 and copy["sb3-ddpg"]["updates"] == 20
    assert copy["ratio_local_vs_sb3"] > 0 and "Loop with E task copies" in capsys.readouterr().out



def test_own_batches_put_each_learner_at_its_default_with_the_references_beside_it() -> None:
    bench = load()
    joint = f"{LOCAL}[critic=joint]"
    args = bench.parse_args([*TINY[:-4], "--learners", "ddpg", "feedback:critic=joint", "--batches", "own",
                             "--out", ""])
    results = bench.run_benchmark(args, log=lambda line: None)
    assert results["plan"] == {"256": [[joint, "own default"]], "64": [["local-ddpg", "own default"]]}
    first, second = results["tasks"]
    assert (first["batch_size"], set(first["loop"])) == (256, {joint, *REFERENCES})
    assert (second["batch_size"], set(second["loop"])) == (64, {"local-ddpg", *REFERENCES})
    assert first["loop"][joint]["options"] == {"critic": "joint", "batch_size": 256, "buffer_size": 40}
    assert first["replay"] is not None and second["replay"] is None  # replay bytes once per network


def test_quick_smoke_run(capsys: pytest.CaptureFixture) -> None:
    results = load().main(["--quick", "--out", ""])
    assert [t["task"] for t in results["tasks"]] == ["Pendulum-v1"]
    assert results["config"]["steps"] == 60 and "torch-ddpg" in capsys.readouterr().out
