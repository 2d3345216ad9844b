"""The seed's experiments, each a module with a config dataclass and a ``run_…`` function.

* :mod:`~neuron_env.baselines.experiments.subcritic_correlation` (E1, ``subcritic-correlation``):
  per-neuron sub-critics on a DDPG actor against the global critic.
"""

from neuron_env.baselines.experiments.subcritic_correlation import SubcriticConfig, run_subcritic_correlation

__all__ = ["SubcriticConfig", "run_subcritic_correlation"]
