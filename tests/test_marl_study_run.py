"""studies/marl_run.py, one BenchMARL run of the MARL study: settings, evaluation, ``run-one``, ``noise``.

The settings and the command line need no BenchMARL. The tests at the end need TorchRL or BenchMARL
(``make test-marl`` runs this file in ``.venv-marl``): the evaluation protocol, the settings against
BenchMARL's own config classes, a tiny ``run-one`` end to end, and the exploration measurement. In
the main venv they are skipped.
"""

from __future__ import annotations

import csv
import pickle
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import load_script

REPO = Path(__file__).resolve().parents[1]
marl_run = sys.modules.get("marl_run") or load_script(REPO / "studies" / "marl_run.py", "marl_run")
grid = sys.modules["grid"]  # the generic runner marl_run imports (studies/grid.py)

PENDULUM = {"delay": 3, "max_cycles": 600, "task_episode_steps": 200}


# ---------------------------------------------------------------------------------- settings
def test_default_sets_only_the_budget_in_whole_batches() -> None:
    plan = marl_run.plan_settings("default", "mappo", PENDULUM, 100_000)
    assert plan["task"] == {} and plan["algorithm"] == {} and plan["model_cells"] is None
    assert plan["model_init"] == "pytorch"
    assert plan["experiment"] == {"max_n_frames": 300_000, "max_n_iters": None}
    assert marl_run.plan_settings("default", "isac", PENDULUM, 600)["experiment"]["max_n_frames"] == 6000  # one batch


def test_recommended_is_the_integrations_settings() -> None:
    recommended = marl_run.recommended_settings(PENDULUM, max_task_steps=100_000)
    mappo = marl_run.plan_settings("recommended", "mappo", PENDULUM, 100_000)
    assert mappo["experiment"] == recommended.experiment_fields() and mappo["algorithm"] == {"lmbda": recommended.lmbda}
    assert marl_run.plan_settings("recommended", "masac", PENDULUM, 100_000)["algorithm"] == {}  # no lmbda there
    assert mappo["experiment"]["gamma"] == pytest.approx(0.99 ** (1 / 3))


@pytest.mark.parametrize(("settings", "algorithm", "where", "changed"), [
    ("gamma-per-tick", "maddpg", "experiment", {"gamma": 0.99 ** (1 / 3)}),
    ("lmbda-per-tick", "ippo", "algorithm", {"lmbda": 0.9 ** (1 / 3)}),
    ("short-episodes", "mappo", "task", {"max_cycles": 99}),
    ("batch-half-episode", "maddpg", "experiment", {"on_policy_collected_frames_per_batch": 3000,
                                                    "off_policy_collected_frames_per_batch": 3000,
                                                    "off_policy_n_optimizer_steps": 500}),
    ("per-neuron-policy", "isac", "experiment", {"share_policy_params": False}),
    ("noise-0.1", "iddpg", "experiment", {"exploration_eps_init": 0.1}),
    ("noise-0.1", "masac", "algorithm", {"scale_mapping": "biased_softplus_0.1"}),
    ("no-state", "mappo", "task", {"state": False}),
    ("agent-id", "maddpg", "task", {"agent_id": True}),
    ("sb3-rates", "masac", "experiment", {"lr": 1e-3, "off_policy_n_optimizer_steps": 2000}),
])
def test_each_factor_changes_one_setting_from_the_default(settings: str, algorithm: str, where: str,
                                                          changed: dict[str, Any]) -> None:
    plan = marl_run.plan_settings(settings, algorithm, PENDULUM, 100_000)
    default = marl_run.plan_settings("default", algorithm, PENDULUM, 100_000)
    for key in ("task", "experiment", "algorithm"):
        extra = {k: v for k, v in plan[key].items() if default[key].get(k) != v}
        assert extra == (pytest.approx(changed) if key == where else {}), key
    assert marl_run.plan_settings("width-64", algorithm, PENDULUM, 100_000)["model_cells"] == [64, 64]
    assert marl_run.plan_settings("unit-gain-init", algorithm, PENDULUM, 100_000)["model_init"] == "unit-gain"


def test_the_combined_row_is_three_factors_at_once() -> None:
    combined = marl_run.plan_settings("rates-gain-id", "maddpg", PENDULUM, 30_000)
    rates = marl_run.plan_settings("sb3-rates", "maddpg", PENDULUM, 30_000)
    assert combined["experiment"] == rates["experiment"] and combined["model_init"] == "unit-gain"
    assert combined["task"] == {"agent_id": True}


def test_settings_refuse_what_does_not_exist() -> None:
    with pytest.raises(ValueError, match="only for"):
        marl_run.plan_settings("lmbda-per-tick", "maddpg", PENDULUM, 1000)
    with pytest.raises(ValueError, match="not one of"):
        marl_run.plan_settings("fast", "mappo", PENDULUM, 1000)
    with pytest.raises(ValueError, match="not one of"):
        marl_run.plan_settings("default", "qmix", PENDULUM, 1000)


