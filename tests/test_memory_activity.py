"""studies/memory_activity.py: the async phase's trained networks run tick by tick (who fires, voltages)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from neuron_env.cli import main

from .conftest import load_script

activity = load_script(Path(__file__).resolve().parents[1] / "studies" / "memory_activity.py", "memory_activity")


def tiny_async_run(folder: Path, rate: str) -> None:
    """A few-step eprop run on the async phase's task and network, at firing rate ``rate``."""
    assert main(["train", "--task", "CartPoleNoVel-v1", "--learner", "eprop", "--topology", "recurrent", "--hidden",
                 "4", "--leak", "0.5", "--clock", "async", "--firing-rate", rate, "--steps", "6", "--learning-starts",
                 "3", "--eval-every", "0", "--eval-episodes", "1", "--seed", "0", "--no-progress", "--no-tensorboard",
                 "--out", str(folder)]) == 0


def test_the_report_runs_each_rates_network_under_its_own_clock(tmp_path: Path) -> None:
    work = tmp_path / "work" / "async-cartpole-novel"
    for rate in ("1.0", "0.5"):
        tiny_async_run(work / f"eprop-async-{rate}-s0", rate)
    config = activity.ActivityConfig(seed=0, ticks=40, work=str(tmp_path / "work"), out=str(tmp_path / "out"))
    summary = activity.activity_report(config)
    assert list(summary) == ["eprop-async-1.0", "eprop-async-0.5"]  # the 0.25 run is missing: left out
    full, half = summary["eprop-async-1.0"], summary["eprop-async-0.5"]
    assert (full["firing_rate"], half["firing_rate"]) == (1.0, 0.5)
    assert all(group["fired"] == 1.0 for group in full["groups"].values())  # rate 1: every neuron every tick
    assert all(0.0 < group["fired"] < 1.0 for group in half["groups"].values())
    assert set(half["groups"]) == {"h", "out"}
    target = tmp_path / "out" / "async-cartpole-novel"
    assert (target / "activity.png").stat().st_size > 0
    assert json.loads((target / "activity.json").read_text()) == summary
    table = (target / "activity.md").read_text()
    assert "| `eprop-async-0.5` | 0.5 | " in table and "python studies/memory_activity.py" in table


def test_the_fired_record_and_summary_of_one_run(tmp_path: Path) -> None:
    tiny_async_run(tmp_path / "run", "0.5")
    record = activity.record_activity(tmp_path / "run", ticks=10)
    assert len(record["fired"]) == len(record["voltages"]) <= 10
    assert len(record["fired"][0]) == len(record["agent_ids"]) == 6  # 4 hidden + 2 outputs (Discrete(2): argmax)
    summary = activity.summarize(record)
    assert summary["out"]["voltage_change"] >= 0.0
    # a neuron that did not fire keeps its voltage (the output does not leak): no change on those ticks
    voltages, fired = record["voltages"], record["fired"]
    out = record["groups"]["out"][0]
    assert all(voltages[t][out] == voltages[t - 1][out] for t in range(1, len(fired)) if not fired[t][out])


def test_without_finished_runs_it_says_which_command_makes_them(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        activity.main(["--work", str(tmp_path), "--out", str(tmp_path / "out")])
    assert stopped.value.code == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and error.endswith("run `python studies/memory.py --phase async-cartpole-novel` first")
    assert not (tmp_path / "out").exists()
