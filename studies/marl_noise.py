"""The MARL study's exploration measurement: how noisy each algorithm's initial policy is on the network.

Every neuron explores, and on a layered network the output's noise is its own plus the noise of
every layer below. ``measure_exploration`` rolls each algorithm's untrained BenchMARL policy out
from fixed task states and measures the std of every layer's action at the tick it settles, and of
the task action, against the ``feedback`` learner's (Gaussian 0.1 on the outputs only);
``render_noise`` makes the table the MARL study's factor phase reports. It needs BenchMARL
(``make test-marl`` builds its venv) and runs in a minute or two::

    .venv-marl/bin/python studies/marl_run.py noise --task Pendulum-v1 --hidden 8 8 --out /tmp/noise
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from typing import Any

from marl_settings import plan_settings

from neuron_env.integrations.benchmarl import ALGORITHMS, task_config


def _layer_stds(actions: Any, groups: Sequence[str]) -> dict[str, float]:
    """Per group: the std over samples of the group's action at the tick it settles (group ``j``: tick ``j+1``).

    ``actions[group]`` is ``[samples, states, ticks, n]``; the std is taken over samples at each state
    and neuron, then averaged over states and neurons.
    """
    return {group: float(actions[group][:, :, index].std(0).mean()) for index, group in enumerate(groups)}


def measure_exploration(task: str = "Pendulum-v1", hidden: Sequence[int] = (8, 8), samples: int = 64,
                        states: int = 8, seed: int = 0, settings: Sequence[str] = ("default", "noise-0.1"),
                        algorithms: Sequence[str] = ALGORITHMS) -> dict[str, Any]:
    """The exploration noise of every layer under each algorithm's initial policy, against the feedback learner's.

    From each of ``states`` fixed task states (the evaluation starts of ``seed``) the untrained
    policy is rolled out ``samples`` times for ``delay`` ticks, exploring; group ``j`` (``h1``,
    ``h2``, ``out``) is read at tick ``j + 1``, when its input has settled, so the output's spread
    is its own noise plus the noise of every layer below. Needs BenchMARL (runs in a minute or two).

    Returns:
        ``{"task", "hidden", "delay", "samples", "states", "action_scale", "rows"}``; each row:
        ``policy``, ``settings``, the std per group (voltage units) and ``task_action_std``
        (the output's std times the decoder's scale).
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

    def add(policy: str, setting: str, actions: dict[str, Any]) -> None:
        stds = _layer_stds(actions, groups)
        rows.append({"policy": policy, "settings": setting, "std": stds, "task_action_std": stds[groups[-1]] * scale})

    for algorithm in algorithms:
        for setting in settings:
            plan = plan_settings(setting, algorithm, base, 1000)
            neuron = neuron_task(task, hidden=hidden, **plan["task"])
            with tempfile.TemporaryDirectory() as folder:
                experiment = make_experiment(neuron, algorithm, settings="benchmarl", seed=seed,
                                             model_cells=plan["model_cells"], save_folder=folder,
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
                env.close()
                experiment.close()
            add(algorithm, setting, {g: torch.stack(v) for g, v in taken.items()})
    learner = make_learner("feedback", topology, {}, seed=seed)
    core = NeuronVecEnv(task, topology, num_envs=states)
    taken = {g: [] for g in groups}
    for _ in range(samples):
        voltages, _ = core.reset(seed=start_seed)
        ticks = []
        for _ in range(delay):
            action = learner.act(voltages, explore=True)
            ticks.append(action)
            voltages = core.step(action).voltages
        stacked = torch.stack(ticks, 1)  # [states, ticks, agents]
        for g in groups:
            taken[g].append(stacked[..., topology.agent_slice[g]])
    core.close()
    add("feedback (local learner)", "noise_scale 0.1 on outputs, 0 on hidden", {g: torch.stack(v) for g, v in
                                                                               taken.items()})
    return {"task": task, "hidden": list(hidden), "delay": delay, "samples": samples, "states": states,
            "action_scale": scale, "groups": groups, "rows": rows}


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
