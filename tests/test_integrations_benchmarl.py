"""neuron_env.integrations.benchmarl: the task config, the recommended settings, the BenchMARL task and runs.

The first part (config, settings arithmetic, group maps, env building) needs no BenchMARL and runs
in the fast suite. The tests that use BenchMARL skip without it; ``make test-marl`` runs this file
in ``.venv-marl`` (the pinned BenchMARL stack), tiny MAPPO and MADDPG runs included.
"""

from __future__ import annotations

import json
import math
import pickle
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import gymnasium as gym
import pytest

from neuron_env import Topology
from neuron_env.integrations import benchmarl as integration
from neuron_env.integrations.benchmarl import (
    INSTALL_HINT,
    RecommendedSettings,
    group_map,
    recommended_settings,
    task_config,
)

from .conftest import load_example

UNBOUNDED = "UnboundedPendulumTest-v0"  # Pendulum without a time limit
if UNBOUNDED not in gym.registry:
    gym.register(id=UNBOUNDED, entry_point="gymnasium.envs.classic_control.pendulum:PendulumEnv")

# torchrl 0.11 deprecates its own SyncDataCollector, which BenchMARL 1.5 uses.
pytestmark = pytest.mark.filterwarnings("ignore:SyncDataCollector has been deprecated:DeprecationWarning")


# ---------------------------------------------------------------------- without BenchMARL
def test_task_config_fills_in_the_clock() -> None:
    config = task_config("Pendulum-v1", hidden=(8, 8))
    assert (config["delay"], config["task_episode_steps"], config["max_cycles"]) == (3, 200, 600)
    assert config["env"] == "native" and config["state"] is True and config["hidden"] == [8, 8]
    assert config["agent_id"] is False and task_config("Pendulum-v1", hidden=(8, 8), agent_id=True)["agent_id"] is True
    assert task_config("Pendulum-v1", hidden=(4,))["max_cycles"] == 400  # delay 2
    assert task_config("Pendulum-v1", hidden=(4,), topology="recurrent")["delay"] == 1
    assert task_config("Pendulum-v1", hidden=(4,), delay=4, task_kwargs={"max_episode_steps": 10})["max_cycles"] == 40
    json.dumps(config)  # plain data: BenchMARL logs and pickles it


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"task": "Pendulum-v1", "env": "vmas"}, "env='vmas' is unknown"),
    ({"task": "Pendulum-v1", "max_cycles": 0}, "max_cycles=0 must be a positive number of ticks"),
    ({"task": "Pendulum-v1", "hidden": (4,), "max_cycles": 21}, "max_cycles=21 is not a multiple of delay=2.*"
                                                                  "use max_cycles=20, or env='pettingzoo'"),
    ({"task": UNBOUNDED, "hidden": (4,)}, f"task '{UNBOUNDED}' has no time limit: pass max_cycles="),
    ({"task": gym.make}, "must be a Gymnasium id"),
    ({"task": "Pendulum-v1", "agent_id": True, "env": "pettingzoo"}, "agent_id=True needs env='native'"),
])
def test_task_config_refuses_what_it_cannot_run(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message) as error:
        task_config(**kwargs)
    assert "\n" not in str(error.value)


def test_pettingzoo_env_takes_any_max_cycles_and_unbounded_tasks_take_one() -> None:
    assert task_config("Pendulum-v1", hidden=(4,), max_cycles=21, env="pettingzoo")["max_cycles"] == 21
    config = task_config(UNBOUNDED, hidden=(4,), max_cycles=30)
    assert config["task_episode_steps"] is None and config["max_cycles"] == 30


def test_recommended_settings_for_pendulum_8_8() -> None:
    """Issue 26's network: BenchMARL's batch happens to be 10 whole episodes; γ and λ move to the tick."""
    settings = recommended_settings(task_config("Pendulum-v1", hidden=(8, 8)))
    assert settings.gamma == pytest.approx(0.99 ** (1 / 3)) and settings.lmbda == pytest.approx(0.9 ** (1 / 3))
    assert settings.on_policy_collected_frames_per_batch == settings.off_policy_collected_frames_per_batch == 6000
    assert settings.episodes_per_batch == 10 and settings.on_policy_n_envs_per_worker == 10
    assert settings.off_policy_n_optimizer_steps == 1000 and settings.on_policy_minibatch_size == 400
    assert settings.evaluation_interval == 120_000 and settings.evaluation_interval_episodes == 200
    assert settings.max_n_frames is None  # no budget given: BenchMARL's is kept


