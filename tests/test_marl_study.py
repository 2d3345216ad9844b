"""studies/marl.py: the plan, the commands, the settings, resumability and the report (fast, no BenchMARL).

The tests at the end need BenchMARL (``make test-marl`` runs this file in ``.venv-marl``): a tiny
``run-one`` end to end, the settings against BenchMARL's own config classes, and the exploration
measurement. In the main venv they are skipped.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import pickle
import stat
import sys
from pathlib import Path
from typing import Any

import pytest

from neuron_env.cli import build_parser

REPO = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("marl_study", REPO / "studies" / "marl.py")
marl = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
sys.modules["marl_study"] = marl
spec.loader.exec_module(marl)  # type: ignore[union-attr]
grid = sys.modules["grid"]  # the generic runner marl imports (studies/grid.py)

PENDULUM = {"delay": 3, "max_cycles": 600, "task_episode_steps": 200}


# ---------------------------------------------------------------------------------- plan and commands
def test_every_algorithm_has_a_default_and_a_recommended_row_in_the_main_phases() -> None:
    for name in ("pendulum-8-8", "mountaincar-8-8"):
        phase = marl.PHASES[name]
        assert phase.reference == "sb3-ddpg" and phase.reference in phase.methods and phase.seeds == (0, 1, 2)
        assert phase.hidden == (8, 8) and phase.steps == 100_000 and phase.eval_episodes == 20
        rows = {marl.parse_row(m) for m in phase.methods} - {None}
        assert rows == {(a, s) for a in marl.ALGORITHMS for s in ("default", "recommended")}
    assert set(marl.PHASES["pendulum-8-8"].methods) >= {"sb3-ddpg", "feedback", "feedback-frozen"}
    assert set(marl.FLOORS.values()) <= set(marl.METHODS) and set(marl.FLOORS) <= set(marl.METHODS)
    assert marl.FLOORS["mappo-recommended"] == "mappo-default"


def test_the_factor_phase_changes_one_setting_per_row_on_one_seed() -> None:
    phase = marl.PHASES["pendulum-8-8-factors"]
    assert phase.seeds == (0,)
    rows = [marl.parse_row(m) for m in phase.methods if marl.parse_row(m)]
    assert {a for a, _ in rows} == set(marl.FACTOR_ALGORITHMS)
    assert ("mappo", "lmbda-per-tick") in rows and ("maddpg", "lmbda-per-tick") not in rows  # PPO only
    assert ("masac", "no-state") in rows and ("isac", "no-state") not in rows
    assert marl.SHARES["pendulum-8-8-factors"] == "pendulum-8-8"


def test_the_algorithms_flag_narrows_the_factor_phase_only() -> None:
    config = marl.MarlConfig(phase="pendulum-8-8-factors", algorithms=("ippo",))
    methods = marl.phase_of(marl.STUDY, config).methods
    assert {marl.parse_row(m)[0] for m in methods if marl.parse_row(m)} == {"ippo"}
    assert "sb3-ddpg" in methods and "ippo-lmbda-per-tick" in methods
    main = marl.MarlConfig(phase="pendulum-8-8", algorithms=("ippo",), task_steps=600, eval_every=300)
    phase = marl.phase_of(marl.STUDY, main)
    assert phase.methods == marl.PHASES["pendulum-8-8"].methods and (phase.steps, phase.eval_every) == (600, 300)


@pytest.mark.parametrize("phase_name", list(marl.PHASES))
def test_every_grid_row_command_parses(phase_name: str, tmp_path: Path) -> None:
    phase = marl.PHASES[phase_name]
    parser = build_parser()
    for method, seed in phase.planned():
        if marl.parse_row(method):
            continue
        command = grid.run_command(marl.STUDY, phase, method, seed, tmp_path / "x", ["neuron-env"])
        assert command[command.index("--hidden") + 1:command.index("--hidden") + 3] == ["8", "8"]
        parser.parse_args(command[1:])  # exits (SystemExit) on a flag the command does not have


def test_run_one_command_round_trips_into_its_config(tmp_path: Path) -> None:
    phase = marl.PHASES["pendulum-8-8-factors"]
    command = marl.run_one_command(phase, "maddpg-noise-0.1", 0, tmp_path / "run", "/venv/bin/python")
    assert command[:3] == ["/venv/bin/python", str(marl.SCRIPT), "run-one"]
    config = marl.run_config(command[3:])
    assert (config.algorithm, config.settings, config.task, config.hidden) == ("maddpg", "noise-0.1", "Pendulum-v1",
                                                                              (8, 8))
    assert (config.task_steps, config.seed, config.eval_every, config.eval_episodes) == (100_000, 0, 10_000, 20)
    assert config.out == str(tmp_path / "run")
    with pytest.raises(ValueError, match="not a BenchMARL row"):
        marl.run_one_command(phase, "sb3-ddpg", 0, tmp_path, "python")


def test_study_flags_build_the_config() -> None:
    config = marl.study_config(["--phase", "mountaincar-8-8", "--task-steps", "600", "--eval-every", "600",
                                "--marl-python", "/m/python", "--workers", "2", "--methods", "mappo-default"])
    assert (config.phase, config.task_steps, config.eval_every, config.marl_python, config.workers) == (
        "mountaincar-8-8", 600, 600, "/m/python", 2)
    assert config.methods == ("mappo-default",) and config.marl_python == "/m/python"
    assert marl.MarlConfig().marl_python.endswith(".venv-marl/bin/python")


# ---------------------------------------------------------------------------------- settings
def test_default_sets_only_the_budget_in_whole_batches() -> None:
    plan = marl.plan_settings("default", "mappo", PENDULUM, 100_000)
    assert plan["task"] == {} and plan["algorithm"] == {} and plan["model_cells"] is None
    assert plan["experiment"] == {"max_n_frames": 300_000, "max_n_iters": None}
    assert marl.plan_settings("default", "isac", PENDULUM, 600)["experiment"]["max_n_frames"] == 6000  # one batch


def test_recommended_is_the_integrations_settings() -> None:
    recommended = marl.recommended_settings(PENDULUM, max_task_steps=100_000)
    mappo = marl.plan_settings("recommended", "mappo", PENDULUM, 100_000)
    assert mappo["experiment"] == recommended.experiment_fields() and mappo["algorithm"] == {"lmbda": recommended.lmbda}
    assert marl.plan_settings("recommended", "masac", PENDULUM, 100_000)["algorithm"] == {}  # no lmbda there
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
])
def test_each_factor_changes_one_setting_from_the_default(settings: str, algorithm: str, where: str,
                                                          changed: dict[str, Any]) -> None:
    plan = marl.plan_settings(settings, algorithm, PENDULUM, 100_000)
    default = marl.plan_settings("default", algorithm, PENDULUM, 100_000)
    for key in ("task", "experiment", "algorithm"):
        extra = {k: v for k, v in plan[key].items() if default[key].get(k) != v}
        assert extra == (pytest.approx(changed) if key == where else {}), key
    assert marl.plan_settings("width-64", algorithm, PENDULUM, 100_000)["model_cells"] == [64, 64]


def test_settings_refuse_what_does_not_exist() -> None:
    with pytest.raises(ValueError, match="only for"):
        marl.plan_settings("lmbda-per-tick", "maddpg", PENDULUM, 1000)
    with pytest.raises(ValueError, match="not one of"):
        marl.plan_settings("fast", "mappo", PENDULUM, 1000)
    with pytest.raises(ValueError, match="not one of"):
        marl.plan_settings("default", "qmix", PENDULUM, 1000)


# ---------------------------------------------------------------------------------- resumability
def write_run(folder: Path, final: float, steps: int = 100_000, marl_row: bool = False, status: str = "completed",
              curve: tuple[float, ...] = (-1000.0,)) -> None:
    """A fake run folder: summary.json and metrics.csv as either kind of run writes them."""
    folder.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {"status": status, "final_eval_return_mean": final, "steps": steps, "updates": 10,
                               "wall_time_s": 100.0}
    if marl_row:
        algorithm = folder.name.partition("-")[0]
        summary.update(task_steps_budget=steps, frames=3 * steps, frames_per_s=3 * steps / 90.0, algorithm=algorithm,
                       task_config={"max_cycles": 600},
                       benchmarl_config={"experiment": {"gamma": 0.99, "on_policy_collected_frames_per_batch": 6000,
                                                        "off_policy_collected_frames_per_batch": 6000}})
    (folder / "summary.json").write_text(json.dumps(summary))
    with open(folder / "metrics.csv", "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["step", "eval_return_mean"])
        for index, value in enumerate((*curve, final), 1):
            writer.writerow([index * steps // (len(curve) + 1), value])


FAKE_RUN_ONE = """#!{python}
import json, sys
from pathlib import Path
args = sys.argv[1:]
out = Path(args[args.index("--out") + 1])
with open(Path({log!r}), "a") as log:
    log.write(out.name + "\\n")
