"""The MARL study's rows as plain data: which settings each BenchMARL row changes (no BenchMARL needed).

A BenchMARL row of ``studies/marl.py`` is ``<algorithm>-<settings>``: ``default`` (BenchMARL's
configs as its yaml files give them), ``recommended`` (``neuron_env.integrations.benchmarl``'s
``recommended_settings``) or a factor (``FACTORS``: ``default`` with one setting changed).
``plan_settings`` turns a row into the keyword arguments, experiment and algorithm fields and model
sizes that ``studies/marl_run.py`` hands to ``make_experiment``; the study's fast tests check it
without BenchMARL installed.

Example::

    from marl_settings import plan_settings
    from neuron_env.integrations.benchmarl import task_config

    plan = plan_settings("noise-0.1", "maddpg", task_config("Pendulum-v1", hidden=(8, 8)), 30_000)
    print(plan["description"], plan["experiment"])
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from neuron_env.integrations.benchmarl import (
    ALGORITHMS,
    BENCHMARL_FRAMES_PER_BATCH,
    BENCHMARL_GAMMA,
    BENCHMARL_LMBDA,
    BENCHMARL_N_ENVS_PER_WORKER,
    BENCHMARL_OPTIMIZER_STEPS_PER_FRAME,
    recommended_settings,
)
from neuron_env.parallel import per_tick_discount

#: On-policy algorithms (BenchMARL's ``on_policy_*`` settings and ``lmbda``); the rest are off-policy.
ON_POLICY: tuple[str, ...] = ("mappo", "ippo")
#: Algorithms whose critics are centralised (they read the global ``state`` when the task gives one).
CENTRALISED: tuple[str, ...] = ("mappo", "maddpg", "masac")
#: Off-policy algorithms (BenchMARL's ``off_policy_*`` settings).
OFF_POLICY: tuple[str, ...] = tuple(a for a in ALGORITHMS if a not in ON_POLICY)
#: SB3 DDPG's learning rate (the rl-zoo's on Pendulum-v1), against BenchMARL's 5e-5.
SB3_LEARNING_RATE = 1e-3
#: Algorithms that explore by additive Gaussian noise (``exploration_eps_init``); the others sample a policy.
ADDITIVE_NOISE: tuple[str, ...] = ("maddpg", "iddpg")
#: The main phases' settings of every algorithm.
MAIN_SETTINGS: tuple[str, ...] = ("default", "recommended")
#: The training episode of ``short-episodes``: the old example's ``max_cycles`` (rounded down to whole task steps).
SHORT_EPISODE_TICKS = 100


@dataclass(frozen=True)
class Factor:
    """One setting changed from BenchMARL's defaults (or, for ``rates-gain-id``, three): a row of the factor phase."""

    description: str
    """What the row changes, as the report says it."""
    algorithms: tuple[str, ...] = ALGORITHMS
    """The algorithms the setting exists for."""


#: The factor phase's settings, each ``default`` with one change (``plan_settings`` applies them).
FACTORS: dict[str, Factor] = {
    "gamma-per-tick": Factor("gamma = 0.99 ** (1 / delay) per tick (0.99 per task step)"),
    "lmbda-per-tick": Factor("GAE lmbda = 0.9 ** (1 / delay) per tick", ON_POLICY),
    "short-episodes": Factor(f"max_cycles = {SHORT_EPISODE_TICKS} ticks rounded down to whole task steps "
                             "(the old example's; evaluation on full episodes)"),
    "batch-half-episode": Factor("frames per batch = half an episode per env copy (10 copies); off-policy "
                                 "optimizer steps scaled to keep 1000 per 6000 frames"),
    "width-64": Factor("policy and critic MLPs 64-64 instead of 256-256"),
    "unit-gain-init": Factor("policy and critic MLP layers start with weights N(0, 1/fan_in), biases 0 "
                             "(UnitGainLinear) instead of PyTorch's uniform ±1/sqrt(fan_in)"),
    "per-neuron-policy": Factor("share_policy_params = False: every neuron its own policy MLP"),
    "agent-id": Factor("agent_id = True: each neuron's one-hot index in its layer appended to its observation "
                       "(the layer still shares one policy)"),
    "noise-0.1": Factor("initial exploration std 0.1 (PPO/SAC: scale_mapping biased_softplus_0.1; DDPG: "
                        "exploration_eps_init 0.1)"),
    "no-state": Factor("no global state: centralised critics read the groups' observations", CENTRALISED),
    "sb3-rates": Factor(f"SB3 DDPG's rates: lr {SB3_LEARNING_RATE:g} (BenchMARL's 5e-5) and one optimizer step per "
                        "task step (1000 per 6000 frames by default)", OFF_POLICY),
    "rates-gain-id": Factor("three factors at once: sb3-rates, unit-gain-init and agent-id (the candidate for the "
                            "recommended settings)", OFF_POLICY),
}
#: Rows that change several factors at once -> the factors, applied in order.
COMBINED: dict[str, tuple[str, ...]] = {"rates-gain-id": ("sb3-rates", "unit-gain-init", "agent-id")}
#: Every ``--settings`` value of ``run-one``.
SETTINGS: tuple[str, ...] = (*MAIN_SETTINGS, *FACTORS)


