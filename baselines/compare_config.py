"""What a comparison is: ``CompareConfig``, the methods, and the grid of runs it plans.

``neuron-env compare`` (``neuron_env.baselines.compare``) runs tasks × methods × seeds. This
module holds what defines such a grid and nothing that runs it:

- ``METHODS``: every method, in table order: ``random``, the ``SB3_METHODS`` (``sb3-ddpg``,
  ``sb3-ddpg-zoo``, ``sb3-dqn``, ``sb3-ppo``, ``sb3-recurrent-ppo`` -> the ``--algo`` each runs;
  ``ZOO_NET_METHODS`` run the zoo's network), the ``LOCAL_METHODS``
  (``local-<name>`` -> learner and options, ``local_method``) and each local method's ``-frozen``
  twin (``FROZEN_SUFFIX``: hidden groups frozen at their random init).
- ``CompareConfig``: one comparison (one field per ``neuron-env compare`` flag), ``validate``
  raising ``BaselineConfigError`` that names the bad option and the fix; ``reference_for`` (the
  method that scores 1 on a task: with ``reference="auto"``, ``sb3-ddpg`` for Box actions and
  ``sb3-dqn`` for Discrete ones) and ``skipped_pairs`` (the (task, method) pairs of a
  several-task grid whose method cannot act on the task's action space).
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

import importlib.util
import os
import shlex
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import gymnasium
from neuron_env.baselines.action_spaces import (
    ALGO_ACTION_SPACES,
    AUTO_REFERENCES,
    action_space_kind,
    algos_for,
    describe_action_space,
    task_action_space,
)
from neuron_env.baselines.errors import BaselineConfigError, check_task_id

from neuron_env.errors import TopologyError
from neuron_env.topology import DEFAULT_DENSITY, check_network_kind

#: Local methods: ``local-<name>`` -> (learner, options). The ``ddpg`` learner is named by its critic
#: (``local-mlp`` is the default learner); ``local-feedback-ceiling`` is the feedback learner's ceiling
#: control (true outgoing weights). Each also has a ``-frozen`` twin: hidden groups frozen (the floor).
LOCAL_METHODS: dict[str, tuple[str, dict[str, Any]]] = {
    "local-linear": ("ddpg", {"critic": "linear"}),
    "local-compatible": ("ddpg", {"critic": "compatible"}),
    "local-bilinear": ("ddpg", {"critic": "bilinear"}),
    "local-mlp": ("ddpg", {"critic": "mlp"}),
    "local-feedback": ("feedback", {}),
    # sign-symmetric feedback: the sign of the forward weight, a fixed random magnitude
    "local-feedback-sign": ("feedback", {"feedback": "sign"}),
    # direct feedback alignment: the output neurons' messages to every hidden neuron, fixed random weights
    "local-feedback-direct": ("feedback", {"feedback": "direct"}),
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
    "local-eprop": ("eprop", {}),
    # e-prop's ceiling: the same learner with exact credit by truncated BPTT (a reference, not local)
    "local-eprop-ceiling": ("eprop", {"credit": "bptt"}),
}
FROZEN_SUFFIX = "-frozen"
#: ``local_noise`` values: each learner's own exploration noise, or the task's SB3 DDPG noise.
LOCAL_NOISE_CHOICES: tuple[str, ...] = ("own", "task")
#: SB3 noise kinds -> the local learners' ``noise`` option.
_SB3_TO_LOCAL_NOISE: dict[str, str] = {"normal": "gaussian", "ornstein-uhlenbeck": "ou"}
#: Stable-Baselines3 methods -> the ``neuron-env baseline --algo`` each runs.
SB3_METHODS: dict[str, str] = {"sb3-ddpg": "ddpg", "sb3-ddpg-zoo": "ddpg", "sb3-dqn": "dqn", "sb3-ppo": "ppo",
                               "sb3-recurrent-ppo": "recurrent-ppo"}
#: SB3 methods that run the zoo's network (``baseline --zoo-net``) instead of the local run's ``hidden``.
ZOO_NET_METHODS: tuple[str, ...] = ("sb3-ddpg-zoo", "sb3-recurrent-ppo")
#: ``reference`` value that picks the reference per task from its action space (``AUTO_REFERENCES``).
AUTO_REFERENCE = "auto"
#: Every method ``compare`` knows, in table order.
METHODS: tuple[str, ...] = (
    "random",
    *SB3_METHODS,
    *LOCAL_METHODS,
    *(name + FROZEN_SUFFIX for name in LOCAL_METHODS),
)


def local_method(method: str, clock: str = "sync") -> tuple[str, dict[str, Any]]:
    """The learner name and options of a ``local-…`` method (``-frozen``: ``freeze_hidden=True``).

    Under ``clock="async"`` a learner with a ``granularity`` option the method leaves unset learns
    ``per_tick`` (``local-mlp`` on an MLP would otherwise learn settled transitions, which need every
    neuron to fire: ``neuron_env.agents.capabilities``); a method has no flag to set it.
    """
    from neuron_env.agents.registry import learner_options

    frozen = method.endswith(FROZEN_SUFFIX)
    learner, preset = LOCAL_METHODS[method.removesuffix(FROZEN_SUFFIX)]
    options = {**preset, "freeze_hidden": True} if frozen else dict(preset)
    if clock == "async" and "granularity" in learner_options(learner) and options.get("granularity") is None:
        options["granularity"] = "per_tick"
    return learner, options


def task_noise_options(task: str) -> dict[str, Any]:
    """The action noise ``sb3-ddpg`` explores with on ``task``, as local learner options.

    ``{"noise": "ou", "noise_scale": 0.5}`` on MountainCarContinuous (the rl-zoo's
    Ornstein-Uhlenbeck noise), ``{"noise": "gaussian", "noise_scale": 0.1}`` on Pendulum, the
    MuJoCo tasks and every task the zoo does not list (``baselines.sb3_ddpg.zoo_hyperparameters``).
    """
    from neuron_env.baselines.sb3_ddpg import zoo_hyperparameters

    params, _ = zoo_hyperparameters(task)
    if params["noise_type"] == "none" or not params["noise_std"]:
        return {"noise": "gaussian", "noise_scale": 0.0}
    return {"noise": _SB3_TO_LOCAL_NOISE[params["noise_type"]], "noise_scale": float(params["noise_std"])}


def explores_with_action_noise(method: str) -> bool:
    """Whether a local method's learner adds action noise (has ``noise`` and ``noise_scale`` options)."""
    from neuron_env.agents.registry import learner_options

    return {"noise", "noise_scale"} <= set(learner_options(local_method(method)[0]))


