"""``EpropLearner`` (``--learner eprop``): traces, timing, exactness, the ceiling, clocks, resume, options.

The checks of DESIGN.md §6 (batched update == a per-neuron loop, the locality audit) are
``test_learner_eprop_audit.py``; the helpers below serve both files.
"""

from __future__ import annotations

import copy
import io
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from neuron_env.agents.eprop import EpropLearner, output_distances
from neuron_env.agents.eprop_replay import row_bytes
from neuron_env.agents.eprop_rerun import rerun_window, unread_groups, window_ticks
from neuron_env.agents.eprop_rule import advance_trace, row_adam_ascent_, stored_shapes, window_trace
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


#: Agent-group indices of ``chain()``.
H1, H2, OUT = 0, 1, 2


def critic_q(params: dict[str, torch.Tensor], x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """The joint output critic ``Q(x, a)`` written out (two ReLU layers), differentiable in ``a``."""
    h1 = torch.relu(x @ params["w1x"] + a @ params["w1a"] + params["b1"])
    return torch.relu(h1 @ params["w2"] + params["b2"]) @ params["w3"] + params["b3"]


def update_on(learner: EpropLearner, topology: Topology, size: int, generator: torch.Generator) -> dict:
    """One update: on a random batch (``actor_batch="live"``) or on ``size`` random buffer rows (replayed)."""
    if learner.actor_batch == "live":
        return learner.update(replay_batch(topology, size, generator))
    return learner.update(rows=torch.randint(0, learner.num_transitions, (size,), generator=generator))


def copied(ascents: list[torch.Tensor | None]) -> list[torch.Tensor | None]:
    return [None if a is None else a.clone() for a in ascents]


@pytest.fixture
def frozen() -> Callable[..., EpropLearner]:
    """Factory of float64 learners (seed 5) whose parameters never move: ``lr_actor = lr_critic = tau = 0``.

    Their ascents are still computed, so two of them fed the same ticks compare rule against rule exactly.
    """

    def build(topology: Topology, **options: Any) -> EpropLearner:
        return EpropLearner(topology, lr_actor=0.0, lr_critic=0.0, tau=0.0, dtype=F64, seed=5, **options)

    return build


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
        update_on(learner, topology, 8, generator)
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


def test_without_recurrent_synapses_eprop_with_true_feedback_is_the_exact_gradient_of_the_ceiling(
        frozen: Callable[..., EpropLearner]) -> None:
    """No recurrent synapse, feedback through the true weights, leak-free intermediate group: a group at
    distance ``d`` steps on tick ``t ≥ 2d`` along exactly the gradient (truncated BPTT by autograd, the ceiling's)
    of the objective ``Q(x(t−d), μ(v(t−d)))``, the leak of its own voltage included (its trace)."""
    topology = chain(leaks=(0.7, 0.0), recurrent=False)
    local = frozen(topology, actor_batch="live")
    ceiling = frozen(topology, credit="bptt", bptt_window=30, actor_batch="live")
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
            ascents[name].append(copied(learner.ascents))
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
def test_replayed_eprop_with_true_feedback_is_the_exact_gradient_of_the_replayed_ceiling(
        replay_voltages: str, frozen: Callable[..., EpropLearner]) -> None:
    """The replayed rule, no recurrent synapse, feedback through the true weights (``feedback="weights"``),
    leak-free intermediate group: a group at distance ``d`` steps at update ``t`` along exactly the ceiling's
    gradient (BPTT through the same replayed window, autograd) on the batch of update ``t − d``."""
    topology = chain(leaks=(0.7, 0.0), recurrent=False)
    options = {"batch_size": 7, "replay_voltages": replay_voltages, "replay_window": 30}
    local = frozen(topology, feedback="weights", **options)
    ceiling = frozen(topology, credit="bptt", **options)
    ascents: dict[str, list[list[torch.Tensor | None]]] = {"local": [], "ceiling": []}
    for v, actions, reward, v_next, terminated, fired in simulate(topology, local, 12, 3, seed=1):
        for name, learner in (("local", local), ("ceiling", ceiling)):
            learner.store(v, actions, reward, v_next, terminated, fired=fired)
            learner.update()  # both draw the same rows: one generator seed, one draw per update
            ascents[name].append(copied(learner.ascents))
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
def test_the_re_run_reproduces_the_stored_voltages_and_traces(build: Callable[[], Topology], rate: float,
                                                              frozen: Callable[..., EpropLearner]) -> None:
    """On the network's own ticks with the weights fixed, re-running a row through its window (``current``)
    gives the voltages and the traces stored on its tick (``stored``, what the live ring computed), gains
    included: the same queue, the same ascents, across episode ends and silent neurons."""
    topology = build()
    stored = frozen(topology, replay_voltages="stored", batch_size=9)
    current = frozen(topology, replay_voltages="current", replay_window=40, batch_size=9)
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


@pytest.mark.parametrize("build", BUILDS, ids=BUILD_IDS)
@pytest.mark.parametrize("actor_batch", ["replay", "live"])
def test_the_critic_reads_the_voltages_the_network_had_under_the_async_clock(
        build: Callable[[], Topology], actor_batch: str, frozen: Callable[..., EpropLearner]) -> None:
    """Under the async clock, the re-run (``replay_voltages="current"``) applies the recorded firing masks for
    either ``actor_batch``: a replayed row's ``v(τ)`` and ``v(τ + 1)`` are the network's own, and (live, where
    the critic can also be handed the stored rows) its TD errors are those of the stored rows."""
    topology = build()
    learner = frozen(topology, actor_batch=actor_batch, replay_window=40, batch_size=9)
    for v, actions, reward, v_next, terminated, fired in own_ticks(topology, learner, 16, 3, 1, 0.6, (5, 11)):
        learner.store(v, actions, reward, v_next, terminated, fired=fired)
    assert not bool(learner.buffer.fired[:learner.num_transitions].all())  # some neuron was silent
    rows = torch.arange(learner.num_transitions)
    batch = learner.buffer.gather(rows)
    rerun, _, _, _ = learner._rerun(rows, batch, credit=actor_batch == "replay")
    agents = learner.agent_neuron_index
    torch.testing.assert_close(rerun.voltages, batch.voltages, atol=1e-14, rtol=0)
    torch.testing.assert_close(rerun.next_voltages[:, agents], batch.next_voltages[:, agents], atol=1e-14, rtol=0)
    if actor_batch == "live":  # the critic's TD errors on the re-run rows are those on the stored rows
        on_rerun = learner.update(rows=rows)
        on_stored = learner.update(batch)
        for key, value in on_rerun.items():
            if key.startswith("td_error"):
                torch.testing.assert_close(value, on_stored[key], atol=1e-13, rtol=0)


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
        q = critic_q(learner.critic[out_index], x, action[None])
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


def same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal bit for bit (a zero's sign included), shapes and dtypes too."""
    return a.dtype == b.dtype and a.shape == b.shape and a.numpy().tobytes() == b.numpy().tobytes()


@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_the_fast_paths_are_the_general_ones_bit_for_bit(dtype: torch.dtype) -> None:
    """Every shortcut of the update (no mask where all fired, traces in closed form on one lane, groups nothing
    reads left out of the re-run and the ceiling's graph, Adam in place) gives the general path's bits."""
    g = torch.Generator().manual_seed(0)
    ticks, rows, size, width = 5, 6, 3, 4
    pre1 = torch.randn(ticks, rows, width, generator=g, dtype=dtype)
    dmu = torch.rand(ticks, rows, size, generator=g, dtype=dtype)
    keep = (torch.rand(ticks, rows, generator=g) < 0.8).to(dtype)
    for leak in (0.0, 0.4):
        assert same_bits(window_trace(pre1, dmu, None, keep, leak),
                         window_trace(pre1, dmu, torch.ones_like(dmu), keep, leak))
        previous = torch.randn(rows, size, width, generator=g, dtype=dtype)
        done = torch.rand(rows, generator=g) < 0.3
        fast = advance_trace(previous, pre1[0], dmu[0], leak, None, done)
        general = advance_trace(previous, pre1[0], dmu[0], leak, torch.ones(rows, size, dtype=torch.bool), done)
        assert all(same_bits(a, b) for a, b in zip(fast, general, strict=True))
    for fast_rows in (None, torch.ones(size, dtype=torch.bool)):  # Adam in place on every row, or masked
        weight, ascent = torch.randn(size, width, generator=g, dtype=dtype), torch.randn(size, width, dtype=dtype)
        states = [({}, weight.clone()), ({}, weight.clone())]
        for _ in range(3):
            row_adam_ascent_(states[0][1], states[0][0], ascent, fast_rows, 1e-2)
            row_adam_ascent_(states[1][1], states[1][0], ascent, torch.ones(size, dtype=torch.bool), 1e-2)
        assert same_bits(states[0][1], states[1][1])
        assert all(same_bits(states[0][0][k], states[1][0][k]) for k in ("step", "m", "v"))
    # the re-run and the ceiling on a window whose masks are all true, an output nothing reads
    topology = chain(leaks=(0.5, 0.0))
    learner = EpropLearner(topology, credit="bptt", seed=2, dtype=dtype, replay_window=4, batch_size=5)
    for v, actions, reward, v_next, terminated, _ in random_ticks(topology, 12, 2, 3, ends=(4,)):
        learner.store(v.to(dtype), actions.to(dtype), reward.to(dtype), v_next.to(dtype), terminated.to(dtype))
    window = learner.buffer.window_tensors(torch.arange(learner.num_transitions), 4, 2)
    shapes, relays = stored_shapes(topology, learner.distances, learner.edges)
    options = dict(layouts=learner.layouts, leaks=learner.leaks, distances=learner.distances, inputs=learner._input,
                   trace_shapes=shapes, gain_sizes=relays, masked=False, potentials=(OUT,))
    unread = unread_groups(learner.layouts, learner.leaks, frozenset(shapes) | frozenset(relays), False)
    assert unread == {OUT}
    fast = rerun_window(window, window[0][0], learner.actor, unread=unread, every_fired=True, **options)
    general = rerun_window(window, window[0][0], learner.actor, **options)
    for a, b in zip(fast[:2], general[:2], strict=True):
        assert same_bits(a, b)
    for a, b in zip(fast[2:4], general[2:4], strict=True):  # traces, gains
        assert list(a) == list(b) and all(same_bits(a[i], b[i]) for i in a)
    # the output's (p, μ, σ') at v(τ), which the critic's batch and the actor's step share: _potential's
    assert list(fast[4]) == [OUT]
    assert all(same_bits(x, y) for x, y in zip(fast[4][OUT], learner._potential(general[0], OUT), strict=True))
    ticks_of = window_ticks(window)
    voltages = fast[0]
    for per_copy in (False, True):
        unmasked = learner.bptt_gradients(voltages, ticks_of, per_copy=per_copy, masked=False)
        masked = learner.bptt_gradients(voltages, ticks_of, per_copy=per_copy, masked=True)
        assert unmasked.keys() == masked.keys() and all(same_bits(unmasked[i], masked[i]) for i in masked)


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
