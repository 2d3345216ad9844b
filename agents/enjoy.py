"""``neuron-env enjoy``: run a trained network on its task, deterministically.

Loads the weights stored in a run's ``checkpoint.pt`` and lets every neuron act by
``σ(K^n v + b^n)`` (no noise) through ``NeuronVecEnv``; prints each episode's
return and their mean. With ``render=True`` the task is created with ``render_mode="human"``
(where the task supports it)::

    neuron-env enjoy --checkpoint runs/pendulum --episodes 3 --render
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from neuron_env.agents.train import build_topology, config_from_checkpoint, load_checkpoint, weights_from_checkpoint

from neuron_env.dynamics import network_actions
from neuron_env.vector import NeuronVecEnv


def enjoy(checkpoint: str | Path, episodes: int = 3, render: bool = False, seed: int | None = None,
          verbose: bool = True, max_ticks: int = 1_000_000) -> list[float]:
    """Run a checkpoint's network for ``episodes`` episodes; returns their returns.

    Args:
        checkpoint: A run directory (``--out`` of ``neuron-env train``) or a checkpoint file.
        episodes: Number of episodes.
        render: Render the task (``render_mode="human"``).
        seed: Seed of the first episode (episode ``i`` gets ``seed + i``); default: the run's seed.
        verbose: Print every return.
        max_ticks: Safety limit per episode for tasks without a time limit.

    Raises:
        CheckpointError: If the checkpoint cannot be read.
    """
    payload = load_checkpoint(checkpoint)
    config = config_from_checkpoint(payload)
    topology = build_topology(config)
    weights = weights_from_checkpoint(payload).checked(topology)
    env = NeuronVecEnv(config.task, topology, num_envs=1, validate=False,
                       render_mode="human" if render else None)
    seed = config.seed if seed is None else seed
    returns: list[float] = []
    try:
        for episode in range(episodes):
            voltages, _ = env.reset(seed=seed + episode)
            total = 0.0
            for _ in range(max_ticks):
                with torch.no_grad():
                    step = env.step(network_actions(voltages, topology, weights))
                voltages = step.voltages
                if step.task_stepped:
                    total += float(step.reward[0])
                    if bool(step.terminated[0] or step.truncated[0]):
                        break
            returns.append(total)
            if verbose:
                print(f"episode {episode}: return {total:.2f}")
    finally:
        env.close()
    if verbose:
        print(f"mean return over {episodes} episodes: {np.mean(returns):.2f} ± {np.std(returns):.2f} "
              f"({config.task}, critic {config.critic}, {payload['trainer']['task_step']} task steps)")
    return returns
