"""Environment throughput: how fast neuron-env steps, against references timed in the same run.

What it measures
----------------
1. **PettingZoo step throughput.** ``neuron_v0.parallel_env`` on ``HalfCheetah-v5`` with a
   17-400-300-6 tanh MLP (723 neurons, 706 agents, delay 3), stepped with random valid actions, against a
   *naive adapter* defined in this file: the same environment (same task, same clock, same
   observations, rewards and flags) written the straightforward way, with a Python loop over
   agents that builds a fresh observation array and fresh dict entries for every agent and
   validates every action one by one. Both step the same MuJoCo task; a short equivalence
   check before timing makes sure they produce the same observations and rewards. Reported:
   ticks per second of each and the ratio ours / naive. **Target: >= 8x.** A third row times
   the *adapter floor* (``AdapterFloor``): the env's own action checks and dict building with the
   raw task and no network, i.e. the ratio any adapter with these outputs could reach if the
   network and the core cost nothing.
2. **NeuronVecEnv overhead.** ``NeuronVecEnv`` with 16 copies of ``HalfCheetah-v5``, the same
   MLP and ``delay=1`` (every tick steps the task), stepped with random ``[16, 706]`` action
   tensors, against a raw ``gymnasium.vector.SyncVectorEnv`` of 16 ``HalfCheetah-v5`` stepped
   with random actions (same autoreset mode as the core uses), for the same number of task
   steps. Reported: microseconds per task step of each and the ratio ours / raw, with action
   validation on (the default) and off (``validate=False``). **Target: <= 1.25x.**
3. **Memory.** ``--memory-ticks`` ticks (default 10^6) of the PettingZoo env on
   ``--memory-task`` (default ``Pendulum-v1`` with the default 3-64-64-1 topology), with
   random actions. Reported: resident set size (RSS) after a 1000-tick warm-up, at the end,
   the difference, and the peak of samples taken every ``--memory-sample-every`` ticks.
   **Target: flat** (the end RSS within a few MiB of the start).

Random actions are drawn before timing (a small pool of valid action dicts / tensors /
arrays, cycled through), so sampling is never timed. Each timed measurement is repeated
``--repeats`` times, alternating ours and the reference, and the median is reported.

How to run
----------
Full run (a few minutes; the 10^6-tick memory run dominates)::

    python benchmarks/env_throughput.py

Smoke run for CI (all three measurements with small counts, well under 30 s)::

    python benchmarks/env_throughput.py --quick

Where a PettingZoo tick's time goes (adapter dicts, the core's network tick, the MuJoCo task;
timers inside the stepping loop, ``--ticks`` ticks, one repeat)::

    python benchmarks/env_throughput.py --profile

Other flags: ``--ticks``, ``--vec-steps``, ``--memory-ticks``, ``--memory-task``,
``--repeats``, ``--seed``, ``--torch-threads``, ``--out``
(``python benchmarks/env_throughput.py --help``).

Timings are wall-clock on a shared CPU: run on an otherwise idle machine. Other processes
competing for the cores slow torch's multi-threaded kernels far more than plain Python
(``uptime`` before and after tells you whether the numbers are trustworthy).

Output
------
A table on stdout and a JSON file (default ``benchmarks/results/env_throughput.json``) with
every number, the targets, whether each was met, and the machine (Python, torch, gymnasium,
pettingzoo, numpy and MuJoCo versions, CPU count, platform, date).
"""

from __future__ import annotations

import dataclasses
import gc
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import psutil
import torch

from neuron_env import NeuronVecEnv, Topology, neuron_v0
from neuron_env.configs import config_parser
from neuron_env.run_output import load_average_1min, machine_info, publish
from neuron_env.topology import ACTIVATION_RANGE

PZ_TARGET = 8.0
VEC_TARGET = 1.25
MEMORY_TARGET_MIB = 16.0


