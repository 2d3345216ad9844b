"""Subcommands ``neuron-env baseline``, ``neuron-env compare`` and ``neuron-env experiment NAME``.

``neuron_env.cli`` wires them in with::

    from neuron_env.baselines.cli import add_baseline_parser, add_compare_parser, add_experiment_parser

    add_baseline_parser(subparsers)
    add_compare_parser(subparsers)
    add_experiment_parser(subparsers)

Each registered parser sets ``func``: a callable taking the parsed ``argparse.Namespace`` and
returning the exit status, the convention of ``neuron_env.cli.main``.

Examples::

    neuron-env baseline --algo ddpg --task Pendulum-v1 --hidden 64 64 --steps 20000 --out runs/p/ddpg/0
    neuron-env baseline --algo td3 --task InvertedPendulum-v5 --zoo-net --steps 50000 --out runs/ip/td3/0
    neuron-env baseline --algo dqn --task CartPole-v1 --hidden 64 64 --steps 50000 --out runs/cp/dqn/0
    neuron-env baseline --algo ppo --task Acrobot-v1 --hidden 64 64 --steps 100000 --out runs/ab/ppo/0
    neuron-env baseline --algo recurrent-ppo --task CartPoleNoVel-v1 --zoo-net --out runs/cpnv/recurrent-ppo/0
    neuron-env compare --tasks Pendulum-v1 --methods random sb3-ddpg local-mlp --steps 20000 --seeds 3 --out runs/c
    neuron-env compare --tasks CartPole-v1 Acrobot-v1 --methods random sb3-dqn sb3-ppo --steps 50000 --out runs/d
    neuron-env experiment subcritic-correlation --task Pendulum-v1 --steps 10000 --out runs/e1
    neuron-env experiment score-table --tasks pendulum cartpoleBalance --steps 20000 --seeds 3 --out runs/e4
"""

from __future__ import annotations

import argparse
import importlib
import shlex
import sys
from collections.abc import Callable
from typing import Any

from neuron_env.baselines.action_spaces import ALGO_ACTION_SPACES
from neuron_env.baselines.sb3_ddpg import ACTIVATION_MODULES, ALGOS, NOISE_TYPES, BaselineConfig

from neuron_env.errors import NeuronEnvError
from neuron_env.run_folders import check_run_folder

