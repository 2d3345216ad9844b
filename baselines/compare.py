r"""``neuron-env compare``: tasks × methods × seeds, a normalized-score table and learning curves.

Every (task, method, seed) is one run in its own process, at the same task-step budget and on
the same evaluation schedule (every ``eval_every`` task steps and at the end, ``eval_episodes``
deterministic episodes from the same start states for every method, see
``neuron_env.agents.train.evaluation_seed``). The methods:

``random``
    A uniform-random policy (``action_space.sample()``, any action space), evaluated once with
    the same evaluation episodes; no training. It scores 0.
``sb3-ddpg``
    Stable-Baselines3 DDPG with the *local run's* hidden sizes and activation
    (``baselines.sb3_ddpg``, the rl-zoo's other hyperparameters); Box actions only. It scores 1
    on tasks with Box actions.
``sb3-ddpg-zoo``
    The same with the zoo's ``[400, 300]`` ReLU network.
``sb3-dqn``
    Stable-Baselines3 DQN with the local run's network (``baselines.sb3_discrete``, the rl-zoo's
    other hyperparameters for CartPole, Acrobot, MountainCar and LunarLander); Discrete actions
    only. It scores 1 on tasks with Discrete actions.
``sb3-ppo``
    Stable-Baselines3 PPO with the local run's network for its policy and value networks (the
    zoo's hyperparameters, ``n_envs`` task copies included, without VecNormalize); Box,
    Discrete, MultiDiscrete and MultiBinary actions. It scores 1 on MultiDiscrete/MultiBinary tasks.
    Its copies advance the step ``n_envs`` at a time, so an evaluation lands on the first step at
    or past each multiple of ``eval_every`` (on it when ``n_envs`` divides ``eval_every``).
``sb3-recurrent-ppo``
    sb3-contrib's RecurrentPPO with the zoo's LSTM policy, hyperparameters and ``VecNormalize``
    (``neuron-env baseline --algo recurrent-ppo --zoo-net``; ``baselines.sb3_recurrent``): the
    backprop reference with memory for the velocity-masked tasks (``--reference
    sb3-recurrent-ppo``), the memory study's ``recurrent-ppo`` row. Needs sb3-contrib; refused in
    one line naming the install command without it. Its copies advance the step as ``sb3-ppo``'s.
``local-linear``, ``local-compatible``, ``local-bilinear``, ``local-mlp``
    ``neuron-env train`` (``neuron_env.agents.train``) with the ``ddpg`` learner, that per-neuron
    critic and the trainer's other defaults.
``local-feedback`` (and ``-sign``, ``-ceiling``), ``local-coagent``, ``local-weight-max``, ``local-es``
    ``neuron-env train --learner NAME`` with the learner's defaults (``local-feedback-sign``:
    ``feedback="sign"``, sign-symmetric feedback; ``local-feedback-ceiling``: ``feedback="weights"``,
    the ceiling control; ``LOCAL_METHODS``).
``local-….-frozen``
    Any local method with its hidden groups frozen at their random init (``freeze_hidden``): the
    floor control of the credit-assignment study.

Every method gets the same ``--steps``; each keeps its own ``learning_starts`` (the zoo's 10 000
for SB3 DDPG on Pendulum and the MuJoCo tasks, 1 000 for DQN on CartPole, the trainer's 1 000),
which is part of its budget, unless ``--learning-starts`` overrides it for all (``sb3-ppo``, being
on-policy, has none and ignores it).

``--topology``, ``--leak``, ``--density``, ``--clock`` and ``--firing-rate`` set the local methods'
network kind and clock (``neuron-env train``'s flags of the same names); the SB3 methods keep their MLP of
``--hidden`` and the random policy acts on the task. A local method whose learner does not train
that network on that clock is refused before any run, in the learners' own line
(``neuron_env.agents.capabilities``) plus the compare methods that can; under ``--clock async`` a
learner with a ``granularity`` option learns ``per_tick`` (``local-mlp`` on an MLP included).

The reference and the action spaces
-----------------------------------
``--reference auto`` (the default) picks the method that scores 1 per task from its action
space: ``sb3-ddpg`` for Box actions (so a Box-action comparison scores exactly as it always
did), ``sb3-dqn`` for Discrete, ``sb3-ppo`` for MultiDiscrete/MultiBinary
(``CompareConfig.reference_for``); ``scores.md`` names it in the last column of its table and
``scores.json`` under each task's ``reference``. ``--reference METHOD`` uses one method for
every task, and is refused if it cannot act on one of them.

An ``sb3-…`` method that cannot act on a task's action space (``sb3-ddpg`` on CartPole-v1,
``sb3-dqn`` on Pendulum-v1) is handled before anything runs:

* with **one task**, ``CompareConfig.validate`` refuses it in one line that names the task's
  action space and the methods that fit it;
* with **several tasks**, the grid skips only the impossible (task, method) pairs, so
  ``--tasks Pendulum-v1 CartPole-v1 --methods random sb3-ddpg sb3-dqn`` runs DDPG on Pendulum
  and DQN on CartPole; one line says which pairs were skipped, and they show as ``—`` in
  ``scores.md`` (with a note), even for a method that fits none of the tasks (a column of ``—``).

``random`` and the local methods are never skipped: the environment itself says, in the run,
whether it can drive a task.

Command line::

    neuron-env compare --tasks Pendulum-v1 --methods random sb3-ddpg local-linear local-mlp --steps 20000 --seeds 3 \
        --workers 4 --threshold Pendulum-v1=-200 --out runs/compare
    neuron-env compare --tasks Pendulum-v1 InvertedPendulum-v5 --methods random sb3-ddpg sb3-ddpg-zoo local-mlp \
        --steps 20000 --task-steps InvertedPendulum-v5=50000 --seeds 3 --workers 8 --out runs/compare2
    neuron-env compare --tasks CartPole-v1 Acrobot-v1 --methods random sb3-dqn sb3-ppo local-mlp --steps 50000 \
        --seeds 5 --workers 4 --out runs/discrete

Python::

    from neuron_env.baselines.compare import CompareConfig, compare

    result = compare(CompareConfig(tasks=("Pendulum-v1",), methods=("random", "sb3-ddpg", "local-mlp"),
                                   steps=20_000, seeds=3, workers=3, out="runs/compare"))
    result["scores"]["tasks"]["Pendulum-v1"]["methods"]["local-mlp"]["normalized_mean"]

Outputs in ``--out``
--------------------
``runs/<task>/<method>/seed<k>/``
    Each run's own files (``metrics.csv``, ``summary.json``, ``config.json``, ``tb/``, and the
    trainer's ``checkpoint.pt`` or SB3's ``model.zip``) plus ``compare_run.json``, the run's
    identity (task, method, seed, budget, network, evaluation schedule).
``results.csv``
    One row per run: ``task, method, seed, final_eval_mean, final_eval_std, steps, wall_time_s,
    steps_per_s, status, error``. Rebuilt from the run folders when ``compare`` starts, then a row
    is appended (and flushed) as each run finishes, so a crash loses nothing.
``scores.md`` / ``scores.json``
    The normalized score per task and method, ``(R − R_random) / (R_reference − R_random)`` on
    the mean over seeds of the final evaluation returns (``baselines.normalize``), the task's
    reference in the table's last column,
    mean ± std over seeds; the raw returns; with ``--threshold TASK=VALUE``, the task step at
    which each method's mean evaluation curve first reaches ``VALUE`` (sample efficiency); the
    run counts, wall times and steps/s. The header states the command that regenerates the
    file, the machine and the date.
``curves.png``
    Evaluation return against task steps, mean ± std over seeds per method, one panel per task
    (the random policy as a dashed band, a threshold as a dotted line).

Resuming
--------
Run the same command again: a run whose ``summary.json`` says ``completed`` (or ``diverged``, a
deterministic outcome) is skipped and its summary read; a local run that stopped part-way
(crash, Ctrl-C) continues from its last checkpoint and ends bitwise where the uninterrupted run
ends (its checkpoints are written every ``--checkpoint-every`` task steps with the replay buffer,
and none on Ctrl-C, so it resumes from a segment boundary: ``baselines.runners``); anything else
(an SB3 run, the random policy, a local run stopped before its first checkpoint) starts over in
its folder. ``compare`` prints one line per run it resumes (from which task step) or starts over.
The same ``--out`` also takes a command with more seeds, tasks or methods: the grid grows.

What ``--out`` may not hold: a run folder of the grid with *other* settings (another budget,
network, evaluation schedule, ``--learning-starts``, ``--local-noise`` or ``--checkpoint-every``),
files ``compare`` did not write in a run folder of the grid, or another command's run at its top
(a ``train`` or ``baseline`` folder); each is refused in one line before anything runs, and
``--overwrite`` deletes them (every run file of the earlier comparison, finished runs included;
files written by hand stay) and starts over. ``--out`` naming a file is refused too.
Failed runs (an exception in the run) are recorded with status ``failed`` and the error; the
other runs continue, and the next invocation retries them.

Ctrl-C stops every run (see ``baselines.dispatch``), keeps the finished ones and the local runs'
last checkpoints, and ``compare`` raises ``neuron_env.run_folders.RunInterrupted``, whose message
says what was kept (``neuron-env compare`` prints it in one line with the command that resumes).
So does a run that comes back ``interrupted`` when this process saw no Ctrl-C (it ignores SIGINT,
as a background job of a script does, and the workers do not): the grid is not complete, and no
report is written as if it were.

Processes and Ray
-----------------
Runs go to a ``concurrent.futures.ProcessPoolExecutor`` with the ``spawn`` start method and
``--workers`` processes, one fresh process per run (Python ≥ 3.11), each with one torch thread
and its progress bar off; one line is printed per finished run. With ``--ray-address ADDR``
(``pip install ray``) runs are Ray tasks (``num_cpus=1`` each) on the cluster at ``ADDR``
(``auto``, ``ray://host:10001``, or ``local`` for a fresh local instance); each runs in a
temporary folder on its worker node and ships its files back (all but the trainer's
``checkpoint.pt``), so no shared filesystem is needed, but every node needs ``neuron-env``
installed. Ray runs do not resume part-way: an unfinished run starts over.

Where the code lives
--------------------
This module is the entry point and re-exports every public name of the four modules that do
the work, so ``from neuron_env.baselines.compare import …`` reaches all of them:
``baselines.compare_config`` (``CompareConfig``, ``RunSpec``, ``METHODS``, ``SB3_METHODS``,
``LOCAL_METHODS``, ``local_method``, ``method_acts_on``, ``plan_runs``), ``baselines.runners`` (one run: ``run_state``,
``execute_run``, ``run_in_worker``, ``ResultsFile``), ``baselines.dispatch`` (the process pool
and Ray) and ``baselines.report`` (scores, ``scores.md``, ``curves.png``).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from neuron_env.baselines.compare_config import (
    ACTIVATIONS,
    AUTO_REFERENCE,
    FINISHED,
    FROZEN_SUFFIX,
    LOCAL_METHODS,
    METHODS,
    NOT_SHIPPED,
    RESULTS_COLUMNS,
    RUN_FILE,
    SB3_METHODS,
    CompareConfig,
    RunSpec,
    command_line,
    local_method,
    method_acts_on,
    parse_assignments,
    plan_runs,
)
from neuron_env.baselines.dispatch import describe_row, dispatch
from neuron_env.baselines.report import (
    compute_scores,
    mean_curve,
    plot_curves,
    read_curve,
    render_scores_md,
    write_reports,
)
from neuron_env.baselines.runners import (
    ResultsFile,
    execute_run,
    read_results,
    result_row,
    resume_point,
    run_and_ship,
    run_in_worker,
    run_state,
)

from neuron_env.run_folders import (
    RunFolderError,
    RunInterrupted,
    check_output_path,
    clear_run_folder,
    describe_run,
    run_kind,
)
from neuron_env.run_output import machine_info

__all__ = [
    "ACTIVATIONS",
    "AUTO_REFERENCE",
    "FINISHED",
    "FROZEN_SUFFIX",
    "LOCAL_METHODS",
    "METHODS",
    "NOT_SHIPPED",
    "RESULTS_COLUMNS",
    "RUN_FILE",
    "SB3_METHODS",
    "CompareConfig",
    "ResultsFile",
    "RunSpec",
    "command_line",
    "compare",
    "compute_scores",
    "describe_row",
    "dispatch",
    "execute_run",
    "local_method",
    "machine_info",
    "mean_curve",
    "method_acts_on",
    "parse_assignments",
    "plan_runs",
    "plot_curves",
    "read_curve",
    "read_results",
    "render_scores_md",
    "result_row",
    "resume_point",
    "run_and_ship",
    "run_in_worker",
    "run_state",
    "write_reports",
]


# ------------------------------------------------------------------------------------------ the comparison
def _check_out(config: CompareConfig, specs: Sequence[RunSpec], overwrite: bool,
               print_fn: Callable[[str], None]) -> Path:
    """``--out`` as a folder the comparison may write: refuse a file or another command's run; clear with ``overwrite``.

    Raises:
        RunFolderError: If ``--out`` is a file, lies under one, or (without ``overwrite``) holds
            another command's run (``train``, ``baseline``, or a single run folder of a comparison).
    """
    out = check_output_path(config.out)
    kind = run_kind(out)
    if kind not in (None, "compare") and not overwrite:
        raise RunFolderError(f"--out {str(out)!r} holds {describe_run(out)}, not a comparison; choose another --out, "
                             "or pass --overwrite to delete it and start the comparison there")
    if overwrite:
        removed = clear_run_folder(out)
        for spec in specs:  # a run folder of this grid with files compare did not write goes too
            if spec.folder(out).is_dir():
                shutil.rmtree(spec.folder(out))
                removed.append(str(spec.folder(out).relative_to(out)))
        if removed:
            print_fn(f"compare: --overwrite deleted the earlier run files in {out} ({len(removed)} entries)")
    return out


def _interrupted_message(specs: Sequence[RunSpec], rows: dict[RunSpec, dict[str, Any]], out: Path) -> str:
    """What an interrupted comparison kept, in one line (``RunInterrupted``'s message)."""
    resumable: list[tuple[RunSpec, int]] = []
    restart = 0
    finished = [spec for spec in specs if spec in rows and rows[spec]["status"] in FINISHED]
    for spec in specs:
        if spec in finished:
            continue
        step = resume_point(spec.folder(out), spec.steps)[0] if spec.method.startswith("local-") else None
        if step is None:
            restart += 1
        else:
            resumable.append((spec, step))
    text = f"interrupted; {len(finished)} of {len(specs)} runs finished (kept in {out / 'results.csv'})"
    if resumable:
        listed = ", ".join(f"{spec.label} at task step {step}" for spec, step in resumable[:3])
        more = f" and {len(resumable) - 3} more" if len(resumable) > 3 else ""
        text += (f", {len(resumable)} resume{'s' if len(resumable) == 1 else ''} exactly from "
                 f"{'its' if len(resumable) == 1 else 'their'} last checkpoint ({listed}{more})")
    if restart:
        text += f", {restart} start{'s' if restart == 1 else ''} over (no checkpoint yet, or not checkpointed)"
    return text


def compare(config: CompareConfig, print_fn: Callable[[str], None] = print, *,
            overwrite: bool = False) -> dict[str, Any]:
    """Run (or resume) a comparison and write all of its outputs (see the module doc).

    Args:
        config: The comparison.
        print_fn: Where the per-run progress lines go (``print`` by default).
        overwrite: Delete what an earlier comparison (or another command's run) wrote into
            ``config.out`` before anything runs, instead of refusing a folder of other settings.

    Returns:
        ``{"rows": [...], "ran": n, "skipped": n, "failed": n, "resumed": {label: task step},
        "scores": scores.json's content}``.

    Raises:
        BaselineConfigError: On an invalid option, or a run folder of another configuration.
        RunFolderError: If ``config.out`` is a file, or holds another command's run.
        RunInterrupted: On Ctrl-C (or a run that a Ctrl-C stopped), once every run has stopped (the message
            says what was kept).
        MissingDependencyError: When Ray (with ``ray_address``) or matplotlib is missing.
    """
    config.validate()
    say = print_fn if config.verbose else (lambda _text: None)
    specs = plan_runs(config)
    out = _check_out(config, specs, overwrite, print_fn)
    out.mkdir(parents=True, exist_ok=True)
    skipped = config.skipped_pairs()
    if skipped:
        print_fn(f"compare: skipping {len(skipped)} (task, method) pair(s) whose method cannot act on the task's "
                 "actions: " + ", ".join(f"{method} on {task} ({config.action_space_kind(task)} actions)"
                                         for task, method, _ in skipped))
    states = {spec: run_state(spec, out) for spec in specs}  # raises before anything runs
    rows: dict[RunSpec, dict[str, Any]] = {}
    for spec, (state, summary) in states.items():
        if state == "finished":
            rows[spec] = result_row(spec, summary)
    results = ResultsFile(out / "results.csv", rows.values())
    jobs: list[tuple[RunSpec, bool]] = []
    notes: list[str] = []
    resumed: dict[str, int] = {}
    for spec in specs:
        state, info = states[spec]
        if state == "finished":
            continue
        resume = state == "resume" and config.ray_address is None
        if resume:
            resumed[spec.label] = int(info["checkpoint_step"])  # type: ignore[index]
            notes.append(f"compare: resuming {spec.label} from its checkpoint at task step "
                         f"{info['checkpoint_step']} of {spec.steps}")  # type: ignore[index]
        elif info:
            reason = "Ray runs do not resume part-way" if state == "resume" else info["restart"]
            notes.append(f"compare: starting {spec.label} over from task step 0: {reason}")
        if not resume and spec.folder(out).exists():
            shutil.rmtree(spec.folder(out))
        jobs.append((spec, resume))
    say(f"compare: {len(specs)} runs ({len(config.tasks)} tasks × {len(config.methods)} methods × {config.seeds} "
        f"seeds); {len(rows)} finished earlier, {len(jobs)} to run "
        + (f"({len(resumed)} resumed from {'its checkpoint' if len(resumed) == 1 else 'their checkpoints'}) "
           if resumed else "")
        + (f"on Ray at {config.ray_address}" if config.ray_address else f"with {config.workers} worker(s)")
        + f" -> {out}")
    for note in notes:
        print_fn(note)
    by_label = {(s.task, s.method, s.seed): s for s in specs}
    failed = interrupted = 0

    def on_row(row: dict[str, Any]) -> None:
        nonlocal failed, interrupted
        if row["status"] == "interrupted":  # stopped by Ctrl-C: its checkpoint (if any) says where it resumes
            interrupted += 1
            return
        spec = by_label[(row["task"], row["method"], int(row["seed"]))]
        rows[spec] = row
        failed += row["status"] == "failed"
        results.append(row)
        say(f"[{len(rows)}/{len(specs)}] {describe_row(row)}")

    if jobs:
        try:
            dispatch(jobs, config, on_row)
        except KeyboardInterrupt:
            raise RunInterrupted(_interrupted_message(specs, rows, out)) from None
        if interrupted:  # a Ctrl-C stopped runs but not this process (see the module doc)
            raise RunInterrupted(_interrupted_message(specs, rows, out))
    ordered = [rows[s] for s in specs if s in rows]
    scores = write_reports(config, ordered)
    say(f"compare: wrote {out / 'results.csv'}, {out / 'scores.md'}, {out / 'scores.json'}, {out / 'curves.png'}")
    return {"rows": ordered, "ran": len(jobs), "skipped": len(specs) - len(jobs), "failed": failed,
            "resumed": resumed, "scores": scores}
