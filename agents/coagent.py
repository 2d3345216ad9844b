"""Coagents and Weight Maximization: every neuron is a REINFORCE unit with its own critic and traces.

Two on-policy learners, ``neuron-env train --learner coagent`` and ``--learner weight-max``.

The unit
--------
Every non-input neuron ``n`` is a stochastic (Gaussian) unit: on the tick where its group acts it
samples its next voltage ::

    a_n = clip(μ_n(v) + σ_n ε_n, low, high),   μ_n(v) = σ_act(K^n v + b^n),   ε_n ~ N(0, 1)

(``clip`` to the activation's range, as ``LocalDDPG`` clips its noisy actions; ``σ_n`` is
``noise_scale``, or ``noise_scale_hidden`` for hidden neurons). The clipping is part of the
policy: a clipped voltage is a *censored* Gaussian sample, whose log-likelihood is
``log Φ((μ − high)/σ)`` at the upper bound and ``log Φ((low − μ)/σ)`` at the lower bound
(Fujita and Maeda, "Clipped Action Policy Gradient", ICML 2018), so the score of the sampled
(stored, clipped) voltage is exact::

    ∂ log π_n / ∂μ = (a − μ)/σ²                        low < a < high
                   =  φ(z)/(σ Φ(z)),  z = (μ − high)/σ  a = high
                   = −φ(z)/(σ Φ(z)),  z = (low − μ)/σ   a = low
    ∇_{[K^n, b^n]} log π_n = ∂ log π_n/∂μ · σ_act'(K^n v + b^n) · [v_pre, 1]

with ``v_pre`` the presynaptic voltages of the *sampled* settled state (the voltages the
neuron actually saw, its upstream neighbours' noise included).

Coagent rule (``CoagentLearner``)
---------------------------------
Per-unit actor-critic with TD(λ) (Williams 1992's REINFORCE unit, trained as a coagent of a
policy gradient coagent network, Thomas 2011; Kostas, Nota and Thomas 2020). Every neuron has
its own linear critic ``V^n(x) = θ^n · [x, 1]`` of its context ``x`` (``critic_context``), its
own TD error from the global reward, and its own eligibility traces, per env copy::

    δ^n_t  = r_t + γ (1 − terminated_t) V^n(x_{t+1}) − V^n(x_t)
    e^n   ← γλ e^n + ∇ log π_n(a_t)           (actor trace, one per weight)
    z^n   ← γλ_V z^n + [x_t, 1]               (critic trace; identical for a group's neurons)
    K^n   += α_A  mean_copies δ^n_t e^n
    θ^n   += α_V  mean_copies δ^n_t z^n

``x_{t+1}`` is the context in the next state, whose voltages are settled from the next task
observation by the current (noise-free) network. Traces are zeroed after a step that ended
the copy's episode (terminated or truncated; a truncated step still bootstraps).

Weight Maximization (``WeightMaxLearner``)
------------------------------------------
Stephen Chung, "Learning by Competition of Self-Interested Reinforcement Learning Agents",
AAAI 2022 (arXiv:2010.09770); code https://github.com/stephen-chung-mh/weight_max, file
``weightmax.py`` (``Network.learn`` and ``eq_prop_layer.learn_trace``), driven by ``main.py``.
Output neurons learn as coagents (TD error of their own critic, as the code's output layer
learns from the TD error). A hidden neuron ``m`` has no critic: its learning signal is the
change of the squared L2 norm of its outgoing weights that its postsynaptic neighbours'
update made, per unit step size and per env copy::

    u^j_e   = (learning signal of j) · e^j_e           (the update postsynaptic neuron j asks for)
    R^m_e   = Σ_{j ∈ post(m)} ((K^j_m + α_j u^j_{e,m})² − (K^j_m)²) / α_j
            = Σ_j 2 K^j_m u^j_{e,m} + α_j (u^j_{e,m})²
    K^m    += α_A mean_copies R^m_e e^m_{(lagged)}

The code computes ``R = Σ_j 2 K^j_m u^j_m`` with ``K`` after the step; both are
``‖K_out(after)‖² − ‖K_out(before)‖²`` divided by the step size to first order, and equal it
exactly for one env copy and a plain SGD step (which the code's Adam is not).

Timing. In the paper's code every layer learns in one backward sweep of the same step: the
output's change reaches the layer below at once. Here every neuron steps at once and a
message travels one group per update: ``R^m`` read at update ``t`` was sent by the
postsynaptic group at update ``t − 1``. A hidden group ``d`` groups above the output (``d =``
longest path to an output group; the last hidden layer has ``d = 1``) therefore pairs the
reward it reads with its own trace of ``d`` updates ago (a local memory of its last ``d``
traces): its step is then the code's step for that transition, applied ``d`` updates late
(pipelined), with weights that moved meanwhile. (Pairing the delayed reward with the current
trace instead would add zero-mean noise only, and nothing at all with ``λ = 0``.) In a network
whose hidden group reaches outputs through paths of different lengths (skip connections), the
messages over the shorter paths meet a trace of the wrong age and carry noise, not signal.

Other differences from the code: its critic is one MLP over the task state trained by
backprop; here each output neuron has its own linear critic (local). The code updates with
Adam (``actor_optimizer="adam"``; the default here is plain SGD; either way the message is
computed from the requested update ``u``, as the code computes it from the raw update). The
code's units are Bernoulli/softmax; here Gaussian. For the first ``d`` updates a hidden group
has no message and does not move.

What is local
-------------
Neuron ``n`` reads its own weights, critic and traces, its presynaptic voltages (sampled state
and, for ``V^n(x_{t+1})``, the next settled state), the task observation when
``critic_context="task"``, the global reward, and (Weight Maximization, hidden neurons) one
number per env copy from its postsynaptic neighbours, sent on the previous update. No error
travels through the network.

Quick start::

    from neuron_env import Topology
    from neuron_env.agents.registry import make_learner

    learner = make_learner("weight-max", Topology.mlp(3, [64, 64], 1), {"noise_scale": 0.2})

One module: Weight Maximization is the coagent learner with another hidden reward (a subclass
here), so both rules, their traces and their message timing stay side by side.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch
from neuron_env.agents.errors import LearnerConfigError
from neuron_env.agents.learner import LearnerConfig
from neuron_env.agents.network import (
    GroupLayout,
    NetworkActor,
    as_index,
    build_layouts,
    check_checkpoint,
    check_shapes,
    require_settled,
)
from neuron_env.agents.optim import ACTOR_OPTIMIZERS, adam_step
from neuron_env.agents.tensors import activation_derivative

from neuron_env.dynamics import activate
from neuron_env.topology import NetworkWeights, Topology

COAGENT_CONTEXTS: tuple[str, ...] = ("presynaptic", "task")
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


@dataclass
class CoagentConfig(LearnerConfig):
    """Options of ``CoagentLearner`` (``neuron-env train --learner coagent``)."""

    gamma: float = 0.99
    """Discount per task step."""
    trace_decay: float = 0.9
    """λ of the actor's eligibility traces (decay ``γλ`` per step); the paper's code used 0.8-0.9."""
    trace_decay_critic: float | None = None
    """λ of the critics' TD(λ) traces; default ``trace_decay``."""
    lr_actor: float = 1e-5
    """Actor step size α_A (of ``δ e``: suits per-step rewards of order 1-10, e.g. Pendulum-v1)."""
    lr_actor_hidden: float | None = None
    """Actor step size of the hidden groups; default ``lr_actor`` (0 freezes them)."""
    lr_critic: float = 1e-4
    """Step size α_V of each neuron's linear critic (TD(λ), plain SGD)."""
    actor_optimizer: str = "sgd"
    """Actor step rule: ``sgd`` (``K += α_A mean δ e``) or ``adam`` (per-weight Adam on it, still local)."""
    noise_scale: float = 0.2
    """Standard deviation σ of every neuron's Gaussian exploration, in voltage units (> 0)."""
    noise_scale_hidden: float | None = None
    """σ of the hidden neurons; default ``noise_scale`` (> 0)."""
    critic_context: str = "task"
    """Critic input: ``presynaptic`` or ``task`` (presynaptic voltages + task observation)."""


