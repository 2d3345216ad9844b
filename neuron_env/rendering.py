"""Pictures of the network's activity, beside the task's own frame.

``network_panel`` draws the voltages as one heat strip per group (input at the top,
output at the bottom; blue below zero, white at zero, red above, scaled by each neuron's
voltage range, unbounded voltages squashed with ``tanh``), a clock bar showing the tick
within the current task step, and the last task reward. ``compose`` puts the task's frame
and the panel side by side. Text labels are drawn with Pillow when it is installed (it comes
with matplotlib); without it the panel has no labels.

A frame from ``parallel_env(render_mode="rgb_array").render()`` is an ``uint8`` array of shape
``(H, W_task + W_panel, 3)``: ``H`` and ``W_task`` are the task frame's (or ``(320, 0)`` when the
task cannot render), ``W_panel = PANEL_WIDTH``.

``render_task(task)`` is how every env of neuron-env asks its task for a frame: a MuJoCo task
that cannot create an OpenGL context (a machine without a display, ``MUJOCO_GL`` unset)
raises a one-line ``RenderError`` saying to set ``MUJOCO_GL=egl`` or ``osmesa``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from neuron_env.errors import RenderError
from neuron_env.topology import Topology

#: Words of MuJoCo's errors when it has no OpenGL context (``mjr_makeContext`` without a platform library).
_GL_FAILURES = ("OpenGL", "gladLoadGL", "GLFW", "EGL", "OSMesa", "mjr_makeContext")


def is_gl_failure(error: BaseException) -> bool:
    """Whether ``error`` is MuJoCo failing to create (or find) an OpenGL context."""
    return type(error).__module__.split(".")[0] == "mujoco" and any(word in str(error) for word in _GL_FAILURES)


def gl_error(task: str, error: BaseException) -> RenderError:
    """The one-line ``RenderError`` for a MuJoCo task without an OpenGL context."""
    return RenderError(f"task {task!r} cannot render: MuJoCo found no OpenGL context (no display?); set "
                       f"MUJOCO_GL=egl (headless) or MUJOCO_GL=osmesa (software) before starting Python, e.g. "
                       f"`MUJOCO_GL=egl neuron-env render ...` (MuJoCo said: {str(error).strip()[:120]})")


def render_task(task: Any, name: str | None = None) -> Any:
    """``task.render()``, MuJoCo's OpenGL-context failure turned into a one-line ``RenderError``.

    Args:
        task: Anything with ``render()`` (a Gymnasium env, a vector env, the core of a neuron env).
        name: The task's name for the message (default: ``task.spec.id`` where it has one).

    Raises:
        RenderError: If MuJoCo cannot create an OpenGL context (set ``MUJOCO_GL=egl`` or ``osmesa``).
    """
    try:
        return task.render()
    except Exception as error:
        if not is_gl_failure(error):
            raise
        spec = getattr(task, "spec", None)
        raise gl_error(name or getattr(spec, "id", None) or type(task).__name__, error) from error

PANEL_WIDTH = 320
BACKGROUND = np.array([24, 24, 28], dtype=np.uint8)


def voltage_colors(voltages: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Map voltages to RGB colours: blue (negative) - white (0) - red (positive).

    Args:
        voltages: ``[n]`` voltages.
        low: ``[n]`` lower bounds (may be ``-inf``).
        high: ``[n]`` upper bounds (may be ``inf``).

    Returns:
        ``[n, 3]`` ``uint8`` colours.
    """
    scale = np.maximum(np.abs(low), np.abs(high))
    finite = np.isfinite(scale) & (scale > 0)
    level = np.where(finite, voltages / np.where(finite, scale, 1.0), np.tanh(voltages))
    level = np.clip(level, -1.0, 1.0)[:, None]
    white = np.array([245.0, 245.0, 245.0])
    red = np.array([200.0, 30.0, 30.0])
    blue = np.array([30.0, 70.0, 200.0])
    colors = np.where(level >= 0, white + level * (red - white), white - level * (blue - white))
    return colors.astype(np.uint8)


def network_panel(
    voltages: np.ndarray,
    topology: Topology,
    low: np.ndarray,
    high: np.ndarray,
    tick: int,
    delay: int,
    reward: float,
    height: int = 320,
    width: int = PANEL_WIDTH,
) -> np.ndarray:
    """Draw the network's voltages as an image.

    Args:
        voltages: ``[N]`` voltages.
        topology: The network.
        low: ``[N]`` voltage lower bounds.
        high: ``[N]`` voltage upper bounds.
        tick: Ticks since reset.
        delay: Ticks per task step.
        reward: The last task reward.
        height: Image height in pixels.
        width: Image width in pixels.

    Returns:
        ``(height, width, 3)`` ``uint8`` image.
    """
    image = np.empty((height, width, 3), dtype=np.uint8)
    image[:] = BACKGROUND
    margin, label = 8, 14
    clock_height = 10
    rows = len(topology.groups)
    row_height = max(4, (height - 2 * margin - clock_height - label - rows * label) // rows)
    strip_width = width - 2 * margin
    top = margin
    labels: list[tuple[int, str]] = []
    for group in topology.groups:
        span = topology.group_slice[group.name]
        colors = voltage_colors(voltages[span], low[span], high[span])
        # Nearest-neighbour resampling of the group onto the strip's pixels.
        column = np.minimum((np.arange(strip_width) * group.size) // strip_width, group.size - 1)
        labels.append((top, f"{group.name} ({group.size}, {group.activation})"))
        top += label
        image[top:top + row_height, margin:margin + strip_width] = colors[column][None]
        top += row_height
    # Clock: the fraction of the current task step elapsed.
    top = height - margin - clock_height
    phase = (tick % delay) / delay if delay > 1 else 1.0
    image[top:top + clock_height, margin:margin + strip_width] = (60, 60, 66)
    image[top:top + clock_height, margin:margin + max(1, int(round(phase * strip_width)))] = (90, 200, 120)
    labels.append((top - label, f"tick {tick}  (task step every {delay})  reward {reward:+.3f}"))
    return _draw_labels(image, labels, margin)


def _draw_labels(image: np.ndarray, labels: list[tuple[int, str]], margin: int) -> np.ndarray:
    try:
        from PIL import Image, ImageDraw
    except ImportError:  # labels are decoration; the strips carry the data
        return image
    picture = Image.fromarray(image)
    draw = ImageDraw.Draw(picture)
    for top, text in labels:
        draw.text((margin, top), text, fill=(220, 220, 220))
    return np.asarray(picture)


def compose(task_frame: np.ndarray | None, panel: np.ndarray) -> np.ndarray:
    """Place the task's frame (if any) left of the network panel, both at the panel's height."""
    if task_frame is None:
        return panel
    frame = np.asarray(task_frame, dtype=np.uint8)
    if frame.shape[0] != panel.shape[0]:
        rows = np.minimum((np.arange(panel.shape[0]) * frame.shape[0]) // panel.shape[0], frame.shape[0] - 1)
        width = max(1, round(frame.shape[1] * panel.shape[0] / frame.shape[0]))
        cols = np.minimum((np.arange(width) * frame.shape[1]) // width, frame.shape[1] - 1)
        frame = frame[rows][:, cols]
    return np.concatenate([frame[..., :3], panel], axis=1)