#: The experiments ``neuron-env experiment`` knows: name -> (adds its arguments, runs it).
EXPERIMENTS: dict[str, tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {}


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be an integer >= 1")
    return value


def add_ddpg_phase_arguments(parser: argparse.ArgumentParser, defaults: Any) -> None:
    """Options of the DDPG run an experiment starts from (E1, E2): task, budget, network, seed, out.

    Args:
        parser: The experiment's parser.
        defaults: Its config instance (fields ``task``, ``steps``, ``hidden``, ``activation``,
            ``learning_starts``, ``seed``).
    """
    parser.add_argument("--task", default=defaults.task)
    parser.add_argument("--steps", type=positive_int, default=defaults.steps, help="DDPG task steps")
    parser.add_argument("--hidden", type=positive_int, nargs="+", default=list(defaults.hidden))
    parser.add_argument("--activation", choices=tuple(ACTIVATION_MODULES), default=defaults.activation)
    parser.add_argument("--learning-starts", type=int, default=defaults.learning_starts)
    parser.add_argument("--noise-std", type=float, default=None, help="DDPG noise (default: the zoo's)")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--out", required=True)


def add_baseline_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``baseline`` subcommand on an ``argparse`` subparsers object.

    Args:
        subparsers: What ``parser.add_subparsers()`` returned.

    Returns:
        The ``baseline`` parser (its ``func`` default is ``cmd_baseline``).
    """
    served = "; ".join(f"{algo}: {'/'.join(kinds)}" for algo, kinds in ALGO_ACTION_SPACES.items())
    parser = subparsers.add_parser(
        "baseline",
        help="train a Stable-Baselines3 baseline: DDPG/TD3 (Box actions), DQN (Discrete), PPO or RecurrentPPO "
        "(writes model.zip)",
        description="Stable-Baselines3 with the local run's network (--hidden, --activation for every network of "
        "the algorithm) and the rl-zoo's hyperparameters for the task where it has them. --algo ddpg or td3 (Box "
        "actions, explicit action noise), dqn (Discrete actions), ppo (Box, Discrete, MultiDiscrete, "
        "MultiBinary) or recurrent-ppo (sb3-contrib's RecurrentPPO, for tasks that need memory); an algo that "
        "cannot act on the task's action space is refused in one line. Every algo writes the same files into "
        "--out: metrics.csv (one row per evaluation, the format of `neuron-env train`), summary.json, "
        "config.json, tb/ (TensorBoard, unless --no-tensorboard) and model.zip (load it with stable_baselines3's "
        "DDPG.load / TD3.load / DQN.load / PPO.load, sb3_contrib's RecurrentPPO.load), and vecnormalize.pkl when "
        "the run normalizes (--normalize; SB3's VecNormalize.load). It writes no checkpoint.pt: `enjoy` and "
        "`render` run local learners.",
    )
    parser.add_argument("--algo", choices=ALGOS, default="ddpg", help=f"the SB3 algorithm ({served}; default: ddpg)")
    parser.add_argument("--task", default="Pendulum-v1", help="Gymnasium id (default: Pendulum-v1)")
    parser.add_argument("--hidden", type=positive_int, nargs="+", default=[64, 64],
                        help="hidden sizes of every network: actor and critic, Q-network, or PPO's policy and "
                        "value networks (default: 64 64, the local run's)")
    parser.add_argument("--activation", choices=tuple(ACTIVATION_MODULES), default="tanh")
    parser.add_argument("--zoo-net", action="store_true",
                        help="use the zoo's net_arch (DDPG 400 300 ReLU, DQN 256 256 ReLU on its tasks; SB3's "
                        "64 64 otherwise, PPO tanh) instead of --hidden/--activation")
    parser.add_argument("--steps", type=positive_int, default=None,
                        help="task steps, over all of PPO's --n-envs copies (default: the zoo's n_timesteps)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="run directory; one that holds a run is refused (baseline runs do "
                        "not resume: --overwrite deletes the earlier run's files and starts over)")
    parser.add_argument("--overwrite", action="store_true",
                        help="--out holds a run: delete its files (metrics, summary, model.zip, tb/, ...; other files "
                        "stay) and start a new run there")
    parser.add_argument("--eval-every", type=positive_int, default=1000)
    parser.add_argument("--eval-episodes", type=positive_int, default=5)
    overrides = parser.add_argument_group("hyperparameter overrides, every algo (default: the rl-zoo's for the task)")
    overrides.add_argument("--learning-rate", type=float, default=None)
    overrides.add_argument("--gamma", type=float, default=None)
    overrides.add_argument("--batch-size", type=positive_int, default=None)
    off_policy = parser.add_argument_group("overrides for ddpg, td3 and dqn (off-policy)")
    off_policy.add_argument("--learning-starts", type=int, default=None)
    off_policy.add_argument("--buffer-size", type=positive_int, default=None)
    off_policy.add_argument("--tau", type=float, default=None)
    off_policy.add_argument("--train-freq", type=positive_int, default=None)
    off_policy.add_argument("--gradient-steps", type=int, default=None)
    ddpg = parser.add_argument_group("overrides for ddpg and td3")
    ddpg.add_argument("--noise-type", choices=NOISE_TYPES, default=None)
    ddpg.add_argument("--noise-std", type=float, default=None)
    dqn = parser.add_argument_group("overrides for dqn")
    dqn.add_argument("--target-update-interval", type=positive_int, default=None)
    dqn.add_argument("--exploration-fraction", type=float, default=None)
    dqn.add_argument("--exploration-final-eps", type=float, default=None)
    ppo = parser.add_argument_group("overrides for ppo and recurrent-ppo")
    ppo.add_argument("--n-envs", type=positive_int, default=None, help="task copies stepped together")
    ppo.add_argument("--n-steps", type=positive_int, default=None, help="steps per copy in each rollout")
    ppo.add_argument("--n-epochs", type=positive_int, default=None)
    ppo.add_argument("--gae-lambda", type=float, default=None)
    ppo.add_argument("--clip-range", type=float, default=None)
    ppo.add_argument("--ent-coef", type=float, default=None)
    ppo.add_argument("--normalize", action=argparse.BooleanOptionalAction, default=None,
                     help="SB3's VecNormalize of observations and rewards on the training copies (the zoo's kwargs, "
                     "gamma the run's; evaluations use its statistics frozen and score raw rewards; saved as "
                     "vecnormalize.pkl). Default: the zoo's for the task: on for recurrent-ppo's zoo tasks, off "
                     "for ppo (raw observations on purpose); ddpg/td3/dqn refuse --normalize")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    parser.add_argument("--no-tensorboard", action="store_true")
    parser.add_argument("--no-progress", action="store_true")
    parser.set_defaults(func=cmd_baseline)
    return parser


def baseline_config_from_args(args: argparse.Namespace) -> BaselineConfig:
    """The ``BaselineConfig`` a parsed ``baseline`` command line describes."""
    return BaselineConfig(
        algo=args.algo,
        task=args.task,
        hidden=None if args.zoo_net else tuple(args.hidden),
        activation="relu" if args.zoo_net else args.activation,
        steps=args.steps,
        seed=args.seed,
        out=args.out,
        eval_every=args.eval_every,
        eval_episodes=args.eval_episodes,
        noise_type=args.noise_type,
        noise_std=args.noise_std,
        learning_starts=args.learning_starts,
        learning_rate=args.learning_rate,
        gamma=args.gamma,
        batch_size=args.batch_size,
        buffer_size=args.buffer_size,
        tau=args.tau,
        train_freq=args.train_freq,
        gradient_steps=args.gradient_steps,
        target_update_interval=args.target_update_interval,
        exploration_fraction=args.exploration_fraction,
        exploration_final_eps=args.exploration_final_eps,
        n_envs=args.n_envs,
        n_steps=args.n_steps,
        n_epochs=args.n_epochs,
        gae_lambda=args.gae_lambda,
        clip_range=args.clip_range,
        ent_coef=args.ent_coef,
        normalize=args.normalize,
        device=args.device,
        threads=args.threads,
        tensorboard=not args.no_tensorboard,
        progress=not args.no_progress,
    )


def typed_command(args: argparse.Namespace, fallback: str, drop: tuple[str, ...] = (),
                  add: tuple[str, ...] = ()) -> str:
    """What a Ctrl-C line tells the user to run: the command as typed, less ``drop``, plus the ``add`` it lacks.

    The command as typed is kept by ``neuron_env.cli.main``; a caller without it gets ``fallback``.
    """
    argv = getattr(args, "argv", None)
    parts = ["neuron-env", *argv] if argv else shlex.split(fallback)
    parts = [part for part in parts if part not in drop]
    return shlex.join(parts + [flag for flag in add if flag not in parts])


def cmd_baseline(args: argparse.Namespace) -> int:
    """Run ``neuron-env baseline``: train, then print the final evaluation; Ctrl-C: one line, exit status 130."""
    from neuron_env.baselines.sb3_ddpg import run_baseline

    config = baseline_config_from_args(args)
    check_run_folder(args.out, "baseline", overwrite=args.overwrite)  # before any work
    try:
        summary = run_baseline(config, overwrite=args.overwrite)
    except KeyboardInterrupt as interrupt:
        fallback = shlex.join(["neuron-env", "baseline", "--algo", args.algo, "--task", args.task, "--out", args.out])
        again = typed_command(args, fallback, add=("--overwrite",))  # SB3 runs do not resume: they start over
        print(f"neuron-env baseline: {interrupt or 'interrupted before training started; nothing was saved'}; "
              f"start it again with: {again}", file=sys.stderr)
        return 130
    print(f"{summary['method']} on {summary['task']} (seed {summary['seed']}): {summary['steps']} steps in "
          f"{summary['wall_time_s']:.1f}s ({summary['steps_per_s']:.0f} steps/s); final eval return "
          f"{summary['final_eval_return_mean']:.2f} ± {summary['final_eval_return_std']:.2f} -> {args.out}")
    return 0


# ------------------------------------------------------------------------------------ compare
def _add_grid_arguments(parser: argparse.ArgumentParser, steps: int, eval_every: int,
                        methods: tuple[str, ...], reference: str = "auto") -> None:
    """The options ``compare`` and ``experiment score-table`` share (``reference``: the default of ``--reference``)."""
    from neuron_env.baselines.compare import ACTIVATIONS, METHODS

    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(methods), metavar="METHOD",
                        help=f"methods, from: {' '.join(METHODS)} (default: {' '.join(methods)})")
    parser.add_argument("--steps", type=positive_int, default=steps,
                        help=f"task steps per run, the same for every method (default: {steps})")
    parser.add_argument("--task-steps", nargs="+", default=None, metavar="TASK=N",
                        help="per-task budgets overriding --steps, e.g. InvertedPendulum-v5=50000")
    parser.add_argument("--seeds", type=positive_int, default=3,
                        help="seeds per task and method: F..F+K-1, F = --first-seed (default: 3)")
    parser.add_argument("--first-seed", type=int, default=0,
                        help="the first seed: add seeds to an earlier grid, or split one across processes (default: 0)")
    parser.add_argument("--workers", type=positive_int, default=1, help="runs in parallel, one process each")
    parser.add_argument("--out", required=True,
                        help="output directory. Run the same command again to resume it (finished runs are reused, "
                        "unfinished local runs continue exactly from their last checkpoint); more seeds, tasks or "
                        "methods extend it. Refused when it holds a run of other settings (budget, network, "
                        "evaluation, --learning-starts, --local-noise, --checkpoint-every), files compare did not "
                        "write, or another command's run (train, baseline); --overwrite (compare) deletes them")
    parser.add_argument("--checkpoint-every", type=positive_int, default=None,
                        help="task steps between the local runs' checkpoints, from which an interrupted comparison "
                        "resumes each exactly (part of a run's identity; default: the trainer's 10000)")
    parser.add_argument("--hidden", type=positive_int, nargs="+", default=[64, 64],
                        help="hidden sizes of the local networks and of sb3-ddpg, sb3-dqn and sb3-ppo; sb3-ddpg-zoo "
                        "and sb3-recurrent-ppo run the zoo's network (default: 64 64)")
    parser.add_argument("--activation", choices=ACTIVATIONS, default="tanh")
    parser.add_argument("--eval-every", type=positive_int, default=eval_every,
                        help=f"task steps between evaluations, every method (default: {eval_every})")
    parser.add_argument("--eval-episodes", type=positive_int, default=5)
    parser.add_argument("--learning-starts", type=int, default=None,
                        help="override learning_starts of every learning method (default: each method's own)")
    parser.add_argument("--local-noise", choices=("own", "task"), default="own",
                        help="exploration noise of the local methods: each learner's own (default), or the kind and "
                        "scale sb3-ddpg gets on the task (Ornstein-Uhlenbeck 0.5 on MountainCarContinuous)")
    parser.add_argument("--threshold", nargs="+", default=None, metavar="TASK=VALUE",
                        help="report the step where each mean curve first reaches VALUE, e.g. Pendulum-v1=-200")
    parser.add_argument("--reference", default=reference,
                        help="the method that scores 1: auto (per task: sb3-ddpg for Box actions, sb3-dqn for "
                        "Discrete, sb3-ppo for MultiDiscrete/MultiBinary) or one learning method "
                        f"(default: {reference})")
    parser.add_argument("--ray-address", default=None,
                        help="dispatch runs to the Ray cluster at ADDR (auto, ray://host:10001, local)")
    parser.add_argument("--no-tensorboard", action="store_true", help="no TensorBoard files in the run folders")
    parser.add_argument("--quiet", action="store_true", help="no line per finished run")


def _add_local_network_arguments(parser: argparse.ArgumentParser) -> None:
    """``compare``'s network kind and clock of the local methods (``neuron-env train``'s flags of the same names)."""
    from neuron_env.agents.capabilities import CLOCKS

    from neuron_env.topology import DEFAULT_DENSITY, NETWORK_KINDS

    parser.add_argument("--topology", choices=NETWORK_KINDS, default="mlp",
                        help="network kind of the local methods: mlp (--hidden layers), recurrent or sparse (one layer "
                        "of --hidden's first size); the SB3 methods keep their networks (default: mlp)")
    parser.add_argument("--leak", type=float, default=0.0, help="leak of the local methods' recurrent layer "
                        "(--topology recurrent; default: 0)")
    parser.add_argument("--density", type=float, default=DEFAULT_DENSITY,
                        help=f"connection density of the local methods' sparse network (--topology sparse; default: "
                        f"{DEFAULT_DENSITY:g})")
    parser.add_argument("--clock", choices=CLOCKS, default="sync",
                        help="neurons' clock of the local methods in training and evaluation: sync, or async (each "
                        "neuron fires with probability --firing-rate per tick). A local method whose learner does not "
                        "train the network or clock is refused before any run (default: sync)")
    parser.add_argument("--firing-rate", type=float, default=1.0, metavar="P",
                        help="firing probability in (0, 1] per neuron and tick of --clock async (default: 1)")


def add_compare_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``compare`` subcommand on an ``argparse`` subparsers object.

    Args:
        subparsers: What ``parser.add_subparsers()`` returned.

    Returns:
        The ``compare`` parser (its ``func`` default is ``cmd_compare``).
    """
    parser = subparsers.add_parser(
        "compare",
        help="tasks × methods × seeds: results.csv, normalized scores.md/json and curves.png",
        description="Run every (task, method, seed) in its own process at the same step budget and evaluation "
        "schedule; write results.csv, scores.md / scores.json (random = 0, the reference = 1: with --reference auto "
        "SB3 DDPG on Box-action tasks, SB3 DQN on Discrete ones; scores.md names it per task) and curves.png into "
        "--out. A method that cannot act on a task's action space (sb3-ddpg on CartPole-v1) is refused, or, with "
        "several tasks, skipped on that task (one line says which). Resumable: finished runs are skipped.",
    )
    parser.add_argument("--tasks", nargs="+", required=True, help="Gymnasium ids")
    _add_grid_arguments(parser, steps=20_000, eval_every=1000, methods=("random", "sb3-ddpg", "local-feedback"))
    _add_local_network_arguments(parser)
    parser.add_argument("--overwrite", action="store_true",
                        help="delete what an earlier comparison (finished runs included) or another command wrote "
                        "into --out, then start the grid over (files written by hand stay)")
    parser.set_defaults(func=cmd_compare)
    return parser


