"""AgileRL MATD3 over neuron_v0.parallel_env: one group (shared actor and critic) per layer."""

from __future__ import annotations

from types import ModuleType

import pytest

from .conftest import load_example

pytest.importorskip("agilerl.algorithms")  # agilerl 2.58 also needs peft to import this


pytestmark = pytest.mark.filterwarnings("ignore:The given NumPy array is not writable:UserWarning")


@pytest.fixture(scope="module")
def example() -> ModuleType:
    module = load_example("agilerl_matd3")
    return module




def test_agents_are_grouped_by_layer(example: ModuleType) -> None:
    args = example.Args(hidden=(4, 5))
    env = example.make_env(args)
    agent = example.make_agent(args, env)
    assert agent.shared_agent_ids == ["h1", "h2", "out"]
    assert set(agent.actors.keys()) == {"h1", "h2", "out"}
    env.close()


def test_matd3_trains_a_few_hundred_ticks(example: ModuleType, one_thread: None,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    learn, losses = example.MATD3.learn, []

    def counting_learn(self: object, experiences: object) -> object:
        losses.append(learn(self, experiences))
        return losses[-1]

    monkeypatch.setattr(example.MATD3, "learn", counting_learn)
    args = example.Args(hidden=(4,), max_cycles=30, max_steps=200, learning_starts=50, batch_size=32,
                        hidden_size=(16,))
    agent, returns = example.train(args)
    assert len(returns) == 200 // 30  # episodes of 30 ticks ended and AgileRL's vector env reset them
    assert all(r < 0 for r in returns)  # Pendulum's reward is never positive
    assert len(losses) == len(range(50, 200, 5))  # every learn_step ticks once the buffer holds 50
    assert set(losses[-1]) == {"h1", "out"}
