"""Which neurons fire on each tick under the asynchronous clock (the figure of docs/tasks-and-spaces.md).

A 2-3-1 network on MountainCarContinuous-v0 (delay 2) with ``clock="async", firing_rate=0.5``,
``reset(seed=0)``: ■ the neuron fired, · it held its voltage; ↑ the task stepped. Run::

    python examples/async_clock_firing.py
"""

from __future__ import annotations

import numpy as np
import torch

from neuron_env import NeuronVecEnv, Topology


def firing_table(ticks: int = 12, firing_rate: float = 0.5, seed: int = 0) -> str:
    """The firing pattern of every agent over ``ticks`` ticks, as text."""
    topology = Topology.mlp(2, [3], 1)
    core = NeuronVecEnv("MountainCarContinuous-v0", topology, clock="async", firing_rate=firing_rate)
    core.reset(seed=seed)
    fired, stepped = [], []
    for _ in range(ticks):
        result = core.step(torch.zeros(1, topology.num_agents))
        fired.append(result.info["fired"][0].cpu().numpy())
        stepped.append(result.task_stepped)
    core.close()
    lines = ["tick     " + " ".join(f"{t + 1:>2}" for t in range(ticks))]
    for agent, row in zip(topology.agent_ids, np.array(fired).T, strict=True):
        lines.append(f"{agent:<8} " + " ".join(" ■" if f else " ·" for f in row))
    lines.append("task     " + " ".join(" ↑" if s else "  " for s in stepped))
    return "\n".join(line.rstrip() for line in lines)


if __name__ == "__main__":
    print(firing_table())
