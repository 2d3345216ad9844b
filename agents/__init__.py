"""``neuron_env.agents``: GPU-batched per-neuron local learners.

Every non-input neuron of a network learns with its own critic and a local actor update;
all neurons are updated at once as a few tensor operations per layer, with no error
backpropagation through the network.

* ``Learner``: the interface every learner implements; ``registry.make_learner(name, ...)``
  builds one by name (``LEARNERS``). ``capabilities``: the network kinds and clocks each learner
  declares (``topologies``, ``clocks``) and the one check that refuses the rest.
* ``LocalDDPG`` (``ddpg``): per-neuron DDPG (critic kinds ``linear``, ``compatible``,
  ``bilinear``, ``mlp``; ``per_tick`` or ``settled`` transitions; device replay buffer; Gaussian
  or OU noise).
* ``FeedbackDDPG`` (``feedback``, the trainer's default): DDPG output critic, hidden neurons learn from their
  postsynaptic neighbours' slopes through feedback weights (feedback alignment).
* ``CoagentLearner`` (``coagent``) and ``WeightMaxLearner`` (``weight-max``): REINFORCE units
  with per-neuron baselines and eligibility traces; Weight Maximization's hidden reward.
* ``ESLearner`` (``es``): evolution strategies (ARS) from shared-seed perturbations.
* The shared core, used by every rule and imported by none of them from another rule:
  ``network`` (``NetworkActor``, group layouts and levels), ``off_policy`` (``OffPolicyNetwork``:
  replay, noise, targets, critics), ``critics`` (critic kinds), ``optim`` (actor steps, Adam,
  flat buffers), ``tensors`` (``GroupBatch``, cached constants).
* ``TrainConfig`` and ``train``: the trainer behind ``neuron-env train`` (progress bar,
  TensorBoard, evaluation, ``metrics.csv`` / ``summary.json``, atomic checkpoints, resume).
* ``enjoy``: run a trained checkpoint deterministically (``neuron-env enjoy``).
"""

from neuron_env.agents.coagent import CoagentConfig, CoagentLearner, WeightMaxConfig, WeightMaxLearner
from neuron_env.agents.critics import CRITIC_KINDS
from neuron_env.agents.enjoy import enjoy
from neuron_env.agents.errors import CheckpointError, DivergenceError, LearnerConfigError
from neuron_env.agents.es import ESConfig, ESLearner
from neuron_env.agents.feedback import FeedbackConfig, FeedbackDDPG
from neuron_env.agents.learner import Learner, LearnerConfig
from neuron_env.agents.local_ddpg import LocalDDPG, LocalDDPGConfig
from neuron_env.agents.network import CRITIC_CONTEXTS, GRANULARITIES, NetworkActor, group_levels
from neuron_env.agents.noise import GaussianNoise, OrnsteinUhlenbeckNoise
from neuron_env.agents.off_policy import OffPolicyConfig, OffPolicyNetwork
from neuron_env.agents.registry import LEARNERS, make_learner
from neuron_env.agents.replay import Batch, ReplayBuffer
from neuron_env.agents.tensors import GroupBatch
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
    "NetworkActor",
    "OffPolicyConfig",
    "OffPolicyNetwork",
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
