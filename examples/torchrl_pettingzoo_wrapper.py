"""TorchRL's generic ``PettingZooWrapper`` around ``neuron_v0.parallel_env``.

TorchRL wraps any PettingZoo ``ParallelEnv``. It groups agents named ``<name>_<int>`` by the
text before the last ``_``, so neuron-env's agent ids (``h1_0``, ``h2_3``, ``out_0``) give one
group per layer with no ``group_map``: ``{"h1": [...], "h2": [...], "out": [...]}``. Each group is
a nested TensorDict: ``(group, "observation")`` ``[n, fan_in]``, ``(group, "action")`` ``[n, 1]``,
``(group, "reward")``/``"done"``/``"terminated"``/``"truncated"`` ``[n, 1]``, plus root flags.

Things to know
--------------
* ``PettingZooWrapper`` has no ``parallel=`` argument (that belongs to ``PettingZooEnv``, which
  builds envs by name): it detects a ``ParallelEnv`` by type.
* It warns that it is tested with PettingZoo 1.24.3; it works with 1.27.
* It converts every agent's observation, reward and flags one by one, so a tick costs time
  proportional to the number of neurons. For networks of more than a few dozen neurons, or for
  several task copies, use ``integrations.torchrl.NeuronTorchRLEnv``, which
  produces the same layout batched over copies (``benchmarks/torchrl_throughput.py``).

Run::

    python examples/torchrl_pettingzoo_wrapper.py
"""

from __future__ import annotations

import warnings

from tensordict import TensorDictBase
from torchrl.envs.libs.pettingzoo import PettingZooWrapper
from torchrl.envs.utils import check_env_specs

from neuron_env import Topology, neuron_v0


def make_env(task: str = "Pendulum-v1", hidden: tuple[int, ...] = (4, 5), seed: int = 0) -> PettingZooWrapper:
    """``neuron_v0.parallel_env`` wrapped by TorchRL, one group per layer.

    Args:
        task: Gymnasium task id.
        hidden: Hidden layer sizes of the ``Topology.mlp`` network.
        seed: Seed of the first reset.
    """
    import gymnasium as gym

    probe = gym.make(task)
    obs_dim, act_dim = probe.observation_space.shape[0], probe.action_space.shape[0]
    probe.close()
    parallel = neuron_v0.parallel_env(task=task, topology=Topology.mlp(obs_dim, list(hidden), act_dim))
    with warnings.catch_warnings():  # "PettingZoo in TorchRL is tested using version == 1.24.3"
        warnings.filterwarnings("ignore", message="PettingZoo in TorchRL is tested")
        return PettingZooWrapper(env=parallel, seed=seed)  # default group_map: h1, h2, out


def main(steps: int = 10) -> TensorDictBase:
    """Check the specs and run a random rollout of ``steps`` ticks; returns the rollout."""
    env = make_env()
    for group, agents in env.group_map.items():
        print(f"group {group!r}: {agents[0]} ... {agents[-1]} ({len(agents)} agents)")
    check_env_specs(env)
    rollout = env.rollout(steps)  # random actions sampled from the action spec
    for group in env.group_map:
        print(f"{group:>4}: observation {tuple(rollout[group, 'observation'].shape)}, "
              f"action {tuple(rollout[group, 'action'].shape)}, reward {tuple(rollout['next', group, 'reward'].shape)}")
    env.close()
    return rollout


if __name__ == "__main__":
    main()