if "ippo" in args:
    sys.exit(3)
steps = int(args[args.index("--task-steps") + 1])
(out / "summary.json").write_text(json.dumps({{"status": "completed", "final_eval_return_mean": -1.0,
                                               "task_steps_budget": steps, "steps": steps}}))
"""


def fake_marl_python(tmp_path: Path) -> tuple[str, Path]:
    """An executable standing in for BenchMARL's interpreter: it records the runs it is asked for."""
    log = tmp_path / "invoked.txt"
    script = tmp_path / "fake-python"
    script.write_text(FAKE_RUN_ONE.format(python=sys.executable, log=str(log)))
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script), log


def test_finished_runs_are_skipped_and_a_failure_deletes_nothing(tmp_path: Path) -> None:
    python, log = fake_marl_python(tmp_path)
    config = marl.MarlConfig(phase="pendulum-8-8", work=str(tmp_path / "work"), marl_python=python, task_steps=600,
                             seeds=(0,), methods=("mappo-default", "mappo-recommended", "ippo-default"))
    phase = marl.phase_of(marl.STUDY, config)
    work = tmp_path / "work" / "pendulum-8-8"
    write_run(work / "mappo-default-s0", -200.0, steps=600, marl_row=True)
    write_run(work / "ippo-default-s0", -200.0, steps=600, marl_row=True, status="running")
    failures = marl.run_marl_rows(phase, config, marl.selected(phase, config))
    assert sorted(log.read_text().split()) == ["ippo-default-s0", "mappo-recommended-s0"]  # not the finished one
    assert len(failures) == 1 and "ippo-default seed 0" in failures[0]
    assert json.loads((work / "mappo-default-s0" / "summary.json").read_text())["final_eval_return_mean"] == -200.0
    assert marl.run_completed(work / "mappo-recommended-s0", 600)
    assert (work / "mappo-recommended-s0" / "run.log").is_file()
    assert not marl.run_completed(work / "ippo-default-s0")
    log.unlink()
    assert marl.run_marl_rows(phase, config, marl.selected(phase, config))  # the failed one only, again
    assert log.read_text().split() == ["ippo-default-s0"]


