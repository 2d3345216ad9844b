"""Shared fixtures: small topologies and tasks that keep the fast suite fast."""

from __future__ import annotations

import importlib.util
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import torch

from neuron_env import NetworkPolicy, Topology

MUJOCO_TASK = "InvertedPendulum-v5"  # the cheapest MuJoCo task: obs 4, action 1


def has_mujoco() -> bool:
    try:
        import mujoco  # noqa: F401
    except ImportError:
        return False
    return True


requires_mujoco = pytest.mark.skipif(not has_mujoco(), reason="mujoco not installed (pip install -e '.[mujoco]')")


def small_topologies(obs_dim: int, act_dim: int) -> dict[str, Topology]:
    """An MLP, a leaky recurrent and a sparse recurrent network sized to a task."""
    return {
        "mlp": Topology.mlp(obs_dim, [5, 4], act_dim),
        "recurrent": Topology.recurrent(obs_dim, 6, act_dim, leak=0.3),
        "sparse": Topology.sparse(obs_dim, 8, act_dim, density=0.3, seed=1),
    }


EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load_script(path: Path, name: str) -> ModuleType:
    """Import the Python file ``path`` (a script outside the package) as module ``name``."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the file executes
    spec.loader.exec_module(module)
    return module


def load_example(name: str) -> ModuleType:
    """Import ``examples/<name>.py`` as module ``name``."""
    return load_script(EXAMPLES / f"{name}.py", name)


def _sigint_state() -> tuple[Any, bool]:
    """This process's SIGINT handler, and whether the main thread blocks SIGINT."""
    blocked = hasattr(signal, "pthread_sigmask") and signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, ())
    return signal.getsignal(signal.SIGINT), blocked


@pytest.fixture(autouse=True, scope="session")
def _ctrl_c_raises_keyboard_interrupt() -> Iterator[None]:
    """Ctrl-C (SIGINT) raises ``KeyboardInterrupt`` in the tests, and in the commands they start, as in a terminal.

    A shell without job control starts a background job (``make test &`` in a script, a CI step,
    a tool that runs commands) with SIGINT ignored, and Python keeps an ignored SIGINT ignored (a
    subprocess inherits it): the Ctrl-C tests would see nothing happen and their command exit 0.
    """
    handler, blocked = _sigint_state()
    if handler is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if blocked:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    yield
    if blocked:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    if handler is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.fixture(autouse=True)
def _sigint_left_as_found(_ctrl_c_raises_keyboard_interrupt: None) -> Iterator[None]:
    """A test (or the code it runs) that leaves SIGINT handled otherwise errors here, not in a later Ctrl-C test."""
    before = _sigint_state()
    yield
    after = _sigint_state()
    if after != before:
        signal.signal(signal.SIGINT, before[0])
        if hasattr(signal, "pthread_sigmask"):
            signal.pthread_sigmask(signal.SIG_BLOCK if before[1] else signal.SIG_UNBLOCK, {signal.SIGINT})
        pytest.fail(f"SIGINT left changed (handler, blocked): {before} before the test, {after} after it")


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Tiny networks on a small, shared CPU: one OpenMP thread avoids 10-50x slowdowns."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def settled_task_step(learner, env, voltages: torch.Tensor, uniform: bool = False):
    """One task step of the trainer's settled loop: each level acts on one tick, the settled transition is stored.

    Returns:
        ``(voltages after the task step, the env's last ``StepResult``)``; the caller updates and resets noise.
    """
    for level in range(1, env.delay + 1):
        actions = learner.act(voltages, level=level, uniform=uniform)
        previous = voltages
        step = env.step(actions)
        voltages = step.voltages
    settled = previous.clone()
    settled[:, learner.agent_neuron_index] = actions
    learner.store(settled, actions, step.reward, step.info["final_voltages"], step.terminated, step.truncated)
    return voltages, step


def episode_traces(env: Any, seed: int, count: int = 2, noise: float = 0.0,
                   record: Callable[[dict], Any] | None = None) -> list[tuple[list, list, list]]:
    """``count`` whole episodes of a ``neuron_v0`` parallel env (reset with ``seed``, then unseeded); closes it.

    Every neuron acts by the network's policy (``NetworkPolicy(seed=1)``) plus Gaussian ``noise``
    from one fixed stream, the same whatever the seed. Returns per episode ``(states, rewards,
    records)``: the voltages after every tick, the first agent's rewards, and ``record(infos)``
    of every tick where it is not ``None``.
    """
    policy, rng = NetworkPolicy(env.topology, seed=1), np.random.default_rng(0)
    trace = []
    for episode in range(count):
        observations, _ = env.reset(seed=seed if episode == 0 else None)
        states, rewards, records = [env.state()], [], []
        while env.agents:
            actions = policy.act(observations)
            if noise:
                actions = {a: np.clip(action + rng.normal(0, noise, 1), -1, 1).astype(np.float32)
                           for a, action in actions.items()}
            observations, reward, _, _, infos = env.step(actions)
            states.append(env.state())
            rewards.append(reward[env.possible_agents[0]])
            value = record(infos) if record is not None else None
            if value is not None:
                records.append(value)
        trace.append((np.stack(states).tolist(), rewards, records))
    env.close()
    return trace


def assert_states_equal(a: object, b: object, path: str = "state") -> None:
    """Two state dicts (nested dicts, lists, tensors, values) are equal; tensors bitwise, dtype included."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), path
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), path
        for key in a:
            assert_states_equal(a[key], b[key], f"{path}/{key}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_states_equal(x, y, f"{path}[{i}]")
    else:
        assert a == b, path
