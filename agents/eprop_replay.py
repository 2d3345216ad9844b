"""The e-prop learner's replay: each tick's eligibility traces stored next to its transition.

``EpropLearner(actor_batch="replay")`` (``neuron_env.agents.eprop``) steps every group's actor on a
replayed batch, as DDPG steps its actor on 256 replayed states. Its hidden groups' steps need, for
every replayed transition, the eligibility trace of the voltages stored in it, so this buffer keeps,
per row, beside the core's ``(v(τ), a(τ), r(τ), v(τ+1), terminated)`` (``neuron_env.agents.replay``):

* ``traces[i]`` ``[S, P + 1]``: hidden group ``i`` at distance ``d`` from the outputs stores
  ``E_i(τ − d + 1)``, the derivative of its voltage ``d − 1`` ticks before the row's with respect to its
  own weights (the voltage that reaches the outputs' action at ``v(τ)`` through ``d − 1`` hops);
* ``gains[i]`` ``[S]``: a group that passes messages on to a deeper group stores ``c_i(τ − d)``, its
  voltage's gain on that hop (0 where the hop crosses an episode start: no path crosses a reset);
* ``fired`` ``[A]`` bool: who fired on the row's tick (the ceiling's windows replay the async clock);
* ``tick``, ``age``, ``copy`` (int64): the learner's tick count when stored, ticks since the row's
  episode started (``v(τ)`` is its ``age``-th tick) and the task copy: with them a row's earlier ticks
  are found (``windows``), never across an episode start or an overwritten slot.

Memory: ``4 · (Σ S_i (P_i + 1) + Σ S_j) + A + 24`` bytes per row in float32 (``row_bytes``); a
16-unit recurrent group with 4 inputs adds 1.3 kB per transition, 128 MB for a 100 000-row buffer.
The learner refuses a buffer whose traces exceed its ``replay_trace_mib`` budget.
"""

from __future__ import annotations

import torch
from neuron_env.agents.eprop_ceiling import WindowTick
from neuron_env.agents.errors import CheckpointError
from neuron_env.agents.replay import Batch, ReplayBuffer

_EXTRAS = ("fired", "tick", "age", "copy")


def row_bytes(trace_shapes: dict[int, tuple[int, int]], gain_sizes: dict[int, int], num_agents: int,
              dtype: torch.dtype) -> int:
    """Bytes per row of what ``TraceReplayBuffer`` stores beyond the core's transition."""
    size = torch.empty((), dtype=dtype).element_size()
    floats = sum(s * p for s, p in trace_shapes.values()) + sum(gain_sizes.values())
    return size * floats + num_agents + 3 * 8


