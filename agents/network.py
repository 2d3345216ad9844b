"""The network every learner acts with: group layouts, tick levels, acting and settling.

Every learner of the package trains the network itself, one group (layer) at a time. What they
share lives here:

* ``GroupLayout`` / ``build_layouts``: where each agent group's quantities live in the voltage,
  action and parameter tensors (its presynaptic and critic-input indices, its columns, its mask,
  its tick level in a settled task step);
* ``group_levels``: the tick on which each group settles after the input is clamped;
* ``NetworkActor``: the network as one tensor ``[S, P + 1]`` per group (incoming blocks side by
  side, bias last), acting one level per tick (``act``) or a whole task step at once
  (``act_settled``), the forward pass of an acyclic network (``settle``), the ``NetworkWeights``
  view that ``enjoy`` and ``neuron_env.NetworkPolicy`` run, and the divergence check;
* ``require_settled``: the one-line refusal of a learner that acts by one forward pass
  (``neuron_env.agents.capabilities``' line, the same the trainer gives).

A learner subclasses ``NetworkActor`` and supplies its exploration (``_group_action``); its
learning rule, critics and optimizer state are its own (``neuron_env.agents.critics``,
``neuron_env.agents.optim``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, ClassVar, NamedTuple

import numpy as np
import torch
from neuron_env.agents.capabilities import check_capability
from neuron_env.agents.errors import CheckpointError, DivergenceError, LearnerConfigError
from neuron_env.agents.learner import LearnerConfig
from neuron_env.agents.tensors import constant

from neuron_env.dynamics import activate
from neuron_env.topology import ACTIVATION_RANGE, NetworkWeights, Topology

CRITIC_CONTEXTS: tuple[str, ...] = ("presynaptic", "task", "observation", "all")
GRANULARITIES: tuple[str, ...] = ("per_tick", "settled")

Index = slice | torch.Tensor


def group_levels(topology: Topology) -> dict[str, int] | None:
    """Tick on which each group settles after the input is clamped (input 0); ``None`` if cyclic."""
    if topology.depth is None:
        return None
    level: dict[str, int] = {}

    def visit(name: str) -> int:
        if name not in level:
            if topology.group[name].role == "input":
                level[name] = 0
            else:
                sources = [topology.projections[i].source for i in topology.incoming[name]]
                level[name] = 1 + max((visit(s) for s in sources), default=0)
        return level[name]

    for g in topology.groups:
        visit(g.name)
    return level


def as_index(indices: np.ndarray, device: torch.device) -> Index:
    """A slice when ``indices`` is a contiguous ascending range (cheap view), else a tensor."""
    indices = np.asarray(indices, dtype=np.int64)
    if len(indices) and np.array_equal(indices, np.arange(indices[0], indices[0] + len(indices))):
        return slice(int(indices[0]), int(indices[0]) + len(indices))
    return torch.as_tensor(indices, device=device)


@dataclass(frozen=True)
class GroupLayout:
    """Where one agent group's quantities live in the voltage, action and parameter tensors.

    Attributes:
        name: Group name.
        size: Number of neurons ``S``.
        activation: The group's activation.
        agent_slice: Its columns in the ``[E, num_agents]`` action tensor.
        neuron_slice: Its columns in the ``[E, N]`` voltage tensor.
        pre: Presynaptic voltage indices (``P`` of them).
        pre_dim: ``P``.
        context: Critic-input voltage indices (``C`` of them).
        context_dim: ``C``.
        level: Tick of the task step on which the group acts in ``settled`` mode (else ``None``).
        projection_columns: ``(projection index, column slice in the actor tensor)`` per incoming projection.
        mask1: ``[S, P + 1]`` connection mask with a ones bias column, or ``None`` if unmasked.
        low: Lower end of the activation range.
        high: Upper end of the activation range.
    """

    name: str
    size: int
    activation: str
    agent_slice: slice
    neuron_slice: slice
    pre: Index
    pre_dim: int
    context: Index
    context_dim: int
    level: int | None
    projection_columns: tuple[tuple[int, slice], ...]
    mask1: torch.Tensor | None
    low: float
    high: float


class _ActingViews(NamedTuple):
    """``NetworkActor.act_settled``'s working voltages and the views it reads and writes them through."""

    layouts: list[GroupLayout]
    """The layouts the views were made for."""
    working: torch.Tensor
    """``[E, N]`` voltages of the task step being settled."""
    neurons: list[torch.Tensor]
    """Each group's own columns of ``working``."""
    presynaptic: list[torch.Tensor | None]
    """Each group's input columns of ``working`` (``None`` where they are no slice: gathered per call)."""
    agents: torch.Tensor | None
    """The agents' columns of ``working`` (``None`` where they are no slice: gathered per call)."""