@dataclass
class Args:
    """Benchmark configuration (every field is a command-line flag)."""

    ticks: int = 3000
    """Ticks timed per repeat in the PettingZoo measurement (the same for ours and the naive adapter)."""
    vec_steps: int = 2000
    """Task steps timed per repeat in the NeuronVecEnv measurement (each steps every copy)."""
    num_envs: int = 16
    """Task copies in the NeuronVecEnv measurement."""
    memory_ticks: int = 1_000_000
    """Ticks of the PettingZoo env in the memory measurement."""
    memory_task: str = "Pendulum-v1"
    """Task of the memory measurement (its default topology: a 64-64 tanh MLP)."""
    memory_sample_every: int = 100_000
    """Sample RSS every this many ticks in the memory measurement (for the peak)."""
    repeats: int = 5
    """Timed repeats per measurement; the median is reported."""
    warmup: int = 200
    """Untimed ticks / steps before each timed repeat."""
    pool: int = 8
    """Number of pre-generated random action sets cycled through while timing."""
    seed: int = 0
    """Seed of the environments and of the random actions."""
    torch_threads: int = 0
    """Torch intra-op threads (0: torch's default). Recorded in the JSON either way."""
    quick: bool = False
    """Smoke run: small counts everywhere (all three measurements in well under 30 s)."""
    profile: bool = False
    """Instead of the three measurements, split the PettingZoo tick into adapter, core and task time
    (timers around the core's and the task's step inside the stepping loop) and print it; writes nothing."""
    out: str = "benchmarks/results/env_throughput.json"
    """Where to write the JSON results."""

    def apply_quick(self) -> None:
        """Shrink every count for a smoke run."""
        self.ticks = min(self.ticks, 300)
        self.vec_steps = min(self.vec_steps, 300)
        self.memory_ticks = min(self.memory_ticks, 5000)
        self.memory_sample_every = min(self.memory_sample_every, 1000)
        self.repeats = 1
        self.warmup = min(self.warmup, 30)


