"""Normalized scores, curves and the report writers of ``neuron-env compare`` on hand-made numbers."""

from __future__ import annotations

import json
import math

import pytest
from neuron_env.baselines.compare import (
    CompareConfig,
    command_line,
    compute_scores,
    mean_curve,
    parse_assignments,
    render_scores_md,
    write_reports,
)
from neuron_env.baselines.errors import BaselineConfigError
from neuron_env.baselines.normalize import (
    first_step_reaching,
    format_score,
    normalize_task,
    normalized_score,
)


def test_normalized_scores_on_hand_made_numbers():
    result = normalize_task({
        "random": [-1200.0, -1400.0],          # mean -1300 -> 0
        "sb3-ddpg": [-200.0, -400.0],          # mean -300 -> 1
        "local-mlp": [-300.0, -800.0],         # (R + 1300) / 1000 -> 1.0, 0.5
    })
    assert result.random_mean == -1300.0 and result.reference_mean == -300.0
    local = result.methods["local-mlp"]
    assert local.normalized == pytest.approx([1.0, 0.5])
    assert local.mean == pytest.approx(0.75) and local.std == pytest.approx(0.25) and local.best == pytest.approx(1.0)
    assert local.return_mean == -550.0 and local.return_std == 250.0
    assert result.methods["random"].mean == pytest.approx(0.0)
    assert result.methods["random"].normalized == pytest.approx([0.1, -0.1])  # per seed against the mean
    assert result.methods["sb3-ddpg"].mean == pytest.approx(1.0)
    assert result.notes == [] and not result.degenerate


def test_positive_rewards_and_custom_baseline_names():
    result = normalize_task({"rnd": [10.0], "ref": [110.0], "x": [60.0, 160.0]}, random="rnd", reference="ref")
    assert result.methods["x"].normalized == pytest.approx([0.5, 1.5])
    assert normalized_score(60.0, 10.0, 110.0) == pytest.approx(0.5)


def test_reference_equal_to_random_gives_nan_and_a_note():
    result = normalize_task({"random": [5.0, 7.0], "sb3-ddpg": [6.0, 6.0], "local-linear": [8.0]})
    assert result.degenerate
    assert all(math.isnan(v) for v in result.methods["local-linear"].normalized)
    assert math.isnan(result.methods["local-linear"].mean) and math.isnan(result.methods["local-linear"].best)
    assert result.methods["local-linear"].return_mean == 8.0  # raw returns are still reported
    assert any("zero denominator" in note for note in result.notes)
    assert format_score(result.methods["local-linear"].mean, result.methods["local-linear"].std) == "n/a"


def test_missing_baselines_and_failed_seeds():
    result = normalize_task({"local-mlp": [1.0, None, float("nan")]})
    assert result.degenerate and math.isnan(result.random_mean) and math.isnan(result.reference_mean)
    assert result.methods["local-mlp"].returns == [1.0]
    joined = " ".join(result.notes)
    assert "no finished random run" in joined and "no finished sb3-ddpg run" in joined
    assert "2 of 3 seeds have no final return" in joined
    empty = normalize_task({"random": [0.0], "sb3-ddpg": [1.0], "local-mlp": [None]})
    assert empty.methods["local-mlp"].normalized == [] and math.isnan(empty.methods["local-mlp"].mean)


def test_reference_below_random_is_computed_with_a_note():
    result = normalize_task({"random": [0.0], "sb3-ddpg": [-10.0], "local-mlp": [-5.0]})
    assert result.methods["local-mlp"].mean == pytest.approx(0.5)
    assert any("below random" in note for note in result.notes)


def test_first_step_reaching_and_format():
    assert first_step_reaching([1000, 2000, 3000], [-900.0, -180.0, -150.0], -200.0) == 2000
    assert first_step_reaching([1000, 2000], [-900.0, -800.0], -200.0) is None
    assert first_step_reaching([1000, 2000], [float("nan"), -200.0], -200.0) == 2000
    assert format_score(0.934, 0.051) == "0.93 ± 0.05" and format_score(12.0, None, digits=1) == "12.0"


