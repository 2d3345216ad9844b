"""PettingZoo's own API tests on the parallel and AEC views."""

import numpy as np
import pytest
from pettingzoo.test import api_test, parallel_api_test

from neuron_env import Topology, neuron_v0

from .conftest import MUJOCO_TASK, requires_mujoco, small_topologies

TASKS = [("Pendulum-v1", 3, 1), pytest.param(MUJOCO_TASK, 4, 1, marks=requires_mujoco)]


@pytest.mark.parametrize(("task", "obs_dim", "act_dim"), TASKS)
@pytest.mark.parametrize("kind", ["mlp", "recurrent", "sparse"])
def test_parallel_api(task, obs_dim, act_dim, kind):
    env = neuron_v0.parallel_env(task=task, topology=small_topologies(obs_dim, act_dim)[kind])
    parallel_api_test(env, num_cycles=700)


@pytest.mark.parametrize(("task", "obs_dim", "act_dim"), TASKS)
@pytest.mark.parametrize("kind", ["mlp", "recurrent", "sparse"])
def test_aec_api(task, obs_dim, act_dim, kind):
    env = neuron_v0.env(task=task, topology=small_topologies(obs_dim, act_dim)[kind])
    api_test(env, num_cycles=300)


def test_observe_all_and_max_cycles():
    env = neuron_v0.parallel_env(task="Pendulum-v1", topology=small_topologies(3, 1)["mlp"], observe="all",
                                 max_cycles=7)
    parallel_api_test(env, num_cycles=50)  # sets env.max_cycles = 50
    env.max_cycles = 7
    observations, _ = env.reset(seed=0)
    assert all(o.shape == (env.topology.num_neurons,) for o in observations.values())
    ticks = 0
    while env.agents:
        _, _, _, truncations, _ = env.step({a: env.action_space(a).sample() for a in env.agents})
        ticks += 1
    assert ticks == 7 and all(truncations.values())


def test_registered_in_pettingzoo():
    pettingzoo = pytest.importorskip("pettingzoo")
    if not hasattr(pettingzoo, "make"):
        pytest.skip("this PettingZoo has no registry (< 1.27)")
    topology = small_topologies(3, 1)["mlp"]
    env = pettingzoo.make("parallel", "neuron_env/Neuron-v0", task="Pendulum-v1", topology=topology, max_cycles=5)
    assert env.max_cycles == 5 and env.possible_agents == list(topology.agent_ids)
    aec = pettingzoo.make("aec", "neuron_env/Neuron-v0", task="Pendulum-v1", topology=topology)
    aec.reset(seed=0)
    assert aec.agent_selection == "h1_0"


def test_metadata_and_spaces_are_cached_per_agent():
    env = neuron_v0.parallel_env(task="Pendulum-v1", topology=small_topologies(3, 1)["mlp"])
    assert neuron_v0.metadata["name"] == "neuron_v0" and neuron_v0.metadata["is_parallelizable"]
    assert env.observation_space("h2_0") is env.observation_space("h2_0")  # cached
    assert env.observation_space("h2_0") == env.observation_space("h2_3")  # equal within a group ...
    assert env.observation_space("h2_0") is not env.observation_space("h2_3")  # ... but each agent's own
    assert env.action_space("h1_0") == env.action_space("h1_4")
    assert env.action_space("h1_0") is not env.action_space("h1_4")
    assert env.state_space.shape == (env.topology.num_neurons,)
    env.reset(seed=0)
    assert env.state().shape == env.state_space.shape


def test_infos_between_task_steps_never_return_a_dict_somebody_wrote_into():
    env = neuron_v0.parallel_env(task="Pendulum-v1", topology=Topology.mlp(3, [4, 4], 1))  # delay 3
    env.reset(seed=0)
    actions = {a: np.zeros(1, np.float32) for a in env.possible_agents}
    first = env.step(actions)[4]
    assert all(info == {} for info in first.values())
    first["h1_0"]["terminal_observation"] = np.ones(3)  # what a wrapper may add
    second = env.step(actions)[4]
    assert second["h1_0"] == {} and second["h1_0"] is not first["h1_0"]
    assert all(info == {} for info in second.values()) and second is not first
    task_tick = env.step(actions)[4]
    assert task_tick["h1_0"]["task_stepped"] and task_tick["h1_0"] is not task_tick["h1_1"]


ASYNC_TASKS = [("Pendulum-v1", 3, 1), ("CartPole-v1", 4, 2)]


@pytest.mark.parametrize(("task", "obs_dim", "act_dim"), ASYNC_TASKS)
def test_async_clock_parallel_and_aec_api(task, obs_dim, act_dim):
    topology = small_topologies(obs_dim, act_dim)["recurrent"]
    parallel_api_test(neuron_v0.parallel_env(task=task, topology=topology, clock="async", firing_rate=0.5),
                      num_cycles=200)
    api_test(neuron_v0.env(task=task, topology=topology, clock="async", firing_rate=0.5), num_cycles=100)


def test_async_clock_tells_every_agent_every_tick_whether_it_fired():
    env = neuron_v0.parallel_env(task="CartPole-v1", topology=Topology.mlp(4, [30], 2), clock="async",
                                 firing_rate=0.4)
    env.reset(seed=0)
    flags = []
    for _ in range(4):
        before = env.state()
        _, _, _, _, infos = env.step({a: np.full(1, 0.9, np.float32) for a in env.agents})
        assert infos.keys() == set(env.possible_agents) and all(isinstance(i["fired"], bool) for i in infos.values())
        for index, agent in enumerate(env.possible_agents):  # a silent neuron kept its voltage
            neuron = env.topology.agent_neuron_index[index]
            if not infos[agent]["fired"] and not infos[agent].get("task_stepped"):
                assert env.state()[neuron] == before[neuron]
        flags.extend(i["fired"] for i in infos.values())
    assert 0.2 < np.mean(flags) < 0.6
