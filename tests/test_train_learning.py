"""Slow learning runs (``pytest -m slow``, minutes each): the default learners learn Pendulum-v1.

The ``feedback`` learner is the trainer's default (the credit-assignment study: in SB3 DDPG's
framework it reaches SB3 DDPG's score on Pendulum-v1 at 20 000 steps); the ``ddpg`` learner's
figures below are from before it became the alternative.

Measured at 30 000 task steps, 1 CPU thread, deterministic evaluation over 5 episodes: the
untrained 3-64-64-1 network scores about -1520 and a uniform-random policy about -1250. The
default (``mlp`` sub-critics with 2x32 ReLU units on presynaptic + task observation, settled)
reached -153 ± 115 (seed 0; -126 at 17.5k) and -205 ± 126 (seed 1; a noisy curve, -515 at
27.5k). With 2x16 units it did not: -1009 (seed 0) and -1116 (seed 1). Two seeds are a lead,
not a result: the second test records the prototype's level and is not strict.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from neuron_env.agents import TrainConfig, train

UNTRAINED_RETURN = -1520.0  # mean deterministic return of NetworkWeights.init(seed 0..2), 10 episodes each


def run_default(out: Path, learner: str = "ddpg", steps: int = 30_000) -> float:
    summary = train(TrainConfig(learner=learner, steps=steps, eval_every=0, eval_episodes=10, out=str(out),
                                progress=False, tensorboard=False))
    return float(summary["final_eval_return_mean"])


@pytest.mark.slow
def test_the_default_learner_reaches_sb3_ddpg_level(tmp_path: Path) -> None:
    # the study's seeds 0-4 at 20k: -163, -143, -143, -166, -144 (docs/results/credit-assignment)
    assert run_default(tmp_path, learner=TrainConfig().learner, steps=20_000) > -300


@pytest.mark.slow
def test_default_mlp_critic_improves_on_the_untrained_network(tmp_path: Path) -> None:
    assert run_default(tmp_path) > UNTRAINED_RETURN + 200


@pytest.mark.slow
@pytest.mark.xfail(reason="measured -153 / -205 at 30k (seeds 0, 1); curves are noisy", strict=False)
def test_default_mlp_critic_reaches_the_prototype_level(tmp_path: Path) -> None:
    assert run_default(tmp_path) > -300
