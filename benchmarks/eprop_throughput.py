r"""e-prop throughput: the recurrent local learner's update against the feed-forward ``feedback`` update, same run.

What it measures
----------------
The memory study's learner, ``--learner eprop`` on a leaky recurrent layer (``EpropLearner`` with its
defaults: replayed batches of 256, each row re-run through its stored 16-tick window), timed beside the
feed-forward ``feedback`` learner (the trainer's default) on a network of the same width, in one process:

* ``eprop``: ``Topology.recurrent(obs, H, act, leak)`` (``--hidden`` H, ``--leak``), the rule;
* ``eprop-floor``: the same with ``freeze_hidden`` (the reservoir: only the outputs learn);
* ``eprop-ceiling``: the same with ``credit="bptt"`` (truncated BPTT through the window, a reference);
* ``feedback`` (the reference): ``Topology.mlp(obs, [H], act)`` with the learner's defaults, at the same batch.

Every learner's replay buffer is first filled with ``--fill`` ticks of random voltages, actions and
rewards from one seed, in episodes of ``--episode`` ticks (the re-run's windows then cross episode
starts as in training). Two quantities per learner: ``update`` (one ``update()`` alone) and ``tick`` (one
trainer tick: ``act``, ``store`` and ``update``). Each is timed by this process's CPU time
(``time.process_time``: on a machine other jobs share, wall-clock windows stretch with their load, CPU
time much less) over ``--repeats`` windows of ``--updates`` calls, the learners interleaved window by
window; reported is the median per call and its ratio to the reference's (``ratio_vs_feedback``: the
learner's time over the feedback learner's, so 3.0 means three times as slow). The ratio is the figure to
compare across machines and commits; the absolute times depend on the machine and its load.

How to run
----------
From a checkout (CPU, one torch thread; about a minute)::

    python benchmarks/eprop_throughput.py
    python benchmarks/eprop_throughput.py --quick            # smoke run (a few seconds)
    python benchmarks/eprop_throughput.py --hidden 32 --repeats 7

Output
------
A table on stdout and ``benchmarks/results/eprop_throughput.json`` (``--out``): per learner the
options, ms per update and per tick and their ratios to the reference, with the machine and the load
average at the start and end.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch
from neuron_env.agents.eprop import EpropLearner
from neuron_env.agents.feedback import FeedbackDDPG

from neuron_env import Topology
from neuron_env.configs import config_parser
from neuron_env.run_output import load_average_1min, machine_info, publish

#: The learner every other is divided by.
REFERENCE = "feedback"


@dataclass
class Args:
    """Benchmark configuration (every field is a command-line flag)."""

    obs: int = 3
    """Input neurons (Pendulum-v1's observation)."""
    hidden: int = 16
    """Hidden units: eprop's recurrent layer, the feedback learner's one hidden layer."""
    act: int = 1
    """Output neurons (Pendulum-v1's action)."""
    leak: float = 0.5
    """Leak of eprop's recurrent layer."""
    batch_size: int = 256
    """Replayed transitions per update, every learner."""
    fill: int = 2000
    """Ticks stored before timing."""
    episode: int = 200
    """Ticks per episode of the stored data."""
    updates: int = 100
    """Calls per timing window."""
    repeats: int = 5
    """Timing windows per learner and quantity (interleaved); the median is reported."""
    threads: int = 1
    """Torch intra-op threads."""
    seed: int = 0
    """Seed of the learners and of the stored data."""
    quick: bool = False
    """Smoke run: few ticks and windows."""
    out: str = "benchmarks/results/eprop_throughput.json"
    """JSON output file (empty: none)."""


class Driver:
    """One learner fed random ticks as the trainer feeds it (``act``, ``store``, ``update``), from one seed."""

    def __init__(self, learner: Any, topology: Topology, args: Args) -> None:
        self.learner, self.topology, self.args = learner, topology, args
        self.generator = torch.Generator().manual_seed(args.seed + 1)
        self.voltages = torch.zeros(1, topology.num_neurons)
        self.inputs = topology.group_slice[topology.input_group.name]
        self.ticks = 0

    def tick(self, learn: bool) -> None:
        """Act on the voltages, store the tick, and with ``learn`` update once."""
        learner, v = self.learner, self.voltages
        v[:, self.inputs] = torch.randn(1, self.inputs.stop - self.inputs.start, generator=self.generator)
        actions = learner.act(v)
        following = v.clone()
        following[:, self.inputs.stop:] = actions  # the agents' columns follow the inputs
        ended = torch.tensor([float((self.ticks + 1) % self.args.episode == 0)])
        learner.store(v, actions, torch.randn(1, generator=self.generator), following, torch.zeros(1), ended)
        if learn:
            learner.update()
        if bool(ended):
            learner.reset_noise(ended > 0)
            following.zero_()
        self.voltages = following
        self.ticks += 1


def learners(args: Args) -> dict[str, tuple[Any, Topology, dict[str, Any]]]:
    """Each timed learner with its topology and options, the reference first."""
    recurrent = Topology.recurrent(args.obs, args.hidden, args.act, leak=args.leak)
    mlp = Topology.mlp(args.obs, [args.hidden], args.act)
    common = {"seed": args.seed, "batch_size": args.batch_size}
    variants = {REFERENCE: (FeedbackDDPG, mlp, {}), "eprop": (EpropLearner, recurrent, {}),
                "eprop-floor": (EpropLearner, recurrent, {"freeze_hidden": True}),
                "eprop-ceiling": (EpropLearner, recurrent, {"credit": "bptt"})}
    return {name: (cls(topology, **common, **options), topology, options)
            for name, (cls, topology, options) in variants.items()}


def cpu_per_call(call: Callable[[], object], calls: int) -> float:
    """CPU seconds per call of ``call`` over ``calls`` calls."""
    start = time.process_time()
    for _ in range(calls):
        call()
    return (time.process_time() - start) / calls


def run(args: Args) -> list[dict[str, Any]]:
    """Fill every learner's buffer, time its update and its tick, and return one row per learner."""
    torch.set_num_threads(args.threads)
    drivers = {name: (Driver(learner, topology, args), options)
               for name, (learner, topology, options) in learners(args).items()}
    for driver, _ in drivers.values():
        for _ in range(args.fill):
            driver.tick(learn=False)
        for _ in range(5):  # warm-up: the first updates allocate
            driver.tick(learn=True)
    times: dict[str, dict[str, list[float]]] = {name: {"update": [], "tick": []} for name in drivers}
    for _ in range(args.repeats):
        for name, (driver, _) in drivers.items():
            times[name]["update"].append(cpu_per_call(driver.learner.update, args.updates))
            times[name]["tick"].append(cpu_per_call(lambda d=driver: d.tick(learn=True), args.updates))
    medians = {name: {what: statistics.median(values) for what, values in quantities.items()}
               for name, quantities in times.items()}
    reference = medians[REFERENCE]
    # the recurrent layer marked "r"
    return [{"learner": name, "options": options,
             "network": f"{args.obs}-{args.hidden}{'' if name == REFERENCE else 'r'}-{args.act}",
             **{f"ms_per_{what}": 1e3 * medians[name][what] for what in ("update", "tick")},
             **{f"ratio_vs_{REFERENCE}_{what}": medians[name][what] / reference[what] for what in ("update", "tick")}}
            for name, (driver, options) in drivers.items()]


def report(rows: list[dict[str, Any]], args: Args, load: tuple[float | None, float | None]) -> str:
    """The table: ms per update and per tick, and their ratios to the reference."""
    lines = [f"e-prop throughput: batch {args.batch_size}, {args.threads} thread(s), CPU time, median of "
             f"{args.repeats} windows of {args.updates} calls; load average {load[0]} -> {load[1]}",
             f"{'learner':<15}{'network':<10}{'ms/update':>11}{'x feedback':>12}{'ms/tick':>10}{'x feedback':>12}"]
    for row in rows:
        lines.append(f"{row['learner']:<15}{row['network']:<10}{row['ms_per_update']:>11.3f}"
                     f"{row[f'ratio_vs_{REFERENCE}_update']:>12.2f}{row['ms_per_tick']:>10.3f}"
                     f"{row[f'ratio_vs_{REFERENCE}_tick']:>12.2f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Time every learner, print the table and write the JSON."""
    parser = config_parser(Args, (__doc__ or "").split("\n\n")[0])
    args = Args(**vars(parser.parse_args(argv)))
    if args.quick:
        args.fill, args.updates, args.repeats = 300, 5, 1
    load_start = load_average_1min()
    rows = run(args)
    load = (load_start, load_average_1min())
    results = {"args": asdict(args), "reference": REFERENCE, "rows": rows, "load_average_1min": list(load),
               "machine": machine_info()}
    return publish(results, report(rows, args, load), args.out)


if __name__ == "__main__":
    main()