def compare_config_from_args(args: argparse.Namespace) -> Any:
    """The ``baselines.compare.CompareConfig`` a parsed ``compare`` command line describes."""
    from neuron_env.baselines.compare import CompareConfig, parse_assignments

    return CompareConfig(
        tasks=tuple(args.tasks), methods=tuple(args.methods), steps=args.steps,
        task_steps=parse_assignments(args.task_steps, int, "--task-steps"), seeds=args.seeds,
        first_seed=args.first_seed, out=args.out,
        workers=args.workers, hidden=tuple(args.hidden), activation=args.activation, topology=args.topology,
        leak=args.leak, density=args.density, clock=args.clock, firing_rate=args.firing_rate,
        eval_every=args.eval_every,
        eval_episodes=args.eval_episodes, learning_starts=args.learning_starts, local_noise=args.local_noise,
        checkpoint_every=args.checkpoint_every,
        thresholds=parse_assignments(args.threshold, float, "--threshold"), reference=args.reference,
        ray_address=args.ray_address, tensorboard=not args.no_tensorboard, verbose=not args.quiet,
    )


def cmd_compare(args: argparse.Namespace) -> int:
    """Run ``neuron-env compare``: the runs, then print ``scores.md``; exit 1 when a run failed, 130 on Ctrl-C."""
    from pathlib import Path

    from neuron_env.baselines.compare import command_line, compare

    config = compare_config_from_args(args)
    try:
        result = compare(config, overwrite=args.overwrite)
    except KeyboardInterrupt as interrupt:
        kept = str(interrupt) or f"interrupted; the finished runs and the local runs' checkpoints in {config.out} stay"
        again = typed_command(args, command_line(config), drop=("--overwrite",))  # resuming keeps what is there
        print(f"neuron-env compare: {kept}; resume with: {again}", file=sys.stderr)
        return 130
    print((Path(config.out) / "scores.md").read_text(encoding="utf-8"))
    return 1 if result["failed"] else 0



