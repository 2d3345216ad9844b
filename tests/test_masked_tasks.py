"""Tasks that need memory: the rl-zoo's velocity-masked tasks, and sb3-contrib RecurrentPPO as their baseline."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import neuron_env
from neuron_env import NeuronVecEnv, Topology, neuron_v0
from neuron_env.cli import main
from neuron_env.errors import TaskError
from neuron_env.tasks import MASKED_TASKS, VELOCITY_INDICES, MaskVelocityWrapper, masked_task_id

#: ``rl_zoo3/wrappers.py`` MaskVelocityWrapper.velocity_indices (DLR-RM/rl-baselines3-zoo, commit 22e3ff2), verbatim.
ZOO_VELOCITY_INDICES: dict[str, list[int]] = {
    "CartPole-v1": [1, 3],
    "MountainCar-v0": [1],
    "MountainCarContinuous-v0": [1],
    "Pendulum-v1": [2],
    "LunarLander-v3": [2, 3, 5],
    "LunarLanderContinuous-v3": [2, 3, 5],
}
#: The ids ``rl_zoo3/import_envs.py`` registers from that table: ``f"{name}NoVel-v{version}"``.
ZOO_IDS: dict[str, str] = {
    "CartPoleNoVel-v1": "CartPole-v1",
    "MountainCarNoVel-v0": "MountainCar-v0",
    "MountainCarContinuousNoVel-v0": "MountainCarContinuous-v0",
    "PendulumNoVel-v1": "Pendulum-v1",
    "LunarLanderNoVel-v3": "LunarLander-v3",
    "LunarLanderContinuousNoVel-v3": "LunarLanderContinuous-v3",
}
#: The masked tasks that need nothing beyond Gymnasium's classic control (LunarLander needs Box2D).
CLASSIC_IDS = ("CartPoleNoVel-v1", "MountainCarNoVel-v0", "MountainCarContinuousNoVel-v0", "PendulumNoVel-v1")
TINY_BASELINE = ["--eval-episodes", "2", "--no-progress", "--no-tensorboard"]


# ------------------------------------------------------------------------------------------ the tasks
def test_ids_and_masked_indices_are_the_zoos() -> None:
    assert {task: list(indices) for task, indices in VELOCITY_INDICES.items()} == ZOO_VELOCITY_INDICES
    assert MASKED_TASKS == ZOO_IDS
    for masked, task in ZOO_IDS.items():
        spec = gym.spec(masked)  # registered by `import neuron_env`, LunarLander's without Box2D too
        assert spec.kwargs == {"task": task}
        assert spec.max_episode_steps == gym.spec(task).max_episode_steps
    assert masked_task_id("Pendulum-v1") == "PendulumNoVel-v1"
    with pytest.raises(TaskError, match="'Pendulum' has no version suffix"):
        masked_task_id("Pendulum")


@pytest.mark.parametrize("masked", CLASSIC_IDS)
def test_observations_are_the_tasks_with_the_velocities_zeroed(masked: str) -> None:
    task = ZOO_IDS[masked]
    env, plain = gym.make(masked), gym.make(task)
    assert env.observation_space == plain.observation_space  # same shape, dtype and bounds: masked, not dropped
    assert env.action_space == plain.action_space
    mask = np.ones(plain.observation_space.shape, dtype=bool)
    mask[ZOO_VELOCITY_INDICES[task]] = False
    observation, _ = env.reset(seed=3)
    expected, _ = plain.reset(seed=3)
    env.action_space.seed(3)
    hidden_velocities = 0
    for _ in range(60):
        assert observation.shape == expected.shape and observation.dtype == expected.dtype
        np.testing.assert_array_equal(observation[~mask], 0.0)
        np.testing.assert_array_equal(observation[mask], expected[mask])
        hidden_velocities += int(np.any(expected[~mask] != 0))
        action = env.action_space.sample()
        observation, reward, terminated, truncated, _ = env.step(action)
        expected, plain_reward, plain_terminated, plain_truncated, _ = plain.step(action)
        assert (reward, terminated, truncated) == (plain_reward, plain_terminated, plain_truncated)
        if terminated or truncated:
            observation, _ = env.reset(seed=4)
            expected, _ = plain.reset(seed=4)
    assert hidden_velocities > 30  # the masked entries did hold velocities


def test_the_wrapped_tasks_time_limit_applies_once_and_can_be_replaced() -> None:
    env = gym.make("PendulumNoVel-v1")
    env.reset(seed=0)
    steps, truncated = 0, False
    while not truncated:
        _, _, _, truncated, _ = env.step(env.action_space.sample())
        steps += 1
    assert steps == 200  # Pendulum-v1's limit
    short = gym.make("PendulumNoVel-v1", max_episode_steps=7, g=9.81)  # the task's own kwargs pass through
    short.reset(seed=0)
    assert [short.step(short.action_space.sample())[3] for _ in range(7)] == [False] * 6 + [True]


def test_registering_again_is_harmless() -> None:
    before = gym.spec("CartPoleNoVel-v1")
    neuron_env.register_envs()
    neuron_env.register_envs()
    assert gym.spec("CartPoleNoVel-v1") is before


def test_wrapper_reads_the_id_from_the_spec_and_refuses_other_tasks() -> None:
    wrapped = MaskVelocityWrapper(gym.make("CartPole-v1"))  # as the zoo: the id from env.unwrapped.spec
    np.testing.assert_array_equal(wrapped.mask, [1, 0, 1, 0])
    assert wrapped.mask.dtype == np.float32
    with pytest.raises(TaskError, match=r"not defined for task 'Acrobot-v1'; choose one of \('CartPole-v1'"):
        MaskVelocityWrapper(gym.make("Acrobot-v1"))
    with pytest.raises(TaskError, match="not defined for task 'Acrobot-v1'"):
        gym.make("CartPoleNoVel-v1", task="Acrobot-v1")


def test_ids_drive_the_neuron_envs() -> None:
    topology = Topology.for_task("CartPoleNoVel-v1", [4])
    plain = Topology.for_task("CartPole-v1", [4])
    assert (repr(topology), topology.num_neurons) == (repr(plain), plain.num_neurons)  # one network fits both
    env = neuron_v0.parallel_env(task="CartPoleNoVel-v1", topology=topology)
    observations, _ = env.reset(seed=0)
    assert set(observations) == set(env.agents)
    voltages = env.state()
    np.testing.assert_array_equal(voltages[[1, 3]], 0.0)  # the input neurons of the masked entries
    env.step({agent: env.action_space(agent).sample() for agent in env.agents})
    env.close()
    core = NeuronVecEnv("PendulumNoVel-v1", Topology.for_task("PendulumNoVel-v1", [4]), num_envs=2)
    core.reset(seed=0)
    assert core.num_envs == 2
    core.close()


def test_train_runs_on_a_masked_task(tmp_path: Path) -> None:
    out = tmp_path / "train"
    assert main(["train", "--task", "CartPoleNoVel-v1", "--steps", "30", "--learning-starts", "10", "--hidden", "4",
                 "--eval-every", "30", "--eval-episodes", "1", "--out", str(out), "--no-progress",
                 "--no-tensorboard"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["steps"] == 30


# ------------------------------------------------------------------------------------------ evaluation with memory
class StateEcho:
    """A stand-in for a recurrent SB3 model: its state counts the steps of the episode so far."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, bool]] = []

    def predict(self, observation: np.ndarray, state: Any = None, episode_start: np.ndarray | None = None,
                deterministic: bool = False) -> tuple[np.ndarray, Any]:
        assert deterministic and episode_start is not None
        self.calls.append((state, bool(episode_start[0])))
        count = 0 if episode_start[0] else state
        return np.zeros(1, dtype=np.float32), count + 1


