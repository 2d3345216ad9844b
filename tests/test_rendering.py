"""Rendering: the task's frame beside the network's activity."""

import gymnasium as gym
import numpy as np
import pytest

from neuron_env import ResetNeeded, Topology, neuron_v0
from neuron_env.rendering import PANEL_WIDTH, network_panel, voltage_colors


def test_voltage_colors_are_diverging():
    colors = voltage_colors(np.array([-1.0, 0.0, 1.0, 5.0]), np.array([-1, -1, -1, -np.inf]),
                            np.array([1, 1, 1, np.inf]))
    assert colors.dtype == np.uint8 and colors.shape == (4, 3)
    assert colors[0, 2] > colors[0, 0] and colors[2, 0] > colors[2, 2]  # blue below, red above
    assert (colors[1] == 245).all()


def test_panel_shape_and_content_follow_voltages():
    topology = Topology.mlp(3, [400, 300], 6)
    low, high = -np.ones(topology.num_neurons), np.ones(topology.num_neurons)
    quiet = network_panel(np.zeros(topology.num_neurons), topology, low, high, 0, 3, 0.0, height=200)
    busy = network_panel(np.linspace(-1, 1, topology.num_neurons), topology, low, high, 1, 3, -1.0, height=200)
    assert quiet.shape == busy.shape == (200, PANEL_WIDTH, 3) and quiet.dtype == np.uint8
    assert not np.array_equal(quiet, busy)


def test_pendulum_frames_change_over_time():
    pytest.importorskip("pygame")
    env = neuron_v0.parallel_env(task="Pendulum-v1", topology=Topology.mlp(3, [8], 1), render_mode="rgb_array")
    env.reset(seed=0)
    frames = [env.render()]
    for _ in range(4):
        env.step({a: env.action_space(a).sample() for a in env.agents})
        frames.append(env.render())
    height, width = frames[0].shape[:2]
    assert frames[0].dtype == np.uint8 and frames[0].shape == (height, width, 3)
    assert width == 500 + PANEL_WIDTH and height == 500  # Pendulum's 500x500 frame + panel
    assert any(not np.array_equal(frames[0], f) for f in frames[1:])
    env.close()


class _NoRender(gym.Env):
    observation_space = gym.spaces.Box(-1, 1, (2,), np.float32)
    action_space = gym.spaces.Box(-1, 1, (1,), np.float32)

    def __init__(self, render_mode=None):
        self.render_mode = render_mode

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(2, np.float32), {}

    def step(self, action):
        return np.zeros(2, np.float32), 1.0, False, False, {}

    def render(self):
        raise gym.error.DependencyNotInstalled("no renderer")


def test_panel_alone_when_task_cannot_render():
    env = neuron_v0.parallel_env(task=_NoRender, topology=Topology.mlp(2, [3], 1), render_mode="rgb_array")
    with pytest.raises(ResetNeeded):
        env.render()
    env.reset(seed=0)
    with pytest.warns(UserWarning, match="cannot render"):
        frame = env.render()
    assert frame.shape == (320, PANEL_WIDTH, 3)


_MujocoFatalError = type("FatalError", (Exception,), {"__module__": "mujoco"})


class _NoGLContext(_NoRender):
    def render(self):  # what MuJoCo raises on a machine without a display and MUJOCO_GL unset
        raise _MujocoFatalError("an OpenGL platform library has not been loaded into this process, this most "
                                "likely means that a valid OpenGL context has not been created before "
                                "mjr_makeContext was called")


def test_mujoco_without_an_opengl_context_is_one_line_naming_mujoco_gl():
    from neuron_env.errors import RenderError

    env = neuron_v0.parallel_env(task=_NoGLContext, topology=Topology.mlp(2, [3], 1), render_mode="rgb_array")
    env.reset(seed=0)
    with pytest.raises(RenderError, match="MUJOCO_GL=egl") as caught:
        env.render()  # not the network-only fallback of a task that cannot render
    assert "\n" not in str(caught.value) and "osmesa" in str(caught.value)
    env.close()


def test_render_network_example_writes_into_a_temporary_folder_by_default(monkeypatch, tmp_path):
    import tempfile
    from pathlib import Path

    from .conftest import EXAMPLES, load_example

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the default folder is made under here
    module = load_example("render_network")
    config = module.Config(hidden=(4,), tick=2)
    frame = module.render(config)
    written = Path(config.out)
    assert written.is_file() and written.parent.parent == tmp_path and frame.ndim == 3
    assert EXAMPLES.parent not in written.resolve().parents  # never into the repository
    explicit = tmp_path / "mine.png"
    module.render(module.Config(hidden=(4,), tick=2, out=str(explicit)))
    assert explicit.is_file()
