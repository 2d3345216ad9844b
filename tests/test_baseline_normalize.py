"""The rl-zoo's VecNormalize in the SB3 baselines: which runs normalize, frozen evaluations, vecnormalize.pkl."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("stable_baselines3")

from neuron_env.agents.train import CheckpointError, load_checkpoint  # noqa: E402
from neuron_env.baselines import (  # noqa: E402
    BaselineConfig,
    BaselineConfigError,
    resolve_hyperparameters,
    sb3_common,
)
from neuron_env.baselines.cli import baseline_config_from_args  # noqa: E402
from neuron_env.baselines.sb3_common import (  # noqa: E402
    VECNORMALIZE_FILE,
    evaluate,
    frozen_observation_normalizer,
    vecnormalize_kwargs,
)
from neuron_env.baselines.sb3_ddpg import build_model  # noqa: E402
from neuron_env.baselines.sb3_discrete import PPO_ZOO_HYPERPARAMS  # noqa: E402
from neuron_env.baselines.sb3_recurrent import RECURRENT_PPO_ZOO_HYPERPARAMS  # noqa: E402
from stable_baselines3.common.vec_env import VecNormalize  # noqa: E402

from neuron_env.cli import build_parser, main  # noqa: E402

#: The ``normalize`` entries of ``hyperparams/ppo_lstm.yml`` (DLR-RM/rl-baselines3-zoo, commit 22e3ff2) for the
#: tasks of ``RECURRENT_PPO_ZOO_HYPERPARAMS``, with each entry's gamma, verbatim.
ZOO_PPO_LSTM_NORMALIZE: dict[str, tuple[bool, float]] = {
    "PendulumNoVel-v1": (True, 0.9),
    "CartPoleNoVel-v1": (True, 0.98),
    "MountainCarNoVel-v0": (True, 0.99),
    "MountainCarContinuousNoVel-v0": (True, 0.9999),
    "Acrobot-v1": (True, 0.99),
    "LunarLanderNoVel-v3": (True, 0.999),  # the zoo's file names them -v2
    "LunarLanderContinuousNoVel-v3": (True, 0.999),
}
#: ``hyperparams/ppo.yml`` at the same commit: the tasks of ``PPO_ZOO_HYPERPARAMS`` whose entry has ``normalize: true``.
ZOO_PPO_NORMALIZED = {"Acrobot", "MountainCar"}
TINY = ["--eval-episodes", "2", "--no-progress", "--no-tensorboard"]


# ------------------------------------------------------------------------------------------ which runs normalize
@pytest.mark.parametrize(("task", "zoo"), ZOO_PPO_LSTM_NORMALIZE.items())
def test_recurrent_ppo_takes_the_zoos_normalize_for_every_task(task: str, zoo: tuple[bool, float]) -> None:
    params = resolve_hyperparameters(BaselineConfig(algo="recurrent-ppo", task=task, hidden=None))
    assert params["source"] == "rl-zoo" and params["gamma"] == zoo[1]
    assert params["normalize"] is zoo[0]
    assert params["normalize_kwargs"] == {"norm_obs": True, "norm_reward": True, "gamma": zoo[1]}  # gamma: the algo's


def test_the_tables_hold_the_zoos_entries_and_ppo_leaves_them_out_on_purpose() -> None:
    assert {key: params.get("normalize") for key, params in RECURRENT_PPO_ZOO_HYPERPARAMS.items()} == {
        key: True for key in RECURRENT_PPO_ZOO_HYPERPARAMS}
    assert ZOO_PPO_NORMALIZED <= set(PPO_ZOO_HYPERPARAMS)
    assert all("normalize" not in params for params in PPO_ZOO_HYPERPARAMS.values())
    for task in ("Acrobot-v1", "MountainCar-v0", "CartPole-v1"):  # raw observations for every method
        assert resolve_hyperparameters(BaselineConfig(algo="ppo", task=task))["normalize"] is False


@pytest.mark.parametrize(("algo", "task"), [("ddpg", "Pendulum-v1"), ("td3", "Pendulum-v1"),
                                            ("dqn", "CartPole-v1"), ("recurrent-ppo", "CartPole-v1")])
def test_no_zoo_entry_means_no_normalization(algo: str, task: str) -> None:
    params = resolve_hyperparameters(BaselineConfig(algo=algo, task=task))
    assert (params["normalize"], params["normalize_kwargs"]) == (False, None)


def test_the_flag_overrides_the_zoo_either_way() -> None:
    off = resolve_hyperparameters(BaselineConfig(algo="recurrent-ppo", task="CartPoleNoVel-v1", normalize=False))
    assert (off["normalize"], off["normalize_kwargs"]) == (False, None)
    on = resolve_hyperparameters(BaselineConfig(algo="ppo", task="Acrobot-v1", normalize=True, gamma=0.95))
    assert on["normalize_kwargs"] == {"norm_obs": True, "norm_reward": True, "gamma": 0.95}
    plain = resolve_hyperparameters(BaselineConfig(algo="recurrent-ppo", task="CartPole-v1", normalize=True))
    assert plain["normalize_kwargs"]["gamma"] == 0.99  # sb3-contrib's default discount
    parser = build_parser()
    for flags, expected in (([], None), (["--normalize"], True), (["--no-normalize"], False)):
        args = parser.parse_args(["baseline", "--algo", "recurrent-ppo", "--task", "CartPoleNoVel-v1", "--out", "x",
                                  *flags])
        assert baseline_config_from_args(args).normalize is expected


def test_a_zoo_dict_entry_gives_the_kwargs_and_the_algos_gamma() -> None:
    assert vecnormalize_kwargs({"norm_obs": False, "norm_reward": True}, 0.9) == {  # the zoo's CarRacing form
        "norm_obs": False, "norm_reward": True, "gamma": 0.9}
    assert vecnormalize_kwargs(True, 0.98) == {"norm_obs": True, "norm_reward": True, "gamma": 0.98}


@pytest.mark.parametrize(("algo", "task"), [("ddpg", "Pendulum-v1"), ("td3", "Pendulum-v1"), ("dqn", "CartPole-v1")])
def test_off_policy_algos_refuse_normalize_in_one_line(algo: str, task: str, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(BaselineConfigError, match=rf"^normalize \(--normalize\) does not apply to algo '{algo}': "
                       r"VecNormalize is an option of ppo/recurrent-ppo only$"):
        BaselineConfig(algo=algo, task=task, normalize=True).validate()
    BaselineConfig(algo=algo, task=task, normalize=False).validate()  # asking for what it does anyway is fine
    out = tmp_path / algo
    assert main(["baseline", "--algo", algo, "--task", task, "--normalize", "--out", str(out), *TINY]) == 2
    error = capsys.readouterr().err
    assert len(error.splitlines()) == 1 and "does not apply to algo" in error and not out.exists()


# ------------------------------------------------------------------------------------------ evaluation
class Recorder(gym.Wrapper):
    """Records the raw observations and rewards the task gives."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.observations: list[np.ndarray] = []
        self.rewards: list[float] = []

    def reset(self, **kwargs: Any) -> tuple[Any, dict]:
        observation, info = self.env.reset(**kwargs)
        self.observations.append(np.array(observation))
        return observation, info

    def step(self, action: Any) -> tuple:
        observation, reward, terminated, truncated, info = self.env.step(action)
        if not (terminated or truncated):
            self.observations.append(np.array(observation))
        self.rewards.append(float(reward))
        return observation, reward, terminated, truncated, info