def parse_args(argv: list[str] | None = None) -> Args:
    """Build :class:`Args` from the command line (one flag per field, help from the field docs)."""
    parser = config_parser(Args, __doc__.split("\n\n")[0] if __doc__ else None)
    args = Args(**vars(parser.parse_args(argv)))
    if args.quick:
        args.apply_quick()
    for name in ("ticks", "vec_steps", "num_envs", "memory_ticks", "memory_sample_every", "repeats", "pool"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')}={getattr(args, name)} must be at least 1")
    return args


# ---------------------------------------------------------------------------- reference
class NaiveNeuronParallelEnv:
    """The neuron environment written the straightforward way: the reference of measurement 1.

    Same semantics as ``neuron_v0.parallel_env`` with the identity encoder and presynaptic
    observations: voltages are a numpy array; every tick each agent's action becomes its
    neuron's voltage, every ``delay`` ticks the output voltages are decoded into the task
    action, the task steps and the inputs are clamped to its observation. Per tick it loops
    over agents in Python, validates each action on its own and builds a fresh observation
    array and fresh dict entries for every agent.

    Args:
        task: Gymnasium id of the task.
        topology: The network (non-leaky groups).
        delay: Ticks per task step; default the topology's depth.
    """

    def __init__(self, task: str, topology: Topology, delay: int | None = None) -> None:
        self.task = gym.make(task)
        self.topology = topology
        self.delay = delay if delay is not None else (topology.depth or 1)
        self.possible_agents = list(topology.agent_ids)
        self.agents: list[str] = []
        self.agent_neuron_index = [int(i) for i in topology.agent_neuron_index]
        self.presynaptic = [
            topology.presynaptic_index[group.name] for group in topology.agent_groups for _ in range(group.size)
        ]
        self.agent_range = [
            ACTIVATION_RANGE[group.activation] for group in topology.agent_groups for _ in range(group.size)
        ]
        self.input_slice = topology.group_slice[topology.input_group.name]
        self.output_slice = topology.group_slice[topology.output_group.name]
        self.out_low, self.out_high = ACTIVATION_RANGE[topology.output_group.activation]
        self.act_low = self.task.action_space.low
        self.act_high = self.task.action_space.high
        self.voltages = np.zeros(topology.num_neurons, dtype=np.float32)
        self.tick = 0

    def reset(self, seed: int | None = None) -> tuple[dict[str, np.ndarray], dict[str, dict]]:
        """Reset the task; non-input voltages start at 0."""
        observation, _ = self.task.reset(seed=seed)
        self.voltages = np.zeros(self.topology.num_neurons, dtype=np.float32)
        self.voltages[self.input_slice] = observation
        self.agents = self.possible_agents[:]
        self.tick = 0
        observations = {}
        infos = {}
        for i, agent in enumerate(self.agents):
            observations[agent] = self.voltages[self.presynaptic[i]].astype(np.float32)
            infos[agent] = {}
        return observations, infos

    def step(self, actions: dict[str, np.ndarray]) -> tuple[dict, dict, dict, dict, dict]:
        """One tick, with the same outputs as ``NeuronParallelEnv.step``."""
        new = self.voltages.copy()
        for i, agent in enumerate(self.agents):
            if agent not in actions:
                raise ValueError(f"missing action for {agent}")
            value = float(actions[agent][0])
            low, high = self.agent_range[i]
            if not np.isfinite(value) or value < low or value > high:
                raise ValueError(f"action of {agent} is {value}")
            new[self.agent_neuron_index[i]] = value
        self.tick += 1
        reward, terminated, truncated = 0.0, False, False
        if self.tick % self.delay == 0:
            out = new[self.output_slice].astype(np.float64)
            scale = (self.act_high - self.act_low) / (self.out_high - self.out_low)
            action = self.act_low + (out - self.out_low) * scale
            action = np.clip(action, self.act_low, self.act_high).astype(self.task.action_space.dtype)
            observation, reward, terminated, truncated, _ = self.task.step(action)
            new[self.input_slice] = observation
        self.voltages = new
        observations, rewards, terminations, truncations, infos = {}, {}, {}, {}, {}
        for i, agent in enumerate(self.agents):
            observations[agent] = self.voltages[self.presynaptic[i]].astype(np.float32)
            rewards[agent] = float(reward)
            terminations[agent] = bool(terminated)
            truncations[agent] = bool(truncated)
            infos[agent] = {}
        if terminated or truncated:
            self.agents = []
        return observations, rewards, terminations, truncations, infos


class AdapterFloor:
    """``neuron_v0.parallel_env``'s per-agent work alone: the floor of any adapter with its outputs.

    Each tick it reads and checks the actions (the env's own ``_action_array`` and its core's
    ``check_actions``, as ``step`` does) and builds the
    five dicts (the env's own ``_outputs``) of the same tick kinds, and steps the raw task every
    ``delay`` ticks with a fixed action, but runs no network: no voltage update, no decoder or
    encoder, no tensors, no vector-env wrapper. ``naive / floor`` is the ratio an adapter with
    the same outputs would reach if the network and the core cost nothing; the gap between the
    env and this floor is what the core costs.
    """

    def __init__(self, env: Any) -> None:
        self.env = env
        self.task = gym.make("HalfCheetah-v5")
        self.action = np.zeros(self.task.action_space.shape, dtype=self.task.action_space.dtype)
        self.delay = env.core.delay
        self.tick = 0

    @property
    def agents(self) -> list[str]:
        """The wrapped env's live agents (empty once an episode ended)."""
        return self.env.agents

    def reset(self, seed: int | None = None) -> tuple[dict, dict]:
        """Reset the wrapped env (its state is what the floor observes) and the raw task."""
        self.task.reset(seed=seed)
        self.tick = 0
        return self.env.reset(seed=seed)

    def step(self, actions: dict[str, np.ndarray]) -> tuple[dict, dict, dict, dict, dict]:
        """Check the actions, step the raw task every ``delay`` ticks, build the dicts."""
        env = self.env
        env.core.check_actions(env._action_array(actions)[None])
        env._cycles += 1
        self.tick += 1
        if self.tick % self.delay:
            return env._outputs(env._state, 0.0, False, False, None)
        _, reward, terminated, truncated, task_info = self.task.step(self.action)  # reset() restarts it
        info = env._stepped_info(self.action, task_info)
        return env._outputs(env._state, float(reward), terminated, truncated, info)

    def close(self) -> None:
        """Close the raw task and the wrapped env."""
        self.task.close()
        self.env.close()


# ---------------------------------------------------------------------------- helpers
def action_pool(agents: list[str], size: int, rng: np.random.Generator) -> list[dict[str, np.ndarray]]:
    """``size`` dicts ``{agent: float32 array of shape (1,)}`` uniform in ``[-1, 1]`` (tanh range)."""
    pool = []
    for _ in range(size):
        values = rng.uniform(-1, 1, len(agents))
        pool.append({agent: np.array([x], dtype=np.float32) for agent, x in zip(agents, values, strict=True)})
    return pool


def time_ticks(env: Any, pool: list[dict[str, np.ndarray]], ticks: int, warmup: int, seed: int) -> float:
    """Ticks per second of ``env.step`` over ``ticks`` ticks (reset when no agent is left)."""
    env.reset(seed=seed)
    n = len(pool)
    for t in range(warmup):
        if not env.agents:
            env.reset()
        env.step(pool[t % n])
    start = time.perf_counter()
    for t in range(ticks):
        if not env.agents:
            env.reset()
        env.step(pool[t % n])
    return ticks / (time.perf_counter() - start)


def check_equivalent(ours: Any, naive: NaiveNeuronParallelEnv, pool: list[dict[str, np.ndarray]], seed: int) -> None:
    """Raise unless both adapters give the same observations and rewards for a few ticks."""
    obs_a, _ = ours.reset(seed=seed)
    obs_b, _ = naive.reset(seed=seed)
    for t in range(4 * naive.delay + 1):
        agent = ours.possible_agents[(37 * t) % len(ours.possible_agents)]
        if not np.allclose(obs_a[agent], obs_b[agent], atol=1e-5):
            raise RuntimeError(f"naive adapter diverges from neuron_v0 at tick {t} (agent {agent})")
        obs_a, rew_a, *_ = ours.step(pool[t % len(pool)])
        obs_b, rew_b, *_ = naive.step(pool[t % len(pool)])
        if not np.isclose(rew_a[agent], rew_b[agent], rtol=1e-5, atol=1e-6):
            raise RuntimeError(f"naive adapter reward differs at tick {t}: {rew_a[agent]} vs {rew_b[agent]}")


def alternate(repeats: int, *runs: Callable[[], float]) -> list[float]:
    """Run each measurement ``repeats`` times, interleaved; return the median of each."""
    results: list[list[float]] = [[] for _ in runs]
    for _ in range(repeats):
        for out, run in zip(results, runs, strict=True):
            gc.collect()
            out.append(run())
    return [statistics.median(r) for r in results]


def rss_mib() -> float:
    """Resident set size of this process in MiB."""
    return psutil.Process().memory_info().rss / 2**20


def hidden_topology() -> Topology:
    """The 17-400-300-6 tanh MLP used on HalfCheetah-v5 (723 neurons, 706 agents, depth 3)."""
    return Topology.mlp(17, [400, 300], 6)


# ---------------------------------------------------------------------------- measurements
def bench_pettingzoo(args: Args) -> dict[str, Any]:
    """Measurement 1: ``neuron_v0.parallel_env`` against the naive adapter, ticks per second."""
    topology = hidden_topology()
    ours = neuron_v0.parallel_env(task="HalfCheetah-v5", topology=topology)
    naive = NaiveNeuronParallelEnv("HalfCheetah-v5", topology, delay=ours.core.delay)
    pool = action_pool(ours.possible_agents, args.pool, np.random.default_rng(args.seed))
    check_equivalent(ours, naive, pool, args.seed)
    floor = AdapterFloor(neuron_v0.parallel_env(task="HalfCheetah-v5", topology=topology))
    ours_tps, naive_tps, floor_tps = alternate(
        args.repeats,
        lambda: time_ticks(ours, pool, args.ticks, args.warmup, args.seed),
        lambda: time_ticks(naive, pool, args.ticks, args.warmup, args.seed),
        lambda: time_ticks(floor, pool, args.ticks, args.warmup, args.seed),
    )
    ours.close()
    naive.task.close()
    floor.close()
    ratio = ours_tps / naive_tps
    return {
        "task": "HalfCheetah-v5",
        "topology": repr(topology),
        "neurons": topology.num_neurons,
        "agents": topology.num_agents,
        "delay": ours.core.delay,
        "ticks": args.ticks,
        "ours_ticks_per_s": ours_tps,
        "naive_ticks_per_s": naive_tps,
        "ratio": ratio,
        "floor_ticks_per_s": floor_tps,
        "floor_ratio": floor_tps / naive_tps,
        "target": f">= {PZ_TARGET}",
        "met": ratio >= PZ_TARGET,
    }


class _Timed:
    """Wraps a callable and adds its wall time to ``seconds`` (two ``perf_counter`` calls per call)."""

    def __init__(self, function: Callable[..., Any]) -> None:
        self.function = function
        self.seconds = 0.0
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return self.function(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - start
            self.calls += 1


def profile_pettingzoo(args: Args) -> dict[str, Any]:
    """Where a tick of ``neuron_v0.parallel_env`` on HalfCheetah-v5 goes, in microseconds per tick.

    Times ``--ticks`` ticks (after ``--warmup``) with timers inside the stepping loop around the
    core's tick (``NeuronVecEnv.step_arrays``, which checks the action values) and around the
    task's own ``step``; the adapter's share is the rest of ``parallel_env.step`` (reading the
    action dict, the five dicts). Timing
    in the loop, not in isolation, is the point: each call pays the cache and dispatcher state the
    rest of the tick leaves behind. The timers add about 0.1 us per timed call.

    Returns:
        ``{"ticks", "task_steps", "us_per_tick": {"total", "adapter", "core", "task"}, "share": {...}}``
        (``core`` excludes the task's step, which it calls).
    """
    env = neuron_v0.parallel_env(task="HalfCheetah-v5", topology=hidden_topology())
    pool = action_pool(env.possible_agents, args.pool, np.random.default_rng(args.seed))
    core = _Timed(env.core.step_arrays)
    env.core.step_arrays = core  # type: ignore[method-assign]
    task_envs = env.core.task.envs
    tasks = [_Timed(task.step) for task in task_envs]
    for task, timed in zip(task_envs, tasks, strict=True):
        task.step = timed  # type: ignore[method-assign]
    time_ticks(env, pool, args.warmup, 0, args.seed)  # warm-up, then zero the timers
    for timer in (core, *tasks):
        timer.seconds, timer.calls = 0.0, 0
    ticks_per_s = time_ticks(env, pool, args.ticks, 0, args.seed)
    env.close()
    total = args.ticks / ticks_per_s
    task_s = sum(t.seconds for t in tasks)
    core_s = core.seconds - task_s
    adapter_s = total - core_s - task_s
    per_tick = {name: 1e6 * value / args.ticks for name, value in
                (("total", total), ("adapter", adapter_s), ("core", core_s), ("task", task_s))}
    return {"ticks": args.ticks, "task_steps": sum(t.calls for t in tasks),
            "us_per_tick": per_tick, "share": {k: v / per_tick["total"] for k, v in per_tick.items() if k != "total"}}


def print_profile(profile: dict[str, Any]) -> None:
    """The split as a small table."""
    print(f"PettingZoo tick, HalfCheetah-v5, 723 neurons / 706 agents: {profile['ticks']} ticks "
          f"({profile['task_steps']} task steps), timers inside the loop")
    names = {"adapter": "adapter: action reads and checks, five dicts", "core": "core: the network tick (no task)",
             "task": "task: HalfCheetah-v5 step (MuJoCo)", "total": "total"}
    for key in ("adapter", "core", "task", "total"):
        share = f"{100 * profile['share'][key]:5.1f} %" if key != "total" else ""
        print(f"  {names[key]:<48} {profile['us_per_tick'][key]:8.1f} us/tick  {share}")


def _time_vec(step: Callable[[int], Any], steps: int, warmup: int) -> float:
    """Seconds per call of ``step(t)`` over ``steps`` calls, after ``warmup`` untimed calls."""
    for t in range(warmup):
        step(t)
    start = time.perf_counter()
    for t in range(steps):
        step(t)
    return (time.perf_counter() - start) / steps


def bench_vector(args: Args) -> dict[str, Any]:
    """Measurement 2: ``NeuronVecEnv`` against a raw ``SyncVectorEnv``, time per task step."""
    topology = hidden_topology()
    e = args.num_envs
    ours = NeuronVecEnv("HalfCheetah-v5", topology, num_envs=e, delay=1)
    ours_nv = NeuronVecEnv("HalfCheetah-v5", topology, num_envs=e, delay=1, validate=False)
    kwargs: dict[str, Any] = {}
    if hasattr(gym.vector, "AutoresetMode"):  # the core uses same-step autoreset; so does the reference
        kwargs["autoreset_mode"] = gym.vector.AutoresetMode.SAME_STEP
    raw = gym.vector.SyncVectorEnv([lambda: gym.make("HalfCheetah-v5")] * e, **kwargs)

    generator = torch.Generator().manual_seed(args.seed)
    tensors = [torch.rand(e, topology.num_agents, generator=generator) * 2 - 1 for _ in range(args.pool)]
    rng = np.random.default_rng(args.seed)
    space = raw.single_action_space
    arrays = [rng.uniform(space.low, space.high, (e, *space.shape)).astype(space.dtype) for _ in range(args.pool)]
    n = args.pool

    def run_core(env: NeuronVecEnv) -> float:
        env.reset(seed=args.seed)
        return _time_vec(lambda t: env.step(tensors[t % n]), args.vec_steps, args.warmup)

    def run_raw() -> float:
        raw.reset(seed=args.seed)
        return _time_vec(lambda t: raw.step(arrays[t % n]), args.vec_steps, args.warmup)

    ours_s, ours_nv_s, raw_s = alternate(args.repeats, lambda: run_core(ours), lambda: run_core(ours_nv), run_raw)
    for env in (ours, ours_nv, raw):
        env.close()
    ratio = ours_s / raw_s
    return {
        "task": "HalfCheetah-v5",
        "topology": repr(topology),
        "num_envs": e,
        "delay": 1,
        "task_steps": args.vec_steps,
        "torch_threads": torch.get_num_threads(),
        "ours_us_per_step": ours_s * 1e6,
        "ours_no_validate_us_per_step": ours_nv_s * 1e6,
        "raw_us_per_step": raw_s * 1e6,
        "ratio": ratio,
        "ratio_no_validate": ours_nv_s / raw_s,
        "target": f"<= {VEC_TARGET}",
        "met": ratio <= VEC_TARGET,
    }


def bench_memory(args: Args) -> dict[str, Any]:
    """Measurement 3: RSS over ``memory_ticks`` ticks of the PettingZoo env."""
    env = neuron_v0.parallel_env(task=args.memory_task)
    pool = action_pool(env.possible_agents, args.pool, np.random.default_rng(args.seed))
    n = len(pool)
    env.reset(seed=args.seed)
    for t in range(1000):
        if not env.agents:
            env.reset()
        env.step(pool[t % n])
    gc.collect()
    start_rss = rss_mib()
    samples = [start_rss]
    start = time.perf_counter()
    for t in range(1, args.memory_ticks + 1):
        if not env.agents:
            env.reset()
        env.step(pool[t % n])
        if t % args.memory_sample_every == 0:
            samples.append(rss_mib())
    elapsed = time.perf_counter() - start
    gc.collect()
    end_rss = rss_mib()
    samples.append(end_rss)
    env.close()
    growth = end_rss - start_rss
    return {
        "task": args.memory_task,
        "topology": repr(env.topology),
        "ticks": args.memory_ticks,
        "ticks_per_s": args.memory_ticks / elapsed,
        "rss_start_mib": start_rss,
        "rss_end_mib": end_rss,
        "rss_growth_mib": growth,
        "rss_peak_mib": max(samples),
        "rss_samples_mib": samples,
        "target": f"flat (growth < {MEMORY_TARGET_MIB} MiB)",
        "met": growth < MEMORY_TARGET_MIB,
    }


# ---------------------------------------------------------------------------- report
def print_table(results: dict[str, Any]) -> None:
    """Print the results as a plain-text table."""
    pz, vec, mem = results["pettingzoo"], results["vector"], results["memory"]
    ok = {True: "yes", False: "NO"}
    rows = [
        ("measurement", "ours", "reference", "ratio", "target", "met"),
        (
            f"PettingZoo step, {pz['task']}, {pz['neurons']} neurons / {pz['agents']} agents (ticks/s)",
            f"{pz['ours_ticks_per_s']:,.0f}",
            f"{pz['naive_ticks_per_s']:,.0f}",
            f"{pz['ratio']:.2f}x",
            pz["target"],
            ok[pz["met"]],
        ),
        (
            "  floor: the same dicts and action checks, raw task, no network (ticks/s)",
            f"{pz['floor_ticks_per_s']:,.0f}",
            f"{pz['naive_ticks_per_s']:,.0f}",
            f"{pz['floor_ratio']:.2f}x",
            "(bound)",
            "",
        ),
        (
            f"NeuronVecEnv, {vec['num_envs']} x {vec['task']} (us/task step)",
            f"{vec['ours_us_per_step']:,.0f}",
            f"{vec['raw_us_per_step']:,.0f}",
            f"{vec['ratio']:.3f}x",
            vec["target"],
            ok[vec["met"]],
        ),
        (
            "NeuronVecEnv, validate=False (us/task step)",
            f"{vec['ours_no_validate_us_per_step']:,.0f}",
            f"{vec['raw_us_per_step']:,.0f}",
            f"{vec['ratio_no_validate']:.3f}x",
            vec["target"],
            ok[vec["ratio_no_validate"] <= VEC_TARGET],
        ),
        (
            f"Memory, {mem['ticks']:,} ticks {mem['task']} (RSS MiB)",
            f"{mem['rss_start_mib']:.1f} -> {mem['rss_end_mib']:.1f}",
            f"peak {mem['rss_peak_mib']:.1f}",
            f"{mem['rss_growth_mib']:+.1f} MiB",
            mem["target"],
            ok[mem["met"]],
        ),
    ]
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    for k, row in enumerate(rows):
        print("  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)))
        if k == 0:
            print("  ".join("-" * w for w in widths))
    m = results["machine"]
    cpus = m["cpu_count"] or 1
    end_load = results["load_average_1min_end"]
    # The benchmark itself adds about 1 to the load while it runs.
    busy = m["load_average_1min"] > 0.5 * cpus or end_load > cpus
    print(
        f"\nreferences: naive per-agent adapter (same task); raw gymnasium SyncVectorEnv. "
        f"memory run: {mem['ticks_per_s']:,.0f} ticks/s.\n"
        f"machine: python {m['python']}, torch {m['torch']}, gymnasium {m['gymnasium']}, "
        f"pettingzoo {m['pettingzoo']}, {m['cpu_count']} CPUs, {m['platform']}, {m['date']}\n"
        f"load average (1 min): {m['load_average_1min']:.2f} at start, {end_load:.2f} at end"
        f"{' -- busy machine, timings unreliable' if busy else ''}"
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """The command line (see the module doc): ``argv`` (``None``: ``sys.argv``) -> the results it wrote."""
    args = parse_args(argv)
    if args.torch_threads > 0:
        torch.set_num_threads(args.torch_threads)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    if args.profile:
        profile = profile_pettingzoo(args)
        print_profile(profile)
        return {"config": dataclasses.asdict(args), "profile": profile}
    results: dict[str, Any] = {"config": dataclasses.asdict(args), "machine": machine_info("pettingzoo", "mujoco")}
    for key, bench in (("pettingzoo", bench_pettingzoo), ("vector", bench_vector), ("memory", bench_memory)):
        start = time.perf_counter()
        results[key] = bench(args)
        print(f"[{key}] done in {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
    results["load_average_1min_end"] = load_average_1min()
    print_table(results)
    return publish(results, None, args.out)


if __name__ == "__main__":
    main()
