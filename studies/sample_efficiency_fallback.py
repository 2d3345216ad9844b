"""What makes a learned policy fall back? Instrumented runs of the local ``mlp`` critic (issue #4).

The sweep beside this file (``sample_efficiency_sweep.py``) found that the local learner's policies on Pendulum-v1
reach good returns and lose them again a few thousand steps later. This script trains one sweep
variant with the trainer's own loop (the same run as the sweep's, seed for seed: the probes read
the learner and never touch its random state) and, every ``--probe-every`` task steps, records:

``eval_mean``, ``eval_returns``
    deterministic returns from ``--probe-episodes`` fixed start states (the trainer's evaluation
    seeds: its 5 evaluation starts are the first 5 of them), so a fall-back can be told apart from
    evaluation noise and located: does every start get worse, or do a few flip from swung-up to
    failed?
``drift/<group>``
    how far the group's actor weights moved since the previous probe, ``‖W − W_prev‖ / ‖W_prev‖``.
``action_change``, ``hidden_change/<group>``
    mean ``|μ(s) − μ_prev(s)|`` of the output neuron and of each hidden group over
    ``--probe-states`` fixed task states (the task's own reset distribution): how much the policy
    itself changed, in voltage units.
``norm/<group>``
    the Frobenius norm of the group's actor weights (bias column included).
``saturation/<group>``
    fraction of the group's voltages within 0.01 of its activation's bound on those states.
``td/<group>``, ``q_slope``
    the mean |TD error| per group and the mean ``|∂Qⁿ/∂aⁿ|`` over the updates since the previous
    probe (what ``LocalDDPG.update`` returns).

Then, over all probe intervals of all seeds (after warm-up), it reports the Spearman rank
correlation between the change of the evaluation mean and each of these quantities, and the
falls (the evaluation mean drops by at least ``--drop``) one by one: how many starts failed
newly, which group moved most, the TD errors before and during the fall.

Outputs, under ``--out`` (default ``fallback/`` beside this file)::

    seed<S>/probes.csv      one row per probe (per-episode returns as a JSON list)
    seed<S>/metrics.csv, summary.json, config.json, provenance.json   the trainer's light files
    fallback.json           the analysis (correlations, falls, per-seed summaries)
    fallback.md             the same as tables (``README.md`` beside this file includes it)
    fallback.png            per seed: evaluation mean and per-start returns, drift, action change

Run from the repository root (about 5 min per 20 000-step seed on one core, more when the cores
are shared)::

    python studies/sample_efficiency_fallback.py --variant defaults --seeds 0 1 2
    python studies/sample_efficiency_fallback.py --method sb3-ddpg --seeds 0 1 2 \
        --out docs/results/sample-efficiency/fallback-sb3   # the reference, probed the same way
    python studies/sample_efficiency_fallback.py --report-only   # rewrite the analysis

A seed whose ``summary.json`` says ``completed`` is skipped; an interrupted seed starts over (the
probes live in memory until its run ends).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import importlib.util
import json
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from neuron_env.run_output import atomic_write_text, write_csv

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = REPO / "docs" / "results" / "sample-efficiency"  # where the outputs live (the code lives in studies/)


def _load_sweep() -> Any:
    """``sample_efficiency_sweep.py`` beside this file (its ``BASE``, ``VARIANTS`` and ``provenance``)."""
    if "sample_efficiency_sweep" in sys.modules:
        return sys.modules["sample_efficiency_sweep"]
    spec = importlib.util.spec_from_file_location("sample_efficiency_sweep", HERE / "sample_efficiency_sweep.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["sample_efficiency_sweep"] = module  # dataclasses look their module up while it executes
    spec.loader.exec_module(module)
    return module


@dataclass
class FallbackConfig:
    """Everything that defines an instrumented study (one dataclass, a docstring per field)."""

    variant: str = "defaults"
    """The sweep variant to train (a key of ``sweep.VARIANTS``); ignored with ``--method sb3-ddpg``."""
    method: str = "local"
    """``local`` (the sweep variant) or ``sb3-ddpg`` (the reference: SB3 DDPG with the 64-64 tanh network,
    as ``neuron-env compare`` runs it), probed the same way, as the yardstick of how much a policy that
    has converged still moves."""
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    """Seeds to train, one run each, one after the other."""
    steps: int | None = None
    """Task steps per run; default the variant's (the sweep's 20 000)."""
    learning_starts: int | None = None
    """Warm-up task steps; default TrainConfig's (1 000)."""
    probe_every: int = 1_000
    """Task steps between probes (a probe also runs before training)."""
    probe_episodes: int = 20
    """Deterministic evaluation episodes per probe, from fixed start states."""
    probe_states: int = 512
    """Fixed task states on which the policy's change between probes is measured."""
    drop: float = 200.0
    """A fall: the probe evaluation mean drops by at least this much between two probes."""
    failed_return: float = -600.0
    """An episode below this return counts as failed (Pendulum-v1: it never swung up and balanced)."""
    out: str = str(RESULTS / "fallback")
    """Folder of the per-seed data and the analysis."""
    work: str = str(REPO / "runs" / "sample-efficiency-fallback")
    """Folder the runs train in (checkpoints; git-ignored)."""
    report_only: bool = False
    """Train nothing; only rewrite fallback.json, fallback.md and fallback.png from ``out``."""


