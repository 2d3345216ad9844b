"""benchmarks/study_throughput.py: the same runs in every arm, summed task steps over the phase's wall time."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import load_script

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "study_throughput.py"


def test_quick_run_times_every_arm_on_the_same_runs(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bench = load_script(SCRIPT, "study_throughput_benchmark")
    out = tmp_path / "throughput.json"
    result = bench.main(["--quick", "--steps", "120", "--learning-starts", "60", "--out", str(out)])
    rows = result["rows"]
    assert [row["arm"] for row in rows] == ["one-at-a-time", "workers-2"]
    assert {row["task_steps"] for row in rows} == {240} and {row["updates"] for row in rows} == {120}
    assert rows[0]["ratio_vs_reference"] == 1.0
    assert rows[1]["ratio_vs_reference"] == pytest.approx(rows[1]["steps_per_s"] / rows[0]["steps_per_s"])
    assert json.loads(out.read_text())["rows"][1]["workers"] == 2
    assert "× one at a time" in capsys.readouterr().out


def test_a_plan_without_updates_is_refused() -> None:
    bench = load_script(SCRIPT, "study_throughput_benchmark")
    with pytest.raises(SystemExit):
        bench.parse_args(["--steps", "100", "--learning-starts", "100"])
