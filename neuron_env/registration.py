"""Registration in PettingZoo's and Gymnasium's registries (run on ``import neuron_env``).

* ``pettingzoo.make("parallel", "neuron_env/Neuron-v0", task=..., topology=...)`` and
  ``pettingzoo.make("aec", ...)``, where the installed PettingZoo has a registry (1.27+);
* ``gymnasium.make("neuron_env/SubEnv-v0", task=..., neuron=...)``;
* the rl-zoo's velocity-masked tasks, ``gymnasium.make("CartPoleNoVel-v1")`` etc. (``neuron_env.tasks.masked``).
"""

from __future__ import annotations

import gymnasium as gym

from neuron_env.tasks.masked import register_masked_tasks

NEURON_ID = "neuron_env/Neuron-v0"
SUBENV_ID = "neuron_env/SubEnv-v0"


def register_envs() -> None:
    """Register the environments once; safe to call again."""
    try:
        from pettingzoo import register as pz_register
        from pettingzoo.env_registry.registration import aec_registry, parallel_registry
    except ImportError:  # PettingZoo < 1.27 has no registry
        pass
    else:
        if NEURON_ID not in parallel_registry:
            pz_register("parallel", NEURON_ID, entry_point="neuron_env.neuron_v0:parallel_env")
        if NEURON_ID not in aec_registry:
            pz_register("aec", NEURON_ID, entry_point="neuron_env.neuron_v0:env")
    if SUBENV_ID not in gym.registry:
        gym.register(id=SUBENV_ID, entry_point="neuron_env.subenv:SubEnv")
    register_masked_tasks()