def method_acts_on(method: str, task: str) -> bool:
    """Whether ``method`` can act on ``task``'s action space (``random`` and local methods: always).

    Local methods are allowed on every task here: whether the environment drives a task's
    action space is its own check, made in the run.

    Raises:
        BaselineConfigError: If the task cannot be made (only asked for the ``sb3-…`` methods).
    """
    if method not in SB3_METHODS:
        return True
    return action_space_kind(task_action_space(task)) in ALGO_ACTION_SPACES[SB3_METHODS[method]]


def _unfit_reason(method: str, task: str) -> str:
    """``"CartPole-v1 has a Discrete action space (Discrete(2)); sb3-ddpg acts on Box actions only"``."""
    served = "/".join(ALGO_ACTION_SPACES[SB3_METHODS[method]])
    return f"{task} has {describe_action_space(task)}; {method} acts on {served} actions only"


def _fitting_methods(task: str) -> list[str]:
    """The SB3 methods that act on ``task``'s action space, for messages (``sb3-dqn``, ``sb3-ppo``, …)."""
    algos = algos_for(action_space_kind(task_action_space(task)))
    return [m for m, algo in SB3_METHODS.items() if algo in algos and m not in ZOO_NET_METHODS]


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
    """Gymnasium ids of the tasks."""
    methods: tuple[str, ...] = ("random", "sb3-ddpg", "local-feedback")
    """Methods to run, from ``METHODS``; ``random`` and the reference are needed for normalized scores. An
    ``sb3-…`` method that cannot act on a task's action space is an error with one task, and skipped on that
    task (``skipped_pairs``) with several."""
    steps: int = 20_000
    """Task steps per run (the same budget for every method)."""
    task_steps: dict[str, int] = field(default_factory=dict)
    """Per-task budgets overriding ``steps`` (``{"InvertedPendulum-v5": 50000}``)."""
    seeds: int = 3
    """Seeds per (task, method): ``first_seed .. first_seed + seeds - 1``."""
    first_seed: int = 0
    """The first seed (extend an earlier grid with more seeds, or split one grid across processes by seed)."""
    out: str = "runs/compare"
    """Output directory (see the module doc)."""
    workers: int = 1
    """Runs in parallel (processes; ignored with ``ray_address``)."""
    hidden: tuple[int, ...] = (64, 64)
    """Hidden sizes of the local networks and of ``sb3-ddpg``, ``sb3-dqn``, ``sb3-ppo`` (not of ``ZOO_NET_METHODS``)."""
    activation: str = "tanh"
    """Hidden activation of the local networks and of ``sb3-ddpg``, ``sb3-dqn``, ``sb3-ppo`` (as ``hidden``)."""
    topology: str = "mlp"
    """Network kind of the local methods: ``mlp`` (``hidden`` layers), ``recurrent`` or ``sparse`` (``hidden[0]``
    neurons); the SB3 methods keep their MLP of ``hidden``."""
    leak: float = 0.0
    """Leak of the local methods' recurrent layer (``recurrent`` only)."""
    density: float = DEFAULT_DENSITY
    """Connection density of the local methods' sparse network (``sparse`` only)."""
    clock: str = "sync"
    """Neurons' clock of the local methods, in training and evaluation: ``sync`` or ``async`` (``firing_rate``)."""
    firing_rate: float = 1.0
    """Probability in (0, 1] that a neuron fires on a tick under ``clock="async"`` (local methods)."""
    eval_every: int = 1000
    """Task steps between evaluations (and one at the end), for every method."""
    eval_episodes: int = 5
    """Deterministic evaluation episodes per evaluation, from the same start states for every method."""
    learning_starts: int | None = None
    """Override ``learning_starts`` of every learning method; ``None``: each method's own default."""
    local_noise: str = "own"
    """Exploration noise of the local methods: ``"own"``, each learner's default; ``"task"``, the kind and
    scale ``sb3-ddpg`` gets on the task (``task_noise_options``: Ornstein-Uhlenbeck 0.5 on
    MountainCarContinuous), for learners that explore with action noise (``ddpg``, ``feedback``)."""
    checkpoint_every: int | None = None
    """Task steps between the local runs' checkpoints, where an interrupted comparison resumes them exactly
    (also the trainer's segment length, so it is part of a run's identity); ``None``: the trainer's 10 000."""
    thresholds: dict[str, float] = field(default_factory=dict)
    """Per-task return thresholds; scores report the step where each mean curve first reaches it."""
    reference: str = AUTO_REFERENCE
    """The method that scores 1 (``random`` scores 0): ``"auto"`` picks it per task from the task's action
    space (``sb3-ddpg`` for Box, ``sb3-dqn`` for Discrete, ``sb3-ppo`` for MultiDiscrete/MultiBinary), or one
    learning method for every task."""
    ray_address: str | None = None
    """Dispatch runs to the Ray cluster at this address instead of the process pool."""
    tensorboard: bool = True
    """Write each run's TensorBoard scalars into its ``tb/``."""
    verbose: bool = True
    """Print one line per finished run."""

    @property
    def seed_range(self) -> range:
        """The seeds of the grid: ``first_seed .. first_seed + seeds - 1``."""
        return range(int(self.first_seed), int(self.first_seed) + int(self.seeds))

    def budget(self, task: str) -> int:
        """The task-step budget of ``task``'s runs."""
        return int(self.task_steps.get(task, self.steps))

    def reference_for(self, task: str) -> str:
        """The method that scores 1 on ``task``.

        With ``reference="auto"``: ``AUTO_REFERENCES`` of the task's action-space kind (``sb3-ddpg``
        for Box, ``sb3-dqn`` for Discrete); ``sb3-ddpg`` where the task cannot be made here or no
        SB3 method acts on its actions (its scores are then n/a, with a note).
        """
        if self.reference != AUTO_REFERENCE:
            return self.reference
        return AUTO_REFERENCES.get(self.action_space_kind(task) or "Box", AUTO_REFERENCES["Box"])

    def skipped_pairs(self) -> list[tuple[str, str, str]]:
        """``(task, method, reason)`` of every pair not run: its method cannot act on the task's action space.

        A task that cannot be made here skips nothing (its runs fail in their folders, as any run would;
        ``validate`` refuses it up front when an SB3 method is listed).
        """
        skipped = []
        for task in self.tasks:
            for method in self.methods:
                try:
                    fits = method_acts_on(method, task)
                except BaselineConfigError:
                    fits = True
                if not fits:
                    skipped.append((task, method, _unfit_reason(method, task)))
        return skipped

    def action_space_kind(self, task: str) -> str | None:
        """``"Box"``, ``"Discrete"``, … of ``task``'s actions, or ``None`` when the task cannot be made here."""
        try:
            return action_space_kind(task_action_space(task))
        except BaselineConfigError:
            return None

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
        if self.reference != AUTO_REFERENCE and (self.reference not in METHODS or self.reference == "random"):
            raise BaselineConfigError(f"reference {self.reference!r} must be {AUTO_REFERENCE!r} or a learning method "
                                      f"from {METHODS[1:]}")
        for name in ("steps", "seeds", "workers", "eval_every", "eval_episodes"):
            if int(getattr(self, name)) < 1:
                raise BaselineConfigError(f"{name}={getattr(self, name)!r} must be >= 1")
        if not self.hidden or any(int(h) < 1 for h in self.hidden):
            raise BaselineConfigError(f"hidden {list(self.hidden)} must be one or more sizes >= 1")
        if self.activation not in ACTIVATIONS:
            raise BaselineConfigError(f"activation {self.activation!r} is unknown; choose one of {ACTIVATIONS}")
        try:
            check_network_kind(self.topology, self.leak, self.density)
        except TopologyError as error:
            raise BaselineConfigError(str(error)) from None
        if int(self.first_seed) < 0:
            raise BaselineConfigError(f"first_seed={self.first_seed!r} must be >= 0")
        if self.learning_starts is not None and self.learning_starts < 0:
            raise BaselineConfigError(f"learning_starts {self.learning_starts!r} must be >= 0")
        if self.checkpoint_every is not None and int(self.checkpoint_every) < 1:
            raise BaselineConfigError(f"checkpoint_every {self.checkpoint_every!r} must be >= 1 (or None: the "
                                      "trainer's default)")
        if self.local_noise not in LOCAL_NOISE_CHOICES:
            raise BaselineConfigError(
                f"local_noise {self.local_noise!r} is unknown; choose one of {LOCAL_NOISE_CHOICES}")
        if self.local_noise == "task":
            other = [m for m in self.methods if m.startswith("local-") and not explores_with_action_noise(m)]
            if other:
                raise BaselineConfigError(
                    f"local_noise 'task' sets action noise, which {other} do not use (they explore by sampling their "
                    "units or perturbing their weights); drop them from --methods or use --local-noise own")
        for option, mapping in (("task_steps", self.task_steps), ("thresholds", self.thresholds)):
            stray = [t for t in mapping if t not in self.tasks]
            if stray:
                raise BaselineConfigError(f"{option} names {stray}, which are not among tasks {list(self.tasks)}")
        if any(int(v) < 1 for v in self.task_steps.values()):
            raise BaselineConfigError(f"task_steps {self.task_steps} must all be >= 1")
        if "sb3-recurrent-ppo" in self.methods:
            from neuron_env.baselines.sb3_recurrent import SB3_CONTRIB_INSTALL

            if importlib.util.find_spec("sb3_contrib") is None:
                raise BaselineConfigError(f"method sb3-recurrent-ppo needs sb3-contrib: {SB3_CONTRIB_INSTALL}")
        self._validate_local_networks()
        self._validate_action_spaces()

    def _validate_local_networks(self) -> None:
        """Refuse, in one line, a clock or a local method whose learner cannot train the network on the clock.

        The learners' own check (``neuron_env.agents.capabilities``), made once per task on the network
        sized to it; a task that cannot be made here is left to its runs (as ``skipped_pairs`` does).
        """
        from neuron_env.agents.capabilities import able_learners, check_capability, check_clock_options
        from neuron_env.agents.errors import LearnerConfigError

        from neuron_env.errors import NeuronEnvError
        from neuron_env.parallel import task_topology

        try:
            check_clock_options(self.clock, self.firing_rate)
        except LearnerConfigError as error:
            raise BaselineConfigError(str(error)) from None
        local = [m for m in self.methods if m.startswith("local-")]
        if not local:
            return
        for task in self.tasks:
            try:
                topology = task_topology(task, self.topology, self.hidden, self.activation, self.leak, self.density)
            except (NeuronEnvError, gymnasium.error.Error):
                continue
            for method in local:
                learner, options = local_method(method, self.clock)
                try:
                    check_capability(learner, topology, self.clock, options.get("granularity"))
                except LearnerConfigError as error:
                    able = able_learners(topology, self.clock)
                    methods = [m for m, (name, _) in LOCAL_METHODS.items() if name in able]
                    fix = f"; compare methods that can: {', '.join(methods)}" if methods else ""
                    raise BaselineConfigError(f"method {method}: {error}{fix}") from None

    def _validate_action_spaces(self) -> None:
        """Refuse an SB3 method (or reference) that cannot act on the tasks' action spaces, in one line.

        With one task, any such method is refused; with several, the grid skips the impossible
        (task, method) pairs instead (``skipped_pairs``; ``compare`` says so in one line). An
        explicit reference must act on every task. Every task is made once here when an SB3
        method is listed, so a task that cannot be made is refused up front too.
        """
        for method in self.methods:
            if method not in SB3_METHODS:
                continue
            unfit = [task for task in self.tasks if not method_acts_on(method, task)]
            if not unfit or len(self.tasks) > 1:
                continue
            task = unfit[0]
            fitting = _fitting_methods(task)
            fix = f"use {' or '.join(fitting)}" if fitting else "no SB3 method here acts on it"
            raise BaselineConfigError(f"method {method} cannot run: {_unfit_reason(method, task)}; "
                                      f"drop it from --methods, or {fix}")
        if self.reference in SB3_METHODS:
            for task in self.tasks:
                if not method_acts_on(self.reference, task):
                    raise BaselineConfigError(f"reference {self.reference} cannot score {task}: "
                                              f"{_unfit_reason(self.reference, task)}; use --reference "
                                              f"{AUTO_REFERENCE} (sb3-ddpg on Box-action tasks, sb3-dqn on Discrete)")


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
    local_noise: str = "own"
    """``CompareConfig.local_noise`` for a local method; ``"own"`` for every other (``plan_runs``)."""
    checkpoint_every: int | None = None
    """``CompareConfig.checkpoint_every`` for a local method; ``None`` (the trainer's default) for every other."""
    topology: str = "mlp"
    """``CompareConfig.topology`` for a local method; ``"mlp"`` for every other."""
    leak: float = 0.0
    """``CompareConfig.leak`` for a local method; 0 for every other."""
    density: float = DEFAULT_DENSITY
    """``CompareConfig.density`` for a local method; the default for every other."""
    clock: str = "sync"
    """``CompareConfig.clock`` for a local method; ``"sync"`` for every other."""
    firing_rate: float = 1.0
    """``CompareConfig.firing_rate`` for a local method; 1 for every other."""

    def identity(self) -> dict[str, Any]:
        """The fields a reused run must match (everything but ``tensorboard``), JSON-ready.

        ``local_noise``, ``checkpoint_every``, ``topology``, ``leak``, ``density``, ``clock`` and
        ``firing_rate`` are left out at their defaults, so runs made before the options existed are still reused.
        """
        data = asdict(self)
        data.pop("tensorboard")
        for name, default in RUN_OPTION_DEFAULTS.items():
            if data[name] == default:
                data.pop(name)
        data["hidden"] = list(self.hidden)
        return data

    def folder(self, out: str | os.PathLike[str]) -> Path:
        """The run's folder under a comparison's output directory."""
        return Path(out) / "runs" / _safe(self.task) / self.method / f"seed{self.seed}"

    @property
    def label(self) -> str:
        """``"Pendulum-v1 local-mlp seed0"``."""
        return f"{self.task} {self.method} seed{self.seed}"


