"""What a comparison is: ``CompareConfig``, the methods, and the grid of runs it plans.

``neuron-env compare`` (``neuron_env.baselines.compare``) runs tasks × methods × seeds. This
module holds what defines such a grid and nothing that runs it:

- ``METHODS``: every method, in table order: ``random``, ``sb3-ddpg``, ``sb3-ddpg-zoo``, the
  ``LOCAL_METHODS`` (``local-<name>`` -> learner and options, ``local_method``) and each local
  method's ``-frozen`` twin (``FROZEN_SUFFIX``: hidden groups frozen at their random init).
- ``CompareConfig``: one comparison (one field per ``neuron-env compare`` flag), ``validate``
  raising ``BaselineConfigError`` that names the bad option and the fix.
- ``RunSpec`` / ``plan_runs``: one (task, method, seed) run, its folder and its identity (the
  options a finished run must match to be reused).
- ``command_line`` and ``parse_assignments``: the command that regenerates a comparison, and
  ``TASK=VALUE`` flags.

Example::

    from neuron_env.baselines.compare_config import CompareConfig, plan_runs

    config = CompareConfig(tasks=("Pendulum-v1",), methods=("random", "local-mlp"), seeds=2)
    config.validate()
    [spec.label for spec in plan_runs(config)]  # ['Pendulum-v1 random seed0', ...]
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from neuron_env.baselines.errors import BaselineConfigError, check_task_id

#: Local methods: ``local-<name>`` -> (learner, options). The ``ddpg`` learner is named by its critic
#: (``local-mlp`` is the default learner); ``local-feedback-ceiling`` is the feedback learner's ceiling
#: control (true outgoing weights). Each also has a ``-frozen`` twin: hidden groups frozen (the floor).
LOCAL_METHODS: dict[str, tuple[str, dict[str, Any]]] = {
    "local-linear": ("ddpg", {"critic": "linear"}),
    "local-compatible": ("ddpg", {"critic": "compatible"}),
    "local-bilinear": ("ddpg", {"critic": "bilinear"}),
    "local-mlp": ("ddpg", {"critic": "mlp"}),
    "local-feedback": ("feedback", {}),
    "local-feedback-ceiling": ("feedback", {"feedback": "weights"}),
    # the ceiling with the replay as acted (the one framework change that matters on Pendulum-v1) ...
    "local-feedback-ceiling-stored": ("feedback", {"feedback": "weights", "replay_voltages": "stored"}),
    # ... and in LocalDDPG's framework (its defaults: SGD 5e-3, batch 64, hidden noise, task context)
    "local-feedback-ceiling-ddpg": ("feedback", {
        "feedback": "weights", "replay_voltages": "stored", "critic_context": "task", "critic_hidden": 32,
        "actor_optimizer": "sgd", "lr_actor": 5e-3, "batch_size": 64, "noise_scale_hidden": 0.1}),
    "local-coagent": ("coagent", {}),
    "local-weight-max": ("weight-max", {}),
    "local-es": ("es", {}),
}
FROZEN_SUFFIX = "-frozen"
#: Every method ``compare`` knows, in table order.
METHODS: tuple[str, ...] = (
    "random",
    "sb3-ddpg",
    "sb3-ddpg-zoo",
    *LOCAL_METHODS,
    *(name + FROZEN_SUFFIX for name in LOCAL_METHODS),
)


def local_method(method: str) -> tuple[str, dict[str, Any]]:
    """The learner name and options of a ``local-…`` method (``-frozen``: ``freeze_hidden=True``)."""
    frozen = method.endswith(FROZEN_SUFFIX)
    learner, options = LOCAL_METHODS[method.removesuffix(FROZEN_SUFFIX)]
    return learner, {**options, "freeze_hidden": True} if frozen else dict(options)
#: Hidden activations both the trainer and the SB3 baseline accept.
ACTIVATIONS: tuple[str, ...] = ("tanh", "relu", "sigmoid", "identity")
#: Statuses of a run that is not run again.
FINISHED: tuple[str, ...] = ("completed", "diverged")
#: Columns of ``results.csv``.
RESULTS_COLUMNS: tuple[str, ...] = (
    "task",
    "method",
    "seed",
    "final_eval_mean",
    "final_eval_std",
    "steps",
    "wall_time_s",
    "steps_per_s",
    "status",
    "error",
)
RUN_FILE = "compare_run.json"
#: Files of a run that a Ray worker does not ship back (the trainer's replay-buffer checkpoint).
NOT_SHIPPED: tuple[str, ...] = ("checkpoint.pt",)


@dataclass
class CompareConfig:
    """Configuration of one comparison (every field has a ``neuron-env compare`` flag of the same name)."""

    tasks: tuple[str, ...] = ("Pendulum-v1",)
    """Gymnasium ids of the tasks (Box observation and action spaces)."""
    methods: tuple[str, ...] = ("random", "sb3-ddpg", "local-feedback")
    """Methods to run, from ``METHODS``; ``random`` and the ``reference`` are needed for normalized scores."""
    steps: int = 20_000
    """Task steps per run (the same budget for every method)."""
    task_steps: dict[str, int] = field(default_factory=dict)
    """Per-task budgets overriding ``steps`` (``{"InvertedPendulum-v5": 50000}``)."""
    seeds: int = 3
    """Seeds per (task, method): ``0 .. seeds-1``."""
    out: str = "runs/compare"
    """Output directory (see the module doc)."""
    workers: int = 1
    """Runs in parallel (processes; ignored with ``ray_address``)."""
    hidden: tuple[int, ...] = (64, 64)
    """Hidden sizes of the local networks and of ``sb3-ddpg`` (not of ``sb3-ddpg-zoo``)."""
    activation: str = "tanh"
    """Hidden activation of the local networks and of ``sb3-ddpg``."""
    eval_every: int = 1000
    """Task steps between evaluations (and one at the end), for every method."""
    eval_episodes: int = 5
    """Deterministic evaluation episodes per evaluation, from the same start states for every method."""
    learning_starts: int | None = None
    """Override ``learning_starts`` of every learning method; ``None``: each method's own default."""
    thresholds: dict[str, float] = field(default_factory=dict)
    """Per-task return thresholds; scores report the step where each mean curve first reaches it."""
    reference: str = "sb3-ddpg"
    """The method that scores 1 (``random`` scores 0)."""
    ray_address: str | None = None
    """Dispatch runs to the Ray cluster at this address instead of the process pool."""
    tensorboard: bool = True
    """Write each run's TensorBoard scalars into its ``tb/``."""
    verbose: bool = True
    """Print one line per finished run."""

    def budget(self, task: str) -> int:
        """The task-step budget of ``task``'s runs."""
        return int(self.task_steps.get(task, self.steps))

    def validate(self) -> None:
        """Check every option before anything runs.

        Raises:
            BaselineConfigError: Naming the bad option and the fix.
        """
        if not self.tasks:
            raise BaselineConfigError("tasks is empty; pass one or more Gymnasium ids with --tasks")
        if len(set(self.tasks)) != len(self.tasks):
            raise BaselineConfigError(f"tasks {list(self.tasks)} has duplicates")
        for task in self.tasks:
            check_task_id(task)
        unknown = [m for m in self.methods if m not in METHODS]
        if not self.methods or unknown:
            raise BaselineConfigError(
                f"methods {list(unknown or self.methods)} unknown or empty; choose from {METHODS}")
        if len(set(self.methods)) != len(self.methods):
            raise BaselineConfigError(f"methods {list(self.methods)} has duplicates")
        if self.reference not in METHODS or self.reference == "random":
            raise BaselineConfigError(f"reference {self.reference!r} must be a learning method from {METHODS[1:]}")
        for name in ("steps", "seeds", "workers", "eval_every", "eval_episodes"):
            if int(getattr(self, name)) < 1:
                raise BaselineConfigError(f"{name}={getattr(self, name)!r} must be >= 1")
        if not self.hidden or any(int(h) < 1 for h in self.hidden):
            raise BaselineConfigError(f"hidden {list(self.hidden)} must be one or more sizes >= 1")
        if self.activation not in ACTIVATIONS:
            raise BaselineConfigError(f"activation {self.activation!r} is unknown; choose one of {ACTIVATIONS}")
        if self.learning_starts is not None and self.learning_starts < 0:
            raise BaselineConfigError(f"learning_starts {self.learning_starts!r} must be >= 0")
        for option, mapping in (("task_steps", self.task_steps), ("thresholds", self.thresholds)):
            stray = [t for t in mapping if t not in self.tasks]
            if stray:
                raise BaselineConfigError(f"{option} names {stray}, which are not among tasks {list(self.tasks)}")
        if any(int(v) < 1 for v in self.task_steps.values()):
            raise BaselineConfigError(f"task_steps {self.task_steps} must all be >= 1")


