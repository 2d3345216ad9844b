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
from neuron_env.agents.errors import LearnerConfigError
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
              f"({config.task}, learner {config.learner}"
              f"{f' (critic {config.critic})' if config.learner == 'ddpg' else ''}, "
              f"{payload['trainer']['task_step']} task steps)")
    return returns


def render_checkpoint(checkpoint: str | Path, out: str | Path, episodes: int = 1, seed: int | None = None,
                      fps: int = 30, max_ticks: int = 3000, progress: bool = True) -> int:
    """Write an episode of a checkpoint's network as a GIF or MP4: task frame beside the network.

    Every neuron acts by ``σ(K^n v + b^n)`` through the PettingZoo env with
    ``render_mode="rgb_array"``; each tick's frame (see ``neuron_env.rendering``) becomes one
    video frame. ``.gif`` is written with Pillow; ``.mp4`` needs ``imageio`` with its ffmpeg
    plugin (``pip install imageio-ffmpeg``).

    Args:
        checkpoint: A run directory (``--out`` of ``neuron-env train``) or a checkpoint file.
        out: Output file, ``.gif`` or ``.mp4``.
        episodes: Episodes to record, one after another.
        seed: Seed of the first episode; default: the run's seed.
        fps: Frames (ticks) per second of the video.
        max_ticks: At most this many frames in all.
        progress: Show a progress bar over the frames (on stderr; its total is ``max_ticks``
            until the last episode ends, then the frames recorded).

    Returns:
        The number of frames written.

    Raises:
        LearnerConfigError: If ``out`` is neither ``.gif`` nor ``.mp4``.
        CheckpointError: If the checkpoint cannot be read.
    """
    from tqdm.auto import tqdm

    from neuron_env.parallel import NeuronParallelEnv
    from neuron_env.policy import NetworkPolicy

    out = Path(out)
    if out.suffix.lower() not in (".gif", ".mp4"):
        raise LearnerConfigError(f"--out {str(out)!r} must end in .gif or .mp4")
    payload = load_checkpoint(checkpoint)
    config = config_from_checkpoint(payload)
    topology = build_topology(config)
    policy = NetworkPolicy(topology, weights_from_checkpoint(payload))
    env = NeuronParallelEnv(config.task, topology, render_mode="rgb_array")
    seed = config.seed if seed is None else seed
    frames: list[np.ndarray] = []
    bar = tqdm(total=max_ticks, unit="frame", desc=f"render {config.task}", disable=not progress, dynamic_ncols=True)
    try:
        for episode in range(episodes):
            observations, _ = env.reset(seed=seed + episode)
            frames.append(env.render())
            bar.update(1)
            while env.agents and len(frames) < max_ticks:
                observations, *_ = env.step(policy.act(observations))
                frames.append(env.render())
                bar.update(1)
            bar.set_postfix(episode=f"{episode + 1}/{episodes}", refresh=False)
        bar.total = len(frames)  # the episodes ended before max_ticks: the bar ends full
        bar.refresh()
    finally:
        bar.close()
        env.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_name(f".{out.name}.tmp{out.suffix}")  # written whole, then renamed
    if out.suffix.lower() == ".gif":
        from PIL import Image

        pictures = [Image.fromarray(frame) for frame in frames]
        pictures[0].save(temporary, save_all=True, append_images=pictures[1:], duration=round(1000 / fps), loop=0)
    else:
        import imageio.v2 as imageio

        imageio.mimwrite(temporary, frames, fps=fps)
    temporary.replace(out)
    return len(frames)
