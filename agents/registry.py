"""Learners by name: what ``neuron-env train --learner NAME`` and ``compare --methods local-NAME`` build.

=============== ==================================== ================================================
name            class                                family
=============== ==================================== ================================================
``ddpg``        ``LocalDDPG``                        per-neuron DDPG with local sub-critics (the draft)
``feedback``    ``FeedbackDDPG``                     DDPG output critic, hidden slopes from postsynaptic
                                                     neighbours through feedback weights (FA)
``coagent``     ``CoagentLearner``                   per-unit REINFORCE actor-critic (coagents)
``weight-max``  ``WeightMaxLearner``                 coagents whose hidden reward is the change of
                                                     their outgoing weights' squared norm
``es``          ``ESLearner``                        evolution strategies / ARS, shared-seed noise
``eprop``       ``EpropLearner``                     recurrent, leaky networks: per-synapse eligibility
                                                     traces × random-feedback critic slopes (e-prop/RFLO)
=============== ==================================== ================================================

A learner class provides ``name``, ``config_class`` (a ``LearnerConfig`` dataclass),
``off_policy`` and ``from_config(topology, config, *, device, seed, weights, dtype)``;
see ``neuron_env.agents.learner``. Modules are imported on first use.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

import torch
from neuron_env.agents.errors import LearnerConfigError
from neuron_env.agents.learner import Learner

from neuron_env.topology import NetworkWeights, Topology

#: ``name -> "module:Class"`` of every learner, in table order.
LEARNER_PATHS: dict[str, str] = {
    "ddpg": "neuron_env.agents.local_ddpg:LocalDDPG",
    "feedback": "neuron_env.agents.feedback:FeedbackDDPG",
    "coagent": "neuron_env.agents.coagent:CoagentLearner",
    "weight-max": "neuron_env.agents.coagent:WeightMaxLearner",
    "es": "neuron_env.agents.es:ESLearner",
    "eprop": "neuron_env.agents.eprop:EpropLearner",
}
#: Every learner name.
LEARNERS: tuple[str, ...] = tuple(LEARNER_PATHS)


def learner_class(name: str) -> Any:
    """The class registered as ``name``.

    Raises:
        LearnerConfigError: If no learner has that name (the message lists them).
    """
    if name not in LEARNER_PATHS:
        raise LearnerConfigError(f"learner={name!r} is unknown; choose one of {LEARNERS}")
    module, attribute = LEARNER_PATHS[name].split(":")
    return getattr(importlib.import_module(module), attribute)


def learner_options(name: str) -> tuple[str, ...]:
    """The option names of learner ``name`` (its config's fields)."""
    return learner_class(name).config_class.field_names()


def make_learner(name: str, topology: Topology, options: Mapping[str, Any], *,
                 device: str | torch.device = "cpu", seed: int = 0, weights: NetworkWeights | None = None,
                 dtype: torch.dtype = torch.float32) -> Learner:
    """Build learner ``name`` from a mapping of options (e.g. a ``TrainConfig``'s fields).

    Options the learner does not have are ignored, and so is ``None`` (the learner's default),
    so one flat mapping serves every learner.

    Args:
        name: A name from ``LEARNERS``.
        topology: The network.
        options: Option values by name.
        device: Torch device.
        seed: Seed of weights, noise and sampling.
        weights: Initial weights (default: ``NetworkWeights.init(topology, seed)``).
        dtype: Floating dtype.

    Raises:
        LearnerConfigError: On an unknown name or an invalid option.
    """
    cls = learner_class(name)
    known = set(cls.config_class.field_names())
    config = cls.config_class(**{k: v for k, v in options.items() if k in known and v is not None})
    return cls.from_config(topology, config, device=device, seed=seed, weights=weights, dtype=dtype)
