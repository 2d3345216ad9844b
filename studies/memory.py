"""Memory study: velocity-masked tasks, where a policy must remember, and the asynchronous clock.

Issue 24's study. On the rl-zoo's velocity-masked tasks (``CartPoleNoVel-v1``,
``PendulumNoVel-v1``, ``MountainCarContinuousNoVel-v0``: the task's velocities read 0,
``neuron_env.tasks.masked``) a feed-forward policy cannot infer the velocity; a recurrent network
can, through its voltages. Every row is a plain ``neuron-env`` command (``METHODS``):

* ``eprop``: the recurrent local learner (``--learner eprop``: per-synapse eligibility traces times
  the output critic's slope through fixed random feedback), recurrent 16-unit hidden layer with
  leak 0.5;
* ``eprop-reservoir``: its floor, the recurrent weights frozen at init (only the output learns);
* ``eprop-bptt``: its ceiling, exact credit by truncated backpropagation through time over the same
  network (a reference, not local);
* ``feedback-feedforward``: the default feed-forward learner on the masked task: the task's own
  floor (it cannot infer velocity);
* ``ddpg-recurrent``: the draft's per-neuron rule on the same recurrent network;
* ``recurrent-ppo``: sb3-contrib's RecurrentPPO with the rl-zoo's hyperparameters and network
  (``--zoo-net``, its ``VecNormalize``): the reference, scored 1 (the random policy 0).

The ``async-*`` phases run the recurrent learner under the asynchronous clock at firing rates
1, 0.5 and 0.25 on CartPoleNoVel-v1 (rate 1 is the sync clock bit for bit).

Usage (resumable: a run whose ``summary.json`` says ``completed`` is not run again)::

    python studies/memory.py --phase cartpole-novel --workers 2     # run what is missing, then report
    python studies/memory.py --phase cartpole-novel --report-only   # tables and curves from the runs there

Outputs in ``docs/results/memory/<phase>/``: ``table.md`` / ``table.json`` / ``curves.png``
(``studies/grid.py``'s report: normalized per seed, learned − floor paired, updates, wall time).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from grid import Phase, Study, main  # noqa: E402

#: The recurrent network every recurrent row trains: one recurrent hidden layer of 16 leaky neurons.
RECURRENT: tuple[str, ...] = ("--topology", "recurrent", "--hidden", "16", "--leak", "0.5")

#: Every run: ``neuron-env`` subcommand and flags after the task, budget, evaluation and seed flags.
METHODS: dict[str, tuple[str, ...]] = {
    "recurrent-ppo": ("baseline", "--algo", "recurrent-ppo", "--zoo-net"),
    "eprop": ("train", "--learner", "eprop", *RECURRENT),
    "eprop-reservoir": ("train", "--learner", "eprop", *RECURRENT, "--freeze-hidden"),
    "eprop-bptt": ("train", "--learner", "eprop", *RECURRENT, "--credit", "bptt"),
    "feedback-feedforward": ("train", "--learner", "feedback", "--hidden", "16", "16"),
    "ddpg-recurrent": ("train", "--learner", "ddpg", *RECURRENT),
    **{f"eprop-async-{rate}": ("train", "--learner", "eprop", *RECURRENT, "--clock", "async", "--firing-rate", rate)
       for rate in ("1.0", "0.5", "0.25")},
}
#: Learned method -> its floor.
FLOORS: dict[str, str] = {"eprop": "eprop-reservoir", "eprop-bptt": "eprop-reservoir"}

_MAIN_ROWS = ("recurrent-ppo", "eprop", "eprop-reservoir", "eprop-bptt", "feedback-feedforward", "ddpg-recurrent")
#: The masked tasks at the rl-zoo's RecurrentPPO budgets, five seeds, 10-episode evaluations.
PHASES: dict[str, Phase] = {
    "cartpole-novel": Phase("CartPoleNoVel-v1", 100_000, (0, 1, 2, 3, 4), hidden=None, eval_every=10_000,
                            eval_episodes=10, methods=_MAIN_ROWS, reference="recurrent-ppo"),
    "pendulum-novel": Phase("PendulumNoVel-v1", 100_000, (0, 1, 2, 3, 4), hidden=None, eval_every=10_000,
                            eval_episodes=10, methods=_MAIN_ROWS, reference="recurrent-ppo"),
    "mountaincar-novel": Phase("MountainCarContinuousNoVel-v0", 300_000, (0, 1, 2, 3, 4), hidden=None,
                               eval_every=30_000, eval_episodes=10, methods=_MAIN_ROWS, reference="recurrent-ppo"),
    "async-cartpole-novel": Phase("CartPoleNoVel-v1", 100_000, (0, 1, 2), hidden=None, eval_every=10_000,
                                  eval_episodes=10, reference="recurrent-ppo",
                                  methods=("recurrent-ppo", "eprop-async-1.0", "eprop-async-0.5", "eprop-async-0.25")),
}

STUDY = Study(name="memory", methods=METHODS, floors=FLOORS, phases=PHASES, work="runs/memory",
              out="docs/results/memory")

if __name__ == "__main__":
    raise SystemExit(main(STUDY, __doc__.split("\n\n")[0]))
