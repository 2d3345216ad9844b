"""``EpropLearner`` (``--learner eprop``): traces, timing, exactness, locality, per-neuron loop, clocks, resume."""

from __future__ import annotations

import copy
import io
from collections.abc import Callable

import numpy as np
import pytest
import torch
from neuron_env.agents.eprop import EpropConfig, EpropLearner, output_distances
from neuron_env.agents.errors import CheckpointError, LearnerConfigError
from neuron_env.agents.registry import make_learner
from neuron_env.agents.replay import Batch

from neuron_env import NeuronGroup, NeuronVecEnv, Projection, Topology
from neuron_env.dynamics import apply_actions

from .conftest import assert_states_equal

F64 = torch.float64


# ----------------------------------------------------------------------------------------------- helpers
def chain(leaks: tuple[float, float] = (0.5, 0.0), recurrent: bool = True, outputs: int = 2) -> Topology:
    """in(2) -> h1(3) -> h2(2) -> out: h1 at distance 2 (recurrent, masked), h2 at distance 1."""
    mask = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0]])
    groups = [NeuronGroup("in", 2, "identity", "input"), NeuronGroup("h1", 3, "tanh", leak=leaks[0]),
              NeuronGroup("h2", 2, "tanh", leak=leaks[1]), NeuronGroup("out", outputs, "tanh", "output")]
    projections = [Projection("in", "h1"), Projection("h1", "h2"), Projection("h2", "out")]
    if recurrent:
        projections.insert(1, Projection("h1", "h1", mask))
    return Topology(groups, projections)


def masked_recurrent(leak: float = 0.5) -> Topology:
    """in(2) -> h(4) with a masked leaky h -> h -> out(2): h_0 and h_3 are not connected either way."""
    mask = np.array([[1, 1, 0, 0], [1, 0, 1, 0], [0, 1, 1, 1], [0, 0, 1, 1]])
    groups = [NeuronGroup("in", 2, "identity", "input"), NeuronGroup("h", 4, "tanh", leak=leak),
              NeuronGroup("out", 2, "tanh", "output")]
    return Topology(groups, [Projection("in", "h"), Projection("h", "h", mask), Projection("h", "out")])


