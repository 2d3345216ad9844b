"""``neuron_env.agents``: GPU-batched per-neuron local learners.

Every non-input neuron of a network learns with its own critic and a local actor update;
all neurons are updated at once as a few tensor operations per layer, with no error
backpropagation through the network.

* ``LocalDDPG``: the learner (critic kinds ``linear``, ``compatible``, ``bilinear``,
  ``mlp``; ``per_tick`` or ``settled`` transitions; device replay buffer; Gaussian or OU noise).
* ``TrainConfig`` and ``train``: the trainer behind ``neuron-env train`` (progress bar,
  TensorBoard, evaluation, ``metrics.csv`` / ``summary.json``, atomic checkpoints, resume).
* ``enjoy``: run a trained checkpoint deterministically (``neuron-env enjoy``).
"""

from neuron_env.agents.critics import CRITIC_KINDS, GroupBatch
from neuron_env.agents.enjoy import enjoy
from neuron_env.agents.errors import CheckpointError, DivergenceError, LearnerConfigError
from neuron_env.agents.local_ddpg import CRITIC_CONTEXTS, GRANULARITIES, LocalDDPG, group_levels
from neuron_env.agents.noise import GaussianNoise, OrnsteinUhlenbeckNoise
from neuron_env.agents.replay import Batch, ReplayBuffer
from neuron_env.agents.train import TrainConfig, Trainer, evaluate, load_checkpoint, train

__all__ = [
    "CRITIC_CONTEXTS",
    "CRITIC_KINDS",
    "GRANULARITIES",
    "Batch",
    "CheckpointError",
    "DivergenceError",
    "GaussianNoise",
    "GroupBatch",
    "LearnerConfigError",
    "LocalDDPG",
    "OrnsteinUhlenbeckNoise",
    "ReplayBuffer",
    "TrainConfig",
    "Trainer",
    "enjoy",
    "evaluate",
    "group_levels",
    "load_checkpoint",
    "train",
]
