"""``LocalDDPG``: every neuron of a network learns at once, locally, without backpropagation.

Each non-input neuron ``n`` is a deterministic-policy-gradient agent of its own environment
``E^n`` (see ``neuron_env.neuron_v0``): its actor is its own row of the network,
``μ^n(v) = σ(K^n v + b^n)``, and it has its own critic ``Q^n`` (see
``neuron_env.agents.critics`` for the four kinds). One ``LocalDDPG.update`` trains
every neuron once, as a handful of matrix products per group (layer), under
``torch.no_grad()``: no error is ever propagated from one neuron to another, and no optimizer
state is shared across neurons.

Quick start::

    from neuron_env import NeuronVecEnv, Topology
    from neuron_env.agents import LocalDDPG

    topology = Topology.mlp(3, [64, 64], 1)
    learner = LocalDDPG(topology)                    # LocalDDPGConfig's defaults
    learner = LocalDDPG(topology, critic="linear")   # any field of LocalDDPGConfig overrides them
    env = NeuronVecEnv("Pendulum-v1", topology, validate=False)
    # ... or let the trainer drive it: neuron_env.agents.train(TrainConfig(...))

Parameters
----------
The actor of a group is one tensor ``[S, P + 1]``: the group's incoming weight blocks side by
side (in projection order, matching ``topology.presynaptic_index``) and its bias as the last
column. ``LocalDDPG.weights`` exposes them as ``NetworkWeights`` views, so
``neuron_env.network_actions`` and ``neuron_env.NetworkPolicy`` run the learned
network directly. Masked connections stay exactly zero. Critic parameters are stacked per
group with a leading neuron axis. Target copies of both follow by Polyak averaging with ``τ``.

Critic input (``critic_context``)
---------------------------------
``"presynaptic"``
    the neuron's observation in ``E^n``: its presynaptic voltages (the default).
``"task"``
    the presynaptic voltages followed by the input neurons' voltages (the encoded task
    observation) that are not presynaptic already.
``"observation"``
    the input neurons' voltages only.
``"all"``
    every voltage (``per_tick``); in ``settled`` mode, every voltage that has settled when the
    neuron acts (the input group and the groups of lower level), since the neuron's own and
    downstream voltages would reveal its action.

Learning granularity
--------------------
``"per_tick"`` (any topology)
    the literal ``E^n``: one transition per tick, ``(v_τ, a_τ, r_τ, v_{τ+1}, done)``, reward on
    the ticks where the task steps.
``"settled"`` (acyclic, leak-free topologies at ``delay = depth``)
    one transition per task step. A group of level ``L`` acts on tick ``L`` of the task step
    (the others hold their voltage), so the task action is one forward pass with independent
    per-neuron noise. The transition stores the settled voltages ``v_t`` and actions; the next
    state is the next observation, whose settled voltages ``v_{t+1}`` are recomputed at update
    time by a forward pass of the *target* network (so ``μ^{n'}(v_{t+1})`` is exactly what the
    target network would output there).

Default: ``settled`` for acyclic leak-free topologies, ``per_tick`` otherwise.

In ``settled`` mode a replayed transition is learned on with its voltages as acted
(``replay_voltages="stored"``, the default here) or with its stored observation settled again
by the current network (``"current"``; see ``neuron_env.agents.off_policy``).

Asynchronous clock (``--clock async``)
--------------------------------------
``ddpg`` is the learner that trains under the asynchronous clock, in ``per_tick`` mode (pass
``--granularity per_tick`` on an acyclic, leak-free network, whose default is ``settled``: a
settled task step is one forward pass through neurons that all fire). On each tick an agent that
does not fire keeps its voltage (``λ v`` in a leaky group) and its action is ignored. Its
transition is stored with the action that had exactly that effect in ``E^n``: its voltage held
(a drive of 0 in a leaky group), never the action it proposed: in ``E^n`` an action is what sets
the neuron's next voltage. The critic so learns only on what happened, no transition
is dropped, and the actor step, which reads states and the critic's slope, needs no mask.
``firing_rate=1`` stores every action as given: the run equals the sync clock's bit for bit.

Update order (per group, every kind): TD errors with the target critic and target actor ->
one critic step -> one actor step ``K^n += η_A mean_i ∂Q^n/∂a σ'(K^n v_i + b^n) [v_i, 1]``
with ``∂Q^n/∂a`` from the *updated* critic at ``(x_i, μ^n(v_i))`` -> Polyak targets.

The rule is this module's ``update``; the network, replay, noise and targets are the shared core
(``neuron_env.agents.off_policy``), the critic kinds ``neuron_env.agents.critics`` and the step
rules ``neuron_env.agents.optim``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from neuron_env.agents.off_policy import OffPolicyConfig, OffPolicyNetwork
from neuron_env.agents.optim import params_sum
from neuron_env.agents.replay import Batch
from neuron_env.agents.tensors import GroupBatch, activation_derivative, one_minus, scalar

from neuron_env.dynamics import activate
from neuron_env.topology import NetworkWeights, Topology


@dataclass
class LocalDDPGConfig(OffPolicyConfig):
    """Options of ``LocalDDPG`` (``neuron-env train --learner ddpg``): ``OffPolicyConfig``'s defaults.

    Every non-input neuron has its own critic (an ``mlp`` sub-critic on the ``task`` context by
    default), explores with its own Gaussian noise and steps its actor by plain SGD.
    """


class LocalDDPG(OffPolicyNetwork):
    """Per-neuron DDPG with local critics, all neurons batched per group.

    Args:
        topology: The network.
        config: Its options (``LocalDDPGConfig``: the one set of defaults); ``None``: the defaults.
        device: Torch device of parameters, replay buffer and noise.
        seed: Seed of the initial weights (when ``weights`` is ``None``), the critics' init, the
            noise and the replay sampling.
        weights: Initial network weights; ``None`` draws ``NetworkWeights.init(topology, seed)``.
        dtype: Floating dtype of every tensor (float64 for exact tests).
        **options: ``LocalDDPGConfig`` fields overriding ``config``'s (``critic="linear"``, …).

    Options worth knowing (all in ``LocalDDPGConfig``): ``critic`` — ``"linear"`` (the draft's
    rule), ``"compatible"`` (COPDAC-Q), ``"bilinear"`` or ``"mlp"``; ``lr_actor_hidden`` — ``0``
    freezes the hidden groups (the floor control, ``freeze_hidden``); ``actor_max_norm`` — a cap on
    each neuron's input-weight norm after every actor step (it bounds the several-fold weight
    growth of a run; on Pendulum-v1 it did not raise the score, ``docs/results/sample-efficiency``
    Phase H); ``policy_delay`` — TD3's delayed policy updates (the actor and the targets move on
    every ``policy_delay``-th update); ``noise_scale_hidden`` — larger hidden noise identifies the
    hidden neurons' slopes better (E2), at the cost of noisier inputs downstream.

    Raises:
        LearnerConfigError: On an unknown option or ``settled`` on a cyclic or leaky topology.
    """

    name = "ddpg"
    config_class = LocalDDPGConfig
    #: Per tick it learns on any network (``agents.capabilities``); under the async clock a silent neuron's
    #: transition is stored with the action that had its effect (``OffPolicyNetwork.store``): per_tick only.
    topologies = ("acyclic", "recurrent", "leaky")
    clocks = ("sync", "async")

    def _build(self, topology: Topology, *, device: str | torch.device, seed: int, weights: NetworkWeights | None,
               dtype: torch.dtype, **settings: Any) -> None:
        self._build_off_policy(topology, device=device, seed=seed, weights=weights, dtype=dtype, critic_groups=None,
                               **settings)

    # ------------------------------------------------------------------ learning
    def group_batches(self, batch: Batch, smooth: bool = True) -> list[GroupBatch]:
        """Split a replay batch into what each group's update needs (current parameters).

        ``smooth=False`` leaves the target actions unsmoothed (and the generator untouched): for reading slopes.
        """
        v = batch.voltages
        settled = self.granularity == "settled"
        v_next = self.settle(batch.next_voltages, target=True) if settled else batch.next_voltages
        not_done = one_minus(batch.terminated)
        result = []
        for i, lay in enumerate(self.layouts):
            pre1 = self._pre1(v, lay)
            potential = pre1 @ self._actor_views(self.actor, i)[2]
            mu = activate(potential, lay.activation)
            # settled: the target network's settled voltages are its actions μ^{n'}(v_{i+1}) already
            a_next = v_next[:, lay.neuron_slice] if settled else self._group_output(v_next, i, self.target_actor)
            if smooth:  # TD3's target smoothing, output groups only (``target_noise``)
                a_next = self._target_action(a_next, i)
            result.append(GroupBatch(
                x=v[:, lay.context], a=batch.actions[:, lay.agent_slice], reward=batch.rewards, not_done=not_done,
                x_next=v_next[:, lay.context], a_next=a_next,
                pre1=pre1, mu=mu, dmu=activation_derivative(potential, mu, lay.activation), mask1=lay.mask1,
            ))
        return result

    def action_slopes(self, voltages: torch.Tensor) -> list[torch.Tensor]:
        """Each group's ``∂Q^n/∂a`` ``[B, S]`` at ``μ^n`` on settled ``voltages`` (its actor step's slope)."""
        with torch.no_grad():
            zeros = voltages.new_zeros(voltages.shape[0])
            batch = Batch(voltages, voltages[:, self.agent_neuron_index], zeros, voltages, zeros)
            return [self._kind.action_gradient(params, gb)
                    for params, gb in zip(self.critic, self.group_batches(batch, smooth=False), strict=True)]

    def update(self, batch: Batch | None = None, check_finite: bool = True) -> dict[str, torch.Tensor]:
        """Train every neuron once on one replay batch.

        Args:
            batch: The transitions to learn from; ``None`` samples ``batch_size`` from the buffer.
            check_finite: Raise ``DivergenceError`` if a TD error or parameter is not finite
                (one device synchronisation per update; tested on sums, so a value is caught
                when it or its group's sum is NaN or infinite).

        Returns:
            ``{"td_error": mean |D| over neurons and batch, "td_error/<group>": per group,
            "q_slope": mean |∂Q/∂a|}`` as 0-d tensors on the device.

        Raises:
            DivergenceError: Naming the group, when ``check_finite`` and a value is NaN or inf.
        """
        with torch.no_grad():
            batch = self._batch_or_sample(batch)
            stats: dict[str, torch.Tensor] = {}
            td_means, slopes = [], []
            finite = []
            actor_turn = self.num_updates % self.policy_delay == 0
            for i, gb in enumerate(self.group_batches(batch)):
                params, target = self.critic[i], self.target_critic[i]
                td, dq_da = self._kind.update(params, target, self.optimizer_state[i], gb, self.gamma, self.lr_critic)
                if self.actor_lrs[i] != 0.0 and actor_turn:  # else frozen, or a delayed actor update
                    self._step_actor(i, gb, dq_da)
                td_abs = td.abs().mean()
                stats[f"td_error/{self.layouts[i].name}"] = td_abs
                td_means.append(td_abs * self.layouts[i].size)
                slopes.append(dq_da.abs().mean() * self.layouts[i].size)
                if check_finite:  # a sum is NaN/inf iff an element is (or the sum overflows): one pass each
                    finite += [td.sum(), self.actor[i].sum(), params_sum(params)]
            if actor_turn:  # TD3 moves the targets with the actor
                self._move_targets()
            self.num_updates += 1
            agents = scalar(float(self.topology.num_agents), td_means[0])
            stats["td_error"] = torch.stack(td_means).sum() / agents
            stats["q_slope"] = torch.stack(slopes).sum() / agents
            if check_finite:
                self._raise_if_not_finite_sums(finite, 3)
            return stats

    def __repr__(self) -> str:
        return (f"LocalDDPG({self.topology!r}, critic={self.critic_kind!r}, context={self.critic_context!r}, "
                f"granularity={self.granularity!r}, device={self.device})")
