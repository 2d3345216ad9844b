"""Every ``neuron-env …`` command in README.md and docs/ parses with the real CLI, and runs.

The commands are read from the Markdown itself: every line of a shell code block that runs
``neuron-env`` (lines joined at a trailing ``\\``, comments and ``VAR=value`` prefixes dropped),
and every inline code span that starts with ``neuron-env SUBCOMMAND`` and passes an option (a
bare ``neuron-env compare`` in a sentence names the subcommand, it is not a command). Two
shorthands of the docs are expanded: ``a|b|c`` in one word is one command per alternative,
and a placeholder in capitals (``--seed S``) takes the example value of ``PLACEHOLDERS``.
``docs/changelog.md`` is left out: it records the flags of past releases.

* ``test_docs_command_parses``: each command parses with the parser that ``neuron-env`` itself
  builds (``neuron_env.cli.main`` is stopped at its ``parse_args``, so nothing runs), and a
  ``train``/``compare`` command's ``--steps`` is above its learning starts (a run below them
  makes no update).
* ``test_docs_commands_run``: each page's commands run in order through ``neuron_env.cli.main``,
  in a fresh working directory (so ``enjoy --checkpoint runs/p`` finds the ``train --out runs/p``
  above it), with a tiny budget: ``TINY`` replaces ``--steps``, ``--episodes`` and the like
  wherever the subcommand takes them, ``--no-progress`` / ``--no-tensorboard`` are added where
  accepted, ``compare`` and ``score-table`` keep their first task (every method still runs), and
  an ``--out`` is made new if an earlier command of the page wrote it. A command whose checkpoint
  folder no earlier command of its page wrote is only parsed. ``info``, ``rollout``, ``train``,
  ``enjoy``, ``render`` and ``baseline`` run in the fast suite (about 15 s on two cores);
  ``compare`` and ``experiment`` (a process per run) under ``-m slow``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Pages whose commands are checked: the README and every Markdown file of the docs site.
DOC_FILES = [ROOT / "README.md", *(path for path in sorted((ROOT / "docs").rglob("*.md"))
                                   if path != ROOT / "docs" / "changelog.md")]
#: ``(the word before it, placeholder) -> example value`` for the capitalised placeholders of the docs.
PLACEHOLDERS: dict[tuple[str, str], str] = {
    ("--learner", "NAME"): "feedback",
    ("--critic-hidden", "H"): "16",
    ("--seed", "S"): "0",
}
#: Code fences whose lines are shell commands (others hold Python, output or diagrams).
SHELL_FENCES = ("", "bash", "sh", "shell", "console", "zsh")
#: Options set to a tiny budget wherever the subcommand accepts them (``--workers`` is only lowered).
TINY: dict[str, str] = {
    "--steps": "300",
    "--learning-starts": "100",
    "--eval-every": "300",
    "--eval-episodes": "1",
    "--episodes": "1",
    "--seeds": "1",
    "--workers": "2",
    "--max-ticks": "20",
    "--subcritic-updates": "50",
    "--local-updates": "50",
    "--eval-samples": "64",
    "--noise-steps": "100",
    "--duration": "0.2",
    "--repeats": "1",
}
#: Flags added wherever the subcommand accepts them.
TINY_FLAGS = ("--no-progress", "--no-tensorboard", "--quick")
#: Subcommands run in the fast suite; the others start a process per run and run under ``-m slow``.
FAST_SUBCOMMANDS = ("info", "rollout", "train", "enjoy", "render", "baseline")
PLACEHOLDER = re.compile(r"^[A-Z][A-Z0-9_]*$")
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
FENCE = re.compile(r"^\s*(`{3,}|~{3,})\s*([\w+-]*)")
INLINE_CODE = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.DOTALL)


@dataclass(frozen=True)
class DocCommand:
    """One ``neuron-env`` command of a page, as written and as it is parsed."""

    path: str
    """The page, relative to the repository root."""
    line: int
    """Line (1-based) where the command starts."""
    text: str
    """The command as written, continuation lines joined."""
    argv: tuple[str, ...]
    """Its arguments after ``neuron-env`` (one alternative, placeholders filled in)."""
    env: dict[str, str] = field(default_factory=dict)
    """``VAR=value`` prefixes of the shell line."""

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: `{self.text}`"


def expand(words: list[str]) -> list[list[str]]:
    """``a|b`` words as one argument list per alternative; capitalised placeholders filled from ``PLACEHOLDERS``."""
    filled = [PLACEHOLDERS.get((words[i - 1] if i else "", word), word) if PLACEHOLDER.match(word) else word
              for i, word in enumerate(words)]
    choices = [word.split("|") if "|" in word and all(word.split("|")) else [word] for word in filled]
    return [list(combination) for combination in itertools.product(*choices)]


def shell_commands(text: str) -> Iterator[tuple[dict[str, str], list[str]]]:
    """``(environment, words after neuron-env)`` of each ``neuron-env`` command of one shell line."""
    segment: list[str] = []
    for word in [*shlex.split(text, comments=True), ";"]:
        if word not in ("&&", "||", ";"):
            segment.append(word)
            continue
        env: dict[str, str] = {}
        while segment and ASSIGNMENT.match(segment[0]):
            name, _, value = segment.pop(0).partition("=")
            env[name] = value
        if segment[:1] == ["neuron-env"]:
            yield env, segment[1:]
        segment = []


def _commands(path: str, line: int, text: str, env: dict[str, str], words: list[str]) -> list[DocCommand]:
    return [DocCommand(path, line, text, tuple(argv), env) for argv in expand(words)]


def extract_commands(markdown: str, path: str) -> list[DocCommand]:
    """Every ``neuron-env`` command of a Markdown page: shell code blocks and inline code spans."""
    lines = markdown.splitlines()
    found: list[DocCommand] = []
    fence: str | None = None
    shell = False
    paragraph: list[str] = []
    start = 0
    number = 0

    def inline(paragraph: list[str], first: int) -> None:
        text = "\n".join(paragraph)
        for match in INLINE_CODE.finditer(text):
            code = " ".join(match.group(2).split())
            words = code.split()
            if words[:1] != ["neuron-env"] or not any(word.startswith("-") for word in words[2:]):
                continue
            line = first + text.count("\n", 0, match.start())
            found.extend(_commands(path, line, code, {}, shlex.split(code)[1:]))

    while number < len(lines):
        line = lines[number]
        number += 1
        opening = FENCE.match(line)
        if fence is not None:
            if opening and opening.group(1)[0] == fence[0] and len(opening.group(1)) >= len(fence) \
                    and not opening.group(2):
                fence = None
                continue
            if not shell:
                continue
            first, text = number, line
            while text.rstrip().endswith("\\") and number < len(lines):
                text = text.rstrip()[:-1] + " " + lines[number]
                number += 1
            if "neuron-env" in text:
                text = " ".join(text.split())
                for env, words in shell_commands(text):
                    command_text = text.split("#")[0].strip() if "#" in text else text
                    found.extend(_commands(path, first, command_text, env, words))
            continue
        if opening:
            inline(paragraph, start)
            paragraph = []
            fence, shell = opening.group(1), opening.group(2).lower() in SHELL_FENCES
            continue
        if line.strip():
            if not paragraph:
                start = number
            paragraph.append(line)
        else:
            inline(paragraph, start)
            paragraph = []
    inline(paragraph, start)
    return found


def docs_commands() -> list[DocCommand]:
    """The commands of every page of ``DOC_FILES``, page by page, in page order."""
    return [command for page in DOC_FILES
            for command in extract_commands(page.read_text(encoding="utf-8"), page.relative_to(ROOT).as_posix())]


COMMANDS = docs_commands()


class _Built(Exception):
    """Carries the parser out of ``neuron_env.cli.main`` before it parses anything."""


def cli_parser() -> argparse.ArgumentParser:
    """The parser ``neuron-env`` builds, taken from ``neuron_env.cli.main`` at its ``parse_args`` (nothing runs)."""
    from neuron_env import cli

    def stop(parser: argparse.ArgumentParser, *args: object, **kwargs: object) -> None:
        raise _Built(parser)

    with mock.patch.object(argparse.ArgumentParser, "parse_args", stop), \
            mock.patch.object(argparse.ArgumentParser, "parse_known_args", stop):
        try:
            cli.main([])
        except _Built as built:
            return built.args[0]
    raise AssertionError("neuron_env.cli.main returned without calling parse_args")


def parse(parser: argparse.ArgumentParser, argv: list[str] | tuple[str, ...]) -> tuple[argparse.Namespace | None, str]:
    """``(namespace, "")``, or ``(None, argparse's error)``; ``--help`` is ``(None, "")``."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            return parser.parse_args(list(argv)), ""
        except SystemExit as exit_:
            message = err.getvalue().strip().splitlines()
            return None, "" if exit_.code == 0 else (message[-1] if message else f"exit {exit_.code}")


def subparser(parser: argparse.ArgumentParser, argv: list[str] | tuple[str, ...]) -> argparse.ArgumentParser:
    """The (sub-)subparser that ``argv``'s leading subcommand words select."""
    for word in argv:
        actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not actions or word not in actions[0].choices:
            break
        parser = actions[0].choices[word]
    return parser


def learning_starts_gap(args: argparse.Namespace) -> str:
    """Why a ``train``/``compare`` run as written would make no update, or ``""``."""
    from neuron_env.agents import TrainConfig
    from neuron_env.agents.registry import learner_class

    defaults = TrainConfig()
    if args.command == "train" and not args.resume:
        learner = getattr(args, "learner", defaults.learner)
        steps = getattr(args, "steps", defaults.steps)
        starts = getattr(args, "learning_starts", defaults.learning_starts)
        if learner_class(learner).off_policy and steps <= starts:
            return f"--steps {steps} is not above learning starts {starts}: the {learner} learner would make no update"
    if args.command == "compare" and any(method.startswith("local-") for method in args.methods):
        starts = args.learning_starts if args.learning_starts is not None else defaults.learning_starts
        if args.steps <= starts:
            return f"--steps {args.steps} is not above the local learners' learning starts {starts}"
    return ""


@pytest.fixture(scope="module")
def parser() -> argparse.ArgumentParser:
    return cli_parser()


def test_the_extractor_reads_blocks_continuations_inline_code_and_shorthands() -> None:
    page = "\n".join([
        "Run `neuron-env compare` (a name, not a command) or `neuron-env info --task",  # 1
        "CartPole-v1` (an inline command over two lines).",  # 2
        "",
        "```bash",  # 4
        "neuron-env train --steps 5 \\",  # 5
        "    --out runs/x   # a comment",
        "MUJOCO_GL=egl neuron-env render --checkpoint runs/x --out x.gif",  # 7
        "mkdir -p a && cd a && neuron-env experiment one|two --out runs/e",  # 8
        "```",
        "```python",
        "neuron-env info --task Python-is-not-shell",
        "```",
        "| `neuron-env train --learner NAME` | a table cell |",  # 13
    ])
    commands = extract_commands(page, "page.md")
    assert [(c.line, c.argv) for c in commands] == [
        (1, ("info", "--task", "CartPole-v1")),
        (5, ("train", "--steps", "5", "--out", "runs/x")),
        (7, ("render", "--checkpoint", "runs/x", "--out", "x.gif")),
        (8, ("experiment", "one", "--out", "runs/e")),
        (8, ("experiment", "two", "--out", "runs/e")),
        (13, ("train", "--learner", "feedback")),
    ]
    assert commands[2].env == {"MUJOCO_GL": "egl"}
    assert str(commands[1]) == "page.md:5: `neuron-env train --steps 5 --out runs/x`"


def test_the_docs_hold_commands_of_every_subcommand() -> None:
    assert {command.argv[0] for command in COMMANDS} >= {
        "info", "rollout", "train", "enjoy", "render", "baseline", "compare", "experiment"}
    assert all(command.line > 0 for command in COMMANDS)


def test_a_command_that_does_not_parse_is_reported(parser: argparse.ArgumentParser) -> None:
    args, error = parse(parser, ["compare", "--methods", "random"])
    assert args is None and "--tasks" in error and "--out" in error
    args, error = parse(parser, ["train", "--task", "CartPole-v1", "--steps", "200"])
    assert args is not None and "200" in learning_starts_gap(args)


@pytest.mark.parametrize("command", COMMANDS, ids=[f"{c.path}:{c.line}:{c.argv[0]}" for c in COMMANDS])
def test_docs_command_parses(parser: argparse.ArgumentParser, command: DocCommand) -> None:
    args, error = parse(parser, command.argv)
    if error:
        pytest.fail(f"{command} does not parse: {error}", pytrace=False)
    gap = learning_starts_gap(args) if args is not None else ""
    if gap:
        pytest.fail(f"{command}: {gap}", pytrace=False)


def tiny_budget(parser: argparse.ArgumentParser, argv: tuple[str, ...], root: Path) -> list[str]:
    """``argv`` with the ``TINY`` budget and ``TINY_FLAGS`` where its subcommand takes them, paths under ``root``."""
    options = subparser(parser, argv)._option_string_actions
    words = list(argv)
    if "--tasks" in options:  # compare, score-table: the first task only (a process per task and method)
        if "--tasks" in words:
            at = words.index("--tasks") + 1
            end = next((i for i in range(at, len(words)) if words[i].startswith("-")), len(words))
            del words[at + 1:end]
        else:
            words += ["--tasks", options["--tasks"].default[0]]
    for flag, value in TINY.items():
        if flag not in options or (flag == "--learning-starts" and {"ppo", "recurrent-ppo"} & set(words)):  # no warm-up
            continue
        if flag in words:
            at = words.index(flag) + 1
            words[at] = str(min(int(words[at]), int(value))) if flag == "--workers" else value
        elif flag != "--workers":
            words += [flag, value]
    words += [flag for flag in TINY_FLAGS if flag in options and flag not in words]
    for flag in ("--out", "--checkpoint", "--resume"):
        if flag in words and Path(words[words.index(flag) + 1]).is_absolute():
            at = words.index(flag) + 1
            words[at] = str(root / words[at].lstrip("/"))
    if "--out" in words:  # a fresh --out, also where two commands of a page write the same folder
        at = words.index("--out") + 1
        out, copy = Path(words[at]), 1
        while (root / out).exists():
            copy += 1
            out = Path(words[at]).with_name(f"{Path(words[at]).stem}-{copy}{Path(words[at]).suffix}")
        words[at] = str(out)
    return words


def run_page(parser: argparse.ArgumentParser, commands: list[DocCommand], root: Path,
             monkeypatch: pytest.MonkeyPatch) -> None:
    from neuron_env.cli import main

    monkeypatch.chdir(root)
    for command in commands:
        if parse(parser, command.argv)[0] is None:
            continue  # --help, or a command that test_docs_command_parses reports
        argv = tiny_budget(parser, command.argv, root)
        folder = next((argv[i + 1] for i, word in enumerate(argv[:-1]) if word in ("--checkpoint", "--resume")), None)
        if folder is not None and not (root / folder).exists():
            continue  # no command of the page wrote it: parsed only
        with monkeypatch.context() as env:
            for name, value in command.env.items():
                env.setenv(name, value)
            try:
                status = main(argv)
            except BaseException as error:  # noqa: BLE001 - report which docs command broke
                raise AssertionError(f"{command} raised {error!r} (run as: neuron-env {shlex.join(argv)})") from error
        assert status == 0, f"{command} exited {status} (run as: neuron-env {shlex.join(argv)})"


PAGES = sorted({command.path for command in COMMANDS}, key=[c.path for c in COMMANDS].index)


def _page_commands(path: str, fast: bool) -> list[DocCommand]:
    return [c for c in COMMANDS if c.path == path and (c.argv[0] in FAST_SUBCOMMANDS) == fast]


@pytest.mark.parametrize("path", [p for p in PAGES if _page_commands(p, fast=True)])
def test_docs_commands_run(path: str, parser: argparse.ArgumentParser, tmp_path: Path,
                           monkeypatch: pytest.MonkeyPatch, one_thread: None) -> None:
    run_page(parser, _page_commands(path, fast=True), tmp_path, monkeypatch)


@pytest.mark.slow
@pytest.mark.parametrize("path", [p for p in PAGES if _page_commands(p, fast=False)])
def test_docs_compare_and_experiment_commands_run(path: str, parser: argparse.ArgumentParser, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch, one_thread: None) -> None:
    run_page(parser, _page_commands(path, fast=False), tmp_path, monkeypatch)
