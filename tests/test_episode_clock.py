"""What every view tells a client about its clock: delay, the task's episode bound in ticks, the per-tick discount."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.envs.classic_control import PendulumEnv

from neuron_env import Topology, neuron_v0
from neuron_env.parallel import per_tick_discount, task_time_limit

PENDULUM_8_8 = Topology.mlp(3, [8, 8], 1)  # depth 3: delay 3


def test_parallel_env_tells_delay_and_episode_ticks() -> None:
    env = neuron_v0.parallel_env(task="Pendulum-v1", topology=PENDULUM_8_8)
    assert (env.delay, env.task_episode_steps, env.ticks_per_task_episode) == (3, 200, 600)
    assert env.core.delay == env.delay  # the old way keeps working
    assert env.per_tick_discount(0.99) == pytest.approx(0.99 ** (1 / 3))
    env.close()


def test_explicit_delay_and_time_limit_are_reflected() -> None:
    env = neuron_v0.parallel_env(task="Pendulum-v1", topology=PENDULUM_8_8, delay=5,
                                 task_kwargs={"max_episode_steps": 50})
    assert (env.delay, env.task_episode_steps, env.ticks_per_task_episode) == (5, 50, 250)
    env.close()
    recurrent = neuron_v0.parallel_env(task="Pendulum-v1", topology=Topology.recurrent(3, 6, 1))
    assert (recurrent.delay, recurrent.ticks_per_task_episode) == (1, 200)  # cyclic: one tick per task step
    recurrent.close()


def test_time_limit_of_a_callable_task() -> None:
    wrapped = neuron_v0.parallel_env(task=lambda: gym.wrappers.TimeLimit(PendulumEnv(), 7), topology=PENDULUM_8_8)
    assert (wrapped.task_episode_steps, wrapped.ticks_per_task_episode) == (7, 21)
    wrapped.close()
    unbounded = neuron_v0.parallel_env(task=PendulumEnv, topology=PENDULUM_8_8)
    assert unbounded.task_episode_steps is None and unbounded.ticks_per_task_episode is None
    unbounded.close()
    assert task_time_limit(gym.make("CartPole-v1")) == 500


def test_an_episode_lasts_ticks_per_task_episode() -> None:
    env = neuron_v0.parallel_env(task="Pendulum-v1", topology=PENDULUM_8_8, task_kwargs={"max_episode_steps": 4})
    env.reset(seed=0)
    ticks = 0
    while env.agents:
        _, _, _, truncations, _ = env.step({agent: np.zeros(1, dtype=np.float32) for agent in env.agents})
        ticks += 1
    assert ticks == env.ticks_per_task_episode == 12 and all(truncations.values())
    env.close()


def test_per_tick_discount_keeps_the_task_discount() -> None:
    """Discounting every tick by γ^(1/ℓ) discounts the task's rewards, one per ℓ ticks, by γ per task step."""
    gamma, delay = 0.9, 3
    tick_gamma = per_tick_discount(gamma, delay)
    task_rewards = [-1.0, -2.0, -0.5, -4.0]
    per_tick = [r if (t + 1) % delay == 0 else 0.0 for t, r in
                enumerate(np.repeat(task_rewards, delay))]  # the reward on each task step's last tick
    tick_return = sum(tick_gamma ** t * r for t, r in enumerate(per_tick))
    task_return = sum(gamma ** k * r for k, r in enumerate(task_rewards))
    assert tick_return == pytest.approx(tick_gamma ** (delay - 1) * task_return)  # one constant offset
    assert per_tick_discount(0.99, 1) == 0.99 and per_tick_discount(1.0, 4) == 1.0 and per_tick_discount(0.0, 2) == 0.0


@pytest.mark.parametrize(("gamma", "delay", "named"), [
    (1.5, 3, "task_gamma=1.5"), (-0.1, 3, "task_gamma=-0.1"), ("0.9", 3, "task_gamma='0.9'"),
    (True, 3, "task_gamma=True"), (0.9, 0, "delay=0"), (0.9, 1.5, "delay=1.5"), (math.nan, 2, "task_gamma=nan"),
])
def test_per_tick_discount_refuses_bad_values(gamma: object, delay: object, named: str) -> None:
    with pytest.raises(ValueError, match=named.replace("(", r"\(")) as error:
        per_tick_discount(gamma, delay)  # type: ignore[arg-type]
    assert "\n" not in str(error.value)


def test_aec_env_tells_the_same() -> None:
    env = neuron_v0.env(task="Pendulum-v1", topology=PENDULUM_8_8)  # OrderEnforcingWrapper(NeuronAECEnv)
    assert (env.delay, env.task_episode_steps, env.ticks_per_task_episode) == (3, 200, 600)
    assert env.per_tick_discount(0.99) == pytest.approx(0.99 ** (1 / 3))
    assert env.unwrapped.delay == 3
    env.close()


@pytest.mark.parametrize("vectorization", ["sync", "async"])
def test_native_torchrl_env_tells_the_same(vectorization: str) -> None:
    pytest.importorskip("torchrl")
    from neuron_env.integrations.torchrl import NeuronTorchRLEnv

    env = NeuronTorchRLEnv("Pendulum-v1", PENDULUM_8_8, num_envs=2, vectorization=vectorization)
    assert (env.delay, env.task_episode_steps, env.ticks_per_task_episode) == (3, 200, 600)
    assert env.per_tick_discount(0.99) == pytest.approx(0.99 ** (1 / 3))
    assert env.core.delay == 3
    env.close()
