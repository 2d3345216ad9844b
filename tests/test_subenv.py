import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import neuron_env  # noqa: F401  (registers the envs)
from neuron_env import InvalidActionError, SubEnv, Topology


@pytest.mark.parametrize("neuron", ["out_0", "h1_2"])
def test_check_env(neuron):
    env = SubEnv("Pendulum-v1", Topology.mlp(3, [4], 1), neuron=neuron)
    check_env(env, skip_render_check=True)


def test_registered_and_follows_policy():
    env = gym.make("neuron_env/SubEnv-v0", task="Pendulum-v1", topology=Topology.mlp(3, [4], 1), neuron="out_0")
    obs, _ = env.reset(seed=0)
    assert obs.shape == (4,)
    rewards = [env.step(np.array([0.0], dtype=np.float32))[1] for _ in range(4)]
    assert rewards[0] == 0.0 and rewards[1] != 0.0  # the task steps every 2 ticks


def test_bad_neuron_and_action():
    with pytest.raises(KeyError, match="neuron 'h7_0' is not an agent"):
        SubEnv("Pendulum-v1", Topology.mlp(3, [4], 1), neuron="h7_0")
    env = SubEnv("Pendulum-v1", Topology.mlp(3, [4], 1), neuron="h1_0")
    env.reset(seed=0)
    with pytest.raises(InvalidActionError, match=r"agent 'h1_0' has shape \(3,\); expected shape \(1,\)"):
        env.step(np.zeros(3))
    with pytest.raises(InvalidActionError, match=r"agent 'h1_0' is 'abc' \(str\), not a real number"):
        env.step("abc")
    with pytest.raises(InvalidActionError, match="agent 'h1_0' is nan"):
        env.step(np.array([np.nan]))
