"""Network topologies: neuron groups, projections, and their weights.

A ``Topology`` is the wiring diagram of a policy network seen as a set of neurons.
Neurons come in **groups** (one layer each); a group has a size, an activation, a role
(``"input"``, ``"hidden"`` or ``"output"``) and an optional leak. **Projections** connect a
source group to a target group with a dense weight block, optionally restricted by a fixed
0/1 mask.

The voltage vector ``v`` of the network lists the groups' neurons in declaration order, so
group ``g`` occupies ``v[topology.group_slice[g]]``. Every non-input neuron is an *agent*;
its id is ``"<group>_<i>"`` (``"h1_0"``, ``"out_2"``). Third-party MARL libraries (TorchRL,
AgileRL, BenchMARL) group agents by the text before the last ``_``, which is exactly the
group: every agent of a group has the same observation and action space.

Builders cover the usual cases:

    Topology.mlp(3, [64, 64], 1)                 # 3-64-64-1 tanh MLP
    Topology.for_task("CartPole-v1", [64, 64])   # 4-64-64-2: sizes from the task's spaces
    Topology.recurrent(3, 32, 1, leak=0.5)       # one leaky recurrent layer
    Topology.sparse(3, 50, 1, density=0.1)       # random sparse recurrent network
    Topology.from_adjacency(adjacency, 3, 1)     # any directed graph
    topology, weights = Topology.from_module(sb3_model.actor.mu)

Weights live in ``NetworkWeights``: one ``[target, source]`` tensor per projection and
one bias vector per non-input group, the layout an ``nn.Linear`` uses.

One module: ``Topology``'s builders, derived indices and ``NetworkWeights`` are one data model
(each builder returns what the others validate).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import numpy as np
import torch
from torch import nn

from neuron_env.errors import TopologyError
from neuron_env.spaces import DecoderSpec, EncoderSpec, TaskSpec, task_interface

Activation = Literal["tanh", "relu", "sigmoid", "identity"]
Role = Literal["input", "hidden", "output"]

ACTIVATIONS: tuple[str, ...] = ("tanh", "relu", "sigmoid", "identity")
ROLES: tuple[str, ...] = ("input", "hidden", "output")

#: The closed range of voltages each activation can produce.
ACTIVATION_RANGE: dict[str, tuple[float, float]] = {
    "tanh": (-1.0, 1.0),
    "sigmoid": (0.0, 1.0),
    "relu": (0.0, math.inf),
    "identity": (-math.inf, math.inf),
}

_GROUP_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_MODULE_ACTIVATIONS: dict[type[nn.Module], str] = {
    nn.Tanh: "tanh",
    nn.ReLU: "relu",
    nn.Sigmoid: "sigmoid",
    nn.Identity: "identity",
}


#: The network kinds ``task_topology`` builds (the CLI's ``--topology``).
NETWORK_KINDS: tuple[str, ...] = ("mlp", "recurrent", "sparse")


#: The sparse network's default connection density (``Topology.sparse``, ``--density``).
DEFAULT_DENSITY = 0.1


def check_network_kind(kind: str, leak: float = 0.0, density: float = DEFAULT_DENSITY) -> None:
    """Refuse an unknown network kind, or a leak or density the kind has not.

    The one check behind ``neuron_env.parallel.task_topology``, ``neuron-env train`` and
    ``neuron-env compare`` (they re-raise it as their own config error), so each refuses with the
    same line.

    Raises:
        TopologyError: If ``kind`` is not one of ``NETWORK_KINDS``, ``leak`` is outside [0, 1) or
            non-zero on a kind other than ``"recurrent"``, or ``density`` is outside (0, 1] on
            ``"sparse"`` or not the default on another kind (the others are dense).
    """
    if kind not in NETWORK_KINDS:
        raise TopologyError(f"topology={kind!r} (--topology) is unknown; use one of {', '.join(NETWORK_KINDS)}")
    if leak != 0.0 and kind != "recurrent":
        raise TopologyError(f"leak={leak!r} (--leak) applies to --topology recurrent only; the {kind!r} network "
                            "has no leak: drop --leak or use --topology recurrent")
    if not 0.0 <= leak < 1.0:
        raise TopologyError(f"leak={leak!r} (--leak) must lie in [0, 1)")
    if kind == "sparse" and not 0.0 < density <= 1.0:
        raise TopologyError(f"density={density!r} (--density) must lie in (0, 1]")
    if density != DEFAULT_DENSITY and kind != "sparse":
        raise TopologyError(f"density={density!r} (--density) applies to --topology sparse only; the {kind!r} network "
                            "is dense: drop --density or use --topology sparse")


@dataclass(frozen=True)
class NeuronGroup:
    """A layer of neurons that share an activation, a role and a leak.

    Attributes:
        name: Group name, the prefix of its agents' ids. Letters, digits and ``_``,
            starting with a letter.
        size: Number of neurons (at least 1).
        activation: One of ``"tanh"``, ``"relu"``, ``"sigmoid"``, ``"identity"``.
        role: ``"input"`` (clamped to the encoded task observation, not an agent),
            ``"hidden"`` or ``"output"`` (decoded into the task action).
        leak: Leaky-integrator constant ``λ`` in ``[0, 1)``: the neuron's voltage becomes
            ``λ v + (1 - λ) a`` for action (drive) ``a``. ``0`` is the plain dynamics.
    """

    name: str
    size: int
    activation: str = "tanh"
    role: str = "hidden"
    leak: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _GROUP_NAME.match(self.name):
            raise TopologyError(
                f"group name {self.name!r} is invalid: use letters, digits and '_', "
                "starting with a letter (it becomes the agent-id prefix, e.g. 'h1_0')"
            )
        if not isinstance(self.size, (int, np.integer)) or isinstance(self.size, bool) or self.size < 1:
            raise TopologyError(f"group {self.name!r} has size {self.size!r}; use an integer >= 1")
        if self.activation not in ACTIVATIONS:
            raise TopologyError(
                f"group {self.name!r} has activation {self.activation!r}; choose one of {ACTIVATIONS}"
            )
        if self.role not in ROLES:
            raise TopologyError(f"group {self.name!r} has role {self.role!r}; choose one of {ROLES}")
        if not (0.0 <= float(self.leak) < 1.0):
            raise TopologyError(f"group {self.name!r} has leak {self.leak!r}; use a value in [0, 1)")
        if self.role == "input" and (self.activation != "identity" or self.leak != 0.0):
            raise TopologyError(
                f"input group {self.name!r} must have activation 'identity' and leak 0: "
                "input neurons are clamped to the encoded observation"
            )


@dataclass(frozen=True, eq=False)
class Projection:
    """A dense block of connections from ``source`` to ``target``.

    Attributes:
        source: Name of the presynaptic group.
        target: Name of the postsynaptic group (not an input group).
        mask: Optional fixed 0/1 array of shape ``(target.size, source.size)``; a 0 removes
            the connection (its weight is held at zero). ``None`` means fully connected.
    """

    source: str
    target: str
    mask: np.ndarray | None = field(default=None, repr=False)


class Topology:
    """A policy network's wiring: groups of neurons and projections between them.

    Args:
        groups: The neuron groups, in the order their neurons appear in the voltage vector.
            Exactly one has role ``"input"`` and one role ``"output"``.
        projections: Connections between groups. Input groups receive none; each
            (source, target) pair appears at most once.

    Raises:
        TopologyError: If a name, size, role, mask or connection is invalid; the message
            names the bad value and the fix.
    """

    def __init__(self, groups: Sequence[NeuronGroup], projections: Sequence[Projection]) -> None:
        self.groups: tuple[NeuronGroup, ...] = tuple(groups)
        self.projections: tuple[Projection, ...] = tuple(self._checked_projections(projections))
        self._validate_roles()

        offsets = np.cumsum([0] + [g.size for g in self.groups])
        self.num_neurons: int = int(offsets[-1])
        self.group: dict[str, NeuronGroup] = {g.name: g for g in self.groups}
        self.group_slice: dict[str, slice] = {
            g.name: slice(int(offsets[i]), int(offsets[i + 1])) for i, g in enumerate(self.groups)
        }
        self.input_group: NeuronGroup = next(g for g in self.groups if g.role == "input")
        self.output_group: NeuronGroup = next(g for g in self.groups if g.role == "output")
        #: Groups whose neurons are agents (every non-input group), in voltage order.
        self.agent_groups: tuple[NeuronGroup, ...] = tuple(g for g in self.groups if g.role != "input")
        self.agent_ids: tuple[str, ...] = tuple(
            f"{g.name}_{i}" for g in self.agent_groups for i in range(g.size)
        )
        self.num_agents: int = len(self.agent_ids)
        #: Voltage index of each agent, in agent order.
        self.agent_neuron_index: np.ndarray = np.concatenate(
            [np.arange(self.group_slice[g.name].start, self.group_slice[g.name].stop) for g in self.agent_groups]
        )
        index = self.agent_neuron_index
        contiguous = bool(len(index)) and np.array_equal(index, np.arange(index[0], index[0] + len(index)))
        #: Where the agents sit in the voltage vector: a slice when contiguous (the input group
        #: first, as every builder does; slicing is far cheaper than fancy indexing), else the index.
        self.agent_span: slice | np.ndarray = slice(int(index[0]), int(index[-1]) + 1) if contiguous else index
        #: Agent index range of each agent group.
        self.agent_slice: dict[str, slice] = {}
        start = 0
        for g in self.agent_groups:
            self.agent_slice[g.name] = slice(start, start + g.size)
            start += g.size
        self.incoming: dict[str, tuple[int, ...]] = {
            g.name: tuple(i for i, p in enumerate(self.projections) if p.target == g.name) for g in self.groups
        }
        #: Presynaptic voltage indices of each agent group: the neurons of the source groups
        #: of the projections into it, in projection order. Masked-out connections are still
        #: observed (they carry zero weight), so one group has one observation space.
        self.presynaptic_index: dict[str, np.ndarray] = {
            g.name: self._presynaptic(g.name) for g in self.agent_groups
        }
        self.depth: int | None = self._depth()

    # ------------------------------------------------------------------ validation
    def _checked_projections(self, projections: Sequence[Projection]) -> list[Projection]:
        names = [g.name for g in self.groups]
        if len(set(names)) != len(names):
            duplicate = next(n for n in names if names.count(n) > 1)
            raise TopologyError(f"group name {duplicate!r} is used twice; give every group a unique name")
        by_name = {g.name: g for g in self.groups}
        seen: set[tuple[str, str]] = set()
        checked = []
        for p in projections:
            for end in (p.source, p.target):
                if end not in by_name:
                    raise TopologyError(
                        f"projection {p.source!r} -> {p.target!r} names unknown group {end!r}; "
                        f"known groups: {names}"
                    )
            if by_name[p.target].role == "input":
                raise TopologyError(
                    f"projection {p.source!r} -> {p.target!r} targets input group {p.target!r}; "
                    "input neurons are clamped to the observation and receive no connections"
                )
            if (p.source, p.target) in seen:
                raise TopologyError(
                    f"projection {p.source!r} -> {p.target!r} appears twice; merge them into one block"
                )
            seen.add((p.source, p.target))
            mask = p.mask
            if mask is not None:
                mask = np.asarray(mask)
                shape = (by_name[p.target].size, by_name[p.source].size)
                if mask.shape != shape:
                    raise TopologyError(
                        f"mask of projection {p.source!r} -> {p.target!r} has shape {mask.shape}; "
                        f"expected (target size, source size) = {shape}"
                    )
                if not np.isin(mask, (0, 1)).all():
                    raise TopologyError(f"mask of projection {p.source!r} -> {p.target!r} must hold only 0 and 1")
                mask = mask.astype(np.float32)
                mask.setflags(write=False)
            checked.append(Projection(p.source, p.target, mask))
        return checked

    def _validate_roles(self) -> None:
        for role in ("input", "output"):
            count = sum(g.role == role for g in self.groups)
            if count != 1:
                raise TopologyError(
                    f"a topology needs exactly one {role} group, found {count}; "
                    f"set role={role!r} on exactly one NeuronGroup"
                )

    def _presynaptic(self, name: str) -> np.ndarray:
        parts = [np.arange(self.group_slice[self.projections[i].source].start,
                           self.group_slice[self.projections[i].source].stop) for i in self.incoming[name]]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def _depth(self) -> int | None:
        """Ticks until the output settles after the input is clamped; ``None`` if cyclic.

        Input groups have level 0; a non-input group has level ``1 + max(levels of its
        sources)`` (1 with no sources: it settles to σ(bias) after one tick).
        """
        level: dict[str, int] = {}
        visiting: set[str] = set()

        def visit(name: str) -> int | None:
            if name in level:
                return level[name]
            if name in visiting:
                return None
            visiting.add(name)
            if self.group[name].role == "input":
                result: int | None = 0
            else:
                result = 1
                for i in self.incoming[name]:
                    source_level = visit(self.projections[i].source)
                    if source_level is None:
                        return None
                    result = max(result, source_level + 1)
            visiting.discard(name)
            level[name] = result
            return result

        levels = [visit(g.name) for g in self.groups]
        if any(lv is None for lv in levels):
            return None
        return level[self.output_group.name]

    # ------------------------------------------------------------------ properties
    @property
    def is_cyclic(self) -> bool:
        """Whether some group's activity feeds back into itself."""
        return self.depth is None

    @property
    def obs_dim(self) -> int:
        """Size of the input group (the flattened task observation)."""
        return self.input_group.size

    @property
    def act_dim(self) -> int:
        """Size of the output group (the task action)."""
        return self.output_group.size

    def group_of_agent(self, agent: str) -> NeuronGroup:
        """Return the group of an agent id such as ``"h1_3"``."""
        name, _, index = agent.rpartition("_")
        group = self.group.get(name)
        if group is None or group.role == "input" or not index.isdigit() or int(index) >= group.size:
            raise KeyError(agent)
        return group

    def summary(self) -> str:
        """A human-readable table of groups and projections."""
        lines = [f"Topology: {self.num_neurons} neurons, {self.num_agents} agents, "
                 f"depth {self.depth if self.depth is not None else 'None (cyclic)'}"]
        lines.append(f"  {'group':<10} {'role':<7} {'size':>6} {'activation':<10} {'leak':>5}  presynaptic")
        for g in self.groups:
            pre = "-" if g.role == "input" else str(len(self.presynaptic_index[g.name]))
            lines.append(f"  {g.name:<10} {g.role:<7} {g.size:>6} {g.activation:<10} {g.leak:>5.2f}  {pre}")
        for p in self.projections:
            density = "dense" if p.mask is None else f"density {float(p.mask.mean()):.2f}"
            lines.append(f"  projection {p.source} -> {p.target} ({density})")
        return "\n".join(lines)

    def __repr__(self) -> str:
        sizes = "-".join(str(g.size) for g in self.groups)
        return f"Topology({sizes}, agents={self.num_agents}, depth={self.depth})"

    # ------------------------------------------------------------------ builders
    @classmethod
    def mlp(
        cls,
        obs_dim: int,
        hidden: Sequence[int],
        act_dim: int,
        activation: str = "tanh",
        output_activation: str = "tanh",
    ) -> Topology:
        """A feed-forward network ``obs_dim - hidden[0] - ... - act_dim``.

        Groups are ``in``, ``h1`` … ``hK`` and ``out``; depth is ``len(hidden) + 1``.
        """
        sizes = [int(h) for h in hidden]
        groups = [NeuronGroup("in", obs_dim, "identity", "input")]
        groups += [NeuronGroup(f"h{i + 1}", h, activation) for i, h in enumerate(sizes)]
        groups.append(NeuronGroup("out", act_dim, output_activation, "output"))
        projections = [Projection(a.name, b.name) for a, b in zip(groups[:-1], groups[1:], strict=True)]
        return cls(groups, projections)

    @classmethod
    def for_task(
        cls,
        task: TaskSpec,
        hidden: Sequence[int] = (64, 64),
        activation: str = "tanh",
        encoder: EncoderSpec = None,
        decoder: DecoderSpec = None,
        task_kwargs: dict[str, Any] | None = None,
        output_activation: str = "tanh",
    ) -> Topology:
        """A feed-forward network (``mlp``) sized to a task, so that nobody counts dimensions.

        The input group has as many neurons as the encoder's output (``obs_dim``), the output
        group as many as the decoder's input (``act_dim``): ``Topology.for_task("CartPole-v1",
        [64, 64])`` is ``Topology.mlp(4, [64, 64], 2)`` (one output neuron per action). One copy
        of the task is made to read its spaces. See ``neuron_env.spaces`` for the encoders and
        decoders; pass the same ``encoder``/``decoder`` to the env.

        Args:
            task: Gymnasium id or callable returning an env.
            hidden: Hidden sizes.
            activation: Hidden activation.
            encoder: ``None`` (the space's default), an encoder kind, a ``torch.nn.Module`` or an
                ``ObservationEncoder`` (see ``neuron_env.spaces.make_observation_encoder``).
            decoder: ``None`` (the space's default), a decoder kind or an ``ActionDecoder``
                (see ``neuron_env.spaces.make_action_decoder``).
            task_kwargs: Keyword arguments of the task.
            output_activation: Activation of the output group.

        Raises:
            TaskError: If a space cannot be encoded/decoded (naming ``encoder=``/``decoder=``).
            TopologyError: On an unknown activation.
        """
        if output_activation not in ACTIVATION_RANGE:
            raise TopologyError(f"output_activation={output_activation!r}; choose one of {ACTIVATIONS}")
        observation_encoder, action_decoder = task_interface(
            task, ACTIVATION_RANGE[output_activation], encoder, decoder, task_kwargs)
        return cls.mlp(observation_encoder.size, hidden, action_decoder.size, activation, output_activation)

    @classmethod
    def recurrent(
        cls,
        obs_dim: int,
        hidden: int,
        act_dim: int,
        leak: float = 0.0,
        activation: str = "tanh",
        output_activation: str = "tanh",
    ) -> Topology:
        """One recurrent hidden layer ``h`` (``in -> h``, ``h -> h``, ``h -> out``) with a leak."""
        groups = [
            NeuronGroup("in", obs_dim, "identity", "input"),
            NeuronGroup("h", hidden, activation, "hidden", leak),
            NeuronGroup("out", act_dim, output_activation, "output"),
        ]
        projections = [Projection("in", "h"), Projection("h", "h"), Projection("h", "out")]
        return cls(groups, projections)

    @classmethod
    def sparse(
        cls,
        obs_dim: int,
        n_hidden: int,
        act_dim: int,
        density: float = DEFAULT_DENSITY,
        seed: int = 0,
        activation: str = "tanh",
        output_activation: str = "tanh",
        recurrent: bool = True,
    ) -> Topology:
        """A random sparse network: ``in -> h``, ``h -> h`` (if ``recurrent``), ``h -> out``.

        Each connection exists with probability ``density``; every neuron keeps at least one
        incoming connection per projection so that no neuron is cut off.
        """
        if not (0.0 < density <= 1.0):
            raise TopologyError(f"density {density!r} must lie in (0, 1]")
        rng = np.random.default_rng(seed)

        def mask(rows: int, cols: int) -> np.ndarray:
            m = (rng.random((rows, cols)) < density).astype(np.float32)
            empty = np.flatnonzero(m.sum(1) == 0)
            m[empty, rng.integers(0, cols, size=len(empty))] = 1.0
            return m

        groups = [
            NeuronGroup("in", obs_dim, "identity", "input"),
            NeuronGroup("h", n_hidden, activation),
            NeuronGroup("out", act_dim, output_activation, "output"),
        ]
        projections = [Projection("in", "h", mask(n_hidden, obs_dim))]
        if recurrent:
            projections.append(Projection("h", "h", mask(n_hidden, n_hidden)))
        projections.append(Projection("h", "out", mask(act_dim, n_hidden)))
        return cls(groups, projections)

    @classmethod
    def from_adjacency(
        cls,
        adjacency: np.ndarray | Sequence[Sequence[float]],
        n_inputs: int,
        n_outputs: int,
        activation: str = "tanh",
        output_activation: str = "tanh",
    ) -> Topology:
        """A topology from an ``N x N`` 0/1 matrix, ``adjacency[post, pre] = 1`` for ``pre -> post``.

        The first ``n_inputs`` neurons form group ``in``, the last ``n_outputs`` group ``out``
        and the rest group ``h``. Each non-empty block becomes a projection, masked unless full.
        """
        a = np.asarray(adjacency)
        n = a.shape[0] if a.ndim == 2 else -1
        if a.ndim != 2 or a.shape[0] != a.shape[1]:
            raise TopologyError(f"adjacency must be a square matrix, got shape {a.shape}")
        if n_inputs < 1 or n_outputs < 1 or n_inputs + n_outputs > n:
            raise TopologyError(
                f"n_inputs={n_inputs} and n_outputs={n_outputs} do not fit {n} neurons; "
                "both must be >= 1 and sum to at most N"
            )
        if a[:n_inputs].any():
            raise TopologyError("adjacency rows of input neurons must be zero: inputs receive no connections")
        bounds = {"in": (0, n_inputs), "h": (n_inputs, n - n_outputs), "out": (n - n_outputs, n)}
        groups = [NeuronGroup("in", n_inputs, "identity", "input")]
        if n - n_inputs - n_outputs > 0:
            groups.append(NeuronGroup("h", n - n_inputs - n_outputs, activation))
        groups.append(NeuronGroup("out", n_outputs, output_activation, "output"))
        projections = []
        for src in groups:
            for dst in groups:
                if dst.role == "input":
                    continue
                block = a[bounds[dst.name][0]:bounds[dst.name][1], bounds[src.name][0]:bounds[src.name][1]]
                if block.any():
                    projections.append(Projection(src.name, dst.name, None if block.all() else block))
        return cls(groups, projections)

    @classmethod
    def from_module(cls, module: nn.Module) -> ModuleNetwork:
        """Topology *and* weights of an ``nn.Sequential`` of ``Linear`` + activation layers.

        Returns ``ModuleNetwork(topology, weights)``: use ``.topology`` / ``.weights``, or unpack
        it (``topology, weights = Topology.from_module(actor)``).

        Works for the actor of a Stable-Baselines3 DDPG/TD3 model (``model.actor.mu``).
        Nested ``Sequential`` modules are flattened; a ``Linear`` not followed by an
        activation gets ``"identity"``; ``Flatten`` and ``Identity`` between layers are ignored.

        Raises:
            TopologyError: On a module other than Linear, Tanh, ReLU, Sigmoid, Identity, Flatten.
        """

        def flatten(m: nn.Module) -> list[nn.Module]:
            if isinstance(m, nn.Sequential):
                return [leaf for child in m for leaf in flatten(child)]
            return [m]

        layers: list[tuple[nn.Linear, str]] = []
        for m in flatten(module):
            if isinstance(m, nn.Linear):
                layers.append((m, "identity"))
            elif type(m) in _MODULE_ACTIVATIONS and not isinstance(m, nn.Identity):
                if not layers or layers[-1][1] != "identity":
                    raise TopologyError(
                        f"activation {type(m).__name__} must follow a Linear layer (one activation per layer)"
                    )
                layers[-1] = (layers[-1][0], _MODULE_ACTIVATIONS[type(m)])
            elif isinstance(m, (nn.Identity, nn.Flatten)):
                continue
            else:
                raise TopologyError(
                    f"unsupported module {type(m).__name__}; from_module takes Linear layers with "
                    "Tanh/ReLU/Sigmoid/Identity activations"
                )
        if not layers:
            raise TopologyError("module has no Linear layer; pass an nn.Sequential of Linear + activation layers")
        for (a, _), (b, _) in zip(layers[:-1], layers[1:], strict=True):
            if a.out_features != b.in_features:
                raise TopologyError(
                    f"Linear layers do not chain: out_features {a.out_features} != in_features {b.in_features}"
                )
        groups = [NeuronGroup("in", layers[0][0].in_features, "identity", "input")]
        for i, (linear, act) in enumerate(layers[:-1]):
            groups.append(NeuronGroup(f"h{i + 1}", linear.out_features, act))
        groups.append(NeuronGroup("out", layers[-1][0].out_features, layers[-1][1], "output"))
        projections = [Projection(a.name, b.name) for a, b in zip(groups[:-1], groups[1:], strict=True)]
        topology = cls(groups, projections)
        blocks = tuple(linear.weight.detach().clone().float() for linear, _ in layers)
        biases = tuple(
            linear.bias.detach().clone().float() if linear.bias is not None else torch.zeros(linear.out_features)
            for linear, _ in layers
        )
        return ModuleNetwork(topology, NetworkWeights(blocks, biases).checked(topology))


