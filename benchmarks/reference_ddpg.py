"""Reference DDPG in plain torch: the backprop algorithm the local learners' speed is measured against.

What it is
----------
A lean DDPG (Lillicrap et al., 2016) with nothing around its update: two ``nn.Sequential``
networks and their target copies, two ``torch.optim.Adam`` optimizers, a replay buffer of
preallocated torch tensors. Its update is CleanRL's (``cleanrl/ddpg_continuous_action.py``,
vwxyzjn/cleanrl at commit 004f8a0), followed line for line::

    with torch.no_grad():
        next_q = rewards + (1 - dones) * gamma * target_critic(next_obs, target_actor(next_obs))
    critic_loss = F.mse_loss(critic(obs, actions), next_q)
    critic_optimizer.zero_grad(); critic_loss.backward(); critic_optimizer.step()
    actor_loss = -critic(obs, actor(obs)).mean()
    actor_optimizer.zero_grad(); actor_loss.backward(); actor_optimizer.step()
    for param, target in zip(...): target.data.copy_(tau * param.data + (1 - tau) * target.data)   # both nets

So one update is one critic step and one actor step through the critic (a full backward pass
through both networks), the work Stable-Baselines3 DDPG's ``train(gradient_steps=1)`` does,
without SB3's bookkeeping (its policy wrapper, learning-rate schedule, logger and numpy replay).
The benchmarks time it beside SB3 DDPG: SB3 is the library users run, this is the algorithm's
cost in the same torch, so a local learner's speed-up over SB3 can be split into what it gains
against the algorithm and what SB3's overhead gives away.

Where it differs from CleanRL's script, each time to measure what the other methods do:

* the widths and activation of the benchmark's networks (SB3's ``net_arch`` for both networks):
  actor ``obs-h1-…-act`` with the hidden activation and a tanh output scaled to the action
  bounds (CleanRL's ``action_scale``/``action_bias``), critic ``(obs+act)-h1-…-1`` with the same
  hidden sizes and activation (CleanRL: 256-256 relu);
* the actor steps every update (``policy_frequency`` 1, as DDPG and SB3 DDPG do; CleanRL's
  default 2 is TD3's delay), and the targets move after it;
* the replay buffer holds torch tensors and samples with ``torch.randint`` inside ``update()``
  (sampling is part of every method's timed update); CleanRL uses SB3's numpy buffer;
* learning rate 1e-3 and exploration noise 0.1 (SB3 DDPG's and the rl-zoo's, as the benchmarks'
  SB3 runs use); the loop updates from task step ``learning_starts`` on (SB3's and the trainer's
  count: ``steps - learning_starts`` updates), CleanRL from the step after.

How to use
----------
``benchmarks/update_throughput.py`` and ``benchmarks/loop_throughput.py`` import it (method
``torch-ddpg`` in their tables). On its own (with ``benchmarks/`` on ``sys.path``)::

    from reference_ddpg import ReferenceConfig, ReferenceDDPG, ReferenceLoop, fill_with_random_transitions

    agent = ReferenceDDPG(obs_dim=17, act_dim=6, config=ReferenceConfig(hidden=(64, 64), batch_size=256))
    fill_with_random_transitions(agent, 10_000)
    agent.update()                                  # one critic and one actor step

    loop = ReferenceLoop("HalfCheetah-v5", ReferenceConfig(hidden=(64, 64)))
    loop.run(steps=4000, learning_starts=1000)     # act, env step, store, update: one update per step

References:
    T. P. Lillicrap et al., "Continuous control with deep reinforcement learning", ICLR 2016,
    https://arxiv.org/abs/1509.02971.
    S. Huang et al., "CleanRL: High-quality single-file implementations of deep reinforcement
    learning algorithms", JMLR 23(274), 2022; ``cleanrl/ddpg_continuous_action.py``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

#: Hidden activations the networks take (the benchmarks' ``--activation`` choices).
ACTIVATIONS: dict[str, type[nn.Module]] = {"tanh": nn.Tanh, "relu": nn.ReLU, "sigmoid": nn.Sigmoid}


@dataclass
class ReferenceConfig:
    """Options of the reference DDPG (the benchmarks set widths, activation and batch to the compared method's)."""

    hidden: tuple[int, ...] = (64, 64)
    """Hidden sizes of the actor and of the critic (SB3's ``net_arch`` for both)."""
    activation: str = "tanh"
    """Hidden activation of both networks (the actor's output is tanh, scaled to the action bounds)."""
    batch_size: int = 64
    """Transitions per update."""
    buffer_size: int = 100_000
    """Replay capacity (transitions)."""
    learning_rate: float = 1e-3
    """Adam step size of both networks (SB3 DDPG's and the rl-zoo's)."""
    gamma: float = 0.99
    """Discount."""
    tau: float = 0.005
    """Polyak rate of the target networks."""
    exploration_noise: float = 0.1
    """Gaussian action noise, as a fraction of the action half-range."""
    policy_frequency: int = 1
    """Critic steps per actor step (1: DDPG; CleanRL's default 2 is TD3's delay)."""
    seed: int = 0
    """Seed of the networks, the noise and the replay sampling."""
    device: str = "cpu"
    """Torch device of the networks and the replay tensors."""

    def validate(self) -> None:
        """Check the options.

        Raises:
            ValueError: Naming the bad option and the fix.
        """
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation={self.activation!r} is unknown; choose one of {tuple(ACTIVATIONS)}")
        for name in ("batch_size", "buffer_size", "policy_frequency"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be at least 1")
        if not self.hidden or min(self.hidden) < 1:
            raise ValueError(f"hidden={self.hidden} must be one or more sizes >= 1, e.g. (64, 64)")


class Batch(NamedTuple):
    """Replayed transitions (one row each): what an update reads."""

    observations: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    next_observations: torch.Tensor
    dones: torch.Tensor
    """1.0 where the episode terminated (not truncated) at this transition."""


def mlp(sizes: list[int], activation: str, output: type[nn.Module] | None) -> nn.Sequential:
    """``Linear`` layers of ``sizes`` with the hidden ``activation`` between them and ``output`` after the last."""
    layers: list[nn.Module] = []
    for index, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(fan_in, fan_out))
        if index < len(sizes) - 2:
            layers.append(ACTIVATIONS[activation]())
    if output is not None:
        layers.append(output())
    return nn.Sequential(*layers)


class Actor(nn.Module):
    """``μ(s)``: ``obs-hidden-act`` with a tanh output scaled to the action bounds (CleanRL's ``Actor``)."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: tuple[int, ...], activation: str,
                 low: np.ndarray, high: np.ndarray) -> None:
        super().__init__()
        self.net = mlp([obs_dim, *hidden, act_dim], activation, nn.Tanh)
        self.register_buffer("action_scale", torch.as_tensor((high - low) / 2.0, dtype=torch.float32))
        self.register_buffer("action_bias", torch.as_tensor((high + low) / 2.0, dtype=torch.float32))

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        """Actions ``[B, act]`` for observations ``[B, obs]``."""
        return self.net(observations) * self.action_scale + self.action_bias


class Critic(nn.Module):
    """``Q(s, a)``: ``(obs+act)-hidden-1`` on the concatenated observation and action (CleanRL's ``QNetwork``)."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: tuple[int, ...], activation: str) -> None:
        super().__init__()
        self.net = mlp([obs_dim + act_dim, *hidden, 1], activation, None)

    def forward(self, observations: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Values ``[B, 1]``."""
        return self.net(torch.cat([observations, actions], 1))


class TensorReplay:
    """Preallocated torch tensors, a ring of ``capacity`` transitions, sampled uniformly with replacement."""

    def __init__(self, capacity: int, obs_dim: int, act_dim: int, generator: torch.Generator) -> None:
        self.capacity = capacity
        device = generator.device
        self.observations = torch.zeros(capacity, obs_dim, device=device)
        self.actions = torch.zeros(capacity, act_dim, device=device)
        self.rewards = torch.zeros(capacity, device=device)
        self.next_observations = torch.zeros(capacity, obs_dim, device=device)
        self.dones = torch.zeros(capacity, device=device)
        self.position = 0
        self.size = 0
        self.generator = generator

    def add(self, observation: Any, action: Any, reward: float, next_observation: Any, terminated: bool) -> None:
        """Store one transition (arrays or tensors of shape ``[obs]`` / ``[act]``)."""
        row = self.position
        self.observations[row] = torch.as_tensor(observation)
        self.actions[row] = torch.as_tensor(action)
        self.rewards[row] = float(reward)
        self.next_observations[row] = torch.as_tensor(next_observation)
        self.dones[row] = float(terminated)
        self.position = (row + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def add_many(self, observations: torch.Tensor, actions: torch.Tensor, rewards: torch.Tensor,
                 next_observations: torch.Tensor, dones: torch.Tensor) -> None:
        """Store ``len(observations)`` transitions at once (at most ``capacity``; the buffer starts over)."""
        count = len(observations)
        if count > self.capacity:
            raise ValueError(f"{count} transitions do not fit a buffer of capacity {self.capacity}")
        self.observations[:count] = observations
        self.actions[:count] = actions
        self.rewards[:count] = rewards
        self.next_observations[:count] = next_observations
        self.dones[:count] = dones
        self.position = count % self.capacity
        self.size = count

    def sample(self, batch_size: int) -> Batch:
        """``batch_size`` rows drawn uniformly from the filled part."""
        rows = torch.randint(0, self.size, (batch_size,), generator=self.generator, device=self.generator.device)
        return Batch(self.observations[rows], self.actions[rows], self.rewards[rows], self.next_observations[rows],
                     self.dones[rows])


class ReferenceDDPG:
    """DDPG in plain torch, CleanRL's update (module doc): ``act``, ``store``, ``update``.

    Args:
        obs_dim: Observation size.
        act_dim: Action size.
        config: Widths, batch, rates and seed (``None``: the defaults).
        low: Lower action bounds (default -1).
        high: Upper action bounds (default 1).

    Raises:
        ValueError: On an invalid option (``ReferenceConfig.validate``).
    """

    def __init__(self, obs_dim: int, act_dim: int, config: ReferenceConfig | None = None,
                 low: np.ndarray | None = None, high: np.ndarray | None = None) -> None:
        self.config = config = config or ReferenceConfig()
        config.validate()
        low = np.full(act_dim, -1.0) if low is None else np.asarray(low, dtype=np.float64)
        high = np.full(act_dim, 1.0) if high is None else np.asarray(high, dtype=np.float64)
        self.low, self.high = low, high
        with torch.random.fork_rng(devices=[]):  # seeded init without touching the caller's global RNG
            torch.manual_seed(config.seed)
            self.actor = Actor(obs_dim, act_dim, config.hidden, config.activation, low, high)
            self.critic = Critic(obs_dim, act_dim, config.hidden, config.activation)
            self.target_actor = Actor(obs_dim, act_dim, config.hidden, config.activation, low, high)
            self.target_critic = Critic(obs_dim, act_dim, config.hidden, config.activation)
        self.device = torch.device(config.device)
        for network in (self.actor, self.critic, self.target_actor, self.target_critic):
            network.to(self.device)
        self.target_actor.load_state_dict(self.actor.state_dict())
        self.target_critic.load_state_dict(self.critic.state_dict())
        self.critic_optimizer = torch.optim.Adam(self.critic.parameters(), lr=config.learning_rate)
        self.actor_optimizer = torch.optim.Adam(self.actor.parameters(), lr=config.learning_rate)
        self.generator = torch.Generator(device=self.device).manual_seed(config.seed)
        self.buffer = TensorReplay(config.buffer_size, obs_dim, act_dim, self.generator)
        self.noise_std = self.actor.action_scale * config.exploration_noise
        self.num_updates = 0

    def act(self, observation: np.ndarray) -> np.ndarray:
        """The actor's action for one observation plus Gaussian noise, clipped to the bounds (CleanRL's)."""
        with torch.no_grad():
            action = self.actor(torch.as_tensor(observation, dtype=torch.float32, device=self.device).unsqueeze(0))[0]
            action += torch.normal(0.0, self.noise_std, generator=self.generator)
        return action.cpu().numpy().clip(self.low, self.high)

    def store(self, observation: Any, action: Any, reward: float, next_observation: Any, terminated: bool) -> None:
        """Store one transition (``next_observation``: the true one, also when the episode was truncated)."""
        self.buffer.add(observation, action, reward, next_observation, terminated)

    def ready(self) -> bool:
        """Whether the buffer holds a transition to sample."""
        return self.buffer.size > 0

    def critic_loss(self, batch: Batch) -> torch.Tensor:
        """The critic's TD loss on ``batch``: MSE to ``r + γ(1−d) Q'(s', μ'(s'))`` (CleanRL's ``qf1_loss``)."""
        with torch.no_grad():
            next_actions = self.target_actor(batch.next_observations)
            next_q = self.target_critic(batch.next_observations, next_actions).view(-1)
            target = batch.rewards.flatten() + (1 - batch.dones.flatten()) * self.config.gamma * next_q
        return F.mse_loss(self.critic(batch.observations, batch.actions).view(-1), target)

    def update(self, batch: Batch | None = None) -> dict[str, torch.Tensor]:
        """One DDPG update: critic step, actor step (every ``policy_frequency``), Polyak targets.

        Args:
            batch: The transitions to learn on; ``None`` samples ``batch_size`` from the buffer
                (the benchmarks time it so, sampling included).

        Returns:
            ``{"critic_loss"}`` (and ``"actor_loss"`` when the actor stepped), detached tensors
            (no ``.item()``: reading them is the caller's cost).
        """
        config = self.config
        if batch is None:
            batch = self.buffer.sample(config.batch_size)
        critic_loss = self.critic_loss(batch)
        self.critic_optimizer.zero_grad()
        critic_loss.backward()
        self.critic_optimizer.step()
        stats = {"critic_loss": critic_loss.detach()}
        self.num_updates += 1
        if self.num_updates % config.policy_frequency == 0:
            actor_loss = -self.critic(batch.observations, self.actor(batch.observations)).mean()
            self.actor_optimizer.zero_grad()
            actor_loss.backward()
            self.actor_optimizer.step()
            for param, target_param in zip(self.actor.parameters(), self.target_actor.parameters(), strict=True):
                target_param.data.copy_(config.tau * param.data + (1 - config.tau) * target_param.data)
            for param, target_param in zip(self.critic.parameters(), self.target_critic.parameters(), strict=True):
                target_param.data.copy_(config.tau * param.data + (1 - config.tau) * target_param.data)
            stats["actor_loss"] = actor_loss.detach()
        return stats


def fill_with_random_transitions(agent: ReferenceDDPG, count: int, seed: int = 0) -> None:
    """Store ``count`` random transitions (Gaussian observations and rewards, uniform actions, 1 % terminal).

    The benchmarks' pre-filled replay for timing the update alone (SB3's and the learners' buffers
    get random rows the same way).
    """
    generator = torch.Generator().manual_seed(seed)
    buffer = agent.buffer
    obs_dim, act_dim = buffer.observations.shape[1], buffer.actions.shape[1]
    rows = (torch.randn(count, obs_dim, generator=generator), torch.rand(count, act_dim, generator=generator) * 2 - 1,
            torch.randn(count, generator=generator), torch.randn(count, obs_dim, generator=generator),
            (torch.rand(count, generator=generator) < 0.01).float())
    buffer.add_many(*(row.to(agent.device) for row in rows))


class ReferenceLoop:
    """The reference's training loop on one Gymnasium task: act, env step, store, update (CleanRL's loop).

    Random actions for the first ``learning_starts`` task steps, then the actor's with noise;
    one update per task step from step ``learning_starts`` on. A single ``gym.Env`` (no vector
    wrapper); on termination or truncation the true last observation is stored and the task
    reset. The benchmark may wrap ``act`` (random or the actor's action), ``env.step``,
    ``agent.store`` and ``agent.update`` on the instances to time them: :meth:`run` looks them up
    at every call.

    Args:
        task: Gymnasium id with a ``Box`` action space.
        config: The agent's options (``config.seed`` also seeds the task's resets and random actions).

    Raises:
        ValueError: If the task's action space is not a ``Box``.
    """

    def __init__(self, task: str, config: ReferenceConfig | None = None) -> None:
        self.config = config = config or ReferenceConfig()
        self.env = gym.make(task)
        space = self.env.action_space
        if not isinstance(space, gym.spaces.Box):
            self.env.close()
            raise ValueError(f"task {task!r} has action space {space}; the reference DDPG needs a Box")
        obs_dim = int(np.prod(self.env.observation_space.shape))
        self.agent = ReferenceDDPG(obs_dim, int(np.prod(space.shape)), config, space.low, space.high)
        space.seed(config.seed)

    def act(self, observation: np.ndarray, step: int, learning_starts: int) -> np.ndarray:
        """A uniform random action before ``learning_starts``, the actor's with noise after."""
        if step < learning_starts:
            return self.env.action_space.sample()
        return self.agent.act(observation)

    def run(self, steps: int, learning_starts: int) -> float:
        """Run ``steps`` task steps; the wall seconds they took (the task's first reset included)."""
        env, agent = self.env, self.agent
        start = time.perf_counter()
        observation, _ = env.reset(seed=self.config.seed)
        for step in range(steps):
            action = self.act(observation, step, learning_starts)
            next_observation, reward, terminated, truncated, _ = env.step(action)
            agent.store(observation, action, float(reward), next_observation, bool(terminated))
            if terminated or truncated:
                observation, _ = env.reset()
            else:
                observation = next_observation
            if step >= learning_starts:
                agent.update()
        return time.perf_counter() - start

    def close(self) -> None:
        """Close the task."""
        self.env.close()
