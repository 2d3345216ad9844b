"""What the trained networks of the memory study's async phase do, tick by tick: who fires, and their voltages.

Issue 24's async-clock phase (``studies/memory.py --phase async-cartpole-novel``) trains the
recurrent local learner at firing rates 1, 0.5 and 0.25. This script takes one seed's trained
network at each rate and runs it for the first ``--ticks`` ticks of an evaluation episode (the
start the trainer evaluates on, ``evaluation_seed(seed)``), under the run's own clock, acting by
``μ`` (no noise), as ``neuron-env enjoy`` does. It records each agent's firing (``info["fired"]``)
and voltage on every tick and writes, under ``<out>/<phase>/``:

``activity.png``
    one row per firing rate: the firing raster (agents × ticks; dark = fired) beside the hidden
    and output voltages over the same ticks, the task steps marked.
``activity.md`` / ``activity.json``
    per rate and group, the fraction of ticks its neurons fired and the mean |voltage change| per
    tick, with the episode's task return over the plotted ticks.

Usage (after the phase's runs; seconds)::

    python studies/memory_activity.py                                  # seed 0 of async-cartpole-novel
    python studies/memory_activity.py --seed 1 --ticks 200 --out /tmp/activity
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from grid import run_folder  # noqa: E402
from memory import PHASES, STUDY  # noqa: E402
from neuron_env.agents.enjoy import run_clock  # noqa: E402
from neuron_env.agents.train import (  # noqa: E402
    build_topology,
    config_from_checkpoint,
    evaluation_seed,
    load_checkpoint,
    weights_from_checkpoint,
)

from neuron_env.dynamics import network_actions  # noqa: E402
from neuron_env.vector import NeuronVecEnv  # noqa: E402

#: The async phase's rows, highest firing rate first.
ASYNC_METHODS: tuple[str, ...] = ("eprop-async-1.0", "eprop-async-0.5", "eprop-async-0.25")


@dataclass
class ActivityConfig:
    """Which trained networks to run and where the figure goes (every field is a flag)."""

    phase: str = "async-cartpole-novel"
    """The memory study's async phase."""
    seed: int = 0
    """The seed whose trained networks are run."""
    ticks: int = 120
    """Ticks of the evaluation episode recorded (fewer if it ends first)."""
    work: str = STUDY.work
    """Where the study's runs are."""
    out: str = STUDY.out
    """Where ``<phase>/activity.*`` go."""


def record_activity(folder: Path, ticks: int) -> dict[str, Any]:
    """Run a trained network for ``ticks`` ticks of its evaluation episode under its own clock.

    Args:
        folder: A finished ``neuron-env train`` run folder.
        ticks: How many ticks to record (fewer if the episode ends first).

    Returns:
        ``{"task", "clock", "firing_rate", "groups", "agent_ids", "fired", "voltages",
        "task_ticks", "task_return"}``: ``fired`` and ``voltages`` are ``[ticks, agents]`` lists
        (voltages after each tick), ``task_ticks`` the ticks on which the task stepped.
    """
    payload = load_checkpoint(folder)
    config = config_from_checkpoint(payload)
    clock, firing_rate = run_clock(config)
    topology = build_topology(config)
    weights = weights_from_checkpoint(payload).checked(topology)
    env = NeuronVecEnv(config.task, topology, num_envs=1, validate=False, clock=clock, firing_rate=firing_rate)
    fired, voltages_seen, task_ticks, total = [], [], [], 0.0
    everyone = torch.ones(1, topology.num_agents, dtype=torch.bool)  # the sync clock's "fired": every agent
    try:
        voltages, _ = env.reset(seed=evaluation_seed(config.seed))
        for tick in range(ticks):
            with torch.no_grad():
                step = env.step(network_actions(voltages, topology, weights))
            voltages = step.voltages
            fired.append(step.info.get("fired", everyone)[0].cpu().numpy().astype(bool).tolist())
            # on the episode's last tick the env has already reset: its voltages before that are final_voltages
            seen = step.info.get("final_voltages", voltages) if step.task_stepped else voltages
            voltages_seen.append(seen[0, topology.agent_neuron_index].cpu().numpy().tolist())
            if step.task_stepped:
                task_ticks.append(tick)
                total += float(step.reward[0])
                if bool(step.terminated[0] or step.truncated[0]):
                    break
    finally:
        env.close()
    groups = {g.name: list(range(topology.num_agents)[topology.agent_slice[g.name]]) for g in topology.agent_groups}
    return {"task": config.task, "clock": clock, "firing_rate": firing_rate, "groups": groups,
            "agent_ids": list(topology.agent_ids), "fired": fired, "voltages": voltages_seen,
            "task_ticks": task_ticks, "task_return": total}


