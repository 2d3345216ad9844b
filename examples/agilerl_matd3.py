"""AgileRL MATD3: multi-agent TD3 with every neuron an agent.

AgileRL trains on PettingZoo ``ParallelEnv`` s directly. Its multi-agent algorithms group agents
by the text before the last ``_`` of their ids and require one observation and action space per
group; neuron-env's ids (``h1_0``, ``out_0``) give one group per layer, and every neuron of a
layer has the same spaces, so no wrapper is needed. AgileRL gives each group one network shared by
its agents, so MATD3 here learns one deterministic actor per layer (Ornstein-Uhlenbeck
exploration noise per neuron) and one twin critic per layer, centralised: it sees every neuron's
observation and action.

The loop below is AgileRL's own off-policy multi-agent loop (``agilerl.training.
train_multi_agent_off_policy``) without its evolutionary hyperparameter search: act, step, store
the transition in a ``ReplayBuffer``, learn every ``learn_step`` ticks.

Environment
-----------
AgileRL caps PettingZoo below 1.27, so give it its own virtual environment. Verified here
(Python 3.11, CPU, x86_64) with agilerl 2.58.0, pettingzoo 1.26.1, gymnasium 1.4.0,
torch 2.13.0::

    python -m venv .venv-agilerl
    .venv-agilerl/bin/pip install torch==2.13.0          # pin torch first: a bare one pulls a CUDA build
    .venv-agilerl/bin/pip install torch==2.13.0 -e . "agilerl==2.58.0" peft pytest

``peft`` is not among agilerl 2.58.0's declared dependencies, but ``import agilerl.algorithms``
fails without it (``ModuleNotFoundError: No module named 'peft'``); it brings ``transformers``.

neuron-env works with PettingZoo 1.24-1.26 (its core tests pass with 1.26.1). PettingZoo's
registry (``pettingzoo.make("parallel", "neuron_env/Neuron-v0")``) only exists from 1.27 on;
with older PettingZoo use ``neuron_v0.parallel_env(...)`` as here (importing ``neuron_env``
skips the registration there).

Things to know
--------------
* One env step is one *tick*: every neuron acts once and the task steps every ``delay`` ticks
  (the network's depth). ``max_steps`` and ``learn_step`` count ticks.
* AgileRL's actors output ``[-1, 1]`` and rescale onto each agent's ``Box`` (a neuron's
  activation range), so with bounded activations (the default ``tanh``, or ``sigmoid``) every
  action is in range. With unbounded ones (``relu``, identity) there is nothing to rescale onto
  and neuron-env raises ``InvalidActionError`` (``-0.005, outside its range [0.0, inf]``):
  construct the env with ``out_of_range="clip"`` there.
* neuron-env's observation arrays are read-only; AgileRL turns them into tensors with
  ``torch.as_tensor``, which warns once (``The given NumPy array is not writable``). It never
  writes to them, so the warning is harmless.
* When an episode ends neuron-env's agent list is empty; AgileRL's vector envs fill in NaN
  rewards and flags and reset the env themselves.
* MATD3's critics see every neuron's observation and action: their input grows with the number
  of neurons, so keep networks small (the 64-64 default network has 129 agents).

Run::

    python examples/agilerl_matd3.py                        # 400 ticks of MATD3 on Pendulum-v1
    python examples/agilerl_matd3.py --max-steps 20000 --hidden 8
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
from agilerl.algorithms import MATD3
from agilerl.components.data import MultiAgentTransition, transition_to_tensordict
from agilerl.components.replay_buffer import ReplayBuffer
from agilerl.vector import PzDummyVecEnv
from agilerl.vector.pz_async_vec_env import AsyncPettingZooVecEnv
from pettingzoo import ParallelEnv

from neuron_env import Topology, neuron_v0


@dataclass
class Args:
    """Configuration of one MATD3 run."""

    task: str = "Pendulum-v1"
    """Gymnasium task id."""
    obs_dim: int = 3
    """Task observation size (Pendulum-v1: 3)."""
    act_dim: int = 1
    """Task action size (Pendulum-v1: 1)."""
    hidden: tuple[int, ...] = (4,)
    """Hidden layer sizes of the neuron network."""
    max_cycles: int | None = 100
    """Truncate every episode after this many ticks (None: the task's own time limit)."""
    num_envs: int = 1
    """Copies of the env; more than 1 runs them in subprocesses (``AsyncPettingZooVecEnv``)."""
    max_steps: int = 400
    """Ticks to train for (over all copies)."""
    learning_starts: int = 100
    """Ticks of experience before the first update."""
    batch_size: int = 64
    """Transitions per update."""
    learn_step: int = 5
    """Ticks between updates."""
    buffer_size: int = 100_000
    """Replay buffer capacity (transitions)."""
    hidden_size: tuple[int, ...] = (32,)
    """Hidden sizes of every actor and critic."""
    lr_actor: float = 1e-3
    """Actor learning rate."""
    lr_critic: float = 1e-3
    """Critic learning rate."""
    gamma: float = 0.99
    """Discount per tick."""
    seed: int = 0
    """Seed of torch, numpy and the first reset."""
    torch_threads: int = 1
    """``torch.set_num_threads`` (0 keeps torch's default); small networks run fastest on one thread."""


def make_env(args: Args) -> ParallelEnv:
    """The neuron-env ``ParallelEnv`` of one task copy."""
    topology = Topology.mlp(args.obs_dim, list(args.hidden), args.act_dim)
    return neuron_v0.parallel_env(task=args.task, topology=topology, max_cycles=args.max_cycles)


def make_vec_env(args: Args) -> PzDummyVecEnv | AsyncPettingZooVecEnv:
    """AgileRL's vector env over ``args.num_envs`` copies (leading batch axis on every array)."""
    if args.num_envs == 1:
        return PzDummyVecEnv(make_env(args))
    return AsyncPettingZooVecEnv([lambda: make_env(args) for _ in range(args.num_envs)])


def make_agent(args: Args, env: ParallelEnv) -> MATD3:
    """An MATD3 agent for every neuron of ``env``."""
    agent_ids = list(env.possible_agents)
    hidden = list(args.hidden_size)
    return MATD3(
        observation_spaces=[env.observation_space(agent) for agent in agent_ids],
        action_spaces=[env.action_space(agent) for agent in agent_ids],
        agent_ids=agent_ids,
        net_config={"latent_dim": hidden[-1], "encoder_config": {"hidden_size": hidden},
                    "head_config": {"hidden_size": hidden}},
        batch_size=args.batch_size,
        learn_step=args.learn_step,
        lr_actor=args.lr_actor,
        lr_critic=args.lr_critic,
        gamma=args.gamma,
    )


def train(args: Args) -> tuple[MATD3, list[float]]:
    """Train MATD3 for ``args.max_steps`` ticks; returns the agent and the completed episodes' returns.

    An episode's return is the task's return summed over neurons (every neuron receives the task
    reward on the ticks where the task steps).
    """
    if args.torch_threads > 0:
        torch.set_num_threads(args.torch_threads)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    vec_env = make_vec_env(args)
    probe = make_env(args)
    agent = make_agent(args, probe)
    probe.close()
    memory = ReplayBuffer(max_size=args.buffer_size)
    agent.set_training_mode(True)

    obs, info = vec_env.reset(seed=args.seed)
    scores = np.zeros(args.num_envs)
    returns: list[float] = []
    learn_every = max(1, args.learn_step // args.num_envs)
    for step in range(args.max_steps // args.num_envs):
        action, raw_action = agent.get_action(obs=obs, infos=info)
        next_obs, reward, termination, truncation, info = vec_env.step(action)
        transition = transition_to_tensordict(MultiAgentTransition(
            obs=obs, action=raw_action, reward=reward, next_obs=next_obs, done=termination))
        transition.batch_size = torch.Size([args.num_envs])
        memory.add(transition)
        if step % learn_every == 0 and len(memory) >= max(args.batch_size, args.learning_starts):
            agent.learn(memory.sample(args.batch_size))
        obs = next_obs

        # Inactive agents (after an episode ended) report NaN; an env is done when all its agents are.
        rewards = np.column_stack([np.asarray(r, dtype=float).ravel() for r in reward.values()])
        scores += np.nansum(rewards, axis=1)
        done = np.column_stack([
            np.nan_to_num(np.asarray(termination[a], dtype=float), nan=1.0).astype(bool)
            | np.nan_to_num(np.asarray(truncation[a], dtype=float), nan=0.0).astype(bool)
            for a in agent.agent_ids])
        finished = np.flatnonzero(done.all(axis=1))
        returns.extend(float(scores[i]) for i in finished)
        scores[finished] = 0.0
        agent.reset_action_noise(list(finished))

    vec_env.close()
    print(f"trained MATD3 for {args.max_steps} ticks on {len(agent.agent_ids)} neurons "
          f"({len(agent.shared_agent_ids)} groups: {', '.join(agent.shared_agent_ids)}); "
          f"replay buffer holds {len(memory)} transitions; {len(returns)} episodes, "
          f"last return {returns[-1] if returns else float('nan'):.1f}")
    return agent, returns


def parse_args() -> Args:
    """``Args`` from the command line (``--field value``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for field in dataclasses.fields(Args):
        flag = "--" + field.name.replace("_", "-")
        if field.name in ("hidden", "hidden_size"):
            parser.add_argument(flag, type=int, nargs="+", default=field.default)
        elif field.name == "max_cycles":
            parser.add_argument(flag, type=int, default=field.default)
        else:
            parser.add_argument(flag, type=type(field.default), default=field.default)
    namespace = parser.parse_args()
    namespace.hidden, namespace.hidden_size = tuple(namespace.hidden), tuple(namespace.hidden_size)
    return Args(**vars(namespace))


if __name__ == "__main__":
    train(parse_args())
