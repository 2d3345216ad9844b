"""The network's dynamics as pure tensor functions.

Everything here is a function of tensors, batched over a leading environment axis ``E``,
on whatever device the tensors live: no hidden state, no global random number generator.

One tick of the network's clock maps voltages ``v`` (``[E, N]``) to

    v' = λ ⊙ v + (1 − λ) ⊙ σ(K v + b)      on every non-input neuron,
    v' = ε(s)                               on the input neurons,

where ``λ`` is the group's leak (0 by default, giving the draft's ``D(v, v_in) = σ(K v) + v_in``).
In the multi-agent view, ``σ(K^n v + b^n)`` is replaced by the action of agent ``n``
(``apply_actions``); ``network_actions`` is the action every neuron takes when it
acts "neuromorphically locally", so that the two compose to the plain network.

The encoder ``ε`` maps a task observation to input voltages: identity by default, or
``"affine"``, which maps each finite observation bound pair ``[low, high]`` onto ``[-1, 1]``
(unbounded dimensions pass unchanged). The decoder ``δ`` maps output voltages to the task
action: an affine map from the output activation's range onto the action bounds
(``low + (y − y_min) / (y_max − y_min) · (high − low)``, as Stable-Baselines3's
``unscale_action`` does for tanh), used where both ranges are finite; otherwise the
identity. The result is then clipped to the action bounds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from neuron_env.topology import ACTIVATION_RANGE, NetworkWeights, Topology


def activate(potential: torch.Tensor, activation: str) -> torch.Tensor:
    """Apply a named activation (``tanh``, ``relu``, ``sigmoid``, ``identity``)."""
    if activation == "tanh":
        return torch.tanh(potential)
    if activation == "relu":
        return torch.relu(potential)
    if activation == "sigmoid":
        return torch.sigmoid(potential)
    return potential


def group_potential(voltages: torch.Tensor, topology: Topology, weights: NetworkWeights, group: str) -> torch.Tensor:
    """Membrane potential ``K^n v + b^n`` of every neuron of ``group``: ``[E, group.size]``."""
    bias = weights.biases[topology.agent_groups.index(topology.group[group])]
    potential = bias.expand(voltages.shape[0], -1)
    for i in topology.incoming[group]:
        source = topology.group_slice[topology.projections[i].source]
        potential = potential + voltages[:, source] @ weights.blocks[i].T
    return potential


def network_actions(voltages: torch.Tensor, topology: Topology, weights: NetworkWeights) -> torch.Tensor:
    """Every agent's neuromorphically local action ``μ^n(v) = σ(K^n v + b^n)``.

    Args:
        voltages: ``[E, N]`` voltages.
        topology: The network's topology.
        weights: Its weights (masks already applied, see ``NetworkWeights.checked``).

    Returns:
        ``[E, num_agents]`` actions in agent order (one matrix product per projection).
    """
    parts = [
        activate(group_potential(voltages, topology, weights, g.name), g.activation) for g in topology.agent_groups
    ]
    return torch.cat(parts, dim=1)


def apply_actions(
    voltages: torch.Tensor, actions: torch.Tensor, agent_span: slice | torch.Tensor, leak: torch.Tensor | None
) -> torch.Tensor:
    """New voltages after every agent takes its action (input neurons unchanged).

    Args:
        voltages: ``[E, N]`` current voltages.
        actions: ``[E, num_agents]`` actions (each agent's next voltage, or its drive when leaky).
        agent_span: Voltage positions of the agents, in agent order: ``topology.agent_span``
            (a slice when contiguous) or a ``[num_agents]`` index tensor.
        leak: ``[num_agents]`` leak per agent, or ``None`` when no group leaks.

    Returns:
        ``[E, N]`` new voltages (a new tensor).
    """
    if leak is not None:
        actions = leak * voltages[:, agent_span] + (1.0 - leak) * actions
    new = voltages.clone()
    new[:, agent_span] = actions
    return new


def apply_actions_numpy(
    voltages: np.ndarray, actions: np.ndarray, agent_span: slice | np.ndarray, leak: np.ndarray | None
) -> np.ndarray:
    """``apply_actions`` on float32 numpy arrays: the same result, for the CPU fast path.

    At one or a few task copies every tensor here is small, and a torch call costs several
    times a numpy one in dispatch alone; ``NeuronVecEnv`` on CPU steps through this function
    (tested equal to ``apply_actions``).

    Args:
        voltages: ``[E, N]`` current voltages.
        actions: ``[E, num_agents]`` actions.
        agent_span: A slice or a ``[num_agents]`` index array of the agents' voltage positions.
        leak: ``[num_agents]`` leak per agent, or ``None``.

    Returns:
        ``[E, N]`` new voltages (a new array).
    """
    new = voltages.copy()
    if leak is not None:
        actions = leak * voltages[:, agent_span] + (1.0 - leak) * actions
    new[:, agent_span] = actions
    return new


@dataclass(frozen=True)
class AffineMap:
    """``y = clip(x * scale + offset, low, high)`` with per-dimension tensors."""

    scale: torch.Tensor
    offset: torch.Tensor
    low: torch.Tensor
    high: torch.Tensor

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the map to ``[..., dim]`` values."""
        if self.is_identity:
            return x
        return torch.addcmul(self.offset, x, self.scale).clamp_(self.low, self.high)

    @property
    def is_identity(self) -> bool:
        """Whether the map changes nothing (scale 1, offset 0, no finite bound)."""
        cached = self.__dict__.get("_is_identity")
        if cached is None:
            cached = bool((self.scale == 1).all() and (self.offset == 0).all()
                          and torch.isinf(self.low).all() and torch.isinf(self.high).all())
            object.__setattr__(self, "_is_identity", cached)
        return cached

    def apply_numpy(self, x: np.ndarray) -> np.ndarray:
        """The same map on a float32 numpy array (the CPU fast path; a CPU map only).

        Returns a new array, or ``x`` itself for the identity map (as ``__call__``).
        """
        if self.is_identity:
            return x
        arrays = self.__dict__.get("_numpy")
        if arrays is None:
            arrays = tuple(t.numpy() for t in (self.scale, self.offset, self.low, self.high))
            object.__setattr__(self, "_numpy", arrays)
        scale, offset, low, high = arrays
        y = x * scale
        y += offset
        # two one-sided bounds: np.clip's extra checks cost more than these at a few values
        np.minimum(y, high, out=y)
        np.maximum(y, low, out=y)
        return y

    def to(self, device: str | torch.device) -> AffineMap:
        """Copy to a device."""
        return AffineMap(*(t.to(device) for t in (self.scale, self.offset, self.low, self.high)))


def make_encoder(low: np.ndarray, high: np.ndarray, kind: str) -> AffineMap:
    """The encoder ε for an observation Box with bounds ``low``/``high``.

    ``"identity"`` passes observations through; ``"affine"`` maps finite ``[low, high]`` onto
    ``[-1, 1]`` per dimension. Neither clips (an observation outside its declared bounds
    passes through unchanged, as the task produced it).
    """
    low = np.asarray(low, dtype=np.float64)
    high = np.asarray(high, dtype=np.float64)
    scale = np.ones_like(low)
    offset = np.zeros_like(low)
    if kind == "affine":
        finite = np.isfinite(low) & np.isfinite(high) & (high > low)
        scale[finite] = 2.0 / (high[finite] - low[finite])
        offset[finite] = -1.0 - low[finite] * scale[finite]
    elif kind != "identity":
        raise ValueError(f"encoder {kind!r} is unknown; use 'identity' or 'affine'")
    inf = np.full_like(low, np.inf)
    return AffineMap(*(torch.as_tensor(a, dtype=torch.float32) for a in (scale, offset, -inf, inf)))


def make_decoder(activation: str, low: np.ndarray, high: np.ndarray) -> AffineMap:
    """The decoder δ from output voltages to task actions in ``[low, high]`` (see module doc)."""
    low = np.asarray(low, dtype=np.float64)
    high = np.asarray(high, dtype=np.float64)
    y_min, y_max = ACTIVATION_RANGE[activation]
    scale = np.ones_like(low)
    offset = np.zeros_like(low)
    finite = np.isfinite(low) & np.isfinite(high) & np.isfinite(y_min) & np.isfinite(y_max)
    scale[finite] = (high[finite] - low[finite]) / (y_max - y_min)
    offset[finite] = low[finite] - y_min * scale[finite]
    return AffineMap(*(torch.as_tensor(a, dtype=torch.float32) for a in (scale, offset, low, high)))


def voltage_bounds(topology: Topology, obs_low: np.ndarray, obs_high: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bound of every neuron's voltage: ``([N], [N])`` float32 arrays.

    Input neurons take the encoded observation bounds; other neurons their activation's
    range (a leak keeps voltages inside it, since voltages start at 0).
    """
    low = np.empty(topology.num_neurons, dtype=np.float32)
    high = np.empty(topology.num_neurons, dtype=np.float32)
    for g in topology.groups:
        s = topology.group_slice[g.name]
        if g.role == "input":
            low[s], high[s] = obs_low, obs_high
        else:
            low[s], high[s] = ACTIVATION_RANGE[g.activation]
    return low, high