def test_evaluation_carries_the_state_through_an_episode_and_resets_it_between() -> None:
    from neuron_env.baselines.sb3_common import evaluate

    model = StateEcho()
    returns = evaluate(model, gym.make("PendulumNoVel-v1", max_episode_steps=5), episodes=2, seed=0)
    assert len(returns) == 2
    assert model.calls == [(None, True), (1, False), (2, False), (3, False), (4, False),
                           (None, True), (1, False), (2, False), (3, False), (4, False)]


# ---------------------------------------------------------------------------------------- baseline --algo recurrent-ppo
def test_hyperparameters_are_the_zoos_ppo_lstm_values() -> None:
    pytest.importorskip("stable_baselines3")
    from neuron_env.baselines import BaselineConfig, resolve_hyperparameters

    cartpole = resolve_hyperparameters(BaselineConfig(algo="recurrent-ppo", task="CartPoleNoVel-v1", hidden=None))
    assert {key: cartpole[key] for key in ("n_envs", "steps", "n_steps", "batch_size", "gae_lambda", "gamma",
                                           "n_epochs", "ent_coef", "learning_rate", "clip_range", "net_arch",
                                           "activation", "lstm_hidden_size", "enable_critic_lstm", "ortho_init",
                                           "source", "normalize", "normalize_kwargs")} == {
        "n_envs": 8, "steps": 100_000, "n_steps": 32, "batch_size": 256, "gae_lambda": 0.8, "gamma": 0.98,
        "n_epochs": 20, "ent_coef": 0.0, "learning_rate": "lin_0.001", "clip_range": "lin_0.2", "net_arch": [64],
        "activation": "relu", "lstm_hidden_size": 64, "enable_critic_lstm": True, "ortho_init": False,
        "source": "rl-zoo", "normalize": True,  # the zoo's `normalize: True`: VecNormalize's defaults, the algo's gamma
        "normalize_kwargs": {"norm_obs": True, "norm_reward": True, "gamma": 0.98}}
    pendulum = resolve_hyperparameters(BaselineConfig(algo="recurrent-ppo", task="PendulumNoVel-v1", hidden=None))
    assert (pendulum["n_envs"], pendulum["steps"], pendulum["n_steps"], pendulum["batch_size"], pendulum["gamma"],
            pendulum["learning_rate"], pendulum["use_sde"], pendulum["sde_sample_freq"]) == (
        4, 100_000, 1024, 128, 0.9, 1e-3, True, 4)  # batch_size: sb3-contrib's default
    car = resolve_hyperparameters(BaselineConfig(algo="recurrent-ppo", task="MountainCarContinuousNoVel-v0",
                                                 hidden=None))
    assert (car["n_envs"], car["steps"], car["n_steps"], car["batch_size"], car["gamma"], car["learning_rate"],
            car["ent_coef"], car["clip_range"], car["gae_lambda"], car["max_grad_norm"], car["vf_coef"],
            car["sde_sample_freq"], car["lstm_hidden_size"], car["net_arch"], car["activation"]) == (
        8, 300_000, 1024, 256, 0.9999, 7.77e-5, 0.00429, 0.1, 0.9, 5.0, 0.19, 8, 32, [64], "tanh")
    # --hidden sets the layers after the LSTM; the LSTM keeps the zoo's size
    custom = resolve_hyperparameters(BaselineConfig(algo="recurrent-ppo", task="CartPoleNoVel-v1", hidden=(8, 8)))
    assert (custom["net_arch"], custom["activation"], custom["lstm_hidden_size"]) == ([8, 8], "tanh", 64)
    other = resolve_hyperparameters(BaselineConfig(algo="recurrent-ppo", task="CartPole-v1", hidden=None))
    assert (other["source"], other["lstm_hidden_size"], other["steps"], other["normalize"]) == (
        "sb3-defaults", 256, 1_000_000, False)


