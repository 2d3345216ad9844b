"""The shared learner core: one set of defaults per learner, replay sampling, resume on the shipped configs."""

from __future__ import annotations

import ast
import dataclasses
import io
from pathlib import Path

import pytest
import torch
from neuron_env.agents import LearnerConfigError, LocalDDPG, ReplayBuffer
from neuron_env.agents.registry import LEARNERS, learner_class

from neuron_env import Topology

from .conftest import assert_states_equal

AGENTS = Path(__file__).resolve().parents[1] / "agents"
RULE_MODULES = {"local_ddpg", "feedback", "coagent", "es"}


@pytest.mark.parametrize("name", LEARNERS)
def test_every_learner_has_one_set_of_defaults_its_config(name: str) -> None:
    cls = learner_class(name)
    learner = cls(Topology.mlp(3, [4, 4], 1))
    assert learner.config == cls.config_class()
    for field in dataclasses.fields(cls.config_class):  # what the learner runs with is the config's value
        if field.name in ("freeze_hidden", "critic", "granularity", "lr_actor_hidden", "top_directions",
                          "trace_decay_critic", "noise", "noise_scale", "noise_scale_hidden", "feedback_scale",
                          "buffer_size"):
            continue  # mapped or resolved before they are stored (tested elsewhere)
        if hasattr(learner, field.name):
            assert getattr(learner, field.name) == getattr(cls.config_class(), field.name), field.name


@pytest.mark.parametrize("name", LEARNERS)
def test_an_option_the_learner_lacks_is_refused_by_name(name: str) -> None:
    with pytest.raises(LearnerConfigError, match=f"not_an_option is not an option of learner '{name}'"):
        learner_class(name)(Topology.mlp(3, [4], 1), not_an_option=1)


def test_shipped_feedback_and_ddpg_defaults_are_their_own() -> None:
    feedback, ddpg = learner_class("feedback")(Topology.mlp(3, [4], 1)), LocalDDPG(Topology.mlp(3, [4], 1))
    assert (feedback.batch_size, feedback.actor_optimizer, feedback.lr_actor, feedback.critic_hidden,
            feedback.critic_context, feedback.replay_voltages) == (256, "adam", 1e-3, 64, "observation", "current")
    assert (ddpg.batch_size, ddpg.actor_optimizer, ddpg.lr_actor, ddpg.critic_hidden, ddpg.critic_context,
            ddpg.replay_voltages, ddpg.critic_kind) == (64, "sgd", 5e-3, 32, "task", "stored", "mlp")


def test_no_rule_module_imports_another_rule_module() -> None:
    for module in RULE_MODULES:
        tree = ast.parse((AGENTS / f"{module}.py").read_text())
        imported = {node.module.rsplit(".", 1)[-1] for node in ast.walk(tree)
                    if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("neuron_env.agents")}
        assert not imported & (RULE_MODULES - {module}), (module, imported)


# ------------------------------------------------------------------------------ replay sampling
def filled_buffer(capacity: int, rows: int) -> ReplayBuffer:
    """Row ``i`` written has reward ``i``, so a sample shows which rows it drew."""
    buffer = ReplayBuffer(capacity, 1, 1, "cpu", torch.float64)
    for i in range(rows):
        one = torch.full((1, 1), float(i), dtype=torch.float64)
        buffer.add(one, one, torch.tensor([float(i)], dtype=torch.float64), one, torch.zeros(1, dtype=torch.float64))
    return buffer


def test_replay_samples_uniformly_over_the_filled_part_only() -> None:
    buffer = filled_buffer(100, 4)
    generator = torch.Generator().manual_seed(0)
    draws = torch.cat([buffer.sample(64, generator).rewards for _ in range(125)]).long()  # 8000 draws
    counts = torch.bincount(draws, minlength=100)
    assert counts[4:].sum() == 0  # never an unwritten row
    assert counts[:4].min() > 1800 and counts[:4].max() < 2200  # each ~2000 (sd ~39)
    first, second = buffer.sample(64, generator).rewards, buffer.sample(64, generator).rewards
    assert not torch.equal(first, second)  # a fresh draw each time, no fixed index


def test_replay_after_wrap_around_samples_every_slot_with_the_newest_rows() -> None:
    buffer = filled_buffer(10, 13)  # rows 10, 11, 12 overwrote slots 0, 1, 2
    generator = torch.Generator().manual_seed(1)
    seen = set(torch.cat([buffer.sample(50, generator).rewards for _ in range(20)]).long().tolist())
    assert seen == set(range(3, 13))


# ------------------------------------------------------------------ resume on the shipped config
@pytest.mark.parametrize("name", ["ddpg", "feedback"])
def test_shipped_config_round_trip_continues_bitwise(name: str) -> None:
    """Critics, their flat targets, Adam moments of critic and actor, noise and generator all survive a save."""
    topology = Topology.mlp(3, [5, 4], 1)

    def build(seed: int) -> object:
        learner = learner_class(name)(topology, seed=seed)
        generator = torch.Generator().manual_seed(seed)
        v = torch.randn(300, topology.num_neurons, generator=generator)
        learner.store(v, torch.rand(300, topology.num_agents, generator=generator) * 2 - 1,
                      torch.randn(300, generator=generator), v, torch.zeros(300))
        return learner

    a = build(2)
    for _ in range(4):
        a.update()
    a.act(torch.randn(3, topology.num_neurons))  # the noise process has a state
    stream = io.BytesIO()
    torch.save(a.state_dict(), stream)
    stream.seek(0)
    b = build(7)
    b.load_state_dict(torch.load(stream, weights_only=True))
    for _ in range(3):
        a.update()
        b.update()
    assert_states_equal(a.state_dict(), b.state_dict())
