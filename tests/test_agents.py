"""LocalDDPG: acting, learning where it must, devices, persistence, bad options."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from neuron_env.agents import CRITIC_KINDS, DivergenceError, LearnerConfigError, LocalDDPG, group_levels

from neuron_env import NetworkWeights, NeuronVecEnv, Topology, network_actions
from neuron_env.dynamics import apply_actions

TARGET = 0.5
ONE_STEP_ID = "NeuronEnvTest/OneStep-v0"


class OneStepTask(gym.Env):
    """Constant observation 1, one action in [-1, 1], reward −(a − 0.5)², episode length 1."""

    def __init__(self, render_mode: str | None = None) -> None:
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        return np.ones(1, np.float32), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        reward = -float((float(action[0]) - TARGET) ** 2)
        return np.ones(1, np.float32), reward, True, False, {}


if ONE_STEP_ID not in gym.registry:
    gym.register(ONE_STEP_ID, entry_point=OneStepTask)


CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA not available")


def test_one_step_task_is_solved_by_a_one_layer_network_with_the_linear_critic() -> None:
    topology = Topology.mlp(1, [], 1)  # in -> out, one tanh neuron
    start = NetworkWeights((torch.tensor([[math.atanh(-0.5)]]),), (torch.zeros(1),))
    learner = LocalDDPG(topology, critic="linear", lr_critic=0.5, lr_actor=0.01, noise_scale=0.2,
                        buffer_size=100, batch_size=64, seed=0, weights=start)
    env = NeuronVecEnv(ONE_STEP_ID, topology, validate=False)
    voltages, _ = env.reset(seed=0)
    greedy = []
    for i in range(2500):
        actions = learner.act(voltages)
        step = env.step(actions)
        learner.store(voltages, actions, step.reward, step.info["final_voltages"], step.terminated)
        voltages = step.voltages
        if i >= 64:
            learner.update()
        if i >= 1500:
            greedy.append(float(learner.act(voltages, explore=False)[0, 0]))
    env.close()
    # The linear critic fits one slope per neuron over the replayed noisy actions; noise clipped at the
    # tanh bound biases that fit slightly, so the greedy action settles within a few hundredths of the target.
    assert abs(sum(greedy) / len(greedy) - TARGET) < 0.08, f"mean greedy action {sum(greedy) / len(greedy):.3f}"
    assert max(abs(a - TARGET) for a in greedy) < 0.25


def run_few_updates(critic: str, device: str, topology: Topology) -> LocalDDPG:
    learner = LocalDDPG(topology, critic=critic, device=device, batch_size=16, buffer_size=256, seed=1,
                        critic_context="task")
    env = NeuronVecEnv("Pendulum-v1", topology, num_envs=2, device=device, validate=False)
    voltages, _ = env.reset(seed=0)
    for _ in range(40):
        actions = learner.act(voltages)
        step = env.step(actions)
        following = step.info["final_voltages"] if step.task_stepped else step.voltages
        learner.store(voltages, actions, step.reward, following, step.terminated)
        voltages = step.voltages
        learner.update()
    env.close()
    return learner


@pytest.mark.parametrize("critic", CRITIC_KINDS)
def test_cpu_run_gives_finite_parameters(critic: str) -> None:
    learner = run_few_updates(critic, "cpu", Topology.recurrent(3, 6, 1, leak=0.3))
    assert learner.granularity == "per_tick"
    assert all(torch.isfinite(w).all() for w in learner.actor)
    assert all(torch.isfinite(p).all() for params in learner.critic for p in params.values())


@CUDA
@pytest.mark.parametrize("critic", CRITIC_KINDS)
def test_cuda_run_gives_finite_parameters(critic: str) -> None:
    learner = run_few_updates(critic, "cuda", Topology.recurrent(3, 6, 1, leak=0.3))
    assert learner.actor[0].is_cuda and learner.buffer.voltages.is_cuda
    assert all(torch.isfinite(w).all() for w in learner.actor)


def test_settled_acting_without_noise_is_the_forward_pass() -> None:
    topology = Topology.mlp(3, [5, 4], 2)
    learner = LocalDDPG(topology, critic="mlp", seed=2)
    assert learner.granularity == "settled" and group_levels(topology) == {"in": 0, "h1": 1, "h2": 2, "out": 3}
    voltages = torch.zeros(4, topology.num_neurons)
    voltages[:, :3] = torch.randn(4, 3)
    inputs = voltages.clone()
    for level in (1, 2, 3):
        actions = learner.act(voltages, explore=False, level=level)
        voltages = apply_actions(voltages, actions, learner.agent_neuron_index, None)
    torch.testing.assert_close(voltages, learner.settle(inputs))
    expected = inputs
    for _ in range(3):
        expected = apply_actions(expected, network_actions(expected, topology, learner.weights),
                                 learner.agent_neuron_index, None)
    torch.testing.assert_close(voltages, expected)


def test_exploration_stays_in_range_and_holds_other_layers() -> None:
    topology = Topology.mlp(2, [3], 1, activation="relu")
    learner = LocalDDPG(topology, noise_scale=5.0, noise="ou")
    voltages = torch.rand(64, topology.num_neurons)
    actions = learner.act(voltages, level=1)
    hidden, out = topology.agent_slice["h1"], topology.agent_slice["out"]
    assert (actions[:, hidden] >= 0).all()
    torch.testing.assert_close(actions[:, out], voltages[:, learner.agent_neuron_index][:, out])
    actions = learner.act(voltages, uniform=True)
    assert (actions[:, out].abs() <= 1).all() and (actions[:, hidden] >= 0).all()
    learner.reset_noise(torch.tensor([True] + [False] * 63))
    assert learner.noise.state is not None and (learner.noise.state[0] == 0).all()


def test_state_dict_round_trip_continues_identically() -> None:
    topology = Topology.mlp(3, [4], 1)
    a = LocalDDPG(topology, critic="mlp", batch_size=8, seed=4)
    v = torch.randn(32, topology.num_neurons)
    a.store(v, torch.rand(32, topology.num_agents), torch.randn(32), v, torch.zeros(32))
    a.update()
    b = LocalDDPG(topology, critic="mlp", batch_size=8, seed=99)
    b.load_state_dict(a.state_dict())
    a.update()
    b.update()
    for wa, wb in zip(a.actor, b.actor, strict=True):
        assert torch.equal(wa, wb)


def test_settled_replay_keeps_inputs_and_rebuilds_the_settled_voltages() -> None:
    topology = Topology.mlp(3, [4, 2], 1)
    learner = LocalDDPG(topology, batch_size=16, buffer_size=8)
    assert learner.buffer.voltages.shape[1] == 3 and learner.buffer.next_voltages.shape[1] == 3
    settled = learner.settle(torch.randn(1, topology.num_neurons))
    actions = settled[:, learner.agent_neuron_index]
    following = torch.randn(1, topology.num_neurons)
    learner.store(settled, actions, torch.ones(1), following, torch.zeros(1))
    batch = learner.sample()  # the one stored transition, 16 times
    torch.testing.assert_close(batch.voltages, settled.expand(16, -1))
    torch.testing.assert_close(batch.actions, actions.expand(16, -1))
    torch.testing.assert_close(batch.next_voltages, following[:, :3].expand(16, -1))
    torch.testing.assert_close(learner.settle(batch.next_voltages), learner.settle(following).expand(16, -1))


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_frozen_hidden_groups_do_not_move(optimizer: str) -> None:
    topology = Topology.mlp(3, [4], 1)
    learner = LocalDDPG(topology, critic="bilinear", batch_size=8, lr_actor_hidden=0.0, actor_optimizer=optimizer)
    v = torch.randn(32, topology.num_neurons)
    learner.store(v, torch.rand(32, topology.num_agents) * 2 - 1, torch.randn(32), v, torch.zeros(32))
    hidden, out = (w.clone() for w in learner.actor)
    for _ in range(3):
        learner.update()
    assert torch.equal(learner.actor[0], hidden) and not torch.equal(learner.actor[1], out)


def test_policy_delay_steps_actor_and_targets_on_every_dth_update_only() -> None:
    topology = Topology.mlp(3, [4], 1)
    delayed = LocalDDPG(topology, critic="mlp", batch_size=8, policy_delay=2, seed=3)
    every = LocalDDPG(topology, critic="mlp", batch_size=8, seed=3)
    v = torch.randn(32, topology.num_neurons)
    a = torch.rand(32, topology.num_agents) * 2 - 1
    batch_data = (v, a, torch.randn(32), v, torch.zeros(32))
    delayed.store(*batch_data)
    batch = delayed.sample()
    every.store(*batch_data)
    before = [w.clone() for w in delayed.actor], [w.clone() for w in delayed.target_actor]
    delayed.update(batch)  # update 0: the actor's turn, as every DDPG update
    every.update(batch)
    for w, w_every in zip(delayed.actor + delayed.target_actor, every.actor + every.target_actor, strict=True):
        torch.testing.assert_close(w, w_every)
    moved = [w.clone() for w in delayed.actor], [w.clone() for w in delayed.target_actor]
    assert not torch.equal(moved[0][1], before[0][1]) and not torch.equal(moved[1][1], before[1][1])
    critic_before = {k: p.clone() for k, p in delayed.critic[1].items()}
    target_critic_before = {k: p.clone() for k, p in delayed.target_critic[1].items()}
    delayed.update(batch)  # update 1: critics only; actor and every target stay
    for w, w_moved in zip(delayed.actor + delayed.target_actor, moved[0] + moved[1], strict=True):
        assert torch.equal(w, w_moved)
    assert all(torch.equal(p, target_critic_before[k]) for k, p in delayed.target_critic[1].items())
    assert not all(torch.equal(p, critic_before[k]) for k, p in delayed.critic[1].items())
    delayed.update(batch)  # update 2: the actor's turn again
    assert not torch.equal(delayed.actor[1], moved[0][1])


def test_max_norm_caps_long_rows_only_and_keeps_bias_and_zeros() -> None:
    from neuron_env.agents.optim import max_norm_

    weight = torch.tensor([[3.0, 4.0, 0.0, 7.0],    # input norm 5: scaled to 2
                           [0.6, 0.0, 0.8, -9.0],   # input norm 1: untouched
                           [0.0, 0.0, 0.0, 1.0]])   # all-zero inputs (masked): untouched, no NaN
    max_norm_(weight, 2.0)
    torch.testing.assert_close(weight, torch.tensor([[1.2, 1.6, 0.0, 7.0], [0.6, 0.0, 0.8, -9.0],
                                                     [0.0, 0.0, 0.0, 1.0]]))


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_actor_max_norm_bounds_every_neurons_input_weights(optimizer: str) -> None:
    topology = Topology.mlp(3, [6], 2)
    v = torch.randn(64, topology.num_neurons) * 3
    data = (v, torch.rand(64, topology.num_agents) * 2 - 1, torch.randn(64) * 10, v, torch.zeros(64))
    capped, free = (LocalDDPG(topology, critic="mlp", batch_size=32, lr_actor=0.5, actor_optimizer=optimizer,
                              actor_max_norm=cap, seed=2) for cap in (0.3, None))
    for learner in (capped, free):
        learner.store(*data)
        for _ in range(20):
            learner.update()
    capped_norms = torch.cat([torch.linalg.vector_norm(w[:, :-1], dim=1) for w in capped.actor])
    free_norms = torch.cat([torch.linalg.vector_norm(w[:, :-1], dim=1) for w in free.actor])
    assert capped_norms.max() <= 0.3 + 1e-6
    assert free_norms.max() > 0.3  # without the cap the same updates leave some row longer


def test_hidden_noise_scale_rescales_only_hidden_groups() -> None:
    topology = Topology.mlp(3, [6], 2, activation="identity", output_activation="identity")  # no clipping
    voltages = torch.randn(5, topology.num_neurons)
    plain = LocalDDPG(topology, noise_scale=0.1, seed=4)
    louder = LocalDDPG(topology, noise_scale=0.1, noise_scale_hidden=0.3, seed=4)
    same = LocalDDPG(topology, noise_scale=0.1, noise_scale_hidden=0.1, seed=4)
    greedy = plain.act(voltages, explore=False)
    noise_plain = plain.act(voltages) - greedy
    noise_louder = louder.act(voltages) - greedy
    hidden = topology.agent_slice["h1"]
    out = topology.agent_slice["out"]
    torch.testing.assert_close(noise_louder[:, hidden], 3 * noise_plain[:, hidden])
    torch.testing.assert_close(noise_louder[:, out], noise_plain[:, out])
    assert torch.equal(same.act(voltages) - greedy, noise_plain)
    with pytest.raises(LearnerConfigError, match="needs noise_scale > 0"):
        LocalDDPG(topology, noise_scale=0.0, noise_scale_hidden=0.2)


def test_update_raises_divergence_naming_the_group() -> None:
    topology = Topology.mlp(3, [4], 1)
    learner = LocalDDPG(topology, critic="linear", batch_size=4)
    v = torch.randn(8, topology.num_neurons)
    learner.store(v, torch.rand(8, topology.num_agents), torch.randn(8), v, torch.zeros(8))
    learner.actor[1][0, 0] = float("nan")
    with pytest.raises(DivergenceError, match="'out'") as info:
        learner.update()
    assert info.value.group == "out" and info.value.what == "actor"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"critic": "quadratic"}, "critic='quadratic'"), ({"critic_context": "global"}, "critic_context"),
     ({"granularity": "weekly"}, "granularity"), ({"noise": "pink"}, "noise='pink'"),
     ({"tau": 2.0}, "tau"), ({"actor_optimizer": "rmsprop"}, "actor_optimizer='rmsprop'"),
     ({"policy_delay": 0}, "policy_delay=0"), ({"actor_max_norm": 0.0}, "actor_max_norm=0.0"),
     ({"actor_max_norm": float("nan")}, "actor_max_norm=nan")],
)
def test_bad_options_raise_clear_errors(kwargs: dict, match: str) -> None:
    with pytest.raises(LearnerConfigError, match=match):
        LocalDDPG(Topology.mlp(3, [4], 1), **kwargs)


def test_settled_needs_an_acyclic_network() -> None:
    with pytest.raises(LearnerConfigError, match="per_tick"):
        LocalDDPG(Topology.recurrent(3, 4, 1), granularity="settled")


def test_actor_adam_step_is_torch_adam_on_the_negated_local_gradient() -> None:
    from neuron_env.agents.optim import actor_adam_step, actor_ascent
    from neuron_env.agents.tensors import GroupBatch

    generator = torch.Generator().manual_seed(0)
    b, s, p = 6, 3, 4
    pre1 = torch.cat([torch.randn(b, p, generator=generator), torch.ones(b, 1)], 1)
    mask1 = (torch.rand(s, p + 1, generator=generator) > 0.3).float()
    batch = GroupBatch(*(torch.zeros(1),) * 6, pre1=pre1, mu=torch.zeros(b, s),
                       dmu=torch.rand(b, s, generator=generator), mask1=mask1)
    weight = torch.randn(s, p + 1, generator=generator) * mask1
    reference = torch.nn.Parameter(weight.clone())
    optimizer = torch.optim.Adam([reference], lr=0.01)
    state: dict[str, torch.Tensor] = {}
    for _ in range(3):
        dq_da = torch.randn(b, s, generator=generator)
        reference.grad = -actor_ascent(batch, dq_da)
        optimizer.step()
        actor_adam_step(weight, state, batch, dq_da, 0.01)
        torch.testing.assert_close(weight, reference.detach())
    assert (weight[mask1 == 0] == 0).all()


def test_a_buffer_of_another_row_width_is_a_checkpoint_error() -> None:
    from neuron_env.agents import CheckpointError

    topology = Topology.mlp(3, [4], 1)
    per_tick = LocalDDPG(topology, granularity="per_tick", buffer_size=8)
    v = torch.randn(2, topology.num_neurons)
    per_tick.store(v, torch.rand(2, topology.num_agents), torch.randn(2), v, torch.zeros(2))
    settled = LocalDDPG(topology, granularity="settled", buffer_size=8)
    with pytest.raises(CheckpointError, match="voltages of shape"):
        settled.buffer.load_state_dict(per_tick.buffer.state_dict())


def test_replay_add_wraps_around_as_a_ring_whether_or_not_a_batch_crosses_the_end() -> None:
    from neuron_env.agents.replay import ReplayBuffer

    buffer = ReplayBuffer(5, 2, 1)
    for value in range(6):  # batches of two: the third crosses the end of the ring
        rows = torch.full((2, 2), float(value))
        buffer.add(rows, rows[:, :1], rows[:, 0], rows, torch.zeros(2))
    assert buffer.voltages[:, 0].tolist() == [5.0, 5.0, 3.0, 4.0, 4.0]
    assert buffer.position == 2 and len(buffer) == 5