# ------------------------------------------------------------------------------------ experiments
def _add_subcritic_arguments(parser: argparse.ArgumentParser) -> None:
    from neuron_env.baselines.experiments.subcritic_correlation import PROTOCOLS, SubcriticConfig

    defaults = SubcriticConfig()
    add_ddpg_phase_arguments(parser, defaults)
    parser.add_argument("--protocol", choices=PROTOCOLS, default=defaults.protocol,
                        help="joint: sub-critics learn alongside DDPG; two-phase: DDPG, then sub-critics on a "
                        "frozen actor")
    parser.add_argument("--subcritic-updates", type=int, default=defaults.subcritic_updates,
                        help="phase-2 updates (two-phase only)")
    parser.add_argument("--neurons-per-layer", type=positive_int, default=defaults.neurons_per_layer)
    parser.add_argument("--layers", nargs="+", default=None, help="layers to probe (default: all)")
    parser.add_argument("--subcritic-hidden", type=positive_int, default=defaults.subcritic_hidden)
    parser.add_argument("--subcritic-lr", type=float, default=defaults.subcritic_lr)
    parser.add_argument("--batch-size", type=positive_int, default=defaults.batch_size)
    parser.add_argument("--holdout-fraction", type=float, default=defaults.holdout_fraction)
    parser.add_argument("--eval-samples", type=positive_int, default=defaults.eval_samples)
    parser.add_argument("--eval-every", type=positive_int, default=defaults.eval_every)
    parser.add_argument("--eval-episodes", type=positive_int, default=defaults.eval_episodes)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-progress", action="store_true")


