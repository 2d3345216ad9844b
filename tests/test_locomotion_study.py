"""studies/locomotion.py: the plan, the commands, and the report from finished runs."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from neuron_env.cli import build_parser

REPO = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("locomotion", REPO / "studies" / "locomotion.py")
locomotion = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
sys.modules["locomotion"] = locomotion
spec.loader.exec_module(locomotion)  # type: ignore[union-attr]
grid = sys.modules["grid"]  # the generic runner locomotion imports (studies/grid.py)


def test_the_probe_plans_three_seeds_and_one_for_the_slow_diagnostic() -> None:
    phase = locomotion.PHASES["halfcheetah-probe"]
    planned = phase.planned()
    assert [s for m, s in planned if m == "feedback"] == [1, 2, 3]
    assert [s for m, s in planned if m == "backprop"] == [1]
    assert [s for m, s in planned if m == "feedback-joint-ls10k-g098"] == [1, 2, 3]
    assert set(locomotion.FLOORS.values()) <= set(locomotion.METHODS)
    assert "sb3-td3" not in phase.methods and "feedback-joint-ref" not in phase.methods


@pytest.mark.parametrize("method", list(locomotion.METHODS))
def test_every_run_command_parses(method: str, tmp_path: Path) -> None:
    phase = locomotion.PHASES["halfcheetah-probe"]
    command = grid.run_command(locomotion.STUDY, phase, method, 1, tmp_path / "x", ["neuron-env"])
    assert command[:2] == ["neuron-env", locomotion.METHODS[method][0]]
    build_parser().parse_args(command[1:])  # exits (SystemExit) on a flag the command does not have


def test_train_runs_checkpoint_their_replay_and_resume_only_exactly(tmp_path: Path) -> None:
    phase = locomotion.PHASES["e4-hopper"]
    command = grid.run_command(locomotion.STUDY, phase, "feedback-joint-ref", 1, tmp_path / "x", ["neuron-env"])
    assert "--checkpoint-replay" in command
    assert "--checkpoint-replay" not in grid.run_command(locomotion.STUDY, phase, "sb3-ddpg", 1, tmp_path / "y",
                                                         ["neuron-env"])
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "checkpoint.pt").write_bytes(b"")
    (folder / "config.json").write_text(json.dumps({"checkpoint_replay": False}))
    assert not grid.resumes_exactly(folder)  # it starts over: a refilled buffer is not the uninterrupted run
    (folder / "config.json").write_text(json.dumps({"checkpoint_replay": True}))
    assert grid.resumes_exactly(folder)
    (folder / "summary.json").write_text(json.dumps({"status": "completed", "resumes_without_replay": [90000]}))
    assert not grid.completed(folder)
    (folder / "summary.json").write_text(json.dumps({"status": "completed"}))
    assert grid.completed(folder)


def fake_run(folder: Path, final: float) -> None:
    folder.mkdir(parents=True)
    (folder / "summary.json").write_text(json.dumps({"status": "completed", "final_eval_return_mean": final,
                                                     "updates": 100, "wall_time_s": 10.0}))
    (folder / "metrics.csv").write_text(f"step,eval_return_mean\n5000,{final / 2}\n10000,\n30000,{final}\n")


def test_report_normalizes_per_seed_and_pairs_with_the_floor(tmp_path: Path) -> None:
    work = tmp_path / "work" / "halfcheetah-probe"
    for seed, (random, sb3, learned, frozen) in {1: (-300, 2000, 1700, 1000), 2: (-200, 1800, 1800, 800),
                                                 3: (-250, 2250, 2250, 1000)}.items():
        random_folder = work / "random" / "runs" / "HalfCheetah-v5" / "random" / f"seed{seed}"
        random_folder.mkdir(parents=True)
        (random_folder / "summary.json").write_text(json.dumps({"final_eval_return_mean": random}))
        fake_run(work / f"sb3-ddpg-s{seed}", sb3)
        fake_run(work / f"feedback-s{seed}", learned)
        fake_run(work / f"feedback-frozen-s{seed}", frozen)
    result = locomotion.report(locomotion.STUDY, locomotion.StudyConfig(
        phase="halfcheetah-probe", work=str(tmp_path / "work"), out=str(tmp_path / "out")))
    rows = {row["method"]: row for row in result["rows"]}
    assert rows["feedback"]["normalized"] == pytest.approx([2000 / 2300, 1.0, 1.0])
    assert rows["feedback"]["learned_minus_floor"] == pytest.approx([700 / 2300, 1000 / 2000, 1250 / 2500])
    table = (tmp_path / "out" / "halfcheetah-probe" / "table.md").read_text()
    assert "| `feedback` | 1, 2, 3 |" in table and "vs `feedback-frozen`" in table
    assert (tmp_path / "out" / "halfcheetah-probe" / "curves.png").stat().st_size > 0


def test_sign_test_is_the_two_sided_binomial_tail() -> None:
    assert locomotion.sign_test([1.0] * 5) == pytest.approx(2 / 32)
    assert locomotion.sign_test([1.0, 1.0, -1.0]) == pytest.approx(1.0)
    assert locomotion.sign_test([0.5, -0.1, 0.2, 0.3, 0.4]) == pytest.approx(2 * 6 / 32)
    assert locomotion.sign_test([]) == 1.0


def test_the_e4_phases_plan_five_seeds_and_three_for_the_diagnostics() -> None:
    for task in locomotion.E4_TASKS:
        planned = locomotion.PHASES[f"e4-{locomotion.short_name(task)}"].planned()
        assert [s for m, s in planned if m == "feedback-joint-ref"] == [1, 2, 3, 4, 5]
        assert [s for m, s in planned if m == "ceiling-joint-ref"] == [1, 2, 3]
        assert planned[:6] == [(m, 1) for m in ("sb3-ddpg", "sb3-td3", "feedback-joint-ref",
                                                "feedback-joint-ref-frozen", "ceiling-joint-ref", "sign-joint-ref")]


def test_the_e4_table_has_a_row_per_task_with_runs(tmp_path: Path) -> None:
    work = tmp_path / "work" / "e4-hopper"
    for seed in (1, 2, 3, 4, 5):
        random_folder = work / "random" / "runs" / "Hopper-v5" / "random" / f"seed{seed}"
        random_folder.mkdir(parents=True)
        (random_folder / "summary.json").write_text(json.dumps({"final_eval_return_mean": 0.0}))
    for seed in (1, 2):
        fake_run(work / f"sb3-ddpg-s{seed}", 1000.0)
        fake_run(work / f"feedback-joint-ref-s{seed}", 900.0 + 100 * seed)
        fake_run(work / f"feedback-joint-ref-frozen-s{seed}", 500.0)
    result = locomotion.e4_table(locomotion.StudyConfig(work=str(tmp_path / "work"), out=str(tmp_path / "out")))
    [row] = result["rows"]
    assert row["task"] == "Hopper-v5"
    assert row["normalized"]["feedback-joint-ref"] == pytest.approx([1.0, 1.1])
    assert row["learned_minus_floor"] == pytest.approx([0.5, 0.6])
    table = (tmp_path / "out" / "e4" / "table.md").read_text()
    assert "| Hopper-v5 | 0 | 1000 ± 0 (2) |" in table and "2 of 2, sign test p = 0.50" in table


def test_the_td3_table_pairs_each_rule_with_the_floor_and_reads_the_shared_sb3_runs(tmp_path: Path) -> None:
    shared, work = tmp_path / "work" / "e4-hopper", tmp_path / "work" / "hopper-td3"
    for seed in (1, 2, 3):
        random_folder = shared / "random" / "runs" / "Hopper-v5" / "random" / f"seed{seed}"
        random_folder.mkdir(parents=True)
        (random_folder / "summary.json").write_text(json.dumps({"final_eval_return_mean": 0.0}))
        fake_run(shared / f"sb3-ddpg-s{seed}", 1000.0)  # the e4 phase's run, read through Phase.shares
    work.mkdir(parents=True)
    for seed in (1, 2):
        fake_run(work / f"feedback-td3-ref-s{seed}", 800.0)
        fake_run(work / f"feedback-frozen-td3-ref-s{seed}", 600.0 + 100 * seed)
        fake_run(work / f"dfa-td3-ref-s{seed}", 1200.0)
    result = locomotion.task_table(locomotion.StudyConfig(work=str(tmp_path / "work"), out=str(tmp_path / "out")),
                                   locomotion.TD3_TABLE)
    [row] = result["rows"]
    assert row["task"] == "Hopper-v5" and row["phase"] == "hopper-td3"
    assert row["paired"]["feedback-td3-ref"] == pytest.approx([0.1, 0.0])
    assert row["paired"]["dfa-td3-ref"] == pytest.approx([0.5, 0.4])
    table = (tmp_path / "out" / "td3" / "table.md").read_text()
    assert "| DFA − floor (paired) |" in table and "0.45 ± 0.07: 2 of 2, sign test p = 0.50 |" in table
    assert "1 of 2, sign test p = 1.00" in table  # feedback: one tie counts as not above


def test_the_late_mean_averages_the_last_evaluations_and_pairs_them_with_the_floor(tmp_path: Path) -> None:
    work = tmp_path / "work" / "walker2d-td3"
    shared = tmp_path / "work" / "e4-walker2d"  # the phase reads e4-walker2d's SB3 runs and random returns
    for seed in (1, 2, 3, 4, 5):  # the random policy's returns of every seed of the phase
        random_folder = shared / "random" / "runs" / "Walker2d-v5" / "random" / f"seed{seed}"
        random_folder.mkdir(parents=True)
        (random_folder / "summary.json").write_text(json.dumps({"final_eval_return_mean": 0.0}))
    for seed in (1, 2):
        for method, curve in (("sb3-ddpg", [100, 200, 300, 400]), ("feedback-td3-ref", [0, 900, 300, 300 + seed]),
                              ("feedback-frozen-td3-ref", [0, 100, 200, 600])):
            folder = (shared if method == "sb3-ddpg" else work) / f"{method}-s{seed}"
            folder.mkdir(parents=True)
            (folder / "summary.json").write_text(json.dumps({"status": "completed", "final_eval_return_mean":
                                                             curve[-1], "updates": 9, "wall_time_s": 1.0}))
            rows = "".join(f"{10_000 * (i + 1)},{value}\n" for i, value in enumerate(curve))
            (folder / "metrics.csv").write_text("step,eval_return_mean\n" + rows)
    assert locomotion.PHASES["walker2d-td3"].late_evaluations == 3
    result = locomotion.report(locomotion.STUDY, locomotion.StudyConfig(
        phase="walker2d-td3", work=str(tmp_path / "work"), out=str(tmp_path / "out")))
    rows = {row["method"]: row for row in result["rows"]}
    # the final evaluation puts the learned run below its floor; the last three put it above
    assert rows["feedback-td3-ref"]["learned_minus_floor"] == pytest.approx([(301 - 600) / 400, (302 - 600) / 400])
    assert rows["feedback-td3-ref"]["late_returns"] == pytest.approx([1501 / 3, 1502 / 3])
    assert rows["feedback-td3-ref"]["late_minus_floor"] == pytest.approx([(1501 - 900) / 3, (1502 - 900) / 3])
    assert grid.late_mean({"curve": [(1, 5.0)]}, 3) is None and grid.late_mean({"curve": [(1, 5.0)]}, 0) is None
    table = (tmp_path / "out" / "walker2d-td3" / "table.md").read_text()
    assert "mean of the last 3 evaluations | its learned − floor (paired, return) |" in table
    assert "| 500 ± 0 | 200 ± 0 (2 of 2) |" in table


def test_a_phase_that_shares_reads_and_makes_the_shared_runs_in_the_other_phase(tmp_path: Path) -> None:
    for name, phase in locomotion.PHASES.items():
        if phase.shares is not None:  # the same runs only where the settings are the same
            other = locomotion.PHASES[phase.shares]
            assert (phase.task, phase.steps, phase.hidden, phase.eval_every, phase.eval_episodes) == (
                other.task, other.steps, other.hidden, other.eval_every, other.eval_episodes), name
    study, work = locomotion.STUDY, tmp_path / "work"
    # planned by e4-walker2d too: its folder; seed 4 of a diagnostic e4 runs on three seeds only: the phase's own
    assert grid.run_folder(study, "walker2d-td3", "sb3-td3", 5, work) == work / "e4-walker2d" / "sb3-td3-s5"
    assert grid.run_folder(study, "walker2d-td3", "dfa-td3-ref", 1, work) == work / "walker2d-td3" / "dfa-td3-ref-s1"
    assert grid.run_folder(study, "halfcheetah-dfa", "ceiling-joint-ref", 3, work) == (
        work / "e4-halfcheetah" / "ceiling-joint-ref-s3")
    assert grid.run_folder(study, "e4-hopper", "sb3-ddpg", 1, work) == work / "e4-hopper" / "sb3-ddpg-s1"
    assert grid.random_folder(study, "hopper-dfa", work) == work / "e4-hopper" / "random"
    # the report reads the shared runs: the floor and the reference come from e4-hopper
    for seed in (1, 2, 3, 4, 5):
        random = work / "e4-hopper" / "random" / "runs" / "Hopper-v5" / "random" / f"seed{seed}"
        random.mkdir(parents=True)
        (random / "summary.json").write_text(json.dumps({"final_eval_return_mean": 0.0}))
    for seed in (1, 2, 3):
        fake_run(work / "e4-hopper" / f"sb3-ddpg-s{seed}", 1000.0)
        fake_run(work / "e4-hopper" / f"feedback-joint-ref-frozen-s{seed}", 500.0)
        fake_run(work / "hopper-dfa" / f"dfa-joint-ref-s{seed}", 800.0)
    result = locomotion.report(study, locomotion.StudyConfig(phase="hopper-dfa", work=str(work),
                                                            out=str(tmp_path / "out")))
    rows = {row["method"]: row for row in result["rows"]}
    assert rows["dfa-joint-ref"]["learned_minus_floor"] == pytest.approx([0.3] * 3)
    assert not (work / "hopper-dfa" / "random").exists()
