"""The batched core: clock, rewards, autoreset, leak, devices."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from neuron_env import NetworkPolicy, NeuronVecEnv, Topology, apply_actions, network_actions
from neuron_env import vector as vector_module


def test_shapes_and_clock():
    topology = Topology.mlp(3, [4, 4], 1)
    core = NeuronVecEnv("Pendulum-v1", topology, num_envs=3)
    voltages, _ = core.reset(seed=0)
    assert voltages.shape == (3, topology.num_neurons) and core.delay == 3
    assert (voltages[:, 3:] == 0).all()
    stepped = []
    for _ in range(6):
        result = core.step(torch.zeros(3, topology.num_agents))
        stepped.append(result.task_stepped)
        assert result.reward.shape == (3,) and result.terminated.dtype == torch.bool
        if not result.task_stepped:
            assert (result.reward == 0).all()
    assert stepped == [False, False, True, False, False, True]


def test_copies_are_seeded_seed_plus_index():
    core = NeuronVecEnv("Pendulum-v1", Topology.mlp(3, [4], 1), num_envs=2)
    voltages, _ = core.reset(seed=10)
    plain = gym.make("Pendulum-v1")
    np.testing.assert_allclose(voltages[1, :3].numpy(), plain.reset(seed=11)[0], atol=1e-6)


def test_same_step_autoreset_restarts_ended_copies():
    topology = Topology.mlp(3, [4], 1)
    core = NeuronVecEnv("Pendulum-v1", topology, num_envs=2, task_kwargs={"max_episode_steps": 3})
    core.reset(seed=0)
    ones = torch.full((2, topology.num_agents), 0.5)
    for _ in range(5):
        core.step(ones)
    result = core.step(ones)  # 3rd task step: time limit
    assert result.task_stepped and result.truncated.all()
    assert (result.voltages[:, 3:] == 0).all()  # new episode: hidden/output restart at 0
    final = result.info["final_voltages"]
    assert (final[:, 3:] == 0.5).all()  # final voltages keep the last tick
    assert not torch.equal(final[:, :3], result.voltages[:, :3])


def test_leak_integrates_actions():
    topology = Topology.recurrent(3, 2, 1, leak=0.5)
    core = NeuronVecEnv("Pendulum-v1", topology)
    core.reset(seed=0)
    core.step(torch.ones(1, 3))
    core.step(torch.ones(1, 3))
    np.testing.assert_allclose(core.voltages[0, 3:5].numpy(), [0.75, 0.75])
    assert core.delay == 1


def test_policy_tensor_and_dict_paths_agree():
    topology = Topology.sparse(3, 6, 1, density=0.5, seed=0)
    policy = NetworkPolicy(topology, seed=1)
    voltages = torch.rand(1, topology.num_neurons)
    tensor_actions = policy(voltages)[0].numpy()
    from neuron_env import neuron_v0

    env = neuron_v0.parallel_env(task="Pendulum-v1", topology=topology)
    env.reset(seed=0)
    env.core._voltages = voltages.clone()
    observations = env._observations(voltages[0].numpy())
    dict_actions = policy.act(observations)
    np.testing.assert_allclose([dict_actions[a][0] for a in topology.agent_ids], tensor_actions, atol=1e-6)


class _InfoTask(gym.Env):
    """Pendulum with a step info and a reset info, to compare how infos are batched."""

    def __init__(self):
        self.env = gym.make("Pendulum-v1", max_episode_steps=4)
        self.observation_space, self.action_space = self.env.observation_space, self.env.action_space

    def reset(self, *, seed=None, options=None):
        obs, _ = self.env.reset(seed=seed)
        return obs, {"reset_count": 1}

    def step(self, action):
        obs, reward, terminated, truncated, _ = self.env.step(action)
        return obs, reward, terminated, truncated, {"torque": float(action[0]), "nested": {"x": 1}}


@pytest.mark.parametrize("task", ["Pendulum-v1", _InfoTask])
@pytest.mark.parametrize("num_envs", [1, 2])
def test_lean_vector_matches_gymnasium(monkeypatch, task, num_envs):
    def run():
        topology = Topology.mlp(3, [4], 1)
        kwargs = {"max_episode_steps": 4} if isinstance(task, str) else None
        core = NeuronVecEnv(task, topology, num_envs=num_envs, task_kwargs=kwargs)
        policy = NetworkPolicy(topology, seed=0)
        voltages, _ = core.reset(seed=5)
        trace = []
        for _ in range(20):
            result = core.step(policy(voltages))
            voltages = result.voltages
            trace.append((voltages.clone(), result.reward.clone(), result.truncated.clone(), result.info))
        return trace

    monkeypatch.setattr(vector_module, "_SAME_STEP", None)  # the lean path for every num_envs
    lean = run()
    monkeypatch.undo()
    if num_envs == 1:  # otherwise gymnasium's SyncVectorEnv is the default
        monkeypatch.setattr(NeuronVecEnv, "_make_vector", staticmethod(
            lambda factory, n, _: gym.vector.SyncVectorEnv([factory] * n, autoreset_mode=vector_module._SAME_STEP)))
    reference = run()
    for (v1, r1, t1, i1), (v2, r2, t2, i2) in zip(reference, lean, strict=True):
        torch.testing.assert_close(v1, v2)
        torch.testing.assert_close(r1, r2)
        assert torch.equal(t1, t2)
        assert i1.keys() == i2.keys()
        for key in i1.keys() - {"final_voltages", "task_action", "final_obs", "final_info"}:
            assert str(i1[key]) == str(i2[key]), key


def test_pure_functions_compose_to_forward_pass():
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.ReLU(), torch.nn.Linear(5, 2), torch.nn.Sigmoid())
    topology, weights = Topology.from_module(module)
    x = torch.randn(4, 3)
    v = torch.zeros(4, topology.num_neurons)
    v[:, :3] = x
    index = torch.as_tensor(topology.agent_neuron_index)
    for _ in range(topology.depth):
        v = apply_actions(v, network_actions(v, topology, weights), index, None)
    torch.testing.assert_close(v[:, -2:], module(x).detach())


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device"))])
def test_devices(device):
    topology = Topology.mlp(3, [4], 1)
    core = NeuronVecEnv("Pendulum-v1", topology, num_envs=2, device=device)
    policy = NetworkPolicy(topology, device=device)
    voltages, _ = core.reset(seed=0)
    for _ in range(10):
        result = core.step(policy(voltages))
        voltages = result.voltages
        assert voltages.device.type == device
    assert torch.isfinite(voltages).all()


@pytest.mark.skipif(vector_module._SAME_STEP is None, reason="async needs gymnasium >= 1.1 (same-step autoreset)")
def test_async_vectorization_matches_sync():
    topology = Topology.mlp(3, [4], 1)
    policy = NetworkPolicy(topology, seed=0)
    finals = []
    for vectorization in ("sync", "async"):
        core = NeuronVecEnv("Pendulum-v1", topology, num_envs=2, vectorization=vectorization)
        voltages, _ = core.reset(seed=3)
        for _ in range(12):
            voltages = core.step(policy(voltages)).voltages
        finals.append(voltages)
        core.close()
    torch.testing.assert_close(finals[0], finals[1])


def test_parallel_env_passes_task_info():
    from neuron_env import neuron_v0

    env = neuron_v0.parallel_env(task=_InfoTask, topology=Topology.mlp(3, [4], 1))
    env.reset(seed=0)
    infos_per_tick = []
    while env.agents:
        _, _, _, _, infos = env.step(dict.fromkeys(env.agents, 0.25))
        assert infos["h1_0"] is not infos["h1_1"]  # wrappers write per-agent keys
        infos_per_tick.append(infos["h1_0"])
    assert infos_per_tick[0] == {}  # between task steps
    assert infos_per_tick[1]["task_stepped"] and infos_per_tick[1]["task"]["torque"] == pytest.approx(0.5)
    assert infos_per_tick[1]["task"]["nested"] == {"x": 1}
    assert "reset_count" not in infos_per_tick[-1]["task"]  # the final step's info, not the autoreset's
    assert infos_per_tick[-1]["task_stepped"] and "torque" in infos_per_tick[-1]["task"]


def _hidden_first_topology() -> Topology:
    """Input group in the middle, so the agents' voltage positions are not one slice."""
    from neuron_env import NeuronGroup, Projection

    groups = [NeuronGroup("h", 4, "relu", leak=0.3), NeuronGroup("in", 3, "identity", "input"),
              NeuronGroup("out", 1, "tanh", "output")]
    return Topology(groups, [Projection("in", "h"), Projection("h", "h"), Projection("h", "out")])


