"""A replay buffer that lives on the learner's device: a ring of preallocated tensors.

Each row is one transition of the whole network, ``(v_τ, a_τ, r_τ, v_{τ+1}, done)``: the
voltages ``[N]``, every agent's action ``[num_agents]``, the task reward (0 on ticks where the
task did not step), the next voltages ``[N]`` and whether the task *terminated* (truncation
is not a terminal state: the learner bootstraps from ``v_{τ+1}``, which then holds the final
observation). ``ReplayBuffer.add`` writes the ``E`` transitions of one vector step at
once; ``ReplayBuffer.sample`` draws a uniform batch with an explicit generator.

The buffer stores whatever voltage and action columns its owner gives it: ``LocalDDPG`` in
``per_tick`` mode stores all ``N`` voltages, in ``settled`` mode only the input neurons' (the other
voltages of a settled transition are its actions, and the next state is settled again at update
time); a learner that re-settles replayed observations and has critics on its outputs only (the
``feedback`` learner's default, ``replay_voltages="current"``) keeps only the outputs' actions.
Memory in float32: ``4 · (2W + A + 2)`` bytes per transition for ``W`` stored voltage columns and
``A`` stored actions, e.g. for a 3-64-64-1 network 1.6 kB per tick, 0.55 kB settled with every
action, 36 B with the outputs' (SB3 DDPG's row: 40 B).
"""

from __future__ import annotations

from typing import NamedTuple

import torch


class Batch(NamedTuple):
    """A batch of transitions: every field has the batch size as leading dimension."""

    voltages: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    next_voltages: torch.Tensor
    terminated: torch.Tensor


class ReplayBuffer:
    """Ring buffer of network transitions on ``device``.

    Args:
        capacity: Maximum number of transitions kept (oldest overwritten first).
        num_neurons: Voltage columns stored per transition (``N``, or the input size when settled).
        num_agents: Number of agents (columns of the action).
        device: Where the storage lives.
        dtype: Floating dtype of the storage.
    """

    def __init__(
        self,
        capacity: int,
        num_neurons: int,
        num_agents: int,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        if capacity < 1:
            from neuron_env.agents.errors import LearnerConfigError

            raise LearnerConfigError(f"buffer_size={capacity!r} must be >= 1")
        self.capacity = int(capacity)
        self.device = torch.device(device)
        self.voltages = torch.zeros(capacity, num_neurons, device=self.device, dtype=dtype)
        self.actions = torch.zeros(capacity, num_agents, device=self.device, dtype=dtype)
        self.rewards = torch.zeros(capacity, device=self.device, dtype=dtype)
        self.next_voltages = torch.zeros(capacity, num_neurons, device=self.device, dtype=dtype)
        self.terminated = torch.zeros(capacity, device=self.device, dtype=dtype)
        self.position = 0
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def add(
        self,
        voltages: torch.Tensor,
        actions: torch.Tensor,
        rewards: torch.Tensor,
        next_voltages: torch.Tensor,
        terminated: torch.Tensor,
    ) -> None:
        """Append ``E`` transitions (leading dimension ``E`` on every argument)."""
        count = voltages.shape[0]
        if self.position + count <= self.capacity:  # a slice copies; an index tensor costs an index_put
            rows = slice(self.position, self.position + count)
            # a copy into a slice casts to the storage's dtype and device itself, as .to() would
            self.voltages[rows] = voltages
            self.actions[rows] = actions
            self.rewards[rows] = rewards
            self.next_voltages[rows] = next_voltages
            self.terminated[rows] = terminated
        else:
            index = (self.position + torch.arange(count, device=self.device)) % self.capacity
            dtype = self.voltages.dtype
            self.voltages[index] = voltages.to(self.device, dtype)
            self.actions[index] = actions.to(self.device, dtype)
            self.rewards[index] = rewards.to(self.device, dtype)
            self.next_voltages[index] = next_voltages.to(self.device, dtype)
            self.terminated[index] = terminated.to(self.device, dtype)
        self.position = (self.position + count) % self.capacity
        self.size = min(self.size + count, self.capacity)

    def sample(self, batch_size: int, generator: torch.Generator) -> Batch:
        """A uniform batch of ``batch_size`` transitions (with replacement)."""
        index = torch.randint(0, self.size, (batch_size,), generator=generator, device=generator.device)
        index = index.to(self.device)
        # index_select: the same rows as advanced indexing, with less overhead per call
        return Batch(*(torch.index_select(t, 0, index) for t in (self.voltages, self.actions, self.rewards,
                                                                 self.next_voltages, self.terminated)))

    def state_dict(self) -> dict[str, torch.Tensor | int]:
        """The filled part of the storage (CPU tensors) and the write position."""
        n = self.size
        return {
            "voltages": self.voltages[:n].cpu(), "actions": self.actions[:n].cpu(), "rewards": self.rewards[:n].cpu(),
            "next_voltages": self.next_voltages[:n].cpu(), "terminated": self.terminated[:n].cpu(),
            "position": self.position, "size": self.size, "capacity": self.capacity,
        }

    def load_state_dict(self, state: dict[str, torch.Tensor | int]) -> None:
        """Restore ``state_dict`` (the capacity must match)."""
        if int(state["capacity"]) != self.capacity:
            from neuron_env.agents.errors import CheckpointError

            raise CheckpointError(f"checkpoint buffer capacity {state['capacity']} != buffer_size {self.capacity}")
        for name in ("voltages", "actions", "next_voltages"):
            stored, expected = tuple(state[name].shape[1:]), tuple(getattr(self, name).shape[1:])  # type: ignore[union-attr]
            if stored != expected:
                from neuron_env.agents.errors import CheckpointError

                raise CheckpointError(
                    f"checkpoint buffer rows hold {name} of shape {stored}; this learner stores {expected} (settled "
                    "learners keep only the input voltages since the second 0.1 round): resume is not possible; "
                    "start a new run (the checkpoint's network weights still load, e.g. for neuron-env enjoy)")
        n = int(state["size"])
        for name in ("voltages", "actions", "rewards", "next_voltages", "terminated"):
            getattr(self, name)[:n] = state[name].to(self.device, self.voltages.dtype)  # type: ignore[union-attr]
        self.size = n
        self.position = int(state["position"])
