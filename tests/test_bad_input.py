"""Bad input: every error is typed and names the agent or value and the fix."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from neuron_env import (
    InvalidActionError,
    NeuronVecEnv,
    ResetNeeded,
    TaskError,
    Topology,
    TopologyError,
    neuron_v0,
)


@pytest.fixture
def env():
    e = neuron_v0.parallel_env(task="Pendulum-v1", topology=Topology.mlp(3, [4], 1))
    e.reset(seed=0)
    yield e
    e.close()


def zeros(env):
    return {a: np.zeros(1, dtype=np.float32) for a in env.agents}


def test_missing_agent(env):
    actions = zeros(env)
    del actions["h1_2"]
    with pytest.raises(InvalidActionError, match=r"missing for 1 agents, e.g. \['h1_2'\]"):
        env.step(actions)


def test_unknown_agent(env):
    actions = zeros(env)
    actions["h9_0"] = np.zeros(1)
    with pytest.raises(InvalidActionError, match="unknown agents \\['h9_0'\\]"):
        env.step(actions)


def test_wrong_shape(env):
    actions = zeros(env)
    actions["h1_1"] = np.zeros(2)
    with pytest.raises(InvalidActionError, match=r"agent 'h1_1' has shape \(2,\); expected shape \(1,\)"):
        env.step(actions)


def test_scalars_are_accepted(env):
    env.step(dict.fromkeys(env.agents, 0.5))
    # 3 inputs, then 4 hidden and 1 output neuron: one tick sets every agent's voltage to its action
    np.testing.assert_array_equal(env.state()[3:], np.full(5, 0.5, dtype=np.float32))


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite(env, value):
    actions = zeros(env)
    actions["out_0"] = np.array([value])
    with pytest.raises(InvalidActionError, match="agent 'out_0' is (nan|inf); actions must be finite"):
        env.step(actions)


def test_out_of_range_errors_by_default(env):
    actions = zeros(env)
    actions["h1_3"] = np.array([1.5])
    with pytest.raises(InvalidActionError, match=r"agent 'h1_3' is 1.5, outside its range \[-1.0, 1.0\].*clip"):
        env.step(actions)


def test_out_of_range_clip_is_documented_option():
    env = neuron_v0.parallel_env(task="Pendulum-v1", topology=Topology.mlp(3, [4], 1), out_of_range="clip")
    env.reset(seed=0)
    env.step({a: np.array([5.0]) for a in env.agents})
    assert env.state()[3:7].max() == pytest.approx(1.0)


def _bad_action_cases(activation: str, value: float, topology: Topology) -> list[tuple[str, bool]]:
    """``(agent, rejected)`` at the first, a middle and the last agent (the output neuron)."""
    cases = []
    for index in (0, topology.num_agents // 2, topology.num_agents - 1):
        agent = topology.agent_ids[index]
        hidden = agent.startswith("h")
        # identity hidden neurons are unbounded; relu's range [0, inf) allows 1.5; NaN and inf never pass
        in_range = np.isfinite(value) and hidden and (activation == "identity" or (activation == "relu" and value > 0))
        cases.append((agent, not in_range))
    return cases


@pytest.mark.parametrize("activation", ["tanh", "relu", "identity"])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf, 1.5, -1.5])
def test_parallel_env_bad_action_at_every_position(activation, value):
    """Through the PettingZoo view: NaN, ±inf and out-of-range values at the first, middle and last agent."""
    topology = Topology.mlp(3, [4, 3], 1, activation=activation)  # agents h1_0..h1_3, h2_0..h2_2, out_0
    env = neuron_v0.parallel_env(task="Pendulum-v1", topology=topology)
    env.reset(seed=0)
    valid = {a: np.array([0.5], dtype=np.float32) for a in env.agents}
    for agent, rejected in _bad_action_cases(activation, value, topology):
        actions = {**valid, agent: np.array([value], dtype=np.float32)}
        before = env.state()
        if rejected:
            with pytest.raises(InvalidActionError, match=f"action of agent '{agent}' is "):
                env.step(actions)
            np.testing.assert_array_equal(env.state(), before)  # a rejected tick changes nothing
            assert env.agents  # and the episode goes on
        else:
            env.step(actions)
            assert env.state()[3 + topology.agent_ids.index(agent)] == np.float32(value)
    env.close()


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_parallel_env_clip_mode_still_rejects_non_finite_everywhere(value):
    topology = Topology.mlp(3, [4, 3], 1)
    env = neuron_v0.parallel_env(task="Pendulum-v1", topology=topology, out_of_range="clip")
    env.reset(seed=0)
    for index in (0, topology.num_agents // 2, topology.num_agents - 1):
        agent = topology.agent_ids[index]
        actions = {a: np.array([0.0], dtype=np.float32) for a in env.agents} | {agent: np.array([value])}
        with pytest.raises(InvalidActionError, match=f"agent '{agent}' is (nan|inf|-inf); actions must be finite"):
            env.step(actions)
    env.close()


def test_parallel_env_and_core_name_the_same_error():
    """The view and the core share one check: the same bad action gives the same message."""
    topology = Topology.mlp(3, [4], 1)
    env = neuron_v0.parallel_env(task="Pendulum-v1", topology=topology)
    core = NeuronVecEnv("Pendulum-v1", topology)
    env.reset(seed=0)
    core.reset(seed=0)
    actions = np.zeros((1, topology.num_agents), dtype=np.float32)
    actions[0, 2] = 3.0
    with pytest.raises(InvalidActionError) as from_view:
        env.step({a: actions[0, i:i + 1] for i, a in enumerate(env.agents)})
    with pytest.raises(InvalidActionError) as from_tensor:
        core.step(torch.from_numpy(actions))
    with pytest.raises(InvalidActionError) as from_arrays:
        core.step_arrays(actions)
    assert str(from_view.value) == str(from_tensor.value) == str(from_arrays.value)
    assert "agent 'h1_2' is 3" in str(from_view.value)


def test_task_step_infos_needs_unbatched_infos():
    core = NeuronVecEnv("Pendulum-v1", Topology.mlp(3, [4], 1))
    with pytest.raises(RuntimeError, match="batch_task_infos=False"):
        core.task_step_infos  # noqa: B018 - the property raises
    with pytest.raises(ValueError, match=r"batch_task_infos=False needs num_envs=1 .*num_envs=2"):
        NeuronVecEnv("Pendulum-v1", Topology.mlp(3, [4], 1), num_envs=2, batch_task_infos=False)


def test_step_before_reset():
    env = neuron_v0.parallel_env(task="Pendulum-v1", topology=Topology.mlp(3, [4], 1))
    with pytest.raises(ResetNeeded, match="call reset"):
        env.step({})


def test_step_after_episode_end():
    env = neuron_v0.parallel_env(task="Pendulum-v1", topology=Topology.mlp(3, [4], 1), max_cycles=2)
    env.reset(seed=0)
    actions = zeros(env)
    env.step(actions)
    env.step(actions)
    assert env.agents == []
    with pytest.raises(ResetNeeded, match="episode has ended"):
        env.step(actions)


def test_discrete_task_with_one_output_neuron_names_the_size_it_needs():
    """CartPole's Discrete(2) is decoded by argmax over two output neurons: one is a size error, not a type error."""
    with pytest.raises(TopologyError, match=r"output group 'out' has 1 neurons .* actions have 2 .* act_dim=2"):
        neuron_v0.parallel_env(task="CartPole-v1", topology=Topology.mlp(4, [4], 1))
    with pytest.raises(TopologyError, match=r"observations have 16 dimensions once encoded \(identity: one-hot"):
        NeuronVecEnv("FrozenLake-v1", Topology.mlp(1, [4], 4))