@dataclass(frozen=True)
class RunSpec:
    """One run of a comparison: what it is, and the options that must match for a finished run to be reused."""

    task: str
    """Gymnasium id."""
    method: str
    """One of ``METHODS``."""
    seed: int
    """The run's seed."""
    steps: int
    """Task-step budget."""
    hidden: tuple[int, ...]
    """Hidden sizes (local methods and ``sb3-ddpg``)."""
    activation: str
    """Hidden activation (local methods and ``sb3-ddpg``)."""
    eval_every: int
    """Task steps between evaluations."""
    eval_episodes: int
    """Episodes per evaluation."""
    learning_starts: int | None
    """The ``learning_starts`` override, or ``None``."""
    tensorboard: bool = True
    """Write TensorBoard scalars (not part of the run's identity)."""

    def identity(self) -> dict[str, Any]:
        """The fields a reused run must match (everything but ``tensorboard``), JSON-ready."""
        data = asdict(self)
        data.pop("tensorboard")
        data["hidden"] = list(self.hidden)
        return data

    def folder(self, out: str | os.PathLike[str]) -> Path:
        """The run's folder under a comparison's output directory."""
        return Path(out) / "runs" / _safe(self.task) / self.method / f"seed{self.seed}"

    @property
    def label(self) -> str:
        """``"Pendulum-v1 local-mlp seed0"``."""
        return f"{self.task} {self.method} seed{self.seed}"


