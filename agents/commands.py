"""The ``neuron-env train`` and ``neuron-env enjoy`` subcommands (registered by ``neuron_env.cli``).

Every ``TrainConfig`` field and every option of every registered learner is a flag (``lr_actor`` ->
``--lr-actor``), with the field's docstring as help text; a learner option's help lists each
learner's own default, which an option not given takes (``TrainConfig.learner_options``)::

    neuron-env train --task Pendulum-v1 --hidden 64 64 --critic mlp --steps 30000 --out runs/pendulum
    neuron-env train --resume runs/pendulum --steps 50000     # continue the same run further
    neuron-env train --resume runs/pendulum                   # finish an interrupted run (its own --steps)
    neuron-env enjoy --checkpoint runs/pendulum --episodes 3
    neuron-env train --learner ddpg --topology recurrent --hidden 8 --leak 0.3 --clock async --firing-rate 0.5

The network's kind (``--topology``, ``--leak``) and the clock (``--clock``, ``--firing-rate``) are
checked against what the learner declares before any work (``neuron_env.agents.capabilities``);
``enjoy`` and ``render`` run the run's own network and clock, or another clock given by flag.

Exit status: 0 on success, 2 on a bad option or checkpoint, 3 when training diverged, 130 when
interrupted (a checkpoint is written first).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import types
import typing
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

from neuron_env.agents.capabilities import CLOCKS, RECURRENT_DEFAULT_LEARNER, default_learner
from neuron_env.agents.critics import CRITIC_KINDS
from neuron_env.agents.errors import CheckpointError, DivergenceError, LearnerConfigError
from neuron_env.agents.network import CRITIC_CONTEXTS, GRANULARITIES
from neuron_env.agents.optim import ACTOR_OPTIMIZERS
from neuron_env.agents.registry import LEARNERS, learner_class
from neuron_env.agents.train import (
    NothingToDo,
    TrainConfig,
    build_topology,
    config_from_checkpoint,
    field_help,
    load_checkpoint,
    refuse_foreign_options,
    train,
)

from neuron_env.configs import field_docs
from neuron_env.run_folders import check_output_file, check_output_path, check_run_folder, free_run_folder, run_kind
from neuron_env.topology import ACTIVATIONS

#: Allowed values of the flags that take one of a few names (the learner's own tuples where it has one).
CHOICES: dict[str, tuple[str, ...]] = {
    "learner": LEARNERS,
    "topology": ("mlp", "recurrent", "sparse"),
    "clock": CLOCKS,
    "activation": ACTIVATIONS,
    "critic": CRITIC_KINDS,
    "critic_context": CRITIC_CONTEXTS,
    "granularity": GRANULARITIES,
    "device": ("auto", "cpu", "cuda"),
    "noise": ("gaussian", "ou"),
    "warmup": ("uniform", "policy"),
    "actor_optimizer": ACTOR_OPTIMIZERS,
}
#: Fields a resumed run may change (everything else comes from the checkpoint).
RESUMABLE = ("steps", "device", "progress", "tensorboard", "threads", "checkpoint_replay")
#: ``--out``'s help: the default folder, its numbered suffix, and what an existing run gets.
OUT_HELP = ("output folder (default: runs/<task>-<learner>-seed<seed>, for --learner ddpg "
            "runs/<task>-<critic>-seed<seed>; when that folder is taken (not empty) the first free of <name>-2, "
            "<name>-3, ... is used). A folder that holds a run is refused: continue that run with --resume DIR, or "
            "replace it with --overwrite")
#: What the train command does (its ``--help`` description).
TRAIN_DESCRIPTION = (
    f"Train every neuron of a network on a Gymnasium task with a local learner: --learner {TrainConfig.learner} "
    f"(the default; {RECURRENT_DEFAULT_LEARNER} on a recurrent or leaky network), "
    f"{', '.join(name for name in LEARNERS if name not in (TrainConfig.learner, RECURRENT_DEFAULT_LEARNER))}; "
    "all neurons at "
    "once, with progress, evaluation, TensorBoard scalars and resumable checkpoints. A learner option not given "
    "takes the chosen learner's own default (listed per learner below); one the learner does not have is refused. "
    "config.json records the settings the run used: the run's and every option of its learner."
)


def learner_defaults(option: str) -> str:
    """``option``'s default in every learner that has it, the trainer's default learner first.

    ``"256"`` when they agree, else ``"feedback 256, ddpg 64"`` (learners that share a value joined
    by ``/``).
    """
    order = sorted(LEARNERS, key=lambda name: name != TrainConfig.learner)
    groups: dict[str, list[str]] = {}
    for name in order:
        config_class = learner_class(name).config_class
        if option in config_class.field_names():
            groups.setdefault(repr(getattr(config_class(), option)).strip("'"), []).append(name)
    if len(groups) == 1:
        return next(iter(groups))
    return ", ".join(f"{'/'.join(names)} {value}" for value, names in groups.items())


def learner_only_options() -> dict[str, tuple[Any, str, str]]:
    """Every option of the registered learners (none is a ``TrainConfig`` field): ``name -> (type, help, learners)``.

    The help is the option's docstring (of the first learner in registry order that has it) and
    each learner's own default (``learner_defaults``).
    """
    options: dict[str, tuple[Any, str, str]] = {}
    for name in LEARNERS:
        config_class = learner_class(name).config_class
        hints, docs = typing.get_type_hints(config_class), field_docs(config_class)
        for f in fields(config_class):
            if f.name in options:
                kind, text, users = options[f.name]
                options[f.name] = (kind, text, f"{users}, {name}")
            else:
                defaults = learner_defaults(f.name)
                label = "defaults" if "," in defaults or "/" in defaults else "default"
                text = f"{docs.get(f.name, '').replace('``', '')} ({label}: {defaults})"
                options[f.name] = (hints[f.name], text, name)
    return options


def _scalar_type(annotation: object) -> type:
    if isinstance(annotation, str):
        annotation = eval(annotation, vars(typing))  # noqa: S307 - our own dataclass annotations
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        annotation = args[0]
    if typing.get_origin(annotation) is list:
        return typing.get_args(annotation)[0]
    return annotation  # type: ignore[return-value]


def add_train_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``neuron-env train``."""
    parser = subparsers.add_parser("train", help="train every neuron with a local learner (--learner NAME)",
                                   description=TRAIN_DESCRIPTION)
    docs = field_help()
    hints = typing.get_type_hints(TrainConfig)
    for f in fields(TrainConfig):
        if f.name == "learner_options":
            continue
        flag = "--" + f.name.replace("_", "-")
        default = f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc]
        text = docs.get(f.name, "") + ("" if default is None else f" (default: {default})")
        if f.name == "progress":
            parser.add_argument("--no-progress", dest="progress", action="store_false", default=argparse.SUPPRESS,
                                help="hide the progress bar")
            continue
        if f.name == "checkpoint_replay":
            parser.add_argument("--checkpoint-replay", dest=f.name, action=argparse.BooleanOptionalAction,
                                default=argparse.SUPPRESS, help=f"{docs.get(f.name, '')} (default: off)")
            continue
        if f.name == "tensorboard":
            parser.add_argument("--no-tensorboard", dest="tensorboard", action="store_false",
                                default=argparse.SUPPRESS, help="do not write TensorBoard scalars")
            continue
        if f.name == "out":
            parser.add_argument("--out", dest="out", metavar="DIR", default=argparse.SUPPRESS, help=OUT_HELP)
            continue
        kind = _scalar_type(hints[f.name])
        nargs = "+" if typing.get_origin(hints[f.name]) is list else None
        parser.add_argument(flag, dest=f.name, type=kind, nargs=nargs, choices=CHOICES.get(f.name),
                            default=argparse.SUPPRESS, help=text)
    for name, (hint, text, users) in learner_only_options().items():
        flag, text = "--" + name.replace("_", "-"), f"[{users}] {text}".replace("%", "%%")
        if _scalar_type(hint) is bool:
            parser.add_argument(flag, dest=name, action="store_true", default=argparse.SUPPRESS, help=text)
            continue
        parser.add_argument(flag, dest=name, type=_scalar_type(hint), choices=CHOICES.get(name),
                            default=argparse.SUPPRESS, help=text)
    parser.add_argument("--resume", metavar="DIR", default=None,
                        help=f"continue the run in DIR (may change only: {', '.join(RESUMABLE)})")
    parser.add_argument("--overwrite", action="store_true",
                        help="--out holds a run: delete its files (checkpoint, metrics, summary, tb/, ...; other "
                        "files stay) and start a new run there (default: refuse, naming --resume)")
    parser.set_defaults(func=cmd_train)
    return parser


