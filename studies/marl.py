"""MARL study: BenchMARL's algorithms on the environment, beside the local learners (issue 26, items 1-2).

Every non-input neuron of a network is an agent; BenchMARL (MAPPO, IPPO, MADDPG, IDDPG, MASAC,
ISAC) trains them as one agent group per layer (``neuron_env.integrations.benchmarl``). This
study measures whether they learn, on the same network, budget, seeds and evaluation as SB3 DDPG
and the ``feedback`` learner, and finds out why not, one setting at a time.

Rows
----
Two kinds of run share every phase's folder ``<work>/<phase>/<row>-s<seed>``:

* **grid rows**, plain ``neuron-env`` commands run by ``studies/grid.py`` (this interpreter):
  ``sb3-ddpg`` (``neuron-env baseline --algo ddpg``: the reference, scored 1), ``feedback``
  (``neuron-env train --learner feedback``) and its floor ``feedback-frozen`` (``--freeze-hidden``);
  on MountainCarContinuous-v0 the local rows explore as SB3 DDPG does there (``--noise ou
  --noise-scale 0.5``, the credit study's ``--local-noise task``). The uniform-random policy
  (scored 0) is ``grid.report``'s own ``neuron-env compare --methods random``.
* **BenchMARL rows** ``<algorithm>-<settings>``, each one process of ``studies/marl_run.py run-one``
  in BenchMARL's venv (``--marl-python``, default ``.venv-marl/bin/python``; ``make test-marl``
  builds it); the study passes every flag (``runs.md`` shows one command in full)::

      .venv-marl/bin/python studies/marl_run.py run-one --algorithm mappo --settings default --seed 0 --out /tmp/mappo

  It trains with ``make_experiment`` and evaluates the policy with the study's protocol (below);
  ``studies/marl_run.py``'s page describes the run, its folder and its cost.

``<settings>`` is one of:

* ``default``: **BenchMARL's configs as its yaml files give them** (``make_experiment(...,
  settings="benchmarl")``): 256-256 tanh MLPs, ``gamma`` 0.99 per frame (= per tick), 6 000 frames
  per batch from 10 env copies, lr 5e-5, MAPPO/IPPO ``lmbda`` 0.9 and initial std 1 (``scale_mapping``
  ``biased_softplus_1.0``), MADDPG/IDDPG Gaussian noise σ 0.8 annealed to 0.01 over a third of the
  budget, parameters shared within a group. What the study sets, and nothing else: the task
  (``neuron_task(task, hidden=...)``: the native env, one group per layer, the global state on, and
  ``max_cycles`` = a full task episode in ticks, 600 on Pendulum-v1 at delay 3, as issue 26's
  "defaults" had it), the budget (``max_n_frames`` = ``delay × --task-steps`` rounded up to whole
  batches, ``max_n_iters`` None), and ``make_experiment``'s quiet run (no loggers, no BenchMARL
  evaluation, no rendering, no checkpoints). ``summary.json`` records every field of both configs.
* ``recommended``: ``recommended_settings(task, max_task_steps=--task-steps)``, the integration's
  settings (per-tick ``gamma``/``lmbda``, batches of whole episodes, the budget in task steps).
  On Pendulum-v1 8-8 its batches equal the default's (10 episodes of 600 ticks), so the row
  differs from ``default`` in ``gamma`` and ``lmbda`` only.
* a **factor** (the ``pendulum-8-8-factors`` phase, ``FACTORS``): ``default`` with one setting
  changed: ``gamma-per-tick`` (``0.99 ** (1 / delay)``), ``lmbda-per-tick`` (MAPPO, IPPO),
  ``short-episodes`` (``max_cycles`` 99: the old example's 100 ticks, 33 task steps; evaluation stays
  on full episodes), ``batch-half-episode`` (each env copy collects half an episode per batch:
  3 000 frames, off-policy optimizer steps scaled with it), ``width-64`` (64-64 MLPs),
  ``unit-gain-init`` (every MLP layer starts with weights N(0, 1/fan_in), zero biases:
  ``make_experiment(model_init="unit-gain")``), ``per-neuron-policy`` (``share_policy_params=False``:
  every neuron its own policy MLP inside its layer's group), ``agent-id`` (each neuron's one-hot
  index in its layer appended to its observation: ``neuron_task(..., agent_id=True)``),
  ``noise-0.1`` (initial exploration std 0.1: ``scale_mapping biased_softplus_0.1`` for PPO/SAC,
  ``exploration_eps_init`` 0.1 for DDPG) and ``no-state`` (centralised critics read the groups'
  observations instead of every voltage; MAPPO, MADDPG, MASAC) and ``sb3-rates`` (SB3 DDPG's
  learning rate 1e-3 and one optimizer step per task step; the off-policy algorithms), and one
  row of three at once, ``rates-gain-id`` (``sb3-rates`` + ``unit-gain-init`` + ``agent-id``). Each
  BenchMARL row's paired column in the table is "row − ``<algorithm>-default``" (``grid.report``'s
  floor column).

Not built: one agent group per neuron (``group_map`` makes one group per layer, the grouping
TorchRL infers from the agent ids; per-neuron *parameters* are ``per-neuron-policy``), and the
reward-timing factor (which tick's actions the task reward credits) of issue 26's item 2.

Evaluation and report
---------------------
Every row is evaluated with the credit study's protocol: ``--eval-episodes`` (20) episodes with
deterministic actions from the local trainer's evaluation starts (``evaluation_seed(seed) + i``),
every ``--eval-every`` task steps and at the budget; ``studies/marl_run.py``'s page details it for
BenchMARL rows. Normalization and report: ``grid.report`` (random policy 0, ``sb3-ddpg`` 1, per
seed; ``table.md``, ``table.json``, ``curves.png``), plus ``runs.md`` / ``runs.json``: every run's
return, task steps, wall time, task steps/s and, for BenchMARL rows, frames (ticks) and frames/s.
The factor phase also writes ``noise.md`` / ``noise.json`` and ``sharing.md`` (``marl_run.py
noise``, run by the study unless ``noise.json`` exists): the std of every layer's action, and of
the task action, under each algorithm's initial exploration at fixed states, against the feedback
learner's (Gaussian 0.1 on the outputs only); and, acting deterministically, how much a hidden
layer's neurons differ from each other and how much each layer's actions vary with the task
state. It takes a few CPU-minutes::

    .venv-marl/bin/python studies/marl_run.py noise --task Pendulum-v1 --hidden 8 8 --out /tmp/noise

Phases
------
* ``pendulum-8-8``: Pendulum-v1, 3-8-8-1 tanh (17 agents, delay 3), seeds 0-2: every algorithm's
  ``default`` and ``recommended`` row, ``sb3-ddpg``, ``feedback``, ``feedback-frozen``.
* ``mountaincar-8-8``: MountainCarContinuous-v0, 2-8-8-1 tanh, seeds 0-2: the same rows (local ones
  with SB3 DDPG's OU noise). Local learning is measured there at 64-64 (credit study: 0.84 of SB3
  DDPG); this phase's ``feedback`` row measures it at 8-8. A task episode is 999 task steps (2 997
  ticks), so BenchMARL's default batch (600 ticks per copy) cuts every episode in five.
* ``pendulum-8-8-factors``: Pendulum-v1 8-8, seed 0: ``sb3-ddpg``, ``feedback``, and for MAPPO,
  MADDPG and MASAC (one per family; ``--algorithms`` changes it) ``default``, ``recommended`` and
  every factor. Finished seed-0 runs of ``pendulum-8-8`` with the same budget and evaluation are
  copied in, not rerun.
* ``pendulum-8-8-screen``: the factor phase's rows at 30 000 task steps (90 000 frames), a third of
  its cost, to rank the factors before the 100 000-step runs.
* ``pendulum-direct-screen``: the control of the screen. Pendulum-v1 with no hidden layer (3-1: the
  output neuron observes the task and acts on it, one agent, delay 1), 30 000 task steps (30 000
  frames), seed 0: MAPPO, MADDPG and MASAC at BenchMARL's defaults and at ``noise-0.1``, and MADDPG
  and MASAC at ``sb3-rates``, beside ``sb3-ddpg`` (its own 64-64 network). Here each algorithm is a single-agent
  algorithm on the task itself: what it scores is what its settings reach at this budget before
  any network of agents comes in.

Every phase's budget but the screen's is 100 000 task steps (issue 26's bar); ``--task-steps``
(and ``--eval-every``, ``--eval-episodes``) override it for every run of the phase; a folder
holding a finished run of another budget stops the study with the folder named (use another
``--work``).

Cost: a 100 000-step BenchMARL run is 300 000 frames, about 0.7 CPU-hours for MAPPO on a free core
and 0.9 CPU-h on average over the six algorithms (``studies/marl_run.py``'s page has the smoke-run
measurement and the algorithms' relative speeds). By phase, BenchMARL rows only:
``pendulum-8-8`` 36 runs ≈ 32 CPU-h; ``mountaincar-8-8`` about the same (budgets are frames; its
evaluations are 5× longer but a small share); ``pendulum-8-8-factors`` 22 new runs (6 copied)
≈ 16 CPU-h; ``pendulum-8-8-screen`` 26 runs ≈ 7 CPU-h (MAPPO ``default`` ran 126 frames per
CPU-second over 18 000 frames: 12 CPU-minutes for a screen run's 90 000). A main phase's 9 grid
runs add about 1-2 CPU-h (issue 26: ~3 min per 20 000-step ``feedback`` run). ``--workers 2``
halves the wall time on two free cores. ``noise`` takes 10–80 CPU-seconds.

Usage (resumable at run granularity: a run whose ``summary.json`` says ``completed`` is skipped; an
unfinished BenchMARL run starts over; nothing finished is ever deleted)::

    python studies/marl.py --phase pendulum-8-8 --workers 2                # run what is missing, then report
    python studies/marl.py --phase pendulum-8-8 --report-only              # tables from the runs there
    python studies/marl.py --phase pendulum-8-8-factors --methods mappo-default mappo-gamma-per-tick
    python studies/marl.py --phase pendulum-8-8 --task-steps 600 --eval-every 600 --seeds 0 --methods mappo-default
        feedback --work /tmp/marl_smoke/runs --out /tmp/marl_smoke/out   # the smoke run (one line)

Outputs in ``<out>/<phase>/`` (default ``docs/results/marl``); runs under ``<work>`` (``runs/marl``).
``python studies/marl.py run-one ...`` and ``... noise ...`` still work: they forward to
``studies/marl_run.py`` (run them with BenchMARL's interpreter).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from grid import Phase, Study, StudyConfig, completed, parser_for, report, run_phase  # noqa: E402
from marl_noise import write_tables  # noqa: E402
from marl_run import SCRIPT as RUN_SCRIPT  # noqa: E402
from marl_run import main as run_main  # noqa: E402
from marl_run import recorded_budget, run_completed  # noqa: E402
from marl_settings import FACTORS, MAIN_SETTINGS, ON_POLICY, SETTINGS, marl_row, parse_row  # noqa: E402

from neuron_env.integrations.benchmarl import ALGORITHMS  # noqa: E402

REPO = Path(__file__).resolve().parents[1]

#: The factor phase's algorithms by default: one per family (PPO, DDPG, SAC), centralised.
FACTOR_ALGORITHMS: tuple[str, ...] = ("mappo", "maddpg", "masac")

#: Grid rows: ``neuron-env`` subcommand and flags after the task, network, budget, evaluation and seed flags.
GRID_METHODS: dict[str, tuple[str, ...]] = {
    "sb3-ddpg": ("baseline", "--algo", "ddpg"),
    "feedback": ("train", "--learner", "feedback"),
    "feedback-frozen": ("train", "--learner", "feedback", "--freeze-hidden"),
    # MountainCarContinuous: the local rows explore with SB3 DDPG's noise there (the credit study's --local-noise task)
    "feedback-ou": ("train", "--learner", "feedback", "--noise", "ou", "--noise-scale", "0.5"),
    "feedback-ou-frozen": ("train", "--learner", "feedback", "--noise", "ou", "--noise-scale", "0.5",
                           "--freeze-hidden"),
}


def marl_rows(algorithms: Sequence[str], settings: Sequence[str]) -> tuple[str, ...]:
    """The rows of ``algorithms`` × ``settings``, a factor only where it exists for the algorithm."""
    return tuple(marl_row(a, s) for a in algorithms for s in settings
                 if s in MAIN_SETTINGS or a in FACTORS[s].algorithms)


#: Every row's description for the report (grid rows: their ``neuron-env`` command; BenchMARL rows: run-one's flags).
METHODS: dict[str, tuple[str, ...]] = {
    **GRID_METHODS,
    **{row: ("benchmarl", "--algorithm", row.partition("-")[0], "--settings", row.partition("-")[2])
       for row in marl_rows(ALGORITHMS, SETTINGS)},
}
#: Learned method -> its floor; a BenchMARL row's "floor" is its algorithm's ``default`` row (the paired column).
FLOORS: dict[str, str] = {
    "feedback": "feedback-frozen",
    "feedback-ou": "feedback-ou-frozen",
    **{row: marl_row(row.partition("-")[0], "default") for row in marl_rows(ALGORITHMS, SETTINGS)
       if not row.endswith("-default")},
}
_MAIN_MARL = marl_rows(ALGORITHMS, MAIN_SETTINGS)
_FACTOR_PHASE = Phase("Pendulum-v1", 100_000, (0,), hidden=(8, 8), eval_every=10_000, eval_episodes=20,
                      methods=("sb3-ddpg", "feedback", *marl_rows(FACTOR_ALGORITHMS, SETTINGS)))
PHASES: dict[str, Phase] = {
    "pendulum-8-8": Phase("Pendulum-v1", 100_000, (0, 1, 2), hidden=(8, 8), eval_every=10_000, eval_episodes=20,
                          methods=("sb3-ddpg", "feedback", "feedback-frozen", *_MAIN_MARL)),
    "mountaincar-8-8": Phase("MountainCarContinuous-v0", 100_000, (0, 1, 2), hidden=(8, 8), eval_every=10_000,
                             eval_episodes=20, methods=("sb3-ddpg", "feedback-ou", "feedback-ou-frozen", *_MAIN_MARL)),
    "pendulum-8-8-factors": _FACTOR_PHASE,
    # the same rows at a screening budget: a third of the cost, to rank the factors before the 100 000-step runs
    "pendulum-8-8-screen": dataclasses.replace(_FACTOR_PHASE, steps=30_000),
    # the screen's control: no hidden layer, the output neuron alone on the task (grid rows keep their own networks)
    "pendulum-direct-screen": Phase("Pendulum-v1", 30_000, (0,), hidden=(), eval_every=10_000, eval_episodes=20,
                                    methods=("sb3-ddpg", *marl_rows(FACTOR_ALGORITHMS,
                                                                     ("default", "noise-0.1", "sb3-rates")))),
}
#: Phases of one setting changed at a time (``--algorithms`` picks their algorithms).
FACTOR_PHASES: tuple[str, ...] = ("pendulum-8-8-factors", "pendulum-8-8-screen")
#: Phase -> the phase whose finished runs of the same rows, seeds, budget and evaluation it copies instead of rerunning.
SHARES: dict[str, str] = {"pendulum-8-8-factors": "pendulum-8-8"}
#: Phases whose report includes the exploration-noise measurement.
NOISE_PHASES: tuple[str, ...] = ("pendulum-8-8-factors",)

STUDY = Study(name="marl", methods=METHODS, floors=FLOORS, phases=PHASES, work="runs/marl", out="docs/results/marl")


# ---------------------------------------------------------------------------------- configs
@dataclass
class MarlConfig(StudyConfig):
    """One phase of the study: ``grid.StudyConfig``'s flags and this study's own (every field a flag)."""

    marl_python: str = str(REPO / ".venv-marl" / "bin" / "python")
    """The interpreter of BenchMARL's venv that runs every BenchMARL row (``make test-marl`` builds it)."""
    task_steps: int | None = None
    """Task steps of every run of the phase; ``None``: the phase's (100 000)."""
    eval_every: int | None = None
    """Task steps between evaluations; ``None``: the phase's (10 000)."""
    eval_episodes: int | None = None
    """Episodes per evaluation; ``None``: the phase's (20)."""
    algorithms: tuple[str, ...] = ()
    """The factor phases' algorithms (default ``FACTOR_ALGORITHMS``); other phases run all six."""


