"""The trainer behind ``neuron-env train``: any registered local learner (default ``feedback``) on a task.

One ``TrainConfig`` (CleanRL style: one dataclass, a docstring per field, seeded in one
place) describes a run: the run's own settings (task, network, budget, logging) and, apart, the
learner options it sets (``learner_options``); every option it does not set takes the chosen
learner's own default, from the learner's config dataclass (``TrainConfig.learner_config``).
``train`` runs it and writes into ``config.out``:

``config.json``
    the settings the run used (``TrainConfig.record``): the run's settings and ``learner_config``,
    every option of the chosen learner as resolved (its config dataclass; no other learner's).
``metrics.csv``
    one row at every task step that is a multiple of ``log_every`` or of ``eval_every``, and
    one at the end (after the final evaluation); a step that is both is one row. Columns: task
    steps, wall time, steps/s (over the whole run), mean training episodic return of the
    episodes ended since the previous row, deterministic evaluation return mean/std (blank on
    rows without an evaluation: only ``eval_every`` rows and the final row have them), mean
    |TD error| of the updates logged since the previous row, updates. With ``steps=300``,
    ``log_every=100`` and ``eval_every=150`` the rows are at 100, 150 (evaluation), 200 and
    300 (final evaluation). Readers of learning curves keep the rows with an evaluation.
``summary.json``
    status (``completed``, ``interrupted`` or ``diverged``), final evaluation return mean/std,
    task steps, the task step of the checkpoint on disk (``checkpoint_step``), updates, wall time,
    steps/s and the configuration.
``checkpoint.pt``
    everything needed to resume (learner, optimiser, noise, random generator, counters; the
    replay buffer only with ``checkpoint_replay``) and the network's weights for ``neuron-env
    enjoy``. Written atomically (a temporary file, then ``os.replace``) every
    ``checkpoint_every`` task steps, at the end and on Ctrl-C, so a crash mid-write leaves the
    previous checkpoint intact.
``tb/``
    TensorBoard scalars: ``charts/episodic_return``, ``charts/episodic_length``,
    ``charts/SPS``, ``losses/td_error``, ``losses/td_error/<group>``, ``losses/q_slope``
    (mean ``|∂Q/∂a|``), ``eval/return_mean``, ``eval/return_std``.

The progress bar shows the mean return of the last 20 training episodes, the last
evaluation and the steps/s of the last second (every copy's steps). ``Trainer.run`` is the
loop; what it reports goes through ``agents.run_log.RunLogger`` (the files above but the
checkpoint, and the bar).

Example::

    neuron-env train --task Pendulum-v1 --hidden 64 64 --critic mlp --steps 30000 --out runs/pendulum
    tensorboard --logdir runs/pendulum/tb
    neuron-env enjoy --checkpoint runs/pendulum

Loop
----
Every task step: the learner acts (one layer per tick in ``settled`` mode, computed in one
``act_settled`` call and held by the env over the task step's ticks with one ``step_task`` call;
every neuron every tick in ``per_tick`` mode), the transitions go to the replay buffer, and after
``learning_starts`` task steps ``updates_per_step × num_envs`` updates follow each stored batch
of ``num_envs`` transitions (each task step in ``settled`` mode, each tick in ``per_tick`` mode):
the update-to-data ratio is ``updates_per_step`` whatever the number of copies, as SB3's
``gradient_steps=-1`` keeps it (an on-policy learner updates once per batch it is ``ready`` for). Before
``learning_starts`` the acting neurons draw uniform voltages in their range (``warmup="uniform"``)
or act by ``μ`` plus noise (``warmup="policy"``).

Network kinds and the clock
---------------------------
``topology`` and ``leak`` choose the network, ``clock`` and ``firing_rate`` the neurons' clock of
the training env and of the evaluation env alike (``--clock async --firing-rate 0.5``: each
neuron fires with probability 0.5 per tick, ``NeuronVecEnv``). Before it builds the learner the
trainer checks, in one place (``agents.capabilities.check_capability``), that the learner declares
the network's kinds and the clock; otherwise it refuses in one line naming what the learner trains
and the learners that train what was asked. Under the async clock the per-tick loop hands each
tick's firing mask to ``store(..., fired=...)``; ``act`` gets none (the env draws it when it steps).
``firing_rate=1`` under ``async`` trains bit for bit as ``sync``. A run records both in
``config.json``; ``--resume``, ``enjoy`` and ``render`` restore them (a run recorded before they
existed is ``sync``).

Resume and reproducibility
--------------------------
The run is cut into *segments* of ``checkpoint_every`` task steps. At the start of every
segment the trainer resets the task copies with a seed derived from ``(seed, task step)`` —
in an uninterrupted run exactly as in a resumed one. A checkpoint written at a segment
boundary (every interval checkpoint, and the final one when ``steps`` is a multiple of
``checkpoint_every``) with ``checkpoint_replay=True`` (``--checkpoint-replay``) therefore resumes
to *the same result* as the uninterrupted run on the same device (learner, replay buffer, noise
and sampling generator are restored; the task restarts from the same seed).

By default (``--no-checkpoint-replay``) an off-policy learner's replay buffer stays out of the
checkpoint, which then holds the parameters and optimiser state only (a few hundred kB for a
3-64-64-1 network instead of growing with every stored transition). A run resumed from such a
checkpoint says so, starts with an empty buffer, acts by its policy plus noise and updates again
once the buffer holds ``learning_starts`` transitions (at least one batch): it continues the
learned network, not the exact run, and its ``summary.json`` lists the task steps of such resumes
(``resumes_without_replay``) so that a study can tell it from an uninterrupted run. On-policy
learners (coagent, weight-max, es) keep only the step or rollout in progress, which is always saved.

What is not reproduced either: a checkpoint written on Ctrl-C between boundaries resumes
correctly (same learner and buffer) but with fresh episodes from the derived seed, so it
continues differently from the run that was never stopped; and the episode in progress at a
boundary is cut short (choose ``checkpoint_every`` as a multiple of the episode length, e.g.
10 000 for Pendulum's 200, to avoid it). ``train(..., save_on_interrupt=False)`` writes no
checkpoint on Ctrl-C and keeps the last boundary one: ``neuron-env compare`` runs its local runs
so (with ``checkpoint_replay``), and an interrupted comparison resumes each of them exactly.

Ctrl-C in ``neuron-env train`` stops after the current task step, writes the checkpoint, the
metrics and ``summary.json`` (status ``interrupted``) and prints one line naming the task step
and the command that resumes (``neuron-env train --resume DIR``); exit status 130.

Divergence
----------
Every update checks the TD errors and parameters; on a NaN or infinity the run stops with
``DivergenceError`` naming the group, ``summary.json`` records
``diverged``, and the last good checkpoint is kept (nothing is written after the failure).

One module: the run's configuration, its checkpoint format and the loop that writes and resumes
it change together; what the run reports lives in ``neuron_env.agents.run_log``.
"""