def add_enjoy_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``neuron-env enjoy``."""
    parser = subparsers.add_parser("enjoy", help="run a trained checkpoint deterministically, print returns")
    parser.add_argument("--checkpoint", required=True, metavar="DIR", help="run directory (train --out)")
    parser.add_argument("--episodes", type=int, default=3)
    parser.add_argument("--render", action="store_true", help="render the task (render_mode='human')")
    parser.add_argument("--seed", type=int, default=None, help="seed of the first episode (default: the run's)")
    add_clock_arguments(parser)
    parser.set_defaults(func=cmd_enjoy)
    return parser


def add_clock_arguments(parser: argparse.ArgumentParser) -> None:
    """``--clock`` and ``--firing-rate`` of ``enjoy`` and ``render``: the run's own clock unless given."""
    parser.add_argument("--clock", choices=CLOCKS, default=None,
                        help="the neurons' clock: sync or async (default: the run's, from its config.json)")
    parser.add_argument("--firing-rate", type=float, default=None, metavar="P",
                        help="firing probability in (0, 1] per neuron and tick of --clock async (default: the "
                        "run's when it ran async, else 1)")


def add_render_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``neuron-env render``."""
    parser = subparsers.add_parser("render", help="write an episode of a trained network as a GIF/MP4")
    parser.add_argument("--checkpoint", required=True, metavar="DIR", help="run directory (train --out)")
    parser.add_argument("--out", required=True, help="output file: .gif (Pillow) or .mp4 (imageio-ffmpeg); an "
                        "existing file is refused unless --overwrite")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    parser.add_argument("--episodes", type=int, default=1)
    parser.add_argument("--seed", type=int, default=None, help="seed of the first episode (default: the run's)")
    parser.add_argument("--fps", type=int, default=30, help="frames (ticks) per second")
    parser.add_argument("--max-ticks", type=int, default=3000, help="at most this many frames")
    parser.add_argument("--no-progress", dest="progress", action="store_false",
                        help="no progress bar over the frames")
    add_clock_arguments(parser)
    parser.set_defaults(func=cmd_render)
    return parser


def cmd_render(args: argparse.Namespace) -> int:
    """Run ``neuron-env render``."""
    from neuron_env.agents.enjoy import RENDER_SUFFIXES, render_checkpoint

    check_output_file(args.out, RENDER_SUFFIXES, overwrite=args.overwrite)  # before any rendering
    count = render_checkpoint(args.checkpoint, args.out, episodes=args.episodes, seed=args.seed, fps=args.fps,
                              max_ticks=args.max_ticks, progress=args.progress, clock=args.clock,
                              firing_rate=args.firing_rate)
    print(f"wrote {args.out} ({count} frames)")
    return 0


def _resume_directory(path: str) -> str:
    """``path`` if it is a run directory; a file is refused in one line (``CheckpointError``)."""
    if Path(path).is_file():
        raise CheckpointError(f"--resume takes a run directory (the --out of a train run), not the file {path!r}; "
                              f"pass {str(Path(path).parent)!r}")
    return path


def no_update_warning(config: TrainConfig) -> str | None:
    """One line when an off-policy run would end before its first update (``--steps`` ≤ ``--learning-starts``)."""
    if not learner_class(config.learner).off_policy or config.steps > config.learning_starts:
        return None
    return (f"--steps {config.steps} is not above --learning-starts {config.learning_starts}: the {config.learner!r} "
            "learner only fills its replay buffer and makes no update; pass a larger --steps or a smaller "
            "--learning-starts")


def is_mujoco_task(task: str) -> bool:
    """Whether ``task`` is a registered Gymnasium MuJoCo task (its entry point is in ``gymnasium.envs.mujoco``)."""
    import gymnasium

    try:
        entry_point = gymnasium.spec(task).entry_point
    except gymnasium.error.Error:
        return False
    return isinstance(entry_point, str) and entry_point.startswith("gymnasium.envs.mujoco")


def mujoco_defaults_note(config: TrainConfig) -> str | None:
    """One line when ``feedback`` runs a MuJoCo task on the defaults measured on classic control.

    The defaults (per-neuron output critics, learning starts 1 000) are the classic-control
    study's; the locomotion study measured the framework MuJoCo tasks need. Said once, before the
    run, only when neither ``--critic`` nor ``--learning-starts`` was changed.
    """
    if (config.learner != "feedback" or "critic" in config.learner_options
            or config.learning_starts != TrainConfig.learning_starts or not is_mujoco_task(config.task)):
        return None
    return (f"{config.task} is a MuJoCo task and these defaults (per-neuron output critics, --learning-starts "
            f"{TrainConfig.learning_starts}) were measured on classic control; on MuJoCo tasks the locomotion study "
            "measured TD3's output critic: --critic twin --target-noise 0.2 --policy-delay 2 --learning-starts 10000 "
            "(and --feedback direct scored highest there on average; docs/results/locomotion)")


def train_config_from_args(args: argparse.Namespace) -> tuple[TrainConfig, bool, int | None]:
    """The run ``neuron-env train`` was asked for: its config, ``--overwrite``, and the step it resumes from.

    Refuses (``LearnerConfigError``, one line) what ``--resume`` cannot change, ``--overwrite`` with
    ``--resume``, and options the chosen learner does not have; a new run's ``--out`` that holds a run
    is refused (or numbered, for the default name) before any work.
    """
    given = {f.name: getattr(args, f.name) for f in fields(TrainConfig) if hasattr(args, f.name)}
    extra = {name: getattr(args, name) for name in learner_only_options() if hasattr(args, name)}
    overwrite = bool(getattr(args, "overwrite", False))
    if args.resume is None:
        if "learner" not in given:  # the default follows the network: feedback, or eprop on a recurrent/leaky one
            network = TrainConfig(**given)
            network.check_network()  # before building it: a leak the kind has not is refused in one line
            given["learner"] = default_learner(build_topology(network))
        refuse_foreign_options(given["learner"], extra, as_flags=True)
        config = TrainConfig(**given, learner_options=extra)
        config.out = str(new_run_folder(config, overwrite))  # refuses a folder that holds a run, before any work
        return config, overwrite, None
    fixed = sorted(set(given) - set(RESUMABLE))
    if fixed:
        flags = ", ".join("--" + name.replace("_", "-") for name in fixed)
        raise LearnerConfigError(f"--resume continues the stored run; it cannot change {flags} (only "
                                 f"{', '.join(RESUMABLE)}). Start a new run with --out instead")
    if overwrite:
        raise LearnerConfigError(f"--overwrite starts a new run; it cannot be combined with --resume (which continues "
                                 f"the run in {args.resume!r}): drop one of them")
    if extra:
        raise LearnerConfigError("--resume continues the stored run; it cannot change learner options "
                                 f"({', '.join('--' + n.replace('_', '-') for n in extra)})")
    payload = load_checkpoint(_resume_directory(args.resume))
    resumed_from = int(payload["trainer"]["task_step"])
    if "steps" not in given:  # without --steps a resumed run continues to the target it was started with
        given["steps"] = config_from_checkpoint(payload).steps
    return TrainConfig(**given, learner_options=extra), overwrite, resumed_from


def cmd_train(args: argparse.Namespace) -> int:
    """Run ``neuron-env train``."""
    config, overwrite, resumed_from = train_config_from_args(args)
    out = str(args.resume if args.resume is not None else config.out)
    if resumed_from is not None and resumed_from < config.steps:
        print(f"neuron-env train: resuming {out!r} from its checkpoint at task step {resumed_from} "
              f"(to {config.steps})", file=sys.stderr)
    warning = no_update_warning(config) if args.resume is None else None
    if warning:
        print(f"neuron-env train: warning: {warning}", file=sys.stderr)
    note = mujoco_defaults_note(config) if args.resume is None else None
    if note:
        print(f"neuron-env train: note: {note}", file=sys.stderr)
    try:
        summary = train(config, resume=args.resume, overwrite=overwrite)
    except NothingToDo as message:
        print(f"neuron-env train: {message}")
        return 0
    except DivergenceError as error:
        print(f"neuron-env train: diverged: {error}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:  # a second Ctrl-C while the run saved, or one before it started
        print(f"neuron-env train: {interrupted_line(out, config, None)}", file=sys.stderr)
        return 130
    if summary["status"] == "interrupted":
        print(f"neuron-env train: {interrupted_line(out, config, summary)}", file=sys.stderr)
        return 130
    keys = ("status", "final_eval_return_mean", "final_eval_return_std", "steps", "wall_time_s", "steps_per_s")
    print(json.dumps({k: summary[k] for k in keys}))
    print(f"outputs in {out}")
    return 0


def resume_command(out: str, config: TrainConfig) -> str:
    """The ``neuron-env train --resume`` command that continues the run in ``out`` with ``config``'s run flags."""
    parts = ["neuron-env", "train", "--resume", str(out)]
    if config.checkpoint_replay:
        parts.append("--checkpoint-replay")
    if not config.tensorboard:
        parts.append("--no-tensorboard")
    if not config.progress:
        parts.append("--no-progress")
    if config.device != "auto":
        parts += ["--device", config.device]
    if config.threads != 1:
        parts += ["--threads", str(config.threads)]
    return shlex.join(parts)


