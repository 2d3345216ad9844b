"""The learner interface: what the trainer, ``enjoy``, ``compare`` and the studies ask of a learner.

A *learner* trains every non-input neuron of a network at once, locally (``DESIGN.md`` §1):
neuron ``n``'s update reads only its own parameters, its presynaptic voltages, the task
observation where its context allows, the global reward, and messages from its direct
neighbours that arrive through the network's tick delay. Every learner of the package
implements ``Learner`` and is registered by name in ``neuron_env.agents.registry``
(``neuron-env train --learner NAME``).

The protocol, in the order the trainer calls it::

    learner = SomeLearner.from_config(topology, SomeConfig(...), device="cpu", seed=0)
    actions = learner.act(voltages, level=1)          # every tick of a task step
    learner.store(v, actions, reward, v_next, terminated, truncated)   # once per task step
    if learner.ready():                               # on-policy learners: when a rollout is full
        stats = learner.update()
    learner.reset_noise(done)                         # episodes that ended
    learner.state_dict(); learner.load_state_dict(state); learner.weights

``NetworkActor`` is the shared part of every learner whose actor *is* the network: one tensor
``[S, P + 1]`` per group (incoming blocks side by side, bias last), the forward pass of an
acyclic network (``settle``) and the ``NetworkWeights`` view that ``enjoy`` and
``neuron_env.NetworkPolicy`` run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Protocol, runtime_checkable

import torch
from neuron_env.agents.critics import constant
from neuron_env.agents.errors import DivergenceError, LearnerConfigError

from neuron_env.dynamics import activate
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
    """

    name: ClassVar[str]
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
        """
        ...

    def store(self, voltages: torch.Tensor, actions: torch.Tensor, rewards: torch.Tensor,
              next_voltages: torch.Tensor, terminated: torch.Tensor,
              truncated: torch.Tensor | None = None) -> None:
        """Record ``E`` transitions (settled voltages and actions, reward, next voltages, ends)."""
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


def require_settled(topology: Topology, learner: str) -> None:
    """Raise ``LearnerConfigError`` unless ``topology`` is acyclic and leak-free (one forward pass a step)."""
    leaky = any(g.leak > 0 for g in topology.agent_groups)
    if topology.depth is None or leaky:
        raise LearnerConfigError(
            f"learner {learner!r} needs an acyclic, leak-free topology (it acts by one forward pass per task "
            f"step); {topology!r} is {'cyclic' if topology.depth is None else 'leaky'}: use --learner ddpg"
        )


class NetworkActor:
    """The network as per-group actor tensors, for learners whose policy is the network itself.

    Subclasses set ``topology``, ``layouts`` (``neuron_env.agents.local_ddpg.build_layouts``),
    ``actor`` and ``target_actor`` (one ``[S, P + 1]`` tensor per group; a learner without
    target copies sets ``target_actor = actor``) and ``_input`` (the input group's voltage slice).
    """

    topology: Topology
    layouts: list[Any]
    actor: list[torch.Tensor]
    target_actor: list[torch.Tensor]
    _input: slice
    #: Whether the constructor takes ``lr_actor_hidden`` (``freeze_hidden`` then sets it to 0).
    freeze_by_hidden_rate: bool = True

    @classmethod
    def from_config(cls, topology: Topology, config: LearnerConfig, *, device: str | torch.device = "cpu",
                    seed: int = 0, weights: NetworkWeights | None = None, dtype: torch.dtype = torch.float32) -> Any:
        """The learner ``config`` describes: every option a constructor keyword of the same name.

        ``freeze_hidden`` becomes ``lr_actor_hidden = 0`` for learners with a hidden step size
        (``freeze_by_hidden_rate``), and is passed as it is to the others.
        """
        options = {name: getattr(config, name) for name in config.field_names()}
        if cls.freeze_by_hidden_rate:
            if options.pop("freeze_hidden"):
                options["lr_actor_hidden"] = 0.0
        return cls(topology, device=device, seed=seed, weights=weights, dtype=dtype, **options)

    @staticmethod
    def actor_tensors(layouts: list[Any], weights: NetworkWeights) -> list[torch.Tensor]:
        """One ``[S, P + 1]`` tensor per group from ``weights`` (blocks in projection order, bias last)."""
        tensors = []
        for lay, bias in zip(layouts, weights.biases, strict=True):
            blocks = [weights.blocks[i] for i, _ in lay.projection_columns]
            tensors.append(torch.cat(blocks + [bias[:, None]], 1).contiguous())
        return tensors

    @property
    def weights(self) -> NetworkWeights:
        """The current network as ``NetworkWeights`` (views into the actor tensors)."""
        return self._network(self.actor)

    @property
    def target_weights(self) -> NetworkWeights:
        """The target network as ``NetworkWeights`` (views)."""
        return self._network(self.target_actor)

    def _network(self, actor: list[torch.Tensor]) -> NetworkWeights:
        blocks: list[torch.Tensor | None] = [None] * len(self.topology.projections)
        for lay, w in zip(self.layouts, actor, strict=True):
            for i, columns in lay.projection_columns:
                blocks[i] = w[:, columns]
        return NetworkWeights(tuple(b for b in blocks if b is not None),
                              tuple(w[:, -1] for w in actor))

    # ------------------------------------------------------------------ acting
    def act(self, voltages: torch.Tensor, explore: bool = True, level: int | None = None,
            uniform: bool = False) -> torch.Tensor:
        """Every agent's next voltage for a batch of env copies (see ``Learner.act``).

        The acting groups' outputs come from the learner's ``_group_action`` (its exploration
        included); with a ``level`` every other agent holds its voltage.
        """
        with torch.no_grad():
            voltages, actions = self._new_actions(voltages, level)
            self._begin_acting(voltages.shape[0], explore)
            for i, lay in self._acting_groups(level):
                actions[:, lay.agent_slice] = self._group_action(voltages, i, explore, uniform)
            return actions

    def act_settled(self, voltages: torch.Tensor, levels: int, uniform: bool = False) -> torch.Tensor:
        """The actions of a whole task step of an acyclic network, exploring, in one call.

        Equal to ``act(v, level=1)``, writing its actions into the voltages as the env's tick does
        (in the voltages' own dtype), then ``act(…, level=2)`` and so on to ``levels`` (the env's
        ``delay``): each level reads the (noisy) voltages the levels before it set, and the
        noise and warm-up draws come in the same order. Returns what the last ``act`` returns: every
        agent at its settled voltage; the trainer holds them for the task step
        (``NeuronVecEnv.step_task``).

        Args:
            voltages: ``[E, N]`` voltages at the start of the task step (inputs clamped).
            levels: Ticks of the task step.
            uniform: Warm-up acting (see ``act``).
        """
        with torch.no_grad():
            working, actions = self._new_actions(voltages, level=0)
            if working.data_ptr() == voltages.data_ptr():
                working = working.clone()  # written below: never the caller's tensor
            self._begin_acting(working.shape[0], True)
            for level in range(1, levels + 1):
                for i, lay in self._acting_groups(level):
                    out = self._group_action(working, i, True, uniform)
                    # later levels read (and the env holds) the voltage as the env stores it: float32
                    stored = out.to(voltages.dtype)
                    working[:, lay.neuron_slice] = stored
                    actions[:, lay.agent_slice] = out if level == levels else stored
            return actions

    def _begin_acting(self, num_envs: int, explore: bool) -> None:
        """Called once per ``act``/``act_settled`` before the groups act (ES makes its copies here)."""

    def _group_action(self, voltages: torch.Tensor, index: int, explore: bool, uniform: bool) -> torch.Tensor:
        """Group ``index``'s ``[E, S]`` actions on ``voltages`` (its policy and exploration)."""
        raise NotImplementedError

    def _new_actions(self, voltages: torch.Tensor, level: int | None) -> tuple[torch.Tensor, torch.Tensor]:
        """``act``'s start: the voltages on the learner's device and dtype, and the ``[E, num_agents]`` actions to fill.

        The actions are empty, or with a ``level`` every agent holding its voltage (only that
        level's groups then act).
        """
        voltages = voltages.to(self.device, self.dtype)  # type: ignore[attr-defined]
        if level is None:
            return voltages, torch.empty(voltages.shape[0], self.topology.num_agents, device=voltages.device,
                                         dtype=voltages.dtype)
        return voltages, voltages[:, self.agent_neuron_index].clone()  # type: ignore[attr-defined]

    #: The first fix a divergence message suggests.
    divergence_advice: ClassVar[str] = "lower lr_actor/lr_critic"

    def _raise_if_not_finite(self, finite: torch.Tensor) -> None:
        """Raise ``DivergenceError`` at the first ``False`` of ``finite`` (``[groups, 3]``: TD error, actor, critic)."""
        if bool(finite.all()):
            return
        group_index, what_index = (int(i) for i in torch.nonzero(~finite)[0])
        what = ("td_error", "actor", "critic")[what_index]
        name = self.layouts[group_index].name
        raise DivergenceError(
            f"non-finite {what.replace('_', ' ')} in group {name!r} at update {self.num_updates}; "  # type: ignore[attr-defined]
            f"{self.divergence_advice}, check the task's rewards for NaN, or resume from the last checkpoint",
            group=name, what=what,
        )

    def _raise_if_not_finite_sums(self, sums: list[torch.Tensor], columns: int) -> None:
        """``_raise_if_not_finite`` on 0-d ``sums``, ``columns`` per group in row-major order.

        One device sync on their total in the common case: it is finite iff every sum is (or they
        overflow it, and then the sums are checked one by one, so the verdict is each sum's).
        """
        stacked = torch.stack(sums)
        if not math.isfinite(float(stacked.sum())):
            self._raise_if_not_finite(torch.isfinite(stacked).view(-1, columns))

    def _acting_groups(self, level: int | None) -> list[tuple[int, Any]]:
        """``(index, layout)`` of the groups that act at tick ``level`` (``None``: every group)."""
        return [(i, lay) for i, lay in enumerate(self.layouts) if level is None or lay.level == level]

    def _pre1(self, voltages: torch.Tensor, lay: Any) -> torch.Tensor:
        return torch.cat([voltages[:, lay.pre], constant((voltages.shape[0], 1), 1.0, voltages)], 1)

    def _actor_views(self, actor: list[torch.Tensor], index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(b [S], Kᵀ [P, S], [K, b]ᵀ [P + 1, S])``: views of ``actor[index]``, made once per tensor.

        Views follow the tensor's in-place steps, so they are kept (one entry per group for the
        actor and one for the target) until the list holds another tensor (a restored checkpoint);
        that saves three view ops per use, a dozen per update.
        """
        w = actor[index]
        cache: dict[tuple[int, bool], tuple[torch.Tensor, ...]] = self.__dict__.setdefault("_actor_view_cache", {})
        key = (index, actor is getattr(self, "target_actor", None))
        hit = cache.get(key)
        if hit is None or hit[0] is not w:
            hit = cache[key] = (w, w[:, -1], w[:, :-1].T, w.T)
        return hit[1], hit[2], hit[3]

    def _group_output(self, voltages: torch.Tensor, index: int, actor: list[torch.Tensor]) -> torch.Tensor:
        lay = self.layouts[index]
        bias, kernel_t, _ = self._actor_views(actor, index)
        return activate(torch.addmm(bias, voltages[:, lay.pre], kernel_t), lay.activation)

    def settle(self, voltages: torch.Tensor, target: bool = False) -> torch.Tensor:
        """Settled voltages of an acyclic network: one forward pass from the input voltages.

        Args:
            voltages: ``[B, N]`` (only the input neurons are read) or the input voltages alone.
            target: Use the target network instead of the current one.

        Returns:
            ``[B, N]`` with every group set to its output on the inputs.
        """
        actor = self.target_actor if target else self.actor
        num_inputs = self._input.stop - self._input.start
        inputs = voltages if voltages.shape[1] == num_inputs else voltages[:, self._input]
        settled = torch.empty(voltages.shape[0], self.topology.num_neurons, device=voltages.device,
                              dtype=voltages.dtype)
        settled[:, self._input] = inputs
        order = sorted(range(len(self.layouts)), key=lambda i: self.layouts[i].level or 0)
        for i in order:
            settled[:, self.layouts[i].neuron_slice] = self._group_output(settled, i, actor)
        return settled
