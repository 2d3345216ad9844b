"""Every registered learner on discrete action spaces: CartPole-v1 through the CLI, MultiDiscrete and MultiBinary.

The learners act on output voltages; the env's decoder turns them into the task's actions (argmax per
block for Discrete/MultiDiscrete, a threshold for MultiBinary). Nothing in a learner changes for it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from neuron_env.agents.registry import LEARNERS
from neuron_env.agents.train import TrainConfig, load_checkpoint, train

from neuron_env import Topology
from neuron_env.cli import main
from neuron_env.topology import NetworkWeights

#: Flags per learner so that a few hundred CartPole steps include several updates (ES: several iterations).
SMALL_FLAGS: dict[str, list[str]] = {
    "ddpg": ["--critic", "mlp", "--critic-hidden", "4", "--batch-size", "16"],
    "feedback": ["--critic-hidden", "4", "--batch-size", "16"],
    "coagent": [],
    "weight-max": [],
    "es": ["--num-directions", "1"],
    "eprop": ["--critic-hidden", "4", "--batch-size", "16"],
}
HIDDEN = 4


def finite_summary(out: Path) -> dict[str, Any]:
    """The run's summary, checked to be completed with finite evaluation returns."""
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "completed"
    assert math.isfinite(summary["final_eval_return_mean"])
    assert summary["final_eval_returns"] and all(math.isfinite(r) for r in summary["final_eval_returns"])
    return summary


def test_small_flags_cover_every_registered_learner() -> None:
    assert set(SMALL_FLAGS) == set(LEARNERS)


# ------------------------------------------------------------------------------------------ CartPole, every learner
@pytest.mark.parametrize("name", LEARNERS)
def test_cli_trains_every_learner_on_cartpole_and_enjoy_runs_it(tmp_path: Path, name: str,
                                                                capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / name
    assert main(["train", "--learner", name, "--task", "CartPole-v1", "--hidden", str(HIDDEN), "--steps", "300",
                 "--eval-every", "0", "--eval-episodes", "2", "--learning-starts", "20", "--no-progress",
                 "--no-tensorboard", "--out", str(out), *SMALL_FLAGS[name]]) == 0
    summary = finite_summary(out)
    assert summary["learner"] == name and summary["steps"] == 300 and summary["updates"] > 0
    assert summary["num_agents"] == HIDDEN + 2  # hidden neurons + one output neuron per action
    # the learner moved the output neurons' weights (continuous voltages; the decoder picks the action)
    trained = load_checkpoint(out)["weights"]
    init = NetworkWeights.init(Topology.for_task("CartPole-v1", [HIDDEN]), seed=0)
    assert trained["blocks"][-1].shape == init.blocks[-1].shape == (2, HIDDEN)
    assert not torch.equal(trained["blocks"][-1], init.blocks[-1])
    capsys.readouterr()
    assert main(["enjoy", "--checkpoint", str(out), "--episodes", "1"]) == 0
    assert "episode 0: return" in capsys.readouterr().out


# ------------------------------------------------------------------------------------------ MultiDiscrete, MultiBinary
class MatchTask(gym.Env):
    """A tiny task with a MultiDiscrete or MultiBinary action: reward 1 per action entry that matches the target.

    The observation is a target drawn each step in ``[-1, 1]²``; the action's entry ``i`` matches when it equals
    the entry ``i`` of the target's discretisation. Episodes are 10 steps long (truncated). An action outside the
    action space raises, so a run that completes received only valid decoded actions.
    """

    def __init__(self, action_space: spaces.MultiDiscrete | spaces.MultiBinary) -> None:
        self.observation_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.action_space = action_space
        self._target = np.zeros(2, dtype=np.float32)
        self._t = 0

    def _wanted(self) -> np.ndarray:
        size = int(np.prod(self.action_space.shape))
        bins = np.ones(size, dtype=np.int64) * 2
        if isinstance(self.action_space, spaces.MultiDiscrete):
            bins = self.action_space.nvec.reshape(-1).astype(np.int64)
        levels = np.resize(self._target, size)
        return np.minimum(((levels + 1) / 2 * bins).astype(np.int64), bins - 1).reshape(self.action_space.shape)

    def _observe(self) -> np.ndarray:
        self._target = self.np_random.uniform(-1, 1, 2).astype(np.float32)
        return self._target.copy()

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self._t = 0
        return self._observe(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        if not self.action_space.contains(np.asarray(action, dtype=self.action_space.dtype)):
            raise ValueError(f"action {action!r} is not in {self.action_space}")
        reward = float(np.sum(np.asarray(action) == self._wanted()))
        self._t += 1
        return self._observe(), reward, False, self._t >= 10, {}


def multi_discrete_task() -> MatchTask:
    return MatchTask(spaces.MultiDiscrete([3, 2]))


def multi_binary_task() -> MatchTask:
    return MatchTask(spaces.MultiBinary(3))


TASKS = {"MatchMultiDiscrete-v0": (multi_discrete_task, 3 + 2), "MatchMultiBinary-v0": (multi_binary_task, 3)}


@pytest.fixture
def registered_tasks() -> Iterator[None]:
    for task_id, (entry_point, _) in TASKS.items():
        gym.register(task_id, entry_point=entry_point)
    try:
        yield
    finally:
        for task_id in TASKS:
            gym.registry.pop(task_id, None)


@pytest.mark.parametrize("task_id", list(TASKS))
def test_feedback_trains_on_multi_discrete_and_multi_binary_actions(
        tmp_path: Path, task_id: str, registered_tasks: None) -> None:
    outputs = TASKS[task_id][1]
    assert Topology.for_task(task_id, [HIDDEN]).output_group.size == outputs
    out = tmp_path / task_id
    summary = train(TrainConfig(
        task=task_id, learner="feedback", hidden=[HIDDEN], steps=200, learning_starts=20,
        learner_options={"batch_size": 16, "critic_hidden": 4, "buffer_size": 1000}, eval_every=0, eval_episodes=2,
        checkpoint_every=200, out=str(out), progress=False, tensorboard=False))
    assert summary["status"] == "completed" and summary["updates"] > 0
    saved = finite_summary(out)
    assert saved["num_agents"] == HIDDEN + outputs
    assert all(0 <= r <= 10 * outputs for r in saved["final_eval_returns"])


def test_the_tasks_are_gone_after_the_test() -> None:
    assert not set(TASKS) & set(gym.registry)