@pytest.mark.parametrize(("topology", "encoder", "num_envs"), [
    (Topology.mlp(3, [5, 4], 1), "identity", 1),
    (Topology.recurrent(3, 6, 1, leak=0.4), "affine", 3),
    (_hidden_first_topology(), "affine", 2),
])
def test_cpu_numpy_path_equals_torch_path(topology, encoder, num_envs):
    """On CPU the tick runs in numpy; the torch path (used on other devices) must agree with it."""
    assert not isinstance(_hidden_first_topology().agent_span, slice)
    policy = NetworkPolicy(topology, seed=1)
    traces = []
    for numpy_path in (True, False):
        core = NeuronVecEnv("Pendulum-v1", topology, num_envs=num_envs, encoder=encoder, out_of_range="clip",
                            task_kwargs={"max_episode_steps": 5})
        assert core._numpy
        core._numpy = numpy_path
        voltages, _ = core.reset(seed=4)
        trace = []
        for tick in range(40):  # several autoresets
            actions = policy(voltages) * (1.5 if tick % 4 == 0 else 1.0)  # some outside the range: clipped
            result = core.step(actions)
            voltages = result.voltages
            trace.append(result)
        traces.append(trace)
    for ours, reference in zip(*traces, strict=True):
        torch.testing.assert_close(ours.voltages, reference.voltages, rtol=0, atol=1e-6)
        torch.testing.assert_close(ours.reward, reference.reward)
        assert torch.equal(ours.terminated, reference.terminated) and torch.equal(ours.truncated, reference.truncated)
        assert ours.task_stepped == reference.task_stepped
        if ours.task_stepped:
            torch.testing.assert_close(ours.info["final_voltages"], reference.info["final_voltages"], rtol=0, atol=1e-6)
            np.testing.assert_allclose(ours.info["task_action"], reference.info["task_action"], rtol=0, atol=1e-6)
    assert any(step.truncated.any() for step in traces[0])