# ---------------------------------------------------------------------------------- the study
def phase_of(study: Study, config: MarlConfig) -> Phase:
    """The configured phase: the budget and evaluation overrides applied, the factor algorithms chosen."""
    phase = study.phases[config.phase]
    changes: dict[str, Any] = {}
    if config.task_steps is not None:
        changes["steps"] = config.task_steps
    if config.eval_every is not None:
        changes["eval_every"] = config.eval_every
    if config.eval_episodes is not None:
        changes["eval_episodes"] = config.eval_episodes
    if config.algorithms and config.phase in FACTOR_PHASES:
        changes["methods"] = (*(m for m in phase.methods if not parse_row(m)), *marl_rows(config.algorithms, SETTINGS))
    return dataclasses.replace(phase, **changes)


def study_for(config: MarlConfig) -> Study:
    """``STUDY`` with the configured phase in place of the declared one (what ``grid.report`` reads)."""
    return dataclasses.replace(STUDY, phases={**STUDY.phases, config.phase: phase_of(STUDY, config)})


def selected(phase: Phase, config: StudyConfig) -> list[tuple[str, int]]:
    """The phase's planned ``(row, seed)`` narrowed by ``--methods`` and ``--seeds``."""
    return [(m, s) for m, s in phase.planned() if (not config.methods or m in config.methods)
            and (not config.seeds or s in config.seeds)]


