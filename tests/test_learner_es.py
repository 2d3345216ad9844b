"""``ESLearner`` (ARS V1-t, shared-seed noise): stream, locality, per-neuron loop, copies, checkpoints."""

from __future__ import annotations

import math
import statistics

import pytest
import torch
from neuron_env.agents import CheckpointError, DivergenceError, LearnerConfigError, LocalDDPG
from neuron_env.agents.es import ESLearner
from neuron_env.agents.learner import Learner
from neuron_env.agents.registry import make_learner

from neuron_env import NeuronVecEnv, Topology
from neuron_env.dynamics import apply_actions, network_actions

from .conftest import settled_task_step

# ---------------------------------------------------------------- the stream, written from the docs
MASK = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15


def mix(z: int) -> int:
    z &= MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def reference_normal(seed: int, iteration: int, direction: int, group: int, counter: int) -> float:
    """One element of the shared stream in plain Python ints and floats."""
    key = mix(seed * GOLDEN)
    for word in (iteration, direction, group):
        key = mix(key + (word + 1) * GOLDEN)
    u1 = ((mix(key + (2 * counter + 1) * GOLDEN) >> 11) + 0.5) / 2.0**53
    u2 = ((mix(key + (2 * counter + 2) * GOLDEN) >> 11) + 0.5) / 2.0**53
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


def assert_close(actual: torch.Tensor, expected: torch.Tensor, rtol: float = 0.0, atol: float = 1e-6) -> None:
    """``|actual − expected| <= atol + rtol |expected|`` elementwise (torch.testing imports torch.distributed: 4 s)."""
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    assert bool(((actual - expected).abs() <= atol + rtol * expected.abs()).all()), (actual, expected)


def neuron_rows(learner: ESLearner) -> list[tuple[int, int]]:
    """``(group, row)`` of every neuron, for the per-neuron loops."""
    return [(g, s) for g, lay in enumerate(learner.layouts) for s in range(lay.size)]


def float64_learner(topology: Topology, **options: object) -> ESLearner:
    return ESLearner(topology, seed=7, dtype=torch.float64, **options)


# ---------------------------------------------------------------- shared-seed noise
def test_stream_is_the_documented_splitmix_box_muller() -> None:
    learner = float64_learner(Topology.mlp(2, [3], 2), num_directions=3)
    learner.iteration = 4
    for g, s in neuron_rows(learner):
        width = learner.layouts[g].pre_dim + 1
        delta = learner.perturbation(g, [0, 2], rows=[s])
        expected = torch.tensor([[reference_normal(7, 4, k, g, s * width + p) for p in range(width)] for k in (0, 2)],
                                dtype=torch.float64)
        assert_close(delta[:, 0], expected, rtol=0, atol=1e-12)


def test_a_neurons_slice_regenerates_bitwise_alone_or_with_the_network() -> None:
    for topology in (Topology.mlp(3, [5, 4], 2), Topology.sparse(3, 9, 2, density=0.4, seed=2, recurrent=False)):
        learner = ESLearner(topology, num_directions=4, seed=3)
        learner.iteration = 2
        for g, lay in enumerate(learner.layouts):
            whole = learner.perturbation(g, range(4))
            for s in range(lay.size):
                assert torch.equal(learner.perturbation(g, range(4), rows=[s])[:, 0], whole[:, s])
                assert torch.equal(learner.perturbation(g, [3], rows=[s])[0, 0], whole[3, s])
            if lay.mask1 is not None:  # masked connections are never perturbed
                assert (whole[:, lay.mask1 == 0] == 0).all()
    # a standard normal, and a fresh draw per iteration
    learner = ESLearner(Topology.mlp(3, [64, 64], 1), num_directions=8)
    delta = learner.perturbation(1, range(8))
    assert abs(float(delta.mean())) < 0.02 and abs(float(delta.std()) - 1) < 0.02
    assert not torch.equal(delta, learner.perturbation(1, range(8), iteration=1))


# ---------------------------------------------------------------- the update, per neuron
def reference_update(learner: ESLearner, actor: list[torch.Tensor], returns: list[tuple[float, float]],
                     alpha: float, b: int) -> list[torch.Tensor]:
    """ARS V1-t, one neuron at a time, from the paper's Algorithm 2 (plain Python floats)."""
    order = sorted(range(len(returns)), key=lambda k: (-max(returns[k]), k))[:b]
    sigma = statistics.pstdev([r for k in order for r in returns[k]]) or 1.0
    new = [w.clone() for w in actor]
    for g, s in neuron_rows(learner):  # the loop over neurons the learner must not have
        width = learner.layouts[g].pre_dim + 1
        for p in range(width):
            step = sum((returns[k][0] - returns[k][1]) * reference_normal(7, learner.iteration, k, g, s * width + p)
                       for k in order)
            new[g][s, p] = actor[g][s, p] + alpha / (b * sigma) * step
    return new