def test_lean_vector_env_raw_infos_match_batched():
    """With ``batch_infos=False`` the lean env keeps only ``final_obs`` and the copies' raw infos."""
    factories = [lambda: gym.make("Pendulum-v1", max_episode_steps=3)] * 2
    batched, raw = vector_module._SameStepSyncVectorEnv(factories), vector_module._SameStepSyncVectorEnv(factories)
    raw.batch_infos = False
    batched.reset(seed=0)
    raw.reset(seed=0)
    for _ in range(3):
        step_b = batched.step(np.zeros((2, 1), np.float32))
        step_r = raw.step(np.zeros((2, 1), np.float32))
        np.testing.assert_array_equal(step_b[0], step_r[0])
    assert step_r[4].keys() == {"final_obs"}
    for i in range(2):
        np.testing.assert_array_equal(step_r[4]["final_obs"][i], step_b[4]["final_obs"][i])
    assert raw.step_infos == [{}, {}] and len(batched.step_infos) == 2


def test_affine_map_numpy_equals_torch():
    from neuron_env.dynamics import make_decoder, make_encoder

    maps = [make_decoder("tanh", np.array([-2.0, 0.0, -np.inf]), np.array([2.0, 1.0, np.inf])),
            make_encoder(np.array([-1.0, -8.0, -np.inf]), np.array([1.0, 8.0, np.inf]), "affine")]
    x = np.array([[-3.0, 0.2, 5.0], [0.5, -1.5, np.nan], [np.inf, -np.inf, 0.0]], dtype=np.float32)
    for affine in maps:
        np.testing.assert_allclose(affine.apply_numpy(x), affine(torch.from_numpy(x)).numpy(), rtol=1e-6, atol=1e-6)


