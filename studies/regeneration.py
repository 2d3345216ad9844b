"""Do the committed results match what their commands regenerate? Compare two results trees.

Every result under ``docs/results/`` names the command that regenerates it. To check one, run
that command with the same relative ``--out`` from another folder (so the committed files are not
overwritten), then compare the two trees::

    mkdir -p /tmp/regen && cd /tmp/regen
    neuron-env compare ... --out docs/results/pendulum          # the command in scores.md
    cd - && python studies/regeneration.py --regenerated /tmp/regen/docs/results

For every result folder present in both trees it compares the headline figures:

- ``neuron-env compare`` folders (``scores.json``): per task and method, the final evaluation
  return over seeds. ``identical`` when every seed's return is equal (to 1e-6), ``within seed
  noise`` when the two means differ by at most ``--z`` standard errors of their difference
  (``sqrt(s₁²/n₁ + s₂²/n₂)``, sample standard deviations over seeds), else ``differs``.
- the same folders run by run (``results.csv`` committed; the regenerated tree's ``results.csv``
  and run folders ``runs/<task>/<method>/seed<S>/summary.json``, so a run finished before its
  command was cut short counts too): how many runs regenerated bit for bit (to 1e-6). Runs
  repeat exactly on the same machine and code; on another CPU the floating-point kernels differ
  and a run's trajectory soon departs, so there only the seed-noise verdict applies.
- ``subcritic-correlation`` (E1) and ``gradient-agreement`` (E2) folders: their overall figures
  (single-seed experiments: ``identical`` or the change, with no noise estimate).

It prints a Markdown table and writes it to ``--out`` (default: not written).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "docs" / "results"  # the committed results (the code lives in studies/)


@dataclass
class RegenerationConfig:
    """What to compare (one dataclass, a docstring per field)."""

    regenerated: str = ""
    """The regenerated results tree (the folder that holds the regenerated result folders)."""
    committed: str = str(RESULTS)
    """The committed results tree."""
    z: float = 2.0
    """Standard errors within which two means count as the same up to seed noise."""
    out: str = ""
    """Markdown file to write the table to; empty: print only."""


@dataclass
class Row:
    """One compared figure."""

    result: str
    figure: str
    committed: str
    regenerated: str
    verdict: str


def _mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def compare_scores(name: str, committed: dict[str, Any], regenerated: dict[str, Any], z: float) -> list[Row]:
    """Rows for two ``scores.json`` of ``neuron-env compare`` (per task and method)."""
    rows = []
    for task, old_task in committed["tasks"].items():
        new_task = regenerated["tasks"].get(task)
        for method, old in old_task["methods"].items():
            new = (new_task or {}).get("methods", {}).get(method)
            old_returns = [r for r in old.get("returns", []) if r is not None]
            if not new or not [r for r in new.get("returns", []) if r is not None]:
                rows.append(Row(name, f"{task} {method}", _returns_text(old_returns), "not regenerated", "n/a"))
                continue
            new_returns = [r for r in new["returns"] if r is not None]
            rows.append(Row(name, f"{task} {method} final return", _returns_text(old_returns),
                            _returns_text(new_returns), verdict(old_returns, new_returns, z)))
    return rows


def read_runs(folder: Path) -> dict[tuple[str, str, int], float]:
    """``{(task, method, seed): final eval return}`` of a compare folder's ``results.csv`` and run folders."""
    import csv

    runs: dict[tuple[str, str, int], float] = {}
    if (folder / "results.csv").is_file():
        with open(folder / "results.csv", newline="") as stream:
            for row in csv.DictReader(stream):
                if row.get("final_eval_mean"):
                    runs[(row["task"], row["method"], int(row["seed"]))] = float(row["final_eval_mean"])
    for path in folder.glob("runs/*/*/seed*/summary.json"):
        summary = json.loads(path.read_text())
        method = path.parent.parent.name
        if summary.get("final_eval_return_mean") is not None:
            runs.setdefault((path.parents[2].name, method, int(path.parent.name[4:])),
                            float(summary["final_eval_return_mean"]))
    return runs


def compare_runs(name: str, committed: Path, regenerated: Path) -> list[Row]:
    """One row per method: how many of its committed runs the regenerated tree repeats bit for bit."""
    old, new = read_runs(committed), read_runs(regenerated)
    rows = []
    for task, method in dict.fromkeys((t, m) for t, m, _ in old):  # in the committed file's order
        seeds = sorted(s for t, m, s in old if (t, m) == (task, method))
        both = [s for s in seeds if (task, method, s) in new]
        same = [s for s in both if abs(old[(task, method, s)] - new[(task, method, s)]) <= 1e-6]
        rows.append(Row(name, f"{task} {method}: runs repeated bit for bit", f"{len(seeds)} runs",
                        f"{len(both)} regenerated", f"{len(same)} of {len(both)} identical"
                        + (f" (seeds {', '.join(map(str, same))})" if same and len(same) < len(both) else "")))
    return rows


def _returns_text(returns: list[float]) -> str:
    if not returns:
        return "n/a"
    mean, std = _mean_std(returns)
    return f"{mean:.1f} ± {std:.1f} (n={len(returns)})"


