"""The configuration of a ``neuron-env train`` run: ``TrainConfig`` and what it builds.

One ``TrainConfig`` (CleanRL style: one dataclass, a docstring per field, seeded in one place)
describes a run: the run's own settings (task, network, budget, logging) and, apart, the learner
options it sets (``learner_options``); every option it does not set takes the chosen learner's own
default, from the learner's config dataclass (``TrainConfig.learner_config``). ``TrainConfig.check``
refuses a bad field or a foreign option in one line before anything is built; ``build_topology``
and ``make_learner`` build the network and the learner it names. ``neuron_env.agents.train`` runs
it; ``neuron_env.agents.checkpoints`` stores it with the weights.

Example::

    from neuron_env.agents.train_config import TrainConfig, build_topology

    config = TrainConfig(task="Pendulum-v1", hidden=[8, 8], learner_options={"feedback": "direct"})
    config.check()
    print(build_topology(config).summary())
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from neuron_env.agents.capabilities import check_clock_options
from neuron_env.agents.errors import LearnerConfigError
from neuron_env.agents.learner import Learner
from neuron_env.agents.registry import LEARNERS, learner_class, learner_options

from neuron_env.configs import field_docs
from neuron_env.errors import TopologyError
from neuron_env.parallel import task_topology
from neuron_env.topology import DEFAULT_DENSITY, Topology, check_network_kind

if TYPE_CHECKING:
    from neuron_env.agents import LearnerConfig

#: The learner options a ``config.json`` or checkpoint written before ``learner_config`` holds as flat
#: fields, with the defaults they had there (``LocalDDPGConfig``'s then). That version passed a field on
#: to a learner other than ``ddpg`` only where it differed from this default; ``TrainConfig.from_record``
#: reads such a file the same way.
FLAT_LEARNER_DEFAULTS: dict[str, Any] = {
    "freeze_hidden": False, "critic": "mlp", "critic_context": "task", "granularity": None, "critic_hidden": 32,
    "gamma": 0.99, "tau": 0.005, "lr_critic": 1e-3, "lr_actor": 5e-3, "lr_actor_hidden": None,
    "actor_optimizer": "sgd", "actor_max_norm": None, "policy_delay": 1, "batch_size": 64, "buffer_size": 100_000,
    "noise": "gaussian", "noise_scale": 0.1, "noise_scale_hidden": None, "replay_voltages": "stored",
}


@dataclass
class TrainConfig:
    """Everything that defines a training run (defaults: the measured Pendulum-v1 setting).

    The run's own settings are fields; the learner's options are not: ``learner_options`` holds
    those the run sets, and every other option takes the chosen learner's own default (its config
    dataclass, ``learner_class(learner).config_class``). ``learner_config()`` resolves them;
    ``record()`` is what ``config.json`` holds. ``from_settings`` takes both in one flat mapping,
    as the command line gives them::

        TrainConfig(learner="ddpg", learner_options={"critic": "linear"}, steps=20_000)
        TrainConfig.from_settings(learner="ddpg", critic="linear", steps=20_000)  # the same
    """

    task: str = "Pendulum-v1"
    """Gymnasium id of the task (any space ``neuron_env.spaces`` encodes; the network is sized to it)."""
    learner: str = "feedback"
    """Learner by name: feedback, eprop, ddpg, coagent, weight-max or es (``agents.registry``); ``neuron-env train``
    without ``--learner`` runs eprop on a recurrent or leaky network (``capabilities.default_learner``)."""
    learner_options: dict[str, Any] = field(default_factory=dict)
    """Options of the chosen learner that the run sets (``{"batch_size": 16}``); absent or ``None``: its default."""
    topology: str = "mlp"
    """Network kind: ``mlp``, ``recurrent`` (one leaky recurrent layer) or ``sparse``."""
    hidden: list[int] = field(default_factory=lambda: [64, 64])
    """Hidden sizes (``mlp``), or the one hidden size (``recurrent``, ``sparse``)."""
    activation: str = "tanh"
    """Activation of the hidden neurons (outputs are tanh)."""
    leak: float = 0.0
    """Leak of the recurrent layer (``recurrent`` only)."""
    density: float = DEFAULT_DENSITY
    """Connection density (``sparse`` only; another kind refuses any other value)."""
    clock: str = "sync"
    """Neurons' clock in training and evaluation: ``sync`` (every neuron every tick) or ``async`` (``firing_rate``)."""
    firing_rate: float = 1.0
    """Probability in (0, 1] that a neuron fires on a tick under ``clock=async`` (1: every neuron, as ``sync``)."""
    steps: int = 30_000
    """Task steps to train for (per env copy)."""
    num_envs: int = 1
    """Task copies stepped in lockstep."""
    device: str = "auto"
    """``auto`` (cuda if available), ``cpu`` or ``cuda``."""
    seed: int = 0
    """Seed of weights, critics, noise, replay sampling and task resets."""
    learning_starts: int = 1000
    """Task steps of warm-up acting (see ``warmup``) before updates start."""
    warmup: str = "uniform"
    """Warm-up acting: ``uniform`` (uniform voltages in each neuron's range) or ``policy`` (μ plus noise)."""
    updates_per_step: int = 1
    """Updates per stored transition (the update-to-data ratio): ``updates_per_step × num_envs`` per batch."""
    eval_every: int = 5000
    """Task steps between deterministic evaluations (0: only at the end)."""
    eval_episodes: int = 5
    """Episodes per evaluation (run in parallel copies, fixed seeds, no noise)."""
    checkpoint_every: int = 10_000
    """Task steps between checkpoints (also the resume segment length, see the module doc)."""
    checkpoint_replay: bool = False
    """Put the replay buffer into every checkpoint: exact resume, but the file grows with the buffer (module doc)."""
    log_every: int = 1000
    """Task steps between TD-error / SPS scalars and ``metrics.csv`` rows (see the module doc)."""
    out: str | None = None
    """Output directory; default ``runs/<task>-<learner>-seed<seed>``, ``ddpg``: ``runs/<task>-<critic>-seed<seed>``."""
    progress: bool = True
    """Show a progress bar."""
    tensorboard: bool = True
    """Write TensorBoard scalars under ``<out>/tb``."""
    threads: int = 1
    """Torch CPU threads (the many small per-neuron products run fastest on 1; 0: torch's default)."""

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any] | None = None, /, **more: Any) -> TrainConfig:
        """A config from one flat mapping of run settings and learner options (as the command line has them).

        A name that is a field sets it; every other name is a learner option, set over
        ``learner_options`` (``check`` refuses one the learner does not have).

        Args:
            settings: Settings by name.
            **more: More settings by name (over ``settings``).
        """
        merged = {**(settings or {}), **more}
        options = dict(merged.pop("learner_options", None) or {})
        own = run_fields()
        options.update({name: value for name, value in merged.items() if name not in own})
        return cls(**{name: value for name, value in merged.items() if name in own}, learner_options=options)

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> TrainConfig:
        """The config of a ``config.json`` (or a checkpoint's ``config``), in this or an earlier format.

        This format (``record()``) lists every learner option under ``learner_config``: all are set
        again. The earlier one (no ``learner_config``) held the ``ddpg`` learner's options as flat
        fields (``FLAT_LEARNER_DEFAULTS``): a ``ddpg`` run's are all set again, another learner's
        only where they differ from those defaults (plus its ``learner_options``), as that version
        passed them on; the others are the learner's own defaults. A name that is no longer a
        field or an option of the learner is dropped (a checkpoint of an older version still
        loads for ``enjoy``); a record without ``learner`` predates the learners: ``ddpg``. A
        ``density`` recorded on a dense network (accepted, and without effect, before it was
        refused) is read as the default, so such a run still resumes and plays.

        Args:
            record: The stored settings.
        """
        own = run_fields()
        learner = str(record.get("learner", "ddpg"))
        if "learner_config" in record:
            options = dict(record["learner_config"])
        else:
            flat = {name: value for name, value in record.items() if name in FLAT_LEARNER_DEFAULTS}
            if learner != "ddpg":
                flat = {name: value for name, value in flat.items() if value != FLAT_LEARNER_DEFAULTS[name]}
            options = {**flat, **(record.get("learner_options") or {})}
        known = set(learner_options(learner)) if learner in LEARNERS else set()
        run = {name: value for name, value in record.items() if name in own}
        if run.get("topology", "mlp") != "sparse":
            run.pop("density", None)
        return cls(**{**run, "learner": learner}, learner_options={k: v for k, v in options.items() if k in known})

    def learner_config(self) -> LearnerConfig:
        """The chosen learner's config dataclass: ``learner_options`` over the learner's own defaults.

        Raises:
            LearnerConfigError: On an unknown learner or an option it does not have (the message
                names the learners that have it).
        """
        refuse_foreign_options(self.learner, self.learner_options)
        config_class = learner_class(self.learner).config_class
        return config_class(**{name: value for name, value in self.learner_options.items() if value is not None})

    def record(self) -> dict[str, Any]:
        """What ``config.json`` holds: the run's settings and ``learner_config``, every option as the run uses it.

        No option of another learner appears; ``from_record`` reads it back.
        """
        record: dict[str, Any] = {}
        for name, value in asdict(self).items():
            if name == "learner_options":
                record["learner_config"] = asdict(self.learner_config())
            else:
                record[name] = value
        return record

    def settings(self) -> dict[str, Any]:
        """The run's settings and every resolved learner option in one flat mapping (``from_settings`` reads it)."""
        record = self.record()
        return {**{name: value for name, value in record.items() if name != "learner_config"},
                **record["learner_config"]}

    def output_dir(self) -> Path:
        """The run's output directory."""
        name = self.learner_config().critic if self.learner == "ddpg" else self.learner
        return Path(self.out if self.out else f"runs/{self.task}-{name}-seed{self.seed}")

    def check_network(self) -> None:
        """Raise ``LearnerConfigError`` on an unknown ``topology``, or a ``leak`` or ``density`` the kind has not."""
        try:
            check_network_kind(self.topology, self.leak, self.density)
        except TopologyError as error:
            raise LearnerConfigError(str(error)) from None

    def check(self) -> None:
        """Raise ``LearnerConfigError`` naming the first invalid field or learner option."""
        positive = ("steps", "num_envs", "eval_episodes", "checkpoint_every", "log_every", "updates_per_step")
        for name in positive:
            if int(getattr(self, name)) < 1:
                raise LearnerConfigError(f"{name}={getattr(self, name)!r} must be >= 1")
        for name in ("learning_starts", "eval_every"):
            if int(getattr(self, name)) < 0:
                raise LearnerConfigError(f"{name}={getattr(self, name)!r} must be >= 0")
        options = self.learner_config()
        for name in ("batch_size", "buffer_size", "critic_hidden", "policy_delay"):
            value = getattr(options, name, None)
            if value is not None and int(value) < 1:
                raise LearnerConfigError(f"{name}={value!r} must be >= 1 (learner {self.learner!r})")
        if self.warmup not in ("uniform", "policy"):
            raise LearnerConfigError(f"warmup={self.warmup!r}; use 'uniform' or 'policy'")
        self.check_network()
        check_clock_options(self.clock, self.firing_rate)
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise LearnerConfigError(f"device={self.device!r}; use 'auto', 'cpu' or 'cuda'")
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise LearnerConfigError(f"device={self.device!r} but CUDA is not available; use --device cpu or auto")


