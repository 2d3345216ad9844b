"""BenchMARL custom task over neuron_v0.parallel_env: one agent group per layer, MAPPO and IPPO."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

from .conftest import load_example

pytest.importorskip("benchmarl")  # imports torchvision: needs a matching torch/torchvision pair


# torchrl 0.11 deprecates its own SyncDataCollector, which BenchMARL 1.5 uses.
pytestmark = pytest.mark.filterwarnings("ignore:SyncDataCollector has been deprecated:DeprecationWarning")


@pytest.fixture(scope="module")
def example() -> ModuleType:
    module = load_example("benchmarl_task")
    return module




def test_task_has_one_group_per_layer_and_a_state(example: ModuleType) -> None:
    task = example.NeuronTask.NEURON.get_task(config={"task": "Pendulum-v1", "obs_dim": 3, "act_dim": 1,
                                                      "hidden": [4, 5], "max_cycles": 10})
    env = task.get_env_fun(num_envs=1, continuous_actions=True, seed=0, device="cpu")()
    assert {group: len(agents) for group, agents in task.group_map(env).items()} == {"h1": 4, "h2": 5, "out": 1}
    observation_spec = task.observation_spec(env)
    assert observation_spec["h1", "observation"].shape == (4, 3)
    assert observation_spec["h2", "observation"].shape == (5, 4)
    assert task.state_spec(env)["state"].shape == (3 + 4 + 5 + 1,)  # every neuron's voltage
    assert task.max_steps(env) == 10
    rollout = env.rollout(10)
    assert rollout["next", "done"][-1].all()
    env.close()


@pytest.mark.parametrize("algorithm", ["mappo", "ippo"])
def test_runs_a_few_iterations(example: ModuleType, algorithm: str, tmp_path: Path, one_thread: None) -> None:
    args = example.Args(algorithm=algorithm, hidden=(4,), max_cycles=20, max_n_iters=2, frames_per_batch=40,
                        n_envs=2, minibatch_size=20, minibatch_iters=2, num_cells=(8,), save_folder=str(tmp_path))
    experiment = example.train(args)
    assert experiment.n_iters_performed == 2
    assert experiment.total_frames == 80  # frames are ticks
    assert set(experiment.group_map) == {"h1", "out"}
