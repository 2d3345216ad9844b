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

The run's configuration lives in ``neuron_env.agents.train_config``, its checkpoint file in
``neuron_env.agents.checkpoints`` and what it reports in ``neuron_env.agents.run_log``; this module
is the loop (their public names are importable from here too).
"""

from __future__ import annotations

import json
import signal
import sys
from collections import deque
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from neuron_env.agents.capabilities import check_capability
from neuron_env.agents.checkpoints import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_NAME,
    config_from_checkpoint,
    load_checkpoint,
    save_checkpoint,
    weights_from_checkpoint,
)
from neuron_env.agents.errors import CheckpointError, DivergenceError, LearnerConfigError
from neuron_env.agents.learner import Learner
from neuron_env.agents.run_log import RunLogger
from neuron_env.agents.train_config import (
    FLAT_LEARNER_DEFAULTS,
    TrainConfig,
    build_topology,
    field_help,
    learner_config,
    learners_with,
    make_learner,
    refuse_foreign_options,
    resolve_device,
    run_fields,
)

from neuron_env.run_folders import clear_run_folder
from neuron_env.run_output import atomic_write_json
from neuron_env.vector import NeuronVecEnv

__all__ = [
    "CHECKPOINT_FORMAT", "CHECKPOINT_NAME", "FLAT_LEARNER_DEFAULTS", "NothingToDo", "TrainConfig", "Trainer",
    "build_topology", "config_from_checkpoint", "evaluate", "evaluation_seed", "field_help", "learner_config",
    "learners_with", "load_checkpoint", "make_learner", "refuse_foreign_options", "resolve_device", "run_fields",
    "save_checkpoint", "segment_seed", "train", "weights_from_checkpoint",
]


def segment_seed(seed: int, task_step: int) -> int:
    """The task reset seed of the segment starting at ``task_step``."""
    return int(np.random.SeedSequence([seed, task_step]).generate_state(1)[0] & 0x7FFFFFFF)


def evaluation_seed(seed: int) -> int:
    """The fixed seed of evaluation episodes (copy ``i`` gets ``+ i``)."""
    return int(np.random.SeedSequence([seed, 2**31 - 1, 7]).generate_state(1)[0] & 0x7FFFFFFF)



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

