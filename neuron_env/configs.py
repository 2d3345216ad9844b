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
