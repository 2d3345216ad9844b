"""Any Gymnasium task: encoders and decoders per space, and the env on tasks of every kind of space.

The reference for every encoder is Gymnasium's own ``gymnasium.spaces.flatten``, one observation
at a time; every numpy twin is checked against its torch version, and (with CUDA) every device
against the CPU.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from gymnasium.utils.env_checker import check_env
from pettingzoo.test import api_test, parallel_api_test
from torch import nn

from neuron_env import NetworkPolicy, NeuronVecEnv, SubEnv, Topology, neuron_v0
from neuron_env.dynamics import make_decoder
from neuron_env.spaces import (
    IMAGE_PROJECTION_SIZE,
    AffineDecoder,
    CategoricalDecoder,
    FlattenEncoder,
    ModuleEncoder,
    RandomProjectionEncoder,
    ThresholdDecoder,
    flatten_batch,
    flatten_batch_tensor,
    is_image_space,
    make_action_decoder,
    make_observation_encoder,
    stack_observations,
)

from .conftest import episode_traces, load_example

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA not available")


# ---------------------------------------------------------------------------------- small tasks
class PixelTask(gym.Env):
    """8×8 RGB frames (noise plus a bright column at the cart's position); Discrete(3): left, stay, right."""

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, length: int = 12) -> None:
        self.observation_space = spaces.Box(0, 255, (8, 8, 3), np.uint8)
        self.action_space = spaces.Discrete(3)
        self.length = length

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.position, self.ticks = int(self.np_random.integers(0, 8)), 0
        return self._frame(), {}

    def _frame(self) -> np.ndarray:
        frame = self.np_random.integers(0, 40, (8, 8, 3), dtype=np.uint8)
        frame[:, self.position, 0] = 255
        return frame

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        self.position = int(np.clip(self.position + int(action) - 1, 0, 7))
        self.ticks += 1
        return self._frame(), float(self.position == 4), False, self.ticks >= self.length, {}


