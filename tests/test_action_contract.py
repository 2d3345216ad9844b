"""One action contract at every entry point: parallel, AEC, ``SubEnv`` and the native TorchRL env.

Every bad input of ``BAD`` is refused with a one-line ``InvalidActionError`` naming the agent
(the TorchRL env, which takes one tensor per group, names the group or the agent) at each entry
point, and leaves the env usable; every accepted form of ``ACCEPTED`` (one case at least per
entry of ``neuron_env.actions.ACCEPTED_FORMS``) sets the agent's voltage at each entry point.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

from neuron_env import InvalidActionError, SubEnv, Topology, actions, neuron_v0
from neuron_env.actions import ACCEPTED_FORMS, action_array, action_value
from neuron_env.errors import NeuronEnvError

HAS_TORCHRL = importlib.util.find_spec("torchrl") is not None

TOPOLOGY = Topology.mlp(3, [4], 1)  # inputs 0-2, agents h1_0..h1_3 (neurons 3-6) and out_0 (neuron 7)
AGENT = "h1_1"  # neither the first nor the last agent
AGENT_INDEX = 1
NEURON = 3 + AGENT_INDEX
NUM_ENVS = 2  # the TorchRL env's task copies
GROUP_SIZE = 4


# (id, bad action, text the per-agent message shows, text the TorchRL message shows)
BAD: list[tuple[str, Any, str, str]] = [
    ("string", "0.5", "is '0.5' (str)", "is '0.5' (str)"),
    ("bytes", b"0.5", "is b'0.5' (bytes)", "is b'0.5' (bytes)"),
    ("complex", 0.5 + 1j, "is (0.5+1j) (complex)", "dtype torch.complex"),
    ("None", None, "is None (NoneType)", "no action for group 'h1'"),
    ("object", object(), "(object), not a real number", "(object)"),
    ("list of two numbers", [0.5, 0.5], "has shape (2,)", "shape [2, 4, 2]"),
    ("shape (1, 1)", np.zeros((1, 1), dtype=np.float32), "has shape (1, 1)", "shape [2, 4, 1, 1]"),
    ("shape (2,)", np.zeros(2, dtype=np.float32), "has shape (2,)", "shape [2, 4, 2]"),
    ("nan", np.array([np.nan], dtype=np.float32), "is nan; actions must be finite", "is nan; actions must be finite"),
    ("inf", np.array([np.inf], dtype=np.float32), "is inf; actions must be finite", "is inf; actions must be finite"),
    ("-inf", np.array([-np.inf], dtype=np.float32), "is -inf; actions must be finite",
     "is -inf; actions must be finite"),
    ("nan float", float("nan"), "is nan; actions must be finite", "is nan; actions must be finite"),
    # the per-agent check shows 1e+39, a bulk conversion the float32 it becomes (inf)
    ("too large for float32", 1e39, "; actions must be finite", "is inf; actions must be finite"),
]

# (id, accepted action, the voltage it sets, index into ACCEPTED_FORMS)
ACCEPTED: list[tuple[str, Any, float, int]] = [
    ("python float", 0.25, 0.25, 0),
    ("python int", -1, -1.0, 0),
    ("python bool", True, 1.0, 0),
    ("numpy float32 scalar", np.float32(0.25), 0.25, 1),
    ("numpy int64 scalar", np.int64(0), 0.0, 1),
    ("numpy bool scalar", np.bool_(True), 1.0, 1),
    ("numpy (1,) float32", np.array([0.25], dtype=np.float32), 0.25, 2),
    ("numpy (1,) float64", np.array([0.25]), 0.25, 2),
    ("numpy (1,) int", np.array([1]), 1.0, 2),
    ("numpy (1,) bool", np.array([False]), 0.0, 2),
    ("numpy 0-d", np.array(0.25), 0.25, 2),
    ("torch (1,) float32", torch.tensor([0.25]), 0.25, 3),
    ("torch 0-d float64", torch.tensor(0.25, dtype=torch.float64), 0.25, 3),
    ("torch (1,) int", torch.tensor([1]), 1.0, 3),
    ("torch (1,) bfloat16 needing grad", torch.tensor([0.25], dtype=torch.bfloat16, requires_grad=True), 0.25, 3),
    ("list of one", [0.25], 0.25, 4),
    ("tuple of one", (np.float32(0.25),), 0.25, 4),
]


def _ids(cases: list[tuple]) -> list[str]:
    return [case[0] for case in cases]


def _zeros(agents: list[str], as_arrays: bool) -> dict[str, Any]:
    return {a: np.zeros(1, dtype=np.float32) if as_arrays else 0.0 for a in agents}


def _assert_one_line_naming(error: pytest.ExceptionInfo, name: str, shows: str) -> None:
    message = str(error.value)
    assert isinstance(error.value, NeuronEnvError) and isinstance(error.value, ValueError)
    assert "\n" not in message, message
    assert name in message, message
    assert shows in message, message


# ------------------------------------------------------------------ the four entry points
def _parallel_bad(value: Any, shows: str, others_as_arrays: bool) -> None:
    env = neuron_v0.parallel_env(task="Pendulum-v1", topology=TOPOLOGY)
    env.reset(seed=0)
    before = env.state()
    with pytest.raises(InvalidActionError) as error:
        env.step({**_zeros(env.agents, others_as_arrays), AGENT: value})
    _assert_one_line_naming(error, f"agent '{AGENT}'", shows)
    np.testing.assert_array_equal(env.state(), before)  # the refused tick changed nothing
    env.step({**_zeros(env.agents, others_as_arrays), AGENT: 0.5})  # and the env goes on
    assert env.state()[NEURON] == np.float32(0.5)
    env.close()


def _aec_bad(value: Any, shows: str) -> None:
    env = neuron_v0.env(task="Pendulum-v1", topology=TOPOLOGY)
    env.reset(seed=0)
    env.step(np.zeros(1, dtype=np.float32))  # h1_0
    assert env.agent_selection == AGENT
    with pytest.raises(InvalidActionError) as error:
        env.step(value)
    _assert_one_line_naming(error, f"agent '{AGENT}'", shows)
    assert env.agent_selection == AGENT  # refused at the agent that gave it, which may act again
    for _ in TOPOLOGY.agent_ids[AGENT_INDEX:]:
        env.step(np.array([0.5], dtype=np.float32))
    assert env.agent_selection == "h1_0"  # the cycle completed: one tick
    np.testing.assert_array_equal(env.state()[3:], np.array([0, 0.5, 0.5, 0.5, 0.5], dtype=np.float32))
    env.close()


def _subenv_bad(value: Any, shows: str) -> None:
    env = SubEnv("Pendulum-v1", TOPOLOGY, neuron=AGENT)
    env.reset(seed=0)
    with pytest.raises(InvalidActionError) as error:
        env.step(value)
    _assert_one_line_naming(error, f"agent '{AGENT}'", shows)
    env.step(np.array([0.5], dtype=np.float32))  # the env goes on
    assert float(env.core.voltages[0, NEURON]) == 0.5
    env.close()


def _group_form(value: Any) -> Any:
    """A per-agent action as the TorchRL env's ``h1`` group action: every agent gives the form, ``AGENT`` the value.

    Real and complex numbers and arrays become a ``[E, n, *shape]`` tensor of their dtype (zeros
    for the other agents); anything else stays as it is (a TensorDict wraps it as non-tensor data).
    """
    if value is None or isinstance(value, str | bytes) or type(value) is object:
        return value
    array = np.asarray(value.float().detach() if isinstance(value, torch.Tensor) else value)
    group = np.zeros((NUM_ENVS, GROUP_SIZE, *array.shape), dtype=array.dtype)
    group[:, AGENT_INDEX] = array
    return torch.as_tensor(group)


def _torchrl_env() -> Any:
    from neuron_env.integrations.torchrl import NeuronTorchRLEnv

    return NeuronTorchRLEnv("Pendulum-v1", TOPOLOGY, num_envs=NUM_ENVS, return_state=True)


def _torchrl_zero_actions(env: Any, td: Any) -> Any:
    td = env.rand_action(td)
    for group in env.group_map:
        td[group, "action"] = torch.zeros_like(td[group, "action"])
    return td


def _torchrl_bad(value: Any, shows: str) -> None:
    env = _torchrl_env()
    td = _torchrl_zero_actions(env, env.reset(seed=0))
    before = env.core.voltages.clone()
    td["h1", "action"] = _group_form(value)
    with pytest.raises(InvalidActionError) as error:
        env.step(td)
    name = "group 'h1' (agents h1_0 … h1_3)" if "group" in str(error.value) else f"agent '{AGENT}' in env copy 0"
    _assert_one_line_naming(error, name, shows)
    torch.testing.assert_close(env.core.voltages, before)  # the refused tick changed nothing
    td["h1", "action"] = torch.full((NUM_ENVS, GROUP_SIZE, 1), 0.5)
    out = env.step(td)  # and the env goes on
    torch.testing.assert_close(out["next", "state"][:, 3:7], torch.full((NUM_ENVS, GROUP_SIZE), 0.5))
    env.close()


ENTRY_POINTS: dict[str, Callable[[Any, str, str], None]] = {
    "parallel, other actions arrays": lambda value, shows, _: _parallel_bad(value, shows, True),
    "parallel, other actions floats": lambda value, shows, _: _parallel_bad(value, shows, False),
    "aec": lambda value, shows, _: _aec_bad(value, shows),
    "subenv": lambda value, shows, _: _subenv_bad(value, shows),
    "torchrl": lambda value, _, torchrl_shows: _torchrl_bad(value, torchrl_shows),
}


@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
@pytest.mark.parametrize(("case", "value", "shows", "torchrl_shows"), BAD, ids=_ids(BAD))
def test_every_bad_action_is_refused_naming_the_agent_at_every_entry_point(entry, case, value, shows, torchrl_shows):
    if entry == "torchrl" and not HAS_TORCHRL:
        pytest.skip("torchrl is not installed")
    ENTRY_POINTS[entry](value, shows, torchrl_shows)


# ------------------------------------------------------------------ accepted forms
def _parallel_sets(value: Any, others_as_arrays: bool) -> float:
    env = neuron_v0.parallel_env(task="Pendulum-v1", topology=TOPOLOGY)
    env.reset(seed=0)
    env.step({**_zeros(env.agents, others_as_arrays), AGENT: value})
    return float(env.state()[NEURON])


def _aec_sets(value: Any) -> float:
    env = neuron_v0.env(task="Pendulum-v1", topology=TOPOLOGY)
    env.reset(seed=0)
    for agent in env.agent_iter(TOPOLOGY.num_agents):
        env.step(value if agent == AGENT else 0.0)
    return float(env.state()[NEURON])


def _subenv_sets(value: Any) -> float:
    env = SubEnv("Pendulum-v1", TOPOLOGY, neuron=AGENT)
    env.reset(seed=0)
    env.step(value)
    return float(env.core.voltages[0, NEURON])


def _torchrl_sets(value: Any) -> float:
    env = _torchrl_env()
    td = _torchrl_zero_actions(env, env.reset(seed=0))
    td["h1", "action"] = _group_form(value)  # [E, n, 1] for a (1,) form, [E, n] for a scalar, of its dtype
    out = env.step(td)
    state = out["next", "state"]
    assert float(state[1, 3]) == 0.0  # only AGENT's column was set
    return float(state[0, NEURON])


SETTERS: dict[str, Callable[[Any], float]] = {
    "parallel, other actions arrays": lambda value: _parallel_sets(value, True),
    "parallel, other actions floats": lambda value: _parallel_sets(value, False),
    "aec": _aec_sets,
    "subenv": _subenv_sets,
    "torchrl": _torchrl_sets,
}


@pytest.mark.parametrize("entry", list(SETTERS))
@pytest.mark.parametrize(("case", "value", "voltage", "form"), ACCEPTED, ids=_ids(ACCEPTED))
def test_every_accepted_form_sets_the_voltage_at_every_entry_point(entry, case, value, voltage, form):
    if entry == "torchrl" and not HAS_TORCHRL:
        pytest.skip("torchrl is not installed")
    assert SETTERS[entry](value) == pytest.approx(voltage)


def test_every_documented_form_has_a_case_and_the_docs_list_them():
    assert {form for *_, form in ACCEPTED} == set(range(len(ACCEPTED_FORMS)))
    for page in (neuron_v0.__doc__, actions.__doc__):
        for words in ("Python ``float``, ``int`` or ``bool``", "numpy scalar of a real dtype",
                      "numpy array of shape ``(1,)`` or ``()``", "torch tensor of shape ``(1,)`` or ``()``",
                      "list or tuple holding one"):
            assert words in page, words


@pytest.mark.parametrize(("case", "value", "voltage", "form"), ACCEPTED, ids=_ids(ACCEPTED))
def test_action_value_and_bulk_conversion_agree(case, value, voltage, form):
    """The per-agent rule and the bulk conversion accept the same forms and read the same number."""
    assert action_value("h1_0", value) == pytest.approx(voltage)
    np.testing.assert_allclose(action_array(["a", "b"], [value, value]), np.float32([voltage, voltage]), rtol=1e-2)


@pytest.mark.parametrize(("case", "value", "shows", "torchrl_shows"), BAD, ids=_ids(BAD))
def test_action_value_refuses_every_bad_input(case, value, shows, torchrl_shows):
    with pytest.raises(InvalidActionError) as error:
        action_value("h1_0", value)
    _assert_one_line_naming(error, "agent 'h1_0'", shows)


# ------------------------------------------------------------------ the AEC view does not jam
@pytest.mark.parametrize("bad", [np.array([np.nan], dtype=np.float32), np.zeros(2), None, np.array([1.5])],
                         ids=["nan", "shape (2,)", "None", "out of range"])
@pytest.mark.parametrize("agent", ["h1_0", "out_0"], ids=["first agent", "last agent"])
def test_aec_refuses_at_the_agent_and_stays_usable(bad, agent):
    env = neuron_v0.env(task="Pendulum-v1", topology=TOPOLOGY)
    env.reset(seed=0)
    for expected_tick in range(3):
        for i, current in enumerate(TOPOLOGY.agent_ids):
            assert env.agent_selection == current
            if current == agent:
                with pytest.raises(InvalidActionError, match=f"agent '{agent}'"):
                    env.step(bad)
                assert env.agent_selection == agent  # nothing was recorded: the same agent acts again
            env.step(np.array([0.1 * (i + 1) * (-1) ** expected_tick], dtype=np.float32))
        expected = np.float32([0.1 * (i + 1) * (-1) ** expected_tick for i in range(TOPOLOGY.num_agents)])
        np.testing.assert_allclose(env.state()[3:], expected, rtol=1e-6)
    env.close()


def test_aec_clip_mode_accepts_out_of_range_and_clips_at_the_tick():
    env = neuron_v0.env(task="Pendulum-v1", topology=TOPOLOGY, out_of_range="clip")
    env.reset(seed=0)
    for agent in env.agent_iter(TOPOLOGY.num_agents):
        env.step(np.array([5.0]) if agent == AGENT else 0.0)
    assert env.state()[NEURON] == 1.0
    with pytest.raises(InvalidActionError, match="agent 'h1_0' is nan"):  # non-finite still refused
        env.step(float("nan"))


def test_aec_buffers_its_own_copy_of_the_action():
    """A caller reusing its action array between agents does not change what an earlier agent chose."""
    env = neuron_v0.env(task="Pendulum-v1", topology=TOPOLOGY)
    env.reset(seed=0)
    buffer = np.zeros(1, dtype=np.float32)
    for i, _ in enumerate(env.agent_iter(TOPOLOGY.num_agents)):
        buffer[0] = 0.1 * i
        env.step(buffer)
    np.testing.assert_allclose(env.state()[3:], np.float32([0.0, 0.1, 0.2, 0.3, 0.4]), rtol=1e-6)


# ------------------------------------------------------------------ TorchRL: a missing group action
@pytest.mark.skipif(not HAS_TORCHRL, reason="torchrl is not installed")
def test_torchrl_missing_group_action_names_group_and_expected_shape():
    env = _torchrl_env()
    td = _torchrl_zero_actions(env, env.reset(seed=0))
    del td["h1", "action"]
    with pytest.raises(InvalidActionError) as error:
        env.step(td)
    _assert_one_line_naming(error, "group 'h1' (agents h1_0 … h1_3)", "shape [2, 4, 1] (num_envs, agents, 1) or [2, 4]")
    env.close()


# ------------------------------------------------------------------ parallel: one agent, mixed forms
def test_parallel_env_with_a_single_agent_checks_its_shape():
    topology = Topology.mlp(3, [], 1)  # out_0 only
    env = neuron_v0.parallel_env(task="Pendulum-v1", topology=topology)
    env.reset(seed=0)
    with pytest.raises(InvalidActionError, match=r"agent 'out_0' has shape \(1, 1\)"):
        env.step({"out_0": np.zeros((1, 1), dtype=np.float32)})
    env.step({"out_0": np.array([0.5], dtype=np.float32)})
    assert env.state()[3] == np.float32(0.5)


def test_parallel_env_accepts_a_mix_of_forms_in_one_tick():
    env = neuron_v0.parallel_env(task="Pendulum-v1", topology=TOPOLOGY)
    env.reset(seed=0)
    forms = [value for _, value, _, _ in ACCEPTED][: TOPOLOGY.num_agents]
    env.step(dict(zip(env.agents, forms, strict=True)))
    expected = [voltage for _, _, voltage, _ in ACCEPTED][: TOPOLOGY.num_agents]
    np.testing.assert_allclose(env.state()[3:], expected, rtol=1e-2)
