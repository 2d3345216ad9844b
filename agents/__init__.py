"""``neuron_env.agents``: GPU-batched per-neuron local learners.

Every non-input neuron of a network learns with its own critic and a local actor update;
all neurons are updated at once as a few tensor operations per layer, with no error
backpropagation through the network.

* ``Learner``: the interface every learner implements; ``registry.make_learner(name, ...)``
  builds one by name (``LEARNERS``).
* ``LocalDDPG`` (``ddpg``): per-neuron DDPG (critic kinds ``linear``, ``compatible``,
  ``bilinear``, ``mlp``; ``per_tick`` or ``settled`` transitions; device replay buffer; Gaussian
  or OU noise).
* ``FeedbackDDPG`` (``feedback``, the trainer's default): DDPG output critic, hidden neurons learn from their
  postsynaptic neighbours' slopes through feedback weights (feedback alignment).
* ``CoagentLearner`` (``coagent``) and ``WeightMaxLearner`` (``weight-max``): REINFORCE units
  with per-neuron baselines and eligibility traces; Weight Maximization's hidden reward.
* ``ESLearner`` (``es``): evolution strategies (ARS) from shared-seed perturbations.
* ``TrainConfig`` and ``train``: the trainer behind ``neuron-env train`` (progress bar,
  TensorBoard, evaluation, ``metrics.csv`` / ``summary.json``, atomic checkpoints, resume).
* ``enjoy``: run a trained checkpoint deterministically (``neuron-env enjoy``).
"""

from neuron_env.agents.coagent import CoagentConfig, CoagentLearner, WeightMaxConfig, WeightMaxLearner
from neuron_env.agents.critics import CRITIC_KINDS, GroupBatch
from neuron_env.agents.enjoy import enjoy
from neuron_env.agents.errors import CheckpointError, DivergenceError, LearnerConfigError
from neuron_env.agents.es import ESConfig, ESLearner
from neuron_env.agents.feedback import FeedbackConfig, FeedbackDDPG
from neuron_env.agents.learner import Learner, LearnerConfig
from neuron_env.agents.local_ddpg import CRITIC_CONTEXTS, GRANULARITIES, LocalDDPG, LocalDDPGConfig, group_levels
from neuron_env.agents.noise import GaussianNoise, OrnsteinUhlenbeckNoise
from neuron_env.agents.registry import LEARNERS, make_learner
from neuron_env.agents.replay import Batch, ReplayBuffer
from neuron_env.agents.train import TrainConfig, Trainer, evaluate, load_checkpoint, train

__all__ = [
    "CRITIC_CONTEXTS",
    "CRITIC_KINDS",
    "GRANULARITIES",
    "LEARNERS",
    "Batch",
    "CheckpointError",
    "CoagentConfig",
    "CoagentLearner",
    "DivergenceError",
    "ESConfig",
    "ESLearner",
    "FeedbackConfig",
    "FeedbackDDPG",
    "GaussianNoise",
    "GroupBatch",
    "Learner",
    "LearnerConfig",
    "LearnerConfigError",
    "LocalDDPG",
    "LocalDDPGConfig",
    "OrnsteinUhlenbeckNoise",
    "ReplayBuffer",
    "TrainConfig",
    "WeightMaxConfig",
    "WeightMaxLearner",
    "Trainer",
    "enjoy",
    "evaluate",
    "group_levels",
    "load_checkpoint",
    "make_learner",
    "train",
]
