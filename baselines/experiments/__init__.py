"""The draft's experiments, each a module with a config dataclass and a ``run_…`` function.

* ``subcritic_correlation`` (E1, ``subcritic-correlation``): per-neuron sub-critics on a DDPG
  actor against the global critic.
* ``gradient_agreement`` (E2, ``gradient-agreement``): local policy gradients against the rows of
  the true ``∇_K Q^μ``.
* ``throughput`` (E3, ``throughput``): update throughput, local against SB3 DDPG (runs the
  benchmark in ``update_benchmark``, which ``benchmarks/update_throughput.py`` also calls).
* ``score_table`` (E4, ``score-table``): the DDPG paper's Table 1 layout on Gymnasium's rows.
"""

from neuron_env.baselines.experiments.subcritic_correlation import SubcriticConfig, run_subcritic_correlation

__all__ = ["SubcriticConfig", "run_subcritic_correlation"]