@pytest.mark.parametrize("top", [3, 2])
def test_batched_update_equals_per_neuron_loop(top: int) -> None:
    learner = float64_learner(Topology.mlp(2, [3, 2], 1), num_directions=3, top_directions=top, es_step=0.05)
    returns = [(-3.0, -5.5), (-1.0, -7.0), (-4.0, -2.5)]
    for _ in range(2):  # two iterations: the stream moves on
        expected = reference_update(learner, learner.actor, returns, 0.05, top)
        stats = learner.update(torch.tensor(returns, dtype=torch.float64))
        for w, e in zip(learner.actor, expected, strict=True):
            assert_close(w, e, rtol=0, atol=1e-10)
        assert float(stats["directions"]) == top
        assert float(stats["return_mean"]) == pytest.approx(statistics.fmean(r for pair in returns for r in pair))
        assert float(stats["return_std"]) == pytest.approx(statistics.pstdev(r for pair in returns for r in pair))
        returns = [(r1 + 1.0, r2 - 0.5) for r1, r2 in returns]


def test_equal_returns_leave_the_weights_unchanged() -> None:
    learner = float64_learner(Topology.mlp(2, [3], 1), num_directions=2)
    before = [w.clone() for w in learner.actor]
    learner.update(torch.full((2, 2), -4.0, dtype=torch.float64))
    assert all(torch.equal(w, b) for w, b in zip(learner.actor, before, strict=True))


# ---------------------------------------------------------------- locality audit
def test_locality_audit() -> None:
    """With fixed returns, neuron h1_0's new row reads only its own row and the returns.

    In ``mlp(2, [3, 3, 3], 1)`` the third hidden layer and the output are not neighbours of
    ``h1_0``: changing them leaves its update bitwise unchanged. ES reads no neighbour either
    (no messages at all), so the checks that can fail are its own parameters and the returns.
    """
    topology = Topology.mlp(2, [3, 3, 3], 1)
    returns = torch.tensor([[-3.0, -1.0], [-2.0, -6.0], [-5.0, -4.5]], dtype=torch.float64)

    def new_row(edit: dict[int, float] | None = None, own: float = 0.0, r: torch.Tensor = returns) -> torch.Tensor:
        learner = float64_learner(topology, num_directions=3, top_directions=2)
        for g, value in (edit or {}).items():
            learner.actor[g] += value
        learner.actor[0][0] += own
        learner.update(r)
        return learner.actor[0].clone()

    reference = new_row()
    assert torch.equal(reference, new_row({2: 0.7, 3: -1.3}))  # h3 and out: non-neighbours
    assert torch.equal(reference, new_row({1: 0.4}))  # h2 (postsynaptic): not read either
    own = new_row(own=0.25)
    assert not torch.equal(reference[0], own[0])  # its own parameters
    assert torch.equal(reference[1:], own[1:])  # h1_1, h1_2 (same layer, not neighbours) ignore h1_0
    assert not torch.equal(reference[0], new_row(r=returns * torch.tensor([1.0, 2.0], dtype=torch.float64)))