def test_parallel_env_tensor_path_equals_numpy_path():
    """The PettingZoo view on a GPU core goes through tensors; forced on CPU it must agree."""
    from neuron_env import neuron_v0

    topology = Topology.mlp(3, [4], 1)
    policy = NetworkPolicy(topology, seed=2)
    runs = []
    for numpy_path in (True, False):
        env = neuron_v0.parallel_env("Pendulum-v1", topology, max_cycles=30, out_of_range="clip")
        env.core._numpy = numpy_path
        observations, _ = env.reset(seed=7)
        run = []
        while env.agents:
            actions = {agent: np.clip(action * 1.2, -1.5, 1.5) for agent, action in policy.act(observations).items()}
            observations, rewards, terminations, truncations, infos = env.step(actions)
            run.append((observations, rewards, terminations, truncations, infos, env.state()))
        runs.append(run)
    assert len(runs[0]) == len(runs[1]) == 30
    for ours, reference in zip(*runs, strict=True):
        for agent in topology.agent_ids:
            np.testing.assert_allclose(ours[0][agent], reference[0][agent], rtol=0, atol=1e-6)
        assert ours[1:4] == reference[1:4]
        assert ours[4].keys() == reference[4].keys() and str(ours[4]["h1_0"]) == str(reference[4]["h1_0"])
        np.testing.assert_allclose(ours[5], reference[5], rtol=0, atol=1e-6)


# ---------------------------------------------------------------------------------- asynchronous clock
def clock_trace(clock: str, firing_rate: float, numpy_path: bool = True, task: str = "Pendulum-v1",
                num_envs: int = 2, ticks: int = 40) -> list:
    """Every tick's result of a policy-driven run (several autoresets), on the numpy or the torch path."""
    topology = Topology.recurrent(3 if task == "Pendulum-v1" else 4, 5, 1 if task == "Pendulum-v1" else 2, leak=0.4)
    policy = NetworkPolicy(topology, seed=1)
    core = NeuronVecEnv(task, topology, num_envs=num_envs, clock=clock, firing_rate=firing_rate,
                        task_kwargs={"max_episode_steps": 7})
    core._numpy = numpy_path
    voltages, _ = core.reset(seed=5)
    trace = [voltages.clone()]
    for _ in range(ticks):
        result = core.step(policy(voltages))
        voltages = result.voltages
        trace.append(result)
    core.close()
    return trace


@pytest.mark.parametrize("task", ["Pendulum-v1", "CartPole-v1"])
@pytest.mark.parametrize("numpy_path", [True, False])
def test_async_clock_at_rate_one_is_the_sync_clock_bit_for_bit(task, numpy_path):
    sync, at_one = clock_trace("sync", 1.0, numpy_path, task), clock_trace("async", 1.0, numpy_path, task)
    assert torch.equal(sync[0], at_one[0])
    for ours, reference in zip(at_one[1:], sync[1:], strict=True):
        assert ours.info.pop("fired").all()
        assert torch.equal(ours.voltages, reference.voltages) and torch.equal(ours.reward, reference.reward)
        assert ours.task_stepped == reference.task_stepped and ours.info.keys() == reference.info.keys()
        if ours.task_stepped:
            assert torch.equal(ours.info["final_voltages"], reference.info["final_voltages"])
            np.testing.assert_array_equal(ours.info["task_action"], reference.info["task_action"])


def test_silent_neurons_hold_or_leak_and_their_actions_are_ignored():
    topology = Topology.recurrent(3, 40, 1, leak=0.5)
    core = NeuronVecEnv("Pendulum-v1", topology, num_envs=3, clock="async", firing_rate=0.3)
    core.reset(seed=0)
    core.step(torch.full((3, topology.num_agents), -0.4))
    actions = torch.full((3, topology.num_agents), 0.8)
    before = core.voltages.clone()
    result = core.step(actions)
    fired = result.info["fired"]
    assert fired.shape == (3, topology.num_agents) and fired.dtype == torch.bool
    agents = torch.as_tensor(topology.agent_neuron_index)
    leak = core.leak  # 0.5 in the recurrent group, 0 in the output group
    driven = leak * before[:, agents] + (1 - leak) * actions
    silent = torch.where(leak > 0, leak * before[:, agents], before[:, agents])  # leaky: decays; else: holds
    expected = torch.where(fired, driven, silent)
    torch.testing.assert_close(result.voltages[:, agents], expected, rtol=0, atol=0)
    # a leak-free group holds its voltage exactly
    plain = NeuronVecEnv("Pendulum-v1", Topology.mlp(3, [40], 1), num_envs=2, clock="async", firing_rate=0.5)
    plain.reset(seed=0)
    plain.step(torch.full((2, 41), 0.3))
    before = plain.voltages.clone()
    result = plain.step(torch.full((2, 41), -0.6))
    expected = torch.where(result.info["fired"], torch.tensor(-0.6), before[:, 3:])
    assert torch.equal(result.voltages[:, 3:], expected)
    assert ((result.voltages[:, 3:] == 0.3) & ~result.info["fired"]).any()  # silent, holding the last tick's 0.3
    assert result.task_stepped  # the task still steps every delay (2) ticks


