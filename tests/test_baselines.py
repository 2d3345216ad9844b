"""The SB3 baseline: hyperparameter table, config checks, output files and the CLI parser."""

from __future__ import annotations

import argparse
import csv
import json
import math
from pathlib import Path

import pytest

pytest.importorskip("stable_baselines3")

from neuron_env.baselines import (  # noqa: E402
    METRICS_COLUMNS,
    SUMMARY_KEYS,
    BaselineConfig,
    BaselineConfigError,
    atomic_write_json,
    resolve_hyperparameters,
    run_baseline,
)
from neuron_env.baselines.cli import add_baseline_parser, add_experiment_parser, baseline_config_from_args  # noqa: E402


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="neuron-env")
    sub = parser.add_subparsers(dest="command", required=True)
    add_baseline_parser(sub)
    add_experiment_parser(sub)
    return parser


def read_metrics(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def test_zoo_table_pendulum_and_overrides():
    params = resolve_hyperparameters(BaselineConfig(task="Pendulum-v1", hidden=None))
    assert params["source"] == "rl-zoo"
    assert params["steps"] == 20_000 and params["gamma"] == 0.98 and params["learning_starts"] == 10_000
    assert params["noise_type"] == "normal" and params["noise_std"] == 0.1
    assert params["net_arch"] == [400, 300] and params["activation"] == "relu"
    assert params["buffer_size"] == 20_000  # capped at the step budget

    config = BaselineConfig(hidden=(32, 16), activation="tanh", steps=500, learning_starts=7, noise_std=0.3)
    params = resolve_hyperparameters(config)
    assert params["net_arch"] == [32, 16] and params["activation"] == "tanh"
    assert params["steps"] == 500 and params["learning_starts"] == 7 and params["noise_std"] == 0.3


def test_zoo_table_mujoco_and_fallback():
    mujoco = resolve_hyperparameters(BaselineConfig(task="HalfCheetah-v5"))
    assert mujoco["source"] == "rl-zoo" and mujoco["learning_starts"] == 10_000 and mujoco["batch_size"] == 256
    assert mujoco["noise_type"] == "normal"
    other = resolve_hyperparameters(BaselineConfig(task="SomeUnknownTask-v3"))
    assert other["source"] == "fallback" and other["noise_type"] == "normal" and other["noise_std"] > 0


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"algo": "sac"}, "algo"),
        ({"activation": "gelu"}, "activation"),
        ({"hidden": ()}, "hidden"),
        ({"noise_type": "pink"}, "noise_type"),
        ({"eval_every": 0}, "eval_every"),
    ],
)
def test_bad_config_raises_typed_error(kwargs, word):
    with pytest.raises(BaselineConfigError, match=word):
        BaselineConfig(**kwargs).validate()
    with pytest.raises(ValueError):  # the typed error is also a ValueError
        BaselineConfig(**kwargs).validate()


def test_atomic_json_writes_strict_json(tmp_path):
    atomic_write_json(tmp_path / "x.json", {"a": math.nan, "b": [1.0, math.inf], "c": {"d": 2}})
    assert json.loads((tmp_path / "x.json").read_text()) == {"a": None, "b": [1.0, None], "c": {"d": 2}}
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_tiny_baseline_run_writes_every_output(tmp_path):
    out = tmp_path / "run"
    summary = run_baseline(BaselineConfig(
        task="Pendulum-v1", hidden=(8, 8), steps=300, learning_starts=50, eval_every=100, eval_episodes=2,
        out=str(out), progress=False,
    ))
    columns, rows = read_metrics(out / "metrics.csv")
    assert tuple(columns) == METRICS_COLUMNS
    assert [int(r["step"]) for r in rows] == [100, 200, 300]  # like the trainer: no row at step 0
    assert all(math.isfinite(float(r["eval_return_mean"])) for r in rows)
    assert rows[0]["episodic_return"] == "" and float(rows[1]["episodic_return"]) < 0  # the 200-step episode ended
    assert all(r["td_error"] == "" for r in rows)
    assert int(rows[-1]["updates"]) == 250 and float(rows[-1]["sps"]) > 0
    on_disk = json.loads((out / "summary.json").read_text())
    assert set(SUMMARY_KEYS) <= set(on_disk)
    assert on_disk["status"] == "completed" and on_disk["steps"] == 300 and on_disk["transitions"] == 300
    assert on_disk["episodes"] == 1 and on_disk["num_agents"] == 8 + 8 + 1
    assert on_disk["final_eval_return_mean"] == pytest.approx(float(rows[-1]["eval_return_mean"]), abs=1e-3)
    assert len(on_disk["final_eval_returns"]) == 2
    assert on_disk["config"]["hidden"] == [8, 8] and on_disk["hyperparameters"]["noise_type"] == "normal"
    assert json.loads((out / "config.json").read_text()) == on_disk["config"]
    assert summary["steps_per_s"] > 0
    assert list((out / "tb").glob("events.out.tfevents.*")) and (out / "model.zip").exists()
    assert not list(out.glob(".*.tmp"))


def test_same_columns_and_keys_as_the_local_trainer(tmp_path):
    # the project's own module: imported plainly, so a broken import fails the test instead of skipping it
    from neuron_env.agents.train import TrainConfig, train

    local_out, sb3_out = tmp_path / "local", tmp_path / "sb3"
    train(TrainConfig.from_settings(
        task="Pendulum-v1", learner="ddpg", hidden=[4], critic="linear", steps=200, learning_starts=40, batch_size=16,
        buffer_size=1000, eval_every=100, eval_episodes=2, checkpoint_every=100, out=str(local_out), progress=False,
        tensorboard=False, seed=3,
    ))
    run_baseline(BaselineConfig(hidden=(4,), steps=200, learning_starts=40, eval_every=100, eval_episodes=2,
                                out=str(sb3_out), progress=False, tensorboard=False, save_model=False, seed=3))
    local_columns, local_rows = read_metrics(local_out / "metrics.csv")
    sb3_columns, sb3_rows = read_metrics(sb3_out / "metrics.csv")
    assert sb3_columns == local_columns
    assert [r["step"] for r in sb3_rows] == [r["step"] for r in local_rows]
    local_summary = json.loads((local_out / "summary.json").read_text())
    sb3_summary = json.loads((sb3_out / "summary.json").read_text())
    assert set(local_summary) <= set(sb3_summary)


def test_cli_baseline_td3(tmp_path, capsys):
    out = tmp_path / "td3"
    args = make_parser().parse_args([
        "baseline", "--algo", "td3", "--task", "Pendulum-v1", "--hidden", "8", "--activation", "relu",
        "--steps", "200", "--learning-starts", "50", "--eval-every", "100", "--eval-episodes", "1",
        "--out", str(out), "--no-progress", "--no-tensorboard",
    ])
    config = baseline_config_from_args(args)
    assert config.algo == "td3" and config.hidden == (8,) and config.activation == "relu"
    assert args.func(args) == 0
    assert "sb3-td3 on Pendulum-v1" in capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["method"] == "sb3-td3" and summary["steps"] == 200
    assert not (out / "tb").exists()


def test_cli_zoo_net_flag():
    args = make_parser().parse_args(["baseline", "--zoo-net", "--out", "x"])
    config = baseline_config_from_args(args)
    assert config.hidden is None and config.activation == "relu"
    assert resolve_hyperparameters(config)["net_arch"] == [400, 300]