def _safe(name: str) -> str:
    """A task id as one folder name (``ALE/Pong-v5`` -> ``ALE_Pong-v5``)."""
    return name.replace("/", "_").replace(os.sep, "_")


def plan_runs(config: CompareConfig) -> list[RunSpec]:
    """Every run of the comparison, seed-major (all of seed 0 first, so early results span the grid)."""
    return [
        RunSpec(task=task, method=method, seed=seed, steps=config.budget(task),
                hidden=tuple(int(h) for h in config.hidden), activation=config.activation,
                eval_every=config.eval_every, eval_episodes=config.eval_episodes,
                learning_starts=config.learning_starts, tensorboard=config.tensorboard)
        for seed in range(config.seeds) for task in config.tasks for method in config.methods
    ]


def command_line(config: CompareConfig, command: tuple[str, ...] = ("neuron-env", "compare")) -> str:
    """The ``neuron-env compare`` command (or ``command``, taking the same flags) that regenerates the outputs."""
    parts = [*command, "--tasks", *config.tasks, "--methods", *config.methods,
             "--steps", str(config.steps), "--seeds", str(config.seeds), "--out", str(config.out),
             "--workers", str(config.workers), "--hidden", *map(str, config.hidden), "--activation", config.activation,
             "--eval-every", str(config.eval_every), "--eval-episodes", str(config.eval_episodes)]
    if config.task_steps:
        parts += ["--task-steps", *(f"{t}={n}" for t, n in config.task_steps.items())]
    if config.learning_starts is not None:
        parts += ["--learning-starts", str(config.learning_starts)]
    if config.thresholds:
        parts += ["--threshold", *(f"{t}={v:g}" for t, v in config.thresholds.items())]
    if config.reference != "sb3-ddpg":
        parts += ["--reference", config.reference]
    if not config.tensorboard:
        parts.append("--no-tensorboard")
    return shlex.join(parts)


def parse_assignments(items: Sequence[str] | None, kind: Callable[[str], Any], option: str) -> dict[str, Any]:
    """``["Pendulum-v1=-200", ...]`` -> ``{"Pendulum-v1": -200.0}`` (the value converted by ``kind``).

    Raises:
        BaselineConfigError: On an item without ``=`` or with a value ``kind`` rejects.
    """
    parsed: dict[str, Any] = {}
    for item in items or ():
        task, sep, value = item.rpartition("=")
        if not sep or not task:
            raise BaselineConfigError(f"{option} {item!r} must look like TASK=VALUE (e.g. Pendulum-v1=-200)")
        try:
            parsed[task] = kind(value)
        except ValueError as error:
            raise BaselineConfigError(f"{option} {item!r}: {value!r} is not a valid value") from error
    return parsed