def marl_row(algorithm: str, settings: str) -> str:
    """The row name of a BenchMARL run: ``<algorithm>-<settings>``."""
    return f"{algorithm}-{settings}"


def parse_row(row: str) -> tuple[str, str] | None:
    """``(algorithm, settings)`` of a BenchMARL row name, ``None`` for any other row."""
    algorithm, _, settings = row.partition("-")
    return (algorithm, settings) if algorithm in ALGORITHMS and settings in SETTINGS else None


def plan_settings(settings: str, algorithm: str, base: Mapping[str, Any], task_steps: int) -> dict[str, Any]:
    """Everything a BenchMARL row sets, as plain data (no BenchMARL needed).

    Args:
        settings: ``default``, ``recommended`` or a key of ``FACTORS``.
        algorithm: One of ``ALGORITHMS``.
        base: The task's default config, ``task_config(task, hidden=...)``: its ``delay`` and ``max_cycles``.
        task_steps: The budget in task steps.

    Returns:
        ``{"settings", "description", "task", "experiment", "algorithm", "model_cells", "model_init"}``:
        ``neuron_task`` keyword arguments beyond ``hidden``, ``ExperimentConfig`` attributes,
        algorithm-config attributes (``make_experiment``'s ``experiment_overrides`` /
        ``algorithm_overrides``, over BenchMARL's own configs), the MLP sizes (``None``: BenchMARL's
        256-256) and their layers' init (``make_experiment``'s ``model_init``).

    Raises:
        ValueError: On an unknown algorithm or settings, or a factor the algorithm does not have.
    """
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm={algorithm!r} is not one of {list(ALGORITHMS)}")
    if settings not in SETTINGS:
        raise ValueError(f"settings={settings!r} is not one of {list(SETTINGS)}")
    if settings in FACTORS and algorithm not in FACTORS[settings].algorithms:
        raise ValueError(f"settings={settings!r} exists only for {list(FACTORS[settings].algorithms)}, "
                         f"not {algorithm!r}")
    delay, episode_ticks = int(base["delay"]), int(base["max_cycles"])
    plan: dict[str, Any] = {"settings": settings, "task": {}, "experiment": {}, "algorithm": {}, "model_cells": None,
                            "model_init": "pytorch"}
    if settings == "recommended":
        recommended = recommended_settings(base, max_task_steps=task_steps)
        plan["description"] = "recommended_settings(task, max_task_steps=task_steps)"
        plan["experiment"] = recommended.experiment_fields()
        if algorithm in ON_POLICY:
            plan["algorithm"]["lmbda"] = recommended.lmbda
        return plan
    plan["description"] = "BenchMARL's configs" if settings == "default" else FACTORS[settings].description
    for factor in COMBINED.get(settings, (settings,)):
        _apply_factor(factor, plan, algorithm, delay, episode_ticks)
    experiment = plan["experiment"]
    prefix = "on" if algorithm in ON_POLICY else "off"
    frames = int(experiment.get(f"{prefix}_policy_collected_frames_per_batch", BENCHMARL_FRAMES_PER_BATCH))
    experiment["max_n_frames"] = math.ceil(delay * task_steps / frames) * frames
    experiment["max_n_iters"] = None
    return plan


def _apply_factor(settings: str, plan: dict[str, Any], algorithm: str, delay: int, episode_ticks: int) -> None:
    """Write one factor's change into ``plan`` (``plan_settings``'s; ``default`` changes nothing)."""
    experiment, algorithm_fields = plan["experiment"], plan["algorithm"]
    if settings == "gamma-per-tick":
        experiment["gamma"] = per_tick_discount(BENCHMARL_GAMMA, delay)
    elif settings == "lmbda-per-tick":
        algorithm_fields["lmbda"] = BENCHMARL_LMBDA ** (1.0 / delay)
    elif settings == "short-episodes":
        plan["task"]["max_cycles"] = delay * max(1, SHORT_EPISODE_TICKS // delay)
    elif settings == "batch-half-episode":
        frames = BENCHMARL_N_ENVS_PER_WORKER * max(1, episode_ticks // 2)
        experiment.update(on_policy_collected_frames_per_batch=frames, off_policy_collected_frames_per_batch=frames,
                          off_policy_n_optimizer_steps=max(1, round(frames * BENCHMARL_OPTIMIZER_STEPS_PER_FRAME)))
    elif settings == "width-64":
        plan["model_cells"] = [64, 64]
    elif settings == "unit-gain-init":
        plan["model_init"] = "unit-gain"
    elif settings == "per-neuron-policy":
        experiment["share_policy_params"] = False
    elif settings == "noise-0.1":
        if algorithm in ADDITIVE_NOISE:
            experiment["exploration_eps_init"] = 0.1
        else:
            algorithm_fields["scale_mapping"] = "biased_softplus_0.1"
    elif settings == "agent-id":
        plan["task"]["agent_id"] = True
    elif settings == "no-state":
        plan["task"]["state"] = False
    elif settings == "sb3-rates":
        experiment["lr"] = SB3_LEARNING_RATE
        experiment["off_policy_n_optimizer_steps"] = max(1, BENCHMARL_FRAMES_PER_BATCH // delay)
