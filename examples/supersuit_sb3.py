"""SuperSuit + Stable-Baselines3: one TD3 policy shared by every neuron.

SuperSuit turns a PettingZoo ``ParallelEnv`` into a vector env with one slot per agent, so a
single-agent learner trains one policy with every neuron's experience (parameter sharing):

1. ``pad_observations_v0``: layers have different fan-in (``h1`` sees the task observation,
   ``out`` sees ``h1``), but a vector env needs one observation space: shorter observations are
   zero-padded to the longest (the padded space's bounds are the union of the layers' bounds).
2. ``pad_action_space_v0``: every neuron's action is ``Box(1,)``; with mixed activations (e.g.
   ``relu`` and ``tanh`` layers) the bounds differ and this takes their union.
3. ``pettingzoo_env_to_vec_env_v1``: agents become the ``num_agents`` slots of a vector env.
4. ``concat_vec_envs_v1(..., base_class="stable_baselines3")``: several copies, as an SB3 ``VecEnv``.

SuperSuit 3.11 pitfalls this example works around:

* When an episode ends, SuperSuit writes each agent's final observation into
  ``infos[agent]["terminal_observation"]``, so every agent needs its own info dict (SB3 stores
  it as the next observation of truncated transitions). neuron-env's parallel env gives one
  dict per agent; the ``SB3Infos`` wrapper guarantees it for any parallel env.
* ``TD3(..., seed=...)`` and ``venv.reset(seed=...)`` raise ``AttributeError: 'ConcatVecEnv' object
  has no attribute 'seed'``; ``train`` seeds the libraries and the inner vector env itself.
* SuperSuit reports ``done = terminated or truncated`` to SB3 without SB3's
  ``"TimeLimit.truncated"`` info key, so SB3 treats a time limit (Pendulum's only episode end)
  as a terminal state and stops bootstrapping there. ``SB3Infos`` adds the key.

Run::

    python examples/supersuit_sb3.py                        # 400 TD3 steps on Pendulum-v1
    python examples/supersuit_sb3.py --total-timesteps 20000
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import supersuit as ss
import torch
from pettingzoo import ParallelEnv
from pettingzoo.utils import BaseParallelWrapper
from stable_baselines3 import TD3
from stable_baselines3.common.noise import NormalActionNoise
from stable_baselines3.common.utils import set_random_seed

from neuron_env import Topology, neuron_v0


@dataclass
class Args:
    """Configuration of one SuperSuit + TD3 run."""

    task: str = "Pendulum-v1"
    """Gymnasium task id."""
    obs_dim: int = 3
    """Task observation size (Pendulum-v1: 3)."""
    act_dim: int = 1
    """Task action size (Pendulum-v1: 1)."""
    hidden: tuple[int, ...] = (4,)
    """Hidden layer sizes of the neuron network."""
    num_copies: int = 2
    """Copies of the network env concatenated into one SB3 VecEnv."""
    total_timesteps: int = 400
    """SB3 timesteps; one tick of every copy counts once per neuron slot (``num_copies * num_agents``)."""
    learning_starts: int = 100
    """Random steps before learning."""
    action_noise: float = 0.1
    """Std of the Gaussian exploration noise on each neuron's action."""
    net_arch: tuple[int, ...] = (32, 32)
    """Hidden sizes of TD3's shared actor and critic."""
    max_cycles: int | None = None
    """Truncate every episode after this many ticks (None: the task's own time limit)."""
    seed: int = 0
    """Seed of TD3 and the environments."""
    torch_threads: int = 1
    """``torch.set_num_threads`` (0 keeps torch's default); small networks run fastest on one thread."""


class SB3Infos(BaseParallelWrapper):
    """Give every agent its own info dict, with SB3's ``"TimeLimit.truncated"`` flag.

    Place it directly around the neuron-env ``ParallelEnv`` (before SuperSuit's wrappers).
    """

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        """Step the wrapped env and copy its infos per agent."""
        observations, rewards, terminations, truncations, infos = self.env.step(actions)
        infos = {
            agent: {**info, "TimeLimit.truncated": bool(truncations[agent] and not terminations[agent])}
            for agent, info in infos.items()
        }
        return observations, rewards, terminations, truncations, infos


def make_vec_env(args: Args) -> Any:
    """The SB3 ``VecEnv``: ``num_copies * num_agents`` slots, one per neuron per copy."""
    topology = Topology.mlp(args.obs_dim, list(args.hidden), args.act_dim)
    env: ParallelEnv = neuron_v0.parallel_env(task=args.task, topology=topology, max_cycles=args.max_cycles)
    env = SB3Infos(env)
    env = ss.pad_observations_v0(env)
    env = ss.pad_action_space_v0(env)
    vec = ss.pettingzoo_env_to_vec_env_v1(env)
    return ss.concat_vec_envs_v1(vec, args.num_copies, num_cpus=0, base_class="stable_baselines3")


def train(args: Args) -> TD3:
    """Train one TD3 policy shared by every neuron and return it."""
    if args.torch_threads > 0:
        torch.set_num_threads(args.torch_threads)
    venv = make_vec_env(args)
    # SuperSuit's SB3 wrapper forwards seed() to a ConcatVecEnv that has none, so TD3(seed=...) and
    # venv.reset(seed=...) raise AttributeError: seed the libraries and the inner vector env instead.
    set_random_seed(args.seed)
    venv.action_space.seed(args.seed)
    venv.venv.reset(seed=args.seed)
    noise = NormalActionNoise(np.zeros(venv.action_space.shape), args.action_noise * np.ones(venv.action_space.shape))
    model = TD3(
        "MlpPolicy", venv, learning_starts=args.learning_starts, action_noise=noise,
        policy_kwargs={"net_arch": list(args.net_arch)}, verbose=0,
    )
    model.learn(total_timesteps=args.total_timesteps)
    print(f"trained TD3 for {model.num_timesteps} steps on {venv.num_envs} neuron slots "
          f"({args.num_copies} copies); replay buffer holds {model.replay_buffer.size()} x {venv.num_envs} transitions")
    venv.close()
    return model


def parse_args() -> Args:
    """``Args`` from the command line (``--field value``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for field in dataclasses.fields(Args):
        flag = "--" + field.name.replace("_", "-")
        if field.name in ("hidden", "net_arch"):
            parser.add_argument(flag, type=int, nargs="+", default=field.default)
        elif field.name == "max_cycles":
            parser.add_argument(flag, type=int, default=None)
        else:
            parser.add_argument(flag, type=type(field.default), default=field.default)
    namespace = parser.parse_args()
    namespace.hidden, namespace.net_arch = tuple(namespace.hidden), tuple(namespace.net_arch)
    return Args(**vars(namespace))


if __name__ == "__main__":
    train(parse_args())
