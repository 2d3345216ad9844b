"""``EpropLearner`` (``--learner eprop``): traces, timing, exactness, locality, per-neuron loop, clocks, resume."""

from __future__ import annotations

import copy
import io
from collections.abc import Callable

import numpy as np
import pytest
import torch
from neuron_env.agents.eprop import EpropConfig, EpropLearner, output_distances
from neuron_env.agents.eprop_replay import row_bytes
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


BUILDS = [masked_recurrent, lambda: chain(leaks=(0.5, 0.3)), lambda: chain(leaks=(0.0, 0.4))]
BUILD_IDS = ["recurrent", "chain", "chain-leak-free-h1"]


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


@pytest.mark.parametrize("actor_batch", ["replay", "live"])
def test_a_neuron_that_did_not_fire_keeps_its_trace_and_its_parameters(actor_batch: str) -> None:
    topology = chain(leaks=(0.5, 0.0))  # h1 leaky, h2 leak-free
    learner = EpropLearner(topology, dtype=F64, seed=3, lr_actor=0.05, actor_batch=actor_batch)
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
        if actor_batch == "live":
            learner.update(replay_batch(topology, 8, generator))
        else:
            learner.update(rows=torch.randint(0, learner.num_transitions, (8,), generator=generator))
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
    options = {"lr_actor": 0.0, "lr_critic": 0.0, "tau": 0.0, "dtype": F64, "seed": 5, "actor_batch": "live"}
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


@pytest.mark.parametrize("replay_voltages", ["current", "stored"])
def test_replayed_eprop_with_true_feedback_is_the_exact_gradient_of_the_replayed_ceiling(replay_voltages: str) -> None:
    """The replayed rule, no recurrent synapse, feedback through the true weights (``feedback="weights"``),
    leak-free intermediate group: a group at distance ``d`` steps at update ``t`` along exactly the ceiling's
    gradient (BPTT through the same replayed window, autograd) on the batch of update ``t − d``."""
    topology = chain(leaks=(0.7, 0.0), recurrent=False)
    options = {"lr_actor": 0.0, "lr_critic": 0.0, "tau": 0.0, "dtype": F64, "seed": 5, "batch_size": 7,
               "replay_voltages": replay_voltages, "replay_window": 30}
    local = EpropLearner(topology, feedback="weights", **options)
    ceiling = EpropLearner(topology, credit="bptt", **options)
    ascents: dict[str, list[list[torch.Tensor | None]]] = {"local": [], "ceiling": []}
    for v, actions, reward, v_next, terminated, fired in simulate(topology, local, 12, 3, seed=1):
        for name, learner in (("local", local), ("ceiling", ceiling)):
            learner.store(v, actions, reward, v_next, terminated, fired=fired)
            learner.update()  # both draw the same rows: one generator seed, one draw per update
            ascents[name].append([None if a is None else a.clone() for a in learner.ascents])
    compared = 0
    for t in range(len(ascents["local"])):
        for group, d in ((1, 1), (0, 2)):
            local_ascent = ascents["local"][t][group]
            if t < d:  # the batch it learns on is d updates old
                assert local_ascent is None
                continue
            exact = ascents["ceiling"][t - d][group]
            torch.testing.assert_close(local_ascent, exact, atol=1e-15, rtol=1e-10)
            compared += exact.abs().max() > 1e-6
    assert compared >= 2 * len(ascents["local"]) - 6


def own_ticks(topology: Topology, learner: EpropLearner, ticks: int, copies: int, seed: int, rate: float,
              ends: tuple[int, ...]) -> list[tuple[torch.Tensor, ...]]:
    """The network's own noise-free ticks under the async clock at ``rate`` (silent neurons held), random
    inputs, copy 0's episode ending at ``ends`` (its agents restart at 0)."""
    g = torch.Generator().manual_seed(seed)
    leak = torch.cat([torch.full((grp.size,), grp.leak, dtype=F64) for grp in topology.agent_groups])
    hold = torch.where(leak > 0, leak, torch.ones_like(leak))
    inputs, agents = topology.group_slice["in"], torch.as_tensor(topology.agent_neuron_index)
    v = torch.zeros(copies, topology.num_neurons, dtype=F64)
    v[:, inputs] = torch.randn(copies, inputs.stop - inputs.start, generator=g, dtype=F64)
    out = []
    for tick in range(ticks):
        fired = torch.rand(copies, topology.num_agents, generator=g) < rate
        actions = learner.act(v, explore=False)
        v_next = apply_actions(v, actions, topology.agent_span, leak)
        v_next[:, agents] = torch.where(fired, v_next[:, agents], hold * v[:, agents])
        v_next[:, inputs] = torch.randn(copies, inputs.stop - inputs.start, generator=g, dtype=F64)
        terminated = torch.zeros(copies, dtype=F64)
        terminated[0] = float(tick in ends)
        out.append((v, actions, torch.randn(copies, generator=g, dtype=F64), v_next, terminated, fired))
        v = v_next.clone()
        if tick in ends:
            v[0, agents] = 0.0
    return out


