"""The ``neuron-env train`` and ``neuron-env enjoy`` subcommands (registered by ``neuron_env.cli``).

Every ``TrainConfig`` field is a flag (``lr_actor`` ->
``--lr-actor``), with the field's docstring as help text::

    neuron-env train --task Pendulum-v1 --hidden 64 64 --critic mlp --steps 30000 --out runs/pendulum
    neuron-env train --resume runs/pendulum --steps 50000     # continue the same run further
    neuron-env train --resume runs/pendulum                   # finish an interrupted run (its own --steps)
    neuron-env enjoy --checkpoint runs/pendulum --episodes 3

Exit status: 0 on success, 2 on a bad option or checkpoint, 3 when training diverged, 130 when
interrupted (a checkpoint is written first).
"""

from __future__ import annotations

import argparse
import json
import sys
import types
import typing
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

from neuron_env.agents.critics import CRITIC_KINDS
from neuron_env.agents.errors import CheckpointError, DivergenceError, LearnerConfigError
from neuron_env.agents.network import CRITIC_CONTEXTS, GRANULARITIES
from neuron_env.agents.optim import ACTOR_OPTIMIZERS
from neuron_env.agents.registry import LEARNERS, learner_class, learner_options
from neuron_env.agents.train import (
    NothingToDo,
    TrainConfig,
    config_from_checkpoint,
    field_help,
    load_checkpoint,
    train,
)

from neuron_env.configs import field_docs
from neuron_env.topology import ACTIVATIONS

#: Allowed values of the flags that take one of a few names (the learner's own tuples where it has one).
CHOICES: dict[str, tuple[str, ...]] = {
    "learner": LEARNERS,
    "topology": ("mlp", "recurrent", "sparse"),
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
#: ``TrainConfig`` fields that belong to the trainer, whatever the learner.
TRAINER_FIELDS = ("task", "learner", "topology", "hidden", "activation", "leak", "density", "steps", "num_envs",
                  "device", "seed", "learning_starts", "warmup", "updates_per_step", "eval_every", "eval_episodes",
                  "checkpoint_every", "checkpoint_replay", "log_every", "out", "progress", "tensorboard", "threads")


def learner_only_options() -> dict[str, tuple[Any, str, str]]:
    """Options of the registered learners that are not ``TrainConfig`` fields: ``name -> (type, help, learners)``."""
    own = {f.name for f in fields(TrainConfig)}
    options: dict[str, tuple[Any, str, str]] = {}
    for name in LEARNERS:
        config_class = learner_class(name).config_class
        hints, docs = typing.get_type_hints(config_class), field_docs(config_class)
        for f in fields(config_class):
            if f.name in own:
                continue
            default = f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc]
            if f.name in options:
                kind, text, users = options[f.name]
                options[f.name] = (kind, text, f"{users}, {name}")
            else:
                text = f"{docs.get(f.name, '').replace('``', '')} (default: {default})"
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
                                   description=(sys.modules[train.__module__].__doc__ or "").split("\n\n")[0])
    docs = field_help()
    hints = typing.get_type_hints(TrainConfig)
    for f in fields(TrainConfig):
        if f.name == "learner_options":
            continue
        flag = "--" + f.name.replace("_", "-")
        default = f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc]
        text = f"{docs.get(f.name, '')} (default: {default})"
        users = [name for name in LEARNERS if f.name in learner_options(name)]
        if f.name not in TRAINER_FIELDS and f.name != "freeze_hidden" and users:
            # a field left at its default leaves each other learner at its own (train.learner_settings)
            text = f"[{', '.join(users)}] {docs.get(f.name, '')} (default: {default} for ddpg; others: their own)"
        if f.name == "progress":
            parser.add_argument("--no-progress", dest="progress", action="store_false", default=argparse.SUPPRESS,
                                help="hide the progress bar")
            continue
        if f.name == "freeze_hidden":
            parser.add_argument("--freeze-hidden", dest="freeze_hidden", action="store_true",
                                default=argparse.SUPPRESS, help=docs.get(f.name, ""))
            continue
        if f.name == "checkpoint_replay":
            parser.add_argument("--checkpoint-replay", dest=f.name, action=argparse.BooleanOptionalAction,
                                default=argparse.SUPPRESS, help=f"{docs.get(f.name, '')} (default: off)")
            continue
        if f.name == "tensorboard":
            parser.add_argument("--no-tensorboard", dest="tensorboard", action="store_false",
                                default=argparse.SUPPRESS, help="do not write TensorBoard scalars")
            continue
        kind = _scalar_type(hints[f.name])
        nargs = "+" if typing.get_origin(hints[f.name]) is list else None
        parser.add_argument(flag, dest=f.name, type=kind, nargs=nargs, choices=CHOICES.get(f.name),
                            default=argparse.SUPPRESS, help=text)
    for name, (hint, text, users) in learner_only_options().items():
        parser.add_argument("--" + name.replace("_", "-"), dest=name, type=_scalar_type(hint),
                            default=argparse.SUPPRESS, help=f"[{users}] {text}")
    parser.add_argument("--resume", metavar="DIR", default=None,
                        help=f"continue the run in DIR (may change only: {', '.join(RESUMABLE)})")
    parser.set_defaults(func=cmd_train)
    return parser