class DictTask(gym.Env):
    """A Dict observation of every flat kind, and a MultiDiscrete (or MultiBinary) action.

    The reward depends on the action, so a decoder's choice shows in the rewards.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, length: int = 9, binary_actions: bool = False) -> None:
        self.observation_space = spaces.Dict({
            "position": spaces.Box(-1.0, 1.0, (2,), np.float32),
            "goal": spaces.Discrete(3, start=1),
            "flags": spaces.MultiBinary(2),
            "grid": spaces.MultiDiscrete([2, 3]),
        })
        self.action_space = spaces.MultiBinary(3) if binary_actions else spaces.MultiDiscrete([3, 2])
        self.length = length

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        super().reset(seed=seed)
        self.observation_space.seed(int(self.np_random.integers(2**31)))
        self.ticks = 0
        return self.observation_space.sample(), {}

    def step(self, action: Any) -> tuple[dict, float, bool, bool, dict]:
        assert self.action_space.contains(np.asarray(action, dtype=self.action_space.dtype)), action
        self.ticks += 1
        reward = float(np.sum(np.asarray(action) * np.arange(1, np.size(action) + 1)))
        return self.observation_space.sample(), reward, False, self.ticks >= self.length, {}


def time_limited(task_id: str, steps: int = 40):
    """A factory of ``task_id`` with a short time limit (named after the task for messages)."""
    def make() -> gym.Env:
        return gym.make(task_id, max_episode_steps=steps)

    make.__name__ = task_id
    return make


#: (task, hidden) of every kind of space the tests drive through the env.
TASKS = {
    "CartPole-v1": time_limited("CartPole-v1"),
    "Acrobot-v1": time_limited("Acrobot-v1"),
    "MountainCar-v0": time_limited("MountainCar-v0"),
    "FrozenLake-v1": time_limited("FrozenLake-v1"),  # Discrete observation
    "Blackjack-v1": time_limited("Blackjack-v1"),  # Tuple(Discrete, Discrete, Discrete) observation
    "pixels": PixelTask,  # uint8 image observation
    "dict": DictTask,  # Dict observation, MultiDiscrete action
}


def small_env(name: str, **kwargs: Any) -> neuron_v0.NeuronParallelEnv:
    return neuron_v0.parallel_env(task=TASKS[name], hidden=(3,), **kwargs)


# ---------------------------------------------------------------------------------- flatten
SPACES = [
    spaces.Box(-2.0, 3.0, (2, 3), np.float32),
    spaces.Discrete(5, start=-2),
    spaces.MultiDiscrete([[2, 3], [4, 1]], start=[[0, 1], [-1, 5]]),
    spaces.MultiBinary([2, 2]),
    spaces.Tuple((spaces.Discrete(3), spaces.Box(-1.0, 1.0, (2,)), spaces.MultiDiscrete([2, 2]))),
    spaces.Dict({"b": spaces.Discrete(2), "a": spaces.Tuple((spaces.MultiBinary(3), spaces.Discrete(4, start=1)))}),
]


def gymnasium_flatten(space: gym.Space, items: list) -> np.ndarray:
    return np.stack([spaces.flatten(space, item) for item in items]).astype(np.float32)


@pytest.mark.parametrize("space", SPACES, ids=lambda s: type(s).__name__)
def test_flatten_batch_is_gymnasiums_flatten_in_numpy_and_torch(space):
    space.seed(0)
    items = [space.sample() for _ in range(7)]
    batch = stack_observations(space, items)
    expected = gymnasium_flatten(space, items)
    ours = flatten_batch(space, batch)
    assert ours.dtype == np.float32 and ours.shape == (7, spaces.flatdim(space))
    np.testing.assert_array_equal(ours, expected)
    encoder = FlattenEncoder(space)
    tensor = flatten_batch_tensor(space, encoder.as_tensors(batch, "cpu"))
    assert tensor.dtype == torch.float32
    np.testing.assert_array_equal(tensor.numpy(), expected)
    np.testing.assert_array_equal(encoder.apply_numpy(batch), expected)
    np.testing.assert_array_equal(encoder(encoder.as_tensors(batch, "cpu")).numpy(), expected)
    assert encoder.size == spaces.flatdim(space)


def test_discrete_is_one_hot_and_affine_maps_it_onto_plus_minus_one():
    space = spaces.Discrete(4, start=1)
    batch = np.array([1, 4, 2])
    np.testing.assert_array_equal(FlattenEncoder(space).apply_numpy(batch), np.eye(4, dtype=np.float32)[[0, 3, 1]])
    affine = FlattenEncoder(space, "affine")
    np.testing.assert_array_equal(affine.apply_numpy(batch), 2 * np.eye(4, dtype=np.float32)[[0, 3, 1]] - 1)
    low, high = affine.bounds()
    assert (low == -1).all() and (high == 1).all()


def test_box_encoder_of_a_1d_box_is_todays_map():
    space = spaces.Box(np.array([-1.0, -8.0, -np.inf]), np.array([1.0, 8.0, np.inf]), dtype=np.float64)
    from neuron_env.dynamics import make_encoder

    x = np.array([[0.5, -4.0, 7.0], [1.0, 8.0, -3.0]])
    for kind in ("identity", "affine"):
        reference = make_encoder(space.low, space.high, kind)
        encoder = FlattenEncoder(space, kind)
        assert encoder.is_identity == (kind == "identity")
        tensor = torch.as_tensor(x, dtype=torch.float32)
        assert torch.equal(encoder(tensor), reference(tensor))
        np.testing.assert_array_equal(encoder.apply_numpy(x), reference.apply_numpy(x.astype(np.float32)))


# ---------------------------------------------------------------------------------- images and modules
def test_image_projection_is_seeded_deterministic_and_within_its_bounds():
    space = PixelTask().observation_space
    assert is_image_space(space) and is_image_space(spaces.Box(0, 255, (6, 5), np.uint8))
    assert not is_image_space(spaces.Box(0.0, 1.0, (8, 8, 3)))
    encoder = make_observation_encoder(space)
    assert isinstance(encoder, RandomProjectionEncoder) and encoder.size == IMAGE_PROJECTION_SIZE
    assert np.array_equal(encoder._matrix, make_observation_encoder(space)._matrix)  # the same on every build
    assert not np.array_equal(encoder._matrix, RandomProjectionEncoder(space, seed=1)._matrix)
    rng = np.random.default_rng(0)
    batch = np.concatenate([rng.integers(0, 256, (6, 8, 8, 3), dtype=np.uint8),
                            np.zeros((1, 8, 8, 3), np.uint8), np.full((1, 8, 8, 3), 255, np.uint8)])
    ours = encoder.apply_numpy(batch)
    assert ours.shape == (8, 64) and ours.dtype == np.float32
    expected = (batch.reshape(8, -1) / 255.0) @ encoder._matrix.astype(np.float64)
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(encoder(encoder.as_tensors(batch, "cpu")).numpy(), ours, rtol=1e-5, atol=1e-5)
    low, high = encoder.bounds()
    assert (ours >= low).all() and (ours <= high).all()
    assert np.all(np.isfinite(low)) and np.all(np.isfinite(high))


def test_a_torch_module_is_a_frozen_encoder_sized_by_its_output():
    torch.manual_seed(0)
    module = nn.Sequential(nn.Flatten(), nn.Linear(8 * 8 * 3, 5), nn.Dropout(0.5))
    module.train()
    space = PixelTask().observation_space
    encoder = make_observation_encoder(space, module)
    assert isinstance(encoder, ModuleEncoder) and encoder.size == 5 and not module.training  # eval(): no dropout
    batch = np.random.default_rng(1).integers(0, 256, (3, 8, 8, 3), dtype=np.uint8)
    voltages = encoder(encoder.as_tensors(batch, "cpu"))
    assert not voltages.requires_grad  # under torch.no_grad(): not a learner
    with torch.no_grad():
        expected = module(torch.as_tensor(batch, dtype=torch.float32))
    torch.testing.assert_close(voltages, expected, rtol=0, atol=0)
    np.testing.assert_array_equal(encoder.apply_numpy(batch), expected.numpy())
    low, high = encoder.bounds()
    assert np.isneginf(low).all() and np.isposinf(high).all()
    # a non-Box space: the module sees the flattened observation
    discrete = make_observation_encoder(spaces.Discrete(4), nn.Linear(4, 2))
    assert discrete.size == 2 and discrete.apply_numpy(np.array([0, 3])).shape == (2, 2)


def test_a_module_that_cannot_take_the_observation_names_the_shape():
    from neuron_env import TaskError

    with pytest.raises(TaskError, match=r"failed on a zero observation .*shape \(E, 8, 8, 3\)"):
        make_observation_encoder(PixelTask().observation_space, nn.Linear(7, 2))


def test_topology_for_task_sizes_through_the_encoder_and_decoder():
    assert Topology.for_task("CartPole-v1", [8]).obs_dim == 4
    assert Topology.for_task("CartPole-v1", [8]).act_dim == 2
    assert (Topology.for_task("Blackjack-v1", [8]).obs_dim, Topology.for_task("Blackjack-v1", [8]).act_dim) == (45, 2)
    assert Topology.for_task("FrozenLake-v1", [8], task_kwargs={"map_name": "8x8"}).obs_dim == 64
    assert Topology.for_task(PixelTask, [8]).obs_dim == IMAGE_PROJECTION_SIZE
    assert Topology.for_task(PixelTask, [8], encoder=nn.Sequential(nn.Flatten(), nn.Linear(192, 7))).obs_dim == 7
    assert Topology.for_task(PixelTask, [8], encoder="identity").obs_dim == 192
    dict_topology = Topology.for_task(DictTask, [6, 5], activation="relu")
    assert (dict_topology.obs_dim, dict_topology.act_dim) == (2 + 3 + 2 + 5, 5)
    assert [g.size for g in dict_topology.groups] == [12, 6, 5, 5]
    assert dict_topology.group["h1"].activation == "relu"
    assert Topology.for_task(DictTask, [2], task_kwargs={"binary_actions": True}).act_dim == 3
    assert Topology.for_task("Pendulum-v1", [8]).obs_dim == 3


# ---------------------------------------------------------------------------------- decoders
def test_box_decoder_is_todays_affine_decoder_and_reshapes_other_shapes():
    space = spaces.Box(np.array([-2.0, 0.0]), np.array([2.0, 1.0]), dtype=np.float32)
    decoder = make_action_decoder(space, (-1.0, 1.0))
    reference = make_decoder("tanh", space.low, space.high)
    v = np.array([[-1.0, 0.5], [0.25, 1.0], [0.0, -0.5]], np.float32)
    assert torch.equal(decoder(torch.from_numpy(v)), reference(torch.from_numpy(v)))
    np.testing.assert_array_equal(decoder.apply_numpy(v), reference.apply_numpy(v))
    square = make_action_decoder(spaces.Box(-1.0, 1.0, (2, 2), np.float32), (-1.0, 1.0))
    assert isinstance(square, AffineDecoder) and square.size == 4
    assert square.apply_numpy(np.zeros((3, 4), np.float32)).shape == (3, 2, 2)
    assert tuple(square(torch.zeros(3, 4)).shape) == (3, 2, 2)


def test_argmax_picks_the_highest_voltage_with_ties_to_the_lowest_action():
    decoder = make_action_decoder(spaces.Discrete(3, start=2), (-1.0, 1.0))
    assert isinstance(decoder, CategoricalDecoder) and decoder.size == 3
    v = np.array([[0.1, 0.9, -0.2], [0.5, 0.5, 0.5], [-1.0, -1.0, 0.0]], np.float32)
    actions = decoder.apply_numpy(v)
    assert actions.dtype == np.int64 and actions.shape == (3,)
    np.testing.assert_array_equal(actions, [3, 2, 4])
    assert torch.equal(decoder(torch.from_numpy(v)), torch.tensor([3, 2, 4]))


def test_multi_discrete_argmax_takes_one_block_per_dimension():
    space = spaces.MultiDiscrete([[3, 1], [2, 4]], start=[[0, 5], [-1, 0]])
    decoder = make_action_decoder(space, (-1.0, 1.0))
    assert decoder.size == 10
    v = np.array([[0.0, 0.7, 0.1, 0.3, 0.2, 0.9, 0.0, 0.0, 0.8, 0.1],
                  [0.9, 0.0, 0.0, -1.0, 0.5, 0.4, 0.1, 0.2, 0.3, 0.4]], np.float32)
    expected = np.array([[[1, 5], [0, 2]], [[0, 5], [-1, 3]]])
    np.testing.assert_array_equal(decoder.apply_numpy(v), expected)
    np.testing.assert_array_equal(decoder(torch.from_numpy(v)).numpy(), expected)
    assert all(space.contains(a) for a in decoder.apply_numpy(v))
    equal_blocks = make_action_decoder(spaces.MultiDiscrete([2, 2]), (-1.0, 1.0))
    np.testing.assert_array_equal(equal_blocks.apply_numpy(np.array([[0.0, 1.0, 1.0, 0.0]], np.float32)), [[1, 0]])


@pytest.mark.parametrize(("activation_range", "threshold"), [((-1.0, 1.0), 0.0), ((0.0, 1.0), 0.5),
                                                               ((0.0, np.inf), 0.0), ((-np.inf, np.inf), 0.0)])
def test_multi_binary_thresholds_at_the_middle_of_the_output_range(activation_range, threshold):
    space = spaces.MultiBinary([2, 2])
    decoder = make_action_decoder(space, activation_range)
    assert isinstance(decoder, ThresholdDecoder) and decoder.threshold == threshold and decoder.size == 4
    v = np.array([[threshold - 0.1, threshold + 0.1, threshold, threshold + 2.0]], np.float32)
    actions = decoder.apply_numpy(v)
    assert actions.dtype == np.int8 and actions.shape == (1, 2, 2)
    np.testing.assert_array_equal(actions, [[[0, 1], [0, 1]]])
    np.testing.assert_array_equal(decoder(torch.from_numpy(v)).numpy(), actions)


def test_sample_is_seeded_equal_in_numpy_and_torch_and_follows_the_softmax():
    space = spaces.Discrete(3)
    v = np.tile(np.array([[0.0, 1.0, -1.0]], np.float32), (20_000, 1))
    draws = []
    for path in ("numpy", "torch", "numpy"):
        decoder = make_action_decoder(space, (-1.0, 1.0), "sample")
        decoder.seed(5)
        draws.append(decoder.apply_numpy(v) if path == "numpy" else decoder(torch.from_numpy(v)).numpy())
    np.testing.assert_array_equal(draws[0], draws[1])
    np.testing.assert_array_equal(draws[0], draws[2])
    assert draws[0].dtype == np.int64
    softmax = np.exp([0.0, 1.0, -1.0]) / np.exp([0.0, 1.0, -1.0]).sum()
    np.testing.assert_allclose(np.bincount(draws[0], minlength=3) / len(v), softmax, atol=0.015)
    other = make_action_decoder(space, (-1.0, 1.0), "sample")
    other.seed(6)
    assert not np.array_equal(other.apply_numpy(v), draws[0])
    blocks = make_action_decoder(spaces.MultiDiscrete([2, 3]), (-1.0, 1.0), "sample")
    blocks.seed(0)
    actions = blocks.apply_numpy(np.zeros((500, 5), np.float32))
    assert actions.shape == (500, 2) and set(np.unique(actions[:, 1])) == {0, 1, 2}
    assert set(np.unique(actions[:, 0])) == {0, 1}


# ---------------------------------------------------------------------------------- devices
def encoders_and_batches() -> list[tuple[Any, Any]]:
    cases = []
    for space in [*SPACES, PixelTask().observation_space]:
        space.seed(3)
        batch = stack_observations(space, [space.sample() for _ in range(5)])
        cases.append((make_observation_encoder(space), batch))
    cases.append((make_observation_encoder(SPACES[4], "affine"), stack_observations(SPACES[4], [SPACES[4].sample()])))
    return cases


def decoders() -> list[Any]:
    return [make_action_decoder(spaces.Box(-2.0, 2.0, (2, 3), np.float32), (-1.0, 1.0)),
            make_action_decoder(spaces.Discrete(4, start=1), (-1.0, 1.0)),
            make_action_decoder(spaces.MultiDiscrete([3, 1, 2]), (-1.0, 1.0)),
            make_action_decoder(spaces.MultiDiscrete([3, 1, 2]), (-1.0, 1.0), "sample"),
            make_action_decoder(spaces.MultiBinary(5), (0.0, 1.0))]


def decode_twice(decoder: Any, voltages: np.ndarray, device: str) -> tuple[np.ndarray, np.ndarray]:
    """The decoder's numpy twin on CPU and its torch version on ``device``, from the same seed."""
    decoder.seed(1)
    twin = decoder.apply_numpy(voltages)
    moved = decoder.to(device)
    moved.seed(1)
    return twin, moved(torch.from_numpy(voltages).to(device)).cpu().numpy()


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=CUDA)])
def test_encoders_and_decoders_agree_across_numpy_torch_and_devices(device):
    for encoder, batch in encoders_and_batches():
        twin = encoder.apply_numpy(batch)
        moved = encoder.to(device)
        on_device = moved(moved.as_tensors(batch, device))
        assert on_device.device.type == device and on_device.dtype == torch.float32
        # Copies and one-hot are exact everywhere; arithmetic (an affine map, a matrix product) may
        # round differently per device (a fused multiply-add on a GPU).
        exact = isinstance(encoder, FlattenEncoder) and encoder.affine.is_identity
        tolerance = {"rtol": 0, "atol": 0} if exact else {"rtol": 1e-5, "atol": 1e-5}
        np.testing.assert_allclose(on_device.cpu().numpy(), twin, **tolerance)
        for ours, reference in zip(moved.bounds(), encoder.bounds(), strict=True):
            np.testing.assert_allclose(ours, reference, **tolerance)
    for decoder in decoders():
        voltages = np.random.default_rng(0).uniform(-1, 1, (64, decoder.size)).astype(np.float32)
        twin, on_device = decode_twice(decoder, voltages, device)
        assert on_device.dtype == twin.dtype or isinstance(decoder, AffineDecoder)
        if isinstance(decoder, AffineDecoder):
            np.testing.assert_allclose(on_device, twin, rtol=1e-6, atol=1e-6)
        else:  # integer actions: the same on every device, "sample" too (the draws come from the host)
            np.testing.assert_array_equal(on_device, twin)
        assert all(decoder.space.contains(np.asarray(a, dtype=decoder.space.dtype)) for a in twin)


