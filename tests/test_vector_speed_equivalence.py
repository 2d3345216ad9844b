"""The training loop's fast paths give the bits of the plain ones they replace.

Each shortcut of the per-step path (``NeuronVecEnv.step_task`` ticking once where holding actions
repeats the first tick, checked against ``step`` in ``tests/test_vector.py``; ``act_settled``'s
working voltages kept between calls, ``act`` concatenating the groups' actions, cached scalar
operands of the exploration noise, the replay buffer's slice copies, the trainer's episode
accounting in numpy) is checked here against the straightforward computation, bit for bit.
Nothing here asserts a speed.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from neuron_env.agents.noise import GaussianNoise
from neuron_env.agents.registry import make_learner
from neuron_env.agents.replay import ReplayBuffer
from neuron_env.agents.train import TrainConfig, Trainer

from neuron_env import NeuronVecEnv, Topology

from .conftest import load_script


def test_final_voltages_of_a_step_without_an_ending_are_the_voltages() -> None:
    env = NeuronVecEnv("Pendulum-v1", Topology.mlp(3, [4], 1), delay=2)
    env.reset(seed=0)
    step = env.step_task(torch.zeros(1, env.topology.num_agents))
    assert not bool(step.truncated.any()) and torch.equal(step.info["final_voltages"], step.voltages)


@pytest.mark.parametrize("name", ["ddpg", "feedback", "es"])
def test_act_settled_keeps_no_state_between_calls(name: str) -> None:
    """Calls on other batches, and of other sizes, in any order: each equals a fresh learner's first call."""
    topology = Topology.mlp(3, [5, 4], 1)
    generator = torch.Generator().manual_seed(2)
    sizes = (2, 2, 2, 2) if name == "es" else (2, 2, 3, 2)  # es keeps one perturbation per copy: fixed E
    batches = [torch.rand(size, topology.num_neurons, generator=generator) * 2 - 1 for size in sizes]
    learner = make_learner(name, topology, {"seed": 5, "learning_starts": 0})
    results = []
    for voltages in batches:
        before = voltages.clone()
        results.append(learner.act_settled(voltages, 3))
        assert torch.equal(voltages, before)  # the caller's voltages are not written
    results[0].fill_(9.0)  # a returned batch is the caller's: writing it changes no later call
    again = learner.act_settled(batches[1], 3)
    twin = make_learner(name, topology, {"seed": 5, "learning_starts": 0})
    expected = [twin.act_settled(voltages, 3) for voltages in [*batches, batches[1]]]
    for ours, reference in zip([*results[1:], again], expected[1:], strict=True):
        assert ours.is_contiguous() and torch.equal(ours, reference)


@pytest.mark.parametrize("network", ["mlp", "recurrent", "sparse"])
@pytest.mark.parametrize("explore", [True, False])
def test_act_of_every_group_equals_filling_the_actions_group_by_group(network: str, explore: bool) -> None:
    topologies = {"mlp": Topology.mlp(3, [5, 4], 1), "recurrent": Topology.recurrent(3, 6, 1, leak=0.3),
                  "sparse": Topology.sparse(3, 8, 1, density=0.3, seed=1)}
    topology = topologies[network]
    learners = [make_learner("ddpg", topology, {"seed": 3, "noise_scale_hidden": 0.05}) for _ in range(2)]
    voltages = torch.rand(4, topology.num_neurons, generator=torch.Generator().manual_seed(0)) * 2 - 1
    ours = learners[0].act(voltages, explore=explore)
    reference = torch.empty(4, topology.num_agents)
    with torch.no_grad():
        for i, lay in enumerate(learners[1].layouts):
            reference[:, lay.agent_slice] = learners[1]._group_action(voltages, i, explore, False)
    assert torch.equal(ours, reference)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("scale", [0.1, 0.3, 1 / 3, 0.0])