def _run_subcritic(args: argparse.Namespace) -> int:
    from neuron_env.baselines.experiments.subcritic_correlation import SubcriticConfig, run_subcritic_correlation

    config = SubcriticConfig(
        task=args.task, steps=args.steps, hidden=tuple(args.hidden), activation=args.activation,
        learning_starts=args.learning_starts, noise_std=args.noise_std, seed=args.seed, out=args.out,
        protocol=args.protocol, subcritic_updates=args.subcritic_updates,
        neurons_per_layer=args.neurons_per_layer, layers=tuple(args.layers) if args.layers else None,
        subcritic_hidden=args.subcritic_hidden, subcritic_lr=args.subcritic_lr, batch_size=args.batch_size,
        holdout_fraction=args.holdout_fraction, eval_samples=args.eval_samples, eval_every=args.eval_every,
        eval_episodes=args.eval_episodes, threads=args.threads, progress=not args.no_progress,
    )
    result = run_subcritic_correlation(config)
    print(f"E1 subcritic-correlation on {config.task}: DDPG final eval "
          f"{result['ddpg']['final_eval_return_mean']:.2f}, {result['subcritic_updates']} sub-critic updates "
          f"({config.protocol}), {result['held_out_samples']} held-out samples")
    print(f"  {'layer':<6} {'neurons':>7} {'r(Q) mean':>10} {'median':>8} {'r(dQ/da) mean':>14} {'median':>8} "
          f"{'sign agr.':>9}")
    for name, figures in result["layers"].items():
        print(f"  {name:<6} {len(figures['neurons']):>7} {figures['value_r_mean']:>10.3f} "
              f"{figures['value_r_median']:>8.3f} {figures['derivative_r_mean']:>14.3f} "
              f"{figures['derivative_r_median']:>8.3f} {figures['derivative_sign_agreement_mean']:>9.3f}")
    overall = result["overall"]
    print(f"  {'all':<6} {overall['neurons']:>7} {overall['value_r_mean']:>10.3f} {overall['value_r_median']:>8.3f} "
          f"{overall['derivative_r_mean']:>14.3f} {overall['derivative_r_median']:>8.3f} "
          f"{overall['derivative_sign_agreement_mean']:>9.3f}")
    print(f"  (the draft reported r(Q) = {result['draft_reference_r']} on MountainCarContinuous-v0) -> {config.out}")
    return 0


