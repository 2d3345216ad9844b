"""``ESLearner``: evolution strategies / Augmented Random Search with shared-seed noise.

The parameters ``θ`` are the network's weights (every group's actor tensor ``[S, P + 1]``).
Exploration is in parameter space: each iteration draws ``num_directions`` (``D``) Gaussian
directions ``δ_k`` and runs one episode with each antithetic pair of perturbed networks
``θ + ν δ_k`` and ``θ − ν δ_k`` (``ν = es_noise``); the policy itself is deterministic. Once all
``2D`` returns are in, every neuron steps at once (ARS V1-t, Mania, Guy & Recht 2018)::

    rank the directions by max(R_k+, R_k−); keep the top b (b = top_directions)
    σ_R = std of the 2b returns kept (population std; 1 if it is 0)
    θ  ←  θ + α / (b σ_R) · Σ_{k ∈ top b} (R_k+ − R_k−) δ_k          (α = es_step)

What is local
-------------
Neuron ``n``'s slice of ``δ_k`` (its own row ``[P + 1]`` of its group's tensor) is a pure
function of the shared stream ``(seed, iteration, k, group, row, column)``: every neuron
regenerates its own slice, so no weight noise is ever communicated (the common random numbers
of Salimans et al. 2017, whose workers share seeds and exchange only returns). Neuron ``n``'s
update reads only its own slice of ``δ``, its own parameters and the ``2D`` episode returns
(the global reward, summed per episode; the ranking and ``σ_R`` are functions of those
scalars that every neuron computes alike). Acting is the network's forward pass with each
neuron using its own (perturbed) weights. There is no backward pass of any kind.

The noise stream
----------------
``δ_k[g][s, p]`` is a standard normal from the Box–Muller transform of two uniforms, each the
top 53 bits of ``splitmix64(key + j · 0x9E3779B97F4A7C15)`` with ``j = 2 (s (P + 1) + p) + 1``
and ``+ 2``, where ``key`` chains ``splitmix64`` over ``(seed, iteration, k, group index)``
(``shared_normal``). Being elementwise, one neuron's slice is bitwise the same whether it is
generated alone or with the whole network. Masked connections get ``δ = 0`` (they stay zero).

Env copies and iterations
-------------------------
With ``E`` env copies (``store``'s batch), the ``2D`` perturbations of an iteration are slots
``j = 0 … 2D − 1`` (direction ``k = j // 2``, sign ``+`` for even ``j``), handed out in order:
copy ``e`` starts on the next free slot; when its episode ends (``terminated | truncated`` in
``store``), its return is recorded for its slot and it takes the next free slot. A copy that
finds no free slot runs the mean ``θ`` (its return is not used) until its next episode ends.
``ready()`` is ``True`` once all ``2D`` returns are in; ``update()`` steps ``θ`` and opens the
next iteration. Rule for copies caught mid-episode by an update: they finish the episode on
the perturbation they started with (a policy never changes within an episode), their return
is discarded (it belongs to an old iteration), and they take a slot of the new iteration when
that episode ends. Copies at an episode boundary (E = 1 always is, at an update) start on the
new iteration at once. With ``E > 2D`` the extra copies only run the mean: prefer
``num_directions ≥ E / 2``.

``act(explore=True)`` runs each copy's own perturbed weights, batched over the copy axis
(one ``baddbmm`` per group); ``act(explore=False)`` runs the mean ``θ`` (evaluation). ``uniform``
(off-policy warm-up) is ignored: the trainer never warms an on-policy learner.

Deviations from the papers
--------------------------
* ARS V2's observation normalisation is not implemented (V1-t is). V2 whitens the policy's
  input with running statistics of the states of all rollouts; carried over to every neuron,
  a hidden neuron's statistics would be of voltages that its upstream neurons' perturbations
  produce, pooled over every copy's perturbed network: not a quantity of the neuron alone. It
  would also make the policy more than the network's weights (``weights``, ``enjoy`` and
  ``neuron_env.NetworkPolicy`` run the plain network). Scale the task observation with the
  env's encoder instead.
* No reward shift (ARS's survival-bonus offset), no fitness shaping / rank transform, Adam or
  weight decay (Salimans et al.'s options): the step is plain ARS V1-t.
* Top-``b`` ties are broken by the lower direction index (ARS's reference code keeps every
  direction at or above the percentile, so ties may keep more than ``b``).

Floor control: ``freeze_hidden=True`` perturbs and updates only the output groups (hidden
groups keep their random init and run unperturbed in every copy).

References:
    T. Salimans, J. Ho, X. Chen, S. Sidor, I. Sutskever. "Evolution Strategies as a Scalable
    Alternative to Reinforcement Learning." arXiv:1703.03864, 2017.
    https://arxiv.org/abs/1703.03864

    H. Mania, A. Guy, B. Recht. "Simple random search of static linear policies is competitive
    for reinforcement learning." NeurIPS 2018 (ARS; Algorithm 2, V1-t).
    https://arxiv.org/abs/1803.07055

Quick start::

    from neuron_env import Topology
    from neuron_env.agents.registry import make_learner

    learner = make_learner("es", Topology.mlp(3, [64, 64], 1), {"num_directions": 8})
    # neuron-env train --learner es ...  (the trainer drives act/store/ready/update)

One module: the shared-seed noise, the copy scheduling and the update are one rule, and the
noise must be regenerated identically by every part that reads it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from neuron_env.agents.errors import DivergenceError, LearnerConfigError
from neuron_env.agents.learner import LearnerConfig
from neuron_env.agents.network import NetworkActor, build_layouts, check_checkpoint, check_shapes, require_settled

from neuron_env.dynamics import activate
from neuron_env.topology import NetworkWeights, Topology

_MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_MIX1 = 0xBF58476D1CE4E5B9
_MIX2 = 0x94D049BB133111EB


def _signed64(value: int) -> int:
    """The two's-complement int64 holding the 64-bit word ``value`` (torch has no uint64 math)."""
    value &= _MASK64
    return value - (1 << 64) if value >= 1 << 63 else value


