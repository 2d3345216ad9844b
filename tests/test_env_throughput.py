"""benchmarks/env_throughput.py: the --profile split of a PettingZoo tick (timers inside the loop)."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

pytest.importorskip("mujoco")
pytest.importorskip("psutil")

from .conftest import load_script  # noqa: E402

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "env_throughput.py"


def load() -> ModuleType:
    return load_script(SCRIPT, "env_throughput_benchmark")


def test_profile_splits_the_tick_into_adapter_core_and_task(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bench = load()
    out = tmp_path / "never-written.json"
    result = bench.main(["--profile", "--ticks", "60", "--warmup", "6", "--out", str(out)])
    profile = result["profile"]
    assert profile["ticks"] == 60 and profile["task_steps"] == 20  # delay 3: a task step every third tick
    per_tick = profile["us_per_tick"]
    assert all(per_tick[k] > 0 for k in ("adapter", "core", "task"))
    assert per_tick["adapter"] + per_tick["core"] + per_tick["task"] == pytest.approx(per_tick["total"])
    assert sum(profile["share"].values()) == pytest.approx(1.0)
    assert "adapter: action reads and checks" in capsys.readouterr().out
    assert not out.exists()  # the profile prints only
