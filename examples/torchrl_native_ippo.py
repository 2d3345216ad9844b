"""IPPO with TorchRL on the native batched env: every neuron a PPO agent.

The structure follows TorchRL's multi-agent PPO tutorial (``MultiAgentMLP`` policy and critic,
``ProbabilisticActor`` with a ``TanhNormal``, ``ClipPPOLoss`` with GAE, a synchronous collector,
a replay buffer for minibatches) with one change: the topology has several agent groups (one
per layer, ``h1``, ``out``, ...), each with its own observation size, so there is one policy,
one critic and one loss per group. The collector runs all group policies in one
``TensorDictSequential``; one optimizer steps the sum of the group losses.

Each neuron's action is its next voltage, sampled from a ``TanhNormal`` inside its activation's
range; the reward is the task's reward on task ticks. With ``share_params=False`` (default)
every neuron has its own actor and critic (independent PPO); ``True`` shares them within a
layer (the tutorial's parameter sharing).

Run::

    python examples/torchrl_native_ippo.py                       # a few iterations on Pendulum-v1
    python examples/torchrl_native_ippo.py --n-iters 200 --hidden 16 16
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from dataclasses import dataclass

import torch
from tensordict.nn import NormalParamExtractor, TensorDictModule, TensorDictSequential
from torchrl.collectors import Collector  # torchrl >= 0.14 (formerly SyncDataCollector)
from torchrl.data.replay_buffers import ReplayBuffer
from torchrl.data.replay_buffers.samplers import SamplerWithoutReplacement
from torchrl.data.replay_buffers.storages import LazyTensorStorage
from torchrl.modules import MultiAgentMLP, ProbabilisticActor, TanhNormal
from torchrl.objectives import ClipPPOLoss, ValueEstimators

from neuron_env.integrations.torchrl import NeuronTorchRLEnv


@dataclass
class Args:
    """Configuration of one IPPO run."""

    task: str = "Pendulum-v1"
    """Gymnasium task id (1-D Box observations and actions)."""
    hidden: tuple[int, ...] = (4,)
    """Hidden layer sizes of the neuron network (one agent group per layer)."""
    num_envs: int = 4
    """Task copies stepped in lockstep (the env's batch size)."""
    frames_per_batch: int = 1200
    """Ticks x task copies collected per iteration."""
    n_iters: int = 3
    """Collect/train iterations."""
    num_epochs: int = 2
    """PPO epochs over each batch."""
    minibatch_size: int = 400
    """Frames per minibatch."""
    lr: float = 3e-4
    """Adam learning rate of every actor and critic."""
    gamma: float = 0.99
    """Discount per tick."""
    lmbda: float = 0.95
    """GAE lambda."""
    clip_epsilon: float = 0.2
    """PPO ratio clip."""
    entropy_coef: float = 1e-4
    """Entropy bonus weight."""
    max_grad_norm: float = 1.0
    """Gradient norm clip."""
    share_params: bool = False
    """Share actor and critic parameters within a layer (False: one network per neuron)."""
    num_cells: int = 32
    """Width of each neuron's actor and critic MLPs."""
    depth: int = 2
    """Hidden layers of each neuron's actor and critic MLPs."""
    seed: int = 0
    """Seed of torch and of the task copies."""
    device: str = "cpu"
    """Torch device of the env and the networks."""
    torch_threads: int = 1
    """``torch.set_num_threads`` (0 keeps torch's default). Tiny per-neuron networks run fastest on one
    thread; several OpenMP threads on a busy or small CPU can make each forward pass 10-50x slower."""


def make_group_modules(
    env: NeuronTorchRLEnv, group: str, args: Args
) -> tuple[ProbabilisticActor, TensorDictModule]:
    """The actor and critic of one agent group, as in TorchRL's multi-agent PPO tutorial."""
    n_agents = env.topology.group[group].size
    n_inputs = env.observation_spec[group, "observation"].shape[-1]
    action_spec = env.full_action_spec_unbatched[group, "action"]
    policy_net = torch.nn.Sequential(
        MultiAgentMLP(
            n_agent_inputs=n_inputs, n_agent_outputs=2 * action_spec.shape[-1], n_agents=n_agents,
            centralized=False, share_params=args.share_params, device=args.device, depth=args.depth,
            num_cells=args.num_cells, activation_class=torch.nn.Tanh,
        ),
        NormalParamExtractor(),
    )
    params = TensorDictModule(policy_net, in_keys=[(group, "observation")], out_keys=[(group, "loc"), (group, "scale")])
    policy = ProbabilisticActor(
        module=params,
        spec=action_spec,
        in_keys=[(group, "loc"), (group, "scale")],
        out_keys=[(group, "action")],
        distribution_class=TanhNormal,
        distribution_kwargs={"low": action_spec.space.low, "high": action_spec.space.high},
        return_log_prob=True,
        log_prob_key=(group, "action_log_prob"),
    )
    critic_net = MultiAgentMLP(
        n_agent_inputs=n_inputs, n_agent_outputs=1, n_agents=n_agents, centralized=False,
        share_params=args.share_params, device=args.device, depth=args.depth, num_cells=args.num_cells,
        activation_class=torch.nn.Tanh,
    )
    critic = TensorDictModule(critic_net, in_keys=[(group, "observation")], out_keys=[(group, "state_value")])
    return policy, critic


def train(args: Args) -> list[dict[str, float]]:
    """Run IPPO and return one row of statistics per iteration.

    Returns:
        Per iteration: ``iteration``, ``frames``, ``reward_per_task_step`` (mean task reward over
        the batch's task ticks), ``episodes`` (finished in the batch), ``loss`` and ``SPS``.
    """
    torch.manual_seed(args.seed)
    if args.torch_threads > 0:
        torch.set_num_threads(args.torch_threads)
    # Topology.mlp(obs_dim, hidden, act_dim) sized to the task: agent groups h1, ..., out.
    env = NeuronTorchRLEnv(args.task, num_envs=args.num_envs, device=args.device, hidden=args.hidden)
    env.set_seed(args.seed)
    groups = list(env.group_map)

    policies, losses = {}, {}
    for group in groups:
        policy, critic = make_group_modules(env, group, args)
        loss = ClipPPOLoss(
            actor_network=policy, critic_network=critic, clip_epsilon=args.clip_epsilon,
            entropy_coeff=args.entropy_coef, normalize_advantage=False,  # not across the agent dimension
        )
        loss.set_keys(
            reward=(group, "reward"), action=(group, "action"), sample_log_prob=(group, "action_log_prob"),
            value=(group, "state_value"), done=(group, "done"), terminated=(group, "terminated"),
            advantage=(group, "advantage"), value_target=(group, "value_target"),
        )
        loss.make_value_estimator(ValueEstimators.GAE, gamma=args.gamma, lmbda=args.lmbda)
        policies[group], losses[group] = policy, loss
    policy = TensorDictSequential(*policies.values())
    parameters = [p for loss in losses.values() for p in loss.parameters()]
    optimizer = torch.optim.Adam(parameters, args.lr)

    collector = Collector(
        env, policy, frames_per_batch=args.frames_per_batch, total_frames=args.frames_per_batch * args.n_iters,
        device=args.device, auto_register_policy_transforms=False,  # no recurrent module: no InitTracker needed
    )
    buffer = ReplayBuffer(
        storage=LazyTensorStorage(args.frames_per_batch, device=args.device),
        sampler=SamplerWithoutReplacement(), batch_size=args.minibatch_size,
    )

    history: list[dict[str, float]] = []
    frames, start = 0, time.perf_counter()
    for iteration, data in enumerate(collector):
        with torch.no_grad():
            for loss in losses.values():
                loss.value_estimator(data, params=loss.critic_network_params,
                                     target_params=loss.target_critic_network_params)
        frames += data.numel()
        buffer.extend(data.reshape(-1))
        total = torch.zeros(())
        for _ in range(args.num_epochs):
            for _ in range(max(1, args.frames_per_batch // args.minibatch_size)):
                batch = buffer.sample()
                total = torch.zeros(())
                for loss in losses.values():
                    values = loss(batch)
                    total = total + values["loss_objective"] + values["loss_critic"] + values["loss_entropy"]
                total.backward()
                torch.nn.utils.clip_grad_norm_(parameters, args.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad()
        collector.update_policy_weights_()

        reward = data["next", "out", "reward"][..., 0, 0]
        task_ticks = max(1, data.shape[-1] // env.core.delay) * args.num_envs
        row = {
            "iteration": iteration, "frames": frames, "reward_per_task_step": float(reward.sum()) / task_ticks,
            "episodes": int(data["next", "done"].sum()), "loss": float(total.detach()),
            "SPS": frames / (time.perf_counter() - start),
        }
        history.append(row)
        print(f"iter {iteration}  frames {frames}  reward/task step {row['reward_per_task_step']:.3f}  "
              f"episodes {row['episodes']}  loss {row['loss']:.3f}  SPS {row['SPS']:.0f}")
    collector.shutdown()
    env.close()
    return history


def parse_args() -> Args:
    """``Args`` from the command line (``--field value``; tuples take several values)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for field in dataclasses.fields(Args):
        flag = "--" + field.name.replace("_", "-")
        if field.type == "bool":
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=field.default)
        elif field.name == "hidden":
            parser.add_argument(flag, type=int, nargs="+", default=field.default)
        else:
            parser.add_argument(flag, type=type(field.default), default=field.default)
    namespace = parser.parse_args()
    namespace.hidden = tuple(namespace.hidden)
    return Args(**vars(namespace))


if __name__ == "__main__":
    train(parse_args())