from __future__ import annotations

import json
import signal
import sys
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from neuron_env.agents.capabilities import check_capability, check_clock_options
from neuron_env.agents.errors import CheckpointError, DivergenceError, LearnerConfigError
from neuron_env.agents.learner import Learner
from neuron_env.agents.registry import LEARNERS, learner_class, learner_options
from neuron_env.agents.run_log import RunLogger

from neuron_env.configs import field_docs
from neuron_env.errors import TopologyError
from neuron_env.parallel import task_topology
from neuron_env.run_folders import clear_run_folder
from neuron_env.run_output import atomic_write, atomic_write_json
from neuron_env.topology import NetworkWeights, Topology, check_network_kind
from neuron_env.vector import NeuronVecEnv

if TYPE_CHECKING:
    from neuron_env.agents import LearnerConfig

CHECKPOINT_NAME = "checkpoint.pt"
CHECKPOINT_FORMAT = 1
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
    density: float = 0.1
    """Connection density (``sparse`` only)."""
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
        loads for ``enjoy``); a record without ``learner`` predates the learners: ``ddpg``.

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
        """Raise ``LearnerConfigError`` on an unknown ``topology`` or a ``leak`` the network kind has not."""
        try:
            check_network_kind(self.topology, self.leak)
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


def segment_seed(seed: int, task_step: int) -> int:
    """The task reset seed of the segment starting at ``task_step``."""
    return int(np.random.SeedSequence([seed, task_step]).generate_state(1)[0] & 0x7FFFFFFF)


def evaluation_seed(seed: int) -> int:
    """The fixed seed of evaluation episodes (copy ``i`` gets ``+ i``)."""
    return int(np.random.SeedSequence([seed, 2**31 - 1, 7]).generate_state(1)[0] & 0x7FFFFFFF)