@pytest.mark.parametrize(("delay", "max_cycles", "episodes", "n_envs"), [
    (2, 400, 15, 5), (3, 600, 10, 10), (4, 800, 8, 8), (1, 200, 30, 10), (3, 3000, 2, 2), (5, 7000, 1, 1),
])
def test_batches_hold_whole_episodes_for_every_copy(delay: int, max_cycles: int, episodes: int, n_envs: int) -> None:
    settings = recommended_settings({"delay": delay, "max_cycles": max_cycles})
    frames = settings.on_policy_collected_frames_per_batch
    assert (settings.episodes_per_batch, settings.on_policy_n_envs_per_worker) == (episodes, n_envs)
    assert frames == episodes * max_cycles and frames >= 6000 and frames - max_cycles < 6000  # the fewest
    assert (frames // n_envs) % max_cycles == 0  # each copy collects whole episodes
    assert settings.evaluation_interval % frames == 0  # BenchMARL requires it


def test_budget_in_task_steps_and_evaluations_in_whole_batches() -> None:
    config = task_config("Pendulum-v1", hidden=(8, 8))
    settings = recommended_settings(config, max_task_steps=20_000)
    assert settings.max_n_frames == 60_000 and settings.evaluation_interval == 6000  # 10 batches, 10 evaluations
    settings = recommended_settings(config, max_task_steps=20_001, evaluations=3, episodes_per_batch=4)
    assert settings.on_policy_collected_frames_per_batch == 2400 and settings.on_policy_n_envs_per_worker == 4
    assert settings.max_n_frames == 26 * 2400  # rounded up to whole batches
    assert settings.evaluation_interval == 9 * 2400 and settings.evaluation_interval_episodes == 36


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"task_gamma": 1.2}, "task_gamma=1.2"), ({"task_lmbda": -1.0}, "task_lmbda=-1.0"),
    ({"episodes_per_batch": 0}, "episodes_per_batch=0"), ({"max_task_steps": 2.5}, "max_task_steps=2.5"),
    ({"evaluations": 0}, "evaluations=0"),
])
def test_settings_refuse_bad_values(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        recommended_settings({"delay": 3, "max_cycles": 600}, **kwargs)
    with pytest.raises(ValueError, match="has no 'delay' and 'max_cycles'; pass task_config"):
        recommended_settings({"task": "Pendulum-v1"})


def test_apply_writes_benchmarl_fields_and_lmbda_where_it_exists() -> None:
    settings = recommended_settings({"delay": 3, "max_cycles": 600}, max_task_steps=20_000)
    names = [name for name in settings.experiment_fields()]
    experiment = SimpleNamespace(**dict.fromkeys(names, "benchmarl default"))
    mappo, maddpg = SimpleNamespace(lmbda=0.9), SimpleNamespace(delay_value=True)
    settings.apply(experiment, mappo)
    settings.apply(experiment, maddpg)
    assert experiment.gamma == settings.gamma and experiment.max_n_frames == 60_000 and experiment.max_n_iters is None
    assert experiment.on_policy_collected_frames_per_batch == 6000 and mappo.lmbda == settings.lmbda
    assert not hasattr(maddpg, "lmbda")
    assert not set(RecommendedSettings.INFORMATION) & set(vars(experiment))
    no_budget = recommended_settings({"delay": 3, "max_cycles": 600}).experiment_fields()
    assert "max_n_frames" not in no_budget and "max_n_iters" not in no_budget  # BenchMARL's budget stays
    with pytest.raises(AttributeError, match="has no attribute 'gamma'; pass a benchmarl.experiment.ExperimentConfig"):
        settings.apply(SimpleNamespace())


def test_group_map_is_one_group_per_layer() -> None:
    topology = Topology.mlp(3, [4, 5], 1)
    groups = group_map(topology)
    assert {name: len(agents) for name, agents in groups.items()} == {"h1": 4, "h2": 5, "out": 1}
    assert groups["h2"][:2] == ["h2_0", "h2_1"]
    assert all(agent.rsplit("_", 1)[0] == name for name, agents in groups.items() for agent in agents)


def test_group_map_matches_the_native_env() -> None:
    pytest.importorskip("torchrl")
    from neuron_env.integrations.torchrl import NeuronTorchRLEnv

    topology = Topology.mlp(3, [4, 5], 1)
    env = NeuronTorchRLEnv("Pendulum-v1", topology)
    assert env.group_map == group_map(topology)
    env.close()


@pytest.mark.filterwarnings("ignore:The given NumPy array is not writable")  # read-only shared observations
@pytest.mark.parametrize("env_kind", ["native", "pettingzoo"])
def test_envs_end_episodes_at_max_cycles(env_kind: str) -> None:
    """A shorter max_cycles bounds the native env through the task's time limit, the PettingZoo one by ticks."""
    pytest.importorskip("torchrl")
    config = task_config(UNBOUNDED, hidden=(4,), max_cycles=6, env=env_kind)
    env = integration._make_env(config, num_envs=2 if env_kind == "native" else 1, seed=0, device="cpu")
    rollout = env.rollout(6, break_when_any_done=False)
    done = rollout["next", "done"].reshape(-1, 6)
    assert not done[:, :-1].any() and done[:, -1].all()
    assert set(env.group_map) == {"h1", "out"} and "state" in env.observation_spec.keys()
    env.close()


def test_native_env_of_a_config_keeps_its_observations_and_can_run_full_episodes() -> None:
    pytest.importorskip("torchrl")
    config = task_config("Pendulum-v1", hidden=(4,), max_cycles=6, agent_id=True)
    env = integration.native_env(config, 2)
    assert env.agent_id and env.observation_spec["h1", "observation"].shape == (2, 4, 3 + 4)
    assert env.task_episode_steps == 3
    full = integration.native_env({key: value for key, value in config.items() if key != "agent_id"}, 1,
                                  full_task_episodes=True)
    assert not full.agent_id and full.task_episode_steps == 200  # a config saved before agent_id existed
    env.close()
    full.close()


def test_missing_benchmarl_names_the_venv_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "benchmarl", None)  # as if not installed
    with pytest.raises(ImportError, match="needs BenchMARL") as error:
        integration.make_experiment({"delay": 3, "max_cycles": 600})
    assert INSTALL_HINT in str(error.value) and "make test-marl" in str(error.value) and "\n" not in str(error.value)