# ---------------------------------------------------------------------------------- evaluator, noise, command line
def test_evaluator_pickles_without_its_experiment(tmp_path: Path) -> None:
    evaluator = marl_run.Evaluator(PENDULUM, 0, 1000, 2, tmp_path / "metrics.csv")
    evaluator.experiment, evaluator._env = object(), object()
    copy = pickle.loads(pickle.dumps(evaluator))
    assert copy.experiment is None and copy._env is None and copy.every == 1000 and copy.max_ticks == 600


def test_noise_table_renders() -> None:
    result = {"task": "Pendulum-v1", "hidden": [8, 8], "delay": 3, "samples": 4, "states": 2, "action_scale": 2.0,
              "groups": ["h1", "h2", "out"],
              "rows": [{"policy": "mappo", "settings": "default", "std": {"h1": 0.5, "h2": 0.6, "out": 0.7},
                        "task_action_std": 1.4}]}
    text = marl_run.render_noise(result)
    assert "| mappo | default | 0.500 | 0.600 | 0.700 | 1.400 |" in text
    assert marl_run.render_sharing(result) == ""  # measured before the spreads were
    result["rows"][0].update(spread={"h1": 0.0, "h2": 0.25, "out": 0.0},
                             state_spread={"h1": 0.5, "h2": 0.1, "out": 0.2})
    assert "| mappo | default | 0.000 | 0.250 | 0.500 | 0.100 | 0.200 |" in marl_run.render_sharing(result)


def test_main_wants_a_command() -> None:
    with pytest.raises(SystemExit, match="run-one or noise"):
        marl_run.main(["--phase", "pendulum-8-8"])