def run_one_command(phase: Phase, row: str, seed: int, folder: Path, marl_python: str) -> list[str]:
    """The ``run-one`` command of a BenchMARL row."""
    parsed = parse_row(row)
    if parsed is None:
        raise ValueError(f"{row!r} is not a BenchMARL row (<algorithm>-<settings>)")
    algorithm, settings = parsed
    return [marl_python, str(RUN_SCRIPT), "run-one", "--algorithm", algorithm, "--settings", settings, "--task",
            phase.task, "--hidden", *map(str, phase.hidden or ()), "--task-steps", str(phase.steps), "--eval-every",
            str(phase.eval_every), "--eval-episodes", str(phase.eval_episodes), "--seed", str(seed), "--out",
            str(folder)]


def stale_runs(phase: Phase, work: Path, runs: Sequence[tuple[str, int]]) -> list[Path]:
    """Finished runs among ``runs`` whose budget is not the phase's (the study stops rather than mix them)."""
    return [work / f"{m}-s{s}" for m, s in runs
            if completed(work / f"{m}-s{s}") and recorded_budget(work / f"{m}-s{s}") != phase.steps]


def share_runs(study: Study, config: StudyConfig) -> list[Path]:
    """Copy finished runs from the phase ``SHARES`` names, where row, seed, task, network, budget and evaluation match.

    Both phases are compared with this invocation's overrides (``--task-steps`` …) applied, and a
    run is copied only if its recorded budget is that budget. Only the light files are copied (no
    checkpoints, no BenchMARL folder). Returns the folders written.
    """
    source_name = SHARES.get(config.phase)
    if source_name is None:
        return []
    target = study.phases[config.phase]
    source = phase_of(STUDY, dataclasses.replace(config, phase=source_name))  # with the same budget overrides
    same = ("task", "hidden", "steps", "eval_every", "eval_episodes")
    if any(getattr(target, name) != getattr(source, name) for name in same):
        return []
    shared = set(source.planned())
    copied = []
    for row, seed in selected(target, config):
        origin = Path(config.work) / source_name / f"{row}-s{seed}"
        folder = Path(config.work) / config.phase / f"{row}-s{seed}"
        if (row, seed) not in shared or completed(folder) or not run_completed(origin, target.steps):
            continue
        folder.mkdir(parents=True, exist_ok=True)
        for name in ("summary.json", "metrics.csv", "config.json", "episodes.csv", "run.log"):
            if (origin / name).is_file():
                shutil.copy2(origin / name, folder / name)
        copied.append(folder)
    return copied