# ---------------------------------------------------------------------------------- the env on every kind of task
@pytest.mark.parametrize("name", list(TASKS))
def test_parallel_api(name):
    parallel_api_test(small_env(name), num_cycles=60)


@pytest.mark.parametrize("name", list(TASKS))
def test_aec_api(name):
    api_test(neuron_v0.env(task=TASKS[name], hidden=(3,)), num_cycles=30)


@pytest.mark.parametrize("name", list(TASKS))
def test_subenv_check_env(name):
    env = SubEnv(TASKS[name], Topology.for_task(TASKS[name], [3]), neuron="h1_1")
    check_env(env, skip_render_check=True)
    env.reset(seed=0)
    infos = [env.step(np.zeros(1, np.float32))[4] for _ in range(2)]
    assert infos[1]["task_stepped"] and env.core.task_action_space.contains(
        np.asarray(infos[1]["task_action"], dtype=env.core.task_action_space.dtype))


def episodes(name: str, seed: int, count: int = 2, **kwargs: Any) -> list[tuple[list, list, list]]:
    """``count`` whole episodes (reset with ``seed`` first, then unseeded); records the task actions."""
    env = small_env(name, **kwargs)
    first = env.possible_agents[0]
    return episode_traces(env, seed, count, noise=0.5, record=lambda infos: (
        np.asarray(infos[first]["task_action"]).tolist() if infos[first] else None))