def test_ppo_options_apply_and_others_are_refused() -> None:
    pytest.importorskip("stable_baselines3")
    from neuron_env.baselines import BaselineConfig, BaselineConfigError

    BaselineConfig(algo="recurrent-ppo", task="CartPoleNoVel-v1", n_envs=2, n_steps=16, ent_coef=0.01).validate()
    with pytest.raises(BaselineConfigError, match="noise_std does not apply to algo 'recurrent-ppo'"):
        BaselineConfig(algo="recurrent-ppo", task="PendulumNoVel-v1", noise_std=0.1).validate()


def test_cli_recurrent_ppo_writes_every_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("sb3_contrib")
    from neuron_env.baselines import METRICS_COLUMNS, SUMMARY_KEYS

    out = tmp_path / "lstm"
    assert main(["baseline", "--algo", "recurrent-ppo", "--task", "CartPoleNoVel-v1", "--zoo-net", "--steps", "256",
                 "--eval-every", "128", "--out", str(out), *TINY_BASELINE]) == 0
    assert "sb3-recurrent-ppo on CartPoleNoVel-v1 (seed 0): 256 steps" in capsys.readouterr().out
    lines = (out / "metrics.csv").read_text().splitlines()
    assert tuple(lines[0].split(",")) == METRICS_COLUMNS and [row.split(",")[0] for row in lines[1:]] == ["128", "256"]
    summary = json.loads((out / "summary.json").read_text())
    assert set(SUMMARY_KEYS) <= set(summary)
    assert summary["method"] == "sb3-recurrent-ppo" and summary["steps"] == 256 and summary["status"] == "completed"
    assert summary["updates"] == 20 and summary["transitions"] == 256  # one 8 x 32 rollout, 20 epochs of one batch
    assert summary["num_agents"] == 64 + 2  # the [64] layer after the LSTM and one output per action
    assert summary["hyperparameters"]["lstm_hidden_size"] == 64 and len(summary["final_eval_returns"]) == 2
    assert summary["hyperparameters"]["normalize"] is True  # the zoo's VecNormalize
    assert json.loads((out / "config.json").read_text()) == summary["config"]
    assert {path.name for path in out.iterdir()} == {"metrics.csv", "episodes.csv", "summary.json", "config.json",
                                                     "model.zip", "vecnormalize.pkl"}
    from sb3_contrib import RecurrentPPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    model = RecurrentPPO.load(out / "model.zip")
    assert model.policy.lstm_actor.hidden_size == 64
    stats = VecNormalize.load(str(out / "vecnormalize.pkl"), make_vec_env("CartPoleNoVel-v1", n_envs=1))
    assert stats.obs_rms.mean.shape == (4,) and stats.obs_rms.count > 256 and stats.gamma == 0.98