def test_mean_curve_aligns_on_common_steps():
    curve = mean_curve([([100, 200, 300], [1.0, 2.0, 3.0]), ([100, 200], [3.0, 4.0]), ([], [])])
    assert curve == {"steps": [100, 200], "mean": [2.0, 3.0], "std": [1.0, 1.0], "seeds": 2}
    assert mean_curve([]) == {"steps": [], "mean": [], "std": [], "seeds": 0}


def test_parse_assignments():
    assert parse_assignments(["Pendulum-v1=-200", "Hopper-v5=1e3"], float, "--threshold") == {
        "Pendulum-v1": -200.0, "Hopper-v5": 1000.0}
    assert parse_assignments(None, int, "--task-steps") == {}
    with pytest.raises(BaselineConfigError, match="TASK=VALUE"):
        parse_assignments(["Pendulum-v1"], float, "--threshold")
    with pytest.raises(BaselineConfigError, match="not a valid value"):
        parse_assignments(["Pendulum-v1=many"], int, "--task-steps")


@pytest.mark.parametrize(("changes", "match"), [
    ({"methods": ("random", "ppo")}, "unknown"),
    ({"tasks": ()}, "tasks is empty"),
    ({"steps": 0}, "steps=0"),
    ({"workers": 0}, "workers=0"),
    ({"activation": "gelu"}, "activation"),
    ({"thresholds": {"Hopper-v5": 1.0}}, "not among tasks"),
    ({"task_steps": {"Pendulum-v1": 0}}, "task_steps"),
    ({"reference": "random"}, "reference"),
    ({"learning_starts": -1}, "learning_starts"),
])
def test_config_errors(changes, match):
    with pytest.raises(BaselineConfigError, match=match):
        CompareConfig(**changes).validate()


def _rows(task: str, values: dict[str, list[float | None]]) -> list[dict]:
    rows = []
    for method, per_seed in values.items():
        for seed, value in enumerate(per_seed):
            rows.append({"task": task, "method": method, "seed": seed,
                         "final_eval_mean": "" if value is None else value, "final_eval_std": 0.0, "steps": 100,
                         "wall_time_s": 1.0, "steps_per_s": 100.0,
                         "status": "completed" if value is not None else "failed", "error": ""})
    return rows


def test_reports_on_degenerate_numbers_do_not_crash(tmp_path):
    pytest.importorskip("matplotlib")
    config = CompareConfig(tasks=("Pendulum-v1", "Hopper-v5"), methods=("random", "sb3-ddpg", "local-linear"),
                           seeds=2, out=str(tmp_path), thresholds={"Pendulum-v1": -200.0})
    rows = _rows("Pendulum-v1", {"random": [-1000.0, -1200.0], "sb3-ddpg": [-150.0, -250.0],
                                 "local-linear": [-600.0, None]})
    rows += _rows("Hopper-v5", {"random": [5.0, 5.0], "sb3-ddpg": [5.0, 5.0], "local-linear": [7.0, 9.0]})
    scores = compute_scores(config, rows)
    pendulum = scores["tasks"]["Pendulum-v1"]["methods"]["local-linear"]
    assert pendulum["normalized"] == pytest.approx([(-600 + 1100) / 900])
    assert pendulum["status_counts"] == {"completed": 1, "failed": 1}
    assert math.isnan(scores["tasks"]["Hopper-v5"]["methods"]["local-linear"]["normalized_mean"])
    text = render_scores_md(config, scores, {"cpu_count": 2, "torch": "x", "python": "3", "platform": "p",
                                             "date": "today"}, command_line(config))
    assert "| Hopper-v5 | 20000 | n/a | n/a | n/a |" in text
    assert "zero denominator" in text and "not in 20000" in text
    document = write_reports(config, rows)  # no run folders: empty curves, still a figure
    assert (tmp_path / "curves.png").stat().st_size > 1000
    stored = json.loads((tmp_path / "scores.json").read_text())
    assert stored["tasks"]["Hopper-v5"]["methods"]["local-linear"]["normalized_mean"] is None  # NaN -> null
    assert stored["command"] == document["command"].strip() and stored["command"].startswith("neuron-env compare")