def splitmix64(value: int) -> int:
    """The splitmix64 finalizer of a 64-bit word (Python ints; Steele, Lea & Flood 2014)."""
    z = value & _MASK64
    z = ((z ^ (z >> 30)) * _MIX1) & _MASK64
    z = ((z ^ (z >> 27)) * _MIX2) & _MASK64
    return z ^ (z >> 31)


def noise_key(seed: int, iteration: int, direction: int, group: int) -> int:
    """The 64-bit key of direction ``direction``'s noise for group ``group`` at ``iteration``."""
    key = splitmix64(seed * _GOLDEN)
    for word in (iteration, direction, group):
        key = splitmix64(key + (word + 1) * _GOLDEN)
    return key


def _shift_right(x: torch.Tensor, bits: int) -> torch.Tensor:
    # torch shifts int64 arithmetically; mask the sign copies to get the unsigned shift
    return (x >> bits) & ((1 << (64 - bits)) - 1)


def _splitmix64_tensor(x: torch.Tensor) -> torch.Tensor:
    # int64 products wrap modulo 2**64 on every torch backend, as uint64 products do
    x = (x ^ _shift_right(x, 30)) * _signed64(_MIX1)
    x = (x ^ _shift_right(x, 27)) * _signed64(_MIX2)
    return x ^ _shift_right(x, 31)


