"""``neuron-env enjoy``: run a trained network on its task, deterministically.

Loads the weights stored in a run's ``checkpoint.pt`` and lets every neuron act by
``σ(K^n v + b^n)`` (no noise) through ``NeuronVecEnv``; prints each episode's
return and their mean. With ``render=True`` the task is created with ``render_mode="human"``
(where the task supports it)::

    neuron-env enjoy --checkpoint runs/pendulum --episodes 3 --render
    neuron-env enjoy --checkpoint runs/pendulum --clock async --firing-rate 0.5   # another clock

Both ``enjoy`` and ``render_checkpoint`` run the run's own network (``--topology``, ``--leak`` of
its ``config.json``) under the run's own clock (``--clock``, ``--firing-rate``; a run recorded
before the clock was an option ran ``sync``), unless another clock is given (``run_clock``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from neuron_env.agents.capabilities import check_clock_options
from neuron_env.agents.train import (
    TrainConfig,
    build_topology,
    config_from_checkpoint,
    load_checkpoint,
    weights_from_checkpoint,
)

from neuron_env.dynamics import network_actions
from neuron_env.run_folders import check_output_file
from neuron_env.vector import NeuronVecEnv

#: The files ``render_checkpoint`` writes: GIF (Pillow) or MP4 (imageio-ffmpeg).
RENDER_SUFFIXES: tuple[str, ...] = (".gif", ".mp4")


def run_clock(config: TrainConfig, clock: str | None = None, firing_rate: float | None = None) -> tuple[str, float]:
    """The clock a trained network is run with: the run's own, or ``clock`` / ``firing_rate`` where given.

    A ``firing_rate`` not given is the run's when the clock is the run's ``async``, else 1 (so
    ``clock="sync"`` alone switches an async run to the sync clock).

    Raises:
        LearnerConfigError: On an unknown clock or a firing rate outside (0, 1] (naming the flag).
    """
    chosen = config.clock if clock is None else clock
    if firing_rate is None:
        firing_rate = config.firing_rate if chosen == "async" and config.clock == "async" else 1.0
    check_clock_options(chosen, firing_rate)
    return chosen, float(firing_rate)


def enjoy(checkpoint: str | Path, episodes: int = 3, render: bool = False, seed: int | None = None,
          verbose: bool = True, max_ticks: int = 1_000_000, clock: str | None = None,
          firing_rate: float | None = None) -> list[float]:
    """Run a checkpoint's network for ``episodes`` episodes; returns their returns.

    Args:
        checkpoint: A run directory (``--out`` of ``neuron-env train``) or a checkpoint file.
        episodes: Number of episodes.
        render: Render the task (``render_mode="human"``).
        seed: Seed of the first episode (episode ``i`` gets ``seed + i``); default: the run's seed.
        verbose: Print every return.
        max_ticks: Safety limit per episode for tasks without a time limit.
        clock: ``"sync"`` or ``"async"``; default: the run's (``run_clock``).
        firing_rate: Firing probability of the async clock; default: the run's (``run_clock``).

    Raises:
        CheckpointError: If the checkpoint cannot be read.
        LearnerConfigError: On a bad ``clock`` or ``firing_rate``.
    """
    payload = load_checkpoint(checkpoint)
    config = config_from_checkpoint(payload)
    clock, firing_rate = run_clock(config, clock, firing_rate)
    topology = build_topology(config)
    weights = weights_from_checkpoint(payload).checked(topology)
    env = NeuronVecEnv(config.task, topology, num_envs=1, validate=False,
                       render_mode="human" if render else None, clock=clock, firing_rate=firing_rate)
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
              f"{f' (critic {config.learner_config().critic})' if config.learner == 'ddpg' else ''}, "
              f"{payload['trainer']['task_step']} task steps"
              f"{f', async clock, firing rate {firing_rate:g}' if clock == 'async' else ''})")
    return returns


def expected_frames(task: str, delay: int, episodes: int, max_ticks: int) -> int:
    """Frames ``episodes`` full-length episodes render (a reset frame, then one per tick), at most ``max_ticks``.

    The task's registered time limit times the ``delay`` ticks per task step; ``max_ticks`` when the task
    has none. Episodes that end early end the progress bar early (it is then set full).
    """
    import gymnasium

    try:
        limit = gymnasium.spec(task).max_episode_steps
    except gymnasium.error.Error:
        limit = None
    return max_ticks if not limit else min(max_ticks, episodes * (1 + limit * delay))


def write_video(frames: list[np.ndarray], path: Path, fps: int, advance: Callable[[int], Any]) -> None:
    """Encode ``frames`` into ``path`` (``.gif``: Pillow; ``.mp4``: imageio-ffmpeg), calling ``advance(1)`` per frame.

    The GIF frames are converted to adaptive palettes one by one (what Pillow's GIF writer does to RGB frames
    inside ``save``), so the slow part of the encoding is visible frame by frame.
    """
    if path.suffix.lower() == ".gif":
        from PIL import Image

        pictures = []
        for frame in frames:
            pictures.append(Image.fromarray(frame).convert("P", palette=Image.Palette.ADAPTIVE))
            advance(1)
        pictures[0].save(path, save_all=True, append_images=pictures[1:], duration=round(1000 / fps), loop=0)
        return
    import imageio.v2 as imageio

    with imageio.get_writer(path, fps=fps) as writer:
        for frame in frames:
            writer.append_data(frame)
            advance(1)


def record_frames(env: Any, policy: Any, seed: int, episodes: int, max_ticks: int, bar: Any) -> list[np.ndarray]:
    """Every tick's frame of ``episodes`` episodes (seeds ``seed``, ``seed + 1``, …), at most ``max_ticks``."""
    frames: list[np.ndarray] = []
    for episode in range(episodes):
        observations, _ = env.reset(seed=seed + episode)
        frames.append(env.render())
        bar.update(1)
        while env.agents and len(frames) < max_ticks:
            observations, *_ = env.step(policy.act(observations))
            frames.append(env.render())
            bar.update(1)
        bar.set_postfix(episode=f"{episode + 1}/{episodes}", refresh=False)
    bar.total = len(frames)  # episodes that ended before their time limit: the bar ends full
    bar.refresh()
    return frames


