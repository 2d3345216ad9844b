"""studies/feedback_alignment.py: the probes of the feedback learner's alignment along its own run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from neuron_env.agents.registry import make_learner

from neuron_env import Topology
from tests.conftest import load_script

SCRIPT = Path(__file__).resolve().parents[1] / "studies" / "feedback_alignment.py"


@pytest.fixture(scope="module")
def study():
    return load_script(SCRIPT, "feedback_alignment_study")


def filled_learner(feedback: str):
    topology = Topology.mlp(3, [4, 4], 1)
    learner = make_learner("feedback", topology, {"feedback": feedback, "batch_size": 8}, seed=0)
    generator = torch.Generator().manual_seed(0)
    for _ in range(20):
        voltages = torch.rand(2, topology.num_neurons, generator=generator) * 2 - 1
        learner.store(voltages, voltages[:, learner.agent_neuron_index], -torch.rand(2, generator=generator),
                      torch.rand(2, topology.num_neurons, generator=generator), torch.zeros(2))
    learner.update()
    return learner


def test_probe_is_one_for_exact_feedback_and_leaves_the_run_untouched(study) -> None:
    exact = study.probe(filled_learner("weights"), 16)
    assert exact["slope_cosine/h1"] == pytest.approx(1.0) and exact["slope_cosine/h2"] == pytest.approx(1.0)
    assert exact["weight_cosine/h2->out"] == pytest.approx(1.0) and exact["slope_sign/h2"] == 1.0
    learner = filled_learner("random")
    state = learner.generator.get_state()
    row = study.probe(learner, 16)
    assert torch.equal(learner.generator.get_state(), state) and learner.feedback == "random"
    assert set(row) == {"slope_cosine/h1", "slope_sign/h1", "weight_cosine/h1->h2", "slope_cosine/h2",
                        "slope_sign/h2", "weight_cosine/h2->out"}
    assert all(-1.0 <= value <= 1.0 for value in row.values())


def test_a_tiny_run_writes_probes_and_the_report(study, tmp_path: Path) -> None:
    assert study.main(["--hidden", "4", "--seeds", "0", "--steps", "1200", "--probe-every", "100",
                       "--probe-states", "16", "--out", str(tmp_path)]) == 0
    folder = tmp_path / "3-4-1" / "seed0"
    assert json.loads((folder / "summary.json").read_text())["status"] == "completed"
    assert len((folder / "probes.csv").read_text().splitlines()) == 1 + 2  # 1100, 1200: updates start after 1000
    table = json.loads((tmp_path / "alignment.json").read_text())
    assert set(table["3-4-1"]["measures"]) == {"slope_cosine/h1", "slope_sign/h1", "weight_cosine/h1->out"}
    assert (tmp_path / "alignment.png").stat().st_size > 0 and "h1" in (tmp_path / "alignment.md").read_text()
