"""studies/sample_efficiency_fallback.py: the instrumented run on a tiny budget, and its analysis."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from .conftest import load_script

SCRIPT = Path(__file__).resolve().parents[1] / "studies" / "sample_efficiency_fallback.py"


def load_fallback() -> ModuleType:
    return load_script(SCRIPT, "sample_efficiency_fallback")


def test_instrumented_run_writes_probes_and_analysis_and_is_the_sweeps_run(tmp_path: Path) -> None:
    fallback = load_fallback()
    argv = ["--variant", "defaults", "--seeds", "3", "--steps", "400", "--learning-starts", "100",
            "--probe-every", "100", "--probe-episodes", "2", "--probe-states", "16",
            "--out", str(tmp_path / "out"), "--work", str(tmp_path / "work")]
    result = fallback.main(argv)
    out = tmp_path / "out"
    for name in ("fallback.json", "fallback.md", "fallback.png", "seed3/probes.csv", "seed3/metrics.csv",
                 "seed3/summary.json", "seed3/provenance.json"):
        assert (out / name).is_file(), name
    rows = fallback.read_probes(out / "seed3" / "probes.csv")
    assert [r["step"] for r in rows] == [0, 100, 200, 300, 400]
    assert rows[0]["q_slope"] is None and rows[1]["q_slope"] is None  # warm-up: no update before step 100
    assert rows[2]["q_slope"] > 0 and rows[2]["td/out"] > 0
    assert rows[0]["drift/out"] == 0.0 and rows[3]["drift/h1"] > 0 and rows[3]["action_change"] > 0
    assert len(rows[4]["eval_returns"]) == 2 and rows[4]["eval_mean"] == pytest.approx(np.mean(rows[4]["eval_returns"]),
                                                                                      abs=0.01)
    assert result["intervals"] == 3  # the intervals ending at 200, 300 and 400 contain updates
    assert rows[4]["norm/h1"] > 0
    starts = result["seeds"][3]["starts"]
    assert len(starts) == 2 and all(-180 <= s["angle_deg"] <= 180 for s in starts)
    # the recorded starts are the evaluation env's own (read here from its task copy's state)
    from neuron_env.agents.train import evaluation_seed

    from neuron_env import NeuronVecEnv, Topology

    env = NeuronVecEnv("Pendulum-v1", Topology.mlp(3, [64, 64], 1), num_envs=2)
    env.reset(seed=evaluation_seed(3))
    angle, velocity = env.task.envs[1].unwrapped.state
    env.close()
    assert starts[1]["angle_deg"] == pytest.approx(np.degrees(np.arctan2(np.sin(angle), np.cos(angle))), abs=0.1)
    assert starts[1]["angular_velocity"] == pytest.approx(velocity, abs=1e-3)
    assert starts[1]["final_return"] == rows[4]["eval_returns"][1]
    # the probes only read the learner: the run equals the plain trainer's run of the same config
    from neuron_env.agents.train import TrainConfig, train

    sweep = sys.modules["sample_efficiency_sweep"]
    fields = dict(sweep.BASE) | {"steps": 400, "learning_starts": 100, "seed": 3}
    plain = train(TrainConfig.from_settings(fields, out=str(tmp_path / "plain")))
    instrumented = json.loads((out / "seed3" / "summary.json").read_text())
    assert instrumented["final_eval_returns"] == plain["final_eval_returns"]
    # a second call skips the finished seed and rewrites the analysis only
    again = fallback.main(argv)
    assert again["intervals"] == 3
    with open(out / "seed3" / "probes.csv", newline="") as stream:
        assert len(list(csv.DictReader(stream))) == 5


def _row(step: int, returns: list[float], drift: float, td: float | None) -> dict:
    return {"step": step, "updates": max(step - 1000, 0), "eval_mean": float(np.mean(returns)),
            "eval_returns": returns, "drift/out": drift,
            "action_change": drift / 10, "td/out": td, "q_slope": None if td is None else 1.0}


def test_analysis_finds_the_fall_and_ranks_its_cause() -> None:
    fallback = load_fallback()
    rows = [_row(0, [-1500, -1500], 0.0, None), _row(1000, [-1400, -1450], 0.01, None),  # warm-up interval
            _row(2000, [-150, -1400], 0.02, 1.0), _row(3000, [-140, -130], 0.01, 1.2),
            _row(4000, [-1300, -1350], 0.30, 4.0), _row(5000, [-1250, -1300], 0.02, 2.0)]
    result = fallback.analyze({0: rows}, drop=200.0, failed_return=-600.0)
    assert result["intervals"] == 4  # the warm-up interval (no update in it) is left out
    assert result["counts"] == {"falls": 1, "rises": 2, "steady": 1}
    (fall,) = result["falls"]
    assert (fall["start"], fall["end"], fall["newly_failed"], fall["recovered"]) == (3000, 4000, 2, 0)
    assert fall["previous_td/out"] == 1.2 and fall["td/out"] == 4.0
    # the largest drift is in the fall: the rank correlation with the change is negative
    assert result["correlations"]["drift/out"] < 0
    assert result["seeds"][0] == {"probes": 6, "best": -135.0, "best_step": 3000, "final": -1275.0, "falls": 1}


def test_spearman_handles_ties_and_degenerate_input() -> None:
    fallback = load_fallback()
    assert fallback.spearman(np.array([1.0, 2.0, 3.0]), np.array([3.0, 2.0, 1.0])) == pytest.approx(-1.0)
    assert fallback.spearman(np.array([1.0, 1.0, 2.0, 3.0]), np.array([1.0, 1.0, 2.0, 3.0])) == pytest.approx(1.0)
    assert fallback.spearman(np.array([1.0, 2.0]), np.array([1.0, 2.0])) is None
    assert fallback.spearman(np.array([1.0, 1.0, 1.0]), np.array([1.0, 2.0, 3.0])) is None


def test_sb3_reference_is_probed_the_same_way(tmp_path: Path) -> None:
    pytest.importorskip("stable_baselines3")
    fallback = load_fallback()
    argv = ["--method", "sb3-ddpg", "--seeds", "3", "--steps", "300", "--learning-starts", "100",
            "--probe-every", "100", "--probe-episodes", "2", "--probe-states", "16",
            "--out", str(tmp_path / "out"), "--work", str(tmp_path / "work")]
    result = fallback.main(argv)
    rows = fallback.read_probes(tmp_path / "out" / "seed3" / "probes.csv")
    assert [r["step"] for r in rows] == [0, 100, 200, 300]
    assert rows[1]["updates"] == 0 and rows[3]["updates"] > rows[2]["updates"] > 0
    assert rows[3]["drift/out"] > 0 and rows[3]["action_change"] > 0 and rows[3]["q_slope"] > 0
    assert rows[3]["td/out"] is None  # SB3 keeps no TD statistics
    assert result["intervals"] == 2 and "SB3 DDPG" in (tmp_path / "out" / "fallback.md").read_text()
