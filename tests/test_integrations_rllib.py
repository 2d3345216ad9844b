"""RLlib (Ray) PPO over neuron_v0.parallel_env: one policy per layer, a local Ray on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType

import numpy as np
import pytest

from .conftest import load_example

pytest.importorskip("ray.rllib")



@pytest.fixture(scope="module")
def example() -> Iterator[ModuleType]:
    module = load_example("rllib_ppo")
    yield module
    module.ray.shutdown()


def test_agents_map_to_their_layer(example: ModuleType) -> None:
    assert example.layer_of("h1_0") == "h1"
    assert example.layer_of("h2_17") == "h2"
    assert example.layer_of("out_0") == "out"
    env = example.env_creator({"task": "Pendulum-v1", "obs_dim": 3, "act_dim": 1, "hidden": [4, 5],
                               "max_cycles": 6})
    assert {example.layer_of(agent) for agent in env.get_agent_ids()} == {"h1", "h2", "out"}
    observations, _ = env.reset(seed=0)
    assert observations["h1_0"].shape == (3,) and observations["h2_0"].shape == (4,)
    for _ in range(6):
        actions = {agent: np.zeros(1, dtype=np.float32) for agent in observations}
        observations, _, terminateds, truncateds, _ = env.step(actions)
    assert truncateds["__all__"] and not terminateds["__all__"]
    env.close()


def test_ppo_one_iteration_on_local_ray(example: ModuleType) -> None:
    args = example.Args(hidden=(4,), max_cycles=20, train_batch_size=40, minibatch_size=20, fcnet_hiddens=(8,))
    algo, results = example.train(args)
    (result,) = results
    assert example.ray.get_runtime_context().gcs_address.startswith("127.0.0.1:")
    runners = result["env_runners"]
    # Batch sizes count env steps (ticks); each tick is one agent step per neuron (4 in h1, 1 out).
    assert runners["num_env_steps_sampled"] == 40
    assert {group: int(n) for group, n in runners["num_module_steps_sampled"].items()} == {"h1": 160, "out": 40}
    assert set(result["learners"]) >= {"h1", "out"}
    algo.stop()