# ------------------------------------------------------------------------------------ probing
class Probe:
    """The trainer's ``on_step`` callback: records one probe row every ``probe_every`` task steps.

    Args:
        trainer: The run to observe (its learner is read, never changed).
        config: The study's configuration.
    """

    def __init__(self, trainer: Any, config: FallbackConfig) -> None:
        from neuron_env.agents.train import evaluation_seed

        from neuron_env.vector import NeuronVecEnv

        self.config = config
        self.trainer = trainer
        learner = trainer.learner
        task, topology, device = trainer.config.task, trainer.topology, trainer.device
        self.eval_env = NeuronVecEnv(task, topology, num_envs=config.probe_episodes, device=device, validate=False)
        self.eval_seed = evaluation_seed(trainer.config.seed)
        states_env = NeuronVecEnv(task, topology, num_envs=config.probe_states, device=device, validate=False)
        # a seed apart from training's and evaluation's: the same states for every seed and probe
        voltages, _ = states_env.reset(seed=123_456_789)
        states_env.close()
        self.states = voltages.to(learner.device, learner.dtype).clone()
        self.rows: list[dict[str, Any]] = []
        self._stats: list[dict[str, float]] = []
        update = learner.update

        def recording_update(*args: Any, **kwargs: Any) -> dict[str, torch.Tensor]:
            stats = update(*args, **kwargs)
            self._stats.append({name: float(value) for name, value in stats.items()})
            return stats

        learner.update = recording_update  # type: ignore[method-assign]
        self._previous_actor = [w.detach().clone() for w in learner.actor]
        self._previous_settled = learner.settle(self.states)
        self.record()

    def __call__(self, trainer: Any) -> None:
        """Probe after every ``probe_every``-th task step (the trainer calls this after each one)."""
        if trainer.task_step % self.config.probe_every == 0:
            self.record()

    def record(self) -> None:
        """Append one probe row (evaluation, weight drift, policy change, saturation, TD statistics)."""
        from neuron_env.agents.train import evaluate

        learner, config = self.trainer.learner, self.config
        returns = evaluate(learner, self.eval_env, self.eval_seed)
        settled = learner.settle(self.states)
        row: dict[str, Any] = {
            "step": self.trainer.task_step,
            "updates": learner.num_updates,
            "eval_mean": float(returns.mean()),
            "eval_std": float(returns.std()),
            "failed": int((returns < config.failed_return).sum()),
            "eval_returns": [round(float(r), 2) for r in returns],
        }
        for i, layout in enumerate(learner.layouts):
            before, now = self._previous_actor[i], learner.actor[i]
            row[f"drift/{layout.name}"] = float(torch.linalg.norm(now - before) / torch.linalg.norm(before))
            row[f"norm/{layout.name}"] = float(torch.linalg.norm(now))
            change = float((settled[:, layout.neuron_slice] - self._previous_settled[:, layout.neuron_slice])
                           .abs().mean())
            row["action_change" if layout is learner.layouts[-1] else f"hidden_change/{layout.name}"] = change
            voltages = settled[:, layout.neuron_slice]
            row[f"saturation/{layout.name}"] = float(((voltages <= layout.low + 0.01) |
                                                      (voltages >= layout.high - 0.01)).float().mean())
        names = [f"td_error/{layout.name}" for layout in learner.layouts] + ["q_slope"]
        for name in names:
            values = [s[name] for s in self._stats if name in s]
            key = name.replace("td_error/", "td/")
            row[key] = float(np.mean(values)) if values else None
        self._stats.clear()
        self._previous_actor = [w.detach().clone() for w in learner.actor]
        self._previous_settled = settled
        self.rows.append(row)

    def close(self) -> None:
        """Close the probe's evaluation env."""
        self.eval_env.close()


