"""Does feedback alignment align along its own run? The feedback learner's slopes against backprop's.

E2 (``credit_assignment.py --phase e2``) measures a learner's hidden slopes on a *frozen* SB3 DDPG
actor; feedback alignment (Lillicrap et al. 2016) works because the forward weights come to align
with the fixed feedback weights *while they learn from them*, which a frozen actor never does. This
study measures it where it happens: the ``feedback`` learner (``feedback="random"``) trains with
the trainer's own loop, and every ``--probe-every`` task steps, on ``--probe-states`` replayed
states re-settled by the current network, it records per hidden group:

``slope_cosine/<group>``
    the cosine between the slope the group learns from (messages through the fixed random
    feedback matrices ``F``) and the slope exact feedback through the current forward weights
    ``W`` would give on the same states from the same output critic (``feedback="weights"``, the
    ceiling's slope: backprop of the output critic's ``∂Q/∂a``), over the batch and the group's
    neurons. 1 means FA delivers backprop's direction; 0 is chance.
``slope_sign/<group>``
    the fraction of (state, neuron) entries where the two slopes have the same sign.
``weight_cosine/<edge>``
    the cosine between each fixed ``F`` and the forward block ``W`` it stands in for (the
    classic "weights align" measure).

The probes read the learner and never touch its random state, so each run is the run
``neuron-env train`` makes with the same options. Outputs, under ``--out``::

    <network>/seed<S>/probes.csv   one row per probe
    alignment.json, alignment.md   the last probe's values (mean ± std over seeds) and the curves
    alignment.png                  slope cosine per hidden group against task steps

Run from the repository root (about 3 min per 20 000-step seed on one core)::

    python studies/feedback_alignment.py --hidden 64 64 --seeds 0 1 2
    python studies/feedback_alignment.py --hidden 8 8 --seeds 0 1 2
    python studies/feedback_alignment.py --report-only

A seed whose ``summary.json`` says ``completed`` is not run again.
"""

from __future__ import annotations

import csv
import json
import math
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]


@dataclass
class AlignmentConfig:
    """The study's options (every field is a flag of the same name)."""

    hidden: list[int] = field(default_factory=lambda: [64, 64])
    """Hidden sizes of the network (3-…-1 tanh on Pendulum-v1)."""
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    """Seeds to run."""
    steps: int = 20_000
    """Task steps per run (the credit-assignment study's budget)."""
    probe_every: int = 1000
    """Task steps between probes."""
    probe_states: int = 512
    """Replayed states per probe."""
    out: str = "docs/results/feedback-alignment"
    """Output folder (light files only; the checkpoints stay in the temporary run folders)."""
    report_only: bool = False
    """Rewrite ``alignment.md``/``.json``/``.png`` from the probes there are; run nothing."""


def network_name(hidden: list[int]) -> str:
    """``3-64-64-1``."""
    return "-".join(map(str, [3, *hidden, 1]))


def _cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.reshape(-1).double(), b.reshape(-1).double()
    denominator = float(a.norm() * b.norm())
    return float(a @ b) / denominator if denominator > 0 else math.nan


def probe(learner: Any, states: int) -> dict[str, float]:
    """The alignment of ``learner``'s hidden slopes and feedback matrices now (see the module doc)."""
    generator_state = learner.generator.get_state()  # sampling must not change the run
    voltages = learner.sample().voltages
    while voltages.shape[0] < states:
        voltages = torch.cat([voltages, learner.sample().voltages])
    learner.generator.set_state(generator_state)
    voltages = voltages[:states]
    kind = learner.feedback
    try:
        used = learner.action_slopes(voltages)
        learner.feedback = "weights"
        exact = learner.action_slopes(voltages)
    finally:
        learner.feedback = kind
    row: dict[str, float] = {}
    for i, lay in enumerate(learner.layouts):
        if learner.is_output[i] or learner.depths[i] is None:
            continue
        row[f"slope_cosine/{lay.name}"] = _cosine(used[i], exact[i])
        row[f"slope_sign/{lay.name}"] = float((torch.sign(used[i]) == torch.sign(exact[i])).double().mean())
        for edge in learner.edges[i]:
            target = learner.layouts[edge.target].name
            forward = learner.actor[edge.target][:, edge.columns]
            row[f"weight_cosine/{lay.name}->{target}"] = _cosine(learner.feedback_matrix(edge), forward)
    return row


def run_seed(config: AlignmentConfig, seed: int, folder: Path) -> list[dict[str, float]]:
    """Train one seed with probes; write ``probes.csv`` and the trainer's light files into ``folder``."""
    import shutil
    import tempfile

    from neuron_env.agents.train import TrainConfig, Trainer

    from neuron_env.run_output import write_csv

    rows: list[dict[str, float]] = []

    def on_step(trainer: Trainer) -> None:
        if trainer.task_step % config.probe_every == 0 and trainer.learner.num_updates > 0:
            rows.append({"task_step": trainer.task_step, **probe(trainer.learner, config.probe_states)})

    with tempfile.TemporaryDirectory(prefix="feedback-alignment-") as work:
        train_config = TrainConfig(task="Pendulum-v1", learner="feedback", hidden=list(config.hidden),
                                   steps=config.steps, seed=seed, eval_every=config.steps, eval_episodes=20,
                                   progress=False, tensorboard=False, out=work)
        Trainer(train_config, on_step=on_step).run()
        folder.mkdir(parents=True, exist_ok=True)
        write_csv(folder / "probes.csv", rows, list(rows[0]))
        for name in ("metrics.csv", "config.json", "summary.json"):
            shutil.copy(Path(work) / name, folder / name)
    return rows