@pytest.mark.parametrize("name", list(TASKS))
def test_multi_episode_determinism(name):
    """Same seed: identical voltages, rewards and task actions over whole episodes; another seed: not."""
    first, again, other = episodes(name, 3), episodes(name, 3), episodes(name, 4)
    assert len(first) == 2 and all(len(actions) >= 1 for _, _, actions in first)
    assert first == again
    assert [states for states, _, _ in first] != [states for states, _, _ in other]


def test_sample_decoder_is_deterministic_across_episodes_under_a_seed():
    first, again = episodes("CartPole-v1", 3, decoder="sample"), episodes("CartPole-v1", 3, decoder="sample")
    assert first == again
    argmax = episodes("CartPole-v1", 3)
    assert [actions for *_, actions in first] != [actions for *_, actions in argmax]


@pytest.mark.parametrize("name", ["Blackjack-v1", "pixels", "dict", "FrozenLake-v1"])
@pytest.mark.parametrize("num_envs", [1, 3])
def test_cpu_numpy_path_equals_torch_path(name, num_envs):
    """The numpy tick (CPU) and the torch tick (other devices) agree on every kind of space, autoresets too."""
    topology = Topology.for_task(TASKS[name], [4])
    policy = NetworkPolicy(topology, seed=1)
    traces = []
    for numpy_path in (True, False):
        core = NeuronVecEnv(TASKS[name], topology, num_envs=num_envs, decoder="sample")
        core._numpy = numpy_path
        voltages, _ = core.reset(seed=4)
        trace = [voltages.clone()]
        for tick in range(60):
            result = core.step(policy(voltages) * (0.5 if tick % 3 else 1.0))
            voltages = result.voltages
            trace.append(result)
        traces.append(trace)
        core.close()
    exact = name != "pixels"  # the projection's matrix product rounds differently in numpy and torch
    tolerance = {"rtol": 0, "atol": 0} if exact else {"rtol": 1e-5, "atol": 1e-5}
    torch.testing.assert_close(traces[0][0], traces[1][0], **tolerance)
    ends = 0
    for ours, reference in zip(traces[0][1:], traces[1][1:], strict=True):
        torch.testing.assert_close(ours.voltages, reference.voltages, **tolerance)
        torch.testing.assert_close(ours.reward, reference.reward)
        if ours.task_stepped:
            torch.testing.assert_close(ours.info["final_voltages"], reference.info["final_voltages"], **tolerance)
            np.testing.assert_array_equal(ours.info["task_action"], reference.info["task_action"])
            ends += int((ours.terminated | ours.truncated).sum())
    assert ends >= 1  # the final-observation path ran