class TextObservationTask(gym.Env):
    """A task observing a Text space, which has no fixed-size encoding."""

    observation_space = gym.spaces.Text(8)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return "hello", {}

    def step(self, action):
        return "hello", 0.0, False, False, {}


class GraphActionTask(TextObservationTask):
    """A task acting in a Graph space, which no decoder serves."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (2,))
    action_space = gym.spaces.Graph(gym.spaces.Discrete(2), None)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(2, np.float32), {}


@pytest.mark.parametrize("space", [
    gym.spaces.Text(8),
    gym.spaces.Sequence(gym.spaces.Discrete(3)),
    gym.spaces.Graph(gym.spaces.Box(-1.0, 1.0, (2,)), None),
    gym.spaces.Tuple((gym.spaces.Discrete(2), gym.spaces.Text(4))),
])
def test_an_observation_space_without_encoding_is_one_error_naming_it_and_encoder(space):
    from neuron_env.spaces import make_observation_encoder

    with pytest.raises(TaskError, match=r"cannot encode .*Pass encoder=") as error:
        make_observation_encoder(space, name="'T'")
    assert type(space).__name__ in str(error.value) and len(str(error.value).splitlines()) == 1


def test_unsupported_task_spaces_fail_at_construction_naming_the_argument():
    with pytest.raises(TaskError, match=r"observation space Text\(.*encoder="):
        neuron_v0.parallel_env(task=TextObservationTask)
    with pytest.raises(TaskError, match=r"observation space Text\(.*encoder="):
        NeuronVecEnv(TextObservationTask, Topology.mlp(1, [2], 2))
    with pytest.raises(TaskError, match=r"action space Graph\(.*decoder="):
        Topology.for_task(GraphActionTask, [2])


def test_bad_encoder_and_decoder_values_name_the_choices():
    with pytest.raises(TaskError, match=r"encoder='onehot' is unknown; use one of \('identity', 'affine'"):
        Topology.for_task("CartPole-v1", [2], encoder="onehot")
    with pytest.raises(TaskError, match=r"decoder='argmax' does not fit .* Box.*\('affine',\)"):
        neuron_v0.parallel_env(task="Pendulum-v1", hidden=(2,), decoder="argmax")
    with pytest.raises(TaskError, match=r"decoder='affine' does not fit .* Discrete\(2\).*\('argmax', 'sample'\)"):
        NeuronVecEnv("CartPole-v1", Topology.mlp(4, [2], 2), decoder="affine")


def test_sizes_must_match_task():
    message = "input group 'in' has 5 neurons but task 'Pendulum-v1' observations have 3"
    with pytest.raises(TopologyError, match=message):
        neuron_v0.parallel_env(task="Pendulum-v1", topology=Topology.mlp(5, [4], 1))
    with pytest.raises(TopologyError, match="output group 'out' has 2 neurons .* actions have 1"):
        neuron_v0.parallel_env(task="Pendulum-v1", topology=Topology.mlp(3, [4], 2))


def test_unknown_agent_space_lookup(env):
    with pytest.raises(KeyError, match="unknown agent 'x_0'"):
        env.observation_space("x_0")


def test_vec_env_errors_name_agent_and_copy():
    core = NeuronVecEnv("Pendulum-v1", Topology.mlp(3, [4], 1), num_envs=2)
    with pytest.raises(ResetNeeded):
        core.step(torch.zeros(2, 5))
    core.reset(seed=0)
    with pytest.raises(InvalidActionError, match=r"expected \(num_envs, num_agents\) = \(2, 5\)"):
        core.step(torch.zeros(5))
    bad = torch.zeros(2, 5)
    bad[1, 4] = float("nan")
    with pytest.raises(InvalidActionError, match="agent 'out_0' in env copy 1 is nan"):
        core.step(bad)


@pytest.mark.parametrize("activation", ["tanh", "relu", "identity"])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf, 1.5, -1.5])
def test_vec_env_range_check_catches_every_position(activation, value):
    # relu hidden + tanh output: two spans of equal range; identity: infinite bounds
    topology = Topology.mlp(3, [4, 3], 1, activation=activation)
    core = NeuronVecEnv("Pendulum-v1", topology, num_envs=3)
    core.reset(seed=0)
    low = 0.0 if activation == "relu" else -1.0
    valid = torch.full((3, topology.num_agents), low + 0.5)
    core.step(valid)  # in range everywhere: accepted
    for env_index, agent_index in [(0, 0), (1, 4), (2, topology.num_agents - 1)]:
        bad = valid.clone()
        bad[env_index, agent_index] = value
        agent = topology.agent_ids[agent_index]
        rejected = not np.isfinite(value) or agent.startswith("out") or activation != "identity"
        rejected = rejected and not (activation == "relu" and agent.startswith("h") and value == 1.5)
        if rejected:
            with pytest.raises(InvalidActionError, match=f"agent '{agent}' in env copy {env_index}"):
                core.step(bad)
        else:
            core.step(bad)  # within the agent's range (identity is unbounded; relu allows 1.5)


def test_invalid_constructor_arguments():
    with pytest.raises(ValueError, match="delay=0"):
        NeuronVecEnv("Pendulum-v1", Topology.mlp(3, [4], 1), delay=0)
    with pytest.raises(ValueError, match="observe='some'"):
        neuron_v0.parallel_env(task="Pendulum-v1", observe="some")
    with pytest.raises(TaskError, match="Gymnasium id"):
        NeuronVecEnv(42, Topology.mlp(3, [4], 1))
    with pytest.raises(ValueError, match="clock='tick'; use 'sync'"):
        NeuronVecEnv("Pendulum-v1", Topology.mlp(3, [4], 1), clock="tick")
    for rate in (0.0, 1.5, float("nan"), True):
        with pytest.raises(ValueError, match=r"firing_rate=.* must be a probability in \(0, 1\]"):
            neuron_v0.parallel_env(task="Pendulum-v1", clock="async", firing_rate=rate)
    with pytest.raises(ValueError, match="firing_rate=0.5 needs clock='async'"):
        NeuronVecEnv("Pendulum-v1", Topology.mlp(3, [4], 1), firing_rate=0.5)
    with pytest.raises(gym.error.Error):
        NeuronVecEnv("NoSuchTask-v0", Topology.mlp(3, [4], 1))