def test_run_one_skips_a_finished_run_and_never_clears_one(tmp_path: Path) -> None:
    folder = tmp_path / "mappo-default-s0"
    write_run(folder, -300.0, steps=600, marl_row=True)
    config = marl.RunConfig(task_steps=600, out=str(folder))
    assert marl.run_one(config)["final_eval_return_mean"] == -300.0  # no BenchMARL needed to skip
    with pytest.raises(RuntimeError, match="never cleared"):
        marl.clear_unfinished(folder)
    unfinished = tmp_path / "unfinished"
    write_run(unfinished, -300.0, status="running")
    (unfinished / "benchmarl").mkdir()
    marl.clear_unfinished(unfinished)
    assert not (unfinished / "benchmarl").exists() and not (unfinished / "summary.json").exists()


def test_a_finished_run_of_another_budget_stops_the_study(tmp_path: Path) -> None:
    config = marl.MarlConfig(phase="pendulum-8-8", work=str(tmp_path), seeds=(0,), methods=("feedback",))
    write_run(tmp_path / "pendulum-8-8" / "feedback-s0", -150.0, steps=600)
    with pytest.raises(SystemExit, match="another budget"):
        marl.run_study_phase(config)
    assert (tmp_path / "pendulum-8-8" / "feedback-s0" / "summary.json").is_file()


