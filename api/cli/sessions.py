"""`tiezheng session …`: browser sessions for logged-in captures (`tiezheng capture --session NAME`).

A session is a Playwright storage state (cookies and local storage) saved from a browser that is
logged in. It is stored encrypted with the key in TIEZHENG_SESSION_KEY, used only for this data
dir's captures, and never enters a package: the manifest names the account and the state's sha256.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from api.cli.support import DataDir, JsonFlag, UserError, input_file, writable_settings
from api.service.errors import ServiceError

session_app = typer.Typer(no_args_is_help=True, help="Browser sessions for logged-in captures (stored encrypted).")
console = Console()
KEY_HINT = "set TIEZHENG_SESSION_KEY (32 random bytes, base64) in the environment"


@session_app.command("add")
def session_add(name: Annotated[str, typer.Argument(metavar="NAME", help="What captures call it (--session NAME).")],
                file: Annotated[Path, typer.Argument(metavar="FILE.json",
                                                     help="Playwright storage state (context.storage_state()).")],
                account: Annotated[str, typer.Option(metavar="ACCOUNT",
                                                     help="The account it is logged in as (goes into manifests).")],
                data_dir: DataDir = None, as_json: JsonFlag = False) -> None:
    """Store a logged-in browser session, encrypted; the file itself can then be deleted."""
    from api.service.local_sessions import add_session

    try:
        stored = add_session(writable_settings(data_dir), name=name, account=account,
                             file=input_file(file, what="session file"))
    except ServiceError as exc:
        raise UserError(str(exc), KEY_HINT if "TIEZHENG_SESSION_KEY" in str(exc) else
                        "save it with Playwright's context.storage_state(path=...)") from None
    if as_json:
        print(json.dumps(stored.model_dump(mode="json"), ensure_ascii=False))
    else:
        console.print(f"[green]session[/] {escape(stored.name)} as {escape(stored.account)}: {stored.cookies} "
                      f"cookie(s), {stored.origins} origin(s), sha256 {stored.state_sha256}")


@session_app.command("list")
def session_list(data_dir: DataDir = None, as_json: JsonFlag = False) -> None:
    """List the stored sessions (names, accounts and hashes; never a cookie)."""
    from api.service.local_sessions import list_sessions

    found = list_sessions(writable_settings(data_dir))
    if as_json:
        print(json.dumps([s.model_dump(mode="json") for s in found], ensure_ascii=False))
        return
    if not found:
        console.print("no sessions yet (`tiezheng session add NAME --account ACCOUNT FILE.json`)")
    for s in found:
        console.print(f"{escape(s.name)}  {escape(s.account)}  {s.cookies} cookie(s)  sha256 {s.state_sha256[:16]}…")


@session_app.command("remove")
def session_remove(name: Annotated[str, typer.Argument(metavar="NAME")], data_dir: DataDir = None) -> None:
    """Delete a stored session and its encrypted state."""
    from api.service.local_sessions import remove_session

    try:
        remove_session(writable_settings(data_dir), name)
    except ServiceError as exc:
        raise UserError(str(exc), "see `tiezheng session list`") from None
    console.print(f"removed session {escape(name)}")