# ---------------------------------------------------------------------- with BenchMARL (make test-marl)
@pytest.fixture(scope="module")
def benchmarl() -> ModuleType:
    return pytest.importorskip("benchmarl")  # imports torchvision: needs a matching torch/torchvision pair


@pytest.mark.parametrize("env_kind", ["native", "pettingzoo"])
def test_task_specs_and_groups(benchmarl: ModuleType, env_kind: str) -> None:
    task = integration.neuron_task("Pendulum-v1", hidden=[4, 5], max_cycles=9, env=env_kind)
    assert task.name == "Pendulum-v1" and task.config["delay"] == 3
    env = task.get_env_fun(num_envs=2, continuous_actions=True, seed=0, device="cpu")()
    assert env.batch_size == ((2,) if env_kind == "native" else ())  # BenchMARL batches the PettingZoo env itself
    assert {name: len(agents) for name, agents in task.group_map(env).items()} == {"h1": 4, "h2": 5, "out": 1}
    observation = task.observation_spec(env)
    assert observation["h1", "observation"].shape == (4, 3) and observation["h2", "observation"].shape == (5, 4)
    assert set(observation.keys()) == {"h1", "h2", "out"}
    assert task.state_spec(env)["state"].shape == (3 + 4 + 5 + 1,)  # every neuron's voltage
    assert task.action_spec(env)["out", "action"].shape == (1, 1)
    assert task.info_spec(env) is None and task.action_mask_spec(env) is None
    assert task.max_steps(env) == 9 and not task.has_render(env)
    env.close()


def test_task_pickles_and_the_enum_view_resolves(benchmarl: ModuleType) -> None:
    task = integration.neuron_task("Pendulum-v1", hidden=[4])
    assert pickle.loads(pickle.dumps(task)) == task  # BenchMARL pickles the task into every experiment folder
    from neuron_env.integrations.benchmarl import NeuronTask

    enum_task = NeuronTask.NEURON.get_task(config={"task": "Pendulum-v1", "hidden": [4]})
    assert enum_task.config == task.config and enum_task.config["max_cycles"] == 400