# ---------------------------------------------------------------------------------- with TorchRL / BenchMARL
def test_evaluation_follows_the_local_trainers_protocol() -> None:
    """A constant policy through evaluate_policy gives the returns of the same actions on the core, same starts."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("torchrl")
    from neuron_env.agents.train import evaluation_seed

    from neuron_env import Topology
    from neuron_env.integrations.torchrl import NeuronTorchRLEnv
    from neuron_env.vector import NeuronVecEnv

    topology = Topology.mlp(3, [2], 1)
    env = NeuronTorchRLEnv("Pendulum-v1", topology, num_envs=3)

    def policy(td: Any) -> Any:
        for name, agents in env.group_map.items():
            td.set((name, "action"), torch.full((3, len(agents), 1), 0.25))
        return td

    returns = marl_run.evaluate_policy(policy, env, evaluation_seed(4), 400)
    core = NeuronVecEnv("Pendulum-v1", topology, num_envs=3)
    core.reset(seed=evaluation_seed(4))
    expected = torch.zeros(3, dtype=torch.float64)
    for _ in range(400):
        step = core.step(torch.full((3, topology.num_agents), 0.25))
        if step.task_stepped:
            expected += step.reward.double()
    assert returns == pytest.approx(expected.numpy(), rel=1e-5)
    with pytest.raises(RuntimeError, match="did not end"):
        marl_run.evaluate_policy(policy, env, 0, 10)


@pytest.fixture
def benchmarl() -> Any:
    return pytest.importorskip("benchmarl")  # imports torchvision: needs a matching torch/torchvision pair


def test_settings_name_real_benchmarl_fields(benchmarl: Any) -> None:
    from dataclasses import fields

    from benchmarl.algorithms import algorithm_config_registry
    from benchmarl.experiment import ExperimentConfig

    experiment_fields = {f.name for f in fields(ExperimentConfig)}
    for algorithm in marl_run.ALGORITHMS:
        algorithm_fields = {f.name for f in fields(algorithm_config_registry[algorithm])}
        for settings in marl_run.SETTINGS:
            if settings in marl_run.FACTORS and algorithm not in marl_run.FACTORS[settings].algorithms:
                continue
            plan = marl_run.plan_settings(settings, algorithm, PENDULUM, 1000)
            assert set(plan["experiment"]) <= experiment_fields, (algorithm, settings)
            assert set(plan["algorithm"]) <= algorithm_fields, (algorithm, settings)


def test_make_experiment_hooks_refuse_unknown_names(benchmarl: Any) -> None:
    from neuron_env.integrations.benchmarl import make_experiment, neuron_task

    task = neuron_task("Pendulum-v1", hidden=(2,))
    with pytest.raises(ValueError, match="'benchmarl'"):
        make_experiment(task, "mappo", settings="bench")
    with pytest.raises(AttributeError, match="MappoConfig has no attribute 'lambda'"):
        make_experiment(task, "mappo", settings="benchmarl", algorithm_overrides={"lambda": 0.9})


def test_recommended_row_configures_what_make_experiment_recommends(benchmarl: Any, tmp_path: Path,
                                                                    one_thread: None) -> None:
    from neuron_env.integrations.benchmarl import make_experiment, neuron_task

    task = neuron_task("Pendulum-v1", hidden=(2,))
    settings = marl_run.recommended_settings(task, max_task_steps=1000)
    plan = marl_run.plan_settings("recommended", "mappo", task.config, 1000)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    reference = make_experiment(task, "mappo", settings=settings, save_folder=str(tmp_path / "a"))
    row = make_experiment(task, "mappo", settings="benchmarl", save_folder=str(tmp_path / "b"),
                          experiment_overrides=plan["experiment"], algorithm_overrides=plan["algorithm"])
    ours, theirs = dict(row.config.__dict__), dict(reference.config.__dict__)
    ours.pop("save_folder"), theirs.pop("save_folder")
    assert ours == theirs and row.algorithm_config.lmbda == reference.algorithm_config.lmbda
    for experiment in (reference, row):
        experiment.close()


def test_tiny_run_one_end_to_end(benchmarl: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 one_thread: None) -> None:
    """Two tiny MAPPO iterations, evaluated by the callback, then skipped when asked again."""
    planned = marl_run.plan_settings

    def tiny(settings: str, algorithm: str, base: Any, task_steps: int) -> dict[str, Any]:
        plan = planned(settings, algorithm, base, task_steps)
        plan["experiment"].update(on_policy_collected_frames_per_batch=400, on_policy_n_envs_per_worker=2,
                                  on_policy_n_minibatch_iters=1, on_policy_minibatch_size=200, max_n_frames=800)
        plan["model_cells"] = [8]
        return plan

    monkeypatch.setattr(marl_run, "plan_settings", tiny)
    out = tmp_path / "mappo-default-s0"
    config = marl_run.RunConfig(algorithm="mappo", settings="default", hidden=(2,), task_steps=400, eval_every=200,
                            eval_episodes=2, out=str(out))
    summary = marl_run.run_one(config)
    assert summary["status"] == "completed" and summary["frames"] == 800 and summary["steps"] == 400
    assert summary["iterations"] == 2 and summary["updates"] == 2 * 2  # 1 pass over 2 minibatches per iteration
    assert summary["benchmarl_config"]["experiment"]["gamma"] == 0.99  # BenchMARL's, untouched
    assert summary["task_config"]["max_cycles"] == 400 and summary["frames_per_s"] > 0
    assert len(summary["final_eval_returns"]) == 2 and summary["cpu_time_s"] > summary["eval_cpu_s"] > 0
    with open(out / "metrics.csv", newline="") as stream:
        curve = list(csv.DictReader(stream))
    assert [int(row["step"]) for row in curve] == [200, 400]
    assert float(curve[-1]["eval_return_mean"]) == summary["final_eval_return_mean"]
    assert grid.read_run(out)["curve"][-1][0] == 400  # a grid run folder to grid.report
    metrics = (out / "metrics.csv").read_text()
    assert marl_run.run_one(config)["final_eval_return_mean"] == summary["final_eval_return_mean"]  # finished: skipped
    assert (out / "metrics.csv").read_text() == metrics


def test_exploration_is_measured_per_layer(benchmarl: Any, one_thread: None) -> None:
    result = marl_run.measure_exploration("Pendulum-v1", (2,), samples=4, states=2, algorithms=("mappo", "maddpg"))
    rows = {(row["policy"], row["settings"]): row for row in result["rows"]}
    assert result["groups"] == ["h1", "out"] and result["action_scale"] == 2.0
    assert rows[("mappo", "default")]["std"]["out"] > rows[("mappo", "noise-0.1")]["std"]["out"]
    assert rows[("maddpg", "default")]["std"]["h1"] > 0.3  # sigma 0.8, clipped to [-1, 1]
    local = rows[("feedback (local learner)", "noise_scale 0.1 on outputs, 0 on hidden")]
    assert local["std"]["h1"] == 0.0 and 0.0 < local["std"]["out"] < 0.2
    # a layer's neurons see the same voltages: a shared policy acts the same for all, unless told their index
    assert rows[("mappo", "default")]["spread"]["h1"] < 1e-6 and rows[("maddpg", "default")]["spread"]["h1"] < 1e-6
    for settings in ("agent-id", "per-neuron-policy"):
        assert rows[("mappo", settings)]["spread"]["h1"] > 0.0 and rows[("maddpg", settings)]["spread"]["h1"] > 0.0
    for algorithm in ("mappo", "maddpg"):  # unit-gain layers pass more of the task state on at init
        unit_gain, default = rows[(algorithm, "unit-gain-init")], rows[(algorithm, "default")]
        assert unit_gain["state_spread"]["h1"] > default["state_spread"]["h1"]
    assert local["spread"]["h1"] > 0.0 and local["state_spread"]["h1"] > 0.0
