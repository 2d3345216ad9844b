"""E2 ``gradient-agreement``: does each neuron's local policy gradient point where backprop's does?

The draft's Theorem 2.2.2 says that a neuron ``n`` that follows the gradient of its *own* critic,
``∇_{K^n} Q^{μ^n}``, follows the ``n``-th row of the network's policy gradient ``∇_K Q^μ``. This
experiment measures how far that holds for learned critics: for a trained actor with a trained
global critic ``Q^μ``, it trains a local critic for every neuron and compares, per neuron, the
two gradients with respect to the neuron's incoming weights and bias ``K^n`` (a row of
``[K, b]``).

What it does
------------
1. Trains Stable-Baselines3 DDPG on the task with the local run's network (default Pendulum-v1,
   hidden 64 64 tanh, all of the baseline's outputs in ``OUT/ddpg``). Its critic
   (``model.critic``) is ``Q^μ``.
2. Loads the trained actor into a ``agents.LocalDDPG`` (``settled`` granularity,
   ``weights=`` from ``Topology.from_module(model.actor.mu)``) with the actor frozen
   (``lr_actor=0``), one learner per critic kind in ``critics`` (default ``mlp`` and ``linear``).
3. Fills its replay buffer with network transitions and trains the local critics of all neurons
   at once (``local_updates`` calls of ``LocalDDPG.update``). Two data sources (``data``):

   ``sb3-replay`` (default)
       DDPG's own replay buffer ``(obs, action, reward, next_obs, done)``, converted into
       voltages by a forward pass of the frozen actor (``LocalDDPG.settle``); the output
       neurons' actions are the replay's (noisy) actions, the hidden neurons' actions are the
       actor's activations. Caveat: a hidden neuron's action is then a deterministic function of
       its input, so its critic never sees the action vary on its own and ``∂Q^n/∂a`` is not
       identified by the data (only the output neurons explored).
   ``neuron-noise``
       Fresh episodes of the frozen network with LocalDDPG's independent per-neuron Gaussian
       noise (``noise_scale``), collected with ``LocalDDPG.act`` level by level, as the local
       trainer explores: every neuron's action varies on its own, and the task reacts to it.

   Transitions whose replay slot is held out (``holdout_fraction``) are never used for training.
4. On the held-out states ``s`` (the same for every critic kind and data source), per neuron:

   * local gradient ``g_loc = mean_s ∂Q^n/∂a (x, μ^n(v)) · σ'(K^n v) [v, 1]``: exactly the
     direction of LocalDDPG's actor step, from the neuron's own critic;
   * global gradient ``g_glob = ∇_{K^n} mean_s Q^μ(s, μ(s))``: the ``n``-th row of the weight and
     bias gradients of the actor's layer, by autograd through the actor and the global critic
     (measurement only; nothing is trained with it);
   * cosine similarity of ``g_loc`` and ``g_glob`` (``P + 1`` entries: presynaptic weights and
     bias), and sign agreement: the fraction of entries with the same sign, counted over the
     entries where ``g_glob`` is not exactly 0.

   Per state the two gradients are collinear (both are a slope times ``σ'(K^n v) [v, 1]``), so
   two further figures say where the averages come from: the *slope sign agreement*, the
   fraction of states where ``∂Q^n/∂a`` and ``∂Q^μ/∂a^n`` have the same sign, and the global
   gradient's *coherence* ``‖mean_s g_s‖ / mean_s ‖g_s‖``: a trained actor sits near a maximum of
   ``mean_s Q^μ(s, μ(s))``, its per-state gradients largely cancel and the averaged direction
   that the cosine compares against is a small residue (coherence near 0).

   Per layer: mean and median over neurons, and the cosine of the whole layer's gradient matrix.
   For reference, two independent random directions in ``d`` dimensions have cosine 0 ± 1/√d and
   sign agreement 0.5 (``d`` = 4 for the first hidden layer of Pendulum's 3-input network).

Outputs in ``OUT``: ``gradient_agreement.json`` (config, DDPG summary, per run — critic kind and
data source — per-layer and overall figures and the per-neuron values) and
``gradient_agreement.png`` (histograms of the per-neuron cosine and sign agreement by layer).

Command line (wired as ``neuron-env experiment gradient-agreement``)::

    neuron-env experiment gradient-agreement --task Pendulum-v1 --steps 5000 --out runs/e2
    neuron-env experiment gradient-agreement --critics mlp linear --data sb3-replay neuron-noise --out runs/e2-all

Python::

    from neuron_env.baselines.experiments.gradient_agreement import GradientAgreementConfig, run_gradient_agreement

    result = run_gradient_agreement(GradientAgreementConfig(steps=5000, out="runs/e2"))
    print(result["runs"][0]["overall"]["cosine_mean"])

One module: one experiment (configuration, data, measurement, plot and command line), runnable alone.
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from neuron_env.agents import LocalDDPG
from neuron_env.agents.critics import CRITIC_KINDS
from neuron_env.agents.feedback import FEEDBACK_KINDS, FeedbackDDPG
from neuron_env.agents.network import CRITIC_CONTEXTS
from neuron_env.agents.tensors import activation_derivative
from neuron_env.baselines.errors import BaselineConfigError, MissingDependencyError
from neuron_env.baselines.sb3_ddpg import ACTIVATION_MODULES, BaselineConfig, train_sb3
from torch import nn

from neuron_env.dynamics import activate
from neuron_env.run_output import atomic_write_json
from neuron_env.topology import Topology
from neuron_env.vector import make_task_factory

DATA_SOURCES: tuple[str, ...] = ("sb3-replay", "neuron-noise")


@dataclass
class GradientAgreementConfig:
    """Configuration of the gradient agreement experiment (E2)."""

    task: str = "Pendulum-v1"
    """Gymnasium id of the task."""
    steps: int = 5000
    """DDPG task steps."""
    hidden: tuple[int, ...] = (64, 64)
    """Hidden sizes of the DDPG actor and critic (the local run's network)."""
    activation: str = "tanh"
    """Hidden activation of actor and critic."""
    learning_starts: int = 1000
    """Random-action steps before DDPG starts learning."""
    noise_std: float | None = None
    """Override DDPG's exploration noise scale (default: the zoo's for the task)."""
    seed: int = 0
    """Seed of DDPG, of the local learners, of the held-out split and of the noisy episodes."""
    out: str = "runs/gradient-agreement"
    """Output directory (the DDPG run's files go to ``OUT/ddpg``)."""
    critics: tuple[str, ...] = ("mlp", "linear")
    """Local critic kinds to train and compare (one LocalDDPG each)."""
    feedback: tuple[str, ...] = ()
    """Feedback kinds to measure too (one ``FeedbackDDPG`` each, output critic ``critics[0]``; e.g. ``random``)."""
    data: tuple[str, ...] = ("sb3-replay",)
    """Data sources of the local critics: ``sb3-replay`` and/or ``neuron-noise`` (module docstring)."""
    critic_context: str = "presynaptic"
    """Local critic input (``LocalDDPG``'s ``critic_context``)."""
    critic_hidden: int = 32
    """Hidden units of the ``mlp`` sub-critics."""
    lr_critic: float = 1e-3
    """Local critic step size (SGD for the linear kinds, Adam for ``mlp``)."""
    local_updates: int = 5000
    """``LocalDDPG.update`` calls per learner (critics only: the actor is frozen)."""
    batch_size: int = 256
    """Transitions per local update."""
    noise_scale: float = 0.1
    """Per-neuron exploration noise of the ``neuron-noise`` episodes (voltage units)."""
    noise_steps: int | None = None
    """Task steps of ``neuron-noise`` episodes (default: ``steps``, the size of DDPG's replay)."""
    holdout_fraction: float = 0.1
    """Fraction of DDPG's replay slots held out of training; their states are the measurement states."""
    eval_samples: int = 2000
    """Held-out states the gradients are averaged over (at most)."""
    eval_every: int = 1000
    """DDPG evaluation period in task steps."""
    eval_episodes: int = 5
    """Deterministic episodes per DDPG evaluation."""
    threads: int | None = 1
    """``torch.set_num_threads`` for the run."""
    progress: bool = True
    """Show progress bars."""
    ddpg_extra: dict[str, Any] = field(default_factory=dict)
    """Further ``baselines.sb3_ddpg.BaselineConfig`` overrides for the DDPG run."""

    def validate(self) -> None:
        """Check the options.

        Raises:
            BaselineConfigError: Naming the bad option and the fix.
        """
        unknown = [k for k in self.critics if k not in CRITIC_KINDS]
        if unknown or not self.critics:
            raise BaselineConfigError(f"critics {list(self.critics)} must be one or more of {CRITIC_KINDS}")
        if any(kind not in FEEDBACK_KINDS for kind in self.feedback):
            raise BaselineConfigError(f"feedback {list(self.feedback)} must be kinds from {FEEDBACK_KINDS}")
        bad = [d for d in self.data if d not in DATA_SOURCES]
        if bad or not self.data:
            raise BaselineConfigError(f"data {list(self.data)} must be one or more of {DATA_SOURCES}")
        if self.critic_context not in CRITIC_CONTEXTS:
            raise BaselineConfigError(
                f"critic_context {self.critic_context!r} is unknown; choose from {CRITIC_CONTEXTS}")
        if self.activation not in ACTIVATION_MODULES:
            raise BaselineConfigError(
                f"activation {self.activation!r} is unknown; choose from {tuple(ACTIVATION_MODULES)}")
        if not 0.0 < self.holdout_fraction < 1.0:
            raise BaselineConfigError(f"holdout_fraction {self.holdout_fraction!r} must lie in (0, 1)")
        for name in ("steps", "batch_size", "eval_samples", "critic_hidden"):
            if getattr(self, name) < 1:
                raise BaselineConfigError(f"{name} {getattr(self, name)!r} must be >= 1")
        if self.local_updates < 0 or (self.noise_steps is not None and self.noise_steps < 1):
            raise BaselineConfigError("local_updates must be >= 0 and noise_steps >= 1")


# ---------------------------------------------------------------------------------------------- data
def replay_arrays(model: Any) -> dict[str, np.ndarray]:
    """DDPG's replay buffer as float32 arrays: obs, action (scaled to [-1, 1]), reward, next_obs, done.

    ``done`` is 1 only for true terminations (a time-limit truncation bootstraps, as in SB3).
    """
    buffer = model.replay_buffer
    size = buffer.buffer_size if buffer.full else buffer.pos
    done = buffer.dones[:size, 0] * (1.0 - buffer.timeouts[:size, 0])
    return {
        "obs": np.asarray(buffer.observations[:size, 0], dtype=np.float32).reshape(size, -1),
        "action": np.asarray(buffer.actions[:size, 0], dtype=np.float32).reshape(size, -1),
        "reward": np.asarray(buffer.rewards[:size, 0], dtype=np.float32),
        "next_obs": np.asarray(buffer.next_observations[:size, 0], dtype=np.float32).reshape(size, -1),
        "done": np.asarray(done, dtype=np.float32),
    }


def input_voltages(learner: LocalDDPG, obs: torch.Tensor) -> torch.Tensor:
    """``[B, N]`` voltages holding ``obs`` on the input neurons (identity encoder) and 0 elsewhere."""
    voltages = torch.zeros(obs.shape[0], learner.topology.num_neurons, dtype=learner.dtype, device=learner.device)
    voltages[:, learner.topology.group_slice[learner.topology.input_group.name]] = obs.to(learner.device,
                                                                                          learner.dtype)
    return voltages


def store_replay(learner: LocalDDPG, data: dict[str, np.ndarray], index: np.ndarray) -> int:
    """Store DDPG's transitions ``index`` as settled network transitions; returns how many.

    The voltages are the frozen actor's forward pass on the observation (``settle``) with the
    output neurons set to the replay's action, which is what they did; hidden neurons did what
    the actor computes.
    """
    topology = learner.topology
    out = topology.group_slice[topology.output_group.name]
    with torch.no_grad():
        for start in range(0, len(index), 4096):
            chunk = index[start:start + 4096]
            obs = torch.as_tensor(data["obs"][chunk])
            settled = learner.settle(input_voltages(learner, obs))
            settled[:, out] = torch.as_tensor(data["action"][chunk], dtype=learner.dtype)
            actions = settled[:, learner.agent_neuron_index]
            learner.store(settled, actions, torch.as_tensor(data["reward"][chunk]),
                          input_voltages(learner, torch.as_tensor(data["next_obs"][chunk])),
                          torch.as_tensor(data["done"][chunk]))
    return int(len(index))


def store_noisy_episodes(learner: LocalDDPG, task: str, steps: int, seed: int) -> int:
    """Run the frozen network with per-neuron noise for ``steps`` task steps, storing every transition.

    Each task step acts level by level (``LocalDDPG.act(level=...)``, independent Gaussian noise
    per neuron), decodes the output voltages affinely onto the task's action box and steps the
    task; truncation bootstraps, termination does not.

    Returns:
        The number of transitions stored.
    """
    env = make_task_factory(task)()
    low, high = env.action_space.low.astype(np.float64), env.action_space.high.astype(np.float64)
    topology = learner.topology
    out = topology.group_slice[topology.output_group.name]
    depth = learner.levels or 1
    obs, _ = env.reset(seed=seed)
    for _ in range(steps):
        voltages = input_voltages(learner, torch.as_tensor(np.asarray(obs, dtype=np.float32))[None])
        for level in range(1, depth + 1):
            actions = learner.act(voltages, explore=True, level=level)
            voltages[:, learner.agent_neuron_index] = actions
        output = voltages[0, out].double().numpy()
        action = np.clip(low + (output + 1.0) * 0.5 * (high - low), low, high).astype(env.action_space.dtype)
        next_obs, reward, terminated, truncated, _ = env.step(action)
        learner.store(voltages, actions, torch.tensor([float(reward)]),
                      input_voltages(learner, torch.as_tensor(np.asarray(next_obs, dtype=np.float32))[None]),
                      torch.tensor([float(terminated)]))
        obs = next_obs
        if terminated or truncated:
            obs, _ = env.reset()
            learner.reset_noise()
    env.close()
    return steps


# ---------------------------------------------------------------------------------------------- gradients
def local_gradients(learner: LocalDDPG, obs: torch.Tensor) -> dict[str, np.ndarray]:
    """Per layer ``[S, P + 1]``: ``mean_s ∂Q^n/∂a · σ'(K^n v) [v, 1]`` from each neuron's own critic.

    This is the direction of LocalDDPG's actor step (divided by ``lr_actor``), evaluated at the
    actor's own actions ``μ^n(v)`` on the settled voltages of ``obs``.
    """
    return {name: terms["gradient"] for name, terms in local_terms(learner, obs).items()}


def local_terms(learner: LocalDDPG, obs: torch.Tensor) -> dict[str, dict[str, np.ndarray]]:
    """Per layer: the local gradient ``[S, P + 1]`` and its per-state factors.

    The slope is whatever the learner's actor step uses (``learner.action_slopes``): a neuron's
    own critic's ``∂Q^n/∂a`` for ``LocalDDPG``, its neighbours' feedback for ``FeedbackDDPG``.

    Returns:
        ``{layer: {"gradient": [S, P + 1], "slope": [B, S], "dmu": σ'(K^n v) [B, S],
        "pre_norm": ‖[v, 1]‖ [B]}}``; a state's gradient is ``slope · dmu · [v, 1]``.
    """
    with torch.no_grad():
        settled = learner.settle(input_voltages(learner, obs))
        slopes = learner.action_slopes(settled)
        result = {}
        for i, lay in enumerate(learner.layouts):
            pre1 = learner._pre1(settled, lay)
            potential = pre1 @ learner.actor[i].T
            dmu = activation_derivative(potential, activate(potential, lay.activation), lay.activation)
            gradient = (slopes[i] * dmu).T @ pre1 / obs.shape[0]
            if lay.mask1 is not None:
                gradient = gradient * lay.mask1
            result[lay.name] = {
                "gradient": gradient.cpu().double().numpy(),
                "slope": slopes[i].cpu().double().numpy(),
                "dmu": dmu.cpu().double().numpy(),
                "pre_norm": pre1.norm(dim=1).cpu().double().numpy(),
            }
    return result


def global_slopes(model: Any, obs: torch.Tensor) -> dict[str, np.ndarray]:
    """Per layer ``[B, S]``: ``∂Q^μ(s, μ(s)) / ∂a^n``, the global critic's slope in each neuron's output.

    By autograd through the actor's later layers and the critic (measurement only).
    """
    topology, _ = Topology.from_module(model.actor.mu)
    names = [g.name for g in topology.agent_groups]
    modules = _flatten(model.actor.mu)
    obs = obs.to(model.device)
    with torch.enable_grad():
        outputs: list[torch.Tensor] = []
        h = obs
        for k, module in enumerate(modules):
            h = module(h)
            following = modules[k + 1] if k + 1 < len(modules) else None
            if following is None or isinstance(following, nn.Linear):
                h = h if h.requires_grad else h.requires_grad_(True)
                outputs.append(h)
        q = model.critic.q1_forward(obs, h).sum()
        grads = torch.autograd.grad(q, outputs)
    return {name: g.detach().cpu().double().numpy() for name, g in zip(names, grads, strict=True)}


def global_gradients(model: Any, obs: torch.Tensor) -> dict[str, np.ndarray]:
    """Per layer ``[S, P + 1]``: ``∇_[K, b] mean_s Q^μ(s, μ(s))`` by autograd through actor and critic.

    Measurement only: the gradients are taken with ``torch.autograd.grad`` and never stored on
    the parameters.
    """
    linears = [m for m in _flatten(model.actor.mu) if isinstance(m, nn.Linear)]
    topology, _ = Topology.from_module(model.actor.mu)
    names = [g.name for g in topology.agent_groups]
    params = [p for linear in linears for p in (linear.weight, linear.bias)]
    obs = obs.to(model.device)
    with torch.enable_grad():
        q = model.critic.q1_forward(obs, model.actor(obs)).mean()
        grads = torch.autograd.grad(q, params)
    result = {}
    for k, name in enumerate(names):
        weight, bias = grads[2 * k], grads[2 * k + 1]
        result[name] = torch.cat([weight, bias[:, None]], 1).detach().cpu().double().numpy()
    return result


def _flatten(module: nn.Module) -> list[nn.Module]:
    if isinstance(module, nn.Sequential):
        return [leaf for child in module for leaf in _flatten(child)]
    return [module]


def row_cosine(local: np.ndarray, global_: np.ndarray) -> np.ndarray:
    """Cosine similarity of matching rows (``[S, D]`` each); NaN where a row is zero."""
    norms = np.linalg.norm(local, axis=1) * np.linalg.norm(global_, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        cosine = (local * global_).sum(1) / norms
    return np.where(norms > 0, cosine, np.nan)


def sign_agreement(local: np.ndarray, global_: np.ndarray) -> np.ndarray:
    """Fraction of entries per row with the same sign, over entries where ``global_`` is not 0; NaN if none."""
    live = global_ != 0
    same = (np.sign(local) == np.sign(global_)) & live
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(live.sum(1) > 0, same.sum(1) / live.sum(1), np.nan)


def _stats(values: np.ndarray) -> dict[str, float]:
    finite = values[np.isfinite(values)]
    if len(finite) == 0:
        return {"mean": math.nan, "median": math.nan}
    return {"mean": float(finite.mean()), "median": float(np.median(finite))}


def layer_figures(local: np.ndarray, global_: np.ndarray, terms: dict[str, np.ndarray] | None = None,
                  global_slope: np.ndarray | None = None) -> dict[str, Any]:
    """Per-neuron agreement figures of one layer, their mean/median and the whole-layer cosine.

    Args:
        local: Local gradients ``[S, P + 1]``.
        global_: Global gradients ``[S, P + 1]``.
        terms: The local gradient's per-state factors (``local_terms``), for the per-state figures.
        global_slope: ``∂Q^μ/∂a^n`` per state ``[B, S]`` (``global_slopes``), likewise.
    """
    cosine = row_cosine(local, global_)
    sign = sign_agreement(local, global_)
    flat = float(row_cosine(local.reshape(1, -1), global_.reshape(1, -1))[0])
    figures: dict[str, Any] = {
        "neurons": int(local.shape[0]),
        "dimension": int(local.shape[1]),
        "cosine": [float(c) for c in cosine],
        "cosine_mean": _stats(cosine)["mean"],
        "cosine_median": _stats(cosine)["median"],
        "sign_agreement": [float(s) for s in sign],
        "sign_agreement_mean": _stats(sign)["mean"],
        "sign_agreement_median": _stats(sign)["median"],
        "layer_cosine": flat,
        "global_zero_fraction": float((global_ == 0).mean()),
        "local_norm_mean": float(np.linalg.norm(local, axis=1).mean()),
        "global_norm_mean": float(np.linalg.norm(global_, axis=1).mean()),
    }
    if terms is not None and global_slope is not None:
        live = global_slope != 0
        same = (np.sign(terms["slope"]) == np.sign(global_slope)) & live
        with np.errstate(invalid="ignore", divide="ignore"):
            slope_sign = np.where(live.sum(0) > 0, same.sum(0) / live.sum(0), np.nan)
            # ‖mean_s g_s‖ / mean_s ‖g_s‖ of the global gradient: near 0 when per-state gradients cancel
            per_state = np.abs(global_slope) * terms["dmu"] * terms["pre_norm"][:, None]
            coherence = np.linalg.norm(global_, axis=1) / per_state.mean(0)
        figures.update({
            "slope_sign_agreement": [float(x) for x in slope_sign],
            "slope_sign_agreement_mean": _stats(slope_sign)["mean"],
            "global_coherence": [float(x) for x in coherence],
            "global_coherence_mean": _stats(coherence)["mean"],
        })
    return figures


# ---------------------------------------------------------------------------------------------- run
def _train_local(config: GradientAgreementConfig, model: Any, critic: str, source: str,
                 data: dict[str, np.ndarray], train_index: np.ndarray,
                 feedback: str | None = None) -> tuple[LocalDDPG, dict[str, Any]]:
    topology, weights = Topology.from_module(model.actor.mu)
    transitions = len(train_index) if source == "sb3-replay" else int(config.noise_steps or config.steps)
    options: dict[str, Any] = {"feedback": feedback} if feedback is not None else {}
    learner = (FeedbackDDPG if feedback is not None else LocalDDPG)(
        topology, critic=critic, gamma=float(model.gamma), tau=float(model.tau), lr_critic=config.lr_critic,
        lr_actor=0.0, batch_size=config.batch_size, buffer_size=max(transitions, 1), noise_scale=config.noise_scale,
        seed=config.seed, critic_context=config.critic_context, granularity="settled",
        critic_hidden=config.critic_hidden, weights=weights, **options,
    )
    if source == "sb3-replay":
        stored = store_replay(learner, data, train_index)
    else:
        stored = store_noisy_episodes(learner, config.task, transitions, config.seed + 7919)
    from tqdm import tqdm

    td = []
    for _ in tqdm(range(config.local_updates), disable=not config.progress, desc=f"local {critic} ({source})",
                  unit="update", mininterval=1.0, dynamic_ncols=True):
        stats = learner.update()
        td.append(stats["td_error"])
    tail = [float(t) for t in td[-100:]]
    info = {"transitions": stored, "local_updates": config.local_updates,
            "td_error_last100": float(np.mean(tail)) if tail else math.nan}
    return learner, info


def run_gradient_agreement(config: GradientAgreementConfig) -> dict[str, Any]:
    """Run E2 end to end; write ``gradient_agreement.json`` and ``.png`` into ``config.out``.

    Returns:
        The dict written to the JSON file: ``config``, ``ddpg`` (the baseline's summary),
        ``held_out_samples``, ``runs`` (one per critic kind and data source, each with
        ``layers`` and ``overall``), ``wall_time_s``.

    Raises:
        BaselineConfigError: On an invalid option.
    """
    config.validate()
    start = time.perf_counter()
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    ddpg_config = BaselineConfig(
        algo="ddpg", task=config.task, hidden=tuple(config.hidden), activation=config.activation,
        steps=config.steps, seed=config.seed, out=str(out / "ddpg"), eval_every=config.eval_every,
        eval_episodes=config.eval_episodes, learning_starts=config.learning_starts, noise_std=config.noise_std,
        threads=config.threads, progress=config.progress, **config.ddpg_extra,
    )
    model, ddpg_summary = train_sb3(ddpg_config)
    model.critic.requires_grad_(False)
    data = replay_arrays(model)
    rng = np.random.default_rng(config.seed)
    holdout = rng.random(len(data["reward"])) < config.holdout_fraction
    held_out = np.flatnonzero(holdout)
    if len(held_out) > config.eval_samples:
        held_out = np.sort(rng.choice(held_out, size=config.eval_samples, replace=False))
    if len(held_out) == 0:
        raise BaselineConfigError("no held-out transitions: raise steps or holdout_fraction")
    train_index = np.flatnonzero(~holdout)
    obs = torch.as_tensor(data["obs"][held_out])
    global_grad = global_gradients(model, obs)
    global_slope = global_slopes(model, obs)
    runs = []
    kinds = [(critic, None) for critic in config.critics] + [(config.critics[0], kind) for kind in config.feedback]
    for source in config.data:
        for critic, feedback in kinds:
            learner, info = _train_local(config, model, critic, source, data, train_index, feedback)
            frozen = all(torch.equal(w, w0) for w, w0 in zip(
                learner.weights.blocks, Topology.from_module(model.actor.mu)[1].blocks, strict=True))
            terms = local_terms(learner, obs)
            layers = {name: layer_figures(terms[name]["gradient"], global_grad[name], terms[name], global_slope[name])
                      for name in global_grad}
            cosine = np.concatenate([np.asarray(f["cosine"], dtype=float) for f in layers.values()])
            sign = np.concatenate([np.asarray(f["sign_agreement"], dtype=float) for f in layers.values()])
            slope = np.concatenate([np.asarray(f["slope_sign_agreement"], dtype=float) for f in layers.values()])
            runs.append({
                "critic": critic if feedback is None else f"feedback-{feedback}", "data": source, **info,
                "actor_unchanged": bool(frozen), "layers": layers,
                "overall": {"neurons": int(len(cosine)), "cosine_mean": _stats(cosine)["mean"],
                            "cosine_median": _stats(cosine)["median"], "sign_agreement_mean": _stats(sign)["mean"],
                            "slope_sign_agreement_mean": _stats(slope)["mean"]},
            })
    result: dict[str, Any] = {
        "experiment": "gradient-agreement",
        "config": asdict(config),
        "ddpg": {k: v for k, v in ddpg_summary.items() if k != "config"},
        "held_out_samples": int(len(held_out)),
        "runs": runs,
        "wall_time_s": time.perf_counter() - start,
    }
    atomic_write_json(out / "gradient_agreement.json", result)
    title = (f"E2 gradient agreement: {config.task}, DDPG {config.steps} steps (final eval "
             f"{ddpg_summary['final_eval_return_mean']:.1f}), {config.local_updates} local critic updates,\n"
             f"{len(held_out)} held-out states")
    plot(out / "gradient_agreement.png", runs, title)
    return result


def plot(path: Path, runs: list[dict[str, Any]], title: str) -> None:
    """Histograms of per-neuron cosine (top) and sign agreement (bottom), one column per run, by layer."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise MissingDependencyError("the plot needs matplotlib: pip install 'neuron-env[baselines]'") from error
    fig, axes = plt.subplots(2, len(runs), figsize=(4.2 * len(runs), 6.4), squeeze=False)
    for column, run in enumerate(runs):
        for row, (key, low, xlabel) in enumerate((("cosine", -1.0, "cosine(local, global) per neuron"),
                                                  ("sign_agreement", 0.0, "sign agreement per neuron"))):
            ax = axes[row, column]
            bins = np.linspace(low, 1.0, 21)
            for k, (name, figures) in enumerate(run["layers"].items()):
                values = np.asarray(figures[key], dtype=float)
                values = values[np.isfinite(values)]
                ax.hist(values, bins=bins, alpha=0.55, color=f"C{k}",
                        label=f"{name} (mean {figures[key + '_mean']:.2f})")
            ax.axvline(0.0 if key == "cosine" else 0.5, color="grey", lw=0.8, ls="--")
            ax.set_xlabel(xlabel)
            ax.set_ylabel("neurons")
            ax.legend(fontsize=7)
            if row == 0:
                ax.set_title(f"{run['critic']} critic, {run['data']}", fontsize=9)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)


# ---------------------------------------------------------------------------------------------- command line
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the experiment's options to ``parser`` (``neuron-env experiment gradient-agreement``)."""
    from neuron_env.baselines.cli import add_ddpg_phase_arguments, positive_int

    defaults = GradientAgreementConfig()
    add_ddpg_phase_arguments(parser, defaults)
    parser.add_argument("--critics", nargs="+", choices=CRITIC_KINDS, default=list(defaults.critics),
                        help="local critic kinds (default: mlp linear)")
    parser.add_argument("--feedback", nargs="*", choices=FEEDBACK_KINDS, default=list(defaults.feedback),
                        help="feedback learner kinds to measure too, e.g. random weights (default: none)")
    parser.add_argument("--data", nargs="+", choices=DATA_SOURCES, default=list(defaults.data),
                        help="sb3-replay: DDPG's replay; neuron-noise: frozen network with per-neuron noise")
    parser.add_argument("--critic-context", choices=CRITIC_CONTEXTS, default=defaults.critic_context)
    parser.add_argument("--critic-hidden", type=positive_int, default=defaults.critic_hidden)
    parser.add_argument("--lr-critic", type=float, default=defaults.lr_critic)
    parser.add_argument("--local-updates", type=int, default=defaults.local_updates)
    parser.add_argument("--batch-size", type=positive_int, default=defaults.batch_size)
    parser.add_argument("--noise-scale", type=float, default=defaults.noise_scale,
                        help="per-neuron noise of the neuron-noise episodes")
    parser.add_argument("--noise-steps", type=positive_int, default=None,
                        help="task steps of neuron-noise episodes (default: --steps)")
    parser.add_argument("--holdout-fraction", type=float, default=defaults.holdout_fraction)
    parser.add_argument("--eval-samples", type=positive_int, default=defaults.eval_samples)
    parser.add_argument("--eval-every", type=positive_int, default=defaults.eval_every)
    parser.add_argument("--eval-episodes", type=positive_int, default=defaults.eval_episodes)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-progress", action="store_true")


def config_from_args(args: argparse.Namespace) -> GradientAgreementConfig:
    """The ``GradientAgreementConfig`` a parsed command line describes."""
    return GradientAgreementConfig(
        task=args.task, steps=args.steps, hidden=tuple(args.hidden), activation=args.activation,
        learning_starts=args.learning_starts, noise_std=args.noise_std, seed=args.seed, out=args.out,
        critics=tuple(args.critics), feedback=tuple(args.feedback), data=tuple(args.data),
        critic_context=args.critic_context, critic_hidden=args.critic_hidden, lr_critic=args.lr_critic,
        local_updates=args.local_updates,
        batch_size=args.batch_size, noise_scale=args.noise_scale, noise_steps=args.noise_steps,
        holdout_fraction=args.holdout_fraction, eval_samples=args.eval_samples, eval_every=args.eval_every,
        eval_episodes=args.eval_episodes, threads=args.threads, progress=not args.no_progress,
    )


def run_from_args(args: argparse.Namespace) -> int:
    """Run E2 from a parsed command line and print the per-layer table; returns the exit status."""
    config = config_from_args(args)
    result = run_gradient_agreement(config)
    print(f"E2 gradient-agreement on {config.task}: DDPG final eval {result['ddpg']['final_eval_return_mean']:.2f}, "
          f"{result['held_out_samples']} held-out states")
    print(f"  {'critic':<10} {'data':<13} {'layer':<6} {'neurons':>7} {'cos mean':>9} {'median':>7} "
          f"{'layer cos':>9} {'sign agr.':>9} {'slope agr.':>10} {'coherence':>9}")
    for run in result["runs"]:
        for name, f in run["layers"].items():
            print(f"  {run['critic']:<10} {run['data']:<13} {name:<6} {f['neurons']:>7} {f['cosine_mean']:>9.3f} "
                  f"{f['cosine_median']:>7.3f} {f['layer_cosine']:>9.3f} {f['sign_agreement_mean']:>9.3f} "
                  f"{f['slope_sign_agreement_mean']:>10.3f} {f['global_coherence_mean']:>9.3f}")
        o = run["overall"]
        print(f"  {run['critic']:<10} {run['data']:<13} {'all':<6} {o['neurons']:>7} {o['cosine_mean']:>9.3f} "
              f"{o['cosine_median']:>7.3f} {'':>9} {o['sign_agreement_mean']:>9.3f} "
              f"{o['slope_sign_agreement_mean']:>10.3f}")
    print("  (chance: cosine 0, sign agreements 0.5; coherence = |mean_s g_s| / mean_s |g_s| of the global "
          f"gradient, near 0 where the trained actor's per-state gradients cancel) -> {config.out}")
    return 0