class TraceReplayBuffer(ReplayBuffer):
    """``ReplayBuffer`` whose rows also hold each tick's traces, gains, firing mask and position in time (module doc).

    Args:
        capacity: Rows kept (oldest overwritten first).
        num_neurons: Voltage columns per row (``N``).
        num_agents: Action columns per row.
        trace_shapes: ``{group index: (S, P + 1)}`` of the groups whose traces are stored.
        gain_sizes: ``{group index: S}`` of the groups whose gains are stored.
        device: Where the storage lives.
        dtype: Floating dtype of the storage.
    """

    def __init__(self, capacity: int, num_neurons: int, num_agents: int, trace_shapes: dict[int, tuple[int, int]],
                 gain_sizes: dict[int, int], device: str | torch.device = "cpu",
                 dtype: torch.dtype = torch.float32) -> None:
        super().__init__(capacity, num_neurons, num_agents, device, dtype)
        self.traces = {i: torch.zeros(capacity, *shape, device=self.device, dtype=dtype)
                       for i, shape in trace_shapes.items()}
        self.gains = {i: torch.zeros(capacity, size, device=self.device, dtype=dtype) for i, size in gain_sizes.items()}
        self.fired = torch.ones(capacity, num_agents, device=self.device, dtype=torch.bool)
        self.tick = torch.full((capacity,), -1, device=self.device, dtype=torch.int64)
        self.age = torch.zeros(capacity, device=self.device, dtype=torch.int64)
        self.copy = torch.zeros(capacity, device=self.device, dtype=torch.int64)

    def add_extras(self, start: int, traces: dict[int, torch.Tensor], gains: dict[int, torch.Tensor],
                   fired: torch.Tensor, tick: int, age: torch.Tensor) -> None:
        """Write the extras of the ``E`` rows ``add`` wrote from position ``start`` (``E`` = ``fired.shape[0]``)."""
        count = fired.shape[0]
        rows: slice | torch.Tensor
        if start + count <= self.capacity:  # a slice copies; an index tensor costs an index_put
            rows = slice(start, start + count)
        else:
            rows = (start + torch.arange(count, device=self.device)) % self.capacity
        for i, trace in traces.items():
            self.traces[i][rows] = trace.to(self.traces[i].dtype)
        for i, gain in gains.items():
            self.gains[i][rows] = gain.to(self.gains[i].dtype)
        self.fired[rows] = fired.to(self.device)
        self.tick[rows] = tick
        self.age[rows] = age.to(self.device)
        self.copy[rows] = torch.arange(count, device=self.device)

    def sample_rows(self, batch_size: int, generator: torch.Generator) -> torch.Tensor:
        """``batch_size`` uniform row indices (with replacement): the draw ``sample`` makes."""
        index = torch.randint(0, self.size, (batch_size,), generator=generator, device=generator.device)
        return index.to(self.device)

    def gather(self, index: torch.Tensor) -> Batch:
        """The transitions of rows ``index``."""
        return Batch(*(torch.index_select(t, 0, index) for t in (self.voltages, self.actions, self.rewards,
                                                                 self.next_voltages, self.terminated)))

    def gather_traces(self, index: torch.Tensor) -> tuple[dict[int, torch.Tensor], dict[int, torch.Tensor]]:
        """The stored traces ``{i: [B, S, P + 1]}`` and gains ``{i: [B, S]}`` of rows ``index``."""
        return ({i: torch.index_select(t, 0, index) for i, t in self.traces.items()},
                {i: torch.index_select(g, 0, index) for i, g in self.gains.items()})

    def windows(self, index: torch.Tensor, length: int, stride: int) -> list[WindowTick]:
        """Each row's last ``length`` earlier ticks of its own copy and episode, as a ceiling window.

        Row ``r``'s tick ``k`` back lives ``k · stride`` rows earlier (``stride``: the task copies stored per
        tick); it belongs to the window while it holds that copy's tick ``k`` back (not overwritten) and
        ``k`` does not exceed the row's ``age`` (no episode start crossed). A shorter window is padded at
        its old end with episode starts (``fresh``), so its state is the recorded voltages there.

        Returns:
            ``length + 1`` entries ``(voltages [B, N], fired [B, A], fresh [B])``, newest (the rows) first,
            as ``eprop_ceiling.window_gradients`` reads them (views of ``window_tensors``).
        """
        return list(zip(*(t.unbind(0) for t in self.window_tensors(index, length, stride)), strict=True))

    def window_tensors(self, index: torch.Tensor, length: int, stride: int
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``windows`` stacked: ``(voltages [length + 1, B, N], fired [length + 1, B, A], fresh [length + 1, B])``.

        Each is gathered in one op (entry ``k``, ``k`` ticks back, first), as ``eprop_rerun.rerun_window`` reads it.
        """
        back, steps = self._steps(length)
        earlier = (index[:, None] - back[None, :] * stride) % self.capacity
        count = index.shape[0]

        def at(column: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:  # column[rows], rows of any shape
            return torch.index_select(column, 0, rows.reshape(-1)).view(rows.shape)

        valid = ((at(self.tick, earlier) == (at(self.tick, index)[:, None] - back[None, :]))
                 & (at(self.copy, earlier) == at(self.copy, index)[:, None])
                 & (back[None, :] <= at(self.age, index)[:, None]))
        # [B] ticks each window reaches back: up to its first invalid tick
        span = torch.where(valid.all(1), length, (~valid).to(torch.uint8).argmax(1))
        rows = torch.cat([index[:, None], earlier], 1)  # [B, length + 1], k = 0 … length
        start = torch.gather(rows, 1, span[:, None])  # the row each window starts from
        # [length + 1, B]: tick-major, so that each tick's rows are one contiguous block of the gathers
        rows = torch.where(steps[:, None] <= span[None, :], rows.T, start.T)
        fresh = steps[:, None] >= span[None, :]
        flat = rows.reshape(-1)
        return (torch.index_select(self.voltages, 0, flat).view(length + 1, count, -1),
                torch.index_select(self.fired, 0, flat).view(length + 1, count, -1), fresh)

    def _steps(self, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(1 … length, 0 … length)`` on the device, made once per window length."""
        cache: dict[int, tuple[torch.Tensor, torch.Tensor]] = self.__dict__.setdefault("_step_ranges", {})
        ranges = cache.get(length)
        if ranges is None:
            ranges = cache[length] = (torch.arange(1, length + 1, device=self.device),
                                      torch.arange(length + 1, device=self.device))
        return ranges

    def state_dict(self) -> dict[str, torch.Tensor | int]:
        """The core's filled rows plus the extras' (CPU tensors)."""
        state: dict[str, object] = dict(super().state_dict())
        n = self.size
        state["traces"] = {i: t[:n].cpu() for i, t in self.traces.items()}
        state["gains"] = {i: g[:n].cpu() for i, g in self.gains.items()}
        for name in _EXTRAS:
            state[name] = getattr(self, name)[:n].cpu()
        return state  # type: ignore[return-value]

    def load_state_dict(self, state: dict[str, torch.Tensor | int]) -> None:
        """Restore ``state_dict`` (the capacity and the stored traces' shapes must match).

        Raises:
            CheckpointError: If the checkpoint's buffer holds no traces or traces of other shapes.
        """
        if "traces" not in state:
            raise CheckpointError("checkpoint buffer keeps no rows in time (it was written with actor_batch='live' "
                                  "and replay_voltages='stored'); resume it with those options")
        traces, gains = state["traces"], state["gains"]
        shapes = {int(i): tuple(t.shape[1:]) for i, t in traces.items()}  # type: ignore[union-attr]
        expected = {i: tuple(t.shape[1:]) for i, t in self.traces.items()}
        if shapes != expected or set(map(int, gains)) != set(self.gains):  # type: ignore[arg-type]
            raise CheckpointError(f"checkpoint buffer stores traces of shapes {shapes}; this learner stores "
                                  f"{expected}: build it with the checkpoint's topology")
        super().load_state_dict(state)
        n = self.size
        for i, t in traces.items():  # type: ignore[union-attr]
            self.traces[int(i)][:n] = t.to(self.device, self.voltages.dtype)
        for i, g in gains.items():  # type: ignore[union-attr]
            self.gains[int(i)][:n] = g.to(self.device, self.voltages.dtype)
        for name in _EXTRAS:
            getattr(self, name)[:n] = state[name].to(self.device)  # type: ignore[union-attr]