@pytest.mark.parametrize("build", BUILDS, ids=BUILD_IDS)
@pytest.mark.parametrize("rate", [1.0, 0.6])
def test_the_re_run_reproduces_the_stored_voltages_and_traces(build: Callable[[], Topology], rate: float) -> None:
    """On the network's own ticks with the weights fixed, re-running a row through its window (``current``)
    gives the voltages and the traces stored on its tick (``stored``, what the live ring computed), gains
    included: the same queue, the same ascents, across episode ends and silent neurons."""
    topology = build()
    options = {"lr_actor": 0.0, "lr_critic": 0.0, "tau": 0.0, "dtype": F64, "seed": 5, "batch_size": 9}
    stored = EpropLearner(topology, replay_voltages="stored", **options)
    current = EpropLearner(topology, replay_voltages="current", replay_window=40, **options)
    assert stored.buffer.traces and not current.buffer.traces  # only the stored mode keeps traces per row
    for v, actions, reward, v_next, terminated, fired in own_ticks(topology, stored, 16, 3, 1, rate, (5, 11)):
        for learner in (stored, current):
            learner.store(v, actions, reward, v_next, terminated, fired=None if rate == 1.0 else fired)
        rows = torch.arange(stored.num_transitions)
        batch = stored.buffer.gather(rows)
        rerun, traces, gains, _ = current._rerun(rows, batch)
        torch.testing.assert_close(rerun.voltages, batch.voltages, atol=1e-14, rtol=0)
        torch.testing.assert_close(rerun.next_voltages[:, stored.agent_neuron_index],
                                   batch.next_voltages[:, stored.agent_neuron_index], atol=1e-14, rtol=0)
        kept, relays = stored.buffer.gather_traces(rows)
        for i in kept:
            torch.testing.assert_close(traces[i], kept[i], atol=1e-14, rtol=0)
        for i in relays:
            torch.testing.assert_close(gains[i], relays[i], atol=1e-14, rtol=0)
        for learner in (stored, current):
            learner.update()
        for a, b in zip(stored.ascents, current.ascents, strict=True):
            assert (a is None) == (b is None)
            if a is not None:
                torch.testing.assert_close(a, b, atol=1e-14, rtol=0)
    assert current.asynchronous == (rate < 1.0)


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
        self.distance = distance
        self.depth = None if distance in (None, 0) else 2 * distance
        self.column = int(topology.agent_neuron_index[agent])
        self.hold = self.leak if self.leak > 0 else 1.0
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
    """The live rule (``actor_batch="live"``) written neuron by neuron; the joint output critic by autograd and Adam."""

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


