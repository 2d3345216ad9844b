"""The locomotion diagnosis (``studies/locomotion_diagnosis.py``): its measurements on known inputs and on real runs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from neuron_env.agents import TrainConfig, train

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "studies"))
import locomotion_diagnosis as diagnosis  # noqa: E402

pytest.importorskip("mujoco")


def test_discounted_returns_and_the_steps_whose_tail_is_known() -> None:
    np.testing.assert_allclose(diagnosis.discounted_returns(np.array([1.0, 2.0, 3.0]), 0.5), [2.75, 3.5, 3.0])
    assert diagnosis.known_tail(5, True, 3).all()
    np.testing.assert_array_equal(diagnosis.known_tail(5, False, 3), [True, True, True, False, False])


def test_relative_change_is_per_layer() -> None:
    initial = [torch.ones(2, 2), torch.ones(3)]
    assert diagnosis.relative_change([torch.full((2, 2), 3.0), torch.ones(3)], initial) == [2.0, 0.0]


@pytest.mark.parametrize("critic", ["joint", "twin"])
def test_a_finished_run_is_rolled_out_with_its_own_critic_and_initial_weights(tmp_path: Path, critic: str) -> None:
    work = tmp_path / "runs" / "phase"
    for method, freeze in (("feedback-joint-ref", False), ("feedback-joint-ref-frozen", True)):
        train(TrainConfig(task="HalfCheetah-v5", learner="feedback", hidden=[8], steps=300, learning_starts=100,
                          eval_every=0, eval_episodes=1, seed=1, device="cpu", threads=1,
                          out=str(work / f"{method}-s1"),
                          learner_options={"critic": critic, "freeze_hidden": freeze, "batch_size": 16}))
    config = diagnosis.DiagnosisConfig(phases=["phase"], work=str(tmp_path / "runs"), out=str(tmp_path / "out"),
                                       episodes=1, tail=500)
    rows = diagnosis.run(config)["HalfCheetah-v5"]
    learned, frozen = rows["feedback-joint-ref"][0], rows["feedback-joint-ref-frozen"][0]
    assert learned["length"] == 1000 and np.isfinite(learned["q_bias"])
    # 200 updates move every learned layer; the frozen floor's hidden layer stays at its initial weights
    assert all(change > 0 for change in learned["weight_change"])
    assert frozen["weight_change"][0] == 0.0 and frozen["weight_change"][1] > 0
    assert 0.0 <= learned["saturated"][0] <= 1.0 and len(learned["saturated"]) == 1
    table = (tmp_path / "out" / "table.md").read_text()
    assert "| HalfCheetah-v5 | feedback-joint-ref | " in table
    assert json.loads((tmp_path / "out" / "table.json").read_text())["config"]["episodes"] == 1