def verdict(old: list[float], new: list[float], z: float) -> str:
    """``identical``, ``within seed noise (k SE)`` or ``differs (k SE)``; see the module doc."""
    if len(old) == len(new) and all(abs(a - b) <= 1e-6 for a, b in zip(old, new, strict=True)):
        return "identical"
    (m1, s1), (m2, s2) = _mean_std(old), _mean_std(new)
    standard_error = math.sqrt(s1 ** 2 / len(old) + s2 ** 2 / len(new))
    if standard_error == 0:
        return "differs (no spread to compare against)"
    k = abs(m1 - m2) / standard_error
    return f"{'within seed noise' if k <= z else 'differs'} ({k:.1f} SE)"


def _single(name: str, figure: str, old: float | None, new: float | None) -> Row:
    if old is None or new is None:
        return Row(name, figure, _num(old), _num(new), "n/a")
    same = abs(old - new) <= 1e-6
    return Row(name, figure, _num(old), _num(new), "identical" if same else f"changed by {new - old:+.3f}")


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def compare_e1(name: str, committed: dict[str, Any], regenerated: dict[str, Any]) -> list[Row]:
    """Rows for two ``subcritic_correlation.json`` (overall and per-layer means)."""
    rows = [_single(name, "DDPG final eval return", committed["ddpg"].get("final_eval_return_mean"),
                    regenerated["ddpg"].get("final_eval_return_mean"))]
    for key in ("value_r_mean", "derivative_r_mean"):
        rows.append(_single(name, f"all neurons {key}", committed["overall"].get(key), regenerated["overall"].get(key)))
    for layer, old in committed["layers"].items():
        new = regenerated["layers"].get(layer, {})
        rows.append(_single(name, f"{layer} derivative_r_mean", old.get("derivative_r_mean"),
                            new.get("derivative_r_mean")))
    return rows


def compare_e2(name: str, committed: dict[str, Any], regenerated: dict[str, Any]) -> list[Row]:
    """Rows for two ``gradient_agreement.json`` (per critic and data: all-neuron cosine and sign agreement)."""
    rows = [_single(name, "DDPG final eval return", committed["ddpg"].get("final_eval_return_mean"),
                    regenerated["ddpg"].get("final_eval_return_mean"))]
    new_runs = {(r["critic"], r["data"]): r for r in regenerated["runs"]}
    for old in committed["runs"]:
        new = new_runs.get((old["critic"], old["data"]), {"overall": {}})
        for key in ("cosine_mean", "sign_agreement_mean"):
            rows.append(_single(name, f"{old['critic']}, {old['data']}: all neurons {key}", old["overall"].get(key),
                                new["overall"].get(key)))
    return rows


def compare_trees(config: RegenerationConfig) -> list[Row]:
    """Every comparable result folder present in both trees, in name order."""
    committed, regenerated = Path(config.committed), Path(config.regenerated)
    rows: list[Row] = []
    for folder in sorted(p for p in regenerated.iterdir() if p.is_dir()):
        old = committed / folder.name
        if (old / "scores.json").is_file():
            if (folder / "scores.json").is_file():
                rows += compare_scores(folder.name, _load(old / "scores.json"), _load(folder / "scores.json"),
                                       config.z)
            rows += compare_runs(folder.name, old, folder)
        elif (folder / "subcritic_correlation.json").is_file() and (old / "subcritic_correlation.json").is_file():
            rows += compare_e1(folder.name, _load(old / "subcritic_correlation.json"),
                               _load(folder / "subcritic_correlation.json"))
        elif (folder / "gradient_agreement.json").is_file() and (old / "gradient_agreement.json").is_file():
            rows += compare_e2(folder.name, _load(old / "gradient_agreement.json"),
                               _load(folder / "gradient_agreement.json"))
    return rows


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def render(rows: list[Row]) -> str:
    """The Markdown table."""
    lines = ["| result | figure | committed | regenerated | verdict |", "|---|---|---|---|---|"]
    lines += [f"| {r.result} | {r.figure} | {r.committed} | {r.regenerated} | {r.verdict} |" for r in rows]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> RegenerationConfig:
    """Build a ``RegenerationConfig`` from the command line."""
    sys.path.insert(0, str(REPO))
    from neuron_env.configs import field_docs

    docs = field_docs(RegenerationConfig)
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    for f in dataclasses.fields(RegenerationConfig):
        parser.add_argument("--" + f.name, type=float if f.name == "z" else str, default=f.default,
                            required=f.name == "regenerated", help=docs.get(f.name))
    config = RegenerationConfig(**vars(parser.parse_args(argv)))
    if not Path(config.regenerated).is_dir():
        parser.error(f"--regenerated {config.regenerated!r} is not a folder; pass the tree the commands wrote into")
    return config


def main(argv: list[str] | None = None) -> list[Row]:
    """Compare the trees, print the table (and write it with ``--out``); returns the rows."""
    config = parse_args(argv)
    rows = compare_trees(config)
    table = render(rows)
    print(table, end="")
    if config.out:
        from neuron_env.run_output import atomic_write_text  # after parse_args put the repository on sys.path

        atomic_write_text(config.out, table)
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
