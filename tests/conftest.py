"""Shared fixtures: small topologies and tasks that keep the fast suite fast."""

from __future__ import annotations

import pytest

from neuron_env import Topology

MUJOCO_TASK = "InvertedPendulum-v5"  # the cheapest MuJoCo task: obs 4, action 1


def has_mujoco() -> bool:
    try:
        import mujoco  # noqa: F401
    except ImportError:
        return False
    return True


requires_mujoco = pytest.mark.skipif(not has_mujoco(), reason="mujoco not installed (pip install -e '.[mujoco]')")


def small_topologies(obs_dim: int, act_dim: int) -> dict[str, Topology]:
    """An MLP, a leaky recurrent and a sparse recurrent network sized to a task."""
    return {
        "mlp": Topology.mlp(obs_dim, [5, 4], act_dim),
        "recurrent": Topology.recurrent(obs_dim, 6, act_dim, leak=0.3),
        "sparse": Topology.sparse(obs_dim, 8, act_dim, density=0.3, seed=1),
    }