@dataclass
class WeightMaxConfig(CoagentConfig):
    """Options of ``WeightMaxLearner`` (``--learner weight-max``): the coagent options.

    ``lr_critic``, ``trace_decay_critic`` and ``critic_context`` concern the output neurons'
    critics only: hidden neurons learn from their outgoing weights' change, without a critic.
    """


def check_coagent_options(*, critic_context: str, actor_optimizer: str, gamma: float, trace_decay: float,
                          trace_decay_critic: float | None, lr_actor: float, lr_actor_hidden: float | None,
                          lr_critic: float, noise_scale: float, noise_scale_hidden: float | None) -> None:
    """Raise ``LearnerConfigError`` naming the first invalid coagent option, its value and the fix."""
    if critic_context not in COAGENT_CONTEXTS:
        raise LearnerConfigError(f"critic_context={critic_context!r} is unknown; choose one of {COAGENT_CONTEXTS}")
    if actor_optimizer not in ACTOR_OPTIMIZERS:
        raise LearnerConfigError(
            f"actor_optimizer={actor_optimizer!r} is unknown; choose one of {ACTOR_OPTIMIZERS}")
    unit = (("gamma", gamma), ("trace_decay", trace_decay), ("trace_decay_critic", trace_decay_critic))
    for option, value in unit:
        if value is not None and not 0.0 <= value <= 1.0:
            raise LearnerConfigError(f"{option}={value!r} must lie in [0, 1]")
    for option, value in (("lr_actor", lr_actor), ("lr_actor_hidden", lr_actor_hidden), ("lr_critic", lr_critic)):
        if value is not None and not (math.isfinite(value) and value >= 0):
            raise LearnerConfigError(f"{option}={value!r} must be a finite number >= 0")
    for option, value in (("noise_scale", noise_scale), ("noise_scale_hidden", noise_scale_hidden)):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise LearnerConfigError(
                f"{option}={value!r} must be a finite number > 0: a REINFORCE unit learns from its own "
                "noise (freeze a group with lr_actor_hidden=0 instead)")


