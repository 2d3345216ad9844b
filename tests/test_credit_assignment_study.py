"""studies/credit_assignment.py: the paired learned-vs-frozen table, its rendering and the phases' methods."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import load_script

SCRIPT = Path(__file__).resolve().parents[1] / "studies" / "credit_assignment.py"


@pytest.fixture(scope="module")
def study():
    return load_script(SCRIPT, "credit_assignment_study")


def write_runs(folder: Path, rows: list[tuple[str, int, float | None, str]]) -> None:
    for method, seed, value, status in rows:
        run = folder / method / f"seed{seed}"
        run.mkdir(parents=True)
        (run / "summary.json").write_text(json.dumps({"status": status, "final_eval_return_mean": value}))


def test_paired_table_normalizes_against_the_means_and_pairs_by_seed(study, tmp_path: Path) -> None:
    write_runs(tmp_path, [
        ("random", 0, -1200.0, "completed"), ("random", 1, -1000.0, "completed"),
        ("sb3-ddpg", 0, -150.0, "completed"), ("sb3-ddpg", 1, -50.0, "completed"),
        ("local-feedback", 0, -100.0, "completed"), ("local-feedback", 1, -1100.0, "completed"),
        ("local-feedback-frozen", 0, -600.0, "completed"), ("local-feedback-frozen", 1, -1100.0, "completed"),
        ("local-feedback-ceiling", 0, -100.0, "completed"),
        ("local-es", 0, None, "diverged"),
    ])
    table = study.paired_table(study.collect_final_returns(tmp_path),
                               ("local-feedback", "local-feedback-frozen", "local-feedback-ceiling", "local-es"))
    assert table["random_mean"] == -1100.0 and table["reference_mean"] == -100.0
    feedback = table["rows"]["local-feedback"]
    assert feedback["normalized"] == {0: 1.0, 1: 0.0}
    assert feedback["frozen"] == {0: 0.5, 1: 0.0}
    assert feedback["difference"] == {0: 0.5, 1: 0.0}
    assert feedback["difference_mean"] == pytest.approx(0.25) and feedback["wins"] == 1
    ceiling = table["rows"]["local-feedback-ceiling"]  # paired with the feedback learner's floor, on seed 0
    assert ceiling["floor"] == "local-feedback-frozen" and ceiling["difference"] == {0: 0.5}
    assert "floor" not in table["rows"]["local-es"]  # no local-es-frozen among the methods
    assert table["rows"]["local-es"]["seeds"] == 0  # a diverged run has no final return
    text = study.render_paired(table, study.PHASES["pendulum"], "python studies/credit_assignment.py")
    assert "| local-feedback | 2 | 0.50 ± 0.50 | 0.25 ± 0.25 | 0.25 ± 0.25 | 1 of 2 | 1.000 |" in text
    assert "| local-es | 0 | n/a |" in text and "1.00 / 0.50" in text
    assert "local-feedback-ceiling with local-feedback-frozen" in text


def test_phases_run_their_own_methods_and_share_runs_where_said(study) -> None:
    config = study.StudyConfig(phase="framework", workers=1)
    compare = study.compare_config(config)
    assert compare.methods[:2] == ("random", "sb3-ddpg")
    assert set(compare.methods[2:]) == set(study.FRAMEWORK_METHODS)
    assert compare.out.endswith("pendulum") and compare.seeds == 3
    main = study.compare_config(study.StudyConfig(phase="pendulum"))
    assert "local-feedback-frozen" in main.methods and "local-es-frozen" in main.methods
    assert study.compare_config(study.StudyConfig(phase="pendulum", methods=("local-es",))).methods[2:] == (
        "local-es",)
    compare.validate()  # every method the study names is a compare method
    main.validate()



def write_compare_runs(study, config, runs: list[tuple[str, int, float]]) -> None:
    """Finished runs as compare leaves them: its identity file, a summary and a two-point curve."""
    from dataclasses import replace

    from neuron_env.baselines.compare_config import RUN_FILE, plan_runs

    compare = study.compare_config(config)
    every = replace(compare, methods=tuple(sorted({m for m, _, _ in runs})), seeds=100, first_seed=0)
    specs = {(spec.method, spec.seed): spec for spec in plan_runs(every)}
    for method, seed, value in runs:
        folder = specs[method, seed].folder(compare.out)
        folder.mkdir(parents=True)
        (folder / RUN_FILE).write_text(json.dumps(specs[method, seed].identity()))
        (folder / "summary.json").write_text(json.dumps(
            {"status": "completed", "final_eval_return_mean": value, "final_eval_return_std": 0.0,
             "steps": 20000, "wall_time_s": 1.0, "steps_per_s": 1.0}))
        (folder / "metrics.csv").write_text(f"step,eval_return_mean\n0,-1300\n20000,{value}\n")


def test_first_seed_splits_the_grid_and_the_report_covers_every_seed_below_its_end(study, tmp_path: Path) -> None:
    split = study.compare_config(study.StudyConfig(phase="pendulum", methods=("local-mlp",), seeds=3, first_seed=5))
    assert list(split.seed_range) == [5, 6, 7]
    config = study.StudyConfig(phase="pendulum", methods=("local-mlp", "local-mlp-frozen"), seeds=3, first_seed=5,
                               work=str(tmp_path / "work"), out=str(tmp_path / "out"), report_only=True)
    # seeds 0-8 of the references, the learner on 0-7 and its floor on 0-1 (as several invocations leave them)
    write_compare_runs(study, config, [
        *((method, seed, value) for seed in range(9) for method, value in (("random", -1200.0), ("sb3-ddpg", -200.0))),
        *(("local-mlp", seed, -700.0) for seed in range(8)),
        *(("local-mlp-frozen", seed, -900.0) for seed in range(2))])
    table = study.run(config)
    assert table["rows"]["local-mlp"]["seeds"] == 8  # seeds 0-7: the split's end, not only its own seeds
    page = tmp_path / "out" / "pendulum"
    assert "--first-seed 5" in (page / "paired.md").read_text(encoding="utf-8")
    # compare's files cover every finished run of seeds 0-7, whichever invocation made it
    scores = json.loads((page / "scores.json").read_text(encoding="utf-8"))["tasks"]["Pendulum-v1"]
    assert list(scores["methods"]) == ["random", "sb3-ddpg", "local-mlp", "local-mlp-frozen"]
    assert scores["methods"]["local-mlp"]["normalized_mean"] == pytest.approx(0.5)
    assert scores["methods"]["local-mlp-frozen"]["returns"] == [-900.0, -900.0]  # its seeds
    rows = (page / "results.csv").read_text(encoding="utf-8").splitlines()
    assert len(rows) == 1 + 8 + 8 + 8 + 2 and (page / "curves.png").is_file()


def test_mountain_car_phase_explores_with_sb3_ddpgs_noise_and_evaluates_less_often(study) -> None:
    compare = study.compare_config(study.StudyConfig(phase="mountain-car"))
    compare.validate()
    assert compare.tasks == ("MountainCarContinuous-v0",) and compare.local_noise == "task"
    assert compare.eval_every == 5000 and compare.steps == 50_000
    assert study.compare_config(study.StudyConfig(phase="mountain-car", eval_every=1000)).eval_every == 1000
    assert study.compare_config(study.StudyConfig(phase="pendulum")).local_noise == "own"
    table = {"random_mean": -30.0, "reference_mean": 90.0, "rows": {}}
    assert "--local-noise task" in study.render_paired(table, study.PHASES["mountain-car"], "cmd")


def test_sign_test_is_exact_two_sided_and_leaves_ties_out(study) -> None:
    assert study.sign_test_p([1.0] * 9 + [-1.0]) == pytest.approx(22 / 1024)  # 2 * (1 + 10) / 2**10
    assert study.sign_test_p([1.0] * 8 + [-1.0] * 2) == pytest.approx(2 * 56 / 1024)
    assert study.sign_test_p([0.5, 0.0, 0.0]) == 1.0  # one untied seed decides nothing
    assert study.sign_test_p([0.0, 0.0]) == 1.0 and study.sign_test_p([]) == 1.0
    assert study.sign_test_p([-1.0] * 6) == study.sign_test_p([1.0] * 6) == pytest.approx(2 / 64)
