"""studies/regeneration.py: comparing a committed results tree with a regenerated one."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

from .conftest import load_script

SCRIPT = Path(__file__).resolve().parents[1] / "studies" / "regeneration.py"


def load() -> ModuleType:
    return load_script(SCRIPT, "results_regeneration")


def _scores(returns: dict[str, list[float]]) -> dict:
    return {"tasks": {"Pendulum-v1": {"methods": {m: {"returns": r} for m, r in returns.items()}}}}


def test_verdicts_on_hand_made_returns() -> None:
    regeneration = load()
    assert regeneration.verdict([-100.0, -120.0], [-100.0, -120.0], 2.0) == "identical"
    # means -110 and -115, sample stds 14.14 and 7.07: SE = sqrt(100 + 25) = 11.18, 5 / 11.18 = 0.4 SE
    assert regeneration.verdict([-100.0, -120.0], [-110.0, -120.0], 2.0) == "within seed noise (0.4 SE)"
    assert regeneration.verdict([-100.0, -102.0], [-900.0, -902.0], 2.0).startswith("differs")
    assert regeneration.verdict([-100.0], [-101.0], 2.0) == "differs (no spread to compare against)"


def test_trees_compare_every_folder_present_in_both(tmp_path: Path) -> None:
    regeneration = load()
    committed, regenerated = tmp_path / "committed", tmp_path / "regenerated"
    for tree in (committed, regenerated):
        (tree / "pendulum").mkdir(parents=True)
    both = {"local-mlp": [-150.0, -140.0, -160.0], "sb3-ddpg": [-99.0, -98.0]}
    (committed / "pendulum" / "scores.json").write_text(json.dumps(_scores(both)))
    (regenerated / "pendulum" / "scores.json").write_text(json.dumps(_scores({"local-mlp": [-150.0, -140.0, -160.0]})))
    header = "task,method,seed,final_eval_mean\n"
    (committed / "pendulum" / "results.csv").write_text(
        header + "Pendulum-v1,local-mlp,0,-150.0\nPendulum-v1,local-mlp,1,-140.0\nPendulum-v1,local-mlp,2,-160.0\n")
    (regenerated / "pendulum" / "results.csv").write_text(header + "Pendulum-v1,local-mlp,0,-150.0\n")
    run = regenerated / "pendulum" / "runs" / "Pendulum-v1" / "local-mlp" / "seed1"  # finished, not in results.csv
    run.mkdir(parents=True)
    (run / "summary.json").write_text(json.dumps({"final_eval_return_mean": -141.0}))
    e1 = {"ddpg": {"final_eval_return_mean": -125.2}, "overall": {"value_r_mean": 0.975, "derivative_r_mean": 0.056},
          "layers": {"out": {"derivative_r_mean": 0.666}}}
    (committed / "e1").mkdir()
    (committed / "e1" / "subcritic_correlation.json").write_text(json.dumps(e1))
    (regenerated / "e1").mkdir()
    e1["overall"]["derivative_r_mean"] = 0.06
    (regenerated / "e1" / "subcritic_correlation.json").write_text(json.dumps(e1))
    (regenerated / "only-new").mkdir()  # nothing committed to compare with: left out
    out = tmp_path / "table.md"
    rows = regeneration.main(["--regenerated", str(regenerated), "--committed", str(committed), "--out", str(out)])
    verdicts = {(r.result, r.figure): r.verdict for r in rows}
    assert verdicts[("pendulum", "Pendulum-v1 local-mlp final return")] == "identical"
    assert verdicts[("pendulum", "Pendulum-v1 sb3-ddpg")] == "n/a"  # not regenerated
    assert verdicts[("pendulum", "Pendulum-v1 local-mlp: runs repeated bit for bit")] == "1 of 2 identical (seeds 0)"
    assert verdicts[("e1", "all neurons value_r_mean")] == "identical"
    assert verdicts[("e1", "all neurons derivative_r_mean")] == "changed by +0.004"
    assert {r.result for r in rows} == {"pendulum", "e1"}
    assert out.read_text().startswith("| result | figure |")