def statistics(vec_normalize: VecNormalize) -> tuple[np.ndarray, ...]:
    rms = vec_normalize.obs_rms
    return rms.mean.copy(), rms.var.copy(), np.array(rms.count), vec_normalize.ret_rms.mean.copy()


def test_evaluation_uses_the_training_statistics_frozen_and_scores_raw_rewards() -> None:
    pytest.importorskip("sb3_contrib")
    model, params = build_model(BaselineConfig(algo="recurrent-ppo", task="PendulumNoVel-v1", hidden=(4,)))
    assert params["normalize"] and params["normalize_kwargs"]["gamma"] == 0.9
    vec_normalize = model.get_vec_normalize_env()
    assert isinstance(vec_normalize, VecNormalize) and vec_normalize.training
    vec_normalize.reset()
    for _ in range(30):  # statistics away from their start
        vec_normalize.step(np.stack([vec_normalize.action_space.sample() for _ in range(vec_normalize.num_envs)]))
    before = statistics(vec_normalize)
    seen: list[np.ndarray] = []
    predict = model.predict

    def recording_predict(observation: np.ndarray, **kwargs: Any) -> Any:
        seen.append(np.array(observation))
        return predict(observation, **kwargs)

    model.predict = recording_predict
    env = Recorder(gym.make("PendulumNoVel-v1", max_episode_steps=15))
    normalizer = frozen_observation_normalizer(vec_normalize)
    returns = evaluate(model, env, episodes=2, seed=3, normalize_observation=normalizer)
    for got, want in zip(before, statistics(vec_normalize), strict=True):
        np.testing.assert_array_equal(got, want)  # an evaluation leaves the statistics as they were
    assert len(seen) == len(env.observations) == 30
    for raw, normalized in zip(env.observations, seen, strict=True):
        np.testing.assert_allclose(normalized, vec_normalize.normalize_obs(raw), rtol=1e-6)
        assert not np.allclose(normalized, raw)
    np.testing.assert_allclose(returns, [sum(env.rewards[:15]), sum(env.rewards[15:])])  # raw task rewards
    assert np.all(returns < -1)  # Pendulum's raw costs, not VecNormalize's scaled rewards
    # the normalizer is a snapshot: training moving the statistics later does not change it
    probe = env.observations[0]
    kept = normalizer(probe)
    vec_normalize.obs_rms.update(np.full((4, 3), 50.0))
    np.testing.assert_array_equal(normalizer(probe), kept)
    assert not np.allclose(vec_normalize.normalize_obs(probe), kept)


