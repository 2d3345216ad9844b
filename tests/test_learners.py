"""The learner interface across every registered learner: protocol, trainer, resume, CLI, compare."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from neuron_env.agents import LearnerConfigError
from neuron_env.agents.learner import Learner
from neuron_env.agents.registry import LEARNERS, learner_class, learner_options, make_learner
from neuron_env.agents.train import TrainConfig, load_checkpoint, train
from neuron_env.baselines.compare import METHODS, local_method

from neuron_env import Topology
from neuron_env.cli import main

#: Small options per learner so that a few hundred steps include several updates (ES: several iterations).
SMALL: dict[str, dict[str, object]] = {
    "ddpg": {"critic": "mlp", "critic_hidden": 4, "batch_size": 16, "buffer_size": 1000},
    "feedback": {"critic_hidden": 4, "batch_size": 16, "buffer_size": 1000},
    "coagent": {},
    "weight-max": {},
    "es": {"learner_options": {"num_directions": 1}},
    "eprop": {"critic_hidden": 4, "batch_size": 16, "buffer_size": 1000},
}


def tiny(out: Path, learner: str, **overrides: object) -> TrainConfig:
    base: dict[str, object] = {
        "task": "Pendulum-v1", "learner": learner, "hidden": [4], "steps": 400, "learning_starts": 40,
        "eval_every": 0, "eval_episodes": 1, "checkpoint_every": 200, "out": str(out),
        "progress": False, "tensorboard": False, **SMALL[learner],
    }
    base.update(overrides)
    return TrainConfig.from_settings(base)


@pytest.mark.parametrize("name", LEARNERS)
def test_every_registered_learner_implements_the_protocol(name: str) -> None:
    cls = learner_class(name)
    assert cls.name == name
    assert "freeze_hidden" in learner_options(name)
    learner = make_learner(name, Topology.mlp(3, [4, 4], 1), {"seed": 0})
    assert isinstance(learner, Learner)
    assert isinstance(cls.off_policy, bool)
    voltages = torch.zeros(2, learner.topology.num_neurons)
    actions = learner.act(voltages, explore=False)
    assert actions.shape == (2, learner.topology.num_agents)


def test_unknown_learner_and_foreign_options_are_named(tmp_path: Path) -> None:
    with pytest.raises(LearnerConfigError, match="learner='nope'"):
        learner_class("nope")
    with pytest.raises(LearnerConfigError, match="not options of learner 'es'"):
        train(tiny(tmp_path, "es", learner_options={"critic_hidden": 3}))


@pytest.mark.parametrize("name", [name for name in LEARNERS if learner_class(name).off_policy])
def test_default_checkpoint_leaves_the_replay_out_and_resume_refills_it(
        tmp_path: Path, name: str, capsys: pytest.CaptureFixture) -> None:
    first = train(tiny(tmp_path / "small", name, steps=200))
    # a per-tick learner stores (and updates) once per tick: depth ticks per task step of the MLP
    ticks = 1 if first["granularity"] == "settled" else 2
    train(tiny(tmp_path / "full", name, steps=200, checkpoint_replay=True))
    small, full = load_checkpoint(tmp_path / "small"), load_checkpoint(tmp_path / "full")
    assert "buffer" not in small["learner"] and len(full["learner"]["buffer"]["rewards"]) == 200 * ticks
    assert (tmp_path / "small" / "checkpoint.pt").stat().st_size < (tmp_path / "full" / "checkpoint.pt").stat().st_size
    capsys.readouterr()
    resumed = train(tiny(tmp_path / "ignored", name, steps=300), resume=tmp_path / "small")
    assert "without a replay buffer" in capsys.readouterr().err
    # learning_starts (40) steps refill the buffer by the policy, then one update per task step
    assert resumed["status"] == "completed" and resumed["transitions"] == 100 * ticks
    assert resumed["updates"] - small["learner"]["num_updates"] == (100 - 40) * ticks
    # the summary says the run is not the uninterrupted one, and a later exact resume keeps saying so
    assert resumed["resumes_without_replay"] == [200]
    assert load_checkpoint(tmp_path / "small")["trainer"]["resumes_without_replay"] == [200]


@pytest.mark.parametrize("name", LEARNERS)
def test_resume_gives_the_same_result_as_an_uninterrupted_run(tmp_path: Path, name: str) -> None:
    whole = train(tiny(tmp_path / "whole", name))
    # on-policy learners resume exactly from the default checkpoint; off-policy ones need their replay
    first = train(tiny(tmp_path / "split", name, steps=200, checkpoint_replay=learner_class(name).off_policy))
    assert first["steps"] == 200
    resumed = train(tiny(tmp_path / "ignored", name), resume=tmp_path / "split")
    assert resumed["steps"] == 400 and resumed["updates"] == whole["updates"] > 0
    assert resumed["final_eval_return_mean"] == whole["final_eval_return_mean"]
    a = load_checkpoint(tmp_path / "whole")["weights"]
    b = load_checkpoint(tmp_path / "split")["weights"]
    for wa, wb in zip(a["blocks"] + a["biases"], b["blocks"] + b["biases"], strict=True):
        assert torch.equal(wa, wb)


@pytest.mark.parametrize("name", LEARNERS)
def test_freeze_hidden_keeps_the_hidden_weights_through_the_trainer(tmp_path: Path, name: str) -> None:
    train(tiny(tmp_path / "run", name, freeze_hidden=True))
    trained = load_checkpoint(tmp_path / "run")["weights"]
    from neuron_env.topology import NetworkWeights

    init = NetworkWeights.init(Topology.mlp(3, [4], 1), seed=0)
    assert torch.equal(trained["blocks"][0], init.blocks[0]) and torch.equal(trained["biases"][0], init.biases[0])
    assert not torch.equal(trained["blocks"][1], init.blocks[1])  # the output learned


@pytest.mark.parametrize("name", [n for n in LEARNERS if n != "ddpg"])
def test_cli_trains_every_learner_and_enjoy_runs_it(tmp_path: Path, name: str,
                                                    capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / name
    assert main(["train", "--learner", name, "--task", "Pendulum-v1", "--hidden", "4", "--steps", "220",
                 "--eval-every", "0", "--eval-episodes", "1", "--learning-starts", "20", "--no-progress",
                 "--no-tensorboard", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["learner"] == name and summary["status"] == "completed"
    assert main(["enjoy", "--checkpoint", str(out), "--episodes", "1"]) == 0
    assert "episode 0: return" in capsys.readouterr().out


def test_cli_refuses_an_option_the_learner_does_not_have(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["train", "--learner", "es", "--critic", "linear", "--out", str(tmp_path / "x")]) == 2
    error = capsys.readouterr().err
    assert "--critic" in error and "--learner es" in error
    assert not (tmp_path / "x").exists()


def test_compare_names_every_learner_and_its_frozen_control() -> None:
    assert local_method("local-mlp") == ("ddpg", {"critic": "mlp"})
    assert local_method("local-es-frozen") == ("es", {"freeze_hidden": True})
    assert local_method("local-feedback-ceiling") == ("feedback", {"feedback": "weights"})
    for name in LEARNERS:
        if name != "ddpg":
            assert f"local-{name}" in METHODS and f"local-{name}-frozen" in METHODS


def test_replay_voltages_current_settles_the_stored_observation_with_the_current_network() -> None:
    topology = Topology.mlp(3, [4, 4], 1)
    learner = make_learner("ddpg", topology, {"replay_voltages": "current", "batch_size": 8}, seed=1)
    voltages = torch.zeros(5, topology.num_neurons)
    voltages[:, :3] = torch.randn(5, 3, generator=torch.Generator().manual_seed(0))
    actions = learner.act(learner.settle(voltages), explore=True)  # noisy: differ from μ
    learner.store(voltages, actions, torch.zeros(5), voltages, torch.zeros(5))
    batch = learner.sample()
    expected = learner.settle(batch.voltages)
    torch.testing.assert_close(batch.voltages, expected)  # current voltages, not the noisy acted ones
    stored = {tuple(row.tolist()) for row in actions}
    assert all(tuple(row.tolist()) in stored for row in batch.actions)  # the critics still score stored actions
    with pytest.raises(LearnerConfigError, match="replay_voltages"):
        make_learner("ddpg", Topology.recurrent(3, 4, 1), {"replay_voltages": "current"})
    with pytest.raises(LearnerConfigError, match="replay_voltages='later'"):
        make_learner("ddpg", topology, {"replay_voltages": "later"})


def test_feedback_defaults_are_the_reference_framework() -> None:
    config = learner_class("feedback").config_class()
    assert (config.replay_voltages, config.actor_optimizer, config.noise_scale_hidden, config.critic_context) == (
        "current", "adam", 0.0, "observation")
    summary_config = TrainConfig(learner="feedback")
    from neuron_env.agents.train import learner_config

    assert learner_config(summary_config).lr_actor == 1e-3  # the ddpg learner's default does not override it
    assert learner_config(TrainConfig(learner="feedback", learner_options={"lr_actor": 2e-3})).lr_actor == 2e-3


def test_a_flag_given_explicitly_reaches_the_learner_even_at_the_trainers_default(tmp_path: Path) -> None:
    out = tmp_path / "fb"
    assert main(["train", "--learner", "feedback", "--critic-context", "task", "--hidden", "4", "--steps", "60",
                 "--learning-starts", "20", "--batch-size", "8", "--eval-every", "0", "--eval-episodes", "1",
                 "--no-progress", "--no-tensorboard", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["learner_config"]["critic_context"] == "task"  # "task" is TrainConfig's default too
    assert summary["learner_config"]["replay_voltages"] == "current"  # not given: the learner's own default


@pytest.mark.parametrize("uniform", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", LEARNERS)
def test_act_settled_equals_acting_level_by_level_through_the_env(name: str, dtype: torch.dtype, uniform: bool) -> None:
    """One ``act_settled`` call == ``act(level=1)``, the env's tick, ``act(level=2)``, ... (draws and rounding)."""
    from neuron_env import NeuronVecEnv

    topology = Topology.mlp(3, [5, 4], 1)
    learners = [make_learner(name, topology, {"seed": 7}, dtype=dtype) for _ in range(2)]
    env = NeuronVecEnv("Pendulum-v1", topology, num_envs=3)
    start, _ = env.reset(seed=1)
    start[:, 3:] = torch.rand(3, topology.num_agents) * 2 - 1  # voltages left from a previous task step
    before = start.clone()
    fused = learners[0].act_settled(start, env.delay, uniform=uniform)
    assert torch.equal(start, before)  # the caller's voltages are not written
    voltages = start.clone()
    for level in range(1, env.delay + 1):
        actions = learners[1].act(voltages, level=level, uniform=uniform)
        voltages = voltages.clone()
        voltages[:, learners[1].agent_neuron_index] = actions.to(voltages.dtype)  # the env's tick (leak-free)
    assert fused.dtype == actions.dtype and torch.equal(fused, actions)
