"""neuron-env: every neuron of a policy network as an agent of its own environment.

Wrap any Gymnasium task plus a network topology into a PettingZoo parallel environment whose
agents are the network's neurons, with a batched torch core for learners::

    import neuron_env
    from neuron_env import Topology, neuron_v0

    env = neuron_v0.parallel_env(task="Pendulum-v1", topology=Topology.mlp(3, [64, 64], 1))
    observations, infos = env.reset(seed=0)

    # any task: the network is sized through the task's encoder and decoder (4-64-64-2 here)
    env = neuron_v0.parallel_env(task="CartPole-v1", topology=Topology.for_task("CartPole-v1", [64, 64]))

See ``neuron_env.neuron_v0`` for the environment's user page and ``neuron_env.spaces`` for the
table of task spaces and their encoders and decoders.
"""

from neuron_env import neuron_v0  # noqa: E402  (after the classes it re-exports)
from neuron_env.dynamics import apply_actions, network_actions
from neuron_env.errors import (
    InvalidActionError,
    NeuronEnvError,
    ResetNeeded,
    TaskError,
    TopologyError,
)
from neuron_env.parallel import NeuronParallelEnv, parallel_env
from neuron_env.policy import NetworkPolicy
from neuron_env.registration import register_envs
from neuron_env.spaces import ActionDecoder, ObservationEncoder
from neuron_env.subenv import SubEnv
from neuron_env.topology import NetworkWeights, NeuronGroup, Projection, Topology
from neuron_env.vector import NeuronVecEnv, VecStep

__version__ = "0.1.0"

__all__ = [
    "ActionDecoder",
    "InvalidActionError",
    "NetworkPolicy",
    "NetworkWeights",
    "NeuronEnvError",
    "NeuronGroup",
    "NeuronParallelEnv",
    "NeuronVecEnv",
    "ObservationEncoder",
    "Projection",
    "ResetNeeded",
    "SubEnv",
    "TaskError",
    "Topology",
    "TopologyError",
    "VecStep",
    "__version__",
    "apply_actions",
    "network_actions",
    "neuron_v0",
    "parallel_env",
]

register_envs()