@dataclass(frozen=True)
class NetworkWeights:
    """Weights of a topology: the K blocks and biases of the dynamics ``σ(K v + b)``.

    Attributes:
        blocks: One ``[target.size, source.size]`` tensor per projection, in the topology's
            projection order. Masked entries are held at zero by ``checked``.
        biases: One ``[group.size]`` tensor per agent group, in ``topology.agent_groups`` order.
    """

    blocks: tuple[torch.Tensor, ...]
    biases: tuple[torch.Tensor, ...]

    @classmethod
    def init(cls, topology: Topology, seed: int = 0, device: str | torch.device = "cpu") -> NetworkWeights:
        """Random weights as ``nn.Linear`` draws them: uniform in ``±1/sqrt(fan_in)``."""
        generator = torch.Generator().manual_seed(seed)
        blocks = []
        for p in topology.projections:
            fan_in = len(topology.presynaptic_index[p.target])
            bound = 1.0 / math.sqrt(fan_in)
            shape = (topology.group[p.target].size, topology.group[p.source].size)
            blocks.append((torch.rand(shape, generator=generator) * 2 - 1) * bound)
        biases = []
        for g in topology.agent_groups:
            fan_in = max(1, len(topology.presynaptic_index[g.name]))
            biases.append((torch.rand(g.size, generator=generator) * 2 - 1) / math.sqrt(fan_in))
        return cls(tuple(blocks), tuple(biases)).checked(topology).to(device)

    def checked(self, topology: Topology) -> NetworkWeights:
        """Validate shapes and finiteness against ``topology``; return weights with masks applied.

        Raises:
            TopologyError: Naming the projection or group whose tensor is wrong.
        """
        if len(self.blocks) != len(topology.projections):
            raise TopologyError(
                f"weights have {len(self.blocks)} blocks but the topology has "
                f"{len(topology.projections)} projections; pass one block per projection"
            )
        if len(self.biases) != len(topology.agent_groups):
            raise TopologyError(
                f"weights have {len(self.biases)} bias vectors but the topology has "
                f"{len(topology.agent_groups)} agent groups; pass one per non-input group"
            )
        blocks = []
        for p, block in zip(topology.projections, self.blocks, strict=True):
            shape = (topology.group[p.target].size, topology.group[p.source].size)
            if tuple(block.shape) != shape:
                raise TopologyError(
                    f"weight block {p.source!r} -> {p.target!r} has shape {tuple(block.shape)}; expected {shape}"
                )
            if not torch.isfinite(block).all():
                raise TopologyError(f"weight block {p.source!r} -> {p.target!r} contains NaN or inf")
            if p.mask is not None:
                block = block * torch.tensor(p.mask, device=block.device)  # the mask array is read-only
            blocks.append(block)
        for g, bias in zip(topology.agent_groups, self.biases, strict=True):
            if tuple(bias.shape) != (g.size,):
                raise TopologyError(f"bias of group {g.name!r} has shape {tuple(bias.shape)}; expected ({g.size},)")
            if not torch.isfinite(bias).all():
                raise TopologyError(f"bias of group {g.name!r} contains NaN or inf")
        return NetworkWeights(tuple(blocks), tuple(self.biases))

    def to(self, device: str | torch.device, dtype: torch.dtype = torch.float32) -> NetworkWeights:
        """Copy to a device (and dtype)."""
        return NetworkWeights(
            tuple(b.to(device=device, dtype=dtype) for b in self.blocks),
            tuple(b.to(device=device, dtype=dtype) for b in self.biases),
        )


class ModuleNetwork(NamedTuple):
    """What ``Topology.from_module`` returns: the network's topology and its weights (unpacks as a pair)."""

    topology: Topology
    """The groups and projections of the module."""
    weights: NetworkWeights
    """The module's weights and biases, one block per projection."""