def test_recurrent_evaluation_matches_a_loop_that_carries_the_lstm_state() -> None:
    pytest.importorskip("sb3_contrib")
    from neuron_env.baselines import BaselineConfig
    from neuron_env.baselines.sb3_common import evaluate
    from neuron_env.baselines.sb3_ddpg import build_model

    model, _ = build_model(BaselineConfig(algo="recurrent-ppo", task="PendulumNoVel-v1", hidden=(4,)))
    env = gym.make("PendulumNoVel-v1", max_episode_steps=20)
    returns = evaluate(model, env, episodes=2, seed=5)
    for episode in range(2):  # sb3-contrib's documented loop
        observation, _ = env.reset(seed=5 + episode)
        state, starts, total, done = None, np.ones((1,), dtype=bool), 0.0, False
        while not done:
            action, state = model.predict(observation, state=state, episode_start=starts, deterministic=True)
            starts = np.zeros((1,), dtype=bool)
            observation, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            done = terminated or truncated
        assert returns[episode] == pytest.approx(total)


def test_missing_sb3_contrib_is_one_line_naming_the_pip_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("stable_baselines3")
    from neuron_env.baselines import BaselineConfig, MissingDependencyError
    from neuron_env.baselines.sb3_recurrent import build_recurrent_model

    monkeypatch.setitem(sys.modules, "sb3_contrib", None)  # `import sb3_contrib` now raises ImportError
    with pytest.raises(MissingDependencyError) as caught:
        build_recurrent_model(BaselineConfig(algo="recurrent-ppo", task="CartPoleNoVel-v1"))
    assert str(caught.value) == "--algo recurrent-ppo needs sb3-contrib: pip install 'sb3-contrib>=2.0'"
    out = tmp_path / "none"
    assert main(["baseline", "--algo", "recurrent-ppo", "--task", "CartPoleNoVel-v1", "--out", str(out),
                 *TINY_BASELINE]) == 2
    assert capsys.readouterr().err == ("neuron-env baseline: error: --algo recurrent-ppo needs sb3-contrib: "
                                       "pip install 'sb3-contrib>=2.0'\n")
    assert not out.exists()  # refused before any folder is made
