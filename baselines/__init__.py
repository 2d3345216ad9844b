"""``neuron_env.baselines``: the SB3 DDPG baseline and the draft's experiments.

* ``neuron_env.baselines.sb3_ddpg``: Stable-Baselines3 DDPG/TD3 with the local run's network,
  explicit noise and the rl-zoo's hyperparameters, and the entry point of every baseline
  (``neuron-env baseline --algo ddpg|td3|dqn|ppo``: ``run_baseline``, ``train_sb3``).
* ``neuron_env.baselines.sb3_discrete``: SB3 DQN and PPO, the baselines of Discrete-action tasks.
* ``neuron_env.baselines.sb3_common``: ``BaselineConfig`` and what every SB3 baseline shares
  (evaluation, logging, run files); ``neuron_env.baselines.action_spaces``: which algorithm acts
  on which action space, and ``compare``'s reference per task.
* ``neuron_env.baselines.outputs``: the run files every method writes (``metrics.csv``,
  ``summary.json``, TensorBoard scalars), so runs of different methods compare line by line.
* ``neuron_env.baselines.compare`` and ``neuron_env.baselines.normalize``: ``neuron-env compare``,
  tasks × methods × seeds in a process pool (or on Ray), resumable, with normalized scores and curves.
* ``neuron_env.baselines.experiments``: the draft's experiments (``neuron-env experiment NAME``):
  E1 ``subcritic-correlation``, E2 ``gradient-agreement``, E3 ``throughput``, E4 ``score-table``.
* ``neuron_env.baselines.cli``: ``add_baseline_parser``, ``add_compare_parser`` and
  ``add_experiment_parser``, which register those subcommands on the ``neuron-env`` command line.

Stable-Baselines3 and matplotlib are optional dependencies (``pip install 'neuron-env[baselines]'``);
they are imported only when a baseline or an experiment runs.
"""

from neuron_env.baselines.errors import BaselineConfigError, MissingDependencyError
from neuron_env.baselines.outputs import METRICS_COLUMNS, SUMMARY_KEYS, MetricsWriter, atomic_write_json
from neuron_env.baselines.sb3_ddpg import (
    ALGOS,
    ZOO_HYPERPARAMS,
    BaselineConfig,
    resolve_hyperparameters,
    run_baseline,
    train_sb3,
)
from neuron_env.baselines.sb3_discrete import DQN_ZOO_HYPERPARAMS, PPO_ZOO_HYPERPARAMS

__all__ = [
    "ALGOS",
    "DQN_ZOO_HYPERPARAMS",
    "METRICS_COLUMNS",
    "PPO_ZOO_HYPERPARAMS",
    "SUMMARY_KEYS",
    "ZOO_HYPERPARAMS",
    "BaselineConfig",
    "BaselineConfigError",
    "MetricsWriter",
    "MissingDependencyError",
    "atomic_write_json",
    "resolve_hyperparameters",
    "run_baseline",
    "train_sb3",
]
