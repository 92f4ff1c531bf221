"""`tiezheng doctor`: the readiness checks (api/service/readiness.py) as a table or as JSON."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from api.cli.support import DataDir, JsonFlag
from api.service.readiness import Check, diagnose


def doctor(data_dir: DataDir = None,
           as_json: JsonFlag = False,
           seal: Annotated[bool, typer.Option("--seal/--no-seal",
                                              help="Whether this host seals (needs the chain key).")] = True) -> None:
    """Check this host's setup: data dir, database, Redis, TSAs, chain and key, blob store, operator key.

    Exits 0 when every check passes (or is skipped), 1 otherwise.
    """
    settings, checks = diagnose(data_dir, seal=seal)
    ok = all(c.status != "fail" for c in checks)
    if as_json:
        print(json.dumps({"ok": ok, "data_dir": str(settings.root) if settings else None,
                          "checks": [asdict(c) for c in checks]}))
    else:
        _print_table(checks, ok)
    if not ok:
        raise typer.Exit(1)


def _print_table(checks: list[Check], ok: bool) -> None:
    console = Console(highlight=False)
    marks = {"ok": "[green]ok[/]", "fail": "[red]FAIL[/]", "skip": "[yellow]skip[/]"}
    table = Table.grid(padding=(0, 2))
    table.add_column(no_wrap=True)
    table.add_column(no_wrap=True)
    table.add_column()
    for check in checks:
        text = escape(check.reason)
        if check.status != "ok" and check.hint:
            text += f"\n[dim]→ {escape(check.hint)}[/]"
        table.add_row(marks[check.status], check.name, text)
    console.print(table)
    failed = sum(c.status == "fail" for c in checks)
    console.print("[green]all checks pass[/]" if ok else f"[red]{failed} check(s) failed[/]")
