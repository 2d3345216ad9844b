"""Why does hidden learning hurt on Walker2d-v5? Measurements of the E4 table's trained networks.

The E4 table (``studies/locomotion.py``) found the frozen floor above the learned network on
Walker2d-v5, with exact feedback (the ceiling) no better, while on HalfCheetah-v5 hidden learning
adds +0.62 of SB3 DDPG. This script reads the finished runs' final checkpoints (no training) and
rolls each final policy out deterministically, measuring per run:

* **return** and **episode length** of the rolled-out episodes;
* **critic bias**: the output critic's (a twin critic's first) ``Q(s, μ(s))`` on the visited
  states against the discounted return that followed (``G_t = Σ γ^k r_{t+k}``; only states whose
  tail is known: the episode terminated, or at least ``tail`` steps remained before its time
  limit), as the TD3 paper measures overestimation; reported as the mean of ``Q − G`` and relative to the mean ``|G|``;
* **saturation**: the fraction of hidden units with ``|tanh| > 0.99`` on the visited states, per
  layer, and of output actions at the bound;
* **weight change**: ``‖W − W₀‖ / ‖W₀‖`` per layer against the run's initial weights (rebuilt from
  its config and seed; the frozen floor's hidden layers stay at ``W₀``);

and the same for the SB3 baselines (their actor's hidden layers and first critic; their initial
weights are not saved, so no weight change).

Usage::

    python studies/locomotion_diagnosis.py                        # Walker2d-v5, HalfCheetah-v5, Hopper-v5
    python studies/locomotion_diagnosis.py --phases e4-walker2d --episodes 3

Outputs ``docs/results/locomotion/diagnosis/table.md`` and ``table.json`` (one row per method and
task: mean ± std over seeds).
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from neuron_env.agents.critics import joint_q, twin_q
from neuron_env.agents.train import build_topology, config_from_checkpoint, load_checkpoint, make_learner

#: Methods read from each phase folder, in table order.
METHODS: tuple[str, ...] = ("sb3-ddpg", "sb3-td3", "feedback-joint-ref", "feedback-joint-ref-frozen",
                            "ceiling-joint-ref", "sign-joint-ref", "feedback-td3-ref", "feedback-frozen-td3-ref",
                            "ceiling-td3-ref", "sign-td3-ref", "dfa-td3-ref")

#: A policy maps an observation batch to ``(actions, hidden activations per layer)``.
Policy = Callable[[np.ndarray], tuple[np.ndarray, list[np.ndarray]]]
#: A value maps ``(observations, actions)`` to ``Q``.
Value = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass
class DiagnosisConfig:
    """Which runs to read and how to roll them out."""

    phases: list[str] = field(default_factory=lambda: ["e4-walker2d", "walker2d-td3", "e4-halfcheetah", "e4-hopper",
                                                      "hopper-td3"])
    work: str = "runs/locomotion"
    out: str = "docs/results/locomotion/diagnosis"
    episodes: int = 5
    tail: int = 500
    gamma: float = 0.99
    saturation: float = 0.99


# ---------------------------------------------------------------------------------- pure measurements
def discounted_returns(rewards: np.ndarray, gamma: float) -> np.ndarray:
    """``G_t = Σ_k γ^k r_{t+k}`` over one episode's rewards (zero after its end)."""
    returns = np.zeros(len(rewards))
    running = 0.0
    for t in range(len(rewards) - 1, -1, -1):
        running = rewards[t] + gamma * running
        returns[t] = running
    return returns


def known_tail(length: int, terminated: bool, tail: int) -> np.ndarray:
    """Mask of the steps whose discounted return is known.

    All of them when the episode terminated; else the steps at least ``tail`` steps before its
    truncation (the rest of the sum is below ``γ^tail`` of it).
    """
    steps = np.arange(length)
    return np.ones(length, dtype=bool) if terminated else steps <= length - tail


def relative_change(weights: list[torch.Tensor], initial: list[torch.Tensor]) -> list[float]:
    """``‖W − W₀‖ / ‖W₀‖`` per layer (bias column included)."""
    return [float((w - w0).norm() / w0.norm()) for w, w0 in zip(weights, initial, strict=True)]


