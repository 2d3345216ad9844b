"""The ``joint`` critic kind (one MLP per group over the group's actions) against autograd and torch's Adam."""

from __future__ import annotations

import torch
from neuron_env.agents import FeedbackDDPG, LocalDDPG
from neuron_env.agents.critics import CRITICS, joint_init
from neuron_env.agents.tensors import GroupBatch

from neuron_env import Topology

S, C, H, B, GAMMA, LR = 3, 4, 5, 9, 0.97, 1e-2


def q_autograd(params: dict[str, torch.Tensor], x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    h1 = torch.relu(x @ params["w1x"] + a @ params["w1a"] + params["b1"])
    return torch.relu(h1 @ params["w2"] + params["b2"]) @ params["w3"] + params["b3"]


def test_joint_update_is_a_td_step_by_torch_adam_then_the_slopes_of_the_updated_critic() -> None:
    g = torch.Generator().manual_seed(0)
    params = joint_init(S, C, 0, g, torch.float64, H)
    target = {k: v.clone() + 0.01 for k, v in params.items()}

    def rand(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g, dtype=torch.float64)

    batch = GroupBatch(x=rand(B, C), a=rand(B, S), reward=rand(B), not_done=(rand(B) > 0).double(),
                       x_next=rand(B, C), a_next=rand(B, S), pre1=rand(B, 2), mu=rand(B, S), dmu=rand(B, S),
                       mask1=None)
    reference = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    optimizer = torch.optim.Adam(list(reference.values()), lr=LR)
    kind, state = CRITICS["joint"], {}
    for _ in range(3):
        td, slope = kind.update(params, target, state, batch, GAMMA, LR)
        with torch.no_grad():
            y = batch.reward + GAMMA * batch.not_done * q_autograd(target, batch.x_next, batch.a_next)
        optimizer.zero_grad()
        expected_td = y - q_autograd(reference, batch.x, batch.a)
        (expected_td ** 2).mean().backward()
        optimizer.step()
        torch.testing.assert_close(td, expected_td.detach()[:, None].expand(B, S), atol=1e-12, rtol=0)
        for name, value in reference.items():
            torch.testing.assert_close(params[name], value.detach(), atol=1e-12, rtol=0)
        at_mu = batch.mu.clone().requires_grad_(True)
        (expected_slope,) = torch.autograd.grad(q_autograd(reference, batch.x, at_mu).sum(), at_mu)
        torch.testing.assert_close(slope, expected_slope, atol=1e-12, rtol=0)
    # the unfused functions agree with the fused update
    fresh = joint_init(S, C, 0, torch.Generator().manual_seed(0), torch.float64, H)
    fused, unfused = {k: v.clone() for k, v in fresh.items()}, {k: v.clone() for k, v in fresh.items()}
    td_fused, slope_fused = CRITICS["joint"].fused_update(fused, target, {}, batch, GAMMA, LR)
    td_plain = kind.td_error(unfused, target, batch, GAMMA)
    kind.critic_step(unfused, {}, batch, td_plain, LR)
    torch.testing.assert_close(td_fused, td_plain, atol=1e-12, rtol=0)
    torch.testing.assert_close(slope_fused, kind.action_gradient(unfused, batch), atol=1e-12, rtol=0)


def test_a_group_critic_trains_and_round_trips_in_both_replay_learners() -> None:
    topology = Topology.mlp(5, [6, 6], 3)
    for cls in (FeedbackDDPG, LocalDDPG):
        learner = cls(topology, critic="joint", batch_size=16, seed=1)
        v = torch.randn(64, topology.num_neurons, generator=torch.Generator().manual_seed(2))
        learner.store(v, torch.rand(64, topology.num_agents) * 2 - 1, torch.randn(64), v, torch.zeros(64))
        for _ in range(3):
            stats = learner.update()
        assert torch.isfinite(stats["td_error"]) and all(torch.isfinite(w).all() for w in learner.actor)
        copy = cls(topology, critic="joint", batch_size=16, seed=5)
        copy.load_state_dict(learner.state_dict())
        learner.update()
        copy.update()
        assert all(torch.equal(a, b) for a, b in zip(learner.actor, copy.actor, strict=True))
