"""The draft's Theorem 2.2.1: neurons acting locally through the env reproduce the plain network.

The reference is independent of neuron-env's dynamics: the torch module itself (or SB3's own
``predict``) acting on a plain Gymnasium task; for tasks of other spaces, the module between
an encoder and a decoder written in the test from Gymnasium's ``flatten`` and ``numpy.argmax``.
"""

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import nn

from neuron_env import NetworkPolicy, Topology, neuron_v0

from .conftest import requires_mujoco


def network_env(task, module: nn.Module) -> tuple[Topology, object, NetworkPolicy]:
    """The module's topology, a neuron env of ``task`` on it and the policy of its weights."""
    topology, weights = Topology.from_module(module)
    env = neuron_v0.parallel_env(task=task, topology=topology)
    assert env.core.delay == topology.depth  # the default delay: the task sees the full forward pass
    return topology, env, NetworkPolicy(topology, weights)


def task_ticks(env, policy: NetworkPolicy, observations: dict):
    """Step the episode by the policy; yield ``(rewards, terminations, truncations, info)`` where the task stepped."""
    while env.agents:
        observations, rewards, terminations, truncations, infos = env.step(policy.act(observations))
        info = infos[env.possible_agents[0]]
        if info.get("task_stepped"):
            yield rewards, terminations, truncations, info


def compare(task: str, module: nn.Module, reference_action, seed: int = 3, steps: int = 150) -> int:
    topology, env, policy = network_env(task, module)
    plain = gym.make(task)
    observations, _ = env.reset(seed=seed)
    plain_obs, _ = plain.reset(seed=seed)
    compared = 0
    for rewards, terminations, truncations, info in task_ticks(env, policy, observations):
        if compared >= steps:
            break
        expected = reference_action(plain_obs)
        plain_obs, plain_reward, plain_term, plain_trunc, _ = plain.step(expected)
        np.testing.assert_allclose(info["task_action"], expected, atol=1e-5)
        np.testing.assert_allclose(env.state()[topology.group_slice["in"]], plain_obs, atol=1e-5)
        agent = env.possible_agents[0]
        assert abs(rewards[agent] - plain_reward) <= 1e-5
        assert terminations[agent] == plain_term and truncations[agent] == plain_trunc
        compared += 1
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


def compare_through_spaces(task: Any, module: nn.Module, encode: Callable[[Any], np.ndarray],
                           decode: Callable[[np.ndarray], Any], steps: int, first_seed: int = 0) -> int:
    """Neurons acting by ``σ(K^n v)`` against ``decode(module(encode(s)))`` on the plain task, episode after episode.

    ``encode`` and ``decode`` are written here from Gymnasium's ``flatten`` and ``numpy.argmax``,
    independently of ``neuron_env.spaces``; every episode starts from the same seed on both sides.
    """
    topology, env, policy = network_env(task, module)
    plain = task() if callable(task) else gym.make(task)
    compared, seed = 0, first_seed
    while compared < steps:
        observations, _ = env.reset(seed=seed)
        plain_obs, _ = plain.reset(seed=seed)
        np.testing.assert_allclose(env.state()[topology.group_slice["in"]], encode(plain_obs), atol=1e-6)
        for rewards, terminations, truncations, info in task_ticks(env, policy, observations):
            with torch.no_grad():
                output = module(torch.as_tensor(encode(plain_obs), dtype=torch.float32)).numpy()
            expected = decode(output)
            plain_obs, plain_reward, plain_term, plain_trunc, _ = plain.step(expected)
            np.testing.assert_array_equal(info["task_action"], expected)
            agent = env.possible_agents[0]
            assert rewards[agent] == plain_reward
            assert terminations[agent] == plain_term and truncations[agent] == plain_trunc
            if env.agents:  # at an episode end the state holds the final observation too
                np.testing.assert_allclose(env.state()[topology.group_slice["in"]], encode(plain_obs), atol=1e-6)
            compared += 1
        seed += 1
    return compared


def test_cartpole_discrete_argmax_reproduces_the_plain_network():
    """CartPole-v1: Box observation as it is, Discrete(2) action = argmax over two output neurons."""
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 2), nn.Tanh())
    assert compare_through_spaces("CartPole-v1", module, lambda obs: np.asarray(obs, np.float32),
                                  lambda output: int(np.argmax(output)), steps=150) >= 150


def test_blackjack_tuple_observation_reproduces_the_plain_network():
    """Blackjack-v1: Tuple(Discrete(32), Discrete(11), Discrete(2)) one-hot, 45 inputs; Discrete(2) by argmax."""
    space = gym.make("Blackjack-v1").observation_space
    torch.manual_seed(1)
    module = nn.Sequential(nn.Linear(45, 8), nn.Tanh(), nn.Linear(8, 2), nn.Tanh())
    assert compare_through_spaces("Blackjack-v1", module, lambda obs: gym.spaces.flatten(space, obs).astype(np.float32),
                                  lambda output: int(np.argmax(output)), steps=60) >= 60


def test_dict_observation_multi_discrete_action_reproduces_the_plain_network():
    """A Dict of Box, Discrete, MultiBinary and MultiDiscrete parts; MultiDiscrete([3, 2]) by argmax per block."""
    from .test_spaces import DictTask

    space = DictTask().observation_space
    torch.manual_seed(2)
    module = nn.Sequential(nn.Linear(12, 6), nn.ReLU(), nn.Linear(6, 5), nn.Tanh())

    def decode(output: np.ndarray) -> np.ndarray:
        return np.array([np.argmax(output[:3]), np.argmax(output[3:])])

    assert compare_through_spaces(DictTask, module, lambda obs: gym.spaces.flatten(space, obs).astype(np.float32),
                                  decode, steps=30) >= 30