#: Options of a ``RunSpec`` that its identity leaves out at these defaults (runs made before they existed).
RUN_OPTION_DEFAULTS: dict[str, Any] = {"local_noise": "own", "checkpoint_every": None, "topology": "mlp", "leak": 0.0,
                                       "density": DEFAULT_DENSITY, "clock": "sync", "firing_rate": 1.0}


def _safe(name: str) -> str:
    """A task id as one folder name (``ALE/Pong-v5`` -> ``ALE_Pong-v5``)."""
    return name.replace("/", "_").replace(os.sep, "_")


def local_run_options(config: CompareConfig) -> dict[str, Any]:
    """The ``RunSpec`` options only a local method's run takes from ``config`` (the others keep the defaults)."""
    return {"local_noise": config.local_noise, "checkpoint_every": config.checkpoint_every,
            "topology": config.topology, "leak": config.leak, "density": config.density, "clock": config.clock,
            "firing_rate": config.firing_rate}


def plan_runs(config: CompareConfig) -> list[RunSpec]:
    """Every run of the comparison, seed-major (all of seed 0 first, so early results span the grid).

    A (task, method) pair whose method cannot act on the task's action space is left out
    (``CompareConfig.skipped_pairs``).
    """
    skipped = {(task, method) for task, method, _ in config.skipped_pairs()}
    return [
        RunSpec(task=task, method=method, seed=seed, steps=config.budget(task),
                hidden=tuple(int(h) for h in config.hidden), activation=config.activation,
                eval_every=config.eval_every, eval_episodes=config.eval_episodes,
                learning_starts=config.learning_starts, tensorboard=config.tensorboard,
                **(local_run_options(config) if method.startswith("local-") else {}))
        for seed in config.seed_range for task in config.tasks for method in config.methods
        if (task, method) not in skipped
    ]


