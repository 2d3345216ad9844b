"""Render a network acting on a task: the task's frame beside the network's activity.

Writes one PNG frame (the picture in the README and docs) and, with ``--gif``, a whole
episode as an animated GIF. The network has random weights unless a trained one is passed
through the ``neuron-env render`` command::

    python examples/render_network.py --out docs/assets/frame.png --tick 31
    python examples/render_network.py --gif episode.gif --ticks 150

Without ``--out`` the PNG goes into a new temporary folder (the path is printed); nothing is
written into the repository unless asked for.

Needs ``pygame`` for the task frame of classic-control tasks (``pip install -e '.[render]'``);
without it only the network panel is drawn.
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from neuron_env import NetworkPolicy, Topology, neuron_v0


@dataclass
class Config:
    """What to render."""

    task: str = "Pendulum-v1"
    """Gymnasium id of the task."""
    hidden: tuple[int, ...] = (64, 64)
    """Hidden layer sizes of the tanh MLP."""
    seed: int = 1
    """Seed of the task's reset and of the random weights."""
    tick: int = 31
    """Tick whose frame is saved as the PNG."""
    ticks: int = 150
    """Ticks rendered into the GIF."""
    out: str | None = None
    """PNG file of the frame at ``tick``; default ``frame.png`` in a new temporary folder."""
    gif: str | None = None
    """Optional GIF of ``ticks`` ticks."""


def render(config: Config) -> np.ndarray:
    """Run the network and save the requested frames; returns the PNG frame (``config.out`` is set)."""
    probe = neuron_v0.parallel_env(task=config.task, hidden=config.hidden)
    topology = Topology.mlp(probe.topology.obs_dim, list(config.hidden), probe.topology.act_dim)
    probe.close()
    env = neuron_v0.parallel_env(task=config.task, topology=topology, render_mode="rgb_array")
    policy = NetworkPolicy(topology, seed=config.seed)
    observations, _ = env.reset(seed=config.seed)
    frames, picture = [], None
    for tick in range(max(config.tick, config.ticks if config.gif else 0) + 1):
        if tick == config.tick:
            picture = env.render()
        if config.gif and tick < config.ticks:
            frames.append(Image.fromarray(env.render()))
        observations, *_ = env.step(policy.act(observations))
    env.close()
    if config.out is None:
        config.out = str(Path(tempfile.mkdtemp(prefix="neuron-env-render-")) / "frame.png")
    Image.fromarray(picture).save(config.out)
    if config.gif:
        frames[0].save(config.gif, save_all=True, append_images=frames[1:], duration=33, loop=0)
    return picture


def main() -> None:
    """Parse the command line into a ``Config`` and render."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for name, field in Config.__dataclass_fields__.items():
        default = field.default
        if name == "hidden":
            parser.add_argument("--hidden", type=int, nargs="+", default=list(default))
        else:
            parser.add_argument(f"--{name}", type=type(default) if default is not None else str, default=default)
    config = Config(**vars(parser.parse_args()))
    config.hidden = tuple(config.hidden)
    frame = render(config)
    print(f"wrote {config.out} ({frame.shape[1]}x{frame.shape[0]})" + (f" and {config.gif}" if config.gif else ""))


if __name__ == "__main__":
    main()
