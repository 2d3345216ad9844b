import numpy as np
import pytest
import torch
from torch import nn

from neuron_env import NetworkWeights, NeuronGroup, Projection, Topology, TopologyError
from neuron_env.topology import NETWORK_KINDS, check_network_kind


def test_mlp_layout_ids_and_depth():
    t = Topology.mlp(3, [4, 5], 2)
    assert [g.name for g in t.groups] == ["in", "h1", "h2", "out"]
    assert t.num_neurons == 14 and t.num_agents == 11
    assert t.agent_ids[:2] == ("h1_0", "h1_1") and t.agent_ids[-1] == "out_1"
    assert t.depth == 3
    np.testing.assert_array_equal(t.presynaptic_index["h2"], np.arange(3, 7))
    np.testing.assert_array_equal(t.agent_neuron_index, np.arange(3, 14))


def test_mlp_without_hidden_layers_is_one_layer():
    t = Topology.mlp(3, [], 1)
    assert t.depth == 1 and t.agent_ids == ("out_0",)


def test_recurrent_and_sparse_are_cyclic():
    assert Topology.recurrent(3, 8, 1, leak=0.5).depth is None
    sparse = Topology.sparse(3, 20, 1, density=0.2, seed=0)
    assert sparse.depth is None
    for p in sparse.projections:
        assert p.mask is not None and (p.mask.sum(1) >= 1).all()  # nobody cut off
    assert Topology.sparse(3, 20, 1, density=0.2, seed=0, recurrent=False).depth == 2


def test_sparse_is_reproducible_from_seed():
    a, b = Topology.sparse(3, 20, 1, 0.2, seed=3), Topology.sparse(3, 20, 1, 0.2, seed=3)
    for p, q in zip(a.projections, b.projections, strict=True):
        np.testing.assert_array_equal(p.mask, q.mask)


def test_depth_uses_longest_path_with_skip_connection():
    groups = [NeuronGroup("in", 2, "identity", "input"), NeuronGroup("h", 3), NeuronGroup("out", 1, role="output")]
    t = Topology(groups, [Projection("in", "h"), Projection("h", "out"), Projection("in", "out")])
    assert t.depth == 2
    assert len(t.presynaptic_index["out"]) == 5  # h (3) then in (2), in projection order


def test_from_adjacency_builds_masked_blocks():
    a = np.zeros((6, 6))
    a[2, 0] = a[3, 1] = a[4, 2] = a[5, 3] = a[5, 4] = 1  # inputs 0,1; hidden 2,3,4; output 5
    t = Topology.from_adjacency(a, n_inputs=2, n_outputs=1)
    assert [g.size for g in t.groups] == [2, 3, 1]
    assert {(p.source, p.target) for p in t.projections} == {("in", "h"), ("h", "h"), ("h", "out")}
    assert t.depth is None  # h -> h


def test_from_module_round_trips_weights():
    module = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2), nn.Tanh())
    t, w = Topology.from_module(module)
    assert [(g.size, g.activation) for g in t.groups] == [(3, "identity"), (4, "relu"), (2, "tanh")]
    torch.testing.assert_close(w.blocks[0], module[0].weight)
    torch.testing.assert_close(w.biases[1], module[2].bias)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: NeuronGroup("1bad", 3), "group name '1bad'"),
        (lambda: NeuronGroup("h", 0), "size 0"),
        (lambda: NeuronGroup("h", 3, "softplus"), "activation 'softplus'"),
        (lambda: NeuronGroup("h", 3, leak=1.0), "leak 1.0"),
        (lambda: Topology([NeuronGroup("in", 2, "identity", "input")], []), "exactly one output group"),
        (lambda: Topology([NeuronGroup("in", 2, "identity", "input"), NeuronGroup("out", 1, role="output")],
                          [Projection("in", "nope")]), "unknown group 'nope'"),
        (lambda: Topology([NeuronGroup("in", 2, "identity", "input"), NeuronGroup("out", 1, role="output")],
                          [Projection("out", "in")]), "targets input group"),
        (lambda: Topology([NeuronGroup("in", 2, "identity", "input"), NeuronGroup("out", 1, role="output")],
                          [Projection("in", "out", np.ones((2, 2)))]), "expected (target size, source size) = (1, 2)"),
        (lambda: Topology.from_module(nn.Sequential(nn.Linear(3, 4), nn.Dropout())), "unsupported module Dropout"),
        (lambda: Topology.sparse(3, 4, 1, density=0.0), "density 0.0"),
    ],
)
def test_invalid_topologies_name_the_bad_value(build, message):
    with pytest.raises(TopologyError, match=None) as error:
        build()
    assert message in str(error.value)


def test_weights_are_checked_against_topology():
    t = Topology.mlp(3, [4], 1)
    w = NetworkWeights.init(t, seed=0)
    bad = NetworkWeights((torch.zeros(4, 2), w.blocks[1]), w.biases)
    with pytest.raises(TopologyError, match="weight block 'in' -> 'h1' has shape"):
        bad.checked(t)
    nan = NetworkWeights((w.blocks[0] * float("nan"), w.blocks[1]), w.biases)
    with pytest.raises(TopologyError, match="contains NaN"):
        nan.checked(t)


def test_masks_zero_the_weights():
    t = Topology.sparse(3, 10, 1, density=0.2, seed=0)
    w = NetworkWeights.init(t, seed=0)
    for p, block in zip(t.projections, w.blocks, strict=True):
        assert (block.numpy()[p.mask == 0] == 0).all()


def test_from_module_returns_a_named_result_that_unpacks() -> None:
    result = Topology.from_module(nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1)))
    topology, weights = result
    assert result.topology is topology and result.weights is weights
    assert topology.num_agents == 5 and weights.blocks[0].shape == (4, 3)


def test_check_network_kind_refuses_unknown_kinds_and_leaks_where_no_neuron_leaks() -> None:
    for kind in NETWORK_KINDS:
        check_network_kind(kind)
    check_network_kind("recurrent", 0.5)
    with pytest.raises(TopologyError, match=r"topology='lstm' \(--topology\) is unknown; use one of mlp, recurrent"):
        check_network_kind("lstm")
    for kind in ("mlp", "sparse"):
        with pytest.raises(TopologyError, match=rf"leak=0.3 \(--leak\) applies to --topology recurrent only; "
                                                rf"the '{kind}' network has no leak"):
            check_network_kind(kind, 0.3)
    with pytest.raises(TopologyError, match=r"leak=1.0 \(--leak\) must lie in \[0, 1\)"):
        check_network_kind("recurrent", 1.0)
    check_network_kind("sparse", density=1.0)
    for density in (0.0, 1.5):
        with pytest.raises(TopologyError, match=rf"density={density} \(--density\) must lie in \(0, 1\]"):
            check_network_kind("sparse", density=density)
    with pytest.raises(TopologyError, match=r"density=0.5 \(--density\) applies to --topology sparse only; the "
                                            r"'recurrent' network is dense"):
        check_network_kind("recurrent", density=0.5)
