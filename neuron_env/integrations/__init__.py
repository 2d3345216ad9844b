"""Third-party MARL integrations.

Each submodule adapts neuron-env to one library and imports that library itself, so importing
``integrations`` never requires an optional dependency:

* ``integrations.torchrl``: ``integrations.torchrl.NeuronTorchRLEnv``,
  a native, batched TorchRL ``EnvBase`` with one agent group per layer (needs ``torchrl``).
* ``integrations.benchmarl``: ``neuron_task`` (a BenchMARL task built on ``NeuronTorchRLEnv``),
  ``recommended_settings`` (BenchMARL's settings converted to the network's clock) and
  ``make_experiment``. Its settings arithmetic needs nothing extra; the task and the experiment
  need BenchMARL, in a venv of its own (``pip install -e ".[benchmarl]"``; ``make test-marl``
  builds ``.venv-marl``).

TorchRL's generic ``PettingZooWrapper`` and SuperSuit + Stable-Baselines3 work on
``neuron_v0.parallel_env`` directly; ``examples/torchrl_pettingzoo_wrapper.py`` and
``examples/supersuit_sb3.py`` show how.

Install the optional dependencies with ``pip install "neuron-env[integrations]"`` (BenchMARL:
the ``benchmarl`` extra, whose torchrl 0.11 conflicts with this one's 0.14).
"""

from __future__ import annotations

from typing import Any

__all__ = ["NeuronTorchRLEnv"]


def __getattr__(name: str) -> Any:
    """Import ``NeuronTorchRLEnv`` (and with it ``torchrl``) on first use."""
    if name == "NeuronTorchRLEnv":
        from neuron_env.integrations.torchrl import NeuronTorchRLEnv

        return NeuronTorchRLEnv
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
