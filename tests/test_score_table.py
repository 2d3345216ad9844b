"""E4 score-table: task names, the table layout, and a tiny end-to-end run."""

from __future__ import annotations

import argparse
import json
import math

import pytest

pytest.importorskip("stable_baselines3")
pytest.importorskip("matplotlib")

from neuron_env.baselines.cli import add_experiment_parser  # noqa: E402
from neuron_env.baselines.compare import CompareConfig  # noqa: E402
from neuron_env.baselines.errors import BaselineConfigError  # noqa: E402
from neuron_env.baselines.experiments.score_table import (  # noqa: E402
    TABLE1_ROWS,
    ScoreTableConfig,
    build_table,
    render_table,
    resolve_task,
)

from tests.conftest import MUJOCO_TASK, has_mujoco  # noqa: E402


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="neuron-env")
    add_experiment_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_task_names_and_config():
    assert len(TABLE1_ROWS) == 7
    assert resolve_task("cheetah") == "HalfCheetah-v5" and resolve_task("Hopper-v5") == "Hopper-v5"
    config = ScoreTableConfig(tasks=("pendulum", "cartpoleBalance"), task_steps={"cartpoleBalance": 50_000},
                              thresholds={"pendulum": -200}).compare_config()
    assert config.tasks == ("Pendulum-v1", "InvertedPendulum-v5")
    assert config.budget("InvertedPendulum-v5") == 50_000 and config.thresholds == {"Pendulum-v1": -200.0}
    with pytest.raises(BaselineConfigError, match="must include 'random'"):
        ScoreTableConfig(methods=("sb3-ddpg", "local-mlp")).compare_config()


def test_table_layout_from_scores():
    config = CompareConfig(tasks=("Pendulum-v1", "Swimmer-v5"), methods=("random", "sb3-ddpg", "local-mlp"), seeds=2,
                           steps=1000)

    def method(values, mean, best):
        return {"normalized": values, "normalized_mean": mean, "normalized_std": 0.1, "normalized_best": best,
                "return_mean": -300.0}

    scores = {"tasks": {
        task: {"steps": 1000, "random_mean": -1200.0, "reference_mean": -200.0, "notes": [],
               "methods": {"random": method([0.0, 0.0], 0.0, 0.0), "sb3-ddpg": method([0.9, 1.1], 1.0, 1.1),
                           "local-mlp": method([0.5, 0.7], 0.6, 0.7)}}
        for task in config.tasks}}
    scores["tasks"]["Swimmer-v5"]["methods"]["local-mlp"] = method([], math.nan, math.nan)
    table = build_table(config, scores)
    assert table["columns"] == ["sb3-ddpg", "local-mlp"]
    assert table["rows"][0]["paper_row"] == "pendulum" and table["rows"][1]["paper_row"] is None
    text = render_table(table).splitlines()
    assert text[0] == ("| paper row | Gymnasium task | steps × seeds | sb3-ddpg (avg) | sb3-ddpg (best) | "
                       "local-mlp (avg) | local-mlp (best) |")
    assert text[2] == "| pendulum | Pendulum-v1 | 1000 × 2 | 1.00 | 1.10 | 0.60 | 0.70 |"
    assert text[3] == "| — | Swimmer-v5 | 1000 × 2 | 1.00 | 1.10 | n/a | n/a |"


def test_tiny_score_table_end_to_end(tmp_path, capsys):
    second = "cartpoleBalance" if has_mujoco() else "MountainCarContinuous-v0"
    out = tmp_path / "e4"
    status = run_cli([
        "experiment", "score-table", "--tasks", "pendulum", second, "--methods", "random", "sb3-ddpg", "local-linear",
        "--steps", "200", "--seeds", "1", "--workers", "2", "--eval-every", "100", "--eval-episodes", "1",
        "--learning-starts", "50", "--hidden", "8", "8", "--no-tensorboard", "--quiet", "--out", str(out),
    ])
    assert status == 0
    printed = capsys.readouterr().out
    assert "| pendulum | Pendulum-v1 | 200 × 1 |" in printed
    text = (out / "score_table.md").read_text()
    assert "Regenerate with: `neuron-env experiment score-table --tasks pendulum" in text
    assert "local-linear (avg) | local-linear (best)" in text and "DeepMind" in text
    document = json.loads((out / "score_table.json").read_text())
    assert [row["task"] for row in document["rows"]] == ["Pendulum-v1", MUJOCO_TASK if has_mujoco() else second]
    assert document["rows"][0]["scores"]["sb3-ddpg"]["avg"] == pytest.approx(1.0)
    for name in ("results.csv", "scores.md", "scores.json", "curves.png"):
        assert (out / name).exists(), name
