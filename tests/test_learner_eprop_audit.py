"""``EpropLearner`` against DESIGN.md §6: batched update == the rule written neuron by neuron; the locality audit."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch
from neuron_env.agents.eprop import EpropConfig, EpropLearner
from neuron_env.agents.replay import Batch

from neuron_env import Topology

from .test_learner_eprop import (
    BUILD_IDS,
    BUILDS,
    F64,
    H1,
    H2,
    OUT,
    chain,
    critic_q,
    d_tanh,
    group_index,
    masked_recurrent,
    random_ticks,
    replay_batch,
    update_on,
)


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

    def store(self, v: torch.Tensor, fired: torch.Tensor, done: torch.Tensor) -> None:
        for n in self.neurons:
            n.store(v, fired, done)
            n.outbox = [None, n.outbox[0]]
        self.live = (v, fired)

    def critic_step(self, v: torch.Tensor, actions: torch.Tensor, reward: torch.Tensor, v_next: torch.Tensor,
                    terminated: torch.Tensor) -> None:
        """One TD(0) step of the joint critic by autograd and Adam, the target from the target copies."""
        gamma = self.config.gamma
        with torch.no_grad():
            a_next = torch.stack([torch.tanh(n.p(v_next) @ n.k_target) for n in self.outputs], 1)
            y = reward + gamma * (1 - terminated) * critic_q(self.target_critic, v_next[:, self.context], a_next)
        a = torch.stack([actions[:, n.agent] for n in self.outputs], 1)
        self.critic_adam.zero_grad()
        ((y - critic_q(self.critic, v[:, self.context], a)) ** 2).mean().backward()
        self.critic_adam.step()

    def action_slope(self, v: torch.Tensor) -> torch.Tensor:
        """``∂Q/∂a`` ``[B, outputs]`` at ``(x(v), μ(v))``, by autograd."""
        mu = torch.stack([torch.tanh(n.p(v) @ n.k) for n in self.outputs], 1).requires_grad_(True)
        (slope,) = torch.autograd.grad(critic_q(self.critic, v[:, self.context], mu).sum(), mu)
        return slope

    def move_targets(self) -> None:
        tau = self.config.tau
        for n in self.neurons:
            n.k_target = (1 - tau) * n.k_target + tau * n.k
        self.target_critic = {k: (1 - tau) * self.target_critic[k] + tau * p.detach() for k, p in self.critic.items()}

    def update(self, batch: Batch) -> None:
        self.critic_step(*batch)
        if self.live is not None:
            self.actor_step(*self.live)
            self.live = None
        self.move_targets()

    def actor_step(self, v: torch.Tensor, fired: torch.Tensor) -> None:
        steps = []
        slope = self.action_slope(v)
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


def assert_every_group_moved_and_masks_hold(learner: EpropLearner, topology: Topology, config: EpropConfig) -> None:
    fresh = EpropLearner(topology, config, seed=3, dtype=F64)
    assert all(not torch.equal(w, w0) for w, w0 in zip(learner.actor, fresh.actor, strict=True))  # every group moved
    for p, block in zip(topology.projections, learner.weights.blocks, strict=True):
        if p.mask is not None:  # masked synapses stay exactly zero
            assert torch.all(block[torch.tensor(p.mask) == 0] == 0)


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
        self.critic_step(v, actions, reward, v_next, terminated)
        last_fired = self.stored[-1][5]
        for n in self.neurons:
            n.outbox = [None, n.outbox[0]]
        slope = self.action_slope(v)
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
        self.move_targets()


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
    assert_every_group_moved_and_masks_hold(learner, topology, config)


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
    assert_every_group_moved_and_masks_hold(learner, topology, config)


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
        update_on(learner, topology, 5, generator)
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


AT = 3  # the tick before which a learner is perturbed
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