def run_marl_rows(phase: Phase, config: MarlConfig, runs: Sequence[tuple[str, int]]) -> list[str]:
    """Run the unfinished BenchMARL runs among ``runs``, ``config.workers`` at a time; return the failures.

    Each run is its own process (one torch thread) whose output goes to ``<folder>/run.log``.
    A failed run is reported and left unfinished (the next invocation reruns it); the others go on.
    """
    work = Path(config.work) / config.phase
    todo = [(m, s) for m, s in runs if parse_row(m) and not run_completed(work / f"{m}-s{s}", phase.steps)]
    print(f"marl {config.phase}: {len(todo)} BenchMARL runs to do, {config.workers} at a time", file=sys.stderr)
    failures: list[str] = []

    def one(index: int, row: str, seed: int) -> None:
        folder = work / f"{row}-s{seed}"
        folder.mkdir(parents=True, exist_ok=True)
        command = run_one_command(phase, row, seed, folder, config.marl_python)
        start = time.monotonic()
        print(f"[{index}/{len(todo)}] {row} seed {seed}", file=sys.stderr, flush=True)
        environment = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        with open(folder / "run.log", "w") as log:
            result = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=environment, check=False)
        took = time.monotonic() - start
        if result.returncode:
            failures.append(f"{row} seed {seed} (exit {result.returncode}; see {folder / 'run.log'})")
        print(f"[{index}/{len(todo)}] {row} seed {seed}: {'failed' if result.returncode else 'done'}, {took:.0f} s",
              file=sys.stderr, flush=True)

    with ThreadPoolExecutor(max_workers=max(1, config.workers)) as pool:
        for future in [pool.submit(one, i, m, s) for i, (m, s) in enumerate(todo, 1)]:
            future.result()
    return failures