@dataclass
class _UpdateSums:
    """Size-weighted statistics of one update, summed over groups at its end."""

    td: list[torch.Tensor] = field(default_factory=list)
    value: list[torch.Tensor] = field(default_factory=list)
    score: list[torch.Tensor] = field(default_factory=list)
    reward: list[torch.Tensor] = field(default_factory=list)
    critic_neurons: int = 0
    hidden_neurons: int = 0


class PendingStep(NamedTuple):
    """One stored task step of ``E`` env copies, waiting for its update."""

    voltages: torch.Tensor
    """``[E, N]`` settled voltages (agents' columns = their sampled actions)."""
    rewards: torch.Tensor
    """``[E]`` task rewards."""
    next_inputs: torch.Tensor
    """``[E, num_inputs]`` input voltages of the next state."""
    terminated: torch.Tensor
    """``[E]`` bool."""
    done: torch.Tensor
    """``[E]`` bool, terminated or truncated (traces reset after this step)."""


class CoagentLearner(NetworkActor):
    """Per-neuron REINFORCE actor-critic with TD(λ) traces (coagents), all neurons batched per group.

    See the module docstring for the rule. On-policy and online: ``store`` queues one task step,
    ``ready`` is true while one is queued, ``update`` learns from the oldest one (one step per
    neuron, averaged over the env copies).

    Args:
        topology: The network (acyclic, leak-free: acting is one forward pass per task step).
        config: Its options (``CoagentConfig``: the one set of defaults); ``None``: the defaults.
        device: Torch device of every tensor.
        seed: Seed of the initial weights (when ``weights`` is ``None``) and of the learner's
            random stream.
        weights: Initial network weights; ``None`` draws ``NetworkWeights.init(topology, seed)``.
        dtype: Floating dtype (float64 for exact tests).
        **options: ``CoagentConfig`` fields overriding ``config``'s: ``gamma``, ``trace_decay``, ``lr_actor``,
            ``noise_scale``, ``critic_context``, ….

    Raises:
        LearnerConfigError: On an invalid option or a cyclic or leaky topology.
    """

    name = "coagent"
    #: One settled forward pass per task step: acyclic, leak-free networks on the sync clock (``agents.capabilities``).
    topologies = ("acyclic",)
    clocks = ("sync",)
    divergence_advice = "lower lr_actor/lr_critic or noise_scale"
    config_class: type[CoagentConfig] = CoagentConfig
    off_policy = False
    #: Whether hidden neurons learn from their outgoing weights' change (Weight Maximization).
    weight_max = False

    def _build(
        self,
        topology: Topology,
        *,
        device: str | torch.device,
        gamma: float,
        trace_decay: float,
        trace_decay_critic: float | None,
        lr_actor: float,
        lr_actor_hidden: float | None,
        lr_critic: float,
        actor_optimizer: str,
        noise_scale: float,
        noise_scale_hidden: float | None,
        critic_context: str,
        seed: int,
        weights: NetworkWeights | None,
        dtype: torch.dtype,
    ) -> None:
        """Validate the options and define every piece of the learner's state.

        One place, one line each: longer than most functions here on purpose, so that the state a
        checkpoint must hold is read in one go.
        """
        require_settled(topology, self.name)
        check_coagent_options(critic_context=critic_context, actor_optimizer=actor_optimizer, gamma=gamma,
                              trace_decay=trace_decay, trace_decay_critic=trace_decay_critic, lr_actor=lr_actor,
                              lr_actor_hidden=lr_actor_hidden, lr_critic=lr_critic, noise_scale=noise_scale,
                              noise_scale_hidden=noise_scale_hidden)
        self.topology = topology
        self.device = torch.device(device)
        self.dtype = dtype
        self.granularity = "settled"
        self.gamma = float(gamma)
        self.trace_decay = float(trace_decay)
        self.trace_decay_critic = self.trace_decay if trace_decay_critic is None else float(trace_decay_critic)
        self.lr_actor = float(lr_actor)
        self.lr_actor_hidden = self.lr_actor if lr_actor_hidden is None else float(lr_actor_hidden)
        self.lr_critic = float(lr_critic)
        self.actor_optimizer = actor_optimizer
        self.noise_scale = float(noise_scale)
        self.noise_scale_hidden = self.noise_scale if noise_scale_hidden is None else float(noise_scale_hidden)
        self.critic_context = critic_context
        self.seed = int(seed)
        self.layouts: list[GroupLayout] = build_layouts(topology, critic_context, True, self.device, dtype)
        outputs = [topology.group[lay.name].role == "output" for lay in self.layouts]
        #: Per group: actor step size, noise σ, and whether it learns from a critic's TD error.
        self.actor_lrs = [self.lr_actor if out else self.lr_actor_hidden for out in outputs]
        self.noise_scales = [self.noise_scale if out else self.noise_scale_hidden for out in outputs]
        self.has_critic = [out or not self.weight_max for out in outputs]
        self._input = topology.group_slice[topology.input_group.name]
        self.agent_neuron_index = torch.as_tensor(topology.agent_neuron_index, device=self.device)
        self._agent_neurons = as_index(topology.agent_neuron_index, self.device)
        self._build_message_routes()
        self.generator = torch.Generator(device=self.device).manual_seed(seed)

        weights = (weights if weights is not None else NetworkWeights.init(topology, seed)).checked(topology)
        weights = weights.to(self.device, dtype)
        #: Actor tensor ``[S, P + 1]`` per group (blocks side by side, bias last).
        self.actor: list[torch.Tensor] = self.actor_tensors(self.layouts, weights)
        self.target_actor = self.actor  # on-policy: no target network
        #: Critic ``[S, C + 1]`` per group (context weights, bias last); ``None`` without a critic.
        self.critic: list[torch.Tensor | None] = [
            torch.zeros(lay.size, lay.context_dim + 1, device=self.device, dtype=dtype) if has else None
            for lay, has in zip(self.layouts, self.has_critic, strict=True)
        ]
        #: Per-group Adam moments of the actor (``actor_optimizer="adam"``; empty for SGD).
        self.actor_optimizer_state: list[dict[str, torch.Tensor]] = [{} for _ in self.layouts]
        self.num_updates = 0
        self.num_envs: int | None = None
        self.pending: list[PendingStep] = []
        self._reset_traces(None)

    def _build_message_routes(self) -> None:
        """Which groups send Weight Maximization messages to which, and each group's trace lag."""
        index = {lay.name: i for i, lay in enumerate(self.layouts)}
        #: Per group: ``(presynaptic agent group index, its columns in this group's actor)``.
        self.routes: list[list[tuple[int, slice]]] = []
        posts: list[list[int]] = [[] for _ in self.layouts]
        for i, lay in enumerate(self.layouts):
            route = []
            for p, columns in lay.projection_columns:
                source = self.topology.projections[p].source
                if source in index:
                    route.append((index[source], columns))
                    posts[index[source]].append(i)
            self.routes.append(route)
        lags: dict[int, int] = {}

        def lag(i: int) -> int:  # longest path (in groups) to an output group
            if i not in lags:
                lags[i] = 0 if not posts[i] else 1 + max(lag(j) for j in posts[i])
            return lags[i]

        #: Updates between a transition and the message it causes reaching each group (0 for
        #: outputs and coagents: they learn from the current TD error).
        self.lags = [lag(i) if self.weight_max and not self.has_critic[i] else 0 for i in range(len(self.layouts))]

    def _reset_traces(self, num_envs: int | None) -> None:
        """(Re)allocate zero traces, trace history and messages for ``num_envs`` copies."""
        self.num_envs = num_envs
        if num_envs is None:
            self.actor_trace: list[torch.Tensor] = []
            self.critic_trace: list[torch.Tensor | None] = []
            self.trace_history: list[torch.Tensor | None] = []
            self.messages: list[torch.Tensor | None] = []
            return
        zeros = lambda *shape: torch.zeros(*shape, device=self.device, dtype=self.dtype)  # noqa: E731
        self.actor_trace = [zeros(num_envs, lay.size, lay.pre_dim + 1) for lay in self.layouts]
        self.critic_trace = [zeros(num_envs, lay.context_dim + 1) if has else None
                             for lay, has in zip(self.layouts, self.has_critic, strict=True)]
        self.trace_history = [zeros(lag, num_envs, lay.size, lay.pre_dim + 1) if lag else None
                              for lay, lag in zip(self.layouts, self.lags, strict=True)]
        self.messages = [None if has else zeros(num_envs, lay.size)
                         for lay, has in zip(self.layouts, self.has_critic, strict=True)]

    # ------------------------------------------------------------------ acting
    def act(
        self, voltages: torch.Tensor, explore: bool = True, level: int | None = None, uniform: bool = False
    ) -> torch.Tensor:
        """Every agent's next voltage (see ``Learner.act``): ``clip(μ + σ ε)`` with ``explore``, else ``μ``.

        ``uniform`` is ignored: on-policy learners have no uniform warm-up.
        """
        return super().act(voltages, explore, level, uniform)

    def _group_action(self, voltages: torch.Tensor, index: int, explore: bool, uniform: bool) -> torch.Tensor:
        """``clip(μ + σ ε)`` of group ``index`` with ``explore``, else ``μ``."""
        out = self._group_output(voltages, index, self.actor)
        if explore:
            lay = self.layouts[index]
            noise = torch.randn(voltages.shape[0], lay.size, generator=self.generator, device=self.device,
                                dtype=self.dtype)
            out = out.add_(noise, alpha=self.noise_scales[index]).clamp_(lay.low, lay.high)
        return out

    def reset_noise(self, done: torch.Tensor | None = None) -> None:
        """Episodes ended: the noise is memoryless; traces of ended copies reset in ``update``.

        ``done=None`` (every episode restarts, e.g. a fresh env) zeroes every trace when no
        step is queued; with a ``done`` mask nothing happens here, since ``update`` resets the
        traces after the step that ended the episode (a reset here, before a queued step is
        learned, would cut that step's trace).
        """
        if done is None and not self.pending and self.num_envs is not None:
            for trace in self.actor_trace + self.critic_trace:
                if trace is not None:
                    trace.zero_()

    # ------------------------------------------------------------------ learning
    def store(self, voltages: torch.Tensor, actions: torch.Tensor, rewards: torch.Tensor,
              next_voltages: torch.Tensor, terminated: torch.Tensor,
              truncated: torch.Tensor | None = None) -> None:  # the Learner protocol's signature
        """Queue one task step of ``E`` copies for ``update``.

        Args:
            voltages: ``[E, N]`` settled voltages of the step (the agents' columns are set to ``actions``).
            actions: ``[E, num_agents]`` sampled voltages.
            rewards: ``[E]`` task rewards.
            next_voltages: ``[E, N]`` voltages after the task stepped (only the input columns are read).
            terminated: ``[E]`` bool; ``V(x_{t+1})`` is not bootstrapped.
            truncated: ``[E]`` bool or ``None``; bootstraps, but resets the traces as ``terminated`` does.

        Raises:
            LearnerConfigError: If ``E`` differs from the copies the traces were built for.
        """
        with torch.no_grad():
            num_envs = voltages.shape[0]
            if self.num_envs is None:
                self._reset_traces(num_envs)
            elif num_envs != self.num_envs:
                raise LearnerConfigError(
                    f"store() got {num_envs} env copies but the traces hold {self.num_envs}: an on-policy "
                    "learner follows the same copies throughout; build a new learner for another num_envs")
            settled = voltages.to(self.device, self.dtype).clone()
            settled[:, self._agent_neurons] = actions.to(self.device, self.dtype)
            terminated = terminated.to(self.device, torch.bool)
            done = terminated if truncated is None else terminated | truncated.to(self.device, torch.bool)
            self.pending.append(PendingStep(
                settled, rewards.to(self.device, self.dtype).reshape(num_envs),
                next_voltages[:, self._input].to(self.device, self.dtype).clone(), terminated.clone(), done.clone(),
            ))

    def ready(self) -> bool:
        """Whether a stored step waits for its update."""
        return bool(self.pending)

    @property
    def num_transitions(self) -> int:
        """Stored steps not learned yet."""
        return len(self.pending)

    def _score(self, i: int, pre1: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(∇ log π, μ)`` of group ``i``: ``[E, S, P + 1]`` (masked) and ``[E, S]``."""
        lay, sigma = self.layouts[i], self.noise_scales[i]
        potential = pre1 @ self.actor[i].T
        mu = activate(potential, lay.activation)
        dlogp = (actions - mu) / (sigma * sigma)
        # censored Gaussian at the clip bounds (module doc): d/dμ log Φ(z) = φ(z) / (σ Φ(z))
        if math.isfinite(lay.high):
            z = (mu - lay.high) / sigma
            ratio = torch.exp(-0.5 * z * z - _LOG_SQRT_2PI - torch.special.log_ndtr(z)) / sigma
            dlogp = torch.where(actions >= lay.high, ratio, dlogp)
        if math.isfinite(lay.low):
            z = (lay.low - mu) / sigma
            ratio = torch.exp(-0.5 * z * z - _LOG_SQRT_2PI - torch.special.log_ndtr(z)) / sigma
            dlogp = torch.where(actions <= lay.low, -ratio, dlogp)
        unit = dlogp * activation_derivative(potential, mu, lay.activation)
        score = unit[:, :, None] * pre1[:, None, :]
        if lay.mask1 is not None:
            score.mul_(lay.mask1)
        return score, mu

    def update(self, check_finite: bool = True) -> dict[str, torch.Tensor]:
        """Learn from the oldest stored step: one step of every neuron at once.

        Each group's signal (``_critic_signal``, ``_hidden_signal``) and step (``_step_group``) are methods; the
        loop over groups stays here with the step's shared tensors (a little over 60 lines).

        Args:
            check_finite: Raise ``DivergenceError`` if a TD error, message or parameter is not finite.

        Returns:
            ``{"td_error": mean |δ| over critic neurons and copies, "td_error/<group>",
            "value": mean V^n(x_t), "log_prob_grad": mean |∇ log π| per weight}``, plus for Weight
            Maximization ``"hidden_reward"`` (mean |R^m| of the hidden neurons) and
            ``"hidden_reward/<group>"``; 0-d tensors.

        Raises:
            LearnerConfigError: If no step is stored.
            DivergenceError: Naming the group, when ``check_finite`` and a value is NaN or inf.
        """
        if not self.pending:
            raise LearnerConfigError("no stored step: store() a task step before update()")
        with torch.no_grad():
            step = self.pending.pop(0)
            v = step.voltages
            # the next state's voltages, settled by the current network before anyone steps
            v_next = self.settle(step.next_inputs) if any(self.has_critic) else None
            not_terminated = (~step.terminated).to(self.dtype)
            keep = (~step.done).to(self.dtype)
            new_messages: list[torch.Tensor | None] = [
                None if m is None else torch.zeros_like(m) for m in self.messages]
            stats: dict[str, torch.Tensor] = {}
            sums = _UpdateSums()
            finite = []
            for i, lay in enumerate(self.layouts):
                pre1 = self._pre1(v, lay)
                score, _ = self._score(i, pre1, v[:, lay.neuron_slice])
                trace = self.actor_trace[i].mul_(self.gamma * self.trace_decay).add_(score)
                sums.score.append(score.abs().mean() * lay.size)
                if self.critic[i] is not None:
                    signal, paired = self._critic_signal(i, v, v_next, step.rewards, not_terminated, stats, sums), trace
                else:
                    signal, paired = self._hidden_signal(i, trace, stats, sums)
                self._step_group(i, signal[:, :, None] * paired, new_messages)  # u_e: each copy's step [E, S, P + 1]
                if check_finite:  # a sum is NaN/inf iff an element is (or it overflows): one pass each
                    critic = self.critic[i]
                    parts = [signal.sum(), self.actor[i].sum()]
                    parts.append(critic.sum() if critic is not None else signal.new_zeros(()))
                    finite.append(torch.stack(parts))
            # episodes that ended: the next step starts fresh traces
            for trace in self.actor_trace:
                trace.mul_(keep[:, None, None])
            for trace in self.critic_trace:
                if trace is not None:
                    trace.mul_(keep[:, None])
            self.messages = new_messages
            self.num_updates += 1
            if sums.critic_neurons:
                stats["td_error"] = torch.stack(sums.td).sum() / sums.critic_neurons
                stats["value"] = torch.stack(sums.value).sum() / sums.critic_neurons
            if sums.hidden_neurons:
                stats["hidden_reward"] = torch.stack(sums.reward).sum() / sums.hidden_neurons
            stats["log_prob_grad"] = torch.stack(sums.score).sum() / self.topology.num_agents
            if check_finite:
                self._raise_if_not_finite(torch.isfinite(torch.stack(finite)))
            return stats

    def _critic_signal(self, i: int, v: torch.Tensor, v_next: torch.Tensor | None, rewards: torch.Tensor,
                       not_terminated: torch.Tensor, stats: dict[str, torch.Tensor], sums: _UpdateSums) -> torch.Tensor:
        """Group ``i``'s TD error ``δ`` ``[E, S]`` (its learning signal) after one TD(λ) step of its critics."""
        lay, critic = self.layouts[i], self.critic[i]
        assert critic is not None and v_next is not None  # groups with a critic settle the next state
        x1 = self._context1(v, lay)
        value = x1 @ critic.T
        value_next = self._context1(v_next, lay) @ critic.T
        signal = torch.addcmul(rewards[:, None] - value, not_terminated[:, None], value_next, value=self.gamma)
        critic_trace = self.critic_trace[i]
        critic_trace.mul_(self.gamma * self.trace_decay_critic).add_(x1)  # type: ignore[union-attr]
        critic.add_(signal.T @ critic_trace, alpha=self.lr_critic / v.shape[0])
        td_abs = signal.abs().mean()
        stats[f"td_error/{lay.name}"] = td_abs
        sums.td.append(td_abs * lay.size)
        sums.value.append(value.mean() * lay.size)
        sums.critic_neurons += lay.size
        return signal

    def _hidden_signal(self, i: int, trace: torch.Tensor, stats: dict[str, torch.Tensor],
                       sums: _UpdateSums) -> tuple[torch.Tensor, torch.Tensor]:
        """Weight Maximization's hidden group ``i``: the message read, paired with its trace of ``lag`` updates ago."""
        lay = self.layouts[i]
        signal, history = self.messages[i], self.trace_history[i]
        paired = trace  # a hidden group without postsynaptic groups never gets a message
        if history is not None:
            slot = self.num_updates % self.lags[i]
            paired = history[slot].clone()
            history[slot].copy_(trace)
        reward_abs = signal.abs().mean()  # type: ignore[union-attr]
        stats[f"hidden_reward/{lay.name}"] = reward_abs
        sums.reward.append(reward_abs * lay.size)
        sums.hidden_neurons += lay.size
        return signal, paired  # type: ignore[return-value]

    def _step_group(self, i: int, request: torch.Tensor, new_messages: list[torch.Tensor | None]) -> None:
        """Group ``i``'s actor step ``mean_e u_e``; Weight Maximization first sends its weights' change upstream."""
        lr = self.actor_lrs[i]
        if self.weight_max:  # messages to presynaptic groups, from the weights before the step
            for source, columns in self.routes[i]:
                message = new_messages[source]
                if message is not None:
                    u = request[:, :, columns]
                    change = torch.einsum("esp,sp->ep", u, self.actor[i][:, columns]).mul_(2.0)
                    message.add_((u * u).sum(1), alpha=lr).add_(change)
        if lr != 0.0 and self.actor_optimizer == "adam":
            adam_step({"actor": self.actor[i]}, self.actor_optimizer_state[i], {"actor": request.mean(0).neg_()}, lr)
        elif lr != 0.0:
            self.actor[i].add_(request.mean(0), alpha=lr)

    def _context1(self, voltages: torch.Tensor, lay: GroupLayout) -> torch.Tensor:
        ones = torch.ones(voltages.shape[0], 1, device=voltages.device, dtype=voltages.dtype)
        return torch.cat([voltages[:, lay.context], ones], 1)

    # ------------------------------------------------------------------ persistence
    def state_dict(self, include_buffer: bool = True) -> dict[str, Any]:
        """Everything needed to continue learning exactly, as CPU tensors.

        Weights, critics, traces (actor, critic, Weight Maximization's trace history and
        messages), the random generator, counters and (with ``include_buffer``) the queued steps.
        """

        def cpu(tensors: list[torch.Tensor | None]) -> list[torch.Tensor | None]:
            return [None if t is None else t.detach().cpu().clone() for t in tensors]

        state: dict[str, Any] = {
            "learner": self.name,
            "groups": [lay.name for lay in self.layouts],
            "actor": cpu(self.actor),
            "critic": cpu(self.critic),
            "num_envs": self.num_envs,
            "actor_trace": cpu(self.actor_trace),
            "critic_trace": cpu(self.critic_trace),
            "trace_history": cpu(self.trace_history),
            "messages": cpu(self.messages),
            "actor_optimizer": [{k: v.cpu().clone() for k, v in p.items()} for p in self.actor_optimizer_state],
            "generator": self.generator.get_state(),
            "num_updates": self.num_updates,
        }
        if include_buffer:
            state["pending"] = [tuple(t.cpu().clone() for t in s) for s in self.pending]
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore ``state_dict`` (same learner, topology and options).

        Raises:
            CheckpointError: If the state belongs to another learner, topology or critic context.
        """
        check_checkpoint(state, self.name, {"groups": [lay.name for lay in self.layouts]})
        check_shapes(state, "actor", self.actor, self.layouts)  # type: ignore[arg-type]
        check_shapes(state, "critic", self.critic, self.layouts)

        def dev(tensors: list[torch.Tensor | None]) -> list[torch.Tensor | None]:
            return [None if t is None else t.to(self.device, self.dtype).clone() for t in tensors]

        self.actor = dev(state["actor"])  # type: ignore[assignment]
        self.target_actor = self.actor
        self.critic = dev(state["critic"])
        self._reset_traces(state["num_envs"])
        if state["num_envs"] is not None:
            self.actor_trace = dev(state["actor_trace"])  # type: ignore[assignment]
            self.critic_trace = dev(state["critic_trace"])
            self.trace_history = dev(state["trace_history"])
            self.messages = dev(state["messages"])
        self.actor_optimizer_state = [
            {k: v.to(self.device, v.dtype if k == "step" else self.dtype).clone() for k, v in p.items()}
            for p in state["actor_optimizer"]]
        self.generator.set_state(state["generator"])
        self.num_updates = int(state["num_updates"])
        if "pending" in state:
            self.pending = [PendingStep(
                v.to(self.device, self.dtype), r.to(self.device, self.dtype), n.to(self.device, self.dtype),
                t.to(self.device), d.to(self.device)) for v, r, n, t, d in state["pending"]]

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.topology!r}, context={self.critic_context!r}, "
                f"noise_scale={self.noise_scale}, device={self.device})")


class WeightMaxLearner(CoagentLearner):
    """Weight Maximization (Chung, AAAI 2022): coagent outputs, hidden neurons maximize their outgoing weights.

    Output neurons learn exactly as ``CoagentLearner``'s. A hidden neuron has no critic: its
    learning signal is the change of the squared norm of its outgoing weights made by its
    postsynaptic neighbours' update, read one update later and paired with its own trace of
    the matching age (module docstring). Same arguments as ``CoagentLearner``; ``lr_critic``,
    ``trace_decay_critic`` and ``critic_context`` concern the output neurons' critics only.
    """

    name = "weight-max"
    config_class = WeightMaxConfig
    #: One settled forward pass per task step: acyclic, leak-free networks on the sync clock (``agents.capabilities``).
    topologies = ("acyclic",)
    clocks = ("sync",)
    weight_max = True
