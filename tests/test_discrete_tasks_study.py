"""studies/discrete_tasks.py: training averages from episodes.csv, the per-task table and its page."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from neuron_env.run_output import EPISODES_COLUMNS, write_csv
from tests.conftest import load_script

SCRIPT = Path(__file__).resolve().parents[1] / "studies" / "discrete_tasks.py"


@pytest.fixture(scope="module")
def study():
    return load_script(SCRIPT, "discrete_tasks_study")


def write_run(folder: Path, method: str, seed: int, final: float | None, episodes: list[float] | None,
              status: str = "completed") -> None:
    run = folder / method / f"seed{seed}"
    run.mkdir(parents=True)
    (run / "summary.json").write_text(json.dumps({"status": status, "final_eval_return_mean": final,
                                                  "steps_per_s": 100.0}))
    if episodes is not None:
        write_csv(run / "episodes.csv", [{"step": 10 * (i + 1), "return": r, "length": 10}
                                         for i, r in enumerate(episodes)], EPISODES_COLUMNS)


def test_training_average_takes_the_first_episodes_only(study, tmp_path: Path) -> None:
    write_run(tmp_path, "local-es", 0, 50.0, [10.0, 20.0, 30.0, 1000.0])
    assert study.training_average(tmp_path / "local-es" / "seed0", first_episodes=3) == (20.0, 3)
    assert study.training_average(tmp_path / "local-es" / "seed0", first_episodes=10) == (265.0, 4)
    write_run(tmp_path, "random", 0, 20.0, None)
    assert study.training_average(tmp_path / "random" / "seed0", 10) is None


def test_task_table_normalizes_against_random_and_dqn_and_skips_failed_and_extra_seeds(study, tmp_path: Path) -> None:
    write_run(tmp_path, "random", 0, 20.0, None)
    write_run(tmp_path, "random", 1, 20.0, None)
    write_run(tmp_path, "random", 2, 20.0, None)
    write_run(tmp_path, "sb3-dqn", 0, 500.0, [10.0, 30.0])
    write_run(tmp_path, "sb3-dqn", 1, 300.0, [20.0])
    write_run(tmp_path, "sb3-dqn", 2, 400.0, [20.0])
    write_run(tmp_path, "local-feedback", 0, 220.0, [40.0, 60.0])
    write_run(tmp_path, "local-feedback", 1, None, [5.0], status="diverged")
    write_run(tmp_path, "local-feedback", 2, 900.0, [1.0], status="failed")
    write_run(tmp_path, "local-feedback", 3, 400.0, [1.0])  # seed 3 is outside --seeds 3
    runs = study.collect_runs(tmp_path, seeds=3, first_episodes=1000)
    assert sorted(runs["local-feedback"]) == [0, 1]  # a diverged run finished; failed and out-of-range are not runs
    assert runs["local-feedback"][1]["diverged"] and runs["local-feedback"][1]["final"] is None
    # local-es never ran: it has no row and does not empty the table; seed 2 lacks local-feedback
    assert study.complete_seeds(runs, ("random", "sb3-dqn", "local-feedback", "local-es")) == [0, 1]
    table = study.task_table(runs, ("random", "sb3-dqn", "local-feedback", "local-es"))
    assert table["seeds"] == [0, 1] and table["random_mean"] == 20.0 and table["reference_mean"] == 400.0
    dqn, feedback = table["rows"]["sb3-dqn"], table["rows"]["local-feedback"]
    assert dqn["seeds"] == 2 and dqn["normalized"] == (pytest.approx(1.0), pytest.approx(100 / 380))
    assert dqn["training"] == (20.0, 0.0) and dqn["diverged"] == []
    # the diverged seed is named, not averaged: the row is seed 0's
    assert feedback["seeds"] == 1 and feedback["diverged"] == [1] and list(feedback["per_seed"]) == [0]
    assert feedback["normalized"] == (pytest.approx(200 / 380), 0.0)
    assert feedback["training"] == (50.0, 0.0) and feedback["episodes"] == (2.0, 0.0)
    assert table["rows"]["local-es"]["seeds"] == 0
    config = study.StudyConfig(tasks=("CartPole-v1",), seeds=3)
    text = study.render({"CartPole-v1": table}, config, "python studies/discrete_tasks.py --seeds 3")
    assert "### CartPole-v1, 50 000 task steps" in text and "every method finished: 0, 1." in text
    assert "| local-feedback | 1 | 220.0 ± 0.0 | 0.53 ± 0.00 | 50.0 ± 0.0 | 2 | 100 |" in text
    assert "local-feedback diverged on seed(s) 1:" in text and "other 1 seed(s)" in text
    assert "| random | 2 | 20.0 ± 0.0 | 0.00 ± 0.00 | — | — | 100 |" in text
    assert "local-es" not in text  # a method without runs has no row
    assert "*Weight Maximization (published)* | 10 | | | 390.4 ± 43.2 | 1000 |" in text


def test_the_study_compares_every_learner_with_dqn_on_weight_maximizations_network(study) -> None:
    compare = study.compare_config(study.StudyConfig(workers=1))
    assert compare.tasks == ("CartPole-v1", "Acrobot-v1") and compare.hidden == (64, 32)
    assert compare.methods[:2] == ("random", "sb3-dqn") and compare.seeds == 5
    assert compare.task_steps == {"CartPole-v1": 50_000, "Acrobot-v1": 100_000}
    assert study.compare_config(study.StudyConfig(tasks=("CartPole-v1",))).task_steps == {"CartPole-v1": 50_000}


def test_main_parses_task_steps_and_refuses_a_malformed_pair(study, tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        study.main(["--task-steps", "CartPole-v1", "--report-only", "--work", str(tmp_path)])
    assert exit_info.value.code == 2 and "TASK=STEPS" in capsys.readouterr().err
    with pytest.raises(FileNotFoundError, match="run the study first"):
        study.main(["--task-steps", "CartPole-v1=100", "--report-only", "--work", str(tmp_path),
                    "--out", str(tmp_path / "out")])


def test_report_only_writes_the_table_and_the_curves_from_the_runs(study, tmp_path: Path, capsys) -> None:
    folder = tmp_path / "work" / "runs" / "CartPole-v1"
    write_run(folder, "random", 0, 20.0, None)
    write_run(folder, "sb3-dqn", 0, 400.0, [10.0])
    write_csv(folder / "sb3-dqn" / "seed0" / "metrics.csv",
              [{"step": 100, "eval_return_mean": 50.0}, {"step": 200, "eval_return_mean": 400.0}],
              ("step", "eval_return_mean"))
    out = tmp_path / "out"
    assert study.main(["--tasks", "CartPole-v1", "--report-only", "--work", str(tmp_path / "work"),
                       "--out", str(out)]) == 0
    assert "| sb3-dqn | 1 | 400.0 ± 0.0 | 1.00 ± 0.00 | 10.0 ± 0.0 | 1 | 100 |" in capsys.readouterr().out
    assert (out / "curves.png").stat().st_size > 0
    assert json.loads((out / "table.json").read_text())["tasks"]["CartPole-v1"]["seeds"] == [0]
