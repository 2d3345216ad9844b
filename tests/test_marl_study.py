"""studies/marl.py: the plan, the commands, resumability and the report (fast, no BenchMARL).

The BenchMARL run itself (``studies/marl_run.py``: settings, evaluation, ``run-one``, ``noise``) is
tested in ``test_marl_study_run.py``.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import stat
import sys
from pathlib import Path
from typing import Any

import pytest

from neuron_env.cli import build_parser
from tests.conftest import load_script

REPO = Path(__file__).resolve().parents[1]
marl = load_script(REPO / "studies" / "marl.py", "marl_study")
marl_run = sys.modules["marl_run"]  # one BenchMARL run (studies/marl_run.py), which marl imports
grid = sys.modules["grid"]  # the generic runner marl imports (studies/grid.py)


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


def test_the_screen_is_the_factor_phase_at_a_third_of_the_budget() -> None:
    screen, factors = marl.PHASES["pendulum-8-8-screen"], marl.PHASES["pendulum-8-8-factors"]
    assert screen.methods == factors.methods and screen.seeds == factors.seeds
    assert (screen.steps, factors.steps) == (30_000, 100_000) and screen.eval_every == factors.eval_every
    assert "pendulum-8-8-screen" not in marl.SHARES  # no run of another budget to copy


@pytest.mark.parametrize("phase_name", ["pendulum-8-8-factors", "pendulum-8-8-screen"])
def test_the_algorithms_flag_narrows_the_factor_phases_only(phase_name: str) -> None:
    config = marl.MarlConfig(phase=phase_name, algorithms=("ippo",))
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
        if phase.hidden:
            assert command[command.index("--hidden") + 1:command.index("--hidden") + 3] == ["8", "8"]
        else:  # the direct control: grid rows keep their own networks
            assert "--hidden" not in command
        parser.parse_args(command[1:])  # exits (SystemExit) on a flag the command does not have


def test_the_direct_control_runs_each_algorithm_with_no_hidden_layer(tmp_path: Path) -> None:
    phase = marl.PHASES["pendulum-direct-screen"]
    assert phase.hidden == () and phase.steps == 30_000 and phase.reference == "sb3-ddpg"
    command = marl.run_one_command(phase, "maddpg-default", 0, tmp_path / "run", "/venv/bin/python")
    config = marl_run.run_config(command[3:])
    assert config.hidden == () and (config.algorithm, config.settings) == ("maddpg", "default")
    assert "maddpg-sb3-rates" in phase.methods and "mappo-sb3-rates" not in phase.methods  # off-policy only


def test_run_one_command_round_trips_into_its_config(tmp_path: Path) -> None:
    phase = marl.PHASES["pendulum-8-8-factors"]
    command = marl.run_one_command(phase, "maddpg-noise-0.1", 0, tmp_path / "run", "/venv/bin/python")
    assert command[:3] == ["/venv/bin/python", str(marl_run.SCRIPT), "run-one"]
    config = marl_run.run_config(command[3:])
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
    assert marl_run.run_completed(work / "mappo-recommended-s0", 600)
    assert (work / "mappo-recommended-s0" / "run.log").is_file()
    assert not marl_run.run_completed(work / "ippo-default-s0")
    log.unlink()
    assert marl.run_marl_rows(phase, config, marl.selected(phase, config))  # the failed one only, again
    assert log.read_text().split() == ["ippo-default-s0"]


def test_run_one_skips_a_finished_run_and_never_clears_one(tmp_path: Path) -> None:
    folder = tmp_path / "mappo-default-s0"
    write_run(folder, -300.0, steps=600, marl_row=True)
    config = marl_run.RunConfig(task_steps=600, out=str(folder))
    assert marl_run.run_one(config)["final_eval_return_mean"] == -300.0  # no BenchMARL needed to skip
    with pytest.raises(RuntimeError, match="never cleared"):
        marl_run.clear_unfinished(folder)
    unfinished = tmp_path / "unfinished"
    write_run(unfinished, -300.0, status="running")
    (unfinished / "benchmarl").mkdir()
    marl_run.clear_unfinished(unfinished)
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
    assert marl_run.run_completed(tmp_path / "pendulum-8-8-factors" / "mappo-default-s0", 100_000)
    smoke = marl.MarlConfig(phase="pendulum-8-8-factors", work=str(tmp_path), task_steps=600)
    write_run(tmp_path / "pendulum-8-8" / "maddpg-default-s0", -900.0, steps=600, marl_row=True)
    # at 600 task steps only the run of that budget is copied; the 100 000-step ones are not
    copied = marl.share_runs(marl.study_for(smoke), smoke)
    assert [f.name for f in copied] == ["maddpg-default-s0"]


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
    assert ".venv-marl/bin/python studies/marl_run.py run-one" in runs
    assert str(marl.REPO) not in runs  # the command as the repository names it, wherever the checkout lies


def test_main_report_only_runs_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    called: list[str] = []
    monkeypatch.setattr(marl, "run_study_phase", lambda config: called.append("run") or [])
    monkeypatch.setattr(marl, "report_phase", lambda config: called.append("report") or {})
    assert marl.main(["--phase", "pendulum-8-8", "--report-only", "--work", str(tmp_path)]) == 0
    assert called == ["report"]


def test_the_old_run_one_and_noise_commands_forward_to_marl_run(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "mappo-default-s0"
    write_run(folder, -300.0, steps=600, marl_row=True)
    assert marl.main(["run-one", "--task-steps", "600", "--out", str(folder)]) == 0  # finished: skipped, no BenchMARL
    called: list[list[str]] = []
    monkeypatch.setattr(marl, "run_main", lambda argv: called.append(argv) or 0)
    assert marl.main(["noise", "--hidden", "8", "8"]) == 0
    assert called == [["noise", "--hidden", "8", "8"]]


def test_a_run_acting_by_a_constant_saturated_action_is_marked(tmp_path: Path) -> None:
    phase = dataclasses.replace(marl.PHASES["pendulum-8-8-screen"], eval_episodes=2,
                                methods=("feedback", "mappo-default"))
    constants = marl.constant_action_returns("Pendulum-v1", 0, 2)
    assert list(constants) == ["constant [-2.0]", "constant [0.0]", "constant [2.0]"]
    finals = {"feedback": -150.0, "mappo-default": constants["constant [2.0]"]}
    for method, final in finals.items():
        folder = tmp_path / f"{method}-s0"
        folder.mkdir()
        summary = {"status": "completed", "final_eval_return_mean": final, "steps": 30_000, "wall_time_s": 1.0}
        if method == "mappo-default":
            summary.update(algorithm="mappo", benchmarl_config={"experiment": {"gamma": 0.99}},
                           task_config={"max_cycles": 600})
        (folder / "summary.json").write_text(json.dumps(summary))
    table = marl.runs_table(phase, tmp_path)
    assert [row["constant_action"] for row in table["rows"]] == [None, "constant [2.0]"]
    text = marl.render_runs(table, phase)
    assert "| `mappo-default` | 0 | " in text and "| constant [2.0] |" in text
    assert "Acting constantly, on seed 0's evaluation starts: constant [-2.0]" in text
