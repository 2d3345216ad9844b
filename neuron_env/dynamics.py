"""The network's dynamics as pure tensor functions.

Everything here is a function of tensors, batched over a leading environment axis ``E``,
on whatever device the tensors live: no hidden state, no global random number generator.

One tick of the network's clock maps voltages ``v`` (``[E, N]``) to

    v' = λ ⊙ v + (1 − λ) ⊙ σ(K v + b)      on every non-input neuron,
    v' = ε(s)                               on the input neurons,

where ``λ`` is the group's leak (0 by default, giving the draft's ``D(v, v_in) = σ(K v) + v_in``).
Under the asynchronous clock each non-input neuron fires on a tick with probability ``p``
(``firing_mask``, a counter-based generator); a neuron that does not fire keeps ``v`` (a leaky
one decays to ``λ v``), ``hold_silent``.
In the multi-agent view, ``σ(K^n v + b^n)`` is replaced by the action of agent ``n``
(``apply_actions``); ``network_actions`` is the action every neuron takes when it
acts "neuromorphically locally", so that the two compose to the plain network.

The encoder ``ε`` maps a task observation to input voltages, and the decoder ``δ`` output
voltages to the task action; ``neuron_env.spaces`` holds one of each per Gymnasium space (its
module doc has the table). For a 1-D ``Box`` observation the encoder is the identity by default,
or ``"affine"``, which maps each finite observation bound pair ``[low, high]`` onto ``[-1, 1]``
(unbounded dimensions pass unchanged). For a ``Box`` action the decoder is an affine map from the
output activation's range onto the action bounds
(``low + (y − y_min) / (y_max − y_min) · (high − low)``, as Stable-Baselines3's
``unscale_action`` does for tanh), used where both ranges are finite; otherwise the
identity. The result is then clipped to the action bounds. ``make_encoder`` and
``make_decoder`` build these two maps (``AffineMap``).
"""

from __future__ import annotations

import numpy as np
import torch

from neuron_env.spaces import AffineMap, affine_decoder_map, affine_encoder_map
from neuron_env.topology import ACTIVATION_RANGE, NetworkWeights, Topology

__all__ = [
    "AffineMap",
    "activate",
    "apply_actions",
    "apply_actions_numpy",
    "clock_keys",
    "firing_mask",
    "group_potential",
    "hold_silent",
    "hold_silent_numpy",
    "make_decoder",
    "make_encoder",
    "network_actions",
    "voltage_bounds",
]


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


# ---------------------------------------------------------------------------------- asynchronous clock
#: splitmix64's increment (the golden ratio in 64 bits): position ``n`` of stream ``key`` is ``mix64(key + n·γ)``.
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
# Added to the reset seed for the clock's keys: its draws stay independent of whatever else the seed seeds.
_CLOCK_STREAM = np.uint64(0xC10C)


def _mix64(z: np.ndarray) -> np.ndarray:
    """splitmix64's output function on a uint64 array (multiplications wrap modulo 2^64, as intended)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def clock_keys(seed: int, num_envs: int) -> np.ndarray:
    """The asynchronous clock's stream key of every task copy: ``[E]`` uint64, copy ``i`` from ``seed + i``.

    As the task copies' own seeds, copy ``i`` of ``E`` copies seeded ``s`` fires exactly as a
    single copy seeded ``s + i``.
    """
    copies = np.uint64(int(seed) % 2**64) + np.arange(num_envs, dtype=np.uint64)
    return _mix64(copies * _GOLDEN + _CLOCK_STREAM)


def firing_mask(keys: np.ndarray, tick: int, num_agents: int, firing_rate: float) -> np.ndarray:
    """Which agents fire on a tick of the asynchronous clock: ``[E, num_agents]`` bool.

    A pure function of its arguments (a counter-based generator, splitmix64): agent ``a`` of copy
    ``i`` fires on tick ``τ`` (counted from the last seeded reset, from 0) when the ``(τ ·
    num_agents + a)``-th uniform number of copy ``i``'s stream is below ``firing_rate``. Every
    uniform is ``< 1``, so ``firing_rate=1`` fires every agent on every tick. Computed in numpy,
    so that every device sees the same draws.

    Args:
        keys: ``[E]`` stream keys (``clock_keys``).
        tick: Ticks since the keys were set.
        num_agents: Agents per copy.
        firing_rate: Probability ``p`` that an agent fires on a tick.
    """
    positions = np.uint64(tick * num_agents + 1) + np.arange(num_agents, dtype=np.uint64)
    bits = _mix64(keys[:, None] + positions[None, :] * _GOLDEN)
    return (bits >> np.uint64(11)).astype(np.float64) * 2.0**-53 < firing_rate


def hold_silent(new: torch.Tensor, voltages: torch.Tensor, agent_span: slice | torch.Tensor,
                fired: torch.Tensor, hold: torch.Tensor) -> torch.Tensor:
    """Undo the action of every agent that did not fire: it holds its voltage (leaky: ``λ v``).

    Args:
        new: ``[E, N]`` voltages after every agent's action (``apply_actions``); written in place.
        voltages: ``[E, N]`` voltages before the tick.
        agent_span: The agents' voltage positions (as ``apply_actions``).
        fired: ``[E, num_agents]`` bool, which agents fired.
        hold: ``[num_agents]`` factor of a silent agent's voltage: 1 (holds), or its leak ``λ``.

    Returns:
        ``new``.
    """
    new[:, agent_span] = torch.where(fired, new[:, agent_span], hold * voltages[:, agent_span])
    return new


def hold_silent_numpy(new: np.ndarray, voltages: np.ndarray, agent_span: slice | np.ndarray,
                      fired: np.ndarray, hold: np.ndarray) -> np.ndarray:
    """``hold_silent`` on numpy arrays (the CPU tick): the same result."""
    new[:, agent_span] = np.where(fired, new[:, agent_span], hold * voltages[:, agent_span])
    return new


def make_encoder(low: np.ndarray, high: np.ndarray, kind: str) -> AffineMap:
    """The encoder ε for a 1-D observation Box with bounds ``low``/``high``.

    ``"identity"`` passes observations through; ``"affine"`` maps finite ``[low, high]`` onto
    ``[-1, 1]`` per dimension. Neither clips (an observation outside its declared bounds
    passes through unchanged, as the task produced it). The encoders of every other space,
    and of Boxes of any shape, are in ``neuron_env.spaces`` (``make_observation_encoder``).
    """
    return affine_encoder_map(low, high, kind)


def make_decoder(activation: str, low: np.ndarray, high: np.ndarray) -> AffineMap:
    """The decoder δ from output voltages to task actions in ``[low, high]`` (see module doc).

    The decoders of every other action space are in ``neuron_env.spaces`` (``make_action_decoder``).
    """
    return affine_decoder_map(ACTIVATION_RANGE[activation], low, high)


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
