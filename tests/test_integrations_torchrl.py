"""TorchRL integration: the generic PettingZooWrapper and the native NeuronTorchRLEnv."""

from __future__ import annotations

import importlib.util
import itertools
import subprocess
import sys
import warnings
from collections.abc import Callable

import gymnasium as gym
import pytest
import torch

from neuron_env import NeuronVecEnv, Topology, neuron_v0

from .conftest import load_example

HAS_TORCHRL = importlib.util.find_spec("torchrl") is not None
requires_torchrl = pytest.mark.skipif(not HAS_TORCHRL, reason="torchrl is not installed")

# torchrl 0.14 warns about its own deprecated weight updaters when torchrl.collectors is imported.
pytestmark = pytest.mark.filterwarnings("ignore:Creating .*WeightUpdater:DeprecationWarning")

TOPOLOGY = Topology.mlp(3, [4, 5], 1)  # groups h1 (4), h2 (5), out (1); delay 3




def test_integrations_package_imports_without_torchrl() -> None:
    code = (
        "import sys; sys.modules['torchrl'] = None\n"
        "import neuron_env.integrations as m\n"
        "try:\n    m.NeuronTorchRLEnv\nexcept ImportError:\n    print('lazy-ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "lazy-ok" in result.stdout


# ---------------------------------------------------------------------- PettingZooWrapper
@requires_torchrl
def test_pettingzoo_wrapper_example_groups_by_layer() -> None:
    example = load_example("torchrl_pettingzoo_wrapper")
    env = example.make_env(hidden=(4, 5))
    assert list(env.group_map) == ["h1", "h2", "out"]
    assert env.group_map["h1"] == [f"h1_{i}" for i in range(4)]
    env.close()
    rollout = example.main(steps=6)
    for group, n, fan_in in (("h1", 4, 3), ("h2", 5, 4), ("out", 1, 5)):
        assert rollout[group, "observation"].shape == (6, n, fan_in)
        assert rollout[group, "action"].shape == (6, n, 1)
        assert rollout["next", group, "reward"].shape == (6, n, 1)
        assert rollout["next", group, "done"].shape == (6, n, 1)


# ---------------------------------------------------------------------- native env
@requires_torchrl
@pytest.mark.parametrize("num_envs", [1, 3])
def test_native_env_passes_check_env_specs(num_envs: int) -> None:
    from torchrl.envs.utils import check_env_specs

    from neuron_env.integrations.torchrl import NeuronTorchRLEnv

    env = NeuronTorchRLEnv("Pendulum-v1", TOPOLOGY, num_envs=num_envs, return_state=True)
    check_env_specs(env, seed=0)
    td = env.rollout(7)
    assert td.batch_size == (num_envs, 7)
    for group, n, fan_in in (("h1", 4, 3), ("h2", 5, 4), ("out", 1, 5)):
        assert td[group, "observation"].shape == (num_envs, 7, n, fan_in)
        assert td[group, "action"].shape == (num_envs, 7, n, 1)
        assert td["next", group, "reward"].shape == (num_envs, 7, n, 1)
        for key in ("done", "terminated", "truncated"):
            assert td["next", group, key].shape == (num_envs, 7, n, 1)
    assert td["next", "done"].shape == (num_envs, 7, 1)
    assert td["next", "state"].shape == (num_envs, 7, TOPOLOGY.num_neurons)
    env.close()


@requires_torchrl
def test_agent_id_tells_the_neurons_of_a_layer_apart() -> None:
    """A layer's neurons observe the same voltages; ``agent_id`` appends each one's one-hot index, in its spec too."""
    from torchrl.envs.utils import check_env_specs

    from neuron_env.integrations.torchrl import NeuronTorchRLEnv

    plain = NeuronTorchRLEnv("Pendulum-v1", TOPOLOGY, num_envs=2)
    tagged = NeuronTorchRLEnv("Pendulum-v1", TOPOLOGY, num_envs=2, agent_id=True)
    check_env_specs(tagged, seed=0)
    same, told_apart = plain.reset(seed=3), tagged.reset(seed=3)
    for group, n, fan_in in (("h1", 4, 3), ("h2", 5, 4), ("out", 1, 5)):
        observation = told_apart[group, "observation"]
        assert observation.shape == (2, n, fan_in + n)
        assert torch.equal(observation[..., :fan_in], same[group, "observation"])
        assert torch.equal(observation[..., fan_in:], torch.eye(n).expand(2, n, n))
        assert torch.equal(same[group, "observation"], same[group, "observation"][:, :1].expand(2, n, fan_in))
        spec = tagged.observation_spec[group, "observation"]
        assert torch.equal(spec.space.high[0, :, fan_in:], torch.ones(n, n))
    actions = tagged.full_action_spec.rand()
    assert torch.equal(tagged.step(actions)["next", "h2", "observation"][..., 4:], torch.eye(5).expand(2, 5, 5))
    plain.close()
    tagged.close()


@requires_torchrl
def test_native_env_specs_match_pettingzoo_wrapper() -> None:
    from torchrl.envs.libs.pettingzoo import PettingZooWrapper

    from neuron_env.integrations.torchrl import NeuronTorchRLEnv

    native = NeuronTorchRLEnv("Pendulum-v1", TOPOLOGY)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wrapper = PettingZooWrapper(env=neuron_v0.parallel_env(task="Pendulum-v1", topology=TOPOLOGY))
    assert native.group_map == wrapper.group_map
    for group in native.group_map:
        for spec in ("observation_spec", "full_action_spec", "full_reward_spec", "full_done_spec"):
            ours, theirs = getattr(native, spec)[group], getattr(wrapper, spec)[group]
            assert set(ours.keys()) == set(theirs.keys()), (spec, group)
            for key in ours.keys():
                assert ours[key].shape[1:] == theirs[key].shape, (spec, group, key)  # ours has the env dim first
    low = native.full_action_spec[("h1", "action")].space.low
    assert torch.equal(low, torch.full_like(low, -1.0))
    native.close()
    wrapper.close()


def _split(actions: torch.Tensor) -> dict[str, torch.Tensor]:
    return {g.name: actions[:, TOPOLOGY.agent_slice[g.name]].unsqueeze(-1) for g in TOPOLOGY.agent_groups}


def pendulums_of_length(*lengths: int) -> Callable[[], gym.Env]:
    """A task factory whose successive copies end after ``lengths`` task steps (cycling)."""
    cycle = itertools.cycle(lengths)
    return lambda: gym.make("Pendulum-v1", max_episode_steps=next(cycle))


@requires_torchrl
def test_native_env_matches_core_across_episode_ends() -> None:
    """Same seed, same actions: observations, rewards and flags equal the core's, ends included."""
    from tensordict import TensorDict

    from neuron_env.integrations.torchrl import NeuronTorchRLEnv

    num_envs = 2  # copy 0 ends every 3 task steps (9 ticks), copy 1 every 5 (15 ticks): partial resets
    env = NeuronTorchRLEnv(pendulums_of_length(3, 5), TOPOLOGY, num_envs=num_envs)
    core = NeuronVecEnv(pendulums_of_length(3, 5), TOPOLOGY, num_envs=num_envs)
    env.set_seed(0)
    td = env.reset()
    voltages, _ = core.reset(seed=0)
    pre = {g.name: torch.as_tensor(TOPOLOGY.presynaptic_index[g.name]) for g in TOPOLOGY.agent_groups}
    generator = torch.Generator().manual_seed(0)
    ends = 0
    for _ in range(30):  # ticks 1..30
        for name, index in pre.items():
            expected = voltages[:, index].unsqueeze(1).expand_as(td[name, "observation"])
            torch.testing.assert_close(td[name, "observation"], expected)
        actions = torch.rand(num_envs, TOPOLOGY.num_agents, generator=generator) * 2 - 1
        td.update(TensorDict({name: {"action": a} for name, a in _split(actions).items()}, batch_size=[num_envs]))
        td, td_next = env.step_and_maybe_reset(td)
        result = core.step(actions)
        final = result.info["final_voltages"] if result.task_stepped else result.voltages
        for name, index in pre.items():
            torch.testing.assert_close(td["next", name, "observation"][:, 0], final[:, index])
            rewards = td["next", name, "reward"][:, :, 0]
            torch.testing.assert_close(rewards, result.reward[:, None].expand_as(rewards))
            assert torch.equal(td["next", name, "terminated"][:, :, 0].all(1), result.terminated)
        assert torch.equal(td["next", "truncated"][:, 0], result.truncated)
        ends += int(td["next", "done"].sum())
        td, voltages = td_next, result.voltages
    assert ends == 3 + 2  # copy 0 at ticks 9, 18, 27; copy 1 at ticks 15, 30
    env.close()
    core.close()


@requires_torchrl
def test_native_env_refuses_partial_reset_of_running_copies() -> None:
    from tensordict import TensorDict

    from neuron_env.integrations.torchrl import NeuronTorchRLEnv

    env = NeuronTorchRLEnv("Pendulum-v1", TOPOLOGY, num_envs=2)
    td = env.reset()
    _ = env.step(env.rand_action(td))
    with pytest.raises(RuntimeError, match="have not ended"):
        env.reset(TensorDict({"_reset": torch.tensor([[True], [False]])}, batch_size=[2]))
    reset = env.reset(TensorDict({"_reset": torch.tensor([[True], [True]])}, batch_size=[2]))  # all: allowed
    assert not reset["done"].any()
    env.close()


@requires_torchrl
def test_native_env_seeding_is_reproducible() -> None:
    from neuron_env.integrations.torchrl import NeuronTorchRLEnv

    env = NeuronTorchRLEnv("Pendulum-v1", TOPOLOGY, num_envs=2)
    env.set_seed(3)
    first = env.reset()["h1", "observation"].clone()
    second = env.reset(seed=3)["h1", "observation"]
    torch.testing.assert_close(first, second)
    assert not torch.equal(first[0], first[1])  # copy i gets seed + i
    env.close()


@requires_torchrl
def test_native_env_rejects_bad_arguments() -> None:
    from neuron_env.integrations.torchrl import NeuronTorchRLEnv

    with pytest.raises(ValueError, match="observe='some'"):
        NeuronTorchRLEnv("Pendulum-v1", TOPOLOGY, observe="some")
    core = NeuronVecEnv("Pendulum-v1", TOPOLOGY)
    with pytest.raises(ValueError, match="not both"):
        NeuronTorchRLEnv(core, num_envs=4)
    env = NeuronTorchRLEnv(core, observe="all")
    assert env.observation_spec["out", "observation"].shape == (1, 1, TOPOLOGY.num_neurons)
    env.close()


@requires_torchrl
def test_native_ippo_example_trains(one_thread: None) -> None:
    example = load_example("torchrl_native_ippo")
    args = example.Args(num_envs=2, frames_per_batch=120, minibatch_size=60, n_iters=2, num_epochs=1,
                        num_cells=8, hidden=(4,))
    history = example.train(args)
    assert [row["iteration"] for row in history] == [0, 1]
    assert history[-1]["frames"] == 240
    assert all(torch.isfinite(torch.tensor(row["loss"])) for row in history)
