"""What every `tiezheng` command shares: its options, how it opens the data dir, and user errors.

Commands that only read (``status``, ``verify``, ``trust export``, ``keys list`` …) never create a
data dir: a typo in ``--data-dir`` is an error with a hint, not a fresh empty database. Commands
that write claim a temp folder of their own and sweep what dead processes left (api/service/scratch.py).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from api.service.settings import DEFAULT_DATA_DIR, Settings, load_settings
from verifier.errors import TiezhengError

#: Set by the global ``--json`` (``tiezheng --json status``); each command's own ``--json`` reads it.
JSON_ENV = "TIEZHENG_JSON"

DataDir = Annotated[Path | None, typer.Option(
    "--data-dir", envvar="TIEZHENG_DATA_DIR", metavar="FOLDER", show_default=False,
    help=f"Data folder (default: $TIEZHENG_DATA_DIR, else {DEFAULT_DATA_DIR}).")]
JsonFlag = Annotated[bool, typer.Option("--json", envvar=JSON_ENV, show_envvar=False,
                                        help="Print JSON instead of text.")]


class UserError(TiezhengError):
    """A mistake the user can fix: printed as ``error: <message> (<hint>)``, exit code 2."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message, self.hint = message, hint

    def line(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message

    def diagnostics(self) -> str:
        return self.line()


def writable_settings(data_dir: Path | None) -> Settings:
    """Settings for a command that writes: the data dir is made if missing, and checked writable."""
    from api.service.scratch import claim, sweep

    settings = load_settings(data_dir)
    root = settings.root
    if root.exists() and not root.is_dir():
        raise UserError(f"the data dir {root} is a file", "give a folder with --data-dir")
    root.mkdir(parents=True, exist_ok=True)
    claim(settings)
    sweep(settings)
    return settings


def existing_settings(data_dir: Path | None, *, needs_database: bool = True) -> Settings:
    """Settings for a command that only reads: the data dir must exist already; nothing is created."""
    settings = load_settings(data_dir)
    root = settings.root
    if not root.is_dir():
        raise UserError(f"no data dir at {root}",
                        "check --data-dir or TIEZHENG_DATA_DIR; `tiezheng upload`, `capture` or `demo` make one")
    if needs_database and not settings.database_url and not (root / "tiezheng.db").is_file():
        raise UserError(f"{root} holds no Tiezheng database yet",
                        "check --data-dir; `tiezheng upload`, `capture` or `demo` make one")
    return settings


def apply_global_options(data_dir: Path | None, as_json: bool) -> None:
    """``tiezheng --data-dir X --json CMD``: hand the options to the command through its env vars.

    The group's options are parsed before the command's, and a command's own ``--data-dir`` wins
    over the environment, so both places work and the later one counts.
    """
    if data_dir is not None:
        os.environ["TIEZHENG_DATA_DIR"] = str(data_dir)
    if as_json:
        os.environ[JSON_ENV] = "1"


def input_file(path: Path, *, what: str = "file") -> Path:
    """``path`` if it is a readable file, else a UserError saying what is wrong with it."""
    if not path.exists():
        raise UserError(f"no such {what}: {path}", "check the path")
    if path.is_dir():
        raise UserError(f"{path} is a folder, not a {what}", "give a file inside it")
    if not os.access(path, os.R_OK):
        raise UserError(f"cannot read {path}", "check its permissions")
    return path
