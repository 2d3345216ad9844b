"""CoagentLearner and WeightMaxLearner: locality, a per-neuron reference loop, persistence, options, registry."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from neuron_env.agents.coagent import CoagentLearner, WeightMaxLearner
from neuron_env.agents.errors import CheckpointError, LearnerConfigError
from neuron_env.agents.registry import make_learner

from neuron_env import NeuronGroup, NeuronVecEnv, Projection, Topology, network_actions

from .conftest import settled_task_step

CLASSES = {"coagent": CoagentLearner, "weight-max": WeightMaxLearner}
GAMMA, LAMBDA, LAMBDA_V, LR_A, LR_A_HIDDEN, LR_V, SIGMA, SIGMA_H = 0.9, 0.7, 0.5, 0.05, 0.03, 0.02, 0.3, 0.4


def make(name: str, topology: Topology, **options: object) -> CoagentLearner:
    defaults = dict(gamma=GAMMA, trace_decay=LAMBDA, trace_decay_critic=LAMBDA_V, lr_actor=LR_A,
                    lr_actor_hidden=LR_A_HIDDEN, lr_critic=LR_V, noise_scale=SIGMA, noise_scale_hidden=SIGMA_H,
                    critic_context="presynaptic", seed=3, dtype=torch.float64)
    defaults.update(options)
    return CLASSES[name](topology, **defaults)


def transition_stream(learner: CoagentLearner, num_envs: int, steps: int, seed: int = 0) -> list[tuple]:
    """Fixed transitions: sampled settled states (some voltages clipped at a bound), rewards, ends."""
    g = torch.Generator().manual_seed(seed)
    topology = learner.topology
    stream = []
    for t in range(steps):
        v = torch.rand(num_envs, topology.num_neurons, generator=g, dtype=torch.float64) * 2 - 1
        v[:, learner.agent_neuron_index[::3]] = 1.0  # the censored-Gaussian branch (upper bound) ...
        v[:, learner.agent_neuron_index[1::4]] = -1.0  # ... and the lower one
        actions = v[:, learner.agent_neuron_index].clone()
        reward = torch.randn(num_envs, generator=g, dtype=torch.float64)
        v_next = torch.rand(num_envs, topology.num_neurons, generator=g, dtype=torch.float64) * 2 - 1
        terminated = torch.tensor([t == 1, False][:num_envs])
        truncated = torch.tensor([False, t == 2][:num_envs])
        stream.append((v, actions, reward, v_next, terminated, truncated))
    return stream


def drive(learner: CoagentLearner, stream: list[tuple]) -> None:
    for transition in stream:
        learner.store(*transition)
        learner.update()


def group_weights(learner: CoagentLearner, group: str) -> torch.Tensor:
    return learner.actor[[lay.name for lay in learner.layouts].index(group)]


# ------------------------------------------------------------------------------------------ locality
@pytest.mark.parametrize("context", ["presynaptic", "task"])
def test_coagent_update_reads_only_its_neighbours(context: str) -> None:
    topology = Topology.mlp(2, [3, 3, 3], 1)
    stream = transition_stream(make("coagent", topology), 2, 4)

    def learners_after_warmup() -> tuple[CoagentLearner, CoagentLearner]:
        pair = make("coagent", topology, critic_context=context), make("coagent", topology, critic_context=context)
        for learner in pair:
            drive(learner, stream[:3])
            learner.store(*stream[3])
        return pair

    def perturb(learner: CoagentLearner, groups: list[str]) -> None:
        for name in groups:
            group_weights(learner, name).add_(0.37)

    # h1 (presynaptic: the input; postsynaptic: h2): h3 and out are no neighbours
    reference, changed = learners_after_warmup()
    perturb(changed, ["h3", "out"])
    reference.update()
    changed.update()
    h1 = 0
    assert torch.equal(reference.actor[h1], changed.actor[h1])
    assert torch.equal(reference.critic[h1], changed.critic[h1])
    # h2 reads its presynaptic neighbour h1's voltages in the next state; out is no neighbour
    reference, changed = learners_after_warmup()
    perturb(changed, ["out"])
    reference.update()
    changed.update()
    assert torch.equal(reference.actor[1], changed.actor[1]) and torch.equal(reference.critic[1], changed.critic[1])
    reference, changed = learners_after_warmup()
    perturb(changed, ["h1"])
    reference.update()
    changed.update()
    assert not torch.equal(reference.critic[1], changed.critic[1])


def test_weight_max_hidden_update_reads_its_postsynaptic_neighbour_one_update_late() -> None:
    topology = Topology.mlp(2, [3, 3, 3], 1)
    stream = transition_stream(make("weight-max", topology), 2, 7)
    h1 = 0

    def h1_after(perturbed: list[str], before_update: int, last: int = 6) -> list[torch.Tensor]:
        learner = make("weight-max", topology)
        history = []
        for t, transition in enumerate(stream[:last + 1]):
            if t == before_update:
                for name in perturbed:
                    group_weights(learner, name).add_(0.37)
            learner.store(*transition)
            learner.update()
            history.append(learner.actor[h1].clone())
        return history

    reference = h1_after([], -1)
    assert not torch.equal(reference[3], reference[4]), "h1 must be learning by then (message chain is 3 groups deep)"
    # the output and h3 are no neighbours of h1: its update at t is bitwise unchanged
    assert torch.equal(h1_after(["out", "h3"], 5)[5], reference[5])
    # h2 is: its update at t - 1 made the change h1 reads at t ...
    changed = h1_after(["h2"], 4)
    assert torch.equal(changed[4], reference[4])  # ... and not before (one-update message delay)
    assert not torch.equal(changed[5], reference[5])


# ------------------------------------------------------------------------------ per-neuron reference
def phi_over_cdf(z: float) -> float:
    """φ(z) / Φ(z), from the definitions."""
    cdf = 0.5 * math.erfc(-z / math.sqrt(2.0))
    return math.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi) / cdf


class Unit:
    """One neuron, in plain per-neuron form."""

    def __init__(self, learner: CoagentLearner, group: NeuronGroup, row: int, lag: int, num_envs: int) -> None:
        topology = learner.topology
        self.group, self.row, self.lag = group, row, lag
        self.index = topology.group_slice[group.name].start + row
        self.pre = [int(i) for i in topology.presynaptic_index[group.name]]
        inputs = list(range(topology.group_slice["in"].start, topology.group_slice["in"].stop))
        self.context = self.pre if learner.critic_context == "presynaptic" else (
            self.pre + [i for i in inputs if i not in self.pre])
        gi = topology.agent_groups.index(group)
        weights = learner.weights
        self.k = weights.blocks[topology.incoming[group.name][0]][row].clone()
        self.b = weights.biases[gi][row].clone()
        self.output = group.role == "output"
        self.sigma = SIGMA if self.output else SIGMA_H
        self.lr = LR_A if self.output else LR_A_HIDDEN
        self.has_critic = self.output or isinstance(learner, CoagentLearner) and not learner.weight_max
        self.theta = torch.zeros(len(self.context) + 1, dtype=torch.float64)
        self.trace = [torch.zeros(len(self.pre) + 1, dtype=torch.float64) for _ in range(num_envs)]
        self.critic_trace = [torch.zeros(len(self.context) + 1, dtype=torch.float64) for _ in range(num_envs)]
        self.past_traces: list[list[torch.Tensor]] = [
            [torch.zeros(len(self.pre) + 1, dtype=torch.float64) for _ in range(num_envs)] for _ in range(lag)]
        self.inbox = [0.0] * num_envs

    def mean(self, v: torch.Tensor) -> tuple[float, float]:
        potential = float(v[self.pre] @ self.k + self.b)
        return math.tanh(potential), 1.0 - math.tanh(potential) ** 2


def reference_units(learner: CoagentLearner, lags: dict[str, int], num_envs: int) -> list[Unit]:
    return [Unit(learner, g, row, lags[g.name], num_envs) for g in learner.topology.agent_groups
            for row in range(g.size)]


def reference_update(units: list[Unit], transition: tuple, wm: bool, num_envs: int) -> None:
    v, _, reward, v_next_in, terminated, truncated = transition
    v_next = v_next_in.clone()
    for u in units:  # settle the next state with the current network, neuron by neuron, in level order
        for e in range(num_envs):
            v_next[e, u.index] = u.mean(v_next[e])[0]
    requests = {}
    for u in units:  # the Python loop over neurons the learner must not have
        signals, paired = [], []
        for e in range(num_envs):
            mu, dmu = u.mean(v[e])
            a = float(v[e, u.index])
            if a >= 1.0:
                dlogp = phi_over_cdf((mu - 1.0) / u.sigma) / u.sigma
            elif a <= -1.0:
                dlogp = -phi_over_cdf((-1.0 - mu) / u.sigma) / u.sigma
            else:
                dlogp = (a - mu) / u.sigma**2
            u.trace[e] = GAMMA * LAMBDA * u.trace[e] + dlogp * dmu * torch.cat([v[e, u.pre], torch.ones(1).double()])
            if u.has_critic:
                x = torch.cat([v[e, u.context], torch.ones(1).double()])
                x_next = torch.cat([v_next[e, u.context], torch.ones(1).double()])
                delta = float(reward[e] + GAMMA * (1 - float(terminated[e])) * (u.theta @ x_next) - u.theta @ x)
                u.critic_trace[e] = GAMMA * LAMBDA_V * u.critic_trace[e] + x
                signals.append(delta)
                paired.append(u.trace[e].clone())
            else:
                signals.append(u.inbox[e])
                paired.append(u.past_traces[0][e].clone() if u.lag else u.trace[e].clone())
        if u.has_critic:
            u.theta_step = sum(signals[e] * u.critic_trace[e] for e in range(num_envs)) / num_envs
        elif u.lag:
            u.past_traces = u.past_traces[1:] + [[t.clone() for t in u.trace]]
        requests[u.index] = [signals[e] * paired[e] for e in range(num_envs)]
    inbox = {u.index: [0.0] * num_envs for u in units}
    for j in units:  # Weight Maximization: per copy, the change of each presynaptic neuron's outgoing norm
        for col, m in enumerate(j.pre):
            if m in inbox:
                for e in range(num_envs):
                    w, du = float(j.k[col]), float(requests[j.index][e][col])
                    inbox[m][e] += ((w + j.lr * du) ** 2 - w**2) / j.lr
    for u in units:
        step = sum(requests[u.index]) / num_envs
        u.k = u.k + u.lr * step[:-1]
        u.b = u.b + u.lr * step[-1]
        if u.has_critic:
            u.theta = u.theta + LR_V * u.theta_step
        if wm and not u.has_critic:
            u.inbox = inbox[u.index]
        for e in range(num_envs):
            if terminated[e] or truncated[e]:
                u.trace[e] = torch.zeros_like(u.trace[e])
                u.critic_trace[e] = torch.zeros_like(u.critic_trace[e])


@pytest.mark.parametrize("name,context", [("coagent", "presynaptic"), ("coagent", "task"),
                                          ("weight-max", "presynaptic"), ("weight-max", "task")])
def test_batched_update_equals_a_per_neuron_loop(name: str, context: str) -> None:
    topology = Topology.mlp(2, [3, 2], 1)
    learner = make(name, topology, critic_context=context)
    num_envs = 2
    lags = {"h1": 2, "h2": 1, "out": 0} if name == "weight-max" else {"h1": 0, "h2": 0, "out": 0}
    units = reference_units(learner, lags, num_envs)
    for t, transition in enumerate(transition_stream(learner, num_envs, 5)):
        learner.store(*transition)
        learner.update()
        reference_update(units, transition, name == "weight-max", num_envs)
        weights = learner.weights
        for u in units:
            gi = topology.agent_groups.index(u.group)
            block = weights.blocks[topology.incoming[u.group.name][0]]
            assert torch.allclose(block[u.row], u.k, atol=1e-10, rtol=0), (t, u.group.name, u.row)
            assert torch.allclose(weights.biases[gi][u.row], u.b, atol=1e-10, rtol=0)
            critic = learner.critic[gi]
            if u.has_critic:
                assert torch.allclose(critic[u.row], u.theta, atol=1e-10, rtol=0), (t, u.group.name, u.row)
            else:
                assert critic is None
            for e in range(num_envs):
                assert torch.allclose(learner.actor_trace[gi][e, u.row], u.trace[e], atol=1e-10, rtol=0)
    if name == "weight-max":
        assert any(float(u.k.sub(make(name, topology).weights.blocks[0][u.row]).abs().max()) > 0
                   for u in units if u.group.name == "h1"), "h1 must have received messages"


# -------------------------------------------------------------------------------------- persistence
@pytest.mark.parametrize("name", list(CLASSES))
def test_checkpoint_round_trip_continues_bitwise(name: str) -> None:
    topology = Topology.mlp(2, [3, 2], 1)
    stream = transition_stream(make(name, topology), 2, 6, seed=4)
    original = make(name, topology, dtype=torch.float32)
    for transition in stream[:3]:
        original.act(transition[0])
        original.store(*transition)
        original.update()
    original.store(*stream[3])  # a queued step travels too
    restored = make(name, topology, dtype=torch.float32, seed=99)
    restored.load_state_dict(original.state_dict())
    for learner in (original, restored):
        learner.update()
    for transition in stream[4:]:
        acts = [learner.act(transition[0]) for learner in (original, restored)]
        assert torch.equal(acts[0], acts[1])
        stats = []
        for learner in (original, restored):
            learner.store(*transition)
            stats.append(learner.update())
        assert all(torch.equal(stats[0][k], stats[1][k]) for k in stats[0])
    for a, b in zip(original.actor + original.actor_trace, restored.actor + restored.actor_trace, strict=True):
        assert torch.equal(a, b)


def test_checkpoint_of_another_learner_or_network_is_refused() -> None:
    topology = Topology.mlp(2, [3, 2], 1)
    state = make("coagent", topology).state_dict()
    with pytest.raises(CheckpointError, match="coagent"):
        make("weight-max", topology).load_state_dict(state)
    with pytest.raises(CheckpointError):
        make("coagent", Topology.mlp(2, [4, 2], 1)).load_state_dict(state)
    with pytest.raises(CheckpointError, match="critic_context"):
        make("coagent", topology, critic_context="task").load_state_dict(state)


def test_adam_actor_round_trip() -> None:
    topology = Topology.mlp(2, [3, 2], 1)
    stream = transition_stream(make("weight-max", topology), 2, 5)
    original = make("weight-max", topology, actor_optimizer="adam")
    drive(original, stream[:3])
    restored = make("weight-max", topology, actor_optimizer="adam")
    restored.load_state_dict(original.state_dict())
    drive(original, stream[3:])
    drive(restored, stream[3:])
    assert all(torch.equal(a, b) for a, b in zip(original.actor, restored.actor, strict=True))


# ------------------------------------------------------------------------------------------- options
@pytest.mark.parametrize("name", list(CLASSES))
@pytest.mark.parametrize("options,match", [
    ({"critic_context": "all"}, "critic_context"), ({"gamma": 1.5}, "gamma"), ({"trace_decay": -0.1}, "trace_decay"),
    ({"noise_scale": 0.0}, "noise_scale"), ({"noise_scale_hidden": -1.0}, "noise_scale_hidden"),
    ({"lr_actor": -1.0}, "lr_actor"), ({"lr_critic": math.nan}, "lr_critic"),
    ({"actor_optimizer": "rmsprop"}, "actor_optimizer"),
])
def test_bad_options_raise(name: str, options: dict, match: str) -> None:
    with pytest.raises(LearnerConfigError, match=match):
        make_learner(name, Topology.mlp(2, [3], 1), options)


@pytest.mark.parametrize("name", list(CLASSES))
def test_cyclic_topology_and_changed_env_count_raise(name: str) -> None:
    groups = [NeuronGroup("in", 2, "identity", "input"), NeuronGroup("h", 3, "tanh"),
              NeuronGroup("out", 1, "tanh", "output")]
    cyclic = Topology(groups, [Projection("in", "h"), Projection("h", "h", np.ones((3, 3))), Projection("h", "out")])
    with pytest.raises(LearnerConfigError, match="acyclic"):
        make_learner(name, cyclic, {})
    learner = make(name, Topology.mlp(2, [3], 1))
    stream = transition_stream(learner, 2, 1)
    learner.store(*stream[0])
    with pytest.raises(LearnerConfigError, match="env copies"):
        learner.store(*(t[:1] for t in stream[0]))
    learner.update()
    with pytest.raises(LearnerConfigError, match="store"):
        learner.update()


@pytest.mark.parametrize("name", list(CLASSES))
def test_freeze_hidden_keeps_hidden_weights(name: str) -> None:
    topology = Topology.mlp(2, [3, 2], 1)
    learner = make_learner(name, topology, {"freeze_hidden": True, "lr_actor": 0.05}, dtype=torch.float64)
    start = [w.clone() for w in learner.actor]
    for transition in transition_stream(learner, 2, 5):
        learner.store(*transition)
        learner.update()
    assert torch.equal(learner.actor[0], start[0]) and torch.equal(learner.actor[1], start[1])
    assert not torch.equal(learner.actor[2], start[2])


# ------------------------------------------------------------------------------------------ registry
@pytest.mark.parametrize("name", list(CLASSES))
def test_registry_smoke_drive_on_pendulum(name: str) -> None:
    topology = Topology.mlp(3, [8, 8], 1)
    learner = make_learner(name, topology, {"noise_scale": 0.2, "critic_context": "task"}, seed=1)
    assert learner.name == name and not learner.off_policy and learner.granularity == "settled"
    env = NeuronVecEnv("Pendulum-v1", topology, num_envs=2, validate=False)
    voltages, _ = env.reset(seed=0)
    stats = {}
    for _ in range(300):
        voltages, step = settled_task_step(learner, env, voltages)
        assert learner.ready() and learner.num_transitions == 1
        stats = learner.update()
        assert not learner.ready()
        learner.reset_noise(step.terminated | step.truncated)
    env.close()
    assert learner.num_updates == 300 and all(s.dim() == 0 and torch.isfinite(s) for s in stats.values())
    assert "td_error" in stats and ("hidden_reward" in stats) == (name == "weight-max")
    # the deterministic policy is the network: per level, and all at once on given voltages
    v = voltages.clone()
    for level in range(1, topology.depth + 1):
        v[:, learner.agent_neuron_index] = learner.act(v, explore=False, level=level)
    assert torch.allclose(v, learner.settle(voltages))
    assert torch.equal(learner.act(voltages, explore=False), network_actions(voltages, topology, learner.weights))