def render_checkpoint(checkpoint: str | Path, out: str | Path, episodes: int = 1, seed: int | None = None,
                      fps: int = 30, max_ticks: int = 3000, progress: bool = True, clock: str | None = None,
                      firing_rate: float | None = None) -> int:
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
        progress: Show progress bars on stderr: over the frames (its total is the frames of
            ``episodes`` full-length episodes, capped at ``max_ticks``; it ends full when episodes end
            early), then over the encoding.
        clock: ``"sync"`` or ``"async"``; default: the run's (``run_clock``).
        firing_rate: Firing probability of the async clock; default: the run's (``run_clock``).

    Returns:
        The number of frames written.

    Raises:
        RunFolderError: If ``out`` is neither ``.gif`` nor ``.mp4``, is a folder, or lies under a file.
        CheckpointError: If the checkpoint cannot be read.
        LearnerConfigError: On a bad ``clock`` or ``firing_rate``.
    """
    from tqdm.auto import tqdm

    from neuron_env.parallel import NeuronParallelEnv
    from neuron_env.policy import NetworkPolicy

    # before any rendering: a wrong suffix, a folder, or a path under a file (`neuron-env render` also refuses
    # an existing file unless --overwrite)
    out = check_output_file(out, RENDER_SUFFIXES, overwrite=True)
    payload = load_checkpoint(checkpoint)
    config = config_from_checkpoint(payload)
    clock, firing_rate = run_clock(config, clock, firing_rate)
    topology = build_topology(config)
    policy = NetworkPolicy(topology, weights_from_checkpoint(payload))
    env = NeuronParallelEnv(config.task, topology, render_mode="rgb_array", clock=clock, firing_rate=firing_rate)
    bar = tqdm(total=expected_frames(config.task, env.core.delay, episodes, max_ticks), unit="frame",
               desc=f"render {config.task}", disable=not progress, dynamic_ncols=True)
    try:
        frames = record_frames(env, policy, config.seed if seed is None else seed, episodes, max_ticks, bar)
    finally:
        bar.close()
        env.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_name(f".{out.name}.tmp{out.suffix}")  # written whole, then renamed
    encoding = tqdm(total=len(frames), unit="frame", desc=f"encode {out.name}", disable=not progress,
                    dynamic_ncols=True)
    try:
        write_video(frames, temporary, fps, encoding.update)
    finally:
        encoding.close()
    temporary.replace(out)
    return len(frames)
