"""E2 gradient-agreement: the two gradients on hand-checked cases, and a tiny end-to-end run."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch

pytest.importorskip("stable_baselines3")
pytest.importorskip("matplotlib")

from neuron_env.agents import LocalDDPG  # noqa: E402
from neuron_env.baselines.errors import BaselineConfigError  # noqa: E402
from neuron_env.baselines.experiments import gradient_agreement as e2  # noqa: E402
from neuron_env.baselines.sb3_ddpg import BaselineConfig, build_model  # noqa: E402

from neuron_env.topology import Topology  # noqa: E402


@pytest.fixture(scope="module")
def model():
    model, _ = build_model(BaselineConfig(hidden=(6, 5), steps=64, learning_starts=64))
    model.learn(64)  # random actions fill the replay buffer; no training
    return model


def test_global_gradient_rows_follow_the_chain_rule(model):
    obs = torch.as_tensor(model.replay_buffer.observations[:7, 0])
    grads = e2.global_gradients(model, obs)
    assert [g.shape for g in grads.values()] == [(6, 4), (5, 7), (1, 6)]
    # output layer: row n = mean_s dQ/da_n * tanh'(.) * [h2, 1]
    mu = model.actor.mu
    with torch.no_grad():
        h2 = mu[:4](obs)
        out = mu(obs)
    action = out.clone().requires_grad_(True)
    (dq_da,) = torch.autograd.grad(model.critic.q1_forward(obs, action).sum(), action)
    factor = (dq_da * (1 - out**2))[:, 0]
    expected = (factor[:, None] * torch.cat([h2, torch.ones(7, 1)], 1)).mean(0).double().numpy()
    np.testing.assert_allclose(grads["out"][0], expected, rtol=1e-4, atol=1e-7)
    slopes = e2.global_slopes(model, obs)
    assert [s.shape for s in slopes.values()] == [(7, 6), (7, 5), (7, 1)]
    np.testing.assert_allclose(slopes["out"][:, 0], dq_da[:, 0].double().numpy(), rtol=1e-5, atol=1e-7)
    # hidden layer: the averaged row is the mean of slope * tanh' * [input, 1]
    h1 = mu[:2](obs).detach()
    factor = torch.as_tensor(slopes["h2"][:, 2]).float() * (1 - h2[:, 2] ** 2)
    expected = (factor[:, None] * torch.cat([h1, torch.ones(7, 1)], 1)).mean(0).double().numpy()
    np.testing.assert_allclose(grads["h2"][2], expected, rtol=1e-4, atol=1e-7)
    assert mu[0].weight.grad is None


def test_local_gradient_of_the_linear_critic(model):
    topology, weights = Topology.from_module(model.actor.mu)
    learner = LocalDDPG(topology, critic="linear", lr_actor=0.0, granularity="settled", weights=weights)
    learner.critic[1]["theta_a"].copy_(torch.linspace(-1, 1, 5))
    obs = torch.as_tensor(model.replay_buffer.observations[:9, 0])
    grads = e2.local_gradients(learner, obs)
    with torch.no_grad():
        h1 = model.actor.mu[:2](obs)
        h2 = model.actor.mu[:4](obs)
    pre1 = torch.cat([h1, torch.ones(9, 1)], 1)
    expected = (torch.linspace(-1, 1, 5)[:, None] * ((1 - h2**2).T @ pre1) / 9).double().numpy()
    np.testing.assert_allclose(grads["h2"], expected, rtol=1e-4, atol=1e-6)
    assert np.all(grads["h1"] == 0)  # theta_a starts at zero


def test_cosine_and_sign_agreement_on_hand_made_rows():
    local = np.array([[1.0, 2.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    global_ = np.array([[2.0, 4.0, 0.0], [-1.0, 0.0, 3.0], [1.0, 1.0, 1.0]])
    np.testing.assert_allclose(e2.row_cosine(local, global_)[:2], [1.0, -1 / np.sqrt(10)])
    assert np.isnan(e2.row_cosine(local, global_)[2])
    np.testing.assert_allclose(e2.sign_agreement(local, global_), [1.0, 0.0, 0.0])


def test_config_errors():
    with pytest.raises(BaselineConfigError, match="critics"):
        e2.GradientAgreementConfig(critics=("quadratic",)).validate()
    with pytest.raises(BaselineConfigError, match="data"):
        e2.GradientAgreementConfig(data=("imagined",)).validate()


def test_tiny_end_to_end(tmp_path, capsys):
    out = tmp_path / "e2"
    parser = argparse.ArgumentParser(prog="gradient-agreement")
    e2.add_arguments(parser)
    args = parser.parse_args([
        "--steps", "400", "--hidden", "8", "8", "--learning-starts", "200", "--local-updates", "20",
        "--batch-size", "32", "--eval-every", "200", "--eval-episodes", "1", "--eval-samples", "50",
        "--data", "sb3-replay", "neuron-noise", "--noise-steps", "100", "--out", str(out), "--no-progress",
    ])
    assert e2.run_from_args(args) == 0
    assert "sign agr." in capsys.readouterr().out
    result = json.loads((out / "gradient_agreement.json").read_text())
    assert {"experiment", "config", "ddpg", "held_out_samples", "runs", "wall_time_s"} <= set(result)
    assert [(r["critic"], r["data"]) for r in result["runs"]] == [
        ("mlp", "sb3-replay"), ("linear", "sb3-replay"), ("mlp", "neuron-noise"), ("linear", "neuron-noise")]
    for run in result["runs"]:
        assert run["actor_unchanged"] and run["local_updates"] == 20
        assert list(run["layers"]) == ["h1", "h2", "out"]
        for layer in run["layers"].values():
            assert {"cosine", "cosine_mean", "cosine_median", "sign_agreement", "sign_agreement_mean",
                    "layer_cosine", "global_zero_fraction", "slope_sign_agreement", "global_coherence"} <= set(layer)
            assert len(layer["cosine"]) == layer["neurons"]
        assert run["overall"]["neurons"] == 17
    assert result["runs"][2]["transitions"] == 100
    assert (out / "gradient_agreement.png").stat().st_size > 1000


def test_feedback_slopes_through_the_true_weights_are_the_output_critics_chain_rule(model):
    """E2's feedback runs: with ``weights``, a hidden slope is autograd's ∂Q_out/∂a_n through the network."""
    from neuron_env.agents.feedback import FeedbackDDPG

    topology, weights = Topology.from_module(model.actor.mu)
    learner = FeedbackDDPG(topology, critic="bilinear", lr_actor=0.0, granularity="settled", weights=weights,
                           feedback="weights", critic_context="observation", dtype=torch.float64)
    generator = torch.Generator().manual_seed(3)
    for value in learner.critic[2].values():
        value.copy_(torch.randn(value.shape, generator=generator, dtype=torch.float64))
    obs = torch.as_tensor(model.replay_buffer.observations[:9, 0], dtype=torch.float64)
    settled = learner.settle(e2.input_voltages(learner, obs))
    slopes = learner.action_slopes(settled)
    hidden = settled[:, topology.group_slice["h2"]].clone().requires_grad_(True)
    w_out = learner.actor[2]
    with torch.enable_grad():
        out = torch.tanh(hidden @ w_out[:, :-1].T + w_out[:, -1])
        params = learner.critic[2]
        x = settled[:, learner.layouts[2].context]
        q = (x @ params["theta_v"].T + out * (params["theta_a"] + x @ params["w"].T)).sum()
        (expected,) = torch.autograd.grad(q, hidden)
    assert expected.abs().max() > 1e-3  # a real slope, not zeros
    torch.testing.assert_close(slopes[1], expected, rtol=1e-10, atol=1e-12)
    terms = e2.local_terms(learner, obs)
    assert terms["h1"]["gradient"].shape == (6, 4)
