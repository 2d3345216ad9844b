"""BenchMARL: neuron-env as a custom task, trained with MAPPO (or any BenchMARL algorithm).

BenchMARL runs its algorithms (MAPPO, IPPO, MADDPG, MASAC, ...) on *tasks*: a ``Task`` enum
whose members become ``TaskClass`` objects that build TorchRL envs. BenchMARL's PettingZoo
tasks build the env by name, so this example subclasses its ``PettingZooClass`` (which already
derives BenchMARL's observation, action and state specs from a TorchRL PettingZoo env) and
overrides only how the env is built: TorchRL's ``PettingZooWrapper`` around
``neuron_v0.parallel_env``. TorchRL groups agents by the text before the last ``_``, so every
layer of neurons is one BenchMARL agent group (``h1``, ``out``) with its own policy, shared by
its neurons (``share_policy_params=True``, BenchMARL's default). The env's ``state()`` (every
neuron's voltage) is the global state that MAPPO's centralised critic sees.

Environment
-----------
BenchMARL imports torchvision, and PyPI's torchvision does not import beside the CPU build of
torch 2.13.0 (``operator torchvision::nms does not exist``). A matching pair is needed; verified
here (Python 3.11, x86_64) with benchmarl 1.5.2, torchrl 0.11.1, tensordict 0.11.0,
torch 2.14.1, torchvision 0.29.1, gymnasium 1.4.0, pettingzoo 1.27.0::

    python -m venv .venv-benchmarl
    .venv-benchmarl/bin/pip install torch==2.14.1 torchvision==0.29.1
    .venv-benchmarl/bin/pip install torch==2.14.1 torchvision==0.29.1 -e . "benchmarl==1.5.2" pytest

On x86_64 that torch 2.14.1 is PyPI's CUDA build (about 5.5 GB in the venv; it runs on the
CPU). On aarch64 ``torch==2.9.1 torchvision==0.24.1`` is a CPU pair. Always pin torch in the
same command as BenchMARL, or pip may replace it.

Things to know
--------------
* BenchMARL's frame counts (``max_n_frames``, ``on_policy_collected_frames_per_batch``) count
  env steps, i.e. *ticks*; the task steps every ``delay`` ticks (the network's depth).
* Evaluation rollouts are at most ``max_cycles`` ticks (``TaskClass.max_steps``), so give the
  task a finite ``max_cycles``.
* BenchMARL's continuous policies squash their actions into each agent's bounds, so the default
  ``tanh`` neurons never leave their range. With unbounded activations (``relu``, identity)
  build the env with ``out_of_range="clip"``.
* The default experiment config logs to ``csv`` and ``wandb`` and evaluates with rendering;
  :func:`make_experiment` turns all of that off.

Run::

    python examples/benchmarl_task.py                      # 2 MAPPO iterations on Pendulum-v1
    python examples/benchmarl_task.py --algorithm ippo --max-n-iters 100 --hidden 8
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from benchmarl.algorithms import IppoConfig, MappoConfig
from benchmarl.environments.common import Task
from benchmarl.environments.pettingzoo.common import PettingZooClass
from benchmarl.experiment import Experiment, ExperimentConfig
from benchmarl.models.mlp import MlpConfig
from torchrl.envs import EnvBase
from torchrl.envs.libs.pettingzoo import PettingZooWrapper

from neuron_env import Topology, neuron_v0

ALGORITHMS = {"mappo": MappoConfig, "ippo": IppoConfig}


class NeuronTaskClass(PettingZooClass):
    """A BenchMARL task whose env is ``neuron_v0.parallel_env`` (config: its keyword arguments).

    ``config`` holds ``task`` (Gymnasium id), ``hidden`` (hidden layer sizes of
    ``Topology.mlp``), ``obs_dim``, ``act_dim`` and ``max_cycles``.
    """

    def get_env_fun(self, num_envs: int, continuous_actions: bool, seed: int | None,
                    device: Any) -> Callable[[], EnvBase]:
        """A function building one TorchRL env (BenchMARL batches copies with ``SerialEnv``)."""
        config = dict(self.config)

        def make() -> EnvBase:
            topology = Topology.mlp(config["obs_dim"], list(config["hidden"]), config["act_dim"])
            parallel = neuron_v0.parallel_env(task=config["task"], topology=topology,
                                              max_cycles=config["max_cycles"])
            with warnings.catch_warnings():  # "PettingZoo in TorchRL is tested using version == 1.24.3"
                warnings.filterwarnings("ignore", message="PettingZoo in TorchRL is tested")
                return PettingZooWrapper(env=parallel, categorical_actions=True, device=device, seed=seed,
                                         return_state=True)

        return make

    def supports_continuous_actions(self) -> bool:
        """Every neuron's action is a ``Box(1,)`` voltage."""
        return True

    def supports_discrete_actions(self) -> bool:
        """No discrete actions."""
        return False

    def has_state(self) -> bool:
        """``state()`` holds every neuron's voltage (for centralised critics)."""
        return True

    def has_render(self, env: EnvBase) -> bool:
        """Rendering stays off (the env supports ``rgb_array``, but it costs time)."""
        return False

    def max_steps(self, env: EnvBase) -> int:
        """Ticks of an evaluation rollout."""
        return self.config["max_cycles"]

    @staticmethod
    def env_name() -> str:
        """The environment's name in BenchMARL's logs and configs."""
        return "neuron_env"