def test_first_seed_moves_the_grid_and_the_command_and_a_negative_one_is_refused() -> None:
    from neuron_env.baselines.compare_config import plan_runs

    config = CompareConfig(tasks=("Pendulum-v1",), methods=("random", "local-feedback"), seeds=2, first_seed=3,
                           out="runs/x")
    config.validate()
    assert [(spec.seed, spec.method) for spec in plan_runs(config)] == [
        (3, "random"), (3, "local-feedback"), (4, "random"), (4, "local-feedback")]
    assert "--seeds 2 --first-seed 3" in command_line(config)
    assert "--first-seed" not in command_line(CompareConfig(out="runs/x"))
    with pytest.raises(BaselineConfigError, match="first_seed=-1 must be >= 0"):
        CompareConfig(first_seed=-1, out="runs/x").validate()


def test_curve_styles_pair_each_learner_with_its_dashed_frozen_control() -> None:
    from neuron_env.baselines.report import curve_styles

    styles = curve_styles(["random", "sb3-ddpg", "local-feedback", "local-feedback-frozen", "local-es-frozen"])
    assert styles["random"] == ("grey", "--")
    assert styles["local-feedback-frozen"] == (styles["local-feedback"][0], "--")
    assert styles["local-feedback"][1] == "-" and styles["local-feedback"][0] != styles["sb3-ddpg"][0]
    assert styles["local-es-frozen"][1] == "-"  # without its learner it is a method of its own
    many = curve_styles([f"local-m{i}" for i in range(12)])
    assert len({color for color, _ in many.values()}) == 12  # past ten methods: tab20, no repeats


def test_local_noise_task_gives_local_runs_sb3_ddpgs_noise_and_keeps_old_runs_reusable() -> None:
    from neuron_env.baselines.compare_config import plan_runs, task_noise_options

    assert task_noise_options("MountainCarContinuous-v0") == {"noise": "ou", "noise_scale": 0.5}
    assert task_noise_options("Pendulum-v1") == {"noise": "gaussian", "noise_scale": 0.1}
    config = CompareConfig(tasks=("MountainCarContinuous-v0",), methods=("random", "sb3-ddpg", "local-feedback"),
                           seeds=1, out="runs/x", local_noise="task")
    config.validate()
    specs = {spec.method: spec for spec in plan_runs(config)}
    assert specs["local-feedback"].identity()["local_noise"] == "task"
    # only local runs carry it, and "own" leaves the identity as it was before the option existed
    assert "local_noise" not in specs["sb3-ddpg"].identity()
    own = {spec.method: spec for spec in plan_runs(CompareConfig(tasks=config.tasks, methods=config.methods,
                                                                 seeds=1, out="runs/x"))}
    assert "local_noise" not in own["local-feedback"].identity()
    assert "--local-noise task" in command_line(config) and "--local-noise" not in command_line(CompareConfig())


@pytest.mark.parametrize(("changes", "match"), [
    ({"local_noise": "zoo"}, "local_noise 'zoo' is unknown"),
    ({"local_noise": "task", "methods": ("random", "local-feedback", "local-es")}, r"\['local-es'\] do not use"),
    ({"local_noise": "task", "methods": ("local-coagent-frozen",)}, "local-coagent-frozen"),
])
def test_local_noise_errors_name_the_value_and_the_methods(changes, match) -> None:
    with pytest.raises(BaselineConfigError, match=match):
        CompareConfig(**changes).validate()
