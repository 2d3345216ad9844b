"""Third-party MARL libraries group agents by the id prefix before the last '_'."""

from collections import defaultdict

import pytest

from neuron_env import NeuronGroup, Projection, Topology, neuron_v0


def topology_with_underscored_names() -> Topology:
    groups = [NeuronGroup("in", 3, "identity", "input"), NeuronGroup("layer_a", 4),
              NeuronGroup("layer_b", 2, "relu"), NeuronGroup("out", 1, role="output")]
    projections = [Projection("in", "layer_a"), Projection("layer_a", "layer_b"), Projection("layer_b", "out")]
    return Topology(groups, projections)


@pytest.mark.parametrize("topology", [Topology.mlp(3, [4, 5], 1), Topology.recurrent(3, 6, 1),
                                      topology_with_underscored_names()])
def test_prefix_groups_have_equal_spaces(topology):
    env = neuron_v0.parallel_env(task="Pendulum-v1", topology=topology)
    groups = defaultdict(list)
    for agent in env.possible_agents:
        groups[agent.rsplit("_", 1)[0]].append(agent)
    assert set(groups) == {g.name for g in topology.agent_groups}
    for agents in groups.values():  # one space per group, as TorchRL/AgileRL/BenchMARL need (each agent its own copy)
        assert all(env.observation_space(a) == env.observation_space(agents[0]) for a in agents)
        assert all(env.action_space(a) == env.action_space(agents[0]) for a in agents)
