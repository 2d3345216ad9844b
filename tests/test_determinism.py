"""Determinism over many ticks (PettingZoo's parallel_seed_test stops after one step)."""

import numpy as np
import pytest

from neuron_env import Topology, neuron_v0

from .conftest import episode_traces, small_topologies


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


def test_agent_spaces_are_cached_per_agent_and_seeded_alone():
    """Each agent has its own space object (equal within its group): seeding one leaves its neighbours alone."""
    env = neuron_v0.parallel_env(task="Pendulum-v1", topology=small_topologies(3, 1)["mlp"])
    first, second = env.possible_agents[0], env.possible_agents[1]  # both in group h1
    for space in (env.action_space, env.observation_space):
        assert space(first) is space(first)  # cached: the same object on every call
        assert space(first) == space(second) and space(first) is not space(second)
    env.action_space(second).seed(5)
    reference = [env.action_space(second).sample() for _ in range(3)]
    env.action_space(second).seed(5)
    env.action_space(first).seed(6)  # reseeding a neighbour ...
    assert [env.action_space(second).sample() for _ in range(3)] == reference  # ... leaves this one alone
    env.close()


def episodes(task: str, seed: int, count: int = 2) -> list[tuple[list, list, list]]:
    """``count`` whole episodes (reset with ``seed`` first, then unseeded), actions from one fixed stream."""
    topology = Topology.mlp(3 if task == "Pendulum-v1" else 2, [4], 1)
    env = neuron_v0.parallel_env(task=task, topology=topology, task_kwargs={"max_episode_steps": 60})
    # the network's policy plus noise: the actions, and so the rewards, follow the task's state
    # (MountainCar's reward is -0.1 a² alone)
    return episode_traces(env, seed, count, noise=0.3)


@pytest.mark.parametrize("task", ["Pendulum-v1", "MountainCarContinuous-v0"])
def test_multi_episode_determinism(task):
    """Same seed: identical voltages and rewards over whole episodes, the second one unseeded; other seed: not."""
    first, again, other = episodes(task, 3), episodes(task, 3), episodes(task, 4)
    delay = 2  # Topology.mlp(obs, [4], 1) has depth 2: the task steps every second tick
    assert len(first) == 2 and all(len(rewards) == 60 * delay for _, rewards, _ in first)  # two whole episodes
    assert first == again
    for episode in range(2):
        assert first[episode][0] != other[episode][0]
        assert first[episode][1] != other[episode][1]


def async_episodes(task: str, seed: int, count: int = 2) -> list[tuple[list, list, list]]:
    """``count`` whole episodes under the asynchronous clock (reset with ``seed`` first, then unseeded)."""
    obs_dim, act_dim = (3, 1) if task == "Pendulum-v1" else (4, 2)
    topology = Topology.recurrent(obs_dim, 6, act_dim, leak=0.3)
    env = neuron_v0.parallel_env(task=task, topology=topology, clock="async", firing_rate=0.5,
                                 task_kwargs={"max_episode_steps": 40})
    return episode_traces(env, seed, count, record=lambda infos: [infos[a]["fired"] for a in env.possible_agents])


@pytest.mark.parametrize("task", ["Pendulum-v1", "CartPole-v1"])
def test_async_clock_multi_episode_determinism(task):
    """Same seed: identical firing, voltages and rewards over whole episodes, the second unseeded; other seed: not."""
    first, again, other = async_episodes(task, 3), async_episodes(task, 3), async_episodes(task, 4)
    assert first == again
    for episode in range(2):
        assert first[episode][2] != other[episode][2]
    assert first[0][2] != first[1][2]  # the unseeded second episode continues the stream