def run_study_phase(config: MarlConfig) -> list[str]:
    """Run a phase's missing runs: shared ones copied, grid rows by ``grid.run_phase``, BenchMARL rows by ``run-one``.

    Returns:
        The failed runs (empty when all finished); after a failed grid run ``grid.run_phase`` finishes
        the grid runs it started and the BenchMARL rows still run.

    Raises:
        SystemExit: If a folder of the phase holds a finished run of another budget.
    """
    study = study_for(config)
    phase, work = study.phases[config.phase], Path(config.work) / config.phase
    runs = selected(phase, config)
    stale = stale_runs(phase, work, runs)
    if stale:
        raise SystemExit(f"{len(stale)} finished runs in {work} have another budget than {phase.steps} task steps "
                         f"(e.g. {stale[0]}); nothing was deleted: pass another --work for this budget")
    for folder in share_runs(study, config):
        print(f"copied {folder.name} from {SHARES[config.phase]}", file=sys.stderr)
    grid_rows = tuple(sorted({m for m, _ in runs if not parse_row(m)}))
    failures = []
    if grid_rows:
        try:
            run_phase(study, dataclasses.replace(config, methods=grid_rows))
        except subprocess.CalledProcessError as error:  # the BenchMARL rows still run
            failures.append(f"a grid run ({' '.join(map(str, error.cmd[-3:]))}: exit {error.returncode})")
    return failures + run_marl_rows(phase, config, runs)


