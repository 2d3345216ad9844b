"""RLlib (Ray) PPO: one shared policy per layer of neurons.

RLlib is the path for users who outgrow one machine: the same script that runs on a laptop runs
on a Ray cluster. RLlib wraps any PettingZoo ``ParallelEnv`` with ``ParallelPettingZooEnv``; this
example maps every neuron of a layer to that layer's policy (agent ``h1_3`` → policy ``h1``, the
text before the last ``_``), so each layer's neurons share one PPO network (parameter sharing
within a layer, one space per policy) and the layers learn independently of each other.

Environment
-----------
RLlib pins its own Gymnasium, so give it its own virtual environment. Verified here (Python 3.11,
CPU, x86_64) with ray 2.60.0, gymnasium 1.2.2, pettingzoo 1.27.0, torch 2.13.0::

    python -m venv .venv-rllib
    .venv-rllib/bin/pip install torch==2.13.0            # pin torch first: a bare one pulls a CUDA build
    .venv-rllib/bin/pip install torch==2.13.0 -e . "ray[rllib]==2.60.0" pytest

neuron-env itself works with gymnasium 1.2.2 (its core tests pass in that environment).

Batch sizes: env steps vs agent steps
-------------------------------------
RLlib counts a multi-agent batch in **env steps** by default (``count_steps_by="env_steps"``).
One env step of neuron-env is one *tick*: every neuron acts once, and the task itself steps only
every ``delay`` ticks (the network's depth, 2 for ``Topology.mlp(3, [4], 1)``). So

* ``train_batch_size_per_learner=200`` is 200 ticks = 100 Pendulum steps,
* and ``200 × num_agents`` agent steps (here 5 neurons: 1000 rows of training data, split
  between the policies: 800 for ``h1``, 200 for ``out``).

RLlib's ``episode_return_mean`` adds up the rewards of all agents, and every neuron receives the
task's reward: it is the task's return times the number of neurons.

``multi_agent(count_steps_by="agent_steps")`` makes the batch size count agent steps instead.
``minibatch_size`` applies per policy: each SGD step takes ``minibatch_size`` rows of *every*
policy, cycling through a small policy's rows (above, one epoch with ``minibatch_size=100``
trains 900 rows of ``h1`` from its 800 and 900 of ``out`` from its 200). Size batches for large
networks accordingly: one tick of a 64-64 network on Pendulum is 129 agent steps.

Actions
-------
Each neuron's action is its next voltage, inside its activation's range; neuron-env raises
``InvalidActionError`` for actions outside it. RLlib's Gaussian policies sample unbounded
actions and RLlib does *not* clip them by default (``normalize_actions=True`` only rescales), so
this example sets ``environment(normalize_actions=False, clip_actions=True)``. The alternative
is ``neuron_v0.parallel_env(..., out_of_range="clip")``.

Ray, locally and on a cluster
-----------------------------
By default :func:`start_ray` starts a private local Ray on the loopback address (``127.0.0.1``),
with no dashboard and ``num_cpus`` CPUs (``ray.init`` reports no usage statistics). To use a cluster instead:

1. On the head node: ``ray start --head --port=6379``.
2. On every worker node: ``ray start --address=HEAD_IP:6379``.
3. On the head node, run this script with ``--address auto`` (``ray.init(address="auto")``
   connects to the running cluster) and more env runners, e.g.
   ``--num-env-runners 16 --train-batch-size 20000``. Every node needs the same virtual
   environment (neuron-env, ray and torch installed at the same versions).

Run::

    python examples/rllib_ppo.py                                     # 1 PPO iteration on Pendulum-v1
    python examples/rllib_ppo.py --iterations 50 --hidden 16 --max-cycles 400
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from typing import Any

import ray
from ray.rllib.algorithms.ppo import PPO, PPOConfig
from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig
from ray.rllib.core.rl_module.multi_rl_module import MultiRLModuleSpec
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.env.wrappers.pettingzoo_env import ParallelPettingZooEnv
from ray.tune.registry import register_env

from neuron_env import Topology, neuron_v0

ENV_NAME = "neuron_v0"


@dataclass
class Args:
    """Configuration of one RLlib PPO run."""

    task: str = "Pendulum-v1"
    """Gymnasium task id."""
    obs_dim: int = 3
    """Task observation size (Pendulum-v1: 3)."""
    act_dim: int = 1
    """Task action size (Pendulum-v1: 1)."""
    hidden: tuple[int, ...] = (4,)
    """Hidden layer sizes of the neuron network (one policy per layer, plus ``out``)."""
    max_cycles: int | None = 100
    """Truncate every episode after this many ticks (None: the task's own time limit)."""
    iterations: int = 1
    """PPO iterations (``algo.train()`` calls)."""
    train_batch_size: int = 200
    """Env steps (ticks) per iteration; agent steps are this times the number of neurons."""
    minibatch_size: int = 100
    """Rows per SGD minibatch (per policy)."""
    num_epochs: int = 1
    """PPO epochs over each batch."""
    lr: float = 3e-4
    """Learning rate of every policy."""
    fcnet_hiddens: tuple[int, ...] = (16,)
    """Hidden sizes of each policy's and value function's MLP."""
    num_env_runners: int = 0
    """Remote env-runner actors (0: sample in the driver process)."""
    address: str | None = None
    """Ray address: None starts a local Ray on 127.0.0.1; ``"auto"`` joins the cluster of this node."""
    num_cpus: int = 2
    """CPUs of the local Ray (ignored with ``address``)."""
    seed: int = 0
    """Seed of RLlib and the environments."""


def env_creator(config: dict[str, Any]) -> ParallelPettingZooEnv:
    """Build the RLlib env from an ``env_config`` dict (it travels to every env runner)."""
    topology = Topology.mlp(config["obs_dim"], list(config["hidden"]), config["act_dim"])
    parallel = neuron_v0.parallel_env(task=config["task"], topology=topology, max_cycles=config["max_cycles"])
    return ParallelPettingZooEnv(parallel)


def layer_of(agent_id: str, *args: Any, **kwargs: Any) -> str:
    """``policy_mapping_fn``: the neuron's group (``"h1_3"`` → ``"h1"``), i.e. its layer's policy."""
    return agent_id.rsplit("_", 1)[0]


def make_config(args: Args) -> PPOConfig:
    """The PPO configuration: one ``RLModule`` (policy + value function) per layer."""
    env_config = {"task": args.task, "obs_dim": args.obs_dim, "act_dim": args.act_dim,
                  "hidden": list(args.hidden), "max_cycles": args.max_cycles}
    groups = sorted({layer_of(agent) for agent in env_creator(env_config).par_env.possible_agents})
    model = DefaultModelConfig(fcnet_hiddens=list(args.fcnet_hiddens))
    return (
        PPOConfig()
        .environment(ENV_NAME, env_config=env_config, normalize_actions=False, clip_actions=True)
        .env_runners(num_env_runners=args.num_env_runners, rollout_fragment_length="auto")
        .multi_agent(policies=set(groups), policy_mapping_fn=layer_of)
        .rl_module(rl_module_spec=MultiRLModuleSpec(
            rl_module_specs={group: RLModuleSpec(model_config=model) for group in groups}))
        .training(train_batch_size_per_learner=args.train_batch_size, minibatch_size=args.minibatch_size,
                  num_epochs=args.num_epochs, lr=args.lr)
        .debugging(seed=args.seed)
    )


def start_ray(args: Args) -> None:
    """Start a local Ray on the loopback address, or connect to the cluster at ``args.address``."""
    if ray.is_initialized():
        return
    if args.address is not None:
        ray.init(address=args.address)
        return
    # On Linux a new local Ray node binds to the address of the default network interface (even
    # with ray.init(_node_ip_address="127.0.0.1"), which Ray resolves to that address). Ray's own
    # switch for single-machine nodes (what the environment variable
    # RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 sets when Ray is imported) keeps it on 127.0.0.1.
    from ray._private import ray_constants

    ray_constants.ENABLE_RAY_CLUSTER = False
    ray.init(num_cpus=args.num_cpus, include_dashboard=False, log_to_driver=False)


def train(args: Args) -> tuple[PPO, list[dict[str, Any]]]:
    """Run ``args.iterations`` PPO iterations; returns the algorithm and each iteration's results.

    Ray stays up afterwards (call ``ray.shutdown()`` when done).
    """
    start_ray(args)
    register_env(ENV_NAME, env_creator)
    algo = make_config(args).build_algo()
    results = []
    for iteration in range(args.iterations):
        result = algo.train()
        results.append(result)
        runners, learners = result["env_runners"], result["learners"]
        sampled = {group: int(n) for group, n in sorted(runners["num_module_steps_sampled"].items())}
        trained = {group: int(learners[group]["num_module_steps_trained"]) for group in sampled}
        print(f"iteration {iteration + 1}: {int(runners['num_env_steps_sampled'])} env steps (ticks) = "
              f"{sum(sampled.values())} agent steps; rows sampled per policy {sampled}, trained {trained}; "
              f"episode return mean {runners.get('episode_return_mean', float('nan')):.1f}")
    return algo, results


def parse_args() -> Args:
    """``Args`` from the command line (``--field value``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for field in dataclasses.fields(Args):
        flag = "--" + field.name.replace("_", "-")
        if field.name in ("hidden", "fcnet_hiddens"):
            parser.add_argument(flag, type=int, nargs="+", default=field.default)
        elif field.name == "max_cycles":
            parser.add_argument(flag, type=int, default=field.default)
        elif field.name == "address":
            parser.add_argument(flag, type=str, default=None)
        else:
            parser.add_argument(flag, type=type(field.default), default=field.default)
    namespace = parser.parse_args()
    namespace.hidden, namespace.fcnet_hiddens = tuple(namespace.hidden), tuple(namespace.fcnet_hiddens)
    return Args(**vars(namespace))


if __name__ == "__main__":
    algo, _ = train(parse_args())
    algo.stop()
    ray.shutdown()