# ---------------------------------------------------------------------------------- the runs' networks
def local_network(folder: Path) -> tuple[Policy, Value, list[float]]:
    """The policy, output critic and weight change of a ``neuron-env train`` run (``--critic joint``)."""
    payload = load_checkpoint(folder)
    config = config_from_checkpoint(payload)
    state = payload["learner"]
    actor = [layer.double() for layer in state["actor"]]
    critic = {name: tensor.double() for name, tensor in state["critic"][-1].items()}
    if not critic:
        raise ValueError(f"{folder}: no joint output critic (run with --critic joint)")
    initial = make_learner(config, build_topology(config), torch.device("cpu")).state_dict(include_buffer=False)
    change = relative_change(actor, [layer.double() for layer in initial["actor"]])

    def policy(observations: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        activity = torch.as_tensor(observations, dtype=torch.float64)
        hidden = []
        for layer in actor:
            activity = torch.tanh(activity @ layer[:, :-1].T + layer[:, -1])
            hidden.append(activity.numpy())
        return hidden[-1], hidden[:-1]

    def value(observations: np.ndarray, actions: np.ndarray) -> np.ndarray:
        x, a = torch.as_tensor(observations, dtype=torch.float64), torch.as_tensor(actions, dtype=torch.float64)
        # a twin critic's first one is what its actor climbs
        return (twin_q(critic, x, a)[0] if config.learner_config().critic == "twin" else joint_q(critic, x, a)).numpy()

    return policy, value, change


def sb3_network(folder: Path) -> tuple[Policy, Value, list[float]]:
    """The actor and first critic of a ``neuron-env baseline`` run (SB3 DDPG or TD3)."""
    from stable_baselines3 import DDPG, TD3

    algo = json.loads((folder / "config.json").read_text())["algo"]
    model = {"ddpg": DDPG, "td3": TD3}[algo].load(folder / "model.zip", device="cpu")
    layers = list(model.actor.mu)

    def policy(observations: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        activity = torch.as_tensor(observations, dtype=torch.float32)
        hidden = []
        with torch.no_grad():
            for layer in layers:
                activity = layer(activity)
                if isinstance(layer, torch.nn.Tanh):
                    hidden.append(activity.double().numpy())
        # SB3 squashes with tanh and rescales to the action bounds; MuJoCo's are [-1, 1] here
        return hidden[-1], hidden[:-1]

    def value(observations: np.ndarray, actions: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model.critic.q1_forward(torch.as_tensor(observations, dtype=torch.float32),
                                           torch.as_tensor(actions, dtype=torch.float32)).squeeze(-1).double().numpy()

    return policy, value, []


# ---------------------------------------------------------------------------------- rollouts
def diagnose(task: str, policy: Policy, value: Value, config: DiagnosisConfig) -> dict[str, Any]:
    """Roll ``policy`` out deterministically for ``config.episodes`` episodes and measure it."""
    env = gym.make(task)
    low, high = env.action_space.low, env.action_space.high
    if not (np.allclose(low, -1.0) and np.allclose(high, 1.0)):
        raise ValueError(f"{task}: actions must be bounded by [-1, 1] for this diagnosis")
    returns, lengths, biases, targets, saturated, at_bound = [], [], [], [], [], []
    for episode in range(config.episodes):
        observation, _ = env.reset(seed=10_000 + episode)
        observations, actions, rewards, hidden_layers = [], [], [], []
        terminated = truncated = False
        while not (terminated or truncated):
            action, hidden = policy(observation[None, :])
            observations.append(observation)
            actions.append(action[0])
            hidden_layers.append([layer[0] for layer in hidden])
            observation, reward, terminated, truncated, _ = env.step(action[0])
            rewards.append(float(reward))
        rewards_array = np.asarray(rewards)
        returns.append(float(rewards_array.sum()))
        lengths.append(len(rewards))
        mask = known_tail(len(rewards), terminated, config.tail)
        discounted = discounted_returns(rewards_array, config.gamma)[mask]
        q = value(np.asarray(observations)[mask], np.asarray(actions)[mask])
        biases.append(q - discounted)
        targets.append(discounted)
        layers = [np.stack([step[i] for step in hidden_layers]) for i in range(len(hidden_layers[0]))]
        saturated.append([float(np.mean(np.abs(layer) > config.saturation)) for layer in layers])
        at_bound.append(float(np.mean(np.abs(np.asarray(actions)) > config.saturation)))
    env.close()
    bias = np.concatenate(biases)
    target = np.concatenate(targets)
    return {"return": float(np.mean(returns)), "length": float(np.mean(lengths)),
            "q_bias": float(bias.mean()), "q_bias_relative": float(bias.mean() / np.abs(target).mean()),
            "saturated": [float(np.mean(layer)) for layer in zip(*saturated, strict=True)],
            "actions_at_bound": float(np.mean(at_bound))}


# ---------------------------------------------------------------------------------- report
def _cell(values: list[float], digits: int = 2) -> str:
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.{digits}f} (1)"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f} ({len(values)})"


def table(rows: dict[str, dict[str, list[dict[str, Any]]]]) -> str:
    """Markdown table: one row per task and method, mean ± std over seeds (count in brackets)."""
    layers = max(len(run["saturated"]) for methods in rows.values() for runs in methods.values() for run in runs)
    names = [f"h{i + 1}" for i in range(layers)]
    headings = ["task", "method", "return", "episode length", "Q − G", "(Q − G) / mean abs G",
                *(f"saturated {name}" for name in names), "actions at bound",
                *(f"change {name}" for name in [*names, "out"])]
    lines = ["| " + " | ".join(headings) + " |", "|" + "---|" * len(headings)]
    for task, methods in rows.items():
        for method, runs in methods.items():
            cells = [task, method, _cell([r["return"] for r in runs], 0), _cell([r["length"] for r in runs], 0),
                     _cell([r["q_bias"] for r in runs], 1), _cell([r["q_bias_relative"] for r in runs])]
            cells += [_cell([r["saturated"][i] for r in runs if i < len(r["saturated"])]) for i in range(layers)]
            cells.append(_cell([r["actions_at_bound"] for r in runs]))
            cells += [_cell([r["weight_change"][i] for r in runs if i < len(r["weight_change"])])
                      for i in range(layers + 1)]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def run(config: DiagnosisConfig) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Measure every finished run of ``config.phases``; write ``table.md`` and ``table.json``."""
    rows: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for phase in config.phases:
        folder = Path(config.work) / phase
        for method in METHODS:
            runs = []
            for run_folder in sorted(folder.glob(f"{method}-s[0-9]*")):
                summary = run_folder / "summary.json"
                if not summary.is_file() or json.loads(summary.read_text()).get("status") != "completed":
                    continue
                task = json.loads((run_folder / "config.json").read_text())["task"]
                network = sb3_network if method.startswith("sb3-") else local_network
                policy, value, change = network(run_folder)
                measured = diagnose(task, policy, value, config)
                measured.update(seed=int(run_folder.name.rsplit("-s", 1)[1]), weight_change=change)
                runs.append(measured)
                print(f"{task} {method} seed {measured['seed']}: return {measured['return']:.0f}, "
                      f"Q − G {measured['q_bias']:.1f}, saturated {measured['saturated']}, "
                      f"change {[round(c, 2) for c in change]}", flush=True)
            if runs:
                rows.setdefault(task, {})[method] = runs
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.md").write_text(table(rows))
    (out / "table.json").write_text(json.dumps({"config": asdict(config), "rows": rows}, indent=1))
    return rows


def main(argv: list[str] | None = None) -> int:
    """Command line: measure the runs, print one line per run, write the table."""
    defaults = DiagnosisConfig()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phases", nargs="+", default=defaults.phases)
    parser.add_argument("--work", default=defaults.work)
    parser.add_argument("--out", default=defaults.out)
    parser.add_argument("--episodes", type=int, default=defaults.episodes)
    args = parser.parse_args(argv)
    run(DiagnosisConfig(phases=args.phases, work=args.work, out=args.out, episodes=args.episodes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
