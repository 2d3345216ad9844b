"""Update throughput: ``LocalDDPG.update()`` against Stable-Baselines3 DDPG's ``train()``, same network, same run.

A thin entry for a checkout of the repository: the benchmark itself (what it measures, its flags,
its outputs) is the package module ``neuron_env.baselines.experiments.update_benchmark``, whose
module documentation describes it in full. Run::

    python benchmarks/update_throughput.py            # the same as:
    python -m neuron_env.baselines.experiments.update_benchmark
    python benchmarks/update_throughput.py --quick    # smoke run (about 20 s)

Writes ``benchmarks/results/update_throughput.json`` (``--out``) and prints a table.
"""

from __future__ import annotations

from neuron_env.baselines.experiments.update_benchmark import main

if __name__ == "__main__":
    main()