EXPERIMENTS["subcritic-correlation"] = (_add_subcritic_arguments, _run_subcritic)


def _add_score_table_arguments(parser: argparse.ArgumentParser) -> None:
    from neuron_env.baselines.experiments.score_table import DEFAULT_METHODS, TABLE1_ROWS

    parser.add_argument("--tasks", nargs="+", default=[gym_id for _, gym_id in TABLE1_ROWS],
                        help="paper row names (" + " ".join(name for name, _ in TABLE1_ROWS) + ") or Gymnasium ids "
                        "(default: all seven rows)")
    # E4 is the DDPG paper's table, on Box-action tasks: its reference stays SB3 DDPG
    _add_grid_arguments(parser, steps=50_000, eval_every=5000, methods=DEFAULT_METHODS, reference="sb3-ddpg")


def _run_score_table(args: argparse.Namespace) -> int:
    from neuron_env.baselines.compare import parse_assignments
    from neuron_env.baselines.experiments.score_table import ScoreTableConfig, render_table, run_score_table

    config = ScoreTableConfig(
        tasks=tuple(args.tasks), methods=tuple(args.methods), steps=args.steps,
        task_steps=parse_assignments(args.task_steps, int, "--task-steps"), seeds=args.seeds,
        first_seed=args.first_seed, workers=args.workers,
        out=args.out, hidden=tuple(args.hidden), activation=args.activation, eval_every=args.eval_every,
        eval_episodes=args.eval_episodes, learning_starts=args.learning_starts, local_noise=args.local_noise,
        checkpoint_every=args.checkpoint_every,
        thresholds=parse_assignments(args.threshold, float, "--threshold"), reference=args.reference,
        ray_address=args.ray_address, tensorboard=not args.no_tensorboard, verbose=not args.quiet,
    )
    document = run_score_table(config)
    print(f"E4 score table (normalized: random = 0, {config.reference} = 1; avg / best over seeds):")
    print(render_table(document))
    print(f"  Gymnasium's tasks differ from the paper's DeepMind tasks; see {config.out}/score_table.md")
    return 0