def test_final_voltages_hold_the_encoded_final_observation():
    """At an episode end the inputs of ``final_voltages`` are the final observation, encoded; the voltages restart."""
    topology = Topology.for_task(DictTask, [4])
    core = NeuronVecEnv(DictTask, topology, num_envs=2)
    voltages, _ = core.reset(seed=0)
    policy = NetworkPolicy(topology, seed=0)
    inputs = topology.group_slice["in"]
    while True:
        result = core.step(policy(voltages))
        voltages = result.voltages
        if result.task_stepped and result.truncated.all():
            break
    finals = result.info["final_obs"]
    expected = gymnasium_flatten(core.task_observation_space, list(finals))
    np.testing.assert_array_equal(result.info["final_voltages"][:, inputs].numpy(), expected)
    assert (voltages[:, topology.num_neurons - topology.act_dim:] == 0).all()


def test_agents_keep_box_spaces_and_infos_carry_the_decoded_action():
    env = small_env("CartPole-v1")
    assert all(isinstance(env.action_space(a), spaces.Box) and env.action_space(a).shape == (1,)
               for a in env.possible_agents)
    assert all(isinstance(env.observation_space(a), spaces.Box) for a in env.possible_agents)
    observations, _ = env.reset(seed=0)
    env.step({a: np.array([0.5 if a == "out_1" else -0.5], np.float32) for a in env.agents})
    _, _, _, _, infos = env.step({a: np.array([0.5 if a == "out_1" else -0.5], np.float32) for a in env.agents})
    assert infos["out_0"]["task_stepped"] and infos["out_0"]["task_action"] == 1  # out_1 holds the higher voltage


