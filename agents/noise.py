"""Exploration noise for all neurons at once: independent per neuron, per env copy, per tick.

Two processes, both drawing from an explicit ``torch.Generator`` on the learner's device (no
global random state):

* ``GaussianNoise``: ``σ · N(0, 1)``, fresh every draw (the default; TD3 / CleanRL DDPG).
* ``OrnsteinUhlenbeckNoise``: ``x ← x + θ (μ − x) dt + σ √dt · N(0, 1)`` per neuron, with
  the DDPG paper's ``θ = 0.15`` and ``dt = 1e-2`` (Stable-Baselines3's defaults). Its state is a
  ``[E, num_agents]`` tensor; ``reset`` zeroes the rows of copies
  whose episode ended.

``sample(num_envs, columns)`` returns the noise of the agents in the ``columns`` slice only, so
that a learner acting one layer per tick advances each neuron's process once per action.
"""

from __future__ import annotations

import torch
from neuron_env.agents.tensors import scalar


class GaussianNoise:
    """Independent Gaussian noise ``σ · N(0, 1)``.

    Args:
        num_agents: Number of agents (columns).
        scale: Standard deviation ``σ``.
        generator: Random generator on the target device.
    """

    kind = "gaussian"

    def __init__(self, num_agents: int, scale: float, generator: torch.Generator) -> None:
        self.num_agents = num_agents
        self.scale = float(scale)
        self.generator = generator
        self._scale_operands: dict[torch.dtype, tuple[float, torch.Tensor | float]] = {}

    def sample(self, num_envs: int, columns: slice, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Noise ``[num_envs, columns width]`` for the agents in ``columns``."""
        width = len(range(*columns.indices(self.num_agents)))
        noise = torch.randn(num_envs, width, generator=self.generator, device=self.generator.device, dtype=dtype)
        return noise.mul_(self._scale_operand(noise))  # σ · N(0, 1): the same bits as self.scale * noise

    def _scale_operand(self, noise: torch.Tensor) -> torch.Tensor | float:
        """``scale`` as the operand of a product with ``noise`` (``tensors.scalar``), made once per dtype and scale."""
        cached = self._scale_operands.get(noise.dtype)
        if cached is None or cached[0] != self.scale:
            cached = self._scale_operands[noise.dtype] = (self.scale, scalar(self.scale, noise))
        return cached[1]

    def reset(self, done: torch.Tensor | None = None) -> None:
        """Nothing to reset (memoryless)."""

    def state_dict(self) -> dict[str, torch.Tensor]:
        """No state beyond the shared generator."""
        return {}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """No state beyond the shared generator."""


class OrnsteinUhlenbeckNoise(GaussianNoise):
    """Ornstein-Uhlenbeck noise per neuron and env copy (mean 0).

    Args:
        num_agents: Number of agents (columns).
        scale: ``σ`` of the process.
        generator: Random generator on the target device.
        theta: Mean-reversion rate ``θ``.
        dt: Time step ``dt``.
    """

    kind = "ou"

    def __init__(
        self, num_agents: int, scale: float, generator: torch.Generator, theta: float = 0.15, dt: float = 1e-2
    ) -> None:
        super().__init__(num_agents, scale, generator)
        self.theta = float(theta)
        self.dt = float(dt)
        self.state: torch.Tensor | None = None

    def sample(self, num_envs: int, columns: slice, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Advance the processes of the agents in ``columns`` by one step and return them."""
        if self.state is None or self.state.shape[0] != num_envs:
            self.state = torch.zeros(num_envs, self.num_agents, device=self.generator.device, dtype=dtype)
        x = self.state[:, columns]
        kick = torch.randn(x.shape, generator=self.generator, device=self.generator.device, dtype=dtype)
        x = x - self.theta * x * self.dt + self.scale * (self.dt**0.5) * kick
        self.state[:, columns] = x
        return x.clone()

    def reset(self, done: torch.Tensor | None = None) -> None:
        """Zero every process (``done=None``) or those of the copies flagged in ``done`` (``[E]`` bool)."""
        if self.state is None:
            return
        if done is None:
            self.state.zero_()
        else:
            self.state[done] = 0.0

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The processes' current values."""
        return {} if self.state is None else {"state": self.state.clone()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Restore ``state_dict``."""
        self.state = state["state"].clone() if "state" in state else None


def make_noise(kind: str, num_agents: int, scale: float, generator: torch.Generator) -> GaussianNoise:
    """The noise process named ``kind`` (``"gaussian"`` or ``"ou"``)."""
    if kind == "gaussian":
        return GaussianNoise(num_agents, scale, generator)
    if kind == "ou":
        return OrnsteinUhlenbeckNoise(num_agents, scale, generator)
    from neuron_env.agents.errors import LearnerConfigError

    raise LearnerConfigError(f"noise={kind!r} is unknown; use 'gaussian' or 'ou'")