def run_fields() -> tuple[str, ...]:
    """Names of the run's own settings: the ``TrainConfig`` fields but ``learner_options``."""
    return tuple(f.name for f in fields(TrainConfig) if f.name != "learner_options")


def learners_with(option: str) -> tuple[str, ...]:
    """The registered learners that have ``option``."""
    return tuple(name for name in LEARNERS if option in learner_options(name))


def refuse_foreign_options(learner: str, names: Iterable[str], as_flags: bool = False) -> None:
    """Refuse, in one line, option names that ``learner`` does not have.

    Args:
        learner: A learner name (an unknown one is refused first).
        names: Option names the run sets.
        as_flags: Name them as ``neuron-env train`` flags (``--batch-size``) instead of fields.

    Raises:
        LearnerConfigError: Naming the learner, the options it lacks and which learners have them.
    """
    own = learner_options(learner)  # refuses an unknown learner
    foreign = sorted(set(names) - set(own))
    if not foreign:
        return

    def shown(name: str) -> str:
        return "--" + name.replace("_", "-") if as_flags else name

    owners = "; ".join(f"{shown(name)}: " + (f"an option of {', '.join(learners_with(name))}" if learners_with(name)
                                             else "an option of no learner") for name in foreign)
    if as_flags:
        what = "is not an option" if len(foreign) == 1 else "are not options"
        refused = f"{', '.join(shown(name) for name in foreign)} {what} of --learner {learner}"
    else:
        refused = f"learner_options {foreign} are not options of learner {learner!r}"
    raise LearnerConfigError(f"{refused} ({owners}); its options: {', '.join(shown(name) for name in own)}")


def field_help() -> dict[str, str]:
    """The docstring of every ``TrainConfig`` field (for ``--help``)."""
    return {name: doc.replace("``", "") for name, doc in field_docs(TrainConfig).items()}


def resolve_device(device: str) -> torch.device:
    """``auto`` -> cuda when available, else cpu."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def build_topology(config: TrainConfig) -> Topology:
    """The network the config describes, sized to its task."""
    return task_topology(config.task, config.topology, config.hidden, config.activation, config.leak,
                         config.density, config.seed)


def learner_config(config: TrainConfig) -> LearnerConfig:
    """The learner's resolved config dataclass: ``config.learner_config()`` (kept for callers of earlier versions)."""
    return config.learner_config()


def make_learner(config: TrainConfig, topology: Topology, device: torch.device) -> Learner:
    """The learner the config describes, built from its resolved config dataclass."""
    return learner_class(config.learner).from_config(topology, config.learner_config(), device=device,
                                                     seed=config.seed)