def read_summary(folder: Path) -> dict[str, Any]:
    """A finished run's ``summary.json``."""
    return json.loads((folder / "summary.json").read_text())


def constant_action_returns(task: str, seed: int, episodes: int) -> dict[str, float]:
    """Mean task return of acting constantly at the action space's low end, middle and high end.

    On the evaluation starts of ``seed`` (``evaluation_seed(seed) + i``, the study's protocol), so a
    run whose final return equals one of these acts by a constant, saturated output.
    """
    import gymnasium as gym
    import numpy as np
    from neuron_env.agents.train import evaluation_seed

    start = evaluation_seed(seed)
    env = gym.make(task)
    space = env.action_space
    means: dict[str, float] = {}
    try:
        if not isinstance(space, gym.spaces.Box):
            return means
        for action in (space.low, (space.low + space.high) / 2, space.high):
            returns = []
            for episode in range(episodes):
                env.reset(seed=start + episode)
                total, done = 0.0, False
                while not done:
                    _, reward, terminated, truncated, _ = env.step(action.astype(space.dtype))
                    total, done = total + float(reward), terminated or truncated
                returns.append(total)
            means[f"constant {action.tolist()}"] = float(np.mean(returns))
    finally:
        env.close()
    return means


def runs_table(phase: Phase, work: Path) -> dict[str, Any]:
    """Every finished run of the phase: return, task steps, wall time, task steps/s and (BenchMARL) frames/s.

    A run whose final return equals (to 0.01) a constant action's mean return on the same starts
    (``constant_action_returns``) is marked with that constant: its deterministic policy is saturated.
    """
    constants = {seed: constant_action_returns(phase.task, seed, phase.eval_episodes) for seed in phase.seeds}
    rows = []
    for method, seed in phase.planned():
        folder = work / f"{method}-s{seed}"
        if not completed(folder):
            continue
        summary = read_summary(folder)
        wall = summary.get("wall_time_s")
        steps = summary.get("steps")
        record = {"method": method, "seed": seed, "final": summary["final_eval_return_mean"], "steps": steps,
                  "wall_time_s": wall, "steps_per_s": steps / wall if steps and wall else None,
                  "frames": summary.get("frames"), "frames_per_s": summary.get("frames_per_s"),
                  "frames_per_cpu_s": summary.get("frames_per_cpu_s"),
                  "constant_action": next((label for label, value in constants[seed].items()
                                           if abs(value - summary["final_eval_return_mean"]) < 0.01), None)}
        if parse_row(method):
            experiment = summary["benchmarl_config"]["experiment"]
            prefix = "on" if summary["algorithm"] in ON_POLICY else "off"
            record.update(gamma=experiment.get("gamma"), max_cycles=summary["task_config"]["max_cycles"],
                          frames_per_batch=experiment.get(f"{prefix}_policy_collected_frames_per_batch"))
        rows.append(record)
    return {"rows": rows, "constant_actions": {str(seed): values for seed, values in constants.items()}}


