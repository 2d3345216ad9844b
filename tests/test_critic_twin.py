"""TD3's framework pieces: the ``twin`` critic (clipped double Q) and target policy smoothing.

The twin critic is checked against autograd and torch's Adam on two independent ``joint`` critics,
the smoothing against its definition, and both in the learners that take them (exact resume, no
generator draws when off, a clear refusal where unsupported).
"""

from __future__ import annotations

import pytest
import torch
from neuron_env.agents import FeedbackDDPG, LearnerConfigError, LocalDDPG
from neuron_env.agents.critics import CRITICS, joint_init, twin_init
from neuron_env.agents.eprop import EpropLearner
from neuron_env.agents.tensors import GroupBatch

from neuron_env import Topology

S, C, H, B, GAMMA, LR = 3, 4, 5, 9, 0.97, 1e-2


def q_autograd(params: dict[str, torch.Tensor], x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    h1 = torch.relu(x @ params["w1x"] + a @ params["w1a"] + params["b1"])
    return torch.relu(h1 @ params["w2"] + params["b2"]) @ params["w3"] + params["b3"]


def random_batch(generator: torch.Generator) -> GroupBatch:
    def rand(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator, dtype=torch.float64)

    return GroupBatch(x=rand(B, C), a=rand(B, S), reward=rand(B), not_done=(rand(B) > 0).double(),
                      x_next=rand(B, C), a_next=rand(B, S), pre1=rand(B, 2), mu=rand(B, S), dmu=rand(B, S),
                      mask1=None)


def test_twin_init_is_two_joint_critics_drawn_in_turn() -> None:
    twin = twin_init(S, C, 0, torch.Generator().manual_seed(3), torch.float64, H)
    generator = torch.Generator().manual_seed(3)
    first, second = (joint_init(S, C, 0, generator, torch.float64, H) for _ in range(2))
    for name in first:
        assert torch.equal(twin[name][0], first[name]) and torch.equal(twin[name][1], second[name])


def test_twin_update_steps_both_critics_to_the_clipped_double_q_target_by_torch_adam() -> None:
    generator = torch.Generator().manual_seed(0)
    params = twin_init(S, C, 0, generator, torch.float64, H)
    batch = random_batch(generator)
    # the second target critic mirrors the first about its median: higher on half the rows, lower on the
    # others, so the min must pick per row
    target = {name: value.clone() for name, value in params.items()}
    for name in target:
        target[name][1] = target[name][0]
    first = q_autograd({name: value[0] for name, value in target.items()}, batch.x_next, batch.a_next)
    target["w3"][1] = -target["w3"][0]
    target["b3"][1] = 2 * first.median() - target["b3"][0]
    halves = [{name: value[k].clone().requires_grad_(True) for name, value in params.items()} for k in range(2)]
    target_halves = [{name: value[k] for name, value in target.items()} for k in range(2)]
    optimizer = torch.optim.Adam([p for half in halves for p in half.values()], lr=LR)
    kind, state = CRITICS["twin"], {}
    next_q = torch.stack([q_autograd(half, batch.x_next, batch.a_next) for half in target_halves])
    assert (next_q[0] < next_q[1]).any() and (next_q[0] > next_q[1]).any()
    y = batch.reward + GAMMA * batch.not_done * next_q.min(dim=0).values
    for _ in range(3):
        td, slope = kind.update(params, target, state, batch, GAMMA, LR)
        optimizer.zero_grad()
        expected = [y - q_autograd(half, batch.x, batch.a) for half in halves]
        sum((d ** 2).mean() for d in expected).backward()
        optimizer.step()
        torch.testing.assert_close(td, expected[0].detach()[:, None].expand(B, S), atol=1e-12, rtol=0)
        for k, half in enumerate(halves):
            for name, value in half.items():
                torch.testing.assert_close(params[name][k], value.detach(), atol=1e-12, rtol=0)
        at_mu = batch.mu.clone().requires_grad_(True)
        (expected_slope,) = torch.autograd.grad(q_autograd(halves[0], batch.x, at_mu).sum(), at_mu)
        torch.testing.assert_close(slope, expected_slope, atol=1e-12, rtol=0)
    # the monitoring TD error is the first critic's, at its current parameters
    now = (y - q_autograd(halves[0], batch.x, batch.a)).detach()[:, None].expand(B, S)
    torch.testing.assert_close(kind.td_error(params, target, batch, GAMMA), now, atol=1e-12, rtol=0)
    with pytest.raises(NotImplementedError, match="twin_update"):
        kind.critic_step(params, {}, batch, td, LR)


def _filled(cls: type, topology: Topology, **options: object) -> FeedbackDDPG | LocalDDPG:
    learner = cls(topology, batch_size=16, seed=1, **options)
    v = torch.randn(64, topology.num_neurons, generator=torch.Generator().manual_seed(2))
    learner.store(v, torch.rand(64, topology.num_agents) * 2 - 1, torch.randn(64), v, torch.zeros(64))
    return learner


@pytest.mark.parametrize("cls", [FeedbackDDPG, LocalDDPG])
def test_td3_framework_trains_and_resumes_exactly_in_both_replay_learners(cls: type) -> None:
    topology = Topology.mlp(5, [6, 6], 3)
    options = {"critic": "twin", "target_noise": 0.2, "policy_delay": 2}
    learner = _filled(cls, topology, **options)
    for _ in range(3):
        stats = learner.update()
    assert torch.isfinite(stats["td_error"]) and all(torch.isfinite(w).all() for w in learner.actor)
    copy = cls(topology, batch_size=16, seed=5, **options)
    copy.load_state_dict(learner.state_dict())
    for _ in range(2):
        learner.update()
        copy.update()
    assert all(torch.equal(a, b) for a, b in zip(learner.actor, copy.actor, strict=True))
    assert all(torch.equal(learner.critic[-1][name], copy.critic[-1][name]) for name in learner.critic[-1])


@pytest.mark.parametrize("cls", [FeedbackDDPG, LocalDDPG])
def test_target_smoothing_is_clipped_noise_on_output_targets_only_and_absent_by_default(cls: type) -> None:
    topology = Topology.mlp(5, [6, 6], 3)
    plain, smoothed = _filled(cls, topology, critic="joint"), _filled(cls, topology, critic="joint", target_noise=0.2)
    a_next = torch.full((4000, 3), 0.95, dtype=plain.dtype)
    output = len(plain.layouts) - 1
    assert plain._target_action(a_next, output) is a_next
    assert smoothed._target_action(a_next[:, :1].expand(-1, 6), 0).data_ptr() == a_next.data_ptr()  # hidden: as is
    state = smoothed.generator.get_state()
    noisy = smoothed._target_action(a_next, output)
    assert not torch.equal(smoothed.generator.get_state(), state)
    moved = noisy - a_next
    assert moved.max() <= 0.05 + 1e-6 and moved.min() >= -0.5 - 1e-6  # clipped to ±0.5, then to tanh's range
    assert (noisy == 1.0).any() and 0.1 < moved[moved < 0].abs().mean() < 0.2
    # reading slopes draws nothing
    state = smoothed.generator.get_state()
    smoothed.action_slopes(torch.randn(8, topology.num_neurons, dtype=smoothed.dtype))
    assert torch.equal(smoothed.generator.get_state(), state)


def test_eprop_refuses_the_twin_critic_and_target_smoothing_naming_the_learners_that_take_them() -> None:
    topology = Topology.mlp(5, [6], 3)
    for options in ({"critic": "twin"}, {"target_noise": 0.2}):
        with pytest.raises(LearnerConfigError, match="options of the 'feedback' and 'ddpg' learners"):
            EpropLearner(topology, seed=0, **options)


def test_bad_target_noise_is_refused_with_the_fix() -> None:
    with pytest.raises(LearnerConfigError, match=r"target_noise=-0.1 .*TD3 uses 0.2 and 0.5"):
        FeedbackDDPG(Topology.mlp(5, [6], 3), target_noise=-0.1)
