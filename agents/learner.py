"""The learner interface: what the trainer, ``enjoy``, ``compare`` and the studies ask of a learner.

A *learner* trains every non-input neuron of a network at once, locally (``docs/design.md``, "What local means"):
neuron ``n``'s update reads only its own parameters, its presynaptic voltages, the task
observation where its context allows, the global reward, and messages from its direct
neighbours that arrive through the network's tick delay. Every learner of the package
implements ``Learner`` and is registered by name in ``neuron_env.agents.registry``
(``neuron-env train --learner NAME``).

The protocol, in the order the trainer calls it::

    learner = SomeLearner.from_config(topology, SomeConfig(...), device="cpu", seed=0)
    actions = learner.act(voltages, level=1)          # every tick of a task step
    learner.store(v, actions, reward, v_next, terminated, truncated)   # per task step (settled) or tick
    learner.store(..., fired=info["fired"])           # per tick under the async clock (declared learners)
    if learner.ready():                               # on-policy learners: when a rollout is full
        stats = learner.update()
    learner.reset_noise(done)                         # episodes that ended
    learner.state_dict(); learner.load_state_dict(state); learner.weights

What a learner trains on is declared, not discovered: its class lists the network kinds
(``topologies``) and clocks (``clocks``) it trains, and ``neuron_env.agents.capabilities`` checks
them in one place before any work, refusing the rest in one line that names the learners that can.

The machinery the learners share lives beside this module, one job per module:
``neuron_env.agents.network`` (group layouts, levels, the network actor, settling),
``neuron_env.agents.off_policy`` (replay, exploration noise, target copies and critics of the
replay-based rules), ``neuron_env.agents.critics`` (critic kinds) and
``neuron_env.agents.optim`` (actor steps, Adam, flat buffers). Each rule module
(``local_ddpg``, ``feedback``, ``coagent``, ``es``) uses them and imports no other rule.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar, Protocol, runtime_checkable

import torch

from neuron_env.topology import NetworkWeights, Topology


@dataclass
class LearnerConfig:
    """Options every learner has (subclasses add their own, a docstring per field)."""

    freeze_hidden: bool = False
    """Hidden groups keep their random init; only output neurons learn (the study's floor control)."""

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """Names of the options of this config."""
        return tuple(f.name for f in fields(cls))


@runtime_checkable
class Learner(Protocol):
    """What every learner provides (see the module doc for the calling order).

    Attributes:
        name: Registry name (``neuron-env train --learner NAME``).
        topology: The network it trains.
        device: Where its tensors live.
        granularity: ``"settled"`` (acts one level per tick, one transition per task step) or
            ``"per_tick"`` (every agent every tick, one transition per tick).
        agent_neuron_index: ``[num_agents]`` voltage column of each agent.
        num_updates: ``update`` calls so far.
        topologies: The network kinds it trains, from ``capabilities.TOPOLOGY_KINDS``: ``"acyclic"``
            (acyclic and leak-free), ``"recurrent"`` (with a cycle), ``"leaky"`` (a group with a
            leak). A network with several kinds needs all of them. A learner that acts by one
            settled forward pass per task step declares ``("acyclic",)``.
        clocks: The clocks it trains under, from ``capabilities.CLOCKS``: ``"sync"`` and
            ``"async"`` (each neuron fires with probability ``firing_rate`` per tick; a silent
            neuron's action has no effect). Only a learner that declares ``"async"`` is ever
            given ``store(..., fired=...)``.
    """

    name: ClassVar[str]
    topologies: ClassVar[tuple[str, ...]]
    clocks: ClassVar[tuple[str, ...]]
    topology: Topology
    device: torch.device
    granularity: str
    agent_neuron_index: torch.Tensor
    num_updates: int

    def act(self, voltages: torch.Tensor, explore: bool = True, level: int | None = None,
            uniform: bool = False) -> torch.Tensor:
        """Every agent's next voltage for a batch of env copies.

        Args:
            voltages: ``[E, N]`` current voltages.
            explore: Explore (the learner's noise or sampling); ``False``: the deterministic
                policy (evaluation).
            level: The tick of the task step (1 … depth): only the groups of that level act, every
                other agent holds its voltage. ``None``: every agent acts on ``voltages``.
            uniform: Warm-up acting (off-policy learners draw uniformly in the activation range).

        Returns:
            ``[E, num_agents]`` actions in ``topology.agent_ids`` order.

        Acting is the same under either clock: every agent proposes an action and the env decides
        who fires on that tick (the firing mask is drawn by the step that consumes the actions),
        so ``act`` takes no firing mask; what fired reaches the learner through ``store``.
        """
        ...

    def store(self, voltages: torch.Tensor, actions: torch.Tensor, rewards: torch.Tensor,
              next_voltages: torch.Tensor, terminated: torch.Tensor,
              truncated: torch.Tensor | None = None, fired: torch.Tensor | None = None) -> None:
        """Record ``E`` transitions (settled voltages and actions, reward, next voltages, ends).

        ``fired``: under the async clock, the tick's ``[E, num_agents]`` bool mask of the agents
        that fired (``info["fired"]``): a silent agent's action had no effect, so it must not be
        learned on as if it had. The trainer passes it only under the async clock, and only to a
        learner whose ``clocks`` hold ``"async"``; a learner that declares ``("sync",)`` may leave
        the parameter out.
        """
        ...

    def ready(self) -> bool:
        """Whether ``update`` has something to learn from now."""
        ...

    def update(self) -> dict[str, torch.Tensor]:
        """One learning step of every neuron; scalar statistics as 0-d tensors."""
        ...

    def reset_noise(self, done: torch.Tensor | None = None) -> None:
        """Episodes of the ``[E]`` copies marked ``done`` ended (all when ``None``)."""
        ...

    @property
    def weights(self) -> NetworkWeights:
        """The network the learner acts with when it does not explore."""
        ...

    @property
    def num_transitions(self) -> int:
        """Transitions held for learning (replay size, or the rollout in progress)."""
        ...

    def state_dict(self, include_buffer: bool = True) -> dict[str, Any]:
        """Everything needed to continue learning exactly, as CPU tensors."""
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore ``state_dict`` (same topology and options)."""
        ...
