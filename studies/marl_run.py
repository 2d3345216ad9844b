"""One BenchMARL run of the MARL study, and the exploration measurement (issue 26, items 1-2).

``studies/marl.py`` (the study: its rows, phases and report) runs each BenchMARL row as one
process of this script in BenchMARL's venv (``make test-marl`` builds ``.venv-marl``). Its two
commands take the flags of ``RunConfig``::

    .venv-marl/bin/python studies/marl_run.py run-one --algorithm mappo --settings default --seed 0 --out /tmp/mappo
    .venv-marl/bin/python studies/marl_run.py noise --task Pendulum-v1 --hidden 8 8 --out /tmp/noise

(``python studies/marl.py run-one ...`` / ``... noise ...`` forward to them.)

``run-one``
-----------
Trains one BenchMARL row ``<algorithm>-<settings>`` on the neuron network (every non-input neuron
an agent, one agent group per layer: ``neuron_env.integrations.benchmarl``) with
``make_experiment``, and evaluates the policy with the study's protocol (below). ``--task
Pendulum-v1 --hidden 8 8 --task-steps 100000 --eval-every 10000 --eval-episodes 20`` are its
defaults; the study passes every flag. ``--settings`` is ``default`` (BenchMARL's configs as its
yaml files give them), ``recommended`` (``recommended_settings``) or a factor (``FACTORS``:
``default`` with one setting changed); ``studies/marl.py``'s page says what each sets, and
``plan_settings`` (``studies/marl_settings.py``) sets it, as plain data (no BenchMARL needed).

The run folder (``--out``) holds ``summary.json`` (written last, atomically: ``status``
``completed``, the final returns, task steps, frames, updates, wall, CPU and evaluation time,
frames/s, the settings planned and every field of BenchMARL's experiment, algorithm and model
configs, the versions), ``metrics.csv`` and BenchMARL's folder ``benchmarl/`` (the study adds
``run.log``). A folder holding a finished run of the same budget is skipped; an unfinished one is
cleared and the run starts over; a finished run is never cleared.

Evaluation protocol
-------------------
The credit study's: ``--eval-episodes`` (20) episodes with deterministic actions, the task return
summed once per task step. A BenchMARL policy is rolled out, under TorchRL's deterministic
exploration type, through ``NeuronTorchRLEnv`` with one env copy per episode, reset with the local
trainer's evaluation seed (copy ``i``: ``evaluation_seed(seed) + i``, the starts ``neuron-env
train`` evaluates on), counting each copy's first episode (full task episodes whatever the row's
``max_cycles``). A BenchMARL callback evaluates at the end of the first iteration past every
``--eval-every`` task steps (``metrics.csv``: ``step``, ``frames``, ``eval_return_mean``, ...), under a
forked torch RNG so that evaluating leaves the training run unchanged; the final evaluation is the
policy at the budget.

``noise``
---------
Writes ``noise.md`` / ``noise.json`` under ``--out`` (``measure_exploration``,
``studies/marl_noise.py``) and prints the table:
the std of every layer's action, and of the task action, under each algorithm's initial
exploration (``default`` and ``noise-0.1``) at fixed states (the evaluation starts of ``--seed``),
against the feedback learner's (Gaussian 0.1 on the outputs only). The study's factor phase
reports it.

Cost
----
Measured by the smoke run (MAPPO ``default``, Pendulum-v1 8-8, ``--task-steps 600``, which
rounds up to one 6 000-frame batch; one torch thread; a 2-core machine under load 6 from another
study): 56 frames/s of wall time, 122 frames per CPU-second (process start and setup included).
A 100 000-step run is 300 000 frames: about 0.7 CPU-hours for MAPPO on a free core (1.5 h of wall
time at that load). Issue 26 measured the algorithms' relative speed (on TorchRL's PettingZoo
wrapper): IPPO 1.35×, MADDPG 0.94×, IDDPG 1.30×, MASAC 1.19× and ISAC 2.1× MAPPO's time per
frame, 1.31× on average, so about 0.9 CPU-h a run. ``noise`` takes 10–80 CPU-seconds (measured on an
idle and on a loaded machine).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from grid import completed  # noqa: E402
from marl_noise import measure_exploration, render_noise, render_sharing, write_tables  # noqa: E402
from marl_settings import (  # noqa: E402
    ADDITIVE_NOISE,
    CENTRALISED,
    FACTORS,
    MAIN_SETTINGS,
    ON_POLICY,
    SETTINGS,
    SHORT_EPISODE_TICKS,
    Factor,
    marl_row,
    parse_row,
    plan_settings,
)

from neuron_env.integrations.benchmarl import ALGORITHMS, recommended_settings, task_config  # noqa: E402

#: This module's names, and those of the settings and noise modules (importable from here as before the split).
__all__ = ["ADDITIVE_NOISE", "CENTRALISED", "FACTORS", "MAIN_SETTINGS", "ON_POLICY", "SCRIPT", "SETTINGS",
           "SHORT_EPISODE_TICKS", "Evaluator", "Factor", "RunConfig", "atomic_json", "clear_unfinished",
           "evaluate_policy", "main", "marl_row", "measure_exploration", "parse_row", "plan_settings",
           "recommended_settings", "recorded_budget", "render_noise", "render_sharing", "run_completed", "run_config",
           "run_one", "run_parser", "task_config"]

#: This script: the study runs ``<BenchMARL's python> SCRIPT run-one ...`` (and ``... noise ...``).
SCRIPT = Path(__file__).resolve()


@dataclass
class RunConfig:
    """One BenchMARL run (``run-one``) or the exploration measurement (``noise``); every field is a flag."""

    algorithm: str = "mappo"
    """A continuous-action BenchMARL algorithm: mappo, ippo, maddpg, iddpg, masac, isac."""
    settings: str = "default"
    """``default`` (BenchMARL's configs), ``recommended`` (``recommended_settings``) or a key of ``FACTORS``."""
    task: str = "Pendulum-v1"
    """Gymnasium task id."""
    hidden: tuple[int, ...] = (8, 8)
    """Hidden layer sizes of the neuron network (one agent group per layer, plus ``out``)."""
    task_steps: int = 100_000
    """Training budget in task steps (rounded up to whole BenchMARL batches)."""
    seed: int = 0
    """Seed of the experiment and of the evaluation starts."""
    eval_every: int = 10_000
    """Task steps between evaluations (at the end of the first iteration past each multiple)."""
    eval_episodes: int = 20
    """Episodes per evaluation, deterministic actions."""
    out: str = "runs/marl/run"
    """The run folder (``summary.json``, ``metrics.csv``, ``run.log``, BenchMARL's folder ``benchmarl/``)."""
    torch_threads: int = 1
    """``torch.set_num_threads`` (0 keeps torch's default)."""
    samples: int = 64
    """``noise`` only: exploratory rollouts per state."""
    states: int = 8
    """``noise`` only: fixed task states (env copies, the evaluation starts of ``seed``)."""


def evaluate_policy(policy: Any, env: Any, seed: int, max_ticks: int) -> Any:
    """Deterministic task returns of the first episode of every copy of a ``NeuronTorchRLEnv``.

    Args:
        policy: A TorchRL policy over the env's groups (a BenchMARL experiment's ``policy``).
        env: ``NeuronTorchRLEnv``; copy ``i`` starts from ``seed + i``.
        seed: Reset seed of copy 0 (``evaluation_seed(run seed)``: the local trainer's starts).
        max_ticks: Ticks to roll out; every copy's first episode must end within them.

    Returns:
        ``[num_envs]`` returns (numpy): the task reward summed over each first episode (it arrives once
        per task step; the other ticks carry 0). The torch RNG is restored afterwards.

    Raises:
        RuntimeError: If some copy's first episode did not end within ``max_ticks``.
    """
    import torch
    from torchrl.envs.utils import ExplorationType, set_exploration_type

    with torch.random.fork_rng(devices=[]), torch.no_grad(), set_exploration_type(ExplorationType.DETERMINISTIC):
        start = env.reset(seed=seed)
        rollout = env.rollout(max_ticks, policy, auto_reset=False, tensordict=start, break_when_any_done=False)
    group = next(iter(env.group_map))
    reward = rollout.get(("next", group, "reward"))[..., 0, 0].double()  # [E, T]: every agent carries the task's
    done = rollout.get(("next", "done"))[..., 0]  # [E, T]
    ended_before = (done.long().cumsum(1) - done.long()) > 0
    if not bool(done.any(1).all()):
        raise RuntimeError(f"an evaluation episode did not end within {max_ticks} ticks")
    return (reward * ~ended_before).sum(1).cpu().numpy()


class Evaluator:
    """A BenchMARL callback: the study's evaluation every ``every`` task steps, and the run's counters.

    It has BenchMARL ``Callback``'s methods without importing BenchMARL (the experiment only calls
    them). After the last group of an iteration has trained, once the task steps reach the next
    multiple of ``every``, the policy is evaluated (``evaluate_policy``) and a row is appended to
    ``metrics``. It also counts the gradient steps of the first group (``updates``).

    Args:
        config: The task's resolved config (``task.config``); evaluation runs full task episodes.
        seed: The run's seed (the evaluation starts are ``evaluation_seed(seed) + i``).
        every: Task steps between evaluations.
        episodes: Episodes per evaluation.
        metrics: The CSV file to write (``step,frames,wall_time_s,eval_return_mean,eval_return_std,train_return_mean``).
    """

    COLUMNS = ("step", "frames", "wall_time_s", "eval_return_mean", "eval_return_std", "train_return_mean")

    def __init__(self, config: Mapping[str, Any], seed: int, every: int, episodes: int, metrics: Path) -> None:
        self.experiment: Any = None
        self.config, self.seed, self.every, self.episodes, self.metrics = dict(config), seed, every, episodes, metrics
        self.updates = 0
        self.eval_time_s = 0.0
        self.eval_cpu_s = 0.0
        self.returns: list[float] = []
        self.curve: list[dict[str, Any]] = []
        self.started = time.monotonic()
        self._next = every
        self._env: Any = None

    def __getstate__(self) -> dict[str, Any]:
        """Plain data only: BenchMARL pickles its callbacks into the experiment folder."""
        return {key: value for key, value in self.__dict__.items() if key not in ("experiment", "_env")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        """The plain data back, without experiment or env."""
        self.__dict__.update(state, experiment=None, _env=None)

    @property
    def delay(self) -> int:
        """Ticks per task step."""
        return int(self.config["delay"])

    @property
    def max_ticks(self) -> int:
        """Ticks of a full task episode (the training ``max_cycles`` where the task has no time limit)."""
        steps = self.config.get("task_episode_steps")
        return self.delay * int(steps) if steps else int(self.config["max_cycles"])

    def env(self) -> Any:
        """The evaluation env: one ``NeuronTorchRLEnv`` copy per episode, full task episodes."""
        if self._env is None:
            from neuron_env.integrations.benchmarl import native_env

            self._env = native_env(self.config, self.episodes, full_task_episodes=True)
        return self._env

    def evaluate(self) -> Any:
        """The current policy's returns on the evaluation starts (timed into ``eval_time_s``)."""
        from neuron_env.agents.train import evaluation_seed

        start, cpu = time.monotonic(), time.process_time()
        returns = evaluate_policy(self.experiment.policy, self.env(), evaluation_seed(self.seed), self.max_ticks)
        self.eval_time_s += time.monotonic() - start
        self.eval_cpu_s += time.process_time() - cpu
        return returns

    def record(self, returns: Any) -> dict[str, Any]:
        """Append an evaluation row to ``curve`` and ``metrics`` (the returns themselves: ``returns``)."""
        frames = int(self.experiment.total_frames)
        self.returns = [float(value) for value in returns]
        train_return = getattr(self.experiment, "mean_return", float("nan"))
        row = {"step": frames // self.delay, "frames": frames,
               "wall_time_s": round(time.monotonic() - self.started, 3),
               "eval_return_mean": float(returns.mean()), "eval_return_std": float(returns.std()),
               "train_return_mean": float(train_return) if train_return is not None else float("nan")}
        self.curve.append(row)
        new = not self.metrics.is_file()
        with open(self.metrics, "a", newline="") as stream:
            writer = csv.DictWriter(stream, fieldnames=self.COLUMNS)
            if new:
                writer.writeheader()
            writer.writerow(row)
        return row

    def close(self) -> None:
        """Close the evaluation env."""
        if self._env is not None:
            self._env.close()
            self._env = None

    # BenchMARL's Callback interface
    def on_setup(self) -> None:
        """Nothing to set up (the env is built at the first evaluation)."""

    def on_load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Runs are never restored from BenchMARL checkpoints."""

    def on_batch_collected(self, batch: Any) -> None:
        """Nothing per batch."""

    def on_train_step(self, batch: Any, group: str) -> None:
        """Count the first group's gradient steps."""
        if group == next(iter(self.experiment.train_group_map)):
            self.updates += 1

    def on_train_end(self, training_td: Any, group: str) -> None:
        """After the iteration's last group: evaluate once the next multiple of ``every`` task steps is reached."""
        if group != list(self.experiment.train_group_map)[-1]:
            return
        steps = int(self.experiment.total_frames) // self.delay
        if steps >= self._next:
            self.record(self.evaluate())
            while self._next <= steps:
                self._next += self.every

    def on_evaluation_end(self, rollouts: Any) -> None:
        """BenchMARL's own evaluation is off."""

    def on_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Nothing to save."""


def _jsonable(value: Any) -> Any:
    """``value`` as JSON data (classes and callables by name)."""
    return json.loads(json.dumps(value, default=lambda v: getattr(v, "__name__", None) or repr(v)))


def atomic_json(path: Path, record: Mapping[str, Any]) -> None:
    """Write ``record`` as JSON to ``path`` through a temporary file and ``os.replace``."""
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(temporary, path)


def run_completed(folder: Path, task_steps: int | None = None) -> bool:
    """Whether ``folder`` holds a finished run (``grid.completed``), of ``task_steps`` when given."""
    if not completed(folder):
        return False
    if task_steps is None:
        return True
    return recorded_budget(folder) == task_steps


def recorded_budget(folder: Path) -> int | None:
    """The budget a finished run was planned with: BenchMARL rows' ``task_steps_budget``, grid rows' ``steps``."""
    summary = json.loads((folder / "summary.json").read_text())
    value = summary.get("task_steps_budget", summary.get("steps"))
    return None if value is None else int(value)


def clear_unfinished(folder: Path) -> None:
    """Remove what an unfinished BenchMARL run wrote (never called on a finished one)."""
    if completed(folder):
        raise RuntimeError(f"{folder} holds a finished run; it is never cleared")
    shutil.rmtree(folder / "benchmarl", ignore_errors=True)
    for name in ("metrics.csv", "summary.json", "summary.json.tmp"):
        (folder / name).unlink(missing_ok=True)


def run_one(config: RunConfig) -> dict[str, Any]:
    """Train one BenchMARL row with ``make_experiment``, evaluate it with the study's protocol, write its folder.

    A folder that already holds a finished run of the same budget is left alone (its summary is
    returned); an unfinished one is cleared and the run starts over.

    Returns:
        The run's ``summary.json`` record.
    """
    out = Path(config.out)
    if run_completed(out, config.task_steps):
        print(f"{out}: finished, skipped", file=sys.stderr)
        return json.loads((out / "summary.json").read_text())
    import benchmarl
    import torch
    import torchrl

    from neuron_env.integrations.benchmarl import make_experiment, neuron_task

    out.mkdir(parents=True, exist_ok=True)
    clear_unfinished(out)
    if config.torch_threads > 0:
        torch.set_num_threads(config.torch_threads)
    started, cpu_started = time.monotonic(), time.process_time()
    base = task_config(config.task, hidden=config.hidden)
    plan = plan_settings(config.settings, config.algorithm, base, config.task_steps)
    task = neuron_task(config.task, hidden=config.hidden, **plan["task"])
    evaluator = Evaluator(task.config, config.seed, config.eval_every, config.eval_episodes, out / "metrics.csv")
    (out / "benchmarl").mkdir()
    experiment = make_experiment(task, config.algorithm, settings="benchmarl", seed=config.seed,
                                 model_cells=plan["model_cells"], model_init=plan["model_init"],
                                 save_folder=str(out / "benchmarl"),
                                 experiment_overrides=plan["experiment"], algorithm_overrides=plan["algorithm"],
                                 callbacks=[evaluator])
    experiment.run()
    frames = int(experiment.total_frames)
    final = evaluator.curve[-1] if evaluator.curve and evaluator.curve[-1]["frames"] == frames else \
        evaluator.record(evaluator.evaluate())
    evaluator.close()
    wall, cpu = time.monotonic() - started, time.process_time() - cpu_started
    train_time = wall - evaluator.eval_time_s
    summary = {
        "status": "completed",
        "final_eval_return_mean": final["eval_return_mean"],
        "final_eval_return_std": final["eval_return_std"],
        "final_eval_returns": evaluator.returns,
        "steps": frames // evaluator.delay,
        "task_steps_budget": config.task_steps,
        "frames": frames,
        "iterations": int(experiment.n_iters_performed),
        "updates": evaluator.updates,
        "wall_time_s": wall,
        "eval_time_s": evaluator.eval_time_s,
        "train_time_s": train_time,
        "cpu_time_s": cpu,
        "eval_cpu_s": evaluator.eval_cpu_s,
        "frames_per_s": frames / train_time,
        "frames_per_cpu_s": frames / (cpu - evaluator.eval_cpu_s),
        "steps_per_s": frames / evaluator.delay / train_time,
        "method": marl_row(config.algorithm, config.settings),
        "algorithm": config.algorithm,
        "settings": config.settings,
        "set": plan,
        "task": config.task,
        "seed": config.seed,
        "task_config": task.config,
        "benchmarl_config": {"experiment": _jsonable(dict(experiment.config.__dict__)),
                             "algorithm": _jsonable(dict(experiment.algorithm_config.__dict__)),
                             "model": _jsonable(dict(experiment.model_config.__dict__))},
        "evaluation": {"episodes": config.eval_episodes, "every_task_steps": config.eval_every,
                       "deterministic": True, "env": "NeuronTorchRLEnv, one copy per episode",
                       "first_reset_seed": "neuron_env.agents.train.evaluation_seed(seed)"},
        "versions": {"benchmarl": getattr(benchmarl, "__version__", None), "torchrl": torchrl.__version__,
                     "torch": torch.__version__},
        "torch_threads": torch.get_num_threads(),
        "config": dataclasses.asdict(config),
    }
    atomic_json(out / "summary.json", summary)
    print(f"{summary['method']} seed {config.seed}: {summary['final_eval_return_mean']:.1f} after "
          f"{summary['steps']} task steps ({frames} frames, {summary['frames_per_s']:.1f} frames/s, "
          f"{wall:.0f} s)", file=sys.stderr)
    return summary


def run_parser(description: str) -> argparse.ArgumentParser:
    """The flags of ``RunConfig`` (``run-one`` and ``noise``)."""
    parser = argparse.ArgumentParser(description=description)
    for item in dataclasses.fields(RunConfig):
        flag = "--" + item.name.replace("_", "-")
        if item.name == "hidden":
            parser.add_argument(flag, type=int, nargs="*", default=list(item.default))  # none: no hidden layer
        elif item.name == "algorithm":
            parser.add_argument(flag, choices=ALGORITHMS, default=item.default)
        elif item.name == "settings":
            parser.add_argument(flag, choices=SETTINGS, default=item.default)
        else:
            parser.add_argument(flag, type=type(item.default), default=item.default)
    return parser


def run_config(argv: Sequence[str]) -> RunConfig:
    """``RunConfig`` from ``run-one``/``noise`` flags."""
    namespace = run_parser("one BenchMARL run of the MARL study").parse_args(list(argv))
    namespace.hidden = tuple(namespace.hidden)
    return RunConfig(**vars(namespace))


def main(argv: Sequence[str] | None = None) -> int:
    """``run-one``: one BenchMARL run; ``noise``: the exploration measurement (both take ``RunConfig``'s flags)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["run-one"]:
        run_one(run_config(argv[1:]))
        return 0
    if argv[:1] == ["noise"]:
        config = run_config(argv[1:])
        result = measure_exploration(config.task, config.hidden, config.samples, config.states, config.seed)
        out = Path(config.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "noise.json").write_text(json.dumps(result, indent=2) + "\n")
        print(write_tables(result, out))
        return 0
    raise SystemExit(f"{SCRIPT.name}: expected a command, run-one or noise, got {argv[:1] or 'none'} "
                     f"(e.g. {SCRIPT.name} run-one --help)")


if __name__ == "__main__":
    raise SystemExit(main())