@pytest.mark.parametrize(("algorithm", "env_kind"), [("mappo", "native"), ("maddpg", "native"),
                                                     ("mappo", "pettingzoo")])
def test_tiny_end_to_end_run(benchmarl: ModuleType, algorithm: str, env_kind: str, tmp_path: Path,
                             one_thread: None) -> None:
    """Two iterations of 160 frames (4 episodes of 40 ticks), one evaluation of 2 full episodes."""
    task = integration.neuron_task("Pendulum-v1", hidden=[4], max_cycles=40, env=env_kind)
    settings = recommended_settings(task, episodes_per_batch=4, evaluation_episodes=2)
    experiment = integration.make_experiment(
        task, algorithm, settings=settings, max_n_iters=2, model_cells=[16], save_folder=str(tmp_path),
        evaluation=True, experiment_overrides={"on_policy_n_minibatch_iters": 2, "off_policy_n_optimizer_steps": 4,
                                               "off_policy_train_batch_size": 32})
    assert experiment.config.gamma == pytest.approx(0.99 ** 0.5)  # delay 2
    if algorithm == "mappo":
        assert experiment.algorithm_config.lmbda == pytest.approx(0.9 ** 0.5)
    experiment.run()
    assert experiment.n_iters_performed == 2 and experiment.total_frames == 320  # frames are ticks
    assert set(experiment.group_map) == {"h1", "out"} and experiment.max_steps == 40
    results = json.loads(next(experiment.folder_name.glob("*.json")).read_text())
    returns = results["neuron_env"]["pendulum-v1"][algorithm]["seed_0"]["step_0"]["return"]
    assert len(returns) == 2 and all(math.isfinite(r) and r < 0 for r in returns)  # Pendulum rewards are <= 0
    with open(experiment.folder_name / "config.pkl", "rb") as file:
        assert pickle.load(file) == task


def test_example_trains(benchmarl: ModuleType, tmp_path: Path, one_thread: None) -> None:
    example = load_example("benchmarl_task")
    args = example.Args(algorithm="ippo", hidden=(4,), max_cycles=20, episodes_per_batch=2, max_n_iters=2,
                        model_cells=(8,), save_folder=str(tmp_path))
    experiment = example.train(args)
    assert experiment.n_iters_performed == 2 and experiment.total_frames == 80


def test_model_init_picks_every_policy_layers_init(benchmarl: ModuleType, tmp_path: Path, one_thread: None) -> None:
    """``unit-gain``: weights of variance 1/fan_in (std·√fan_in = 1), against PyTorch's 1/(3·fan_in)."""
    torch = pytest.importorskip("torch")
    task = integration.neuron_task("Pendulum-v1", hidden=(4,))
    spreads = {}
    for model_init in ("pytorch", "unit-gain"):
        experiment = integration.make_experiment(task, "maddpg", settings="benchmarl", model_init=model_init,
                                                 save_folder=str(tmp_path))
        layers = [m for m in experiment.policy.modules() if isinstance(m, torch.nn.Linear)]
        assert layers and all(isinstance(m, integration.UnitGainLinear) == (model_init == "unit-gain") for m in layers)
        # the multi-agent MLP keeps its parameters in a TensorDict (its modules are on the meta device)
        weights = [value for module in (experiment.policy, *experiment.losses.values())
                   for key, value in module.state_dict().items()
                   if isinstance(value, torch.Tensor) and key.endswith("weight") and value.shape[-1] == 256]
        assert len(weights) >= 3  # the policy's and the critics' 256-wide layers
        spreads[model_init] = float(torch.stack([w.std() * 256 ** 0.5 for w in weights]).mean())
        assert pickle.loads(pickle.dumps(experiment.model_config)).layer_class is integration.MODEL_INITS[model_init]
        experiment.close()
    assert spreads["unit-gain"] == pytest.approx(1.0, abs=0.05)
    assert spreads["pytorch"] == pytest.approx(3 ** -0.5, abs=0.05)
    with pytest.raises(ValueError, match="model_init='lecun' is not one of"):
        integration.make_experiment(task, "maddpg", model_init="lecun")
