"""``tiezheng``: the operator's CLI entry point. The commands themselves are in api/cli/commands.py.

This module imports only the standard library and rich (a base dependency) until it has checked
that the service's extra is installed: counsel's plain ``pip install tiezheng`` ships this console
script too, and it must say in one line what to install, not die with a traceback. Every error a
user can cause ends as one ``error: …`` line with a hint, and exit code 2.
"""

from __future__ import annotations

import errno
import os
import sys
from typing import NoReturn

#: Which extra brings which top-level module (the pyproject's optional dependencies).
EXTRA_OF_MODULE = {
    "typer": "api", "fastapi": "api", "starlette": "api", "uvicorn": "api", "sqlmodel": "api", "sqlalchemy": "api",
    "alembic": "api", "pydantic": "api", "pydantic_settings": "api", "python_multipart": "api", "multipart": "api",
    "jinja2": "api", "psycopg": "api", "fastapi_offline": "api",
    "playwright": "capture", "warcio": "capture", "dns": "capture", "cdxj_indexer": "capture", "httpx": "capture",
    "httpcore": "capture",
    "web3": "anchor", "rlp": "anchor", "trie": "anchor", "eth_hash": "anchor", "eth_account": "anchor",
    "reportlab": "pdf", "qrcode": "pdf",
    "dramatiq": "scale", "redis": "scale", "boto3": "scale", "botocore": "scale",
}
#: What `tiezheng` needs before any command can even list itself.
CORE_EXTRA = "api"
DISK_HINT = "free some space, or give another --data-dir"
READ_ONLY_HINT = "check its permissions, or give another --data-dir"


def missing_extra(exc: ModuleNotFoundError) -> str:
    """One line naming the extra that brings the missing module."""
    module = (exc.name or "").split(".")[0]
    extra = EXTRA_OF_MODULE.get(module)
    if extra is None:
        return f"a Python package is missing: {module or exc} (reinstall: pip install 'tiezheng[all]')"
    return (f"this needs the '{extra}' extra (missing Python package {module}): pip install 'tiezheng[{extra}]'"
            + (" (tiezheng-verify works without it)" if extra == CORE_EXTRA else ""))


def describe_os_error(exc: OSError) -> str:
    """One line with a hint for the file-system errors users meet: missing, read-only, full."""
    where = exc.filename or ""
    what = exc.strerror or str(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"no space left for {where} ({DISK_HINT})"
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return f"cannot write {where}: {what.lower()} ({READ_ONLY_HINT})"
    if exc.errno == errno.ENOENT:
        return f"no such file or folder: {where} (check the path)"
    if exc.errno == errno.EISDIR:
        return f"{where} is a folder, not a file (give a file)"
    if exc.errno == errno.ENOTDIR:
        return f"{where}: a part of this path is a file, not a folder (check the path)"
    return f"{where}: {what}" if where else what


def describe_database_error(exc: Exception) -> str | None:
    """SQLite's own words for a read-only or full disk, as one line with a hint; None for other errors."""
    text = str(getattr(exc, "orig", None) or exc).lower()
    if "readonly" in text or "read-only" in text:
        return f"the database is on a read-only file system or folder ({READ_ONLY_HINT})"
    if "disk is full" in text or "database or disk is full" in text:
        return f"the disk holding the database is full ({DISK_HINT})"
    if "unable to open database file" in text:
        return f"cannot open the database file ({READ_ONLY_HINT})"
    if "disk i/o error" in text:
        return f"the disk holding the database failed a write; it may be full or read-only ({DISK_HINT})"
    return None


def _fail(message: str, code: int = 2) -> NoReturn:
    from rich.console import Console
    from rich.markup import escape

    Console(stderr=True).print(f"[red]error:[/] {escape(message)}", soft_wrap=True)
    sys.exit(code)


def main() -> None:
    """Entry point: run the app, turning every expected error into one line and exit code 2."""
    try:
        from api.cli.commands import app
    except ModuleNotFoundError as exc:
        _fail(missing_extra(exc))
    from api.cli.support import UserError
    from verifier.errors import TiezhengError

    try:
        # Not click's standalone mode: its usage errors are a framed box of several lines, made one here.
        code = app(standalone_mode=False)
    except UserError as exc:
        _fail(exc.line())
    except TiezhengError as exc:
        _fail(exc.diagnostics())
    except ModuleNotFoundError as exc:
        _fail(missing_extra(exc))
    except OSError as exc:
        _fail(describe_os_error(exc))
    except ValueError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except Exception as exc:
        usage = usage_error(exc)
        if usage is not None:
            if usage:
                _fail(usage)
            sys.exit(2)  # `tiezheng chain` alone: the help is shown already
        if _is_named(exc, "Abort"):
            _fail("interrupted", 130)
        database = describe_database_error(exc) if type(exc).__module__.startswith(("sqlalchemy", "sqlite3")) else None
        if database is not None:
            _fail(database)
        # A bug, not the user's input: one line, never a traceback; TIEZHENG_DEBUG=1 shows it.
        if os.environ.get("TIEZHENG_DEBUG"):
            raise
        _fail(f"internal error: {type(exc).__name__}: {exc} (please report it; TIEZHENG_DEBUG=1 shows the traceback)")
    sys.exit(code if isinstance(code, int) else 0)


def _is_named(exc: BaseException, name: str) -> bool:
    # By name: typer vendors click in some releases and uses click itself in others.
    return any(cls.__name__ == name for cls in type(exc).__mro__)


def usage_error(exc: BaseException) -> str | None:
    """A command-line mistake (unknown option, missing argument, bad value) as one line with a hint;
    "" when the help was printed already (a group run without a command); None for other errors."""
    if not _is_named(exc, "UsageError"):
        return None
    if _is_named(exc, "NoArgsIsHelpError"):
        return ""
    ctx = getattr(exc, "ctx", None)
    command = getattr(ctx, "command_path", None) or "tiezheng"
    message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
    return f"{message} (see `{command} --help`)"