class NeuronTask(Task):
    """neuron-env tasks; ``NeuronTask.NEURON.get_task(config={...})`` builds one."""

    NEURON = None

    @staticmethod
    def associated_class() -> type[NeuronTaskClass]:
        """The ``TaskClass`` of these tasks."""
        return NeuronTaskClass


@dataclass
class Args:
    """Configuration of one BenchMARL run."""

    task: str = "Pendulum-v1"
    """Gymnasium task id."""
    obs_dim: int = 3
    """Task observation size (Pendulum-v1: 3)."""
    act_dim: int = 1
    """Task action size (Pendulum-v1: 1)."""
    hidden: tuple[int, ...] = (4,)
    """Hidden layer sizes of the neuron network (one agent group per layer, plus ``out``)."""
    max_cycles: int = 100
    """Ticks per episode (also the length of evaluation rollouts)."""
    algorithm: str = "mappo"
    """``mappo`` or ``ippo``."""
    max_n_iters: int = 2
    """Collect/train iterations."""
    frames_per_batch: int = 200
    """Ticks collected per iteration (over all env copies)."""
    n_envs: int = 2
    """Env copies per collector."""
    minibatch_size: int = 100
    """Frames per minibatch."""
    minibatch_iters: int = 2
    """Minibatch updates per iteration."""
    num_cells: tuple[int, ...] = (16,)
    """Hidden sizes of every policy and critic MLP."""
    lr: float = 3e-4
    """Adam learning rate."""
    seed: int = 0
    """Seed of the experiment."""
    save_folder: str | None = None
    """Where BenchMARL writes its experiment folder (None: a new temporary folder)."""
    torch_threads: int = 1
    """``torch.set_num_threads`` (0 keeps torch's default); small networks run fastest on one thread."""


def make_experiment(args: Args) -> Experiment:
    """A BenchMARL ``Experiment``: the neuron task, the chosen algorithm, small MLPs, no loggers."""
    task = NeuronTask.NEURON.get_task(config={
        "task": args.task, "obs_dim": args.obs_dim, "act_dim": args.act_dim,
        "hidden": list(args.hidden), "max_cycles": args.max_cycles})
    config = ExperimentConfig.get_from_yaml()
    config.max_n_iters = args.max_n_iters
    config.max_n_frames = None
    config.on_policy_collected_frames_per_batch = args.frames_per_batch
    config.on_policy_n_envs_per_worker = args.n_envs
    config.on_policy_minibatch_size = args.minibatch_size
    config.on_policy_n_minibatch_iters = args.minibatch_iters
    config.lr = args.lr
    config.evaluation = False
    config.render = False
    config.loggers = []
    config.create_json = False
    config.checkpoint_at_end = False
    config.save_folder = args.save_folder or tempfile.mkdtemp(prefix="benchmarl-neuron-")
    model = MlpConfig(num_cells=list(args.num_cells), activation_class=torch.nn.Tanh, layer_class=torch.nn.Linear)
    return Experiment(task=task, algorithm_config=ALGORITHMS[args.algorithm].get_from_yaml(), model_config=model,
                      critic_model_config=model, seed=args.seed, config=config)


def train(args: Args) -> Experiment:
    """Run ``args.max_n_iters`` iterations of the chosen algorithm; returns the experiment."""
    if args.torch_threads > 0:
        torch.set_num_threads(args.torch_threads)
    experiment = make_experiment(args)
    experiment.run()
    print(f"{args.algorithm} on {len(experiment.group_map)} groups "
          f"({', '.join(f'{g}: {len(a)} neurons' for g, a in experiment.group_map.items())}): "
          f"{experiment.n_iters_performed} iterations, {experiment.total_frames} frames (ticks); "
          f"folder {experiment.folder_name}")
    return experiment


def parse_args() -> Args:
    """``Args`` from the command line (``--field value``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for field in dataclasses.fields(Args):
        flag = "--" + field.name.replace("_", "-")
        if field.name in ("hidden", "num_cells"):
            parser.add_argument(flag, type=int, nargs="+", default=field.default)
        elif field.name == "save_folder":
            parser.add_argument(flag, type=str, default=None)
        elif field.name == "algorithm":
            parser.add_argument(flag, choices=sorted(ALGORITHMS), default=field.default)
        else:
            parser.add_argument(flag, type=type(field.default), default=field.default)
    namespace = parser.parse_args()
    namespace.hidden, namespace.num_cells = tuple(namespace.hidden), tuple(namespace.num_cells)
    return Args(**vars(namespace))


if __name__ == "__main__":
    train(parse_args())