def test_cli_info_prints_the_spaces_and_the_encoder_and_decoder(capsys):
    from neuron_env.cli import main

    assert main(["info", "--task", "CartPole-v1", "--hidden", "4"]) == 0
    out = capsys.readouterr().out
    assert "action space:      Discrete(2)" in out
    assert "encoder:           identity" in out and "decoder:           argmax" in out
    assert "out             2" in out


@pytest.mark.parametrize("task", ["CartPole-v1", "Blackjack-v1", "FrozenLake-v1"])
def test_cli_rollout_reproduces_the_plain_network_on_discrete_and_tuple_tasks(task, capsys):
    from neuron_env.cli import main

    assert main(["rollout", "--task", task, "--hidden", "4", "--episodes", "2"]) == 0
    assert "actions and rewards equal" in capsys.readouterr().out


def test_default_topology_and_train_just_work_on_cartpole(tmp_path, capsys):
    from neuron_env.cli import main

    env = neuron_v0.parallel_env(task="CartPole-v1")
    assert repr(env.topology) == "Topology(4-64-64-2, agents=130, depth=3)"
    observations, _ = env.reset(seed=0)
    for _ in range(3):
        observations, *_ = env.step({a: env.action_space(a).sample() for a in env.agents})
    assert main(["train", "--task", "CartPole-v1", "--hidden", "4", "--steps", "200", "--no-progress",
                 "--out", str(tmp_path / "run")]) == 0
    assert (tmp_path / "run" / "summary.json").exists()


