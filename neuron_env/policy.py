"""``NetworkPolicy``: every neuron acting by ``μ^n(v) = σ(K^n v + b^n)``.

These are the "neuromorphically local" agents of the draft: each neuron looks only at what
it observes and applies its own row of weights. Acting through the environment, they
reproduce the plain network ``μ`` (the equivalence the test suite checks step for step).

Two entry points:

* ``NetworkPolicy.act`` for the PettingZoo API: ``{agent: observation}`` in,
  ``{agent: action}`` out (one batched product per group, dicts only at the edge);
* calling the policy on a ``[E, N]`` voltage tensor for ``NeuronVecEnv``,
  returning ``[E, num_agents]`` actions.
"""

from __future__ import annotations

from operator import itemgetter

import numpy as np
import torch

from neuron_env.dynamics import activate, network_actions
from neuron_env.errors import InvalidActionError
from neuron_env.topology import NetworkWeights, Topology


class NetworkPolicy:
    """The neuromorphically local agents of a topology with given weights.

    Args:
        topology: The network.
        weights: Its weights; ``None`` draws ``NetworkWeights.init(topology, seed)``.
        observe: The observation mode of the env the dict API reads from:
            ``"presynaptic"`` (default) or ``"all"``.
        device: Torch device for the tensor API.
        seed: Seed of the random weights when ``weights`` is ``None``.
    """

    def __init__(
        self,
        topology: Topology,
        weights: NetworkWeights | None = None,
        observe: str = "presynaptic",
        device: str | torch.device = "cpu",
        seed: int = 0,
    ) -> None:
        if observe not in ("presynaptic", "all"):
            raise ValueError(f"observe={observe!r}; use 'presynaptic' or 'all'")
        self.topology = topology
        self.observe = observe
        self.device = torch.device(device)
        weights = weights if weights is not None else NetworkWeights.init(topology, seed)
        self.weights = weights.checked(topology).to(self.device)
        # Each group's weights as one row per neuron over what that neuron observes.
        self._rows: dict[str, np.ndarray] = {}
        self._bias: dict[str, np.ndarray] = {}
        for index, group in enumerate(topology.agent_groups):
            width = len(topology.presynaptic_index[group.name]) if observe == "presynaptic" else topology.num_neurons
            rows = np.zeros((group.size, width), dtype=np.float32)
            column = 0
            for i in topology.incoming[group.name]:
                block = self.weights.blocks[i].cpu().numpy()
                if observe == "presynaptic":
                    rows[:, column:column + block.shape[1]] = block
                    column += block.shape[1]
                else:
                    rows[:, topology.group_slice[topology.projections[i].source]] = block
            self._rows[group.name] = rows
            self._bias[group.name] = self.weights.biases[index].cpu().numpy()
        self._ids = {g.name: topology.agent_ids[topology.agent_slice[g.name]] for g in topology.agent_groups}

    def __call__(self, voltages: torch.Tensor) -> torch.Tensor:
        """``[E, N]`` voltages -> ``[E, num_agents]`` actions ``σ(K v + b)``, in agent order."""
        return network_actions(voltages, self.topology, self.weights)

    def act(self, observations: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Actions for every agent in ``observations`` (the PettingZoo dict API).

        Args:
            observations: ``{agent_id: observation}`` as returned by the parallel env.

        Returns:
            ``{agent_id: np.ndarray of shape (1,)}`` for the same agents.

        Raises:
            InvalidActionError: If an observation key is not an agent of the topology.
        """
        unknown = observations.keys() - set(self.topology.agent_ids)
        if unknown:
            raise InvalidActionError(
                f"observations for unknown agents {sorted(unknown)[:5]}; expected ids of the form "
                f"'<group>_<i>' from topology.agent_ids"
            )
        actions: dict[str, np.ndarray] = {}
        for group in self.topology.agent_groups:
            ids = self._ids[group.name]
            present = np.fromiter((a in observations for a in ids), dtype=bool, count=len(ids))
            if not present.any():
                continue
            chosen = ids if present.all() else tuple(np.asarray(ids)[present])
            rows = self._rows[group.name] if present.all() else self._rows[group.name][present]
            bias = self._bias[group.name] if present.all() else self._bias[group.name][present]
            obs = np.stack(itemgetter(*chosen)(observations)) if len(chosen) > 1 else observations[chosen[0]][None]
            potential = torch.as_tensor(np.einsum("ij,ij->i", rows, obs.astype(np.float32)) + bias)
            out = activate(potential, group.activation).numpy().astype(np.float32).reshape(-1, 1)
            actions.update(zip(chosen, out, strict=True))
        return actions