def new_run_folder(config: TrainConfig, overwrite: bool) -> Path:
    """The folder a new run writes into (checked before any work).

    ``--out`` when given (refused if it holds a run, unless ``overwrite``); else the default name
    (``TrainConfig.output_dir``), numbered when taken (``runs/Pendulum-v1-feedback-seed0-2``), or
    with ``overwrite`` the name itself.

    Raises:
        RunFolderError: If the folder is a file, lies under a file, or holds a run and ``overwrite`` is off.
    """
    if config.out:
        hint = None
        if run_kind(config.out) == "train":
            try:
                summary = json.loads((Path(config.out) / "summary.json").read_text(encoding="utf-8"))
            except (OSError, ValueError):
                summary = {}
            hint = resume_command(config.out, config)
            if summary.get("status") == "completed":  # it goes on only with a larger --steps than it has
                hint += " --steps N"
        return check_run_folder(config.out, "train", overwrite=overwrite, resume=hint)
    default = config.output_dir()
    if overwrite:
        return check_run_folder(default, "train", overwrite=True)
    chosen = check_output_path(free_run_folder(default))
    if chosen != default:
        print(f"neuron-env train: {str(default)!r} holds a run; writing to {str(chosen)!r} (--out names the folder, "
              "--overwrite replaces the run there)", file=sys.stderr)
    return chosen