def _sb3_probe_callback(config: FallbackConfig, seed: int, task: str) -> Any:
    """An SB3 callback recording the same probe rows for SB3 DDPG's actor (``mu``: Linear/Tanh layers).

    Groups are named as the local network's (``h1``, ``h2``, ``out``); voltages are the actor's
    activations, its output the action in SB3's scaled space ``[-1, 1]`` (the local output
    neuron's voltage range). ``q_slope`` is ``|∂Q/∂a|`` of SB3's critic at the actor's action on
    the probe states; SB3 keeps no TD statistics, so ``td/*`` stay empty.
    """
    import gymnasium as gym
    from neuron_env.baselines.sb3_ddpg import evaluate, evaluation_seed
    from stable_baselines3.common.callbacks import BaseCallback

    class SB3Probe(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.rows: list[dict[str, Any]] = []
            self.eval_env = gym.make(task)
            env = gym.make(task)
            self.states = np.stack([env.reset(seed=123_456_789 + i)[0] for i in range(config.probe_states)])
            env.close()

        def _layers(self) -> list[torch.nn.Linear]:
            return [m for m in self.model.actor.mu if isinstance(m, torch.nn.Linear)]

        def _weights(self) -> list[torch.Tensor]:
            return [torch.cat([m.weight, m.bias[:, None]], 1).detach().clone() for m in self._layers()]

        def _activations(self) -> list[torch.Tensor]:
            with torch.no_grad():
                x = torch.as_tensor(self.states, dtype=torch.float32)
                outputs = []
                for module in self.model.actor.mu:
                    x = module(x)
                    if not isinstance(module, torch.nn.Linear):
                        outputs.append(x.clone())
                return outputs

        def _on_training_start(self) -> None:
            self._previous = self._weights()
            self._previous_activations = self._activations()
            self.record()

        def _on_step(self) -> bool:
            if self.num_timesteps % config.probe_every == 0:
                self.record()
            return True

        def record(self) -> None:
            returns = evaluate(self.model, self.eval_env, config.probe_episodes, evaluation_seed(seed))
            weights, activations = self._weights(), self._activations()
            row: dict[str, Any] = {"step": self.num_timesteps, "updates": int(self.model._n_updates),
                                   "eval_mean": float(returns.mean()), "eval_std": float(returns.std()),
                                   "failed": int((returns < config.failed_return).sum()),
                                   "eval_returns": [round(float(r), 2) for r in returns]}
            names = ["h1", "h2", "out"] if len(weights) == 3 else [f"layer{i}" for i in range(len(weights))]
            for name, now, before, act, act_before in zip(names, weights, self._previous, activations,
                                                          self._previous_activations, strict=True):
                row[f"drift/{name}"] = float(torch.linalg.norm(now - before) / torch.linalg.norm(before))
                row[f"norm/{name}"] = float(torch.linalg.norm(now))
                change = float((act - act_before).abs().mean())
                row["action_change" if name == names[-1] else f"hidden_change/{name}"] = change
                row[f"saturation/{name}"] = float((act.abs() >= 0.99).float().mean())
            for name in names:
                row[f"td/{name}"] = None
            observations = torch.as_tensor(self.states, dtype=torch.float32)
            with torch.no_grad():
                actions = self.model.actor(observations)
            actions.requires_grad_(True)
            q = self.model.critic.q1_forward(observations, actions)
            (slope,) = torch.autograd.grad(q.sum(), actions)
            row["q_slope"] = float(slope.abs().mean())
            self._previous, self._previous_activations = weights, activations
            self.rows.append(row)

    return SB3Probe()


def _keep_light_files(rows: list[dict[str, Any]], work: Path, data: Path) -> None:
    """Write ``probes.csv`` and copy the run's light files from ``work`` to ``data`` (paths repo-relative)."""
    write_probes(rows, data / "probes.csv")
    for name in ("metrics.csv", "summary.json", "config.json"):
        shutil.copy2(work / name, data / name)
    _load_sweep()._relative_out(data)


def run_sb3_seed(config: FallbackConfig, seed: int) -> str:
    """Train SB3 DDPG (64-64 tanh, as ``compare``'s ``sb3-ddpg``) with the probe; ``trained`` or ``skipped``."""
    from neuron_env.baselines.sb3_ddpg import BaselineConfig, train_sb3

    sweep = _load_sweep()
    data = Path(config.out) / f"seed{seed}"
    if (data / "summary.json").is_file() and (data / "probes.csv").is_file():
        return "skipped"
    work = Path(config.work) / "sb3-ddpg" / f"seed{seed}"
    if work.exists():
        shutil.rmtree(work)
    base = sweep.BASE
    steps = config.steps or int(base["steps"])
    probe = _sb3_probe_callback(config, seed, base["task"])
    data.mkdir(parents=True, exist_ok=True)
    atomic_write_text(data / "provenance.json", json.dumps(sweep.provenance(), indent=2))
    baseline = BaselineConfig(algo="ddpg", task=base["task"], hidden=tuple(base["hidden"]), activation="tanh",
                              steps=steps, seed=seed, out=str(work), eval_every=int(base["eval_every"]),
                              eval_episodes=int(base["eval_episodes"]), learning_starts=config.learning_starts,
                              threads=1, tensorboard=False, save_model=False, progress=False)
    train_sb3(baseline, callbacks=[probe])
    probe.eval_env.close()
    _keep_light_files(probe.rows, work, data)
    return "trained"


def write_probes(rows: list[dict[str, Any]], path: Path) -> None:
    """``probes.csv``: one line per probe, the per-episode returns as a JSON list (written atomically)."""
    write_csv(path, ({k: json.dumps(v) if isinstance(v, list) else ("" if v is None else v) for k, v in row.items()}
                     for row in rows), list(rows[0]))


def read_probes(path: Path) -> list[dict[str, Any]]:
    """The rows ``write_probes`` wrote (numbers as floats, ``eval_returns`` as a list, blanks as ``None``)."""
    with open(path, newline="") as stream:
        rows = []
        for raw in csv.DictReader(stream):
            row: dict[str, Any] = {}
            for key, value in raw.items():
                if key == "eval_returns":
                    row[key] = json.loads(value)
                elif value == "":
                    row[key] = None
                else:
                    row[key] = float(value)
            rows.append(row)
        return rows


def run_seed(config: FallbackConfig, seed: int) -> str:
    """Train one instrumented run unless it is finished; returns ``trained`` or ``skipped``."""
    from neuron_env.agents.train import TrainConfig, Trainer

    sweep = _load_sweep()
    data = Path(config.out) / f"seed{seed}"
    summary_path = data / "summary.json"
    if summary_path.is_file() and (data / "probes.csv").is_file() \
            and json.loads(summary_path.read_text())["status"] == "completed":
        return "skipped"
    fields_ = dict(sweep.BASE)
    fields_.update(sweep.VARIANTS[config.variant])
    for name in ("steps", "learning_starts"):
        if getattr(config, name) is not None:
            fields_[name] = getattr(config, name)
    work = Path(config.work) / config.variant / f"seed{seed}"
    if work.exists():
        shutil.rmtree(work)  # the probes are not checkpointed: an interrupted run starts over
    trainer = Trainer(TrainConfig.from_settings(fields_, seed=seed, out=str(work)))
    probe = Probe(trainer, config)
    trainer.on_step = probe
    data.mkdir(parents=True, exist_ok=True)
    atomic_write_text(data / "provenance.json", json.dumps(sweep.provenance(), indent=2))
    try:
        trainer.run()
    finally:
        probe.close()
    _keep_light_files(probe.rows, work, data)
    return "trained"


# ------------------------------------------------------------------------------------ analysis
def spearman(x: np.ndarray, y: np.ndarray) -> float | None:
    """Spearman rank correlation (average ranks for ties); ``None`` with fewer than 3 pairs or no spread."""
    if len(x) < 3:
        return None

    def ranks(values: np.ndarray) -> np.ndarray:
        order = np.argsort(values, kind="stable")
        result = np.empty(len(values))
        result[order] = np.arange(len(values), dtype=float)
        for value in np.unique(values):  # ties share their mean rank
            tied = values == value
            result[tied] = result[tied].mean()
        return result

    rx, ry = ranks(np.asarray(x, float)), ranks(np.asarray(y, float))
    if rx.std() == 0 or ry.std() == 0:
        return None
    return float(np.corrcoef(rx, ry)[0, 1])


#: Interval quantities correlated with the change of the evaluation mean (prefixes match per-group keys).
FEATURES = ("drift/", "action_change", "hidden_change/", "td/", "q_slope", "saturation/", "norm/")


def intervals(rows: list[dict[str, Any]], failed_return: float) -> list[dict[str, Any]]:
    """One record per pair of consecutive probes with learning in between (the update count grew).

    Each holds the step range, the change of the evaluation mean, the number of starts that failed
    newly and that recovered, the interval's quantities (``FEATURES``) and the TD errors of the
    interval before it (``previous_td/<group>``).
    """
    result = []
    for before, after in zip(rows, rows[1:], strict=False):
        if after["updates"] <= before["updates"]:
            continue  # warm-up: no update in this interval
        failed_before = np.asarray(before["eval_returns"]) < failed_return
        failed_after = np.asarray(after["eval_returns"]) < failed_return
        record: dict[str, Any] = {
            "start": int(before["step"]), "end": int(after["step"]),
            "eval_before": before["eval_mean"], "eval_after": after["eval_mean"],
            "change": after["eval_mean"] - before["eval_mean"],
            "newly_failed": int((failed_after & ~failed_before).sum()),
            "recovered": int((failed_before & ~failed_after).sum()),
            "episodes": len(after["eval_returns"]),
        }
        for key, value in after.items():
            if key.startswith(FEATURES):
                record[key] = value
        for key, value in before.items():
            if key.startswith("td/"):
                record[f"previous_{key}"] = value
        result.append(record)
    return result


def analyze(per_seed: dict[int, list[dict[str, Any]]], drop: float, failed_return: float) -> dict[str, Any]:
    """Correlations over all intervals, the falls one by one, and per-seed summaries.

    Args:
        per_seed: ``{seed: probe rows}``.
        drop: A fall is an interval whose evaluation mean drops by at least this much.
        failed_return: Episodes below this return count as failed.

    Returns:
        ``{"correlations": {feature: r}, "falls": [...], "rises": count, "steady": count,
        "feature_means": {"falls"|"rises"|"steady": {feature: mean}}, "seeds": {...}}``.
    """
    records = []
    for seed, rows in sorted(per_seed.items()):
        for record in intervals(rows, failed_return):
            records.append({"seed": seed, **record})
    features = sorted({key for r in records for key in r if key.startswith(FEATURES)})
    change = np.array([r["change"] for r in records])
    correlations = {}
    for feature in features:
        pairs = [(r["change"], r[feature]) for r in records if r.get(feature) is not None]
        correlations[feature] = spearman(np.array([p[1] for p in pairs]), np.array([p[0] for p in pairs])) \
            if pairs else None
    kinds = {"falls": change <= -drop, "rises": change >= drop, "steady": np.abs(change) < drop}
    feature_means = {kind: {feature: float(np.mean([r[feature] for r, m in zip(records, mask, strict=True)
                                                    if m and r.get(feature) is not None]))
                            for feature in features if any(m and r.get(feature) is not None
                                                           for r, m in zip(records, mask, strict=True))}
                     for kind, mask in kinds.items()}
    falls = [r for r, fell in zip(records, kinds["falls"], strict=True) if fell]
    seeds = {}
    for seed, rows in sorted(per_seed.items()):
        evals = [r["eval_mean"] for r in rows]
        best = int(np.argmax(evals))
        seeds[seed] = {"probes": len(rows), "best": evals[best], "best_step": int(rows[best]["step"]),
                       "final": evals[-1], "falls": sum(1 for f in falls if f["seed"] == seed)}
    return {"intervals": len(records), "correlations": correlations, "falls": falls,
            "counts": {kind: int(mask.sum()) for kind, mask in kinds.items()},
            "feature_means": feature_means, "seeds": seeds, "drop": drop, "failed_return": failed_return}


def start_states(task: str, seed: int, episodes: int) -> list[list[float]]:
    """The task's first observation of every probe evaluation episode (copy ``i`` resets with seed ``+ i``)."""
    import gymnasium as gym
    from neuron_env.agents.train import evaluation_seed

    env = gym.make(task)
    try:
        first = evaluation_seed(seed)
        return [[round(float(x), 4) for x in env.reset(seed=first + i)[0]] for i in range(episodes)]
    finally:
        env.close()


def starts_summary(rows: list[dict[str, Any]], observations: list[list[float]], failed_return: float) -> list[dict]:
    """Per evaluation start: its first observation, final return, and how often it failed in the run's second half."""
    second_half = rows[len(rows) // 2:]
    result = []
    for i, observation in enumerate(observations):
        record: dict[str, Any] = {"start": i, "observation": observation,
                                  "final_return": rows[-1]["eval_returns"][i],
                                  "failed_fraction_second_half": float(np.mean(
                                      [r["eval_returns"][i] < failed_return for r in second_half]))}
        if len(observation) == 3:  # Pendulum-v1: (cos θ, sin θ, θ̇); θ = 0 is upright
            record["angle_deg"] = round(float(np.degrees(np.arctan2(observation[1], observation[0]))), 1)
            record["angular_velocity"] = observation[2]
        result.append(record)
    return result


# ------------------------------------------------------------------------------------ writing
def _fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def write_markdown(result: dict[str, Any], config: FallbackConfig, path: Path) -> None:
    """``fallback.md``: the correlations, the feature means by kind of interval, and the falls."""
    means = result["feature_means"]
    subject = f"Variant `{config.variant}`" if config.method == "local" else "SB3 DDPG (64-64 tanh)"
    lines = [
        f"{subject}, seeds {', '.join(str(s) for s in result['seeds'])}; probes every "
        f"{config.probe_every} task steps, {config.probe_episodes} evaluation episodes and "
        f"{config.probe_states} probe states each; {result['intervals']} intervals with learning. "
        f"A fall: the evaluation mean drops by ≥ {result['drop']:.0f} within one interval "
        f"({result['counts']['falls']} falls, {result['counts']['rises']} rises of ≥ {result['drop']:.0f}, "
        f"{result['counts']['steady']} steady); a failed episode: return < {result['failed_return']:.0f}.",
        "",
        "| quantity over the interval | Spearman r with the change of the eval mean | mean in falls | mean in rises "
        "| mean in steady intervals |",
        "|---|---:|---:|---:|---:|",
    ]
    for feature, r in result["correlations"].items():
        lines.append(f"| `{feature}` | {_fmt(r, 2)} | {_fmt(means['falls'].get(feature), 4)} | "
                     f"{_fmt(means['rises'].get(feature), 4)} | {_fmt(means['steady'].get(feature), 4)} |")
    lines += ["", "| seed | best eval (step) | final eval | falls | starts failed at the end | "
              "starts failed in every probe of the second half |", "|---:|---:|---:|---:|---:|---:|"]
    for seed, s in result["seeds"].items():
        starts = s.get("starts", [])
        failed_end = sum(1 for st in starts if st["final_return"] < result["failed_return"])
        always = sum(1 for st in starts if st["failed_fraction_second_half"] == 1.0)
        lines.append(f"| {seed} | {s['best']:.1f} ({s['best_step']}) | {s['final']:.1f} | {s['falls']} | "
                     f"{failed_end} of {len(starts)} | {always} |")
    if any("angle_deg" in st for s in result["seeds"].values() for st in s.get("starts", [])):
        lines += ["", "Pendulum-v1 starts (θ = 0 upright, from the task's reset seeds): the mean |θ| and |θ̇| of the "
                  "starts that failed at the end against those that did not.", "",
                  "| seed | failed: mean abs θ (deg) | failed: mean abs θ̇ | solved: mean abs θ (deg) "
                  "| solved: mean abs θ̇ |", "|---:|---:|---:|---:|---:|"]
        for seed, s in result["seeds"].items():
            groups = {kind: [st for st in s.get("starts", []) if (st["final_return"] < result["failed_return"]) == kind]
                      for kind in (True, False)}

            def mean_of(items: list[dict], key: str) -> str:
                return f"{np.mean([abs(st[key]) for st in items]):.1f}" if items else "n/a"

            failed, solved = groups[True], groups[False]
            lines.append(f"| {seed} | {mean_of(failed, 'angle_deg')} | {mean_of(failed, 'angular_velocity')} | "
                         f"{mean_of(solved, 'angle_deg')} | {mean_of(solved, 'angular_velocity')} |")
    if result["falls"]:
        groups = sorted(k[len("drift/"):] for k in result["falls"][0] if k.startswith("drift/"))
        lines += ["", "Falls, one by one (`drift`: relative weight change of each group over the interval):", "",
                  "| seed | steps | eval before → after | newly failed / recovered starts | action change | "
                  + " | ".join(f"drift {g}" for g in groups) + " | TD out before → during |",
                  "|---:|---|---|---:|---:|" + "---:|" * len(groups) + "---|"]
        out = groups[-1] if "out" not in groups else "out"
        for f in result["falls"]:
            lines.append(
                f"| {f['seed']} | {f['start']}–{f['end']} | {f['eval_before']:.0f} → {f['eval_after']:.0f} | "
                f"{f['newly_failed']} / {f['recovered']} of {f['episodes']} | {_fmt(f.get('action_change'), 4)} | "
                + " | ".join(_fmt(f.get(f"drift/{g}"), 4) for g in groups)
                + f" | {_fmt(f.get(f'previous_td/{out}'))} → {_fmt(f.get(f'td/{out}'))} |")
    atomic_write_text(path, "\n".join(lines) + "\n")


def write_figure(per_seed: dict[int, list[dict[str, Any]]], config: FallbackConfig, path: Path) -> None:
    """``fallback.png``: per seed, the evaluation (mean and every start), weight drift and action change."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seeds = sorted(per_seed)
    figure, axes = plt.subplots(3, len(seeds), figsize=(4.5 * len(seeds), 9), squeeze=False, sharex="col")
    for column, seed in enumerate(seeds):
        rows = per_seed[seed]
        steps = np.array([r["step"] for r in rows])
        returns = np.array([r["eval_returns"] for r in rows])
        top, middle, bottom = axes[0, column], axes[1, column], axes[2, column]
        for start in range(returns.shape[1]):
            top.plot(steps, returns[:, start], color="0.75", linewidth=0.6)
        top.plot(steps, returns.mean(axis=1), color="C0", linewidth=2, label="mean")
        top.set_title(f"{config.variant if config.method == 'local' else config.method}, seed {seed}")
        top.set_ylabel("eval return (every start, mean)")
        for key in rows[0]:
            if key.startswith("drift/"):
                middle.plot(steps[1:], [r[key] for r in rows[1:]], label=key)
        middle.set_yscale("log")
        middle.set_ylabel("relative weight change")
        middle.legend(fontsize=7)
        bottom.plot(steps[1:], [r["action_change"] for r in rows[1:]], color="C3", label="output |Δμ|")
        for key in rows[0]:
            if key.startswith("hidden_change/"):
                bottom.plot(steps[1:], [r[key] for r in rows[1:]], label=key, linewidth=0.8)
        bottom.set_ylabel("mean |Δ voltage| on probe states")
        bottom.set_xlabel("task steps")
        bottom.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def report(config: FallbackConfig) -> dict[str, Any]:
    """Read every ``seed*/probes.csv`` under ``out`` and rewrite the analysis files."""
    out = Path(config.out)
    per_seed = {int(p.parent.name[4:]): read_probes(p) for p in sorted(out.glob("seed*/probes.csv"))}
    if not per_seed:
        raise FileNotFoundError(f"no seed*/probes.csv under {out}: train first (drop --report-only)")
    result = analyze(per_seed, config.drop, config.failed_return)
    for seed, rows in per_seed.items():
        task = json.loads((out / f"seed{seed}" / "config.json").read_text())["task"]
        observations = start_states(task, seed, len(rows[0]["eval_returns"]))
        result["seeds"][seed]["starts"] = starts_summary(rows, observations, config.failed_return)
    result["config"] = dataclasses.asdict(config) | {"out": str(Path(config.out).relative_to(REPO))
                                                     if Path(config.out).is_relative_to(REPO) else config.out,
                                                     "work": "(git-ignored)"}
    atomic_write_text(out / "fallback.json", json.dumps(result, indent=2))
    write_markdown(result, config, out / "fallback.md")
    write_figure(per_seed, config, out / "fallback.png")
    return result


# ------------------------------------------------------------------------------------ main
def parse_args(argv: list[str] | None = None) -> FallbackConfig:
    """Build a ``FallbackConfig`` from the command line (one flag per field, help from its docstring)."""
    from neuron_env.configs import field_docs

    docs = field_docs(FallbackConfig)
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    types: dict[str, Callable[[str], Any]] = {"steps": int, "learning_starts": int, "probe_every": int,
                                              "probe_episodes": int, "probe_states": int, "drop": float,
                                              "failed_return": float}
    for f in dataclasses.fields(FallbackConfig):
        flag = "--" + f.name.replace("_", "-")
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        if f.name == "seeds":
            parser.add_argument(flag, nargs="+", type=int, default=default, help=docs.get(f.name))
        elif f.name == "report_only":
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default, help=docs.get(f.name))
        else:
            parser.add_argument(flag, type=types.get(f.name, str), default=default, help=docs.get(f.name))
    config = FallbackConfig(**vars(parser.parse_args(argv)))
    variants = _load_sweep().VARIANTS
    if config.method not in ("local", "sb3-ddpg"):
        parser.error(f"--method {config.method!r}; use 'local' or 'sb3-ddpg'")
    if config.variant not in variants:
        parser.error(f"unknown variant {config.variant!r}; choose from {sorted(variants)}")
    if config.probe_every < 1 or config.probe_episodes < 1 or config.probe_states < 1:
        parser.error("--probe-every, --probe-episodes and --probe-states must be >= 1")
    return config


def main(config: FallbackConfig | list[str] | None = None) -> dict[str, Any]:
    """Train the instrumented seeds (unless ``report_only``) and write the analysis; returns it."""
    if not isinstance(config, FallbackConfig):
        config = parse_args(config)
    Path(config.out).mkdir(parents=True, exist_ok=True)
    if not config.report_only:
        for i, seed in enumerate(config.seeds, 1):
            name = config.variant if config.method == "local" else config.method
            print(f"[{i}/{len(config.seeds)}] {name} seed {seed} ...", flush=True)
            outcome = run_sb3_seed(config, seed) if config.method == "sb3-ddpg" else run_seed(config, seed)
            rows = read_probes(Path(config.out) / f"seed{seed}" / "probes.csv")
            print(f"[{i}/{len(config.seeds)}] {name} seed {seed}: {outcome}; best probe eval "
                  f"{max(r['eval_mean'] for r in rows):.1f}, final {rows[-1]['eval_mean']:.1f}", flush=True)
    result = report(config)
    print(f"{result['intervals']} intervals, {result['counts']['falls']} falls of >= {config.drop:.0f}; "
          f"wrote {Path(config.out) / 'fallback.md'}")
    for feature, r in result["correlations"].items():
        print(f"  Spearman r(change of eval mean, {feature}) = {_fmt(r, 2)}")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