def render_runs(table: Mapping[str, Any], phase: Phase) -> str:
    """``runs_table`` as markdown."""
    lines = [f"{phase.task}, hidden {phase.network} tanh, {phase.steps} task steps: every finished run "
             "(frames are ticks; BenchMARL's frames/s, per wall and per CPU second, exclude the study's "
             "evaluations).", "",
             "| run | seed | final return | = a constant action's | task steps | wall time (s) | task steps/s | "
             "frames | frames/s | frames/CPU-s | gamma | max_cycles | frames/batch |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]

    def cell(value: Any, digits: int = 1) -> str:
        return "" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)

    for row in table["rows"]:
        lines.append(f"| `{row['method']}` | {row['seed']} | {cell(row['final'])} | "
                     f"{cell(row.get('constant_action'))} | {cell(row['steps'])} | "
                     f"{cell(row['wall_time_s'], 0)} | {cell(row['steps_per_s'])} | {cell(row.get('frames'))} | "
                     f"{cell(row.get('frames_per_s'))} | {cell(row.get('frames_per_cpu_s'))} | "
                     f"{cell(row.get('gamma'), 5)} | {cell(row.get('max_cycles'))} | "
                     f"{cell(row.get('frames_per_batch'))} |")
    for seed, values in table.get("constant_actions", {}).items():
        lines.append(f"\nActing constantly, on seed {seed}'s evaluation starts: "
                     + ", ".join(f"{label} {value:.1f}" for label, value in values.items())
                     + " (a run equal to one of them has a saturated deterministic policy).")
    return "\n".join(lines) + "\n"