def shared_normal(keys: Sequence[int], counters: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Standard normals of the shared stream at the given keys and element counters.

    Element ``(i, c)`` is the Box–Muller normal of the uniforms from
    ``splitmix64(keys[i] + (2c + 1) G)`` and ``splitmix64(keys[i] + (2c + 2) G)``
    (``G = 0x9E3779B97F4A7C15``, top 53 bits, offset by half a unit so ``log`` stays finite),
    computed in float64 and cast to ``dtype``. Every element depends on its own key and
    counter only, so any subset of counters regenerates exactly the same values.

    Args:
        keys: ``K`` 64-bit keys (``noise_key``).
        counters: Element counters, any shape ``C…`` (int64, on the target device).
        dtype: Floating dtype of the result.

    Returns:
        ``[K, *C…]`` normals on ``counters.device``.
    """
    key_tensor = torch.tensor([_signed64(k) for k in keys], dtype=torch.int64, device=counters.device)
    key_tensor = key_tensor.view(-1, *([1] * counters.dim()))
    state = key_tensor + (2 * counters + 1) * _signed64(_GOLDEN)
    scale = 2.0 ** -53
    first = (_shift_right(_splitmix64_tensor(state), 11).double() + 0.5) * scale
    second = (_shift_right(_splitmix64_tensor(state + _signed64(_GOLDEN)), 11).double() + 0.5) * scale
    normal = torch.sqrt(-2.0 * torch.log(first)) * torch.cos((2.0 * math.pi) * second)
    return normal.to(dtype)


@dataclass
class ESConfig(LearnerConfig):
    """Options of ``ESLearner`` (``neuron-env train --learner es``); see the module for the rule."""

    num_directions: int = 8
    """Directions ``D`` per iteration; each runs two episodes (``θ + ν δ_k`` and ``θ − ν δ_k``)."""
    top_directions: int | None = None
    """Directions ``b`` kept for the step (ranked by ``max(R_k+, R_k−)``); default ``num_directions``."""
    es_step: float = 0.02
    """Step size ``α`` of ``θ += α / (b σ_R) Σ (R_k+ − R_k−) δ_k``."""
    es_noise: float = 0.03
    """Perturbation scale ``ν``: copies run ``θ ± ν δ_k`` with ``δ_k`` standard normal."""


class ESLearner(NetworkActor):
    """Antithetic evolution strategies (ARS V1-t) on the network's weights, shared-seed noise.

    Args:
        topology: The network (acyclic, leak-free: acting is one forward pass per task step).
        config: Its options (``ESConfig``: the one set of defaults); ``None``: the defaults.
        device: Torch device of every tensor.
        seed: Seed of the initial weights (when ``weights`` is ``None``) and of the learner's
            random stream.
        weights: Initial network weights; ``None`` draws ``NetworkWeights.init(topology, seed)``.
        dtype: Floating dtype (float64 for exact tests).
        **options: ``ESConfig`` fields overriding ``config``'s: ``num_directions``, ``top_directions``, ``es_step``,
            ``es_noise``, ``freeze_hidden`` (perturb and update only the output groups: the floor control).

    Raises:
        LearnerConfigError: On an invalid option or a cyclic or leaky topology.
    """

    name = "es"
    config_class = ESConfig
    #: One settled forward pass per task step: acyclic, leak-free networks on the sync clock (``agents.capabilities``).
    topologies = ("acyclic",)
    clocks = ("sync",)
    off_policy = False
    freeze_by_hidden_rate = False  # ES takes freeze_hidden itself: frozen groups are not perturbed

    def _build(
        self,
        topology: Topology,
        *,
        num_directions: int,
        top_directions: int | None,
        es_step: float,
        es_noise: float,
        freeze_hidden: bool,
        device: str | torch.device,
        seed: int,
        weights: NetworkWeights | None,
        dtype: torch.dtype,
    ) -> None:
        require_settled(topology, self.name)
        if isinstance(num_directions, bool) or not isinstance(num_directions, int) or num_directions < 1:
            raise LearnerConfigError(f"num_directions={num_directions!r} must be an integer >= 1")
        if top_directions is not None and (isinstance(top_directions, bool) or not isinstance(top_directions, int)
                                           or not 1 <= top_directions <= num_directions):
            raise LearnerConfigError(
                f"top_directions={top_directions!r} must be an integer in [1, num_directions={num_directions}] "
                "(or None for all directions)")
        for option, value in (("es_step", es_step), ("es_noise", es_noise)):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not (
                    math.isfinite(value) and value > 0):
                raise LearnerConfigError(f"{option}={value!r} must be a finite number > 0")
        if not dtype.is_floating_point:
            raise LearnerConfigError(f"dtype={dtype!r} must be a floating dtype (torch.float32 or torch.float64)")
        self.topology = topology
        self.device = torch.device(device)
        self.dtype = dtype
        self.granularity = "settled"
        self.num_directions = num_directions
        self.top_directions = num_directions if top_directions is None else top_directions
        self.es_step = float(es_step)
        self.es_noise = float(es_noise)
        self.freeze_hidden = bool(freeze_hidden)
        #: Seed of the shared noise stream (kept in checkpoints: the stream must not change on resume).
        self.seed = int(seed)
        self.layouts = build_layouts(topology, "presynaptic", True, self.device, dtype)
        #: Whether each group is perturbed and updated (all, or only outputs with ``freeze_hidden``).
        self.perturbed = [not (self.freeze_hidden and topology.group[lay.name].role != "output")
                          for lay in self.layouts]
        self._input = topology.group_slice[topology.input_group.name]
        self.agent_neuron_index = torch.as_tensor(topology.agent_neuron_index, device=self.device)
        weights = (weights if weights is not None else NetworkWeights.init(topology, seed)).checked(topology)
        weights = weights.to(self.device, dtype)
        #: The mean ``θ``: one ``[S, P + 1]`` tensor per group (blocks side by side, bias last).
        self.actor: list[torch.Tensor] = self.actor_tensors(self.layouts, weights)
        self.target_actor = self.actor  # no target network
        #: Iterations completed (``update`` calls).
        self.num_updates = 0
        #: The iteration in progress (indexes the noise stream).
        self.iteration = 0
        self._reset_rollout()

    # ------------------------------------------------------------------ noise
    def perturbation(self, group: int, directions: Sequence[int], iteration: int | None = None,
                     rows: torch.Tensor | Sequence[int] | None = None) -> torch.Tensor:
        """The directions ``δ_k`` of one group, regenerated from the shared stream.

        Args:
            group: Index of the group in ``layouts``.
            directions: The ``K`` direction indices ``k``.
            iteration: Iteration of the stream; default the one in progress.
            rows: The neurons (rows of the group) to regenerate; default all. A neuron
                regenerating its own slice passes its own row.

        Returns:
            ``[K, R, P + 1]`` (``R`` rows), masked connections zero; zeros for a group that is
            not perturbed (``freeze_hidden``).
        """
        lay = self.layouts[group]
        width = lay.pre_dim + 1
        row_index = (torch.arange(lay.size, device=self.device) if rows is None
                     else torch.as_tensor(rows, dtype=torch.int64, device=self.device))
        if not self.perturbed[group]:
            return torch.zeros(len(directions), len(row_index), width, device=self.device, dtype=self.dtype)
        iteration = self.iteration if iteration is None else iteration
        counters = row_index[:, None] * width + torch.arange(width, device=self.device)
        keys = [noise_key(self.seed, iteration, int(k), group) for k in directions]
        delta = shared_normal(keys, counters, self.dtype)
        if lay.mask1 is not None:
            delta = delta * lay.mask1[row_index]
        return delta

    # ------------------------------------------------------------------ env copies
    def _reset_rollout(self) -> None:
        """Open the iteration in progress afresh: no returns, no copies assigned yet."""
        slots = 2 * self.num_directions
        #: Return of each slot ``j`` (direction ``j // 2``, sign ``+`` for even ``j``); NaN until in.
        self.returns = torch.full((slots,), math.nan, device=self.device, dtype=self.dtype)
        self.recorded = np.zeros(slots, dtype=np.bool_)
        self.next_slot = 0
        self._num_transitions = 0
        self.num_copies: int | None = None
        #: Slot each env copy runs (``-1``: the mean ``θ``, return unused).
        self.copy_slot = np.zeros(0, dtype=np.int64)
        #: Iteration of each copy's slot (a return counts only for the iteration in progress).
        self.copy_iteration = np.zeros(0, dtype=np.int64)
        #: Whether each copy sits at an episode boundary (ended at the last ``store``, or new).
        self.copy_fresh = np.zeros(0, dtype=np.bool_)
        self.episode_return = torch.zeros(0, device=self.device, dtype=self.dtype)
        #: Per group ``[E, S, P + 1]`` weights each copy runs (``None`` for unperturbed groups).
        self.copy_actor: list[torch.Tensor | None] = [None for _ in self.layouts]

    def _ensure_copies(self, num_envs: int) -> None:
        if self.num_copies is None:
            self.num_copies = num_envs
            self.copy_slot = np.full(num_envs, -1, dtype=np.int64)
            self.copy_iteration = np.full(num_envs, self.iteration, dtype=np.int64)
            self.copy_fresh = np.ones(num_envs, dtype=np.bool_)
            self.episode_return = torch.zeros(num_envs, device=self.device, dtype=self.dtype)
            self.copy_actor = [w.expand(num_envs, -1, -1).clone() if p else None
                               for w, p in zip(self.actor, self.perturbed, strict=True)]
            self._assign(np.arange(num_envs))
        elif num_envs != self.num_copies:
            raise LearnerConfigError(
                f"got {num_envs} env copies but this learner runs {self.num_copies} (each copy holds its own "
                "perturbation): keep num_envs fixed, or use act(explore=False) for evaluation")

    def _assign(self, copies: np.ndarray) -> None:
        """Give the copies (at an episode boundary) the next free slots, or the mean ``θ``."""
        if len(copies) == 0:
            return
        free = 2 * self.num_directions - self.next_slot
        taken = min(len(copies), free)
        slots = np.full(len(copies), -1, dtype=np.int64)
        slots[:taken] = np.arange(self.next_slot, self.next_slot + taken)
        self.next_slot += taken
        self.copy_slot[copies] = slots
        self.copy_iteration[copies] = self.iteration
        index = torch.as_tensor(copies, device=self.device)
        directions = [int(j) // 2 for j in slots[:taken]]
        signs = torch.as_tensor(1.0 - 2.0 * (slots[:taken] % 2), device=self.device, dtype=self.dtype)
        for g, w in enumerate(self.actor):
            if not self.perturbed[g]:
                continue
            new = w.expand(len(copies), -1, -1).clone()
            if taken:
                delta = self.perturbation(g, directions)
                new[:taken] = w + (self.es_noise * signs)[:, None, None] * delta
            self.copy_actor[g][index] = new

    # ------------------------------------------------------------------ acting
    def act(
        self, voltages: torch.Tensor, explore: bool = True, level: int | None = None, uniform: bool = False
    ) -> torch.Tensor:
        """Every agent's next voltage for a batch of env copies.

        Args:
            voltages: ``[E, N]`` current voltages.
            explore: Run each env copy's perturbed weights (``E`` must stay the training copies');
                ``False``: the mean ``θ`` (deterministic evaluation, any ``E``).
            level: The tick of the task step (1 … depth): only the groups of that level act,
                every other agent holds its voltage. ``None``: every agent acts.
            uniform: Ignored (exploration is in parameter space; there is no warm-up).

        Returns:
            ``[E, num_agents]`` actions in ``topology.agent_ids`` order.
        """
        return super().act(voltages, explore, level, uniform)

    def _begin_acting(self, num_envs: int, explore: bool) -> None:
        if explore:
            self._ensure_copies(num_envs)

    def _group_action(self, voltages: torch.Tensor, index: int, explore: bool, uniform: bool) -> torch.Tensor:
        """Group ``index`` under each copy's perturbed weights (``explore``), else under the mean ``θ``."""
        per_copy = self.copy_actor[index] if explore else None
        if per_copy is None:
            return self._group_output(voltages, index, self.actor)
        # one batched product over the copy axis: [E, S, P] @ [E, P, 1]
        pre = voltages[:, self.layouts[index].pre].unsqueeze(2)
        potential = torch.baddbmm(per_copy[:, :, -1:], per_copy[:, :, :-1], pre)
        return activate(potential[:, :, 0], self.layouts[index].activation)

    def reset_noise(self, done: torch.Tensor | None = None) -> None:
        """Nothing to do: ``store`` hands out perturbations when episodes end."""

    # ------------------------------------------------------------------ learning
    def store(self, voltages: torch.Tensor, actions: torch.Tensor, rewards: torch.Tensor,
              next_voltages: torch.Tensor, terminated: torch.Tensor,
              truncated: torch.Tensor | None = None) -> None:  # the Learner protocol's signature
        """Add one task step's rewards to each copy's episode return; settle ended episodes.

        A copy whose episode ended (``terminated | truncated``) records its return for its slot
        (if the slot belongs to the iteration in progress) and takes the next free slot. Only
        ``rewards`` and the end flags are read (the voltages and actions are not needed).
        """
        with torch.no_grad():
            rewards = torch.as_tensor(rewards).to(self.device, self.dtype).reshape(-1)
            self._ensure_copies(rewards.shape[0])
            self.episode_return += rewards
            self._num_transitions += rewards.shape[0]
            done = torch.as_tensor(terminated).bool()
            if truncated is not None:
                done = done | torch.as_tensor(truncated).to(done.device).bool()
            done_cpu = done.reshape(-1).cpu().numpy()
            self.copy_fresh[:] = done_cpu
            if not done_cpu.any():
                return
            ended = np.flatnonzero(done_cpu)
            counts = ended[(self.copy_slot[ended] >= 0) & (self.copy_iteration[ended] == self.iteration)]
            if len(counts):
                slots = self.copy_slot[counts]
                self.returns[torch.as_tensor(slots, device=self.device)] = \
                    self.episode_return[torch.as_tensor(counts, device=self.device)]
                self.recorded[slots] = True
            self.episode_return[torch.as_tensor(ended, device=self.device)] = 0.0
            self._assign(ended)

    def ready(self) -> bool:
        """Whether all ``2 · num_directions`` returns of the iteration in progress are in."""
        return bool(self.recorded.all())

    @property
    def num_transitions(self) -> int:
        """Task steps stored (over all copies) since the iteration in progress began."""
        return self._num_transitions

    def step_coefficients(self, returns: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Each direction's weight in the step, from the ``[D, 2]`` returns (``+``, ``−``).

        Returns:
            ``([D] c_k, σ_R)`` with ``c_k = α (R_k+ − R_k−) / (b σ_R)`` for the top ``b``
            directions by ``max(R_k+, R_k−)`` (ties: lower ``k`` first) and ``0`` for the rest.
        """
        best = returns.max(dim=1).values
        top = torch.sort(best, descending=True, stable=True).indices[: self.top_directions]
        kept = returns[top]
        sigma = kept.std(unbiased=False)
        sigma = torch.where(sigma > 0, sigma, torch.ones_like(sigma))  # all equal: every difference is 0
        coefficients = torch.zeros(self.num_directions, device=self.device, dtype=self.dtype)
        coefficients[top] = (kept[:, 0] - kept[:, 1]) * (self.es_step / self.top_directions) / sigma
        return coefficients, sigma

    def update(self, returns: torch.Tensor | None = None, check_finite: bool = True) -> dict[str, torch.Tensor]:
        """Step every neuron once (ARS V1-t) and open the next iteration.

        Args:
            returns: ``[D, 2]`` returns (``R_k+``, ``R_k−``) to learn from; ``None``: the
                recorded ones (``ready()`` must be ``True``).
            check_finite: Raise ``DivergenceError`` on a non-finite return or parameter.

        Returns:
            ``{"return_mean", "return_std"}`` over the ``2D`` returns and ``"directions"``
            (``b``), as 0-d tensors on the device.

        Raises:
            LearnerConfigError: If ``returns`` is ``None`` and some returns are not in yet, or
                ``returns`` has the wrong shape.
            DivergenceError: When ``check_finite`` and a return or parameter is NaN or inf.
        """
        with torch.no_grad():
            if returns is None:
                if not self.ready():
                    raise LearnerConfigError(
                        f"update() needs all {2 * self.num_directions} returns of iteration {self.iteration}; "
                        f"{int(self.recorded.sum())} are in: call it when ready() is True")
                returns = self.returns.view(self.num_directions, 2)
            else:
                returns = torch.as_tensor(returns).to(self.device, self.dtype)
                if tuple(returns.shape) != (self.num_directions, 2):
                    raise LearnerConfigError(f"returns has shape {tuple(returns.shape)}; expected "
                                             f"({self.num_directions}, 2): (R_k+, R_k-) per direction")
            output = next(lay.name for lay in self.layouts if self.topology.group[lay.name].role == "output")
            if check_finite and not bool(torch.isfinite(returns).all()):
                raise DivergenceError(
                    f"non-finite episode return at iteration {self.iteration}: check the task's rewards for "
                    "NaN or inf", group=output, what="return")
            coefficients, _ = self.step_coefficients(returns)
            directions = range(self.num_directions)
            for g, w in enumerate(self.actor):
                if self.perturbed[g]:
                    w += torch.tensordot(coefficients, self.perturbation(g, directions), dims=1)
            stats = {
                "return_mean": returns.mean(),
                "return_std": returns.std(unbiased=False),
                "directions": torch.tensor(float(self.top_directions), device=self.device, dtype=self.dtype),
            }
            self.num_updates += 1
            self._next_iteration()
            if check_finite:
                self.check_finite()
            return stats

    def _next_iteration(self) -> None:
        """Open the next iteration; copies at an episode boundary start on it at once."""
        self.iteration += 1
        self.returns.fill_(math.nan)
        self.recorded[:] = False
        self.next_slot = 0
        self._num_transitions = 0
        if self.num_copies is not None:
            self._assign(np.flatnonzero(self.copy_fresh))

    def check_finite(self) -> None:
        """Raise ``DivergenceError`` naming the first group with a non-finite parameter."""
        finite = torch.stack([torch.isfinite(w).all() for w in self.actor])
        if bool(finite.all()):
            return
        name = self.layouts[int(torch.nonzero(~finite)[0])].name
        raise DivergenceError(
            f"non-finite weights in group {name!r} after update {self.num_updates}; lower es_step, check the "
            "task's rewards, or resume from the last checkpoint", group=name, what="actor")

    # ------------------------------------------------------------------ persistence
    def state_dict(self, include_buffer: bool = True) -> dict[str, Any]:
        """Everything needed to continue learning exactly, as CPU tensors.

        The mean ``θ``, counters and the noise seed; with ``include_buffer`` also the iteration
        in progress (returns so far, every copy's slot, episode return and weights). Without
        it, a restored learner restarts the iteration in progress from its first slot.
        """
        state: dict[str, Any] = {
            "learner": self.name,
            "groups": [lay.name for lay in self.layouts],
            "num_directions": self.num_directions,
            "perturbed": list(self.perturbed),
            "noise_seed": self.seed,
            "actor": [w.cpu().clone() for w in self.actor],
            "iteration": self.iteration,
            "num_updates": self.num_updates,
        }
        if include_buffer:
            state["rollout"] = {
                "returns": self.returns.cpu().clone(),
                "recorded": torch.from_numpy(self.recorded.copy()),
                "next_slot": self.next_slot,
                "num_transitions": self._num_transitions,
                "num_copies": self.num_copies,
                "copy_slot": torch.from_numpy(self.copy_slot.copy()),
                "copy_iteration": torch.from_numpy(self.copy_iteration.copy()),
                "copy_fresh": torch.from_numpy(self.copy_fresh.copy()),
                "episode_return": self.episode_return.cpu().clone(),
                "copy_actor": [None if w is None else w.cpu().clone() for w in self.copy_actor],
            }
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore ``state_dict`` (same topology, ``num_directions`` and ``freeze_hidden``).

        Raises:
            CheckpointError: If the state belongs to another learner, topology or option set.
        """
        check_checkpoint(state, self.name, {"groups": [lay.name for lay in self.layouts],
                                            "num_directions": self.num_directions, "perturbed": self.perturbed},
                         fix="build it with the checkpoint's num_directions and freeze_hidden (perturbed groups)")
        check_shapes(state, "actor", self.actor, self.layouts)  # type: ignore[arg-type]
        self.actor = [w.to(self.device, self.dtype).clone() for w in state["actor"]]
        self.target_actor = self.actor
        self.seed = int(state["noise_seed"])
        self.iteration = int(state["iteration"])
        self.num_updates = int(state["num_updates"])
        self._reset_rollout()
        rollout = state.get("rollout")
        if rollout is None:
            return
        self.returns = rollout["returns"].to(self.device, self.dtype).clone()
        self.recorded = rollout["recorded"].numpy().copy()
        self.next_slot = int(rollout["next_slot"])
        self._num_transitions = int(rollout["num_transitions"])
        self.num_copies = None if rollout["num_copies"] is None else int(rollout["num_copies"])
        if self.num_copies is not None:
            self.copy_slot = rollout["copy_slot"].numpy().copy()
            self.copy_iteration = rollout["copy_iteration"].numpy().copy()
            self.copy_fresh = rollout["copy_fresh"].numpy().copy()
            self.episode_return = rollout["episode_return"].to(self.device, self.dtype).clone()
            self.copy_actor = [None if w is None else w.to(self.device, self.dtype).clone()
                               for w in rollout["copy_actor"]]

    def __repr__(self) -> str:
        return (f"ESLearner({self.topology!r}, num_directions={self.num_directions}, "
                f"top_directions={self.top_directions}, es_step={self.es_step}, es_noise={self.es_noise}, "
                f"freeze_hidden={self.freeze_hidden}, device={self.device})")