# ---------------------------------------------------------------- env copies and acting
def perturbed_settle(learner: ESLearner, slot: int, inputs: torch.Tensor, theta: list[torch.Tensor]) -> torch.Tensor:
    """Settled voltages of ``θ ± ν δ_k`` for slot ``slot`` (a plain network, run by a second learner)."""
    sign = 1.0 if slot % 2 == 0 else -1.0
    actor = [w + learner.es_noise * sign * learner.perturbation(g, [slot // 2])[0] for g, w in enumerate(theta)]
    plain = ESLearner(learner.topology, weights=learner._network(actor), dtype=learner.dtype)
    return plain.settle(inputs)


def drive_levels(learner: ESLearner, inputs: torch.Tensor, explore: bool) -> torch.Tensor:
    voltages = torch.zeros(inputs.shape[0], learner.topology.num_neurons, dtype=inputs.dtype)
    voltages[:, :inputs.shape[1]] = inputs
    for level in range(1, learner.topology.depth + 1):
        actions = learner.act(voltages, explore=explore, level=level)
        voltages = apply_actions(voltages, actions, learner.agent_neuron_index, None)
    return voltages


def test_one_copy_walks_the_antithetic_slots_and_acts_with_them() -> None:
    learner = float64_learner(Topology.mlp(3, [4, 3], 2), num_directions=2)
    inputs = torch.randn(1, 3, dtype=torch.float64)
    no = torch.zeros(1, dtype=torch.bool)
    for iteration in range(2):
        theta = [w.clone() for w in learner.actor]
        for slot in range(4):
            settled = drive_levels(learner, inputs, explore=True)
            assert int(learner.copy_slot[0]) == slot and int(learner.copy_iteration[0]) == iteration
            assert_close(settled, perturbed_settle(learner, slot, inputs, theta), rtol=0, atol=1e-12)
            for step in range(3):  # a three-step episode with return 3 · (slot + 1)
                learner.store(settled, None, torch.tensor([slot + 1.0]), settled, torch.tensor([step == 2]), no)
            assert learner.ready() == (slot == 3)
        assert learner.returns.tolist() == [3.0, 6.0, 9.0, 12.0]
        assert learner.num_transitions == 12
        learner.update()
        assert learner.iteration == iteration + 1 and int(learner.copy_slot[0]) == 0 and not learner.ready()
    # explore=False is the mean θ, for any number of copies
    many = torch.randn(5, 3, dtype=torch.float64)
    assert_close(drive_levels(learner, many, explore=False), learner.settle(many), rtol=0, atol=1e-12)


def test_copies_caught_mid_episode_finish_it_and_their_return_is_discarded() -> None:
    learner = float64_learner(Topology.mlp(2, [3], 1), num_directions=1)  # 2 slots, 3 copies
    v = torch.zeros(3, learner.topology.num_neurons, dtype=torch.float64)
    learner.act(v)
    assert learner.copy_slot.tolist() == [0, 1, -1]  # the third copy runs the mean θ
    mean_copy = learner.copy_actor[0][2].clone()
    assert torch.equal(mean_copy, learner.actor[0])

    def store(rewards: list[float], done: list[bool]) -> None:
        learner.store(v, None, torch.tensor(rewards), v, torch.tensor(done), torch.zeros(3, dtype=torch.bool))

    store([1.0, 2.0, 5.0], [True, False, False])  # copy 0 ends: no slot left, it runs the mean
    assert learner.copy_slot.tolist() == [-1, 1, -1] and not learner.ready()
    store([1.0, 2.0, 5.0], [False, True, False])  # copy 1 ends: all returns in
    assert learner.ready() and learner.returns.tolist() == [1.0, 4.0]
    stale = learner.copy_actor[0][2].clone()
    learner.update()
    # copy 1 sat at an episode boundary: it starts on slot 0 of iteration 1 at once; copies 0 and 2 are mid-episode
    assert learner.copy_slot.tolist() == [-1, 0, -1] and learner.copy_iteration.tolist() == [0, 1, 0]
    assert torch.equal(learner.copy_actor[0][2], stale)  # the episode finishes on the weights it began with
    store([9.0, 1.0, 5.0], [False, False, True])  # copy 2's return is of the mean: unused; it takes slot 1
    assert learner.copy_slot.tolist() == [-1, 0, 1] and not learner.recorded.any()
    store([9.0, 1.0, 1.0], [True, True, True])
    assert learner.ready() and learner.returns.tolist() == [2.0, 1.0]  # copy 0's 19.0 was discarded


# ---------------------------------------------------------------- checkpoints
def drive_fake(learner: ESLearner, steps: int, generator: torch.Generator, num_envs: int = 3) -> list[torch.Tensor]:
    """Act and store with random voltages, rewards and episode ends; update when ready."""
    outputs = []
    for _ in range(steps):
        v = torch.randn(num_envs, learner.topology.num_neurons, generator=generator, dtype=learner.dtype)
        actions = learner.act(v)
        outputs.append(actions)
        rewards = torch.randn(num_envs, generator=generator, dtype=learner.dtype)
        done = torch.rand(num_envs, generator=generator) < 0.3
        learner.store(v, actions, rewards, v, done, torch.zeros(num_envs, dtype=torch.bool))
        if learner.ready():
            outputs.extend(learner.update().values())
    return outputs


def test_state_dict_round_trip_mid_iteration_continues_identically() -> None:
    topology = Topology.mlp(3, [4], 1)
    a = ESLearner(topology, num_directions=3, seed=4)
    generator = torch.Generator().manual_seed(0)
    while a.num_updates < 1 or not 0 < a.recorded.sum() < 6:  # stop mid-iteration, after an update
        drive_fake(a, 1, generator)
    b = ESLearner(topology, num_directions=3, seed=99)
    b.load_state_dict(a.state_dict())
    assert b.seed == 4 and b.iteration == a.iteration
    out_a = drive_fake(a, 30, torch.Generator().manual_seed(1))
    out_b = drive_fake(b, 30, torch.Generator().manual_seed(1))
    assert len(out_a) == len(out_b) > 30  # some updates happened after the restore
    assert all(torch.equal(x, y) for x, y in zip(out_a, out_b, strict=True))
    assert all(torch.equal(x, y) for x, y in zip(a.actor, b.actor, strict=True))
    # without the rollout, the iteration in progress restarts from its first slot
    c = ESLearner(topology, num_directions=3)
    c.load_state_dict(a.state_dict(include_buffer=False))
    assert c.num_copies is None and not c.recorded.any() and c.iteration == a.iteration
    assert all(torch.equal(x, y) for x, y in zip(a.actor, c.actor, strict=True))


def test_mismatched_checkpoints_raise() -> None:
    topology = Topology.mlp(3, [4], 1)
    state = ESLearner(topology, num_directions=3).state_dict()
    with pytest.raises(CheckpointError, match="num_directions"):
        ESLearner(topology, num_directions=2).load_state_dict(state)
    with pytest.raises(CheckpointError, match="freeze_hidden"):
        ESLearner(topology, num_directions=3, freeze_hidden=True).load_state_dict(state)
    with pytest.raises(CheckpointError, match="shape"):
        ESLearner(Topology.mlp(3, [5], 1), num_directions=3).load_state_dict(state)
    with pytest.raises(CheckpointError, match="'ddpg'"):
        ESLearner(topology).load_state_dict(LocalDDPG(topology).state_dict())


# ---------------------------------------------------------------- options and the floor control
@pytest.mark.parametrize("options", [
    {"num_directions": 0}, {"num_directions": 2.5}, {"top_directions": 9}, {"top_directions": 0},
    {"es_step": -0.1}, {"es_step": float("nan")}, {"es_noise": 0.0}, {"es_noise": float("inf")},
])
def test_bad_options_raise(options: dict) -> None:
    name = next(iter(options))
    with pytest.raises(LearnerConfigError, match=name):
        make_learner("es", Topology.mlp(3, [4], 1), options)


def test_bad_use_raises() -> None:
    with pytest.raises(LearnerConfigError, match="acyclic"):
        ESLearner(Topology.recurrent(3, 4, 1))
    learner = ESLearner(Topology.mlp(3, [4], 1), num_directions=2)
    with pytest.raises(LearnerConfigError, match="ready"):
        learner.update()
    with pytest.raises(LearnerConfigError, match="shape"):
        learner.update(torch.zeros(3, 2))
    with pytest.raises(DivergenceError, match="return"):
        learner.update(torch.tensor([[1.0, float("nan")], [0.0, 1.0]]))
    learner.act(torch.zeros(2, learner.topology.num_neurons))
    with pytest.raises(LearnerConfigError, match="env copies"):
        learner.act(torch.zeros(3, learner.topology.num_neurons))


def test_freeze_hidden_updates_only_the_outputs() -> None:
    learner = ESLearner(Topology.mlp(3, [5, 4], 2), num_directions=3, freeze_hidden=True)
    hidden = [w.clone() for w in learner.actor[:2]]
    output = learner.actor[2].clone()
    drive_fake(learner, 40, torch.Generator().manual_seed(2))
    assert learner.num_updates >= 2
    assert all(torch.equal(w, h) for w, h in zip(learner.actor[:2], hidden, strict=True))
    assert not torch.equal(learner.actor[2], output)
    assert learner.copy_actor[0] is None and learner.copy_actor[2] is not None  # hidden copies run θ


# ---------------------------------------------------------------- the trainer's loop, through the registry
@pytest.mark.parametrize("num_envs", [1, 4])
def test_registry_smoke_follows_the_trainer_loop(num_envs: int) -> None:
    topology = Topology.mlp(3, [8, 8], 1)
    learner = make_learner("es", topology, {"num_directions": 2, "es_noise": 0.05, "lr_actor": 1.0}, seed=1)
    assert isinstance(learner, ESLearner) and isinstance(learner, Learner) and not learner.off_policy
    env = NeuronVecEnv("Pendulum-v1", topology, num_envs=num_envs, validate=False,
                       task_kwargs={"max_episode_steps": 25})
    voltages, _ = env.reset(seed=0)
    stats: dict[str, torch.Tensor] = {}
    for _ in range(300):
        voltages, step = settled_task_step(learner, env, voltages)
        if learner.ready():
            stats = learner.update()
        learner.reset_noise(step.terminated | step.truncated)
    assert learner.num_updates >= 2 and set(stats) == {"return_mean", "return_std", "directions"}
    assert all(torch.isfinite(v) for v in stats.values())
    # the deterministic policy is the plain network of learner.weights
    v = voltages.clone()
    for level in range(1, env.delay + 1):
        v = apply_actions(v, learner.act(v, explore=False, level=level), learner.agent_neuron_index, None)
    assert_close(v, learner.settle(voltages))
    expected = voltages.clone()
    for _ in range(env.delay):
        expected = apply_actions(expected, network_actions(expected, topology, learner.weights),
                                 learner.agent_neuron_index, None)
    assert_close(v, expected)
    env.close()
