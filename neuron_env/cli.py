"""The ``neuron-env`` command line.

Subcommands:

* ``neuron-env info``: the task (its spaces, and the encoder and decoder chosen for them), the
  topology sized through them and the multi-agent view (neurons per group, agents, spaces, delay).
* ``neuron-env rollout``: run a network whose neurons act locally (``NetworkPolicy``)
  through the PettingZoo env for a few episodes; prints returns, ticks/s and whether every
  task action equalled the plain network's forward pass.
* ``neuron-env train``: train every neuron at once with a local learner (``--learner``, ``neuron_env.agents``).
* ``neuron-env enjoy``: run a trained checkpoint deterministically and print its returns.
* ``neuron-env render``: write an episode of a trained network (task beside network) as GIF/MP4.
* ``neuron-env baseline``: Stable-Baselines3 DDPG/TD3 on the same task and network, same outputs.
* ``neuron-env compare``: tasks × methods × seeds in a process pool; results.csv, scores.md, curves.png.
* ``neuron-env experiment NAME``: the draft's experiments (``subcritic-correlation``, …).

Every command that writes a run (``train``, ``baseline``, ``compare``, ``render``) refuses an
``--out`` that holds one, in one line naming ``--resume`` (where the command resumes) and
``--overwrite``, and an ``--out`` that is a file, before any work (exit status 2; see
``neuron_env.run_folders.check_run_folder``). Ctrl-C stops a run after saving what it can and
prints one line: what was saved and the command that resumes (exit status 130).

Examples::

    neuron-env info --task Pendulum-v1 --hidden 64 64
    neuron-env info --task CartPole-v1 --hidden 64 64
    neuron-env info --task HalfCheetah-v5 --topology recurrent --hidden 128 --leak 0.5
    neuron-env rollout --task Pendulum-v1 --episodes 2 --seed 0
    neuron-env train --task Pendulum-v1 --hidden 64 64 --critic mlp --steps 30000 --out runs/pendulum
    neuron-env enjoy --checkpoint runs/pendulum --episodes 3
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

import gymnasium
import numpy as np
import torch

from neuron_env.dynamics import apply_actions
from neuron_env.errors import NeuronEnvError
from neuron_env.parallel import NeuronParallelEnv, task_topology
from neuron_env.policy import NetworkPolicy
from neuron_env.spaces import stack_observations
from neuron_env.topology import DEFAULT_DENSITY, NETWORK_KINDS, Topology
from neuron_env.vector import make_task_factory


def add_network_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments that choose a task and a topology (shared by every subcommand)."""
    parser.add_argument("--task", default="Pendulum-v1", help="Gymnasium id (default: Pendulum-v1)")
    parser.add_argument("--topology", choices=NETWORK_KINDS, default="mlp")
    parser.add_argument("--hidden", type=int, nargs="+", default=[64, 64],
                        help="hidden sizes (mlp), or one size (recurrent, sparse)")
    parser.add_argument("--activation", default="tanh", choices=("tanh", "relu", "sigmoid", "identity"))
    parser.add_argument("--leak", type=float, default=0.0, help="leak of the recurrent layer")
    parser.add_argument("--density", type=float, default=DEFAULT_DENSITY,
                        help=f"connection density (--topology sparse; default: {DEFAULT_DENSITY:g})")
    parser.add_argument("--delay", type=int, default=None, help="ticks per task step (default: depth or 1)")
    parser.add_argument("--observe", choices=("presynaptic", "all"), default="presynaptic")
    parser.add_argument("--seed", type=int, default=0)


def build_topology(args: argparse.Namespace) -> Topology:
    """The topology the network arguments describe, sized to the task."""
    return task_topology(args.task, args.topology, args.hidden, args.activation, args.leak, args.density, args.seed)


def make_env(args: argparse.Namespace, topology: Topology) -> NeuronParallelEnv:
    """The parallel env the arguments describe."""
    return NeuronParallelEnv(args.task, topology, delay=args.delay, observe=args.observe)


def cmd_info(args: argparse.Namespace) -> int:
    """Print the task, topology and multi-agent summary."""
    topology = build_topology(args)
    env = make_env(args, topology)
    core = env.core
    print(f"Task: {args.task}")
    print(f"  observation space: {core.task_observation_space}")
    print(f"  action space:      {core.task_action_space}")
    print(f"  encoder:           {core.encoder.description}")
    print(f"  decoder:           {core.decoder.description}")
    print(topology.summary())
    print(f"Delay: {core.delay} ticks per task step "
          f"({'depth' if args.delay is None and topology.depth else 'given' if args.delay else 'cyclic default'})")
    print(f"Agents: {env.max_num_agents} ({env.possible_agents[0]} … {env.possible_agents[-1]})")
    print(f"  {'group':<10} {'agents':>6}  observation space -> action space")
    for group in topology.agent_groups:
        agent = topology.agent_ids[topology.agent_slice[group.name]][0]
        print(f"  {group.name:<10} {group.size:>6}  Box{env.observation_space(agent).shape} "
              f"-> {env.action_space(agent)}")
    print(f"State: Box(shape {env.state_space.shape}, float32): all voltages")
    env.close()
    return 0