def test_gaussian_noise_is_the_scale_times_the_draw(dtype: torch.dtype, scale: float) -> None:
    noises = [GaussianNoise(7, scale, torch.Generator().manual_seed(11)) for _ in range(2)]
    for columns in (slice(0, 5), slice(5, 7), slice(0, 7)):
        ours = noises[0].sample(3, columns, dtype)
        width = len(range(*columns.indices(7)))
        reference = scale * torch.randn(3, width, generator=noises[1].generator, dtype=dtype)
        assert ours.dtype == dtype
        assert torch.equal(ours.view(-1).view(torch.int64 if dtype == torch.float64 else torch.int32),
                           reference.view(-1).view(torch.int64 if dtype == torch.float64 else torch.int32))
    noises[0].scale = 2.5  # a changed scale is read again
    assert torch.equal(noises[0].sample(2, slice(0, 7), dtype),
                       2.5 * torch.randn(2, 7, generator=noises[1].generator, dtype=dtype))


def test_replay_add_stores_what_a_cast_copy_stores() -> None:
    """The slice copy casts as ``.to()`` did; the wrap-around rows keep the index path."""
    buffer = ReplayBuffer(5, 3, 2)
    generator = torch.Generator().manual_seed(0)
    rows = []
    for _ in range(3):  # 2 + 2 + 2 rows: the third batch wraps around
        row = (torch.rand(2, 3, generator=generator, dtype=torch.float64), torch.rand(2, 2, generator=generator),
               torch.rand(2, generator=generator, dtype=torch.float64), torch.rand(2, 3, generator=generator),
               torch.tensor([True, False]))
        buffer.add(*row)
        rows.append(row)
    # rows 0-1: the first batch, 2-3: the second, then the third wraps around: its rows go to 4 and 0
    placed = [(2, 1), (0, 1), (1, 0), (1, 1), (2, 0)]
    for k, name in enumerate(("voltages", "actions", "rewards", "next_voltages", "terminated")):
        expected = torch.stack([rows[batch][k][row] for batch, row in placed]).to(torch.float32)
        assert torch.equal(getattr(buffer, name), expected), name
    assert (buffer.position, buffer.size) == (1, 5)


def test_episode_accounting_counts_every_step_once(tmp_path: Path) -> None:
    """CartPole pays 1 per step: every logged return equals its length, which runs from the previous episode's end.

    At a segment boundary (``checkpoint_every``) the running episodes restart unlogged: an episode
    starts at the later of the previous logged end and its segment's first step.
    """
    segment = 150
    config = TrainConfig(task="CartPole-v1", learner="ddpg", hidden=[4], steps=2 * segment, learning_starts=1000,
                         checkpoint_every=segment, eval_every=0, eval_episodes=1, log_every=100, progress=False,
                         tensorboard=False, out=str(tmp_path / "run"), device="cpu")
    trainer = Trainer(config)
    trainer._evaluate = lambda: np.zeros(1)  # type: ignore[method-assign]
    trainer.run()
    with (tmp_path / "run" / "episodes.csv").open() as file:
        episodes = list(csv.DictReader(file))
    assert len(episodes) == trainer.episodes > 5
    ends, returns, lengths = (np.array([float(row[key]) for row in episodes]) for key in ("step", "return", "length"))
    assert np.array_equal(returns, lengths)
    previous = np.concatenate([[0], ends[:-1]])
    segment_starts = (ends - 1) // segment * segment
    assert np.array_equal(ends - lengths, np.maximum(previous, segment_starts))


def test_part_timer_splits_cpu_time_and_the_time_outside_the_update() -> None:
    bench = load_script(Path(__file__).resolve().parents[1] / "benchmarks" / "loop_throughput.py",
                        "loop_throughput_benchmark_cpu")
    timer = bench.PartTimer()
    timer.wrap("act", lambda: sum(range(2000)))()
    timer.wrap("sample_update", lambda: sum(range(20000)))()
    split = timer.split(total=1.0, steps=4, cpu_total=0.5)
    for key in ("us_per_step", "cpu_us_per_step"):
        parts = split[key]
        assert sum(parts[p] for p in bench.PARTS) == pytest.approx(parts["total"])
        outside = split[key.replace("us_per_step", "us_per_step_outside_update")]
        assert outside == pytest.approx(parts["total"] - parts["sample_update"])
    assert split["cpu_us_per_step"]["total"] == pytest.approx(0.5e6 / 4)
    assert "cpu_us_per_step" not in timer.split(total=1.0, steps=4)