def test_no_normalizer_for_a_raw_run_or_reward_only_normalization() -> None:
    model, _ = build_model(BaselineConfig(algo="ppo", task="CartPole-v1", hidden=(4,)))
    assert model.get_vec_normalize_env() is None and frozen_observation_normalizer(None) is None
    rewards_only = build_model(BaselineConfig(algo="ppo", task="CartPole-v1", hidden=(4,), normalize=True))[0]
    vec_normalize = rewards_only.get_vec_normalize_env()
    assert vec_normalize.gamma == 0.98  # the zoo's CartPole gamma
    vec_normalize.norm_obs = False
    assert frozen_observation_normalizer(vec_normalize) is None


def test_every_evaluation_of_a_run_sees_frozen_statistics(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("sb3_contrib")
    calls: list[tuple[bool, bool]] = []
    real = sb3_common.evaluate

    def watched(model: Any, env: Any, episodes: int, seed: int, normalize_observation: Any = None) -> np.ndarray:
        vec_normalize = model.get_vec_normalize_env()
        before = statistics(vec_normalize)
        returns = real(model, env, episodes, seed, normalize_observation)
        same = all(np.array_equal(a, b) for a, b in zip(before, statistics(vec_normalize), strict=True))
        calls.append((normalize_observation is not None, same))
        return returns

    monkeypatch.setattr(sb3_common, "evaluate", watched)
    out = tmp_path / "run"
    assert main(["baseline", "--algo", "recurrent-ppo", "--task", "CartPoleNoVel-v1", "--zoo-net", "--steps", "512",
                 "--eval-every", "256", "--out", str(out), *TINY]) == 0
    assert calls == [(True, True), (True, True)]


# ------------------------------------------------------------------------------------------ files
def test_a_normalized_run_saves_vecnormalize_beside_the_model(tmp_path: Path) -> None:
    pytest.importorskip("sb3_contrib")
    from neuron_env.baselines.sb3_ddpg import train_sb3

    config = BaselineConfig(algo="recurrent-ppo", task="CartPoleNoVel-v1", hidden=None, steps=256, eval_every=256,
                            eval_episodes=1, out=str(tmp_path / "run"), tensorboard=False, progress=False)
    model, summary = train_sb3(config)
    saved = VecNormalize.load(str(tmp_path / "run" / VECNORMALIZE_FILE), model.get_env())
    np.testing.assert_array_equal(saved.obs_rms.mean, model.get_vec_normalize_env().obs_rms.mean)
    assert (saved.gamma, saved.norm_obs, saved.norm_reward) == (0.98, True, True)
    on_disk = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert on_disk["hyperparameters"]["normalize"] is True and on_disk == summary
    assert on_disk["hyperparameters"]["normalize_kwargs"] == {"norm_obs": True, "norm_reward": True, "gamma": 0.98}
    assert on_disk["config"]["normalize"] is None  # the zoo's choice, resolved in hyperparameters
    with pytest.raises(CheckpointError, match=r"sb3_contrib\.RecurrentPPO\.load, and its observation statistics "
                       r"with stable_baselines3's VecNormalize\.load\('vecnormalize\.pkl', venv\)"):
        load_checkpoint(tmp_path / "run")


def test_a_raw_run_writes_no_vecnormalize_and_drops_an_earlier_runs(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("sb3_contrib")
    out = tmp_path / "run"
    flags = ["baseline", "--algo", "recurrent-ppo", "--task", "CartPoleNoVel-v1", "--hidden", "4", "--steps", "64",
             "--n-envs", "2", "--n-steps", "32", "--eval-every", "64", "--out", str(out), *TINY]
    assert main(flags) == 0 and (out / VECNORMALIZE_FILE).is_file()
    assert main([*flags, "--no-normalize", "--overwrite"]) == 0
    assert (out / "model.zip").is_file() and not (out / VECNORMALIZE_FILE).exists()
    assert json.loads((out / "summary.json").read_text())["hyperparameters"]["normalize"] is False
    capsys.readouterr()
    with pytest.raises(CheckpointError, match=r"load it with sb3_contrib\.RecurrentPPO\.load$"):
        load_checkpoint(out)
