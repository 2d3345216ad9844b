"""studies/sample_efficiency_sweep.py on a tiny budget: outputs, light copies, resume."""

from __future__ import annotations

import csv
from pathlib import Path
from types import ModuleType

import pytest

from .conftest import load_script

SCRIPT = Path(__file__).resolve().parents[1] / "studies" / "sample_efficiency_sweep.py"


def load_sweep() -> ModuleType:
    return load_script(SCRIPT, "sample_efficiency_sweep")


def test_sweep_writes_outputs_and_resume_skips_finished_runs(tmp_path: Path) -> None:
    sweep = load_sweep()
    argv = ["--variants", "defaults", "frozen-hidden", "--seeds", "7", "--steps", "300", "--learning-starts", "100",
            "--eval-every", "150", "--eval-episodes", "1", "--reference-step", "20000", "--tuning-seeds", "7",
            "--out", str(tmp_path / "out"), "--work", str(tmp_path / "work")]
    first = sweep.main(argv)
    assert [(v, s, o) for v, s, o in first["runs"]] == [("defaults", 7, "trained"), ("frozen-hidden", 7, "trained")]
    out = tmp_path / "out"
    for name in ("results.csv", "table.md", "table-fresh.md", "curves.png"):
        assert (out / name).is_file(), name
    with open(out / "results.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert [(r["variant"], r["seed"], r["status"]) for r in rows] == [("defaults", "7", "completed"),
                                                                      ("frozen-hidden", "7", "completed")]
    assert '"lr_actor_hidden": 0.0' in rows[1]["overrides"] and rows[0]["eval_10k"] == ""
    assert float(rows[0]["final_eval_mean"]) < 0
    for variant in ("defaults", "frozen-hidden"):
        data = out / "data" / variant / "seed7"
        assert {p.name for p in data.iterdir()} == {"metrics.csv", "summary.json", "config.json", "provenance.json"}
        assert not (tmp_path / "work" / variant / "seed7" / "checkpoint.pt").exists()
    table = (out / "table.md").read_text()
    assert "| frozen-hidden | 7 |" in table and "sb3-ddpg eval mean at step 20000" in table

    again = sweep.main(argv)
    assert [o for _, _, o in again["runs"]] == ["skipped", "skipped"]

    fresh = sweep.main(argv[:4] + ["8"] + argv[5:] + ["--report-only"])  # report only: trains nothing
    assert fresh["runs"] == [] and len(fresh["rows"]) == 2


def test_shards_split_a_phase_into_disjoint_parts() -> None:
    sweep = load_sweep()
    whole = sweep.plan(sweep.parse_args(["--phase", "D"]))
    parts = [sweep.plan(sweep.parse_args(["--phase", "D", "--shard", f"{k}/3"])) for k in range(3)]
    assert sorted(run for part in parts for run in part) == sorted(whole)
    assert len(set(whole)) == len(whole)
    with pytest.raises(SystemExit):
        sweep.parse_args(["--shard", "3/3"])


def test_a_longer_run_is_scored_at_the_budget(tmp_path: Path) -> None:
    """Phase F's 30 000-step runs: return and last-3 mean at 20 000, steps to threshold over the whole run."""
    import json

    sweep = load_sweep()
    sweep.TRAIN_DEFAULTS.update(sweep._train_defaults())
    data = tmp_path / "data" / "gamma-0.98-hidden-noise-0.2-ups2-30k" / "seed0"
    data.mkdir(parents=True)
    curve = [(step, -1000.0 + step / 35) for step in range(2_000, 30_001, 2_000)]  # -200 first at 28 000
    (data / "metrics.csv").write_text("step,eval_return_mean\n" + "".join(f"{s},{v}\n" for s, v in curve))
    (data / "summary.json").write_text(json.dumps({
        "status": "completed", "steps": 30_000, "final_eval_return_mean": curve[-1][1], "final_eval_return_std": 0.0,
        "config": {"gamma": 0.98, "steps": 30_000}, "wall_time_s": 1.0, "steps_per_s": 1.0}))
    [row] = sweep.collect(sweep.parse_args(["--out", str(tmp_path)]))
    assert row["eval_budget"] == pytest.approx(-1000 + 20_000 / 35) and row["final_eval_mean"] == curve[-1][1]
    assert row["last3_mean"] == pytest.approx(-1000 + 18_000 / 35)  # mean of 16k, 18k, 20k
    assert row["steps_to_threshold"] == 28_000