def test_the_factor_phase_copies_matching_finished_runs(tmp_path: Path) -> None:
    write_run(tmp_path / "pendulum-8-8" / "mappo-default-s0", -900.0, marl_row=True)
    write_run(tmp_path / "pendulum-8-8" / "sb3-ddpg-s0", -150.0)
    write_run(tmp_path / "pendulum-8-8" / "ippo-default-s0", -900.0, marl_row=True)  # not a factor-phase row
    config = marl.MarlConfig(phase="pendulum-8-8-factors", work=str(tmp_path))
    copied = marl.share_runs(marl.study_for(config), config)
    assert sorted(f.name for f in copied) == ["mappo-default-s0", "sb3-ddpg-s0"]
    assert marl.run_completed(tmp_path / "pendulum-8-8-factors" / "mappo-default-s0", 100_000)
    smoke = marl.MarlConfig(phase="pendulum-8-8-factors", work=str(tmp_path), task_steps=600)
    write_run(tmp_path / "pendulum-8-8" / "maddpg-default-s0", -900.0, steps=600, marl_row=True)
    # at 600 task steps only the run of that budget is copied; the 100 000-step ones are not
    copied = marl.share_runs(marl.study_for(smoke), smoke)
    assert [f.name for f in copied] == ["maddpg-default-s0"]


def test_evaluator_pickles_without_its_experiment(tmp_path: Path) -> None:
    evaluator = marl.Evaluator(PENDULUM, 0, 1000, 2, tmp_path / "metrics.csv")
    evaluator.experiment, evaluator._env = object(), object()
    copy = pickle.loads(pickle.dumps(evaluator))
    assert copy.experiment is None and copy._env is None and copy.every == 1000 and copy.max_ticks == 600


