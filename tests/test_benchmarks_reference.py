"""benchmarks/reference_ddpg.py (the plain-torch DDPG the benchmarks time) and benchmarks/benchmark_settings.py.

The reference: its update follows CleanRL's (critic MSE to the target, actor loss −Q(s, μ(s)),
Polyak targets), learns on a fixed batch, and its loop makes one update per task step after
learning_starts. The settings: the network, learner-variant and batch forms the scripts read.
Nothing here asserts a speed.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from .conftest import load_script

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
reference = load_script(BENCHMARKS / "reference_ddpg.py", "reference_ddpg")
specs = load_script(BENCHMARKS / "benchmark_settings.py", "benchmark_settings")


@pytest.fixture
def agent() -> object:
    config = reference.ReferenceConfig(hidden=(32, 32), batch_size=64, buffer_size=500, seed=3)
    built = reference.ReferenceDDPG(obs_dim=5, act_dim=2, config=config)
    reference.fill_with_random_transitions(built, 500, seed=3)
    return built


def test_update_reduces_the_critic_loss_on_a_fixed_batch(agent, one_thread) -> None:
    batch = agent.buffer.sample(64)
    before = agent.critic_loss(batch).item()
    for _ in range(150):
        stats = agent.update(batch)
    assert set(stats) == {"critic_loss", "actor_loss"} and agent.num_updates == 150
    assert agent.critic_loss(batch).item() < 0.7 * before


def test_one_update_is_cleanrl_s_critic_step_actor_step_and_polyak(agent) -> None:
    batch = agent.buffer.sample(64)
    actor = [p.detach().clone() for p in agent.actor.parameters()]
    target_actor = [p.detach().clone() for p in agent.target_actor.parameters()]
    target_critic = [p.detach().clone() for p in agent.target_critic.parameters()]
    with torch.no_grad():
        next_q = agent.target_critic(batch.next_observations, agent.target_actor(batch.next_observations)).view(-1)
        expected_target = batch.rewards + (1 - batch.dones) * agent.config.gamma * next_q
        expected_loss = ((agent.critic(batch.observations, batch.actions).view(-1) - expected_target) ** 2).mean()
    stats = agent.update(batch)
    assert stats["critic_loss"].item() == pytest.approx(expected_loss.item(), rel=1e-6)
    assert all(not torch.equal(a, b) for a, b in zip(actor, agent.actor.parameters(), strict=True))
    tau = agent.config.tau
    for before, after, online in ((target_actor, agent.target_actor, agent.actor),
                                  (target_critic, agent.target_critic, agent.critic)):
        for old, new, param in zip(before, after.parameters(), online.parameters(), strict=True):
            torch.testing.assert_close(new, tau * param.detach() + (1 - tau) * old)


def test_policy_frequency_two_steps_the_actor_every_second_update(agent) -> None:
    agent.config.policy_frequency = 2
    assert set(agent.update()) == {"critic_loss"}
    assert set(agent.update()) == {"critic_loss", "actor_loss"}


def test_networks_have_the_widths_and_the_action_bounds() -> None:
    config = reference.ReferenceConfig(hidden=(8, 4), activation="relu")
    agent = reference.ReferenceDDPG(3, 1, config, low=[-2.0], high=[2.0])
    linear = [m for m in agent.actor.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linear] == [(3, 8), (8, 4), (4, 1)]
    linear = [m for m in agent.critic.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linear] == [(4, 8), (8, 4), (4, 1)]
    action = agent.act([0.1, 0.2, 0.3])
    assert action.shape == (1,) and -2.0 <= action[0] <= 2.0
    with pytest.raises(ValueError, match="activation"):
        reference.ReferenceConfig(activation="gelu").validate()


def test_loop_updates_once_per_step_after_learning_starts(one_thread) -> None:
    loop = reference.ReferenceLoop("Pendulum-v1", reference.ReferenceConfig(hidden=(16, 16), batch_size=8))
    wall = loop.run(steps=230, learning_starts=20)  # one Pendulum episode is 200 steps: a truncation and a reset
    loop.close()
    assert wall > 0 and loop.agent.num_updates == 210 and loop.agent.buffer.size == 230
    assert loop.agent.buffer.dones.sum() == 0  # truncation is not termination


def test_network_specs_learner_variants_and_batches() -> None:
    spec = specs.NetworkSpec.parse("HalfCheetah-v5:64-64")
    assert (spec.task, spec.hidden, str(spec)) == ("HalfCheetah-v5", (64, 64), "HalfCheetah-v5:64-64")
    assert specs.NetworkSpec.parse("Pendulum-v1", {"Pendulum-v1": (32,)}).hidden == (32,)
    assert specs.NetworkSpec.parse("Pendulum-v1:").hidden == (64, 64)  # no sizes after the colon: the fallback
    for bad in (":64", "Pendulum-v1:64-0", "Pendulum-v1:64-x"):
        with pytest.raises(ValueError, match="e.g."):
            specs.NetworkSpec.parse(bad)
    joint = specs.LearnerVariant.parse("feedback:critic=joint,lr_actor=3e-4")
    assert joint.options == (("critic", "joint"), ("lr_actor", 3e-4))
    assert joint.method == "local-feedback[critic=joint,lr_actor=0.0003]" and joint.default_batch() == 256
    assert joint.options_at(64, 1000) == {"critic": "joint", "lr_actor": 3e-4, "batch_size": 64, "buffer_size": 1000}
    assert specs.LearnerVariant.parse("ddpg").method == "local-ddpg"
    assert specs.LearnerVariant.parse("es").default_batch() is None
    with pytest.raises(ValueError, match="no option 'critc'"):
        specs.LearnerVariant.parse("feedback:critc=joint")
    with pytest.raises(ValueError, match="unknown"):
        specs.LearnerVariant.parse("sgd")
    assert specs.parse_batches(["own", "64", "own"]) == (None, 64)
    with pytest.raises(ValueError, match="own"):
        specs.parse_batches(["big"])
    ddpg, feedback, es = (specs.LearnerVariant.parse(name) for name in ("ddpg", "feedback", "es"))
    plan = specs.batch_plan([ddpg, feedback, es], (None, 64))
    assert plan == {256: [(feedback, "own default"), (es, "no batch")],
                    64: [(ddpg, "own default"), (feedback, "fixed")]}
    assert specs.batch_plan([es], (None,)) == {64: [(es, "no batch")]}