def build_layouts(
    topology: Topology, critic_context: str, settled: bool, device: torch.device, dtype: torch.dtype
) -> list[GroupLayout]:
    """One ``GroupLayout`` per agent group, in ``topology.agent_groups`` order."""
    levels = group_levels(topology) if settled else None
    input_index = np.arange(topology.group_slice[topology.input_group.name].start,
                            topology.group_slice[topology.input_group.name].stop)
    layouts = []
    for g in topology.agent_groups:
        pre = topology.presynaptic_index[g.name]
        if critic_context == "presynaptic":
            context = pre
        elif critic_context == "task":
            context = np.concatenate([pre, input_index[~np.isin(input_index, pre)]])
        elif critic_context == "observation":
            context = input_index
        elif levels is not None:  # "all", settled: what has settled before this group acts
            context = np.concatenate([np.arange(topology.group_slice[h.name].start, topology.group_slice[h.name].stop)
                                      for h in topology.groups if levels[h.name] < levels[g.name]])
        else:
            context = np.arange(topology.num_neurons)
        columns = []
        start = 0
        masks = []
        for i in topology.incoming[g.name]:
            width = topology.group[topology.projections[i].source].size
            columns.append((i, slice(start, start + width)))
            mask = topology.projections[i].mask
            masks.append(np.ones((g.size, width), np.float32) if mask is None else mask)
            start += width
        any_mask = any(topology.projections[i].mask is not None for i in topology.incoming[g.name])
        mask1 = None
        if any_mask:
            mask1 = torch.as_tensor(np.concatenate(masks + [np.ones((g.size, 1), np.float32)], 1),
                                    device=device, dtype=dtype)
        low, high = ACTIVATION_RANGE[g.activation]
        layouts.append(GroupLayout(
            name=g.name, size=g.size, activation=g.activation, agent_slice=topology.agent_slice[g.name],
            neuron_slice=topology.group_slice[g.name], pre=as_index(pre, device), pre_dim=len(pre),
            context=as_index(context, device), context_dim=len(context),
            level=None if levels is None else levels[g.name], projection_columns=tuple(columns), mask1=mask1,
            low=low, high=high,
        ))
    return layouts


def resolve_config(config_class: type[LearnerConfig], config: LearnerConfig | None, options: dict[str, Any],
                   learner: str) -> Any:
    """``config`` (default ``config_class()``) with ``options`` replacing its fields.

    Raises:
        LearnerConfigError: Naming an option the learner does not have, and the ones it has; or a
            ``config`` of another learner's class.
    """
    if config is None:
        config = config_class()
    elif not isinstance(config, config_class):
        raise LearnerConfigError(f"learner {learner!r} takes a {config_class.__name__}, not a "
                                 f"{type(config).__name__}: build it with {config_class.__name__}(...)")
    unknown = sorted(set(options) - set(config_class.field_names()))
    if unknown:
        verb = "is not an option" if len(unknown) == 1 else "are not options"
        raise LearnerConfigError(f"{', '.join(unknown)} {verb} of learner {learner!r}; its options: "
                                 f"{', '.join(config_class.field_names())}")
    return replace(config, **options) if options else replace(config)


def check_checkpoint(state: dict[str, Any], learner: str, identity: dict[str, Any],
                     fix: str = "build it with the checkpoint's topology and options") -> None:
    """Raise ``CheckpointError`` unless ``state`` was written by ``learner`` with the same ``identity`` values.

    Every learner's ``load_state_dict`` starts here, so the messages are the same everywhere.

    Args:
        state: A learner's ``state_dict`` (a checkpoint from before the learner interface names no
            learner: it is ``ddpg``'s).
        learner: The loading learner's registry name.
        identity: Entries that must be equal (group names, critic kind, feedback kind, …).
        fix: What the message tells the user to do on a mismatch of ``identity``.
    """
    saved = state.get("learner", "ddpg")
    if saved != learner:
        raise CheckpointError(f"checkpoint holds a {saved!r} learner's state; this learner is {learner!r}: "
                              f"load it with --learner {saved}")
    for key, expected in identity.items():
        value = state.get(key)
        if (list(value) if isinstance(value, (list, tuple)) else value) != expected:
            raise CheckpointError(f"checkpoint has {key}={value!r}; this {learner!r} learner has {key}={expected!r}: "
                                  f"{fix}")