def summarize(activity: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Per group: the fraction of (tick, neuron) pairs that fired and the mean |voltage change| per tick."""
    fired = np.asarray(activity["fired"], dtype=float)
    voltages = np.asarray(activity["voltages"])
    change = np.abs(np.diff(voltages, axis=0)) if len(voltages) > 1 else np.zeros((0, voltages.shape[1]))
    return {group: {"fired": float(fired[:, index].mean()),
                    "voltage_change": float(change[:, index].mean()) if len(change) else 0.0}
            for group, index in activity["groups"].items()}


def plot_activity(activities: dict[str, dict[str, Any]], path: Path) -> None:
    """One row per run: the firing raster beside the voltages over the recorded ticks."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(len(activities), 2, figsize=(12, 2.6 * len(activities)), squeeze=False)
    for row, (method, activity) in enumerate(activities.items()):
        raster, traces = axes[row]
        fired = np.asarray(activity["fired"], dtype=float).T  # [agents, ticks]
        raster.imshow(fired, aspect="auto", cmap="Greys", interpolation="nearest", vmin=0, vmax=1)
        for index in list(activity["groups"].values())[:-1]:
            raster.axhline(index[-1] + 0.5, color="tab:red", linewidth=0.8)  # group boundary
        raster.set_ylabel("agent (" + ", ".join(activity["groups"]) + ")")
        raster.set_title(f"{method}: who fires (dark), firing rate {activity['firing_rate']:g}", fontsize=9)
        voltages = np.asarray(activity["voltages"])
        for group, index in activity["groups"].items():
            style = {"linewidth": 1.6, "color": "black"} if group == list(activity["groups"])[-1] else \
                {"linewidth": 0.6, "alpha": 0.7}
            for position, agent in enumerate(index):
                traces.plot(voltages[:, agent], label=group if position == 0 else None, **style)
        for tick in activity["task_ticks"]:
            traces.axvline(tick, color="tab:red", linewidth=0.3, alpha=0.4)
        traces.set_ylabel("voltage")
        traces.set_title(f"voltages (output in black; red: task steps); task return {activity['task_return']:.0f}",
                         fontsize=9)
        traces.legend(fontsize=7, loc="upper right")
    for axis in axes[-1]:
        axis.set_xlabel("tick")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def render_table(activities: dict[str, dict[str, Any]], seed: int, ticks: int) -> str:
    """The activity summary as a Markdown table (``ticks``: the most recorded per run)."""
    groups = list(next(iter(activities.values()))["groups"])
    lines = [f"Seed {seed}'s trained networks, the first {ticks} ticks of an evaluation episode (fewer where it "
             "ended) under each run's own clock, acting by μ: per group, the fraction of (tick, neuron) pairs that "
             "fired / the mean |voltage change| per tick.", "",
             "| run | firing rate | ticks | " + " | ".join(groups) + " | task return over these ticks |",
             "|---|---|---|" + "---|" * len(groups) + "---|"]
    for method, activity in activities.items():
        summary = summarize(activity)
        cells = " | ".join(f"{summary[g]['fired']:.2f} / {summary[g]['voltage_change']:.3f}" for g in groups)
        lines.append(f"| `{method}` | {activity['firing_rate']:g} | {len(activity['fired'])} | {cells} | "
                     f"{activity['task_return']:.0f} |")
    return "\n".join(lines) + "\n"


def activity_report(config: ActivityConfig) -> dict[str, Any]:
    """Record, plot and tabulate every finished async run of ``config.seed``; writes ``<out>/<phase>/activity.*``.

    Raises:
        FileNotFoundError: If none of the phase's async runs of that seed has a checkpoint (naming
            the command that makes them).
    """
    phase = PHASES[config.phase]
    activities = {}
    for method in (m for m in ASYNC_METHODS if m in phase.methods):
        folder = run_folder(STUDY, config.phase, method, config.seed, config.work)
        if (folder / "checkpoint.pt").is_file():
            activities[method] = record_activity(folder, config.ticks)
    if not activities:
        raise FileNotFoundError(f"no finished async run of seed {config.seed} under {config.work}/{config.phase}; "
                                f"run `python studies/memory.py --phase {config.phase}` first")
    target = Path(config.out) / config.phase
    target.mkdir(parents=True, exist_ok=True)
    plot_activity(activities, target / "activity.png")
    table = render_table(activities, config.seed, config.ticks)
    table += (f"\nRegenerate: `python studies/memory_activity.py --phase {config.phase} --seed {config.seed} "
              f"--ticks {config.ticks}` (after `python studies/memory.py --phase {config.phase}`).\n")
    (target / "activity.md").write_text(table)
    summary = {method: {"firing_rate": a["firing_rate"], "task_return": a["task_return"], "groups": summarize(a),
                        "ticks": len(a["fired"])} for method, a in activities.items()}
    (target / "activity.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(table)
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: the fields of ``ActivityConfig`` as flags."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    defaults = ActivityConfig()
    parser.add_argument("--phase", choices=[p for p, phase in PHASES.items()
                                            if any(m in phase.methods for m in ASYNC_METHODS)], default=defaults.phase)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--ticks", type=int, default=defaults.ticks)
    parser.add_argument("--work", default=defaults.work)
    parser.add_argument("--out", default=defaults.out)
    args = parser.parse_args(argv)
    if args.ticks < 1:
        parser.error(f"--ticks {args.ticks} must be >= 1")
    try:
        activity_report(ActivityConfig(**vars(args)))
    except FileNotFoundError as error:
        parser.exit(2, f"{parser.prog}: error: {error}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
