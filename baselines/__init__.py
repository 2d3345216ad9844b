"""``neuron_env.baselines``: the SB3 DDPG baseline and the seed's experiments (in development).

Nothing is exported yet; see the project's issue tracker.
"""
