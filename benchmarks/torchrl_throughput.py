"""TorchRL throughput: the generic ``PettingZooWrapper`` against the native ``NeuronTorchRLEnv``.

Both expose the same multi-agent layout (one group per layer) over the same network; the
wrapper goes through ``neuron_v0.parallel_env`` and converts every agent's data one by one, the
native env builds a few batched tensors per tick. Every env runs the loop a TorchRL collector
runs, with random actions from the action spec::

    td = env.rand_action(td); _, td = env.step_and_maybe_reset(td)

in the same process, one after the other. A step is one tick of every task copy, so steps/s is
ticks x copies per second (the task itself steps every ``delay`` ticks). The ratio is native
(``E = 1``) over the wrapper (``E = 1``); the target is at least 10x. A row for the bare
``NeuronVecEnv`` core (no TorchRL) shows what TorchRL's bookkeeping costs.

Run::

    python benchmarks/torchrl_throughput.py
    python benchmarks/torchrl_throughput.py --task Pendulum-v1 --obs-dim 3 --act-dim 1 --hidden 64 64

Writes ``benchmarks/results/torchrl_throughput.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torchrl.envs import EnvBase
from torchrl.envs.libs.pettingzoo import PettingZooWrapper

import neuron_env
from neuron_env import NeuronVecEnv, Topology, neuron_v0
from neuron_env.integrations.torchrl import NeuronTorchRLEnv
from neuron_env.run_output import atomic_write_text


@dataclass
class Args:
    """Benchmark configuration."""

    task: str = "HalfCheetah-v5"
    """Gymnasium task id."""
    obs_dim: int = 17
    """Task observation size (HalfCheetah-v5: 17)."""
    act_dim: int = 6
    """Task action size (HalfCheetah-v5: 6)."""
    hidden: tuple[int, ...] = (400, 300)
    """Hidden layer sizes; 17-400-300-6 has 723 neurons, 706 of them agents (every non-input neuron)."""
    batched_envs: int = 16
    """Task copies of the batched native row."""
    wrapper_steps: int = 60
    """Timed steps of the PettingZooWrapper (it is slow)."""
    native_steps: int = 1000
    """Timed steps of the native env and the core."""
    warmup_steps: int = 5
    """Untimed steps before each measurement."""
    seed: int = 0
    """Seed of torch and of the task copies."""
    torch_threads: int = 1
    """``torch.set_num_threads`` (0 keeps torch's default)."""
    output: str = "benchmarks/results/torchrl_throughput.json"
    """Where the JSON results go."""


def time_torchrl(env: EnvBase, steps: int, warmup: int, seed: int) -> float:
    """Seconds for ``steps`` collector-style steps with random actions from the action spec."""
    env.set_seed(seed)
    td = env.reset()
    for _ in range(warmup):
        td = env.rand_action(td)
        _, td = env.step_and_maybe_reset(td)
    start = time.perf_counter()
    for _ in range(steps):
        td = env.rand_action(td)
        _, td = env.step_and_maybe_reset(td)
    return time.perf_counter() - start


def time_core(core: NeuronVecEnv, steps: int, warmup: int, seed: int) -> float:
    """Seconds for ``steps`` ticks of the bare core with uniform random actions in range."""
    core.reset(seed=seed)
    low, span = core.action_low, core.action_high - core.action_low
    shape = (core.num_envs, core.topology.num_agents)
    for _ in range(warmup):
        core.step(low + span * torch.rand(shape))
    start = time.perf_counter()
    for _ in range(steps):
        core.step(low + span * torch.rand(shape))
    return time.perf_counter() - start


def main(args: Args) -> dict[str, Any]:
    """Run every measurement, print the table and write the JSON; returns the results."""
    torch.manual_seed(args.seed)
    if args.torch_threads > 0:
        torch.set_num_threads(args.torch_threads)
    warnings.filterwarnings("ignore", message="PettingZoo in TorchRL is tested")
    topology = Topology.mlp(args.obs_dim, list(args.hidden), args.act_dim)

    rows: list[dict[str, Any]] = []

    def record(name: str, num_envs: int, steps: int, seconds: float) -> None:
        rows.append({"env": name, "num_envs": num_envs, "steps": steps, "seconds": seconds,
                     "steps_per_s": steps * num_envs / seconds})

    wrapper = PettingZooWrapper(env=neuron_v0.parallel_env(task=args.task, topology=topology))
    record("torchrl PettingZooWrapper(neuron_v0.parallel_env)", 1, args.wrapper_steps,
           time_torchrl(wrapper, args.wrapper_steps, args.warmup_steps, args.seed))
    wrapper.close()
    for num_envs in (1, args.batched_envs):
        native = NeuronTorchRLEnv(args.task, topology, num_envs=num_envs)
        record("NeuronTorchRLEnv (native)", num_envs, args.native_steps,
               time_torchrl(native, args.native_steps, args.warmup_steps, args.seed))
        native.close()
    core = NeuronVecEnv(args.task, topology, num_envs=1)
    record("NeuronVecEnv core, no TorchRL (reference)", 1, args.native_steps,
           time_core(core, args.native_steps, args.warmup_steps, args.seed))
    core.close()

    ratio = rows[1]["steps_per_s"] / rows[0]["steps_per_s"]
    header = (f"TorchRL throughput: {args.task}, Topology.mlp({args.obs_dim}, {list(args.hidden)}, {args.act_dim}): "
              f"{topology.num_neurons} neurons, {topology.num_agents} agents, delay {topology.depth}; "
              f"torch threads {torch.get_num_threads()}")
    print(header)
    print(f"{'env':<52} {'E':>3} {'steps':>6} {'seconds':>8} {'steps/s':>10}")
    for row in rows:
        print(f"{row['env']:<52} {row['num_envs']:>3} {row['steps']:>6} {row['seconds']:>8.2f} "
              f"{row['steps_per_s']:>10.1f}")
    print(f"native / wrapper at E=1: {ratio:.1f}x (target >= 10x)")

    result = {
        "benchmark": "torchrl_throughput",
        "config": dataclasses.asdict(args),
        "num_neurons": topology.num_neurons,
        "num_agents": topology.num_agents,
        "rows": rows,
        "ratio_native_over_wrapper_E1": ratio,
        "versions": {"neuron_env": neuron_env.__version__, "torch": torch.__version__,
                     "torchrl": _version("torchrl"), "tensordict": _version("tensordict"),
                     "pettingzoo": _version("pettingzoo"), "gymnasium": _version("gymnasium"),
                     "python": platform.python_version()},
        "machine": {"platform": platform.platform(), "processor": platform.processor()},
    }
    path = Path(args.output)
    atomic_write_text(path, json.dumps(result, indent=2) + "\n")
    print(f"wrote {path}")
    return result


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


def parse_args() -> Args:
    """``Args`` from the command line (``--field value``; ``--hidden`` takes several values)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for field in dataclasses.fields(Args):
        flag = "--" + field.name.replace("_", "-")
        if field.name == "hidden":
            parser.add_argument(flag, type=int, nargs="+", default=field.default)
        else:
            parser.add_argument(flag, type=type(field.default), default=field.default)
    namespace = parser.parse_args()
    namespace.hidden = tuple(namespace.hidden)
    return Args(**vars(namespace))


if __name__ == "__main__":
    main(parse_args())