def interrupted_line(out: str, config: TrainConfig, summary: dict[str, Any] | None) -> str:
    """What Ctrl-C saved (from the run's ``summary``, or from the checkpoint on disk) and the command that resumes."""
    saved: int | None = None
    if summary is not None:
        saved = summary.get("checkpoint_step")
    elif (Path(out) / "checkpoint.pt").is_file():
        try:
            saved = int(load_checkpoint(out)["trainer"]["task_step"])
        except CheckpointError:
            saved = None
    if saved is None:
        return (f"interrupted before its first checkpoint: nothing to resume in {out!r}; start the run again "
                "(with --overwrite if --out is given)")
    head = (f"interrupted at task step {summary['steps']} of {config.steps}" if summary is not None
            else f"interrupted; its last checkpoint is at task step {saved} of {config.steps}")
    learner = summary.get("learner") if summary is not None else None
    on_policy = learner in LEARNERS and not getattr(learner_class(learner), "off_policy", True)
    what = ("checkpoint (replay buffer included), metrics and summary.json" if config.checkpoint_replay or on_policy
            else "checkpoint (without the replay buffer: the resumed run refills it), metrics and summary.json")
    return f"{head}; saved its {what} in {out!r}; resume with: {resume_command(out, config)}"


def cmd_enjoy(args: argparse.Namespace) -> int:
    """Run ``neuron-env enjoy``."""
    from neuron_env.agents.enjoy import enjoy

    enjoy(args.checkpoint, episodes=args.episodes, render=args.render, seed=args.seed, clock=args.clock,
          firing_rate=args.firing_rate)
    return 0