def add_enjoy_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``neuron-env enjoy``."""
    parser = subparsers.add_parser("enjoy", help="run a trained checkpoint deterministically, print returns")
    parser.add_argument("--checkpoint", required=True, metavar="DIR", help="run directory (train --out)")
    parser.add_argument("--episodes", type=int, default=3)
    parser.add_argument("--render", action="store_true", help="render the task (render_mode='human')")
    parser.add_argument("--seed", type=int, default=None, help="seed of the first episode (default: the run's)")
    parser.set_defaults(func=cmd_enjoy)
    return parser


def add_render_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``neuron-env render``."""
    parser = subparsers.add_parser("render", help="write an episode of a trained network as a GIF/MP4")
    parser.add_argument("--checkpoint", required=True, metavar="DIR", help="run directory (train --out)")
    parser.add_argument("--out", required=True, help="output file: .gif (Pillow) or .mp4 (imageio-ffmpeg)")
    parser.add_argument("--episodes", type=int, default=1)
    parser.add_argument("--seed", type=int, default=None, help="seed of the first episode (default: the run's)")
    parser.add_argument("--fps", type=int, default=30, help="frames (ticks) per second")
    parser.add_argument("--max-ticks", type=int, default=3000, help="at most this many frames")
    parser.add_argument("--no-progress", dest="progress", action="store_false",
                        help="no progress bar over the frames")
    parser.set_defaults(func=cmd_render)
    return parser


def cmd_render(args: argparse.Namespace) -> int:
    """Run ``neuron-env render``."""
    from neuron_env.agents.enjoy import render_checkpoint

    count = render_checkpoint(args.checkpoint, args.out, episodes=args.episodes, seed=args.seed, fps=args.fps,
                              max_ticks=args.max_ticks, progress=args.progress)
    print(f"wrote {args.out} ({count} frames)")
    return 0


def _resume_directory(path: str) -> str:
    """``path`` if it is a run directory; a file is refused in one line (``CheckpointError``)."""
    if Path(path).is_file():
        raise CheckpointError(f"--resume takes a run directory (the --out of a train run), not the file {path!r}; "
                              f"pass {str(Path(path).parent)!r}")
    return path


def cmd_train(args: argparse.Namespace) -> int:
    """Run ``neuron-env train``."""
    given = {f.name: getattr(args, f.name) for f in fields(TrainConfig) if hasattr(args, f.name)}
    extra = {name: getattr(args, name) for name in learner_only_options() if hasattr(args, name)}
    if args.resume is not None:
        fixed = sorted(set(given) - set(RESUMABLE))
        if fixed:
            flags = ", ".join("--" + name.replace("_", "-") for name in fixed)
            raise LearnerConfigError(
                f"--resume continues the stored run; it cannot change {flags} (only {', '.join(RESUMABLE)}). "
                "Start a new run with --out instead"
            )
    learner = given.get("learner", TrainConfig.learner)
    if args.resume is None:
        # a flag given explicitly reaches the learner even when it equals TrainConfig's default
        extra.update({name: value for name, value in given.items()
                      if name not in TRAINER_FIELDS and name in learner_options(learner)})
        foreign = sorted(name for name in (*given, *extra)
                         if name not in TRAINER_FIELDS and name not in learner_options(learner))
        if foreign:
            flags = ", ".join("--" + name.replace("_", "-") for name in foreign)
            raise LearnerConfigError(
                f"{flags} {'is not an option' if len(foreign) == 1 else 'are not options'} of --learner {learner}; "
                f"its options: {', '.join('--' + n.replace('_', '-') for n in learner_options(learner))}")
    elif extra:
        raise LearnerConfigError("--resume continues the stored run; it cannot change learner options "
                                 f"({', '.join('--' + n.replace('_', '-') for n in extra)})")
    if args.resume is not None and "steps" not in given:
        # without --steps a resumed run continues to the target it was started with
        given["steps"] = config_from_checkpoint(load_checkpoint(_resume_directory(args.resume))).steps
    config = TrainConfig(**given, learner_options=extra)
    try:
        summary = train(config, resume=args.resume)
    except NothingToDo as message:
        print(f"neuron-env train: {message}")
        return 0
    except DivergenceError as error:
        print(f"neuron-env train: diverged: {error}", file=sys.stderr)
        return 3
    keys = ("status", "final_eval_return_mean", "final_eval_return_std", "steps", "wall_time_s", "steps_per_s")
    print(json.dumps({k: summary[k] for k in keys}))
    print(f"outputs in {summary['config']['out'] or config.output_dir()}")
    return 130 if summary["status"] == "interrupted" else 0


def cmd_enjoy(args: argparse.Namespace) -> int:
    """Run ``neuron-env enjoy``."""
    from neuron_env.agents.enjoy import enjoy

    enjoy(args.checkpoint, episodes=args.episodes, render=args.render, seed=args.seed)
    return 0
