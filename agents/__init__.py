"""``neuron_env.agents``: GPU-batched per-neuron local learners (in development).

The local DDPG learners (one local critic and actor update per neuron, all neurons updated
at once as tensor operations, no error backpropagation) land here; see the project's issue
tracker. Nothing is exported yet.
"""
