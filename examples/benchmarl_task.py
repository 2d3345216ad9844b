"""BenchMARL: train a neuron-env network with MAPPO, MADDPG or any continuous BenchMARL algorithm.

``neuron_env.integrations.benchmarl`` holds the task and the settings; this script only wires
them to the command line:

* ``neuron_task(task, hidden=...)`` is the BenchMARL ``TaskClass``: every non-input layer is an
  agent group (``h1``, ``out``), its envs are the batched ``NeuronTorchRLEnv`` (``--env
  pettingzoo``: TorchRL's ``PettingZooWrapper``, much slower), and an episode lasts a full task
  episode in ticks (``delay × max_episode_steps``: 400 for Pendulum-v1 with one hidden layer).
* ``recommended_settings(task, ...)`` converts BenchMARL's frame-based settings to the network's
  clock (a frame is a tick; the task steps every ``delay`` ticks): the per-tick discount
  ``0.99 ** (1 / delay)``, batches of whole episodes, evaluations every whole number of batches.
  They are first-principles defaults that issue 26's study will measure; the module page
  (``docs/integrations.md``, BenchMARL) gives each one's reason.
* ``make_experiment(task, algorithm, settings=...)`` is BenchMARL's ``Experiment`` with those
  settings, no loggers and no rendering.

Environment: BenchMARL needs its own venv (torchrl 0.11.1 and a matching torch/torchvision
pair); ``make test-marl`` builds ``.venv-marl`` with the ``benchmarl`` extra and runs the tests.

Run (the first: two MAPPO iterations of 15 Pendulum episodes each, about a minute each on one
CPU thread, most of it BenchMARL's 45 passes over every batch; the second: a whole run of
20 000 task steps with an evaluation every 10 episodes), with ``.venv-marl/bin/python``::

    python examples/benchmarl_task.py
    python examples/benchmarl_task.py --algorithm maddpg --hidden 8 8 --max-task-steps 20000 --evaluation
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from neuron_env.integrations.benchmarl import ALGORITHMS, ENV_KINDS, make_experiment, neuron_task, recommended_settings

if TYPE_CHECKING:  # BenchMARL itself is imported by the integration (which says how to install it if missing)
    from benchmarl.experiment import Experiment


@dataclass
class Args:
    """Configuration of one BenchMARL run."""

    task: str = "Pendulum-v1"
    """Gymnasium task id."""
    hidden: tuple[int, ...] = (4,)
    """Hidden layer sizes of the neuron network (one agent group per layer, plus ``out``)."""
    algorithm: str = "mappo"
    """A continuous-action BenchMARL algorithm: mappo, ippo, maddpg, iddpg, masac, isac."""
    env: str = "native"
    """``native`` (``NeuronTorchRLEnv``) or ``pettingzoo`` (TorchRL's ``PettingZooWrapper``)."""
    max_cycles: int | None = None
    """Ticks per episode (None: a full task episode)."""
    episodes_per_batch: int | None = None
    """Task episodes per collected batch (None: the fewest reaching BenchMARL's 6000 frames)."""
    max_task_steps: int | None = None
    """Training budget in task steps (None: ``max_n_iters`` iterations)."""
    max_n_iters: int = 2
    """Iterations to run when no ``max_task_steps`` is given."""
    model_cells: tuple[int, ...] | None = None
    """Hidden sizes of every policy and critic MLP (None: BenchMARL's 256, 256)."""
    evaluation: bool = False
    """Evaluate every ``evaluation_interval`` frames, results in the experiment folder's JSON."""
    seed: int = 0
    """Seed of the experiment."""
    save_folder: str | None = None
    """Where BenchMARL writes its experiment folder (None: a new temporary folder)."""
    torch_threads: int = 1
    """``torch.set_num_threads`` (0 keeps torch's default); small networks run fastest on one thread."""


def train(args: Args) -> Experiment:
    """Build the task, its recommended settings and the experiment; run it; return it."""
    if args.torch_threads > 0:
        torch.set_num_threads(args.torch_threads)
    task = neuron_task(args.task, hidden=args.hidden, env=args.env, max_cycles=args.max_cycles)
    settings = recommended_settings(task, episodes_per_batch=args.episodes_per_batch,
                                    max_task_steps=args.max_task_steps)
    experiment = make_experiment(task, args.algorithm, settings=settings, seed=args.seed,
                                 model_cells=args.model_cells,
                                 max_n_iters=None if args.max_task_steps else args.max_n_iters,
                                 save_folder=args.save_folder, evaluation=args.evaluation)
    experiment.run()
    print(f"{args.algorithm} on {len(experiment.group_map)} groups "
          f"({', '.join(f'{g}: {len(a)} neurons' for g, a in experiment.group_map.items())}), delay "
          f"{task.config['delay']}, gamma {settings.gamma:.5f} per tick: {experiment.n_iters_performed} iterations, "
          f"{experiment.total_frames} frames (ticks); folder {experiment.folder_name}")
    return experiment


def parse_args() -> Args:
    """``Args`` from the command line (``--field value``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for field in dataclasses.fields(Args):
        flag = "--" + field.name.replace("_", "-")
        if field.name in ("hidden", "model_cells"):
            parser.add_argument(flag, type=int, nargs="+", default=field.default)
        elif field.name in ("max_cycles", "episodes_per_batch", "max_task_steps"):
            parser.add_argument(flag, type=int, default=None)
        elif field.name == "save_folder":
            parser.add_argument(flag, type=str, default=None)
        elif field.name == "evaluation":
            parser.add_argument(flag, action="store_true")
        elif field.name in ("algorithm", "env"):
            parser.add_argument(flag, choices=ALGORITHMS if field.name == "algorithm" else ENV_KINDS,
                                default=field.default)
        else:
            parser.add_argument(flag, type=type(field.default), default=field.default)
    namespace = parser.parse_args()
    namespace.hidden = tuple(namespace.hidden)
    namespace.model_cells = None if namespace.model_cells is None else tuple(namespace.model_cells)
    return Args(**vars(namespace))


if __name__ == "__main__":
    train(parse_args())