# ---------------------------------------------------------------------------------- checkpoints
def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` to ``path`` atomically: a temporary file in the same folder, then ``os.replace``."""
    atomic_write(path, lambda stream: torch.save(payload, stream))


def _sb3_class(folder: Path) -> str:
    """How to load a ``neuron-env baseline`` folder: the class that saved its model.zip (config.json's ``algo``).

    ``"stable_baselines3's DQN.load"``, ``"sb3_contrib.RecurrentPPO.load"`` for ``recurrent-ppo``,
    every class when config.json does not say; plus SB3's ``VecNormalize.load`` when the folder
    holds the ``vecnormalize.pkl`` of a normalized run.
    """
    try:
        algo = json.loads((folder / "config.json").read_text()).get("algo")
    except (OSError, ValueError):
        algo = None
    classes = {"ddpg": "DDPG", "td3": "TD3", "dqn": "DQN", "ppo": "PPO"}
    if algo == "recurrent-ppo":
        loader = "sb3_contrib.RecurrentPPO.load"
    elif algo in classes:
        loader = f"stable_baselines3's {classes[algo]}.load"
    else:
        every = " / ".join(f"{name}.load" for name in classes.values())
        loader = f"stable_baselines3's {every} or sb3_contrib.RecurrentPPO.load"
    if (folder / "vecnormalize.pkl").is_file():
        loader += (", and its observation statistics with stable_baselines3's VecNormalize.load('vecnormalize.pkl', "
                   "venv) (then training = False, norm_reward = False)")
    return loader


def load_checkpoint(directory: str | Path) -> dict[str, Any]:
    """Read ``checkpoint.pt`` from a run directory (or a checkpoint file path).

    Raises:
        CheckpointError: If it is missing, unreadable or of another format version.
    """
    path = Path(directory)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.is_file():
        if (path.parent / "model.zip").is_file():
            raise CheckpointError(f"{str(path.parent)!r} is a `neuron-env baseline` folder (model.zip, no "
                                  f"{CHECKPOINT_NAME}): enjoy and render run local learners; load it with "
                                  f"{_sb3_class(path.parent)}")
        raise CheckpointError(f"no checkpoint at {str(path)!r}; pass the --out directory of a train run")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unpickling failure is a bad checkpoint
        raise CheckpointError(f"checkpoint {str(path)!r} cannot be read: {error}") from error
    if payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"checkpoint {str(path)!r} has format {payload.get('format')!r}; "
                              f"this version reads format {CHECKPOINT_FORMAT}")
    return payload


def config_from_checkpoint(payload: dict[str, Any]) -> TrainConfig:
    """The ``TrainConfig`` stored in a checkpoint, of this version or an earlier one (``TrainConfig.from_record``)."""
    return TrainConfig.from_record(payload["config"])


def weights_from_checkpoint(payload: dict[str, Any]) -> NetworkWeights:
    """The network weights stored in a checkpoint."""
    return NetworkWeights(tuple(payload["weights"]["blocks"]), tuple(payload["weights"]["biases"]))


# ---------------------------------------------------------------------------------- evaluation
def evaluate(learner: Learner, env: NeuronVecEnv, seed: int, max_ticks: int = 1_000_000) -> np.ndarray:
    """Deterministic returns of the first episode of every copy of ``env`` (no noise).

    Args:
        learner: Acts by ``μ`` (every neuron, every tick: the forward pass for acyclic networks).
        env: Evaluation env; its ``num_envs`` copies run one episode each.
        seed: Reset seed (copy ``i`` gets ``seed + i``).
        max_ticks: Safety limit for tasks without a time limit.

    Returns:
        ``[num_envs]`` episodic returns.
    """
    voltages, _ = env.reset(seed=seed)
    returns = np.zeros(env.num_envs)
    finished = np.zeros(env.num_envs, dtype=bool)
    for _ in range(max_ticks):
        step = env.step(learner.act(voltages, explore=False))
        voltages = step.voltages
        if step.task_stepped:
            returns += np.where(finished, 0.0, step.reward.cpu().numpy())
            finished |= (step.terminated | step.truncated).cpu().numpy()
            if finished.all():
                break
    return returns


# ---------------------------------------------------------------------------------- trainer
class Trainer:
    """A training run: env, learner, logging and checkpoints (see the module doc).

    Args:
        config: The run's configuration.
        resume: A checkpoint payload (``load_checkpoint``) to continue from, or ``None``.
        on_step: Called with the trainer after every task step (tests use it to interrupt).
        overwrite: Before writing anything, delete what a run wrote into ``config.out``
            (``neuron_env.run_folders.clear_run_folder``: ``tb/`` included, other files kept), once
            the task, network and learner are known to be valid. Not with ``resume``.
        save_on_interrupt: On Ctrl-C (or ``request_stop``) write a checkpoint at the current task step.
            ``False`` keeps the last segment-boundary checkpoint instead, the one an exact resume
            starts from (``compare`` runs).
    """

    def __init__(
        self,
        config: TrainConfig,
        resume: dict[str, Any] | None = None,
        on_step: Callable[[Trainer], None] | None = None,
        *,
        overwrite: bool = False,
        save_on_interrupt: bool = True,
    ) -> None:
        config.check()
        if overwrite and resume is not None:
            raise LearnerConfigError("overwrite starts a new run; it cannot be combined with resume")
        self.config = config
        self.on_step = on_step
        self.save_on_interrupt = save_on_interrupt
        self.device = resolve_device(config.device)
        self.out = config.output_dir()
        self.topology = build_topology(config)
        # the one capability check, before the learner is built: its line names the learners that can
        check_capability(config.learner, self.topology, config.clock,
                         getattr(config.learner_config(), "granularity", None))
        self.learner = make_learner(config, self.topology, self.device)
        self.env = NeuronVecEnv(config.task, self.topology, num_envs=config.num_envs, device=self.device,
                                validate=False, clock=config.clock, firing_rate=config.firing_rate)
        # created (or cleared) only once the task, network and learner are valid: a bad option leaves the folder
        if overwrite:
            clear_run_folder(self.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self._eval_env: NeuronVecEnv | None = None
        self.task_step = 0
        self.episodes = 0
        self.elapsed_before = 0.0
        self.recent_returns: deque[float] = deque(maxlen=20)
        self.last_eval: tuple[float, float] | None = None
        self._stop_requested = False
        self._log: RunLogger | None = None
        #: Updates wait until this task step: a resume without the replay buffer refills it first.
        self.refill_until = 0
        #: Task steps at which this run resumed without its replay buffer (its summary says so: such a run
        #: is not the uninterrupted run, as updates paused while the buffer refilled).
        self.resumes_without_replay: list[int] = []
        #: The task step of the checkpoint on disk (``None`` before the first one).
        self.checkpoint_step: int | None = None
        if resume is not None:
            self.learner.load_state_dict(resume["learner"])
            if self.learner.off_policy and self.learner.num_transitions == 0:
                self.refill_until = int(resume["trainer"]["task_step"]) + max(config.learning_starts,
                                                                             getattr(self.learner, "batch_size", 1))
                print(f"resuming {str(self.out)!r} without a replay buffer (the checkpoint was written with "
                      f"--no-checkpoint-replay): updates restart at task step {self.refill_until}, once the "
                      "buffer is refilled by the current policy; pass --checkpoint-replay for an exact resume",
                      file=sys.stderr)
            state = resume["trainer"]
            self.resumes_without_replay = [int(step) for step in state.get("resumes_without_replay", [])]
            if self.refill_until:
                self.resumes_without_replay.append(int(state["task_step"]))
            self.task_step = int(state["task_step"])
            self.checkpoint_step = self.task_step
            self.episodes = int(state["episodes"])
            self.elapsed_before = float(state["elapsed"])
            self.recent_returns.extend(state["recent_returns"])
            self.last_eval = tuple(state["last_eval"]) if state["last_eval"] is not None else None  # type: ignore
        atomic_write_json(self.out / "config.json", config.record())

    # ------------------------------------------------------------------ control
    def request_stop(self) -> None:
        """Stop cleanly after the current task step, writing a checkpoint (what Ctrl-C does)."""
        self._stop_requested = True

    @property
    def eval_env(self) -> NeuronVecEnv:
        """The separate evaluation env (created on first use)."""
        if self._eval_env is None:
            self._eval_env = NeuronVecEnv(self.config.task, self.topology, num_envs=self.config.eval_episodes,
                                          device=self.device, validate=False, clock=self.config.clock,
                                          firing_rate=self.config.firing_rate)
        return self._eval_env

    # ------------------------------------------------------------------ persistence
    def checkpoint_payload(self, elapsed: float) -> dict[str, Any]:
        """What ``save`` writes."""
        weights = self.learner.weights
        return {
            "format": CHECKPOINT_FORMAT,
            "config": self.config.record(),
            # on-policy learners keep only the step or rollout in progress: always saved
            "learner": self.learner.state_dict(
                include_buffer=self.config.checkpoint_replay or not self.learner.off_policy),
            "weights": {"blocks": [b.detach().cpu().clone() for b in weights.blocks],
                        "biases": [b.detach().cpu().clone() for b in weights.biases]},
            "trainer": {"task_step": self.task_step, "episodes": self.episodes, "elapsed": elapsed,
                        "recent_returns": list(self.recent_returns),
                        "resumes_without_replay": list(self.resumes_without_replay),
                        "last_eval": list(self.last_eval) if self.last_eval is not None else None},
        }

    def save(self, elapsed: float) -> None:
        """Write the checkpoint atomically."""
        save_checkpoint(self.out / CHECKPOINT_NAME, self.checkpoint_payload(elapsed))
        self.checkpoint_step = self.task_step

    # ------------------------------------------------------------------ logging
    def _summary(self, status: str, elapsed: float, eval_returns: np.ndarray | None,
                 error: str | None = None) -> dict[str, Any]:
        config = self.config
        summary = {
            "status": status,
            "final_eval_return_mean": float(eval_returns.mean()) if eval_returns is not None else None,
            "final_eval_return_std": float(eval_returns.std()) if eval_returns is not None else None,
            "final_eval_returns": eval_returns.tolist() if eval_returns is not None else None,
            "steps": self.task_step,
            "checkpoint_step": self.checkpoint_step,
            "learner": config.learner,
            "learner_config": asdict(config.learner_config()),
            "transitions": self.learner.num_transitions,
            "updates": self.learner.num_updates,
            "episodes": self.episodes,
            "wall_time_s": elapsed,
            "steps_per_s": self.task_step * config.num_envs / elapsed if elapsed > 0 else None,
            "device": str(self.device),
            "num_agents": self.topology.num_agents,
            "granularity": self.learner.granularity,
            "config": config.record(),
        }
        if self.resumes_without_replay:
            summary["resumes_without_replay"] = list(self.resumes_without_replay)
        if error is not None:
            summary["error"] = error
        return summary

    def _evaluate(self) -> np.ndarray:
        returns = evaluate(self.learner, self.eval_env, evaluation_seed(self.config.seed))
        self.last_eval = (float(returns.mean()), float(returns.std()))
        if self._log is not None:
            self._log.evaluation(self.task_step, *self.last_eval)
        return returns

    # ------------------------------------------------------------------ the loop
    def _reset_segment(self) -> torch.Tensor:
        voltages, _ = self.env.reset(seed=segment_seed(self.config.seed, self.task_step))
        self.learner.reset_noise()
        self._episode_return = np.zeros(self.config.num_envs, dtype=np.float64)
        #: The task step each copy's running episode started at (its length is counted from it, when it ends).
        self._episode_start = np.full(self.config.num_envs, self.task_step, dtype=np.int64)
        return voltages

    def _task_step(self, voltages: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, dict[str, Any]]:
        """One task step of acting, storing and updating.

        Returns:
            ``(voltages, last update stats, task tick)``: the tick's ``reward`` (float32), ``terminated``
            and ``truncated`` as ``[E]`` numpy arrays on the host.
        """
        learner, config = self.learner, self.config
        # on-policy learners learn from their own actions from the first step: no warm-up
        warm = self.task_step < max(config.learning_starts, self.refill_until) and learner.off_policy
        uniform = warm and config.warmup == "uniform" and self.task_step < config.learning_starts
        updates = config.updates_per_step * config.num_envs  # the update-to-data ratio, kept across copies
        stats = None
        if learner.granularity == "settled":  # the sync clock only (agents.capabilities refused async)
            # level by level in one call, held by the env for the task step's ticks (act_settled, step_task)
            actions = learner.act_settled(voltages, self.env.delay, uniform=uniform)
            step = self.env.step_task(actions)
            settled = voltages.clone()
            settled[:, self._agent_columns] = actions
            voltages = step.voltages
            learner.store(settled, actions, step.reward, step.info["final_voltages"], step.terminated,
                          step.truncated)
            if not warm:
                for _ in range(updates):
                    if learner.ready():
                        stats = learner.update()
        else:
            asynchronous = self.env.clock == "async"
            for _ in range(self.env.delay):
                actions = learner.act(voltages, uniform=uniform)
                step = self.env.step(actions)
                following = step.info["final_voltages"] if step.task_stepped else step.voltages
                # who fired goes only to a learner that declared the async clock (the others refused it)
                clocked = {"fired": step.info["fired"]} if asynchronous else {}
                learner.store(voltages, actions, step.reward, following, step.terminated, step.truncated, **clocked)
                voltages = step.voltages
                if not warm:
                    for _ in range(updates):
                        if learner.ready():
                            stats = learner.update()
        # on the host in numpy: the episode accounting's few small ops cost less there than as tensors
        tick = {"reward": step.reward, "terminated": step.terminated, "truncated": step.truncated}
        on_host = self.env.device.type == "cpu"  # the env's tensors share its numpy arrays' memory there
        return voltages, stats, {name: (t if on_host else t.cpu()).numpy() for name, t in tick.items()}

    @property
    def _agent_columns(self) -> slice | torch.Tensor:
        """The agents' voltage columns (``learner.agent_neuron_index``): a slice when contiguous, which copies."""
        span = self.topology.agent_span
        return span if isinstance(span, slice) else self.learner.agent_neuron_index

    def run(self) -> dict[str, Any]:
        """Train to ``config.steps`` task steps; returns the summary (also in ``summary.json``).

        Raises:
            DivergenceError: On a non-finite TD error or parameter (after recording ``diverged``).
        """
        config = self.config
        # the logger first: if it cannot start, nothing below (Ctrl-C handler, thread count) needs undoing
        log = self._log = RunLogger(self.out, total=config.steps, initial=self.task_step, num_envs=config.num_envs,
                                    elapsed_before=self.elapsed_before, progress=config.progress,
                                    tensorboard=config.tensorboard)
        threads_before = torch.get_num_threads()
        previous_handler = None
        status, error, eval_returns = "completed", None, None
        stats: dict[str, torch.Tensor] | None = None
        try:
            if config.threads > 0:
                torch.set_num_threads(config.threads)
            try:
                previous_handler = signal.signal(signal.SIGINT, lambda *_: self._on_sigint())
            except ValueError:  # not the main thread: Ctrl-C raises KeyboardInterrupt as usual
                previous_handler = None
            voltages = self._reset_segment()
            while self.task_step < config.steps:
                voltages, update_stats, tick = self._task_step(voltages)
                # on-policy learners update once per rollout: log the latest statistics at the next interval
                stats = update_stats if update_stats is not None else stats
                self.task_step += 1
                self._end_episodes(tick["terminated"], tick["truncated"], tick["reward"])
                stats = self._report(log, stats)
                if self.on_step is not None:
                    self.on_step(self)
                if self.task_step % config.checkpoint_every == 0 and self.task_step < config.steps:
                    self.save(log.elapsed())
                    voltages = self._reset_segment()
                if self._stop_requested:
                    raise KeyboardInterrupt
            eval_returns = self._evaluate()
            log.row(self.task_step, self.learner.num_updates, self.last_eval)
            self.save(log.elapsed())
        except KeyboardInterrupt:
            status = "interrupted"
            if self.save_on_interrupt:
                self.save(log.elapsed())
        except DivergenceError as exc:
            status, error = "diverged", str(exc)
            log.summary(self._summary(status, log.elapsed(), None, error))
            raise
        finally:
            torch.set_num_threads(threads_before)
            log.close()
            if previous_handler is not None:
                signal.signal(signal.SIGINT, previous_handler)
            self.env.close()
            if self._eval_env is not None:
                self._eval_env.close()
        summary = self._summary(status, log.elapsed(), eval_returns, error)
        log.summary(summary)
        self._log = None
        return summary

    def _report(self, log: RunLogger, stats: dict[str, torch.Tensor] | None) -> dict[str, torch.Tensor] | None:
        """The task step's logging: losses and an interval at ``log_every``, evaluation and row at ``eval_every``.

        The final evaluation and row follow the loop. Returns the statistics still to log (``None`` once logged).
        """
        config = self.config
        logging = self.task_step % config.log_every == 0
        if logging:
            if stats is not None:
                log.losses(self.task_step, stats)
                stats = None
            log.interval(self.task_step, self.recent_returns, self.last_eval)
        last = self.task_step >= config.steps
        evaluating = bool(config.eval_every) and self.task_step % config.eval_every == 0 and not last
        if evaluating:
            self._evaluate()
        if (logging or evaluating) and not last:
            log.row(self.task_step, self.learner.num_updates, self.last_eval if evaluating else None)
        log.advance(self.task_step)
        return stats

    def _end_episodes(self, terminated: np.ndarray, truncated: np.ndarray, reward: np.ndarray) -> None:
        """Add the task step's reward to the running episodes; log and restart those that ended.

        Args:
            terminated: ``[E]`` bool, whether each copy's task terminated on this task step.
            truncated: ``[E]`` bool, whether each copy's task was truncated on this task step.
            reward: ``[E]`` the task step's rewards (float32; summed in float64).
        """
        self._episode_return += reward
        # count_nonzero is one C call; ndarray.any() goes through numpy's Python-level reduction
        if not (np.count_nonzero(terminated) or np.count_nonzero(truncated)):
            return
        done = terminated | truncated
        self.learner.reset_noise(torch.from_numpy(done).to(self.device))
        for i in np.flatnonzero(done).tolist():
            value = float(self._episode_return[i])
            self.recent_returns.append(value)
            self.episodes += 1
            if self._log is not None:
                self._log.episode(self.task_step, value, int(self.task_step - self._episode_start[i]))
        self._episode_return[done] = 0.0
        self._episode_start[done] = self.task_step

    def _on_sigint(self) -> None:
        if self._stop_requested:  # second Ctrl-C: stop now
            raise KeyboardInterrupt
        self._stop_requested = True


def train(config: TrainConfig, resume: str | Path | None = None,
          on_step: Callable[[Trainer], None] | None = None, *, overwrite: bool = False,
          save_on_interrupt: bool = True) -> dict[str, Any]:
    """Run (or, with ``resume``, continue) a training run; returns its summary.

    Args:
        config: The run. With ``resume``, only ``steps``, ``device``, ``progress``, ``tensorboard``,
            ``threads`` and ``checkpoint_replay`` are taken from it; everything else comes from the
            checkpoint.
        resume: A run directory (or checkpoint file) to continue from.
        on_step: Optional callback after every task step.
        overwrite: Delete the run files already in ``config.out`` first (``Trainer``); not with ``resume``.
        save_on_interrupt: Write a checkpoint on Ctrl-C (``Trainer``); ``False`` keeps the last
            segment-boundary checkpoint, from which a resume is exact.

    Raises:
        CheckpointError: If ``resume`` holds no readable checkpoint or is a file.
        NothingToDo: If the resumed run is already at or past ``config.steps`` (no file changed).
        DivergenceError: If the run diverges.
        LearnerConfigError: If ``overwrite`` is given with ``resume``.
    """
    if overwrite and resume is not None:
        raise LearnerConfigError("overwrite starts a new run; it cannot be combined with resume")
    payload = None
    if resume is not None:
        resume_path = Path(resume)
        if resume_path.is_file():
            raise CheckpointError(f"resume takes a run directory (the --out of a train run), not the file "
                                  f"{str(resume_path)!r}; pass {str(resume_path.parent)!r}")
        payload = load_checkpoint(resume_path)
        stored = config_from_checkpoint(payload)
        for name in ("steps", "device", "progress", "tensorboard", "threads", "checkpoint_replay"):
            setattr(stored, name, getattr(config, name))
        stored.out = str(resume_path)
        config = stored
        done = int(payload["trainer"]["task_step"])
        summary_path = resume_path / "summary.json"
        finished = summary_path.is_file() and json.loads(summary_path.read_text()).get("status") == "completed"
        # a run stopped at its last step before its final evaluation is finished by resuming it
        if done > config.steps or (done == config.steps and finished):
            raise NothingToDo(f"nothing to do: the run in {str(resume_path)!r} is at task step {done}, "
                              f"at or past steps={config.steps}; pass a larger --steps to continue it")
    return Trainer(config, resume=payload, on_step=on_step, overwrite=overwrite,
                   save_on_interrupt=save_on_interrupt).run()


class NothingToDo(LearnerConfigError):
    """A resumed run is already at or past the requested number of steps (no file was changed)."""