def read_probes(out: Path) -> dict[str, dict[int, list[dict[str, float]]]]:
    """``{network: {seed: probe rows}}`` of every completed seed under ``out``."""
    found: dict[str, dict[int, list[dict[str, float]]]] = {}
    for summary in sorted(out.glob("*/seed*/summary.json")):
        if json.loads(summary.read_text()).get("status") != "completed":
            continue
        with open(summary.parent / "probes.csv", newline="") as stream:
            rows = [{k: float(v) for k, v in row.items()} for row in csv.DictReader(stream)]
        found.setdefault(summary.parent.parent.name, {})[int(summary.parent.name.removeprefix("seed"))] = rows
    return found


def report(out: Path) -> dict[str, Any]:
    """Write ``alignment.json``/``.md``/``.png`` from the probes under ``out``."""
    from neuron_env.run_output import atomic_write_json, atomic_write_text

    probes = read_probes(out)
    if not probes:
        raise SystemExit(f"no completed seeds under {out}: run the study first")
    table: dict[str, Any] = {}
    lines = ["Pendulum-v1, the `feedback` learner (`feedback=\"random\"`, its defaults); each measure at the first "
             "probe (the first updates) and at the last, mean ± std over seeds.", "",
             "| network | seeds | measure | first probe | last probe (task step) |", "|---|---|---|---|---|"]
    for network, by_seed in sorted(probes.items()):
        measures = [k for k in next(iter(by_seed.values()))[0] if k != "task_step"]
        table[network] = {"seeds": sorted(by_seed), "measures": {}}
        for measure in measures:
            first = [rows[0][measure] for rows in by_seed.values()]
            last = [rows[-1][measure] for rows in by_seed.values()]
            stats = {name: (statistics.fmean(v), statistics.pstdev(v)) for name, v in (("first", first),
                                                                                       ("last", last))}
            table[network]["measures"][measure] = {"first_mean": stats["first"][0], "first_std": stats["first"][1],
                                                   "last_mean": stats["last"][0], "last_std": stats["last"][1]}
            last_step = int(min(rows[-1]["task_step"] for rows in by_seed.values()))
            lines.append(f"| {network} | {len(by_seed)} | {measure} | {stats['first'][0]:.2f} ± "
                         f"{stats['first'][1]:.2f} | {stats['last'][0]:.2f} ± {stats['last'][1]:.2f} ({last_step}) |")
    lines += ["", "Regenerate: `python studies/feedback_alignment.py --hidden 64 64` and `--hidden 8 8` "
              "(then `--report-only`)."]
    atomic_write_json(out / "alignment.json", table)
    atomic_write_text(out / "alignment.md", "\n".join(lines) + "\n")
    plot(probes, out / "alignment.png")
    return table


def plot(probes: dict[str, dict[int, list[dict[str, float]]]], path: Path) -> None:
    """Slope cosine per hidden group against task steps, one panel per network, one line per seed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(probes), figsize=(5.5 * len(probes), 3.8), squeeze=False)
    for axis, (network, by_seed) in zip(axes[0], sorted(probes.items()), strict=True):
        for seed, rows in sorted(by_seed.items()):
            for measure in (k for k in rows[0] if k.startswith("slope_cosine/")):
                axis.plot([r["task_step"] for r in rows], [r[measure] for r in rows],
                          label=f"{measure.split('/')[1]} seed {seed}", alpha=0.8)
        axis.axhline(0.0, color="grey", linewidth=0.8)
        axis.set(title=f"Pendulum-v1 {network}", xlabel="task steps", ylabel="cosine(FA slope, exact slope)",
                 ylim=(-0.2, 1.0))
        axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    """Run the seeds that are not complete, then rewrite the report."""
    sys.path.insert(0, str(REPO))
    from neuron_env.configs import config_parser

    parser = config_parser(AlignmentConfig, __doc__.split("\n\n")[0] if __doc__ else None)
    config = AlignmentConfig(**vars(parser.parse_args(argv)))
    out = Path(config.out)
    if not config.report_only:
        for seed in config.seeds:
            folder = out / network_name(config.hidden) / f"seed{seed}"
            summary = folder / "summary.json"
            if summary.is_file() and json.loads(summary.read_text()).get("status") == "completed":
                print(f"{folder}: completed earlier", flush=True)
                continue
            rows = run_seed(config, seed, folder)
            last = {k: round(v, 3) for k, v in rows[-1].items() if k.startswith("slope_cosine")}
            print(f"{folder}: {len(rows)} probes, last {last}", flush=True)
    table = report(out)
    print((out / "alignment.md").read_text())
    return 0 if table else 1


if __name__ == "__main__":
    raise SystemExit(main())