class ReplayReference(Reference):
    """The shipped rule (``actor_batch="replay"``, ``replay_voltages="current"``) written neuron by neuron.

    Every replayed row ``(tick t, copy e)`` is re-run from its stored voltages ``min(window, age)`` ticks back:
    each neuron computes its own next voltage from its presynaptic voltages and advances its own trace, tick
    by tick, with the recorded inputs and firing; a neuron at distance ``d`` keeps its trace ``E(t − d + 1)``,
    a relay its gain ``c(t − d)``. The critic learns on the re-run voltages; the outputs step along DDPG's
    slope on the batch; a hidden neuron pairs the messages sent last update with the traces of the batch
    ``d`` updates old. A neuron steps when it fired on the last stored tick in some copy.
    """

    def __init__(self, topology: Topology, learner: EpropLearner) -> None:
        super().__init__(topology, learner)
        self.window = learner.replay_window
        self.inputs = topology.group_slice["in"]
        self.stored: list[tuple[torch.Tensor, ...]] = []
        self.age: torch.Tensor | None = None
        self.queue: list[dict[Neuron, tuple[torch.Tensor, torch.Tensor | None]]] = []
        self.deepest = max(d for d in learner.distances if d is not None)
        self.relays = {m for n in self.neurons for m, _ in n.post}
        self.hidden = [n for n in self.neurons if n.distance not in (None, 0)]

    def store_tick(self, v: torch.Tensor, actions: torch.Tensor, reward: torch.Tensor, v_next: torch.Tensor,
                   terminated: torch.Tensor, fired: torch.Tensor, done: torch.Tensor) -> None:
        age = torch.zeros(v.shape[0], dtype=torch.int64) if self.age is None else self.age
        held = torch.stack([v[:, n.column] * (0.0 if n.leak > 0 else 1.0) for n in self.neurons], 1)
        actions = torch.where(fired, actions, held)  # a silent neuron's action is the one with its effect
        self.stored.append((v, actions, reward, v_next, terminated, fired, age))
        self.age = torch.where(done, 0, age + 1)
        for n in self.neurons:  # the live trace ring advances in every mode; messages cross a hop per update
            n.store(v, fired, done)

    def tick(self, state: torch.Tensor, fired: torch.Tensor, k: int, traces: dict, kept: dict,
             gains: dict) -> torch.Tensor:
        """One tick of every neuron from ``state`` (one row); ``k``: ticks before the row (traces kept at d)."""
        new = state.clone()
        for n in self.neurons:
            p = torch.cat([state[n.pre], torch.ones(1, dtype=F64)])
            mu = torch.tanh(p @ n.k)
            dmu = 1 - mu**2
            on = bool(fired[n.agent])
            new[n.column] = (mu if n.leak == 0 else n.leak * state[n.column] + (1 - n.leak) * mu) if on \
                else n.hold * state[n.column]
            if n in traces:
                if on:
                    traces[n] = dmu * p if n.leak == 0 else n.leak * traces[n] + (1 - n.leak) * dmu * p
                else:
                    traces[n] = n.hold * traces[n]
                if k == n.distance:
                    kept[n] = traces[n]
            if n in self.relays and k == n.distance:
                gains[n] = (1 - n.leak) * dmu if on else torch.zeros((), dtype=F64)
        return new

    def rerun(self, t: int, e: int) -> tuple[torch.Tensor, torch.Tensor, dict, dict]:
        v, _, _, v_next, _, fired, age = self.stored[t]
        span = min(self.window, int(age[e]))
        state = self.stored[t - span][0][e].clone()
        traces = {n: torch.zeros(len(n.mask), dtype=F64) for n in self.hidden}
        kept: dict = {}
        gains: dict = {}
        for k in range(span, 0, -1):
            state = self.tick(state, self.stored[t - k][5][e], k, traces, kept, gains)
            state[self.inputs] = self.stored[t - k + 1][0][e, self.inputs]
        following = self.tick(state, fired[e], 0, {}, {}, {})
        following[self.inputs] = v_next[e, self.inputs]
        for n in self.hidden:
            kept.setdefault(n, torch.zeros(len(n.mask), dtype=F64))
        for n in self.relays:
            gains.setdefault(n, torch.zeros((), dtype=F64))
        return state, following, kept, gains

    def update_rows(self, rows: torch.Tensor) -> None:
        copies = self.stored[0][0].shape[0]
        runs = [self.rerun(int(r) // copies, int(r) % copies) for r in rows]
        v = torch.stack([run[0] for run in runs])
        v_next = torch.stack([run[1] for run in runs])
        pick = [(int(r) // copies, int(r) % copies) for r in rows]
        actions = torch.stack([self.stored[t][1][e] for t, e in pick])
        reward = torch.stack([self.stored[t][2][e] for t, e in pick])
        terminated = torch.stack([self.stored[t][4][e] for t, e in pick])
        gamma, tau = self.config.gamma, self.config.tau
        with torch.no_grad():
            a_next = torch.stack([torch.tanh(n.p(v_next) @ n.k_target) for n in self.outputs], 1)
            y = reward + gamma * (1 - terminated) * self.q(self.target_critic, v_next[:, self.context], a_next)
        a = torch.stack([actions[:, n.agent] for n in self.outputs], 1)
        self.critic_adam.zero_grad()
        ((y - self.q(self.critic, v[:, self.context], a)) ** 2).mean().backward()
        self.critic_adam.step()
        last_fired = self.stored[-1][5]
        for n in self.neurons:
            n.outbox = [None, n.outbox[0]]
        mu = torch.stack([torch.tanh(n.p(v) @ n.k) for n in self.outputs], 1).requires_grad_(True)
        (slope,) = torch.autograd.grad(self.q(self.critic, v[:, self.context], mu).sum(), mu)
        steps = []
        for j, n in enumerate(self.outputs):
            p = n.p(v)
            message = d_tanh(p @ n.k) * slope[:, j]
            steps.append((n, (message[:, None] * p).mean(0), message))
        for n in self.hidden:
            received = [m.outbox[1] for m, _ in n.post]
            if len(self.queue) < n.distance or any(message is None for message in received):
                continue
            signal = sum(fixed * message for (_, fixed), message in zip(n.post, received, strict=True))
            trace, gain = self.queue[n.distance - 1][n]
            steps.append((n, (signal[:, None] * trace).mean(0), None if gain is None else gain * signal))
        for n, ascent, message in steps:
            n.step(ascent, bool(last_fired[:, n.agent].any()))
            n.outbox[0] = message
        self.queue.insert(0, {n: (torch.stack([run[2][n] for run in runs]),
                                  torch.stack([run[3][n] for run in runs]) if n in self.relays else None)
                              for n in self.hidden})
        del self.queue[self.deepest:]
        for n in self.neurons:
            n.k_target = (1 - tau) * n.k_target + tau * n.k
        self.target_critic = {k: (1 - tau) * self.target_critic[k] + tau * p.detach() for k, p in self.critic.items()}


@pytest.mark.parametrize("build", BUILDS, ids=BUILD_IDS)
@pytest.mark.parametrize("rate", [1.0, 0.6])
def test_batched_update_equals_a_per_neuron_loop_on_the_shipped_defaults(build: Callable[[], Topology],
                                                                          rate: float) -> None:
    """``EpropConfig()`` as shipped (replayed actor batch re-run through stored windows, joint critic on the task
    context by Adam, per-neuron Adam actor steps at its rates, γ, τ) against the rule written neuron by neuron,
    over ticks with firing masks and two episode ends; windows shorter than the run, so some rows are cut."""
    topology = build()
    config = EpropConfig(replay_window=3)
    assert (config.actor_batch, config.replay_voltages) == ("replay", "current")
    learner = EpropLearner(topology, config, seed=3, dtype=F64)
    reference = ReplayReference(topology, learner)
    generator = torch.Generator().manual_seed(7)
    ticks = random_ticks(topology, 11, 3, seed=8, rate=rate, ends=(4, 8))
    for v, actions, reward, v_next, terminated, fired in ticks:
        fired_arg = None if rate == 1.0 else fired
        learner.store(v, actions, reward, v_next, terminated, fired=fired_arg)
        reference.store_tick(v, actions, reward, v_next, terminated, fired, terminated.bool())
        rows = torch.randint(0, learner.num_transitions, (6,), generator=generator)
        learner.update(rows=rows)
        reference.update_rows(rows)
        assert_matches(learner, reference)
    fresh = EpropLearner(topology, config, seed=3, dtype=F64)
    assert all(not torch.equal(w, w0) for w, w0 in zip(learner.actor, fresh.actor, strict=True))  # every group moved
    for p, block in zip(topology.projections, learner.weights.blocks, strict=True):
        if p.mask is not None:  # masked synapses stay exactly zero
            assert torch.all(block[torch.tensor(p.mask) == 0] == 0)


@pytest.mark.parametrize("build", [masked_recurrent, lambda: chain(leaks=(0.5, 0.3))], ids=["recurrent", "chain"])
@pytest.mark.parametrize("rate", [1.0, 0.6])
def test_batched_live_update_equals_a_per_neuron_loop(build: Callable[[], Topology], rate: float) -> None:
    """``actor_batch="live"`` (otherwise ``EpropConfig()``) against the online rule written neuron by neuron,
    over ticks with firing masks and an episode end."""
    topology = build()
    config = EpropConfig(actor_batch="live")
    learner = EpropLearner(topology, config, seed=3, dtype=F64)
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
    fresh = EpropLearner(topology, config, seed=3, dtype=F64)
    assert all(not torch.equal(w, w0) for w, w0 in zip(learner.actor, fresh.actor, strict=True))  # every group moved
    for p, block in zip(topology.projections, learner.weights.blocks, strict=True):
        if p.mask is not None:  # masked synapses stay exactly zero
            assert torch.all(block[torch.tensor(p.mask) == 0] == 0)


# ------------------------------------------------------------------------------------------ locality audit
def audit_run(perturb: Callable[[EpropLearner], None] | None, mode: str, at: int = 3,
              ticks: int = 9) -> tuple[list[list[torch.Tensor]], list[list[torch.Tensor]]]:
    """Every group's actor and newest trace after each tick, on fixed voltages and batches (or buffer rows).

    ``mode``: ``live`` (fixed replay batches), ``stored`` or ``current`` (the replayed actor batch on fixed
    rows of the buffer, its voltages as stored or re-run). ``perturb`` changes the learner before tick ``at``."""
    topology = chain(leaks=(0.5, 0.3))
    options = {"actor_batch": "live"} if mode == "live" else {"replay_voltages": mode}
    learner = EpropLearner(topology, seed=2, dtype=F64, lr_actor=0.01, **options)
    generator = torch.Generator().manual_seed(3)
    actors, traces = [], []
    for tick, (v, actions, reward, v_next, terminated, fired) in enumerate(random_ticks(topology, ticks, 2, 4,
                                                                                        rate=0.8)):
        if tick == at and perturb is not None:
            perturb(learner)
        learner.store(v, actions, reward, v_next, terminated, fired=fired)
        if mode == "live":
            learner.update(replay_batch(topology, 5, generator))
        else:
            learner.update(rows=torch.randint(0, learner.num_transitions, (5,), generator=generator))
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
MODES = ["live", "stored", "current"]


@pytest.mark.parametrize("mode", MODES)
def test_locality_audit_a_neuron_reads_its_neighbours_messages_a_hop_per_tick(mode: str) -> None:
    """DESIGN.md §1 on in -> h1 (recurrent, masked, leaky) -> h2 (leaky) -> out, on fixed voltages or rows.

    A hidden neuron's trace and step read its own parameters, its presynaptic voltages and the messages of
    the neurons it projects to, which were sent the tick (update) before. ``out`` (actor, critic, target
    copies) is no neighbour of h1: its change reaches h2 one tick later and h1 two ticks later, through their
    messages. With the replayed voltages as stored, the output's update reads no hidden parameter; re-run
    (``current``), hidden parameters reach it as the replayed activity of its presynaptic neurons, the read
    of DDPG's actor step on replayed states (the re-run itself: every neuron from its own parameters and its
    presynaptic voltages, tick by tick, checked against ``ReplayReference``)."""
    base_actor, base_trace = audit_run(None, mode)
    actor, trace = audit_run(perturbed("out"), mode)
    for tick in range(len(base_actor)):
        for group in (H1, H2):  # a trace reads its own parameters (as they were at the tick) and voltages only
            same_before = tick == 0 or torch.equal(actor[tick - 1][group], base_actor[tick - 1][group])
            assert torch.equal(trace[tick][group], base_trace[tick][group]) == same_before, (tick, group)
        assert torch.equal(actor[tick][H2], base_actor[tick][H2]) == (tick < AT + 1), tick
        assert torch.equal(actor[tick][H1], base_actor[tick][H1]) == (tick < AT + 2), tick
    for group in ("h1", "h2"):
        actor, _ = audit_run(perturbed(group), mode)
        unchanged = all(torch.equal(a[OUT], b[OUT]) for a, b in zip(actor, base_actor, strict=True))
        assert unchanged == (mode != "current"), group
    # positive direction: h2 (a neighbour) reaches h1 through its message, once its new gains are paired
    actor, _ = audit_run(perturbed("h2"), mode)
    assert not torch.equal(actor[-1][H1], base_actor[-1][H1])


@pytest.mark.parametrize("mode", MODES)
def test_locality_audit_within_a_recurrent_group_a_non_neighbour_changes_nothing(mode: str) -> None:
    """h1_0 and h1_1 are neither pre- nor postsynaptic to each other: h1_1's parameters never reach h1_0's trace,
    nor (voltages fixed: live, stored) its update. Re-run (``current``), they reach it only through activity:
    h1_1's replayed voltage drives h1_2 and h2, and so h1_0 and the messages it receives."""
    base_actor, base_trace = audit_run(None, mode)
    actor, trace = audit_run(perturbed("h1", rows=slice(1, 2), targets=False), mode)
    for tick in range(len(base_actor)):  # its trace reads its own parameters (as they were) and voltages only
        same_before = tick == 0 or torch.equal(actor[tick - 1][H1][0], base_actor[tick - 1][H1][0])
        assert torch.equal(trace[tick][H1][:, 0], base_trace[tick][H1][:, 0]) == same_before, tick
        if mode != "current":
            assert torch.equal(actor[tick][H1][0], base_actor[tick][H1][0])
    assert not torch.equal(actor[-1][H1][1], base_actor[-1][H1][1])
    assert (mode == "current") == (not torch.equal(actor[-1][H1][0], base_actor[-1][H1][0]))


# ----------------------------------------------------------------------------------------------- the ceiling
def test_the_ceiling_is_autograd_through_the_truncated_window() -> None:
    topology = masked_recurrent(leak=0.4)
    learner = EpropLearner(topology, credit="bptt", bptt_window=3, seed=6, dtype=F64, actor_batch="live")
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


def test_the_replayed_ceiling_is_autograd_through_each_rows_re_run_window() -> None:
    """``credit="bptt"`` on a replayed batch: the gradient of ``Σ_rows Q(x_b, μ_out(v_b))`` through each row's
    re-run window (shared weights, the rows summed) equals the per-row gradients summed, and a row whose window
    is cut at its episode start has none from before it."""
    topology = masked_recurrent(leak=0.4)
    learner = EpropLearner(topology, credit="bptt", replay_window=3, seed=6, dtype=F64, batch_size=5)
    for v, actions, reward, v_next, terminated, _ in own_ticks(topology, learner, 9, 2, 2, 1.0, (4,)):
        learner.store(v, actions, reward, v_next, terminated)
    rows = torch.arange(learner.num_transitions)
    batch, _, _, window = learner._rerun(rows, learner.buffer.gather(rows))
    summed = learner.bptt_gradients(batch.voltages, window, per_copy=False)[0]
    per_row = learner.bptt_gradients(batch.voltages, window)[0]
    torch.testing.assert_close(summed, per_row.sum(0), atol=1e-13, rtol=1e-10)
    ages = learner.buffer.age[rows]
    assert torch.equal(per_row[ages == 0], torch.zeros_like(per_row[ages == 0]))  # an episode's first tick
    assert per_row[ages > 0].abs().amax((1, 2)).min() > 0
    # row (tick 5, copy 0) starts copy 0's second episode: its window holds that tick only
    assert int(ages[10]) == 0 and bool(window[1][2][10]) and bool(window[0][2][10])


def test_windows_stop_at_episode_starts_overwritten_slots_and_copies() -> None:
    topology = masked_recurrent()
    learner = EpropLearner(topology, seed=0, buffer_size=10)  # 2 copies: a slot holds 5 ticks of each
    for v, actions, reward, v_next, terminated, _ in random_ticks(topology, 8, 2, 1, ends=(2,)):
        learner.store(v, actions, reward, v_next, terminated)
    buffer = learner.buffer
    assert buffer.tick.tolist() == [5, 5, 6, 6, 7, 7, 3, 3, 4, 4] and buffer.copy.tolist() == [0, 1] * 5
    assert buffer.age.tolist() == [2, 5, 3, 6, 4, 7, 0, 3, 1, 4]  # copy 0 restarted after tick 2
    rows = torch.tensor([4, 5, 6])  # tick 7 of each copy; tick 3 of copy 0 (its episode's first)
    window = buffer.windows(rows, 6, 2)
    # ticks each window reaches back: copy 0 to its episode start (tick 3), copy 1 to its oldest kept tick (3)
    span = [sum(not bool(entry[2][b]) for entry in window) for b in range(3)]
    assert span == [4, 4, 0]
    assert torch.equal(window[4][0][0], buffer.voltages[6]) and torch.equal(window[4][0][1], buffer.voltages[7])
    assert torch.equal(window[1][0][1], buffer.voltages[3])  # one tick back: tick 6 of copy 1
    assert bool(window[5][2][0]) and torch.equal(window[6][0][0], buffer.voltages[6])  # padded with the start
    assert all(bool(entry[2][2]) and torch.equal(entry[0][2], buffer.voltages[6]) for entry in window)


@pytest.mark.parametrize("actor_batch", ["replay", "live"])
def test_the_floor_is_the_reservoir_no_hidden_weight_moves(actor_batch: str) -> None:
    topology = chain(leaks=(0.5, 0.3))
    learner = EpropLearner(topology, freeze_hidden=True, seed=1, dtype=F64, actor_batch=actor_batch)
    assert learner.actor_lrs == [0.0, 0.0, learner.lr_actor]
    before = [w.clone() for w in learner.actor]
    generator = torch.Generator().manual_seed(0)
    for v, actions, reward, v_next, terminated, fired in random_ticks(topology, 8, 2, 5):
        learner.store(v, actions, reward, v_next, terminated, fired=fired)
        stats = learner.update(replay_batch(topology, 8, generator)) if actor_batch == "live" else learner.update()
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


FRAMEWORKS = [{}, {"replay_voltages": "stored"}, {"actor_batch": "live"},
              {"actor_batch": "live", "replay_voltages": "stored"}]
FRAMEWORK_IDS = ["replay-current", "replay-stored", "live-current", "live-stored"]


@pytest.mark.parametrize("framework", FRAMEWORKS, ids=FRAMEWORK_IDS)
@pytest.mark.parametrize("credit", ["eprop", "bptt"])
def test_the_async_clock_at_firing_rate_one_is_the_sync_clock_bitwise(credit: str, framework: dict) -> None:
    topology = Topology.recurrent(4, 5, 2, leak=0.4)
    runs = []
    for clock in ("sync", "async"):
        env = NeuronVecEnv("CartPole-v1", topology, num_envs=2, validate=False, clock=clock, firing_rate=1.0)
        learner = EpropLearner(topology, credit=credit, batch_size=8, seed=4, replay_window=4, **framework)
        voltages, _ = env.reset(seed=3)
        _, taken = drive(learner, env, 20, voltages, pass_fired=clock == "async")
        env.close()
        runs.append((learner, taken))
    assert all(torch.equal(a, b) for a, b in zip(runs[0][1], runs[1][1], strict=True))
    assert_states_equal(runs[0][0].state_dict(), runs[1][0].state_dict())


@pytest.mark.parametrize("framework", FRAMEWORKS, ids=FRAMEWORK_IDS)
@pytest.mark.parametrize("credit", ["eprop", "bptt"])
def test_state_dict_round_trip_mid_episode_continues_bitwise(credit: str, framework: dict) -> None:
    """Mid-episode under the async clock: traces, messages in flight, queued batches, Adam, the replay buffer
    with its stored traces and positions in time all survive a save; the two continue bit for bit."""
    topology = Topology.recurrent(3, 5, 1, leak=0.4)
    env = NeuronVecEnv("Pendulum-v1", topology, num_envs=2, validate=False, clock="async", firing_rate=0.7)
    options = {"credit": credit, "batch_size": 8, "replay_window": 4, **framework}
    a = EpropLearner(topology, seed=2, **options)
    voltages, _ = env.reset(seed=0)
    voltages, _ = drive(a, env, 12, voltages, pass_fired=True)  # mid-episode: traces, messages, Adam, window
    stream = io.BytesIO()
    torch.save(a.state_dict(), stream)
    stream.seek(0)
    b = EpropLearner(topology, seed=99, **options)
    b.load_state_dict(torch.load(stream, weights_only=True))
    assert_states_equal(a.state_dict(), b.state_dict())
    drive(a, env, 10, voltages, pass_fired=True, others=(b,))
    env.close()
    assert_states_equal(a.state_dict(), b.state_dict())


def test_replayed_every_update_steps_the_actor_on_its_own_batch() -> None:
    topology = masked_recurrent()
    learner = EpropLearner(topology, seed=1, dtype=F64, batch_size=4)
    for v, actions, reward, v_next, terminated, _ in random_ticks(topology, 3, 2, 1):
        learner.store(v, actions, reward, v_next, terminated)
    for _ in range(3):  # several updates per stored tick (updates_per_step > 1): an actor step each
        before = [w.clone() for w in learner.actor]
        assert "q_slope" in learner.update()
        assert not torch.equal(learner.actor[-1], before[-1])
    with pytest.raises(LearnerConfigError, match="pass rows="):
        learner.update(replay_batch(topology, 4, torch.Generator().manual_seed(0)))
    with pytest.raises(LearnerConfigError, match="keeps them in time"):
        EpropLearner(topology, actor_batch="live", replay_voltages="stored").update(rows=torch.tensor([0]))
    with pytest.raises(LearnerConfigError, match="buffer is empty"):
        EpropLearner(topology).update()


def test_only_the_first_update_after_a_store_steps_the_actor() -> None:
    topology = masked_recurrent()
    learner = EpropLearner(topology, seed=1, dtype=F64, actor_batch="live")
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
    ({"replay_voltages": "later"}, "replay_voltages='later' is unknown"),
    ({"actor_batch": "offline"}, "actor_batch='offline' is unknown"),
    ({"replay_window": 0}, "replay_window=0 must be"),
    ({"feedback": "sign"}, "feedback='sign' is unknown"),
    ({"replay_trace_mib": 0.0}, "replay_trace_mib=0.0 must be"),
])
def test_bad_options_raise_clear_errors(options: dict, match: str) -> None:
    with pytest.raises(LearnerConfigError, match=match):
        make_learner("eprop", Topology.recurrent(3, 4, 1), options)


def test_stored_traces_are_refused_above_their_memory_budget() -> None:
    """A stored row holds each hidden group's trace ``S (P + 1)`` and each relay's gain ``S`` (``row_bytes``)."""
    topology = Topology.recurrent(4, 16, 2)
    traces, gains = EpropLearner(topology, replay_voltages="stored")._stored_shapes()
    assert traces == {0: (16, 4 + 16 + 1)} and gains == {}
    assert row_bytes(traces, gains, 18, torch.float32) == 4 * 336 + 18 + 24
    assert chain_shapes() == ({0: (3, 2 + 3 + 1), 1: (2, 3 + 1)}, {1: 2})
    with pytest.raises(LearnerConfigError, match=r"336 floats \(1386 B\) per row x buffer_size=100000 is 132 MiB, "
                                                 r"above replay_trace_mib=100: lower buffer_size \(at most 75654\)"):
        EpropLearner(topology, replay_voltages="stored", replay_trace_mib=100)
    EpropLearner(topology, replay_voltages="stored", replay_trace_mib=100, buffer_size=75_654)
    EpropLearner(topology, replay_trace_mib=0.1)  # the re-run stores no traces: 42 B per row
    assert EpropLearner(topology).buffer.traces == {}


def chain_shapes() -> tuple[dict, dict]:
    return EpropLearner(chain(), replay_voltages="stored")._stored_shapes()


def test_a_mismatched_checkpoint_is_a_checkpoint_error() -> None:
    state = EpropLearner(masked_recurrent()).state_dict()
    with pytest.raises(CheckpointError, match="credit='eprop'"):
        EpropLearner(masked_recurrent(), credit="bptt").load_state_dict(state)
    with pytest.raises(CheckpointError, match="actor_batch='replay'"):
        EpropLearner(masked_recurrent(), actor_batch="live").load_state_dict(state)
    with pytest.raises(CheckpointError, match="keeps no rows in time"):
        EpropLearner(masked_recurrent(), replay_voltages="stored").load_state_dict(
            EpropLearner(masked_recurrent(), actor_batch="live", replay_voltages="stored").state_dict()
            | {"actor_batch": "replay"})
    with pytest.raises(CheckpointError, match="stores traces of shapes"):
        EpropLearner(masked_recurrent(), replay_voltages="stored").load_state_dict(state)
    with pytest.raises(CheckpointError, match="'feedback'"):
        EpropLearner(Topology.mlp(3, [4], 1)).load_state_dict(
            make_learner("feedback", Topology.mlp(3, [4], 1), {}).state_dict())
    with pytest.raises(CheckpointError):
        EpropLearner(chain()).load_state_dict(copy.deepcopy(state))