def cmd_rollout(args: argparse.Namespace) -> int:
    """Run local agents through the PettingZoo env beside the plain network on the plain task."""
    topology = build_topology(args)
    env = make_env(args, topology)
    policy = NetworkPolicy(topology, observe=args.observe, seed=args.seed)
    check = topology.depth is not None and env.core.delay == topology.depth and env.core.leak is None
    plain = make_task_factory(args.task)() if check else None
    largest_gap = 0.0
    task_steps = ticks = 0
    start = time.perf_counter()
    for episode in range(args.episodes):
        observations, _ = env.reset(seed=args.seed + episode)
        if plain is not None:
            plain_observation, _ = plain.reset(seed=args.seed + episode)
        episode_return = 0.0
        while env.agents:
            observations, rewards, _, _, infos = env.step(policy.act(observations))
            ticks += 1
            info = infos[env.possible_agents[0]]
            if not info.get("task_stepped"):
                continue
            task_steps += 1
            reward = rewards[env.possible_agents[0]]
            episode_return += reward
            if plain is not None:
                expected = plain_network_action(env, policy, plain_observation)
                plain_observation, plain_reward, *_ = plain.step(expected)
                largest_gap = max(largest_gap, float(np.abs(info["task_action"] - expected).max()),
                                  abs(float(plain_reward) - reward))
        print(f"episode {episode}: return {episode_return:.2f}")
    elapsed = time.perf_counter() - start
    print(f"{task_steps} task steps, {ticks} ticks in {elapsed:.2f}s "
          f"({ticks / elapsed:.0f} ticks/s, {env.max_num_agents} agents)")
    if plain is not None:
        verdict = "equal" if largest_gap <= 1e-5 else "DIFFERENT"
        print(f"plain network on the plain task: actions and rewards {verdict} (largest gap {largest_gap:.2e})")
        plain.close()
    else:
        print("equivalence check skipped: it holds for acyclic, leak-free networks at delay = depth")
    env.close()
    return 0 if largest_gap <= 1e-5 else 1


def plain_network_action(env: NeuronParallelEnv, policy: NetworkPolicy, observation: np.ndarray) -> np.ndarray:
    """``δ(μ(s))``: the plain forward pass of an acyclic network, decoded to the task action."""
    core = env.core
    topology = env.topology
    voltages = torch.zeros(1, topology.num_neurons)
    batch = stack_observations(core.task_observation_space, [observation])  # any space, as a batch of one
    with torch.no_grad():
        voltages[:, topology.group_slice[topology.input_group.name]] = core.encoder(
            core.encoder.as_tensors(batch, "cpu"))
        for _ in range(topology.depth or 1):
            voltages = apply_actions(voltages, policy(voltages), core.agent_span, None)
        action = core.decoder(voltages[:, topology.group_slice[topology.output_group.name]])
    # [()] turns a Discrete action into a numpy integer (tasks index tables with it), leaves arrays as they are
    return action[0].numpy().astype(core.task_action_space.dtype)[()]


def build_parser() -> argparse.ArgumentParser:
    """The ``neuron-env`` argument parser with every subcommand (parsing runs nothing)."""
    parser = argparse.ArgumentParser(prog="neuron-env", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    info = sub.add_parser("info", help="print a task + topology summary")
    add_network_arguments(info)
    info.set_defaults(func=cmd_info)
    rollout = sub.add_parser("rollout", help="run local agents through the env, check equivalence")
    add_network_arguments(rollout)
    rollout.add_argument("--episodes", type=int, default=1)
    rollout.set_defaults(func=cmd_rollout)
    # Imported here so that `info` and `rollout` start without the learners' and SB3's imports.
    from neuron_env.agents.commands import add_enjoy_parser, add_render_parser, add_train_parser
    from neuron_env.baselines.cli import add_baseline_parser, add_compare_parser, add_experiment_parser

    add_train_parser(sub)
    add_enjoy_parser(sub)
    add_render_parser(sub)
    add_baseline_parser(sub)
    add_compare_parser(sub)
    add_experiment_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``neuron-env`` console script."""
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # the command as typed: Ctrl-C names it to resume
    try:
        return args.func(args)
    except KeyboardInterrupt as interrupt:  # a command that saved something says what in its own line first
        print(f"neuron-env {args.command}: {interrupt or 'interrupted'}", file=sys.stderr)
        return 130
    except NeuronEnvError as error:
        print(f"neuron-env {args.command}: error: {error}", file=sys.stderr)
        return 2
    except gymnasium.error.Error as error:  # e.g. a misspelled task id: Gymnasium's message has a suggestion
        task = getattr(args, "task", None) or getattr(args, "tasks", None)
        print(f"neuron-env {args.command}: error: task {task!r} cannot be made: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