def test_async_firing_is_seeded_per_copy_at_the_given_rate():
    def masks(seed: int, num_envs: int, ticks: int = 30) -> np.ndarray:
        core = NeuronVecEnv("Pendulum-v1", Topology.mlp(3, [20], 1), num_envs=num_envs, clock="async",
                            firing_rate=0.25)
        core.reset(seed=seed)
        fired = [core.step(torch.zeros(num_envs, 21)).info["fired"].numpy() for _ in range(ticks)]
        return np.stack(fired, axis=1)  # [E, ticks, agents]

    three = masks(7, 3)
    assert abs(three.mean() - 0.25) < 0.03
    np.testing.assert_array_equal(three[2], masks(9, 1)[0])  # copy i of seed s is a single copy of seed s + i
    np.testing.assert_array_equal(three, masks(7, 3))
    assert not np.array_equal(three, masks(8, 3))


def test_async_numpy_path_equals_torch_path():
    numpy_trace, torch_trace = clock_trace("async", 0.6, True), clock_trace("async", 0.6, False)
    for ours, reference in zip(numpy_trace[1:], torch_trace[1:], strict=True):
        assert torch.equal(ours.info["fired"], reference.info["fired"])
        torch.testing.assert_close(ours.voltages, reference.voltages, rtol=0, atol=1e-6)


@pytest.mark.parametrize("numpy_path", [True, False])
@pytest.mark.parametrize("clock", ["sync", "async"])
@pytest.mark.parametrize("network", ["mlp", "leaky"])
def test_step_task_holds_the_actions_until_the_task_steps_as_repeated_steps_do(numpy_path, clock, network):
    """``step_task(a)`` == ``step(a)`` until a task tick, from a task tick and from mid-step alike.

    Leak-free on the sync clock ``step_task`` computes only the last held tick (each sets the same
    voltages); with a leak or the async clock every tick counts: both give the bits of ``step``.
    """
    topology = Topology.mlp(3, [5, 4], 1) if network == "mlp" else Topology.recurrent(3, 6, 1, leak=0.3)
    options = {"clock": clock, "firing_rate": 0.6} if clock == "async" else {}
    envs = [NeuronVecEnv("Pendulum-v1", topology, num_envs=2, delay=3, **options) for _ in range(2)]
    for env in envs:
        env._numpy = numpy_path and env._numpy
        env.reset(seed=3)
    assert envs[0]._hold_repeats == (network == "mlp" and clock == "sync")
    fused, stepped = envs
    generator = torch.Generator().manual_seed(0)
    for offset in (0, 1, 0, 2):  # ticks taken one by one before the fused call
        for _ in range(offset):
            a = torch.rand(2, topology.num_agents, generator=generator) * 2 - 1
            fused.step(a), stepped.step(a)
        a = torch.rand(2, topology.num_agents, generator=generator) * 2 - 1
        ours = fused.step_task(a)
        while not (reference := stepped.step(a)).task_stepped:
            pass
        assert ours.task_stepped and fused.tick == stepped.tick
        for name in ("voltages", "reward", "terminated", "truncated"):
            assert torch.equal(getattr(ours, name), getattr(reference, name)), name
        assert torch.equal(ours.info["final_voltages"], reference.info["final_voltages"])
        assert np.array_equal(ours.info["task_action"], reference.info["task_action"])
        if clock == "async":
            assert torch.equal(ours.info["fired"], reference.info["fired"])


def test_step_task_checks_the_actions_once_and_needs_a_reset():
    from neuron_env.errors import InvalidActionError, ResetNeeded

    env = NeuronVecEnv("Pendulum-v1", Topology.mlp(3, [4], 1))
    with pytest.raises(ResetNeeded):
        env.step_task(torch.zeros(1, env.topology.num_agents))
    env.reset(seed=0)
    bad = torch.zeros(1, env.topology.num_agents)
    bad[0, -1] = float("nan")
    with pytest.raises(InvalidActionError, match="out_0"):
        env.step_task(bad)
    assert env.tick == 0  # nothing ticked