def command_line(config: CompareConfig, command: tuple[str, ...] = ("neuron-env", "compare")) -> str:
    """The ``neuron-env compare`` command (or ``command``, taking the same flags) that regenerates the outputs."""
    parts = [*command, "--tasks", *config.tasks, "--methods", *config.methods,
             "--steps", str(config.steps), "--seeds", str(config.seeds),
             *(["--first-seed", str(config.first_seed)] if config.first_seed else []), "--out", str(config.out),
             "--workers", str(config.workers), "--hidden", *map(str, config.hidden), "--activation", config.activation,
             "--eval-every", str(config.eval_every), "--eval-episodes", str(config.eval_episodes)]
    if config.task_steps:
        parts += ["--task-steps", *(f"{t}={n}" for t, n in config.task_steps.items())]
    if config.learning_starts is not None:
        parts += ["--learning-starts", str(config.learning_starts)]
    if config.local_noise != "own":
        parts += ["--local-noise", config.local_noise]
    if config.checkpoint_every is not None:
        parts += ["--checkpoint-every", str(config.checkpoint_every)]
    if config.topology != "mlp":
        parts += ["--topology", config.topology]
    if config.leak:
        parts += ["--leak", f"{config.leak:g}"]
    if config.density != DEFAULT_DENSITY:
        parts += ["--density", f"{config.density:g}"]
    if config.clock != "sync":
        parts += ["--clock", config.clock, "--firing-rate", f"{config.firing_rate:g}"]
    if config.thresholds:
        parts += ["--threshold", *(f"{t}={v:g}" for t, v in config.thresholds.items())]
    if config.reference != AUTO_REFERENCE:
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
