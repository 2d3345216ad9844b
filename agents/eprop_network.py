"""The e-prop learner's network in time: wiring, traces per tick, rows kept in time, and their persistence.

``EpropNetwork`` is the base of ``EpropLearner`` (``neuron_env.agents.eprop``, whose page describes the rule
and its options): everything the learner keeps between updates, and the tick that advances it. The
updates (the critic's TD step, the actor steps) are ``EpropLearner``'s.

* Wiring, fixed when built: each group's distance to an output group, the projections its messages
  arrive through, the fixed random feedback weights, and how many ticks of traces and gains it keeps
  (``2d + 1`` at distance ``d``; ``neuron_env.agents.eprop_rule``).
* The tick (``store``): the replay buffer's transition; every hidden group's trace and gain advanced
  (``eprop_rule.advance_trace``) onto its history; the live tick awaiting its actor step; the live
  ceiling's window; each copy's age in its episode. ``reset_noise`` restarts the newest traces of the
  copies whose episode ended.
* Rows kept in time (``actor_batch="replay"`` or ``replay_voltages="current"``): a ``TraceReplayBuffer``
  (``neuron_env.agents.eprop_replay``) with each row's tick, age, copy and firing mask and
  (``replay_voltages="stored"``) its traces and gains; ``_rerun`` re-runs sampled rows through their
  window (``neuron_env.agents.eprop_rerun``).
* Persistence: ``state_dict`` and ``load_state_dict`` of all of it, so that a run resumes bit for bit.

The options' choices (``CREDITS``, ``FEEDBACKS``, ``ACTOR_BATCHES``) are checked here, where they are built.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from neuron_env.agents.eprop_ceiling import WindowTick
from neuron_env.agents.eprop_replay import TraceReplayBuffer, row_bytes
from neuron_env.agents.eprop_rerun import Potentials, WindowTensors, rerun_window, unread_groups, window_ticks
from neuron_env.agents.eprop_rule import (
    MessageEdge,
    advance_trace,
    message_edges,
    output_distances,
    random_feedback,
    stored_shapes,
)
from neuron_env.agents.errors import CheckpointError, LearnerConfigError
from neuron_env.agents.network import check_checkpoint
from neuron_env.agents.off_policy import REPLAY_VOLTAGES, OffPolicyNetwork
from neuron_env.agents.replay import Batch
from neuron_env.agents.tensors import activation_derivative

from neuron_env.dynamics import activate
from neuron_env.topology import NetworkWeights, Topology

CREDITS: tuple[str, ...] = ("eprop", "bptt")
FEEDBACKS: tuple[str, ...] = ("random", "weights")
ACTOR_BATCHES: tuple[str, ...] = ("replay", "live")


class EpropNetwork(OffPolicyNetwork):
    """The e-prop learner's state in time and the tick that advances it (module doc); ``EpropLearner`` learns on it.

    Built as ``EpropLearner`` is, from its arguments and ``EpropConfig``'s options.

    Raises:
        LearnerConfigError: On an unknown ``credit``, ``feedback``, ``replay_voltages`` or ``actor_batch``; a
            bad ``bptt_window``, ``replay_window``, ``feedback_scale`` or ``replay_trace_mib``;
            ``granularity='settled'``; or stored traces above ``replay_trace_mib``.
    """

    def _build(self, topology: Topology, *, device: str | torch.device, seed: int, weights: NetworkWeights | None,
               dtype: torch.dtype, credit: str, bptt_window: int, feedback_scale: float | None,
               granularity: str | None, actor_batch: str, replay_trace_mib: float, feedback: str,
               replay_voltages: str, replay_window: int, **settings: Any) -> None:
        if credit not in CREDITS:
            raise LearnerConfigError(f"credit={credit!r} is unknown; choose one of {CREDITS}")
        if granularity not in (None, "per_tick"):
            raise LearnerConfigError(f"granularity={granularity!r}: learner 'eprop' learns per tick (its traces "
                                     "follow the voltages tick by tick); leave granularity='per_tick'")
        if isinstance(bptt_window, bool) or not isinstance(bptt_window, int) or bptt_window < 1:
            raise LearnerConfigError(f"bptt_window={bptt_window!r} must be an integer >= 1 (ticks)")
        if feedback_scale is not None and not (math.isfinite(feedback_scale) and feedback_scale > 0):
            raise LearnerConfigError(f"feedback_scale={feedback_scale!r} must be a finite number > 0")
        if feedback not in FEEDBACKS:
            raise LearnerConfigError(f"feedback={feedback!r} is unknown; choose one of {FEEDBACKS}")
        if replay_voltages not in REPLAY_VOLTAGES:
            raise LearnerConfigError(f"replay_voltages={replay_voltages!r} is unknown; choose one of {REPLAY_VOLTAGES}")
        if isinstance(replay_window, bool) or not isinstance(replay_window, int) or replay_window < 1:
            raise LearnerConfigError(f"replay_window={replay_window!r} must be an integer >= 1 (ticks)")
        if actor_batch not in ACTOR_BATCHES:
            raise LearnerConfigError(f"actor_batch={actor_batch!r} is unknown; choose one of {ACTOR_BATCHES}")
        if settings.get("critic") == "twin" or settings.get("target_noise", 0.0) > 0:
            raise LearnerConfigError(
                f"critic={settings.get('critic')!r}, target_noise={settings.get('target_noise')!r}: learner 'eprop' "
                "has one output critic and unsmoothed targets (critic='joint' or a per-neuron kind, target_noise=0); "
                "TD3's twin critics and target smoothing are options of the 'feedback' and 'ddpg' learners")
        if isinstance(replay_trace_mib, bool) or not (math.isfinite(replay_trace_mib) and replay_trace_mib > 0):
            raise LearnerConfigError(f"replay_trace_mib={replay_trace_mib!r} must be a finite number > 0 (MiB)")
        is_output = [group.role == "output" for group in topology.agent_groups]
        self.is_output = is_output
        #: The output groups' indices.
        self._outputs = tuple(i for i, output in enumerate(is_output) if output)
        self.credit, self.bptt_window, self.feedback_scale = credit, bptt_window, feedback_scale
        self.actor_batch, self.replay_trace_mib, self.feedback = actor_batch, float(replay_trace_mib), feedback
        self.replay_window = replay_window
        #: Whether replayed rows are re-run (``replay_voltages="current"``; the core's option means settling).
        self.rerun = replay_voltages == "current"
        #: Each group's distance to an output group (``None``: no path, no learning signal).
        self.distances = output_distances(topology)
        #: The projections each group receives messages through.
        self.edges = message_edges(topology, self.distances)
        self._build_off_policy(topology, device=device, seed=seed, weights=weights, dtype=dtype,
                               critic_groups=is_output, granularity="per_tick", replay_voltages="stored", **settings)
        self.replay_voltages = replay_voltages  # the core knows only settled re-settling; the re-run is eprop's
        #: Each group's leak ``λ``.
        self.leaks = [float(g.leak) for g in topology.agent_groups]
        #: Fixed random feedback weights ``F`` ``[S_m, S_n]`` per message-carrying projection.
        self.feedback_weights = random_feedback(topology, self.edges, seed + 2, feedback_scale, self.device,
                                                self.dtype)
        #: Ticks of history each group keeps (``2d + 1`` traces and gains; 0: it keeps none).
        self.history = [0 if d is None or d == 0 else 2 * d + 1 for d in self.distances]
        #: ``actor_batch="replay"``: past batches whose stored traces are kept (the deepest group's distance).
        self.queue_length = max((d for d in self.distances if d is not None), default=0)
        #: The re-run's groups computed on a window's last tick only, per (masked, kept groups) (``unread_groups``).
        self._unread: dict[tuple[bool, frozenset[int]], frozenset[int]] = {}
        self._reset_tick_state()

    def feedback_matrix(self, edge: MessageEdge) -> torch.Tensor:
        """``F`` ``[S_m, S_n]`` of a message edge: the fixed random matrix, or (``feedback="weights"``) ``W_mn`` now."""
        if self.feedback == "weights":
            columns = dict(self.layouts[edge.target].projection_columns)[edge.projection]
            return self.actor[edge.target][:, columns]
        return self.feedback_weights[edge.projection]

    def _stored_shapes(self) -> tuple[dict[int, tuple[int, int]], dict[int, int]]:
        """The trace ``(S, P + 1)`` and gain ``S`` each replayed row holds, per group (``eprop_rule.stored_shapes``).

        Fixed by the wiring: made once (every replayed update reads it).
        """
        shapes = self.__dict__.get("_shapes")
        if shapes is None:
            shapes = self._shapes = stored_shapes(self.topology, self.distances, self.edges)
        return shapes

    def _rerun(self, rows: torch.Tensor, batch: Batch, credit: bool = True
               ) -> tuple[Batch, dict[int, torch.Tensor], dict[int, torch.Tensor], list[WindowTick]]:
        """``replay_voltages="current"``: the rows re-run by the current network through their stored window.

        ``neuron_env.agents.eprop_rerun``: from the stored voltages ``replay_window`` ticks back, noise-free with
        the current weights, the recorded inputs and (under the async clock) firing masks; a group at distance
        ``d`` keeps its trace ``E(τ − d + 1)``, a relay its gain ``c(τ − d)``.

        Args:
            rows: The buffer rows ``[B]``.
            batch: Their stored transitions.
            credit: Whether the hidden groups' traces and gains are wanted (e-prop's replayed actor step).

        Returns:
            The batch with the re-run ``v(τ)``, ``v(τ + 1)`` (stored actions, rewards, ends), the traces and
            gains, and the window.
        """
        batch, traces, gains, window, _ = self._rerun_rows(rows, batch, credit)
        return batch, traces, gains, window_ticks(window)

    def _rerun_rows(self, rows: torch.Tensor, batch: Batch, credit: bool = True, potentials: tuple[int, ...] = ()
                    ) -> tuple[Batch, dict[int, torch.Tensor], dict[int, torch.Tensor], WindowTensors, Potentials]:
        """``_rerun`` with the window stacked, and the ``potentials`` groups' ``_potential`` at the re-run ``v(τ)``."""
        window = self.buffer.window_tensors(rows, self.replay_window, max(self.copies, 1))  # type: ignore[attr-defined]
        shapes, relays = self._stored_shapes() if credit and self.credit == "eprop" else ({}, {})
        masked = self.asynchronous
        kept = frozenset(shapes) | frozenset(relays)
        unread = self._unread.get((masked, kept))
        if unread is None:
            unread = self._unread[masked, kept] = unread_groups(self.layouts, self.leaks, kept, masked)
        voltages, following, traces, gains, at_state = rerun_window(
            window, batch.next_voltages, self.actor, layouts=self.layouts, leaks=self.leaks,
            distances=self.distances, inputs=self._input, trace_shapes=shapes, gain_sizes=relays,
            masked=masked, unread=unread, potentials=potentials,
            # a stored tick with a silent neuron sets asynchronous: until then every stored mask is all true
            every_fired=not masked)
        return batch._replace(voltages=voltages, next_voltages=following), traces, gains, window, at_state

    def _build_replay(self, buffer_size: int) -> None:
        """The core's buffer (live actor, stored voltages), or one that keeps rows in time (and their traces)."""
        if self.actor_batch == "live" and not self.rerun:
            super()._build_replay(buffer_size)
            return
        traces, gains = ({}, {}) if self.rerun or self.actor_batch == "live" else self._stored_shapes()
        per_row = row_bytes(traces, gains, self.topology.num_agents, self.dtype)
        budget = self.replay_trace_mib * 2**20
        if traces and buffer_size * per_row > budget:  # the re-run stores only 24 B of ticks and the firing mask
            floats = sum(s * p for s, p in traces.values()) + sum(gains.values())
            raise LearnerConfigError(
                f"actor_batch='replay' stores each tick's eligibility traces with its transition: {floats} floats "
                f"({per_row} B) per row x buffer_size={buffer_size} is {buffer_size * per_row / 2**20:.0f} MiB, "
                f"above replay_trace_mib={self.replay_trace_mib:g}: lower buffer_size (at most "
                f"{int(budget // per_row)}), raise replay_trace_mib, or use replay_voltages='current' (rows re-run, "
                "no trace stored)")
        self.replayed_agents, self._replayed_columns = None, None
        self.buffer = TraceReplayBuffer(buffer_size, self.topology.num_neurons, self.topology.num_agents, traces,
                                        gains, self.device, self.dtype)

    def _reset_tick_state(self) -> None:
        #: Each group's last traces ``E`` ``[E, S, P + 1]``, newest first (``[0]``: of the voltage after the tick).
        self.traces: list[list[torch.Tensor]] = [[] for _ in self.layouts]
        #: Each group's last gains ``c`` ``[E, S]``, newest first.
        self.gains: list[list[torch.Tensor]] = [[] for _ in self.layouts]
        #: Each group's message of this tick and of the last (``None``: none sent), ``[E, S]``.
        self.outbox: list[list[torch.Tensor | None]] = [[None, None] for _ in self.layouts]
        #: The live tick awaiting its actor step: ``(voltages [E, N], fired [E, A] bool)``.
        self.live: tuple[torch.Tensor, torch.Tensor] | None = None
        #: Whether every neuron fired on the live tick, known without reading its mask (no ``fired`` was stored):
        #: the actor steps then apply no mask (the same numbers as an all-true one).
        self.live_all_fired = False
        #: ``credit="bptt"``: the last ``bptt_window + 1`` ticks, newest first: ``(voltages, fired, episode start)``.
        self.window: list[WindowTick] = []
        #: Per tick of ``window``, whether every neuron fired, known without reading its mask (``live_all_fired``).
        self.window_all_fired: list[bool] = []
        #: Which copies start an episode on the next stored tick.
        self.fresh: torch.Tensor | None = None
        #: Ticks stored so far.
        self.ticks = 0
        #: Whether a stored tick had a silent neuron (the re-run then applies the firing masks).
        self.asynchronous = False
        #: Each copy's ticks since its episode started, of the voltages the next stored tick acted on ``[E]``.
        self.age: torch.Tensor | None = None
        #: Task copies per stored tick (the stride between a copy's consecutive rows in the buffer).
        self.copies = 0
        #: ``actor_batch="replay"``: the stored traces and gains of the last batches, newest first.
        self.queue: list[tuple[dict[int, torch.Tensor], dict[int, torch.Tensor]]] = []
        #: The ascent ``[S, P + 1]`` each group computed at the last actor step (``None``: it computed none).
        self.ascents: list[torch.Tensor | None] = [None] * len(self.layouts)

    # ------------------------------------------------------------------ the tick
    def _potential(self, voltages: torch.Tensor, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(p [E, P + 1], μ [E, S], σ' [E, S])`` of group ``index`` at ``voltages`` with the current weights."""
        lay = self.layouts[index]
        pre1 = self._pre1(voltages, lay)
        potential = pre1 @ self._actor_views(self.actor, index)[2]
        mu = activate(potential, lay.activation)
        return pre1, mu, activation_derivative(potential, mu, lay.activation)

    def store(self, voltages: torch.Tensor, actions: torch.Tensor, rewards: torch.Tensor,
              next_voltages: torch.Tensor, terminated: torch.Tensor, truncated: torch.Tensor | None = None,
              fired: torch.Tensor | None = None) -> None:
        """Store the tick's ``E`` transitions for the critic and advance every trace by the tick (module doc).

        Args:
            voltages: ``[E, N]`` voltages the agents acted on (``v(τ)``).
            actions: ``[E, num_agents]`` their actions.
            rewards: ``[E]`` rewards of the tick.
            next_voltages: ``[E, N]`` voltages after the tick (the final ones where an episode ended).
            terminated: ``[E]`` episode ends by the task.
            truncated: ``[E]`` time-limit ends (bootstrapped; a trace restarts either way).
            fired: ``[E, num_agents]`` bool, the async clock's firing mask; ``None``: every agent fired.
        """
        with torch.no_grad():
            start = self.buffer.position
            super().store(voltages, actions, rewards, next_voltages, terminated, truncated, fired=fired)
            v = voltages.to(self.device, self.dtype)
            copies = v.shape[0]
            # either actor batch: the re-run feeds the critic too, and must hold a silent neuron as the tick did
            if fired is not None and not self.asynchronous:
                self.asynchronous = not bool(fired.all())
            every = fired is None
            fired = (torch.ones(copies, self.topology.num_agents, dtype=torch.bool, device=self.device)
                     if fired is None else fired.to(self.device).bool())
            done = terminated.to(self.device).bool()
            if truncated is not None:
                done = done | truncated.to(self.device).bool()
            age = self.age if self.age is not None and self.age.shape[0] == copies else torch.zeros(
                copies, dtype=torch.int64, device=self.device)
            for i, lay in enumerate(self.layouts):
                if self.history[i]:
                    self._advance_trace(i, v, None if every else fired[:, lay.agent_slice], done)
            if isinstance(self.buffer, TraceReplayBuffer):
                self.buffer.add_extras(start, *self._stored_traces(age), fired, self.ticks, age)
            if self.actor_batch == "live":  # messages cross a hop per tick (replayed: per update)
                self._shift_outbox()
            self.live = (v.clone(), fired.clone())
            self.live_all_fired = every
            self.age = torch.where(done, torch.zeros_like(age), age + 1)
            self.copies = copies
            if self.credit == "bptt" and self.actor_batch == "live":
                fresh = self.fresh if self.fresh is not None else torch.ones(copies, dtype=torch.bool,
                                                                            device=self.device)
                self.window.insert(0, (v.clone(), fired.clone(), fresh.clone()))
                del self.window[self.bptt_window + 1:]
                self.window_all_fired.insert(0, every)
                del self.window_all_fired[self.bptt_window + 1:]
            self.fresh = done.clone()
            self.ticks += 1

    def _advance_trace(self, index: int, v: torch.Tensor, fired: torch.Tensor | None, done: torch.Tensor) -> None:
        """Push group ``index``'s trace and gain of the tick (``E(τ+1)``, ``c(τ)``) onto its history.

        ``fired``: as ``eprop_rule.advance_trace``'s (``None``: every neuron fired).
        """
        pre1, _, dmu = self._potential(v, index)
        ring, gains = self.traces[index], self.gains[index]
        previous = ring[0] if ring else torch.zeros(v.shape[0], self.layouts[index].size, pre1.shape[1],
                                                    device=self.device, dtype=self.dtype)
        trace, gain = advance_trace(previous, pre1, dmu, self.leaks[index], fired, done)
        ring.insert(0, trace)
        gains.insert(0, gain)
        del ring[self.history[index]:], gains[self.history[index]:]

    def _shift_outbox(self) -> None:
        """Messages cross a hop: this tick's (update's) become the last one's."""
        for box in self.outbox:
            box.insert(0, None)
            box.pop()

    def _stored_traces(self, age: torch.Tensor) -> tuple[dict[int, torch.Tensor], dict[int, torch.Tensor]]:
        """The traces ``E(τ − d + 1)`` and gains ``c(τ − d)`` the tick's rows store (``eprop_replay``).

        Read after the tick's advance (``ring[d]``).

        A trace or gain from before the row's episode started (``age < d − 1``, ``age < d``) is 0: the row's
        action depends on nothing before its episode started.
        """
        traces, gains = {}, {}
        zero = torch.zeros((), dtype=self.dtype, device=self.device)
        for i in self.buffer.traces:  # type: ignore[attr-defined]
            d, ring = self.distances[i], self.traces[i]
            trace = ring[d] if len(ring) > d else torch.zeros_like(ring[0])  # type: ignore[index]
            traces[i] = torch.where((age >= d - 1)[:, None, None], trace, zero)  # type: ignore[operator]
        for i in self.buffer.gains:  # type: ignore[attr-defined]
            d, ring = self.distances[i], self.gains[i]
            gain = ring[d] if len(ring) > d else torch.zeros_like(ring[0])  # type: ignore[index]
            gains[i] = torch.where((age >= d)[:, None], gain, zero)  # type: ignore[operator]
        return traces, gains

    def reset_noise(self, done: torch.Tensor | None = None) -> None:
        """Episodes of the copies marked ``done`` (all when ``None``) restart: their noise and newest traces reset.

        A restarted network holds 0 in every agent, so the derivative of its voltages is 0: the newest
        trace restarts at 0. Older traces and messages in flight are about the ended episode and stay
        paired with each other.
        """
        super().reset_noise(done)
        with torch.no_grad():
            zero = torch.zeros((), dtype=self.dtype, device=self.device)
            for ring in self.traces:
                if ring:
                    ring[0] = torch.zeros_like(ring[0]) if done is None else torch.where(
                        done.to(self.device).bool()[:, None, None], zero, ring[0])
            if self.fresh is not None:
                self.fresh = torch.ones_like(self.fresh) if done is None else self.fresh | done.to(self.device).bool()
            if self.age is not None:
                self.age = torch.zeros_like(self.age) if done is None else torch.where(
                    done.to(self.device).bool(), torch.zeros_like(self.age), self.age)

    # ------------------------------------------------------------------ persistence
    def state_dict(self, include_buffer: bool = True) -> dict[str, Any]:
        """The core's state plus the feedback weights, traces, gains, messages in flight, live tick and window."""

        def cpu(tensor: torch.Tensor | None) -> torch.Tensor | None:
            return None if tensor is None else tensor.cpu().clone()

        state = super().state_dict(include_buffer)
        state["credit"] = self.credit
        state["distances"] = list(self.distances)
        state["feedback_weights"] = {p: w.cpu().clone() for p, w in self.feedback_weights.items()}
        state["traces"] = [[cpu(t) for t in ring] for ring in self.traces]
        state["gains"] = [[cpu(g) for g in ring] for ring in self.gains]
        state["outbox"] = [[cpu(m) for m in box] for box in self.outbox]
        state["live"] = None if self.live is None else [cpu(t) for t in self.live]
        state["window"] = [[cpu(t) for t in entry] for entry in self.window]
        state["fresh"] = cpu(self.fresh)
        state["ticks"] = self.ticks
        state["asynchronous"] = self.asynchronous
        state["actor_batch"] = self.actor_batch
        state["age"] = cpu(self.age)
        state["copies"] = self.copies
        state["queue"] = [({i: t.cpu().clone() for i, t in traces.items()},
                           {i: g.cpu().clone() for i, g in gains.items()}) for traces, gains in self.queue]
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore ``state_dict`` (same topology, critic kind and credit).

        Raises:
            CheckpointError: If the state belongs to another learner, credit or topology.
        """
        check_checkpoint(state, self.name, {"credit": self.credit, "groups": [lay.name for lay in self.layouts],
                                            "distances": list(self.distances)})
        saved = state.get("actor_batch", "live")  # a checkpoint from before the option stepped live
        if saved != self.actor_batch:
            raise CheckpointError(f"checkpoint has actor_batch={saved!r}; this 'eprop' learner has actor_batch="
                                  f"{self.actor_batch!r}: build it with the checkpoint's options")
        if set(state["feedback_weights"]) != set(self.feedback_weights):
            raise CheckpointError(f"checkpoint has feedback weights for projections "
                                  f"{sorted(state['feedback_weights'])}; this learner expects "
                                  f"{sorted(self.feedback_weights)}")
        super().load_state_dict(state)

        def dev(tensor: torch.Tensor | None) -> torch.Tensor | None:
            if tensor is None:
                return None
            return tensor.to(self.device, tensor.dtype if tensor.dtype == torch.bool else self.dtype).clone()

        self.feedback_weights = {p: dev(w) for p, w in state["feedback_weights"].items()}  # type: ignore[misc]
        self.traces = [[dev(t) for t in ring] for ring in state["traces"]]  # type: ignore[misc]
        self.gains = [[dev(g) for g in ring] for ring in state["gains"]]  # type: ignore[misc]
        self.outbox = [[dev(m) for m in box] for box in state["outbox"]]
        self.live = None if state["live"] is None else (dev(state["live"][0]), dev(state["live"][1]))  # type: ignore
        self.live_all_fired = self.live is not None and bool(self.live[1].all())
        self.window = [tuple(dev(t) for t in entry) for entry in state["window"]]  # type: ignore[misc]
        self.window_all_fired = [bool(entry[1].all()) for entry in self.window]
        self.fresh = dev(state["fresh"])
        self.ticks = int(state["ticks"])
        self.asynchronous = bool(state.get("asynchronous", False))
        age = state.get("age")
        self.age = None if age is None else age.to(self.device).clone()
        self.copies = int(state.get("copies", 0))
        self.queue = [({int(i): dev(t) for i, t in traces.items()}, {int(i): dev(g) for i, g in gains.items()})
                      for traces, gains in state.get("queue", [])]  # type: ignore[misc]