# ---------------------------------------------------------------------------------- report
def test_report_normalizes_both_kinds_of_run_and_lists_frames_per_second(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    work, out = tmp_path / "work", tmp_path / "out"
    phase = "pendulum-8-8"
    finals = {"sb3-ddpg": -200.0, "feedback": -150.0, "feedback-frozen": -1100.0, "mappo-default": -1300.0,
              "mappo-recommended": -700.0}
    for seed in (0, 1, 2):
        for method, final in finals.items():
            if seed < 2:
                write_run(work / phase / f"{method}-s{seed}", final + seed, marl_row=bool(marl.parse_row(method)))
        random = work / phase / "random" / "runs" / "Pendulum-v1" / "random" / f"seed{seed}"
        random.mkdir(parents=True)
        (random / "summary.json").write_text(json.dumps({"final_eval_return_mean": -1200.0 + seed}))
    config = marl.MarlConfig(phase=phase, work=str(work), out=str(out), seeds=(0, 1), report_only=True)
    result = marl.report_phase(config)
    rows = {row["method"]: row for row in result["rows"]}
    assert rows["sb3-ddpg"]["normalized"] == [pytest.approx(1.0)] * 2
    assert rows["mappo-recommended"]["normalized"] == [pytest.approx(0.5)] * 2
    assert rows["mappo-recommended"]["floor"] == "mappo-default"
    assert rows["mappo-recommended"]["learned_minus_floor"] == [pytest.approx(0.6)] * 2
    assert rows["feedback"]["floor"] == "feedback-frozen"
    assert {"table.md", "table.json", "curves.png", "runs.md", "runs.json"} <= {p.name for p in (out / phase).iterdir()}
    runs = (out / phase / "runs.md").read_text()
    assert "`mappo-default` | 0 |" in runs and "3333.3" in runs  # frames/s of a BenchMARL row (300 000 / 90 s)
    assert "run-one --algorithm mappo --settings default" in runs


def test_main_report_only_runs_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    called: list[str] = []
    monkeypatch.setattr(marl, "run_study_phase", lambda config: called.append("run") or [])
    monkeypatch.setattr(marl, "report_phase", lambda config: called.append("report") or {})
    assert marl.main(["--phase", "pendulum-8-8", "--report-only", "--work", str(tmp_path)]) == 0
    assert called == ["report"]


def test_noise_table_renders() -> None:
    result = {"task": "Pendulum-v1", "hidden": [8, 8], "delay": 3, "samples": 4, "states": 2, "action_scale": 2.0,
              "groups": ["h1", "h2", "out"],
              "rows": [{"policy": "mappo", "settings": "default", "std": {"h1": 0.5, "h2": 0.6, "out": 0.7},
                        "task_action_std": 1.4}]}
    text = marl.render_noise(result)
    assert "| mappo | default | 0.500 | 0.600 | 0.700 | 1.400 |" in text


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

    returns = marl.evaluate_policy(policy, env, evaluation_seed(4), 400)
    core = NeuronVecEnv("Pendulum-v1", topology, num_envs=3)
    core.reset(seed=evaluation_seed(4))
    expected = torch.zeros(3, dtype=torch.float64)
    for _ in range(400):
        step = core.step(torch.full((3, topology.num_agents), 0.25))
        if step.task_stepped:
            expected += step.reward.double()
    assert returns == pytest.approx(expected.numpy(), rel=1e-5)
    with pytest.raises(RuntimeError, match="did not end"):
        marl.evaluate_policy(policy, env, 0, 10)


@pytest.fixture
def benchmarl() -> Any:
    return pytest.importorskip("benchmarl")  # imports torchvision: needs a matching torch/torchvision pair


def test_settings_name_real_benchmarl_fields(benchmarl: Any) -> None:
    from dataclasses import fields

    from benchmarl.algorithms import algorithm_config_registry
    from benchmarl.experiment import ExperimentConfig

    experiment_fields = {f.name for f in fields(ExperimentConfig)}
    for algorithm in marl.ALGORITHMS:
        algorithm_fields = {f.name for f in fields(algorithm_config_registry[algorithm])}
        for settings in marl.SETTINGS:
            if settings in marl.FACTORS and algorithm not in marl.FACTORS[settings].algorithms:
                continue
            plan = marl.plan_settings(settings, algorithm, PENDULUM, 1000)
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
    settings = marl.recommended_settings(task, max_task_steps=1000)
    plan = marl.plan_settings("recommended", "mappo", task.config, 1000)
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
    planned = marl.plan_settings

    def tiny(settings: str, algorithm: str, base: Any, task_steps: int) -> dict[str, Any]:
        plan = planned(settings, algorithm, base, task_steps)
        plan["experiment"].update(on_policy_collected_frames_per_batch=400, on_policy_n_envs_per_worker=2,
                                  on_policy_n_minibatch_iters=1, on_policy_minibatch_size=200, max_n_frames=800)
        plan["model_cells"] = [8]
        return plan

    monkeypatch.setattr(marl, "plan_settings", tiny)
    out = tmp_path / "mappo-default-s0"
    config = marl.RunConfig(algorithm="mappo", settings="default", hidden=(2,), task_steps=400, eval_every=200,
                            eval_episodes=2, out=str(out))
    summary = marl.run_one(config)
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
    assert marl.run_one(config)["final_eval_return_mean"] == summary["final_eval_return_mean"]  # finished: skipped
    assert (out / "metrics.csv").read_text() == metrics


def test_exploration_is_measured_per_layer(benchmarl: Any, one_thread: None) -> None:
    result = marl.measure_exploration("Pendulum-v1", (2,), samples=4, states=2, algorithms=("mappo", "maddpg"))
    rows = {(row["policy"], row["settings"]): row for row in result["rows"]}
    assert result["groups"] == ["h1", "out"] and result["action_scale"] == 2.0
    assert rows[("mappo", "default")]["std"]["out"] > rows[("mappo", "noise-0.1")]["std"]["out"]
    assert rows[("maddpg", "default")]["std"]["h1"] > 0.3  # sigma 0.8, clipped to [-1, 1]
    local = rows[("feedback (local learner)", "noise_scale 0.1 on outputs, 0 on hidden")]
    assert local["std"]["h1"] == 0.0 and 0.0 < local["std"]["out"] < 0.2
