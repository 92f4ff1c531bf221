"""Help text that reads like a command's, not like Python: ``--port INTEGER``, not ``--port <int>``.

Recent typer releases print each option's Python annotation (``<bool>`` beside every on/off flag,
``<list[Path]>`` for repeatable ones). Users type words, not annotations: an on/off flag shows no
type at all, other options show click's plain type name (TEXT, INTEGER, FLOAT, PATH), repeatable
ones show the type of one value. Older typer releases, which print click's names already, are left alone.
"""

from __future__ import annotations

from typing import Any

#: Python annotations as typer prints them -> the words users know from other command lines.
PLAIN_NAMES = {"str": "TEXT", "int": "INTEGER", "float": "NUMBER", "Path": "PATH", "path": "PATH", "bool": "",
               "datetime": "DATETIME"}


def plain_name(label: str) -> str | None:
    """``<list[Path]>`` -> ``PATH``, ``<int>`` -> ``INTEGER``, ``<bool>`` -> None (a flag takes no value).

    A repeatable option takes one value each time it is given, so it shows one; arguments that take
    several already say so with ``...`` after their name.
    """
    label = label.strip().removeprefix("<").removesuffix(">")
    if label.startswith("list[") and label.endswith("]"):
        label = label[len("list["):-1]
    return PLAIN_NAMES.get(label, label.upper()) or None


def _plain_type(param: Any, ctx: Any) -> str | None:
    if getattr(param, "is_flag", False):
        return None
    if param.metavar is not None:
        return str(param.metavar)
    return plain_name(param.display_type(ctx))


def plain_help_types() -> None:
    """Make typer's rich help show plain type names (idempotent; a no-op where typer does already)."""
    from typer import core

    for cls in (getattr(core, "TyperOption", None), getattr(core, "TyperArgument", None)):
        if (cls is not None and hasattr(cls, "display_type_rich") and hasattr(cls, "display_type")
                and cls.display_type_rich is not _plain_type):
            cls.display_type_rich = _plain_type