@pytest.mark.parametrize("name", ["Blackjack-v1", "dict", "FrozenLake-v1"])
def test_lean_one_copy_vector_env_batches_as_gymnasium_does(name):
    """The core's lean vector env (one copy) batches non-Box observations as gymnasium.vector does."""
    from neuron_env import vector as vector_module

    if vector_module._SAME_STEP is None:
        pytest.skip("gymnasium 1.0 has no SAME_STEP autoreset")
    factories = [TASKS[name]] * 2
    lean = vector_module._SameStepSyncVectorEnv(factories)
    reference = gym.vector.SyncVectorEnv(factories, autoreset_mode=vector_module._SAME_STEP)
    space = lean.single_observation_space
    batches = [(lean.reset(seed=1)[0], reference.reset(seed=1)[0])]
    actions = stack_observations(lean.single_action_space, [lean.single_action_space.sample() for _ in range(2)])
    for _ in range(5):
        batches.append((lean.step(actions)[0], reference.step(actions)[0]))
    for ours, theirs in batches:
        np.testing.assert_array_equal(flatten_batch(space, ours), flatten_batch(space, theirs))
        assert type(ours) is type(theirs)


def test_car_racing_pixels_where_box2d_is_installed():
    """A real pixel task (96×96×3 frames, Box(3,) actions) through the default projection."""
    pytest.importorskip("Box2D", reason="CarRacing needs the box2d extra: pip install 'gymnasium[box2d]'")
    env = neuron_v0.parallel_env(task="CarRacing-v3", hidden=(3,))
    assert (env.topology.obs_dim, env.topology.act_dim) == (IMAGE_PROJECTION_SIZE, 3)
    parallel_api_test(env, num_cycles=20)


def test_the_async_clock_figure_in_the_docs_is_what_the_example_prints() -> None:
    page = (Path(__file__).resolve().parents[1] / "docs" / "tasks-and-spaces.md").read_text()
    figure = page.split("## Asynchronous clock", 1)[1].split("```text\n", 1)[1].split("\n```", 1)[0]
    assert load_example("async_clock_firing").firing_table() == "\n".join(line.rstrip() for line in figure.splitlines())