EXPERIMENTS["score-table"] = (_add_score_table_arguments, _run_score_table)


def _lazy_experiment(module: str) -> tuple[Callable[[argparse.ArgumentParser], None],
                                           Callable[[argparse.Namespace], int]]:
    """``(add_arguments, run_from_args)`` of an experiment module, imported only when used."""

    def add_arguments(parser: argparse.ArgumentParser) -> None:
        importlib.import_module(module).add_arguments(parser)

    def run(args: argparse.Namespace) -> int:
        return importlib.import_module(module).run_from_args(args)

    return add_arguments, run


EXPERIMENTS["gradient-agreement"] = _lazy_experiment("neuron_env.baselines.experiments.gradient_agreement")
EXPERIMENTS["throughput"] = _lazy_experiment("neuron_env.baselines.experiments.throughput")


def add_experiment_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``experiment`` subcommand (one sub-subcommand per entry of ``EXPERIMENTS``).

    Args:
        subparsers: What ``parser.add_subparsers()`` returned.

    Returns:
        The ``experiment`` parser; each experiment's parser sets ``func``.
    """
    parser = subparsers.add_parser(
        "experiment",
        help="run one of the draft's experiments (writes a JSON of its figures and a PNG)",
        description="The draft's experiments: " + ", ".join(EXPERIMENTS),
    )
    names = parser.add_subparsers(dest="experiment", required=True, metavar="NAME")
    helps = {"subcritic-correlation": "E1: per-neuron sub-critics on a DDPG actor vs the global critic",
             "score-table": "E4: the DDPG paper's Table 1 layout (avg/best normalized score) on Gymnasium's rows",
             "gradient-agreement": "E2: per-neuron local policy gradient vs rows of ∇_K Q^μ (cosine, sign agreement)",
             "throughput": "E3: LocalDDPG.update() vs SB3 DDPG train(), updates/s on CPU and CUDA"}
    for name, (add_arguments, run) in EXPERIMENTS.items():
        sub = names.add_parser(name, help=helps.get(name, name))
        add_arguments(sub)
        sub.set_defaults(func=run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point (``python -m neuron_env.baselines.cli``) until ``neuron-env`` wires these in."""
    parser = argparse.ArgumentParser(prog="neuron-env")
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_baseline_parser(subparsers)
    add_compare_parser(subparsers)
    add_experiment_parser(subparsers)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except NeuronEnvError as error:
        print(f"neuron-env {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
