"""Determinism over many ticks (PettingZoo's parallel_seed_test stops after one step)."""

import numpy as np
import pytest

from neuron_env import neuron_v0

from .conftest import small_topologies


def rollout(seed: int, kind: str, ticks: int = 250) -> list:
    env = neuron_v0.parallel_env(task="Pendulum-v1", topology=small_topologies(3, 1)[kind])
    observations, infos = env.reset(seed=seed)
    for i, agent in enumerate(env.possible_agents):
        env.action_space(agent).seed(1000 + i)
    trace = [(observations, infos)]
    for _ in range(ticks):
        if not env.agents:
            observations, infos = env.reset()
            trace.append((observations, infos))
        actions = {a: env.action_space(a).sample() for a in env.agents}
        trace.append(env.step(actions))
    env.close()
    return trace


def flatten(trace: list) -> list:
    out = []
    for record in trace:
        for part in record:
            for agent in sorted(part):
                value = part[agent]
                if isinstance(value, dict):
                    out.extend((k, np.asarray(v).tolist()) for k, v in sorted(value.items()))
                else:
                    out.append(np.asarray(value).tolist())
    return out


@pytest.mark.parametrize("kind", ["mlp", "recurrent"])
def test_same_seed_same_trajectory(kind):
    assert flatten(rollout(7, kind)) == flatten(rollout(7, kind))


def test_different_seed_different_trajectory():
    assert flatten(rollout(7, "mlp", ticks=30)) != flatten(rollout(8, "mlp", ticks=30))


def test_pettingzoo_parallel_seed_test():
    from pettingzoo.test import parallel_seed_test

    topology = small_topologies(3, 1)["mlp"]
    parallel_seed_test(lambda: neuron_v0.parallel_env(task="Pendulum-v1", topology=topology), num_cycles=50)
