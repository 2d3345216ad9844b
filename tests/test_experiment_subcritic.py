"""E1 subcritic-correlation: batched sub-critics, hooks, Pearson, and a tiny end-to-end run."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch
from torch import nn

pytest.importorskip("stable_baselines3")
pytest.importorskip("matplotlib")

from neuron_env.baselines.cli import add_experiment_parser  # noqa: E402
from neuron_env.baselines.errors import BaselineConfigError  # noqa: E402
from neuron_env.baselines.experiments.subcritic_correlation import (  # noqa: E402
    ActorProbe,
    LayerSubcritics,
    SubcriticConfig,
    pearson,
)

LAYER_KEYS = {
    "neurons", "layer_size", "td_loss", "value_r", "value_r_mean", "value_r_median", "derivative_r",
    "derivative_r_mean", "derivative_r_median", "derivative_sign_agreement", "derivative_sign_agreement_mean",
    "global_derivative_zero_fraction",
}


def test_batched_subcritics_equal_independent_mlps():
    critics = LayerSubcritics(input_dim=5, num_neurons=3, hidden=7, generator=torch.Generator().manual_seed(0))
    x, a = torch.randn(11, 5), torch.randn(11, 3)
    q = critics(x, a)
    assert q.shape == (11, 3)
    for n in range(3):  # each neuron's critic is its own 3-layer MLP on [x, a^n]
        w1 = torch.cat([critics.w1x[n], critics.w1a[n][None]], 0)
        h = torch.relu(torch.cat([x, a[:, n:n + 1]], 1) @ w1 + critics.b1[n])
        h = torch.relu(h @ critics.w2[n] + critics.b2[n])
        torch.testing.assert_close(q[:, n], h @ critics.w3[n] + critics.b3[n])
    # no neuron's value depends on another neuron's action
    a2 = a.clone()
    a2[:, 0] += 1.0
    torch.testing.assert_close(critics(x, a2)[:, 1:], q[:, 1:])


def test_actor_probe_records_layer_inputs_and_outputs():
    mu = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2), nn.ReLU(), nn.Linear(2, 1), nn.Tanh())
    probe = ActorProbe(mu)
    obs = torch.randn(6, 3)
    inputs, outputs, result = probe.record(mu, obs)
    assert list(inputs) == ["h1", "h2", "out"]
    h1 = torch.tanh(mu[0](obs))
    torch.testing.assert_close(inputs["h1"], obs)
    torch.testing.assert_close(outputs["h1"], h1)
    torch.testing.assert_close(inputs["h2"], h1)
    torch.testing.assert_close(outputs["h2"], torch.relu(mu[2](h1)))
    torch.testing.assert_close(outputs["out"], result)
    mu(obs)  # hooks are inactive outside record()
    assert probe.inputs == {}
    probe.remove()


def test_pearson_on_hand_made_numbers():
    x = np.array([[1.0, 1.0, 1.0], [2.0, 2.0, 1.0], [3.0, 3.0, 1.0]])
    y = np.array([[2.0, 3.0, 5.0], [4.0, 2.0, 6.0], [6.0, 1.0, 7.0]])
    r = pearson(x, y)
    assert r[0] == pytest.approx(1.0) and r[1] == pytest.approx(-1.0) and np.isnan(r[2])


def test_config_errors():
    with pytest.raises(BaselineConfigError, match="protocol"):
        SubcriticConfig(protocol="three-phase").validate()
    with pytest.raises(BaselineConfigError, match="learning_starts"):
        SubcriticConfig(steps=100, learning_starts=100).validate()


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="neuron-env")
    add_experiment_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.mark.parametrize("protocol", ["joint", "two-phase"])
def test_tiny_end_to_end(tmp_path, protocol, capsys):
    out = tmp_path / protocol
    status = run_cli([
        "experiment", "subcritic-correlation", "--task", "Pendulum-v1", "--steps", "500", "--hidden", "8", "8",
        "--learning-starts", "200", "--protocol", protocol, "--subcritic-updates", "30", "--neurons-per-layer", "3",
        "--subcritic-hidden", "8", "--batch-size", "32", "--eval-every", "250", "--eval-episodes", "1",
        "--eval-samples", "100", "--out", str(out), "--no-progress",
    ])
    assert status == 0
    assert "r(Q) mean" in capsys.readouterr().out
    result = json.loads((out / "subcritic_correlation.json").read_text())
    assert {"experiment", "config", "ddpg", "protocol", "subcritic_updates", "held_out_samples", "layers", "overall",
            "draft_reference_r", "wall_time_s"} <= set(result)
    assert list(result["layers"]) == ["h1", "h2", "out"]
    for name, layer in result["layers"].items():
        assert LAYER_KEYS <= set(layer), name
        assert len(layer["value_r"]) == len(layer["neurons"]) == (1 if name == "out" else 3)
    assert result["subcritic_updates"] == (300 if protocol == "joint" else 30)
    assert result["overall"]["neurons"] == 7
    assert (out / "subcritic_correlation.png").stat().st_size > 1000
    assert (out / "ddpg" / "summary.json").exists() and (out / "ddpg" / "metrics.csv").exists()


def test_global_derivative_matches_finite_differences():
    from neuron_env.baselines.experiments.subcritic_correlation import SubcriticProbe
    from neuron_env.baselines.sb3_ddpg import BaselineConfig, build_model

    model, _ = build_model(BaselineConfig(hidden=(6, 5), steps=64, learning_starts=64))
    model.learn(64)  # random actions: fills the replay buffer, no training
    probe = SubcriticProbe(model, SubcriticConfig(neurons_per_layer=2, subcritic_hidden=4))
    obs = torch.as_tensor(model.replay_buffer.observations[:5, 0])
    q_mu, per_layer = probe.values_and_derivatives(obs)
    eps = 1e-2  # SB3 runs its networks in float32; Q is smooth at this scale
    for name, (_, _, global_grad) in per_layer.items():
        last = probe.probe.layers[name][1]
        for column, neuron in enumerate(probe.neurons[name].tolist()):
            def shift(module, args, output, neuron=neuron):
                output = output.clone()
                output[:, neuron] += eps
                return output

            handle = last.register_forward_hook(shift)
            with torch.no_grad():
                shifted = model.critic.q1_forward(obs, model.actor(obs))[:, 0].numpy()
            handle.remove()
            scale = np.abs(global_grad).max()
            np.testing.assert_allclose((shifted - q_mu) / eps, global_grad[:, column], rtol=0.02, atol=0.02 * scale)
    assert probe.model.actor.mu[0].weight.grad is None