def report_phase(config: MarlConfig) -> dict[str, Any]:
    """``grid.report``'s table and curves, plus ``runs.md`` / ``runs.json`` (and the noise table where measured)."""
    study = study_for(config)
    phase, work = study.phases[config.phase], Path(config.work) / config.phase
    result = report(study, config)
    target = Path(config.out) / config.phase
    table = runs_table(phase, work)
    (target / "runs.json").write_text(json.dumps(table, indent=2) + "\n")
    text = render_runs(table, phase)
    script = f"python studies/marl.py --phase {config.phase}"
    command = run_one_command(phase, marl_row("mappo", "default"), phase.seeds[0],
                              Path(config.work) / config.phase / "mappo-default-s0", ".venv-marl/bin/python")
    # the script as the repository names it, not where this checkout lies
    example = " ".join(part if part != str(RUN_SCRIPT) else str(RUN_SCRIPT.relative_to(REPO)) for part in command)
    text += (f"\nA BenchMARL row `<algorithm>-<settings>` is one process of `{example}` (its flags vary); its "
             "summary.json lists every setting. Regenerate: "
             f"`{script} --report-only` (runs: `{script}`).\n")
    (target / "runs.md").write_text(text)
    noise = target / "noise.json"
    if noise.is_file():
        write_tables(json.loads(noise.read_text()), target)
    return {**result, "runs": table}


def measure_noise_for(config: MarlConfig) -> None:
    """Run ``noise`` for a phase of ``NOISE_PHASES`` in BenchMARL's venv unless its ``noise.json`` exists."""
    phase = study_for(config).phases[config.phase]
    target = Path(config.out) / config.phase
    if config.phase not in NOISE_PHASES or (target / "noise.json").is_file():
        return
    subprocess.run([config.marl_python, str(RUN_SCRIPT), "noise", "--task", phase.task, "--hidden",
                    *map(str, phase.hidden or ()), "--out", str(target)], check=True)


# ---------------------------------------------------------------------------------- command line
def study_config(argv: Sequence[str]) -> MarlConfig:
    """``MarlConfig`` from the study's flags (``grid.parser_for``'s and this study's own)."""
    parser = parser_for(STUDY, __doc__.split("\n\n")[0])
    parser.add_argument("--marl-python", default=MarlConfig.marl_python)
    parser.add_argument("--task-steps", type=int, default=None)
    parser.add_argument("--eval-every", type=int, default=None)
    parser.add_argument("--eval-episodes", type=int, default=None)
    parser.add_argument("--algorithms", nargs="+", choices=ALGORITHMS, default=[])
    args = parser.parse_args(list(argv))
    return MarlConfig(phase=args.phase, methods=tuple(args.methods), seeds=tuple(args.seeds), work=args.work,
                      out=args.out, report_only=args.report_only, workers=args.workers,
                      **({"neuron_env": args.neuron_env} if args.neuron_env else {}),
                      marl_python=args.marl_python, task_steps=args.task_steps, eval_every=args.eval_every,
                      eval_episodes=args.eval_episodes, algorithms=tuple(args.algorithms))


def main(argv: Sequence[str] | None = None) -> int:
    """The study: run a phase's missing runs, then report it (``run-one`` / ``noise``: ``marl_run.main``'s)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] in (["run-one"], ["noise"]):
        return run_main(argv)  # the commands' old home: they live in studies/marl_run.py
    config = study_config(argv)
    failures: list[str] = []
    if not config.report_only:
        failures = run_study_phase(config)
        measure_noise_for(config)
    report_phase(config)
    if failures:
        print("failed (rerun to retry): " + "; ".join(failures), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
