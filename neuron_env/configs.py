"""Helpers for the dataclass configs of scripts and commands (CleanRL style).

Every config field carries its documentation as a string literal right under it; ``field_docs``
reads those strings back so that ``--help`` shows them without repeating them.
"""

from __future__ import annotations

import ast
import inspect


def field_docs(config_class: type) -> dict[str, str]:
    """The docstring under each annotated field of a dataclass, read from its source.

    Args:
        config_class: A class whose fields are written ``name: type = default`` followed by a
            string literal.

    Returns:
        ``{field name: its docstring}`` for the fields that have one.
    """
    tree = ast.parse(inspect.getsource(config_class))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for node, following in zip(body, body[1:], strict=False):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) \
                and isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant):
            docs[node.target.id] = str(following.value.value)
    return docs
