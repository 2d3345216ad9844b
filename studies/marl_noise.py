"""The MARL study's exploration measurement: how noisy each algorithm's initial policy is on the network.

Every neuron explores, and on a layered network the output's noise is its own plus the noise of
every layer below. ``measure_exploration`` rolls each algorithm's untrained BenchMARL policy out
from fixed task states and measures the std of every layer's action at the tick it settles, and of
the task action, against the ``feedback`` learner's (Gaussian 0.1 on the outputs only);
``render_noise`` makes the table the MARL study's factor phase reports. The same rollouts, run
deterministically, measure how differently the neurons of one layer act (``render_sharing``): the
neurons of a layer observe the same voltages, so a policy the layer shares (BenchMARL's default)
acts the same for all of them unless each is told its index (``agent-id``) or has its own policy
(``per-neuron-policy``). It needs BenchMARL
(``make test-marl`` builds its venv) and takes a few CPU-minutes::

    .venv-marl/bin/python studies/marl_run.py noise --task Pendulum-v1 --hidden 8 8 --out /tmp/noise
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from marl_settings import plan_settings

from neuron_env.integrations.benchmarl import ALGORITHMS, task_config

#: The settings whose initial policies the measurement rolls out.
MEASURED_SETTINGS: tuple[str, ...] = ("default", "noise-0.1", "agent-id", "per-neuron-policy", "unit-gain-init")


def _layer_stds(actions: Any, groups: Sequence[str]) -> dict[str, float]:
    """Per group: the std over samples of the group's action at the tick it settles (group ``j``: tick ``j+1``).

    ``actions[group]`` is ``[samples, states, ticks, n]``; the std is taken over samples at each state
    and neuron, then averaged over states and neurons.
    """
    return {group: float(actions[group][:, :, index].std(0).mean()) for index, group in enumerate(groups)}


def _layer_spreads(actions: Any, groups: Sequence[str], across: Literal["neurons", "states"]) -> dict[str, float]:
    """Per group: the std of its deterministic actions at the tick it settles, across neurons or across states.

    ``actions[group]`` is ``[states, ticks, n]``. ``across="neurons"``: the std over the ``n`` neurons,
    averaged over states (0: the group's neurons act as one); ``"states"``: the std over the states,
    averaged over neurons (0: the group's actions carry nothing of the task state). Population std
    (no Bessel correction): a one-neuron group spreads 0 across neurons, not NaN.
    """
    if across not in ("neurons", "states"):
        raise ValueError(f"across={across!r}; use 'neurons' or 'states'")
    dim = -1 if across == "neurons" else 0
    return {group: float(actions[group][:, index].std(dim, correction=0).mean())
            for index, group in enumerate(groups)}


def measure_exploration(task: str = "Pendulum-v1", hidden: Sequence[int] = (8, 8), samples: int = 64,
                        states: int = 8, seed: int = 0, settings: Sequence[str] = MEASURED_SETTINGS,
                        algorithms: Sequence[str] = ALGORITHMS) -> dict[str, Any]:
    """The exploration noise of every layer under each algorithm's initial policy, against the feedback learner's.

    From each of ``states`` fixed task states (the evaluation starts of ``seed``) the untrained
    policy is rolled out ``samples`` times for ``delay`` ticks, exploring; group ``j`` (``h1``,
    ``h2``, ``out``) is read at tick ``j + 1``, when its input has settled, so the output's spread
    is its own noise plus the noise of every layer below. One more rollout without exploration gives
    each group's ``spread``: the std across its neurons of their deterministic actions, and its
    ``state_spread``: their std across the states. Needs BenchMARL (a few CPU-minutes).

    Returns:
        ``{"task", "hidden", "delay", "samples", "states", "action_scale", "groups", "rows"}``; each
        row: ``policy``, ``settings``, the std per group (voltage units), ``task_action_std`` (the
        output's std times the decoder's scale), ``spread`` and ``state_spread`` per group (voltage units).
    """
    import gymnasium as gym
    import torch
    from neuron_env.agents.registry import make_learner
    from neuron_env.agents.train import evaluation_seed
    from torchrl.envs.utils import ExplorationType, set_exploration_type

    from neuron_env.integrations.benchmarl import config_topology, make_experiment, native_env, neuron_task
    from neuron_env.vector import NeuronVecEnv

    base = task_config(task, hidden=hidden)
    delay, topology = int(base["delay"]), config_topology(base)
    groups = [g.name for g in topology.agent_groups]
    start_seed = evaluation_seed(seed)
    space = gym.make(task).action_space
    scale = float(((space.high - space.low) / 2).mean())
    rows: list[dict[str, Any]] = []

    def add(policy: str, setting: str, actions: dict[str, Any], deterministic: dict[str, Any]) -> None:
        stds = _layer_stds(actions, groups)
        rows.append({"policy": policy, "settings": setting, "std": stds, "task_action_std": stds[groups[-1]] * scale,
                     "spread": _layer_spreads(deterministic, groups, "neurons"),
                     "state_spread": _layer_spreads(deterministic, groups, "states")})

    for algorithm in algorithms:
        for setting in settings:
            plan = plan_settings(setting, algorithm, base, 1000)
            neuron = neuron_task(task, hidden=hidden, **plan["task"])
            with tempfile.TemporaryDirectory() as folder:
                experiment = make_experiment(neuron, algorithm, settings="benchmarl", seed=seed,
                                             model_cells=plan["model_cells"], model_init=plan["model_init"],
                                             save_folder=folder,
                                             experiment_overrides=plan["experiment"],
                                             algorithm_overrides=plan["algorithm"])
                env = native_env(neuron.config, states, full_task_episodes=True)
                taken: dict[str, list[Any]] = {g: [] for g in groups}
                with torch.no_grad(), set_exploration_type(ExplorationType.RANDOM):
                    for _ in range(samples):
                        rollout = env.rollout(delay, experiment.policy, auto_reset=False,
                                              tensordict=env.reset(seed=start_seed), break_when_any_done=False)
                        for g in groups:
                            taken[g].append(rollout.get((g, "action"))[..., 0])  # [states, ticks, n]
                with torch.no_grad(), set_exploration_type(ExplorationType.DETERMINISTIC):
                    rollout = env.rollout(delay, experiment.policy, auto_reset=False,
                                          tensordict=env.reset(seed=start_seed), break_when_any_done=False)
                    deterministic = {g: rollout.get((g, "action"))[..., 0] for g in groups}
                env.close()
                experiment.close()
            add(algorithm, setting, {g: torch.stack(v) for g, v in taken.items()}, deterministic)
    learner = make_learner("feedback", topology, {}, seed=seed)
    core = NeuronVecEnv(task, topology, num_envs=states)
    taken = {g: [] for g in groups}

    def feedback_rollout(explore: bool) -> dict[str, Any]:
        voltages, _ = core.reset(seed=start_seed)
        ticks = []
        for _ in range(delay):
            action = learner.act(voltages, explore=explore)
            ticks.append(action)
            voltages = core.step(action).voltages
        stacked = torch.stack(ticks, 1)  # [states, ticks, agents]
        return {g: stacked[..., topology.agent_slice[g]] for g in groups}

    for _ in range(samples):
        for g, actions in feedback_rollout(explore=True).items():
            taken[g].append(actions)
    deterministic = feedback_rollout(explore=False)
    core.close()
    add("feedback (local learner)", "noise_scale 0.1 on outputs, 0 on hidden",
        {g: torch.stack(v) for g, v in taken.items()}, deterministic)
    return {"task": task, "hidden": list(hidden), "delay": delay, "samples": samples, "states": states,
            "action_scale": scale, "groups": groups, "rows": rows}


def render_sharing(result: Mapping[str, Any]) -> str:
    """How differently the neurons of each hidden layer act under each untrained policy, as a markdown table.

    Empty for a measurement made before the spreads were (its rows have no ``state_spread``).
    """
    if not all("state_spread" in row for row in result["rows"]):
        return ""
    groups = result["groups"]
    hidden = groups[:-1]
    lines = [f"{result['task']}, hidden {'-'.join(map(str, result['hidden']))} tanh, untrained policies acting "
             f"deterministically from {result['states']} fixed states, each layer read at the tick it settles "
             "(voltage units). *Across neurons*: the std over a hidden layer's neurons, averaged over the states "
             "(0: the layer's neurons act as one). *Across states*: the std over the states, averaged over the "
             "layer's neurons (near 0: the layer passes on little of the task state).", "",
             "| policy | settings | " + " | ".join(f"{g} across neurons" for g in hidden) + " | "
             + " | ".join(f"{g} across states" for g in groups) + " |",
             "|---|---|" + "---|" * (len(hidden) + len(groups))]
    for row in result["rows"]:
        lines.append(f"| {row['policy']} | {row['settings']} | "
                     + " | ".join(f"{row['spread'][g]:.3f}" for g in hidden) + " | "
                     + " | ".join(f"{row['state_spread'][g]:.3f}" for g in groups) + " |")
    return "\n".join(lines) + "\n"


def render_noise(result: Mapping[str, Any]) -> str:
    """The exploration measurement as a markdown table."""
    groups = result["groups"]
    lines = [f"{result['task']}, hidden {'-'.join(map(str, result['hidden']))} tanh, delay {result['delay']}: std of "
             f"each layer's action (voltage units) over {result['samples']} exploratory rollouts from each of "
             f"{result['states']} fixed states, read at the tick the layer settles; task action std = output std × "
             f"{result['action_scale']:g} (the decoder's scale).", "",
             f"| policy | settings | {' | '.join(groups)} | task action std |",
             "|---|---|" + "---|" * len(groups) + "---|"]
    for row in result["rows"]:
        lines.append(f"| {row['policy']} | {row['settings']} | "
                     + " | ".join(f"{row['std'][g]:.3f}" for g in groups) + f" | {row['task_action_std']:.3f} |")
    return "\n".join(lines) + "\n"


def write_tables(result: Mapping[str, Any], out: Path) -> str:
    """Write ``noise.md`` (and ``sharing.md``, when measured) of a measurement under ``out``; return their text."""
    out.mkdir(parents=True, exist_ok=True)
    noise, sharing = render_noise(result), render_sharing(result)
    (out / "noise.md").write_text(noise)
    if sharing:
        (out / "sharing.md").write_text(sharing)
    return noise + ("\n" + sharing if sharing else "")
