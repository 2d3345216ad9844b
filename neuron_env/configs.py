"""Helpers for the dataclass configs of scripts and commands (CleanRL style).

Every config field carries its documentation as a string literal right under it; ``field_docs``
reads those strings back so that ``--help`` shows them without repeating them.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
from typing import Any


def field_docs(config_class: type) -> dict[str, str]:
    """The docstring under each annotated field of a dataclass, read from its source.

    Args:
        config_class: A class whose fields are written ``name: type = default`` followed by a
            string literal (the fields of its dataclass bases are read too).

    Returns:
        ``{field name: its docstring}`` for the fields that have one.
    """
    docs: dict[str, str] = {}
    # base classes first, so that a subclass's docstring of a redefined field wins
    for cls in reversed(config_class.__mro__):
        if cls is object or "__dataclass_fields__" not in vars(cls):
            continue
        tree = ast.parse(inspect.getsource(cls))
        body = tree.body[0].body  # type: ignore[attr-defined]
        for node, following in zip(body, body[1:], strict=False):
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) \
                    and isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant):
                docs[node.target.id] = str(following.value.value)
    return docs


def config_parser(config_class: type, description: str | None,
                  overrides: dict[str, dict[str, Any]] | None = None) -> argparse.ArgumentParser:
    """An ``argparse`` parser with one ``--flag-name`` per dataclass field, its help from ``field_docs``.

    A ``bool`` field becomes ``--flag/--no-flag``; a tuple or list default takes one or more values; other
    fields take one value of the default's type (``int``/``str`` annotations are honoured).

    Args:
        config_class: The dataclass (every field needs a default).
        description: The parser's description (e.g. the first paragraph of the module doc).
        overrides: ``{field name: add_argument keyword arguments}`` replacing the derived ones
            (e.g. ``{"learner": {"choices": LEARNERS}}``); they are merged over the derived ones.

    Returns:
        The parser; ``config_class(**vars(parser.parse_args(argv)))`` builds the config (tuples
        come back as lists).
    """
    docs = field_docs(config_class)
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    for field in dataclasses.fields(config_class):
        default = field.default if field.default is not dataclasses.MISSING else field.default_factory()  # type: ignore[misc]
        kwargs: dict[str, Any] = {"default": default,
                                  "help": docs.get(field.name, "").replace("``", "").replace("%", "%%")}
        if field.type in (bool, "bool"):
            kwargs["action"] = argparse.BooleanOptionalAction
        elif isinstance(default, (tuple, list)):
            kwargs.update(nargs="+", default=list(default), type=type(default[0]) if default else str)
        else:
            kwargs["type"] = {"int": int, "str": str, "float": float}.get(str(field.type), type(default))
        kwargs.update((overrides or {}).get(field.name, {}))
        parser.add_argument("--" + field.name.replace("_", "-"), **kwargs)
    return parser
