"""SuperSuit + Stable-Baselines3 parameter sharing over neuron_v0.parallel_env."""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pytest

from .conftest import load_example

pytest.importorskip("supersuit")
pytest.importorskip("stable_baselines3")



@pytest.fixture(scope="module")
def example() -> ModuleType:
    module = load_example("supersuit_sb3")
    return module




def test_vec_env_has_one_padded_slot_per_neuron(example: ModuleType) -> None:
    args = example.Args(hidden=(4,), num_copies=2)
    venv = example.make_vec_env(args)
    assert venv.num_envs == 2 * 5  # 4 hidden + 1 output neuron per copy
    assert venv.observation_space.shape == (4,)  # h1 sees 3 inputs, out sees 4 hidden: padded to 4
    assert venv.action_space.shape == (1,)
    observations = venv.reset()
    assert observations.shape == (10, 4)
    np.testing.assert_array_equal(observations[:4, 3], 0.0)  # h1's padding
    venv.close()


def test_terminal_observations_are_per_agent(example: ModuleType) -> None:
    """SuperSuit writes terminal observations into infos; each agent must keep its own."""
    import supersuit as ss

    from neuron_env import Topology, neuron_v0

    env = neuron_v0.parallel_env(task="Pendulum-v1", topology=Topology.mlp(3, [4], 1), max_cycles=3)
    vec = ss.pettingzoo_env_to_vec_env_v1(ss.pad_observations_v0(example.SB3Infos(env)))
    vec.reset(seed=0)
    for _ in range(3):  # zero actions: hidden voltages stay 0, inputs hold the pendulum state
        _, _, terminations, truncations, infos = vec.step(np.zeros((5, 1), dtype=np.float32))
    assert truncations.all() and not terminations.any()
    h1_final = np.stack([info["terminal_observation"] for info in infos[:4]])
    out_final = infos[4]["terminal_observation"]
    assert np.abs(h1_final[:, :3]).sum() > 0  # the pendulum observation, not out_0's
    np.testing.assert_array_equal(out_final, 0.0)  # out_0 observes the (zero) hidden voltages
    assert all(info["TimeLimit.truncated"] for info in infos)
    vec.close()


def test_td3_parameter_sharing_runs(example: ModuleType, one_thread: None) -> None:
    args = example.Args(hidden=(4,), num_copies=2, total_timesteps=300, learning_starts=100, max_cycles=9,
                        net_arch=(16,))
    model = example.train(args)
    assert model.num_timesteps >= 300
    assert model.replay_buffer.size() > 0
    # Episodes of 9 ticks ended and were bootstrapped as time limits, not terminal states.
    buffer = model.replay_buffer
    assert buffer.timeouts[: buffer.size()].any()
