"""The draft's Theorem 2.2.1: neurons acting locally through the env reproduce the plain network.

The reference is independent of neuron-env's dynamics: the torch module itself (or SB3's own
``predict``) acting on a plain Gymnasium task.
"""

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import nn

from neuron_env import NetworkPolicy, Topology, neuron_v0

from .conftest import requires_mujoco


def compare(task: str, module: nn.Module, reference_action, seed: int = 3, steps: int = 150) -> int:
    topology, weights = Topology.from_module(module)
    env = neuron_v0.parallel_env(task=task, topology=topology)
    policy = NetworkPolicy(topology, weights)
    plain = gym.make(task)
    observations, _ = env.reset(seed=seed)
    plain_obs, _ = plain.reset(seed=seed)
    compared = 0
    while env.agents and compared < steps:
        observations, rewards, terminations, truncations, infos = env.step(policy.act(observations))
        info = infos[env.possible_agents[0]]
        if not info.get("task_stepped"):
            continue
        expected = reference_action(plain_obs)
        plain_obs, plain_reward, plain_term, plain_trunc, _ = plain.step(expected)
        np.testing.assert_allclose(info["task_action"], expected, atol=1e-5)
        np.testing.assert_allclose(env.state()[topology.group_slice["in"]], plain_obs, atol=1e-5)
        agent = env.possible_agents[0]
        assert abs(rewards[agent] - plain_reward) <= 1e-5
        assert terminations[agent] == plain_term and truncations[agent] == plain_trunc
        compared += 1
    assert env.core.delay == topology.depth
    return compared


def test_random_sequential_3_16_16_1_on_pendulum():
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(3, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 1), nn.Tanh())

    def reference(obs):
        with torch.no_grad():
            y = module(torch.as_tensor(obs, dtype=torch.float32)).numpy()
        return np.clip(-2.0 + (y + 1.0) / 2.0 * 4.0, -2.0, 2.0)

    assert compare("Pendulum-v1", module, reference, steps=200) == 200


@requires_mujoco
@pytest.mark.parametrize("task", ["InvertedPendulum-v5", "HalfCheetah-v5"])
def test_sb3_ddpg_actor(task):
    sb3 = pytest.importorskip("stable_baselines3")
    model = sb3.DDPG("MlpPolicy", task, seed=0, policy_kwargs={"net_arch": [32, 32]}, learning_starts=0)

    def reference(obs):
        action, _ = model.predict(obs, deterministic=True)
        return action

    compared = compare(task, model.actor.mu, reference, steps=100)
    # InvertedPendulum ends early under an untrained actor; HalfCheetah never terminates.
    assert compared == 100 if task == "HalfCheetah-v5" else compared >= 1