def random_ticks(topology: Topology, ticks: int, copies: int, seed: int, rate: float = 1.0,
                 ends: tuple[int, ...] = ()) -> list[tuple[torch.Tensor, ...]]:
    """``(v, actions, reward, v_next, terminated, fired)`` per tick: random voltages, not the network's."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for tick in range(ticks):
        v = torch.rand(copies, topology.num_neurons, generator=g, dtype=F64) * 2 - 1
        v_next = torch.rand(copies, topology.num_neurons, generator=g, dtype=F64) * 2 - 1
        actions = torch.rand(copies, topology.num_agents, generator=g, dtype=F64) * 2 - 1
        reward = torch.randn(copies, generator=g, dtype=F64)
        terminated = torch.zeros(copies, dtype=F64)
        if tick in ends:
            terminated[0] = 1.0
        fired = torch.rand(copies, topology.num_agents, generator=g) < rate
        out.append((v, actions, reward, v_next, terminated, fired))
    return out


def replay_batch(topology: Topology, size: int, generator: torch.Generator) -> Batch:
    v = torch.rand(size, topology.num_neurons, generator=generator, dtype=F64) * 2 - 1
    return Batch(v, torch.rand(size, topology.num_agents, generator=generator, dtype=F64) * 2 - 1,
                 torch.randn(size, generator=generator, dtype=F64),
                 torch.rand(size, topology.num_neurons, generator=generator, dtype=F64) * 2 - 1,
                 (torch.rand(size, generator=generator) < 0.2).to(F64))


def d_tanh(potential: torch.Tensor) -> torch.Tensor:
    return 1 - torch.tanh(potential) ** 2


def group_index(learner: EpropLearner, name: str) -> int:
    return [lay.name for lay in learner.layouts].index(name)


# ----------------------------------------------------------------------------------------------- traces
@pytest.mark.parametrize("leak", [0.0, 0.6])
def test_the_trace_is_the_analytic_filtered_product(leak: float) -> None:
    """One hidden neuron, random voltages and firing: ``E(T) = Σ_k f_k (1−λ) σ'(u_k) p_k λ^(T−1−k)`` (leaky);
    leak-free, the product of the last tick it fired (a silent tick keeps it)."""
    groups = [NeuronGroup("in", 2, "identity", "input"), NeuronGroup("h", 1, "tanh", leak=leak),
              NeuronGroup("out", 1, "tanh", "output")]
    topology = Topology(groups, [Projection("in", "h"), Projection("h", "h"), Projection("h", "out")])
    learner = EpropLearner(topology, dtype=F64, seed=1)
    ticks = random_ticks(topology, 9, 1, seed=2, rate=0.6)
    k = learner.actor[0][0]
    expected = torch.zeros(4, dtype=F64)
    for v, actions, reward, v_next, terminated, fired in ticks:
        learner.store(v, actions, reward, v_next, terminated, fired=fired)
        p = torch.cat([v[0, [0, 1, 2]], torch.ones(1, dtype=F64)])  # in_0, in_1, h (its own voltage), bias
        product = d_tanh(p @ k) * p
        if leak > 0:
            expected = leak * expected + (1 - leak) * product * float(fired[0, 0])
        elif fired[0, 0]:
            expected = product
        torch.testing.assert_close(learner.traces[0][0][0, 0], expected, atol=1e-14, rtol=0)
    assert 0 < int(torch.stack([t[5][0, 0] for t in ticks]).sum()) < 9  # both fired and silent ticks


def test_a_neuron_that_did_not_fire_keeps_its_trace_and_its_parameters() -> None:
    topology = chain(leaks=(0.5, 0.0))  # h1 leaky, h2 leak-free
    learner = EpropLearner(topology, dtype=F64, seed=3, lr_actor=0.05)
    generator = torch.Generator().manual_seed(0)
    ticks = random_ticks(topology, 8, 2, seed=4)
    h1, h2 = group_index(learner, "h1"), group_index(learner, "h2")
    for tick, (v, actions, reward, v_next, terminated, fired) in enumerate(ticks):
        silent = tick >= 5
        if silent:  # h1_0 and h2_1 silent in every copy, everyone else fires
            fired = torch.ones_like(fired)
            fired[:, topology.agent_slice["h1"].start + 0] = False
            fired[:, topology.agent_slice["h2"].start + 1] = False
        before = [w.clone() for w in learner.actor]
        traces_before = [learner.traces[i][0].clone() if learner.traces[i] else None for i in (h1, h2)]
        learner.store(v, actions, reward, v_next, terminated, fired=fired)
        learner.update(replay_batch(topology, 8, generator))
        if silent:
            assert torch.equal(learner.traces[h2][0][:, 1], traces_before[1][:, 1])  # leak-free: kept, bitwise
            torch.testing.assert_close(learner.traces[h1][0][:, 0], 0.5 * traces_before[0][:, 0], atol=0, rtol=0)
            assert torch.equal(learner.actor[h1][0], before[h1][0]) and torch.equal(learner.actor[h2][1],
                                                                                    before[h2][1])
            assert not torch.equal(learner.actor[h1][1], before[h1][1])  # its fired neighbours stepped
            assert not torch.equal(learner.actor[h2][0], before[h2][0])
    state = learner.actor_optimizer_state[h1]["step"]
    assert state[0] < state[1]  # a silent neuron's Adam does not count the tick


# --------------------------------------------------------------------------------------- exactness
def simulate(topology: Topology, learner: EpropLearner, ticks: int, copies: int,
             seed: int) -> list[tuple[torch.Tensor, ...]]:
    """The network's own ticks in float64 (its noise-free policy, the env's leaky tick), random inputs each tick.

    Returns ``(v, actions, reward, v_next, terminated, fired)`` per tick, fired all true.
    """
    g = torch.Generator().manual_seed(seed)
    leak = torch.cat([torch.full((grp.size,), grp.leak, dtype=F64) for grp in topology.agent_groups])
    inputs = topology.group_slice["in"]
    v = torch.zeros(copies, topology.num_neurons, dtype=F64)
    v[:, inputs] = torch.randn(copies, inputs.stop - inputs.start, generator=g, dtype=F64)
    out = []
    for _ in range(ticks):
        actions = learner.act(v, explore=False)
        v_next = apply_actions(v, actions, topology.agent_span, leak)
        v_next[:, inputs] = torch.randn(copies, inputs.stop - inputs.start, generator=g, dtype=F64)
        out.append((v, actions, torch.randn(copies, generator=g, dtype=F64), v_next, torch.zeros(copies, dtype=F64),
                    torch.ones(copies, topology.num_agents, dtype=torch.bool)))
        v = v_next
    return out


def test_without_recurrent_synapses_eprop_with_true_feedback_is_the_exact_gradient_of_the_ceiling() -> None:
    """No recurrent synapse, feedback through the true weights, leak-free intermediate group: a group at
    distance ``d`` steps on tick ``t ≥ 2d`` along exactly the gradient (truncated BPTT by autograd, the ceiling's)
    of the objective ``Q(x(t−d), μ(v(t−d)))``, the leak of its own voltage included (its trace)."""
    topology = chain(leaks=(0.7, 0.0), recurrent=False)
    options = {"lr_actor": 0.0, "lr_critic": 0.0, "tau": 0.0, "dtype": F64, "seed": 5}
    local = EpropLearner(topology, **options)
    ceiling = EpropLearner(topology, credit="bptt", bptt_window=30, **options)
    for edges in local.edges:
        for edge in edges:  # F = W: weight transport, for this test only
            local.feedback_weights[edge.projection] = local.weights.blocks[edge.projection].clone()
    assert local.distances == [2, 1, 0]
    generator = torch.Generator().manual_seed(1)
    ascents: dict[str, list[list[torch.Tensor | None]]] = {"local": [], "ceiling": []}
    ticks = simulate(topology, local, 9, 3, seed=1)
    for v, actions, reward, v_next, terminated, fired in ticks:
        batch = replay_batch(topology, 4, generator)
        for name, learner in (("local", local), ("ceiling", ceiling)):
            learner.store(v, actions, reward, v_next, terminated, fired=fired)
            learner.update(batch)
            ascents[name].append([None if a is None else a.clone() for a in learner.ascents])
    h1, h2 = 0, 1
    compared = 0
    for t in range(len(ticks)):
        for group, d in ((h2, 1), (h1, 2)):
            local_ascent = ascents["local"][t][group]
            if t < 2 * d:  # it keeps 2d + 1 traces: it steps once that many ticks are stored
                assert local_ascent is None
                continue
            exact = ascents["ceiling"][t - d][group]
            assert local_ascent is not None and exact is not None, (t, group)
            torch.testing.assert_close(local_ascent, exact, atol=1e-13, rtol=1e-10)
            assert exact.abs().max() > 1e-6
            compared += 1
    assert compared == 2 * len(ticks) - 6


# ------------------------------------------------------------------ batched == per-neuron loop, shipped defaults
class Neuron:
    """One neuron's parameters, trace history and wiring, in plain per-neuron form."""

    def __init__(self, topology: Topology, learner: EpropLearner, agent: int) -> None:
        self.group = next(g for g in topology.agent_groups
                          if agent in range(*topology.agent_slice[g.name].indices(10**6)))
        self.gi = topology.agent_groups.index(self.group)
        self.row = agent - topology.agent_slice[self.group.name].start
        self.agent = agent
        self.pre = topology.presynaptic_index[self.group.name]
        self.output = self.group.role == "output"
        self.leak = self.group.leak
        self.k = learner.actor[self.gi][self.row].clone()
        self.k_target = learner.target_actor[self.gi][self.row].clone()
        self.mask = torch.cat([torch.ones(topology.group[topology.projections[i].source].size, dtype=F64)
                               if topology.projections[i].mask is None
                               else torch.tensor(topology.projections[i].mask[self.row], dtype=F64)
                               for i in topology.incoming[self.group.name]] + [torch.ones(1, dtype=F64)])
        distance = learner.distances[self.gi]
        self.depth = None if distance in (None, 0) else 2 * distance
        self.traces: list[torch.Tensor] = []
        self.gains: list[torch.Tensor] = []
        self.outbox: list[torch.Tensor | None] = [None, None]
        #: (postsynaptic neuron, fixed random feedback weight) per message-carrying synapse
        self.post: list[tuple[Neuron, float]] = []
        self.row_param = self.k.clone().requires_grad_(True)
        self.adam = torch.optim.Adam([self.row_param], lr=learner.lr_actor)

    def p(self, v: torch.Tensor) -> torch.Tensor:
        return torch.cat([v[:, self.pre], torch.ones(v.shape[0], 1, dtype=F64)], 1)

    def store(self, v: torch.Tensor, fired: torch.Tensor, done: torch.Tensor) -> None:
        if self.depth is None:
            return
        p = self.p(v)
        dmu = d_tanh(p @ self.k)
        previous = self.traces[0] if self.traces else torch.zeros_like(p)
        on = fired[:, self.agent]
        if self.leak > 0:
            advanced = self.leak * previous + (1 - self.leak) * dmu[:, None] * p
            silent = self.leak * previous
        else:
            advanced, silent = dmu[:, None] * p, previous
        trace = torch.where(on[:, None], advanced, silent)
        trace[done] = 0.0
        self.traces.insert(0, trace)
        self.gains.insert(0, torch.where(on, (1 - self.leak) * dmu, torch.zeros_like(dmu)))
        del self.traces[self.depth + 1:], self.gains[self.depth + 1:]

    def step(self, ascent: torch.Tensor, fired_any: bool) -> None:
        if not fired_any:
            return
        self.row_param.grad = -(ascent * self.mask)
        self.adam.step()
        self.k = self.row_param.detach().clone()


class Reference:
    """The rule of the module doc written neuron by neuron; the joint output critic by autograd and Adam."""

    def __init__(self, topology: Topology, learner: EpropLearner) -> None:
        self.topology, self.config = topology, learner.config
        self.neurons = [Neuron(topology, learner, a) for a in range(topology.num_agents)]
        by_index = {int(topology.agent_neuron_index[n.agent]): n for n in self.neurons}
        for edges in learner.edges:
            for edge in edges:
                projection = topology.projections[edge.projection]
                source = topology.group_slice[projection.source]
                for m in (n for n in self.neurons if n.group.name == projection.target):
                    for j, index in enumerate(range(source.start, source.stop)):
                        fixed = float(learner.feedback_weights[edge.projection][m.row, j])
                        by_index[index].post.append((m, fixed))
        out = [lay.name for lay in learner.layouts].index("out")
        self.critic = {k: v.clone().requires_grad_(True) for k, v in learner.critic[out].items()}
        self.target_critic = {k: v.clone() for k, v in learner.target_critic[out].items()}
        self.critic_adam = torch.optim.Adam(list(self.critic.values()), lr=self.config.lr_critic)
        pre = topology.presynaptic_index["out"]
        inputs = np.arange(topology.group_slice["in"].start, topology.group_slice["in"].stop)
        self.context = np.concatenate([pre, [i for i in inputs if i not in pre]]).astype(int)
        self.outputs = [n for n in self.neurons if n.output]
        self.live: tuple[torch.Tensor, torch.Tensor] | None = None

    @staticmethod
    def q(params: dict[str, torch.Tensor], x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        h1 = torch.relu(x @ params["w1x"] + a @ params["w1a"] + params["b1"])
        return torch.relu(h1 @ params["w2"] + params["b2"]) @ params["w3"] + params["b3"]

    def store(self, v: torch.Tensor, fired: torch.Tensor, done: torch.Tensor) -> None:
        for n in self.neurons:
            n.store(v, fired, done)
            n.outbox = [None, n.outbox[0]]
        self.live = (v, fired)

    def update(self, batch: Batch) -> None:
        v, actions, reward, v_next, terminated = batch
        gamma, tau = self.config.gamma, self.config.tau
        with torch.no_grad():
            a_next = torch.stack([torch.tanh(n.p(v_next) @ n.k_target) for n in self.outputs], 1)
            y = reward + gamma * (1 - terminated) * self.q(self.target_critic, v_next[:, self.context], a_next)
        a = torch.stack([actions[:, n.agent] for n in self.outputs], 1)
        self.critic_adam.zero_grad()
        ((y - self.q(self.critic, v[:, self.context], a)) ** 2).mean().backward()
        self.critic_adam.step()
        if self.live is not None:
            self.actor_step(*self.live)
            self.live = None
        for n in self.neurons:
            n.k_target = (1 - tau) * n.k_target + tau * n.k
        self.target_critic = {k: (1 - tau) * self.target_critic[k] + tau * p.detach() for k, p in self.critic.items()}

    def actor_step(self, v: torch.Tensor, fired: torch.Tensor) -> None:
        steps = []
        mu = torch.stack([torch.tanh(n.p(v) @ n.k) for n in self.outputs], 1).requires_grad_(True)
        (slope,) = torch.autograd.grad(self.q(self.critic, v[:, self.context], mu).sum(), mu)
        for j, n in enumerate(self.outputs):
            on = fired[:, n.agent].to(F64)
            p = n.p(v)
            message = on * d_tanh(p @ n.k) * slope[:, j]
            steps.append((n, (message[:, None] * p).mean(0), message))
        for n in self.neurons:
            if n.output or n.depth is None or len(n.traces) <= n.depth:
                continue
            received = [m.outbox[1] for m, _ in n.post]
            if any(message is None for message in received):
                continue
            signal = sum(fixed * message for (_, fixed), message in zip(n.post, received, strict=True))
            on = fired[:, n.agent].to(F64)
            steps.append((n, ((on * signal)[:, None] * n.traces[n.depth]).mean(0), n.gains[n.depth] * signal))
        for n, ascent, message in steps:
            n.step(ascent, bool(fired[:, n.agent].any()))
            n.outbox[0] = message


def assert_matches(learner: EpropLearner, reference: Reference) -> None:
    for n in reference.neurons:
        torch.testing.assert_close(learner.actor[n.gi][n.row], n.k, atol=1e-10, rtol=0)
        torch.testing.assert_close(learner.target_actor[n.gi][n.row], n.k_target, atol=1e-10, rtol=0)
        if n.traces:
            i = n.gi
            torch.testing.assert_close(learner.traces[i][0][:, n.row], n.traces[0], atol=1e-12, rtol=0)
    out = [lay.name for lay in learner.layouts].index("out")
    for name, value in reference.critic.items():
        torch.testing.assert_close(learner.critic[out][name], value.detach(), atol=1e-10, rtol=0)


@pytest.mark.parametrize("build", [masked_recurrent, lambda: chain(leaks=(0.5, 0.3))], ids=["recurrent", "chain"])
@pytest.mark.parametrize("rate", [1.0, 0.6])
def test_batched_update_equals_a_per_neuron_loop_on_the_shipped_defaults(build: Callable[[], Topology],
                                                                          rate: float) -> None:
    """``EpropConfig()`` as shipped (joint critic on the task context by Adam, per-neuron Adam actor steps at its
    rates, γ, τ) against the rule written neuron by neuron, over ticks with firing masks and an episode end."""
    topology = build()
    learner = EpropLearner(topology, EpropConfig(), seed=3, dtype=F64)
    reference = Reference(topology, learner)
    generator = torch.Generator().manual_seed(7)
    ticks = random_ticks(topology, 9, 3, seed=8, rate=rate, ends=(4,))
    for v, actions, reward, v_next, terminated, fired in ticks:
        fired_arg = None if rate == 1.0 else fired
        learner.store(v, actions, reward, v_next, terminated, fired=fired_arg)
        reference.store(v, fired, terminated.bool())
        batch = replay_batch(topology, 6, generator)
        learner.update(batch)
        reference.update(batch)
        assert_matches(learner, reference)
    fresh = EpropLearner(topology, EpropConfig(), seed=3, dtype=F64)
    assert all(not torch.equal(w, w0) for w, w0 in zip(learner.actor, fresh.actor, strict=True))  # every group moved
    for p, block in zip(topology.projections, learner.weights.blocks, strict=True):
        if p.mask is not None:  # masked synapses stay exactly zero
            assert torch.all(block[torch.tensor(p.mask) == 0] == 0)


# ------------------------------------------------------------------------------------------ locality audit
def audit_run(perturb: Callable[[EpropLearner], None] | None, at: int = 3,
              ticks: int = 9) -> tuple[list[list[torch.Tensor]], list[list[torch.Tensor]]]:
    """Every group's actor and newest trace after each tick, on fixed voltages and batches.

    ``perturb`` changes the learner before tick ``at``."""
    topology = chain(leaks=(0.5, 0.3))
    learner = EpropLearner(topology, seed=2, dtype=F64, lr_actor=0.01)
    generator = torch.Generator().manual_seed(3)
    actors, traces = [], []
    for tick, (v, actions, reward, v_next, terminated, fired) in enumerate(random_ticks(topology, ticks, 2, 4,
                                                                                        rate=0.8)):
        if tick == at and perturb is not None:
            perturb(learner)
        learner.store(v, actions, reward, v_next, terminated, fired=fired)
        learner.update(replay_batch(topology, 5, generator))
        actors.append([w.clone() for w in learner.actor])
        traces.append([ring[0].clone() if ring else torch.zeros(0) for ring in learner.traces])
    return actors, traces


def perturbed(group: str, rows: slice = slice(None), targets: bool = True) -> Callable[[EpropLearner], None]:
    """Add noise to ``rows`` of ``group``'s actor and (``targets``) its target actor and critic."""

    def perturb(learner: EpropLearner) -> None:
        g = torch.Generator().manual_seed(9)
        i = group_index(learner, group)
        tensors = [learner.actor[i][rows]]
        if targets:
            tensors += [learner.target_actor[i][rows], *learner.critic[i].values(), *learner.target_critic[i].values()]
        for t in tensors:
            t.add_(torch.randn(t.shape, generator=g, dtype=t.dtype) * 0.3)

    return perturb


H1, H2, OUT, AT = 0, 1, 2, 3


def test_locality_audit_a_neuron_reads_its_neighbours_messages_a_hop_per_tick() -> None:
    """DESIGN.md §1 on in -> h1 (recurrent, masked, leaky) -> h2 (leaky) -> out, on fixed voltages.

    A hidden neuron's trace and step read its own parameters, its presynaptic voltages and the messages of
    the neurons it projects to, which were sent the tick before. ``out`` (actor, critic, target copies) is no
    neighbour of h1: its change reaches h2 one tick later and h1 two ticks later, through their messages."""
    base_actor, base_trace = audit_run(None)
    actor, trace = audit_run(perturbed("out"))
    for tick in range(len(base_actor)):
        for group in (H1, H2):  # a trace reads its own parameters (as they were at the tick) and voltages only
            same_before = tick == 0 or torch.equal(actor[tick - 1][group], base_actor[tick - 1][group])
            assert torch.equal(trace[tick][group], base_trace[tick][group]) == same_before, (tick, group)
        assert torch.equal(actor[tick][H2], base_actor[tick][H2]) == (tick < AT + 1), tick
        assert torch.equal(actor[tick][H1], base_actor[tick][H1]) == (tick < AT + 2), tick
    # the output's update reads neither hidden group's parameters (its TD target: its own target copy's action)
    actor, _ = audit_run(perturbed("h1"))
    assert all(torch.equal(a[OUT], b[OUT]) for a, b in zip(actor, base_actor, strict=True))
    actor, _ = audit_run(perturbed("h2"))
    assert all(torch.equal(a[OUT], b[OUT]) for a, b in zip(actor, base_actor, strict=True))
    # positive direction: h2 (a neighbour) reaches h1 through its message, once its new gains are paired
    assert not torch.equal(actor[-1][H1], base_actor[-1][H1])


def test_locality_audit_within_a_recurrent_group_a_non_neighbour_changes_nothing() -> None:
    """h1_0 and h1_1 are neither pre- nor postsynaptic to each other: h1_1's parameters never reach h1_0."""
    base_actor, base_trace = audit_run(None)
    actor, trace = audit_run(perturbed("h1", rows=slice(1, 2), targets=False))
    for tick in range(len(base_actor)):
        assert torch.equal(actor[tick][H1][0], base_actor[tick][H1][0])
        assert torch.equal(trace[tick][H1][:, 0], base_trace[tick][H1][:, 0])
    assert not torch.equal(actor[-1][H1][1], base_actor[-1][H1][1])


# ----------------------------------------------------------------------------------------------- the ceiling
def test_the_ceiling_is_autograd_through_the_truncated_window() -> None:
    topology = masked_recurrent(leak=0.4)
    learner = EpropLearner(topology, credit="bptt", bptt_window=3, seed=6, dtype=F64)
    ticks = simulate(topology, learner, 7, 2, seed=2)
    for v, actions, reward, v_next, terminated, fired in ticks:
        learner.store(v, actions, reward, v_next, terminated, fired=fired)
    live = ticks[-1][0]
    got = learner.bptt_gradients(live)[0]  # [E, S, P + 1] of group h
    weights = learner.weights
    h = topology.group_slice["h"]
    inputs = topology.group_slice["in"]
    out_index = group_index(learner, "out")
    for e in range(2):
        k_in = weights.blocks[0].clone().requires_grad_(True)
        k_hh = weights.blocks[1].clone().requires_grad_(True)
        b_h = weights.biases[0].clone().requires_grad_(True)
        state = ticks[-1 - 3][0][e]  # the window starts 3 ticks back
        for t in range(len(ticks) - 3, len(ticks)):
            drive = torch.tanh(k_in @ state[inputs] + k_hh @ state[h] + b_h)
            new_h = 0.4 * state[h] + 0.6 * drive
            new_out = torch.tanh(weights.blocks[2] @ state[h] + weights.biases[1])
            state = torch.cat([ticks[t][0][e, inputs], new_h, new_out])
        torch.testing.assert_close(state[h], live[e, h], atol=1e-12, rtol=0)  # the recomputed state is the recorded
        action = torch.tanh(weights.blocks[2] @ state[h] + weights.biases[1])
        x = live[e:e + 1, learner.layouts[out_index].context]
        q = Reference.q(learner.critic[out_index], x, action[None])
        grads = torch.autograd.grad(q.sum(), [k_in, k_hh, b_h])
        expected = torch.cat([grads[0], grads[1], grads[2][:, None]], 1)
        torch.testing.assert_close(got[e], expected, atol=1e-12, rtol=1e-9)
    assert got.abs().max() > 1e-6
    # an episode start inside the window cuts it there: right after one, the hidden voltages are the reset's
    v, actions, reward, v_next, _, fired = ticks[0]
    learner.store(v, actions, reward, v_next, torch.ones(2, dtype=F64), fired=fired)
    learner.store(*ticks[1][:4], torch.zeros(2, dtype=F64), fired=fired)
    assert torch.equal(learner.bptt_gradients(ticks[1][0])[0], torch.zeros_like(got))


def test_the_floor_is_the_reservoir_no_hidden_weight_moves() -> None:
    topology = chain(leaks=(0.5, 0.3))
    learner = EpropLearner(topology, freeze_hidden=True, seed=1, dtype=F64)
    assert learner.actor_lrs == [0.0, 0.0, learner.lr_actor]
    before = [w.clone() for w in learner.actor]
    generator = torch.Generator().manual_seed(0)
    for v, actions, reward, v_next, terminated, fired in random_ticks(topology, 8, 2, 5):
        learner.store(v, actions, reward, v_next, terminated, fired=fired)
        stats = learner.update(replay_batch(topology, 8, generator))
    assert torch.equal(learner.actor[H1], before[H1]) and torch.equal(learner.actor[H2], before[H2])
    assert learner.actor_optimizer_state[H1] == {} and learner.actor_optimizer_state[H2] == {}
    assert not torch.equal(learner.actor[OUT], before[OUT])
    assert {"learning_signal/h1", "learning_signal/h2"} <= stats.keys()  # messages still flow


# ------------------------------------------------------------------------------------ clocks, ticks, resume
def drive(learner: EpropLearner, env: NeuronVecEnv, ticks: int, voltages: torch.Tensor, pass_fired: bool,
          others: tuple[EpropLearner, ...] = ()) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The trainer's per-tick loop (act, step, store, update, reset noise), ``others`` fed the same ticks."""
    taken = []
    for _ in range(ticks):
        actions = learner.act(voltages, uniform=learner.ticks < 4)
        for other in others:
            assert torch.equal(other.act(voltages, uniform=other.ticks < 4), actions)
        step = env.step(actions)
        following = step.info["final_voltages"] if step.task_stepped else step.voltages
        fired = step.info["fired"] if pass_fired else None
        for each in (learner, *others):
            each.store(voltages, actions, step.reward, following, step.terminated, step.truncated, fired=fired)
            if each.ticks > 4:
                each.update()
            each.reset_noise(step.terminated | step.truncated)
        taken.append(actions)
        voltages = step.voltages
    return voltages, taken


@pytest.mark.parametrize("credit", ["eprop", "bptt"])
def test_the_async_clock_at_firing_rate_one_is_the_sync_clock_bitwise(credit: str) -> None:
    topology = Topology.recurrent(4, 5, 2, leak=0.4)
    runs = []
    for clock in ("sync", "async"):
        env = NeuronVecEnv("CartPole-v1", topology, num_envs=2, validate=False, clock=clock, firing_rate=1.0)
        learner = EpropLearner(topology, credit=credit, batch_size=8, seed=4)
        voltages, _ = env.reset(seed=3)
        _, taken = drive(learner, env, 20, voltages, pass_fired=clock == "async")
        env.close()
        runs.append((learner, taken))
    assert all(torch.equal(a, b) for a, b in zip(runs[0][1], runs[1][1], strict=True))
    assert_states_equal(runs[0][0].state_dict(), runs[1][0].state_dict())


@pytest.mark.parametrize("credit", ["eprop", "bptt"])
def test_state_dict_round_trip_mid_episode_continues_bitwise(credit: str) -> None:
    topology = Topology.recurrent(3, 5, 1, leak=0.4)
    env = NeuronVecEnv("Pendulum-v1", topology, num_envs=2, validate=False, clock="async", firing_rate=0.7)
    a = EpropLearner(topology, credit=credit, batch_size=8, seed=2)
    voltages, _ = env.reset(seed=0)
    voltages, _ = drive(a, env, 12, voltages, pass_fired=True)  # mid-episode: traces, messages, Adam, window
    stream = io.BytesIO()
    torch.save(a.state_dict(), stream)
    stream.seek(0)
    b = EpropLearner(topology, credit=credit, batch_size=8, seed=99)
    b.load_state_dict(torch.load(stream, weights_only=True))
    assert_states_equal(a.state_dict(), b.state_dict())
    drive(a, env, 10, voltages, pass_fired=True, others=(b,))
    env.close()
    assert_states_equal(a.state_dict(), b.state_dict())


def test_only_the_first_update_after_a_store_steps_the_actor() -> None:
    topology = masked_recurrent()
    learner = EpropLearner(topology, seed=1, dtype=F64)
    generator = torch.Generator().manual_seed(0)
    for v, actions, reward, v_next, terminated, _ in random_ticks(topology, 3, 2, 1):
        learner.store(v, actions, reward, v_next, terminated)
        first = learner.update(replay_batch(topology, 4, generator))
        after = [w.clone() for w in learner.actor]
        critic = [p.clone() for p in learner.critic[-1].values()]
        second = learner.update(replay_batch(topology, 4, generator))
        assert "q_slope" in first and "q_slope" not in second
        assert all(torch.equal(w, w0) for w, w0 in zip(learner.actor, after, strict=True))
        assert not all(torch.equal(p, p0) for p, p0 in zip(learner.critic[-1].values(), critic, strict=True))


# --------------------------------------------------------------------------------------- wiring and options
def test_distances_and_message_edges() -> None:
    assert output_distances(Topology.recurrent(3, 4, 1)) == [1, 0]  # h -> h carries no message
    assert output_distances(chain()) == [2, 1, 0]
    learner = EpropLearner(chain(), seed=0)
    assert [[(e.projection, e.target) for e in edges] for edges in learner.edges] == [[(2, 1)], [(3, 2)], []]
    assert learner.history == [5, 3, 0]
    assert sorted(learner.feedback_weights) == [2, 3]
    groups = [NeuronGroup("in", 2, "identity", "input"), NeuronGroup("h", 3, "tanh"),
              NeuronGroup("dead", 2, "tanh"), NeuronGroup("out", 1, "tanh", "output")]
    dead = Topology(groups, [Projection("in", "h"), Projection("h", "out"), Projection("in", "dead")])
    assert output_distances(dead) == [1, None, 0]
    matrix = EpropLearner(masked_recurrent(), seed=5).feedback_weights[2]
    assert matrix.shape == (2, 4) and matrix.abs().max() <= 1 / 2  # ±1/sqrt(fan_in of out)
    assert torch.equal(matrix, EpropLearner(masked_recurrent(), seed=5).feedback_weights[2])


@pytest.mark.parametrize(("options", "match"), [
    ({"credit": "rtrl"}, "credit='rtrl' is unknown"),
    ({"bptt_window": 0}, "bptt_window=0 must be"),
    ({"feedback_scale": -1.0}, "feedback_scale=-1.0 must be"),
    ({"granularity": "settled"}, "learns per tick"),
    ({"replay_voltages": "current"}, "replay_voltages"),
])
def test_bad_options_raise_clear_errors(options: dict, match: str) -> None:
    with pytest.raises(LearnerConfigError, match=match):
        make_learner("eprop", Topology.recurrent(3, 4, 1), options)


def test_a_mismatched_checkpoint_is_a_checkpoint_error() -> None:
    state = EpropLearner(masked_recurrent()).state_dict()
    with pytest.raises(CheckpointError, match="credit='eprop'"):
        EpropLearner(masked_recurrent(), credit="bptt").load_state_dict(state)
    with pytest.raises(CheckpointError, match="'feedback'"):
        EpropLearner(Topology.mlp(3, [4], 1)).load_state_dict(
            make_learner("feedback", Topology.mlp(3, [4], 1), {}).state_dict())
    with pytest.raises(CheckpointError):
        EpropLearner(chain()).load_state_dict(copy.deepcopy(state))