def check_shapes(state: dict[str, Any], key: str, current: list[torch.Tensor | None],
                 layouts: list[GroupLayout]) -> None:
    """Raise ``CheckpointError`` naming the group whose saved ``key`` tensor differs in shape (or presence)."""
    for lay, saved, own in zip(layouts, state[key], current, strict=True):
        saved_shape = None if saved is None else tuple(saved.shape)
        own_shape = None if own is None else tuple(own.shape)
        if saved_shape != own_shape:
            raise CheckpointError(f"{key} of group {lay.name!r} has shape {saved_shape}; expected {own_shape} "
                                  "(another topology or critic_context?)")


def require_settled(topology: Topology, learner: str) -> None:
    """Raise ``LearnerConfigError`` unless ``topology`` is acyclic and leak-free (one forward pass a step).

    The line is ``capabilities.check_capability``'s for the sync clock: a learner built directly
    refuses a network with the words the trainer uses (which checks first, clock included).
    """
    check_capability(learner, topology, "sync")


class NetworkActor:
    """The network as per-group actor tensors, for learners whose policy is the network itself.

    Subclasses set ``topology``, ``layouts`` (``build_layouts``),
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

    #: The learner's config dataclass: its one set of defaults.
    config_class: ClassVar[type[LearnerConfig]] = LearnerConfig
    #: Network kinds it trains (``neuron_env.agents.capabilities``): by default one forward pass per task step.
    topologies: ClassVar[tuple[str, ...]] = ("acyclic",)
    #: Clocks it trains under: by default the sync clock only.
    clocks: ClassVar[tuple[str, ...]] = ("sync",)
    #: Whether ``freeze_hidden`` becomes ``lr_actor_hidden = 0`` (else the learner takes it itself).
    freeze_by_hidden_rate: ClassVar[bool] = True

    def __init__(self, topology: Topology, config: LearnerConfig | None = None, *,
                 device: str | torch.device = "cpu", seed: int = 0, weights: NetworkWeights | None = None,
                 dtype: torch.dtype = torch.float32, **options: Any) -> None:
        """Build the learner from ``config`` (default: ``config_class()``), with ``options`` overriding its fields.

        Args:
            topology: The network.
            config: The learner's options; ``None``: its config dataclass's defaults.
            device: Torch device of every tensor.
            seed: Seed of the initial weights (when ``weights`` is ``None``) and of the learner's
                random streams.
            weights: Initial network weights; ``None`` draws ``NetworkWeights.init(topology, seed)``.
            dtype: Floating dtype of every tensor (float64 for exact tests).
            **options: Fields of the config dataclass, overriding ``config``'s.

        Raises:
            LearnerConfigError: On an option the learner does not have, or an invalid value.
        """
        #: The resolved options this learner was built with (what a run records).
        self.config = resolve_config(self.config_class, config, options, self.name)  # type: ignore[attr-defined]
        settings = {name: getattr(self.config, name) for name in self.config.field_names()}
        if self.freeze_by_hidden_rate and settings.pop("freeze_hidden"):
            settings["lr_actor_hidden"] = 0.0
        self._build(topology, device=device, seed=seed, weights=weights, dtype=dtype, **settings)

    def _build(self, topology: Topology, *, device: str | torch.device, seed: int, weights: NetworkWeights | None,
               dtype: torch.dtype, **settings: Any) -> None:
        """Set the learner up from its resolved settings (the config's fields; ``freeze_hidden`` mapped)."""
        raise NotImplementedError

    @classmethod
    def from_config(cls, topology: Topology, config: LearnerConfig, *, device: str | torch.device = "cpu",
                    seed: int = 0, weights: NetworkWeights | None = None, dtype: torch.dtype = torch.float32) -> Any:
        """The learner ``config`` describes (the registry's and the trainer's entry point)."""
        return cls(topology, config, device=device, seed=seed, weights=weights, dtype=dtype)

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
            if level is None and self._groups_tile_agents():
                # every group acts and their columns follow one another in agent order: one concatenation
                voltages = voltages.to(self.device, self.dtype)  # type: ignore[attr-defined]
                self._begin_acting(voltages.shape[0], explore)
                outs = [self._group_action(voltages, i, explore, uniform) for i, _ in self._acting_groups(None)]
                if all(out.dtype == voltages.dtype for out in outs):
                    return torch.cat(outs, dim=1)
                actions = torch.empty(voltages.shape[0], self.topology.num_agents, device=voltages.device,
                                      dtype=voltages.dtype)
                for (_, lay), out in zip(self._acting_groups(None), outs, strict=True):
                    actions[:, lay.agent_slice] = out  # cast into the voltages' dtype, as below
                return actions
            voltages, actions = self._new_actions(voltages, level)
            self._begin_acting(voltages.shape[0], explore)
            for i, lay in self._acting_groups(level):
                actions[:, lay.agent_slice] = self._group_action(voltages, i, explore, uniform)
            return actions

    def _groups_tile_agents(self) -> bool:
        """Whether the groups' action columns, in layout order, follow one another from 0 to ``num_agents``."""
        layouts, tiled = self.__dict__.get("_groups_tile_cache", (None, False))
        if layouts is not self.layouts:
            stops = [0, *(lay.agent_slice.stop for lay in self.layouts)]
            tiled = all(lay.agent_slice.start == start and lay.agent_slice.step in (None, 1)
                        for lay, start in zip(self.layouts, stops, strict=False)) \
                and stops[-1] == self.topology.num_agents  # type: ignore[attr-defined]
            self.__dict__["_groups_tile_cache"] = (self.layouts, tiled)
        return tiled

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
            if voltages.dtype != self.dtype:  # type: ignore[attr-defined]
                return self._act_settled_cast(voltages, levels, uniform)
            # In the voltages' own dtype every action is the voltage its level writes (or, for an agent that
            # does not act, its voltage): the levels write into one working tensor kept between calls, through
            # views made once, and the actions are read off it at the end in one copy.
            acting = self._acting_views(voltages)
            acting.working.copy_(voltages)  # to the learner's device, as voltages.to(...) would
            self._begin_acting(voltages.shape[0], True)
            for level in range(1, levels + 1):
                for i, _ in self._acting_groups(level):
                    acting.neurons[i].copy_(self._group_action(acting.working, i, True, uniform))
            if acting.agents is None:  # the agents' columns are no slice: gathered, a new tensor
                return acting.working[:, self.agent_neuron_index]  # type: ignore[attr-defined]
            return acting.agents.clone(memory_format=torch.contiguous_format)

    def _act_settled_cast(self, voltages: torch.Tensor, levels: int, uniform: bool) -> torch.Tensor:
        """``act_settled`` for voltages of another dtype than the learner's: the last level's actions keep its dtype."""
        working = voltages.to(self.device, self.dtype)  # type: ignore[attr-defined]
        actions = working[:, self.agent_neuron_index].clone()  # type: ignore[attr-defined]
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

    def _acting_views(self, voltages: torch.Tensor) -> _ActingViews:
        """``act_settled``'s working ``[E, N]`` voltages for batches shaped as ``voltages``, and their views.

        Kept between calls and made again only for another batch shape: a view costs about as much as
        the small copy it feeds, and ``_group_output`` reads a group's inputs through ``_presynaptic``.
        """
        acting: _ActingViews | None = self.__dict__.get("_acting")
        if acting is None or acting.working.shape != voltages.shape or acting.layouts is not self.layouts:
            working = torch.empty(voltages.shape, device=self.device, dtype=self.dtype)  # type: ignore[attr-defined]
            span = self.topology.agent_span  # type: ignore[attr-defined]
            acting = self.__dict__["_acting"] = _ActingViews(
                layouts=self.layouts,
                working=working,
                neurons=[working[:, lay.neuron_slice] for lay in self.layouts],
                presynaptic=[working[:, lay.pre] if isinstance(lay.pre, slice) else None for lay in self.layouts],
                agents=working[:, span] if isinstance(span, slice) else None,
            )
        return acting

    def _presynaptic(self, voltages: torch.Tensor, index: int) -> torch.Tensor:
        """``voltages[:, pre]`` of group ``index`` (a view made once for ``act_settled``'s working voltages)."""
        acting: _ActingViews | None = self.__dict__.get("_acting")
        if acting is not None and voltages is acting.working:
            view = acting.presynaptic[index]
            if view is not None:
                return view
        return voltages[:, self.layouts[index].pre]

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
    #: What each column of ``_raise_if_not_finite``'s ``finite`` flags checks.
    finite_columns: ClassVar[tuple[str, ...]] = ("td_error", "actor", "critic")

    def _raise_if_not_finite(self, finite: torch.Tensor) -> None:
        """Raise ``DivergenceError`` at the first ``False`` of ``finite`` (``[groups, len(finite_columns)]``)."""
        if bool(finite.all()):
            return
        group_index, what_index = (int(i) for i in torch.nonzero(~finite)[0])
        what = self.finite_columns[what_index]
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
        """``(index, layout)`` of the groups that act at tick ``level`` (``None``: every group); read only.

        Listed once per level (every tick asks).
        """
        layouts, by_level = self.__dict__.get("_acting_group_cache", (None, {}))
        if layouts is not self.layouts:
            layouts, by_level = self.__dict__["_acting_group_cache"] = (self.layouts, {})
        groups = by_level.get(level)
        if groups is None:
            groups = by_level[level] = [(i, lay) for i, lay in enumerate(layouts) if level in (None, lay.level)]
        return groups

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
        return activate(torch.addmm(bias, self._presynaptic(voltages, index), kernel_t), lay.activation)

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
