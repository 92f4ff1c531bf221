"""Render a report for a terminal. Returns rich renderables; printing is the CLI's job."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from verifier.report import DOES_NOT_PROVE, GROUPS, PROVES, Report, Status, Verdict

STATUS_STYLE = {Status.PASS: "bold green", Status.FAIL: "bold red", Status.WARN: "bold yellow",
                Status.SKIP: "dim"}
VERDICT_STYLE = {Verdict.VERIFIED: "bold white on green", Verdict.VERIFIED_OFFLINE: "bold black on yellow",
                 Verdict.FAILED: "bold white on red", Verdict.UNUSABLE: "bold white on red"}


def render_report(report: Report, *, source: str = "") -> RenderableType:
    """A verdict banner, the checks grouped source / path / hash / time, and what they prove."""
    verdict = report.verdict
    header = Text.assemble((f" {verdict.value.upper()} ", VERDICT_STYLE[verdict]), "  ", source)
    parts: list[RenderableType] = [header]
    if report.unusable_reason:
        parts.append(Text(f"Input unusable: {report.unusable_reason}", style="red"))
        return Group(*parts)
    parts.append(Text(f"evidence {report.evidence_id}   fingerprint {report.fingerprint}", style="dim"))
    table = Table(show_lines=False, expand=True)
    table.add_column("check", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("finding", ratio=3)
    table.add_column("legal basis", ratio=2, style="dim")
    for group in GROUPS:
        table.add_row(Text(group.upper(), style="bold cyan"), "", "", "")
        for result in report.checks:
            if result.spec.group == group:
                table.add_row(f"{result.id} {result.spec.title}",
                              Text(result.status.value, style=STATUS_STYLE[result.status]),
                              Text(result.reason), Text(result.spec.basis))
    parts.append(table)
    if report.development:
        parts.append(Panel(Text("\n".join(f"• {item}" for item in report.development)),
                           title="development trust (not for court use)", border_style="yellow"))
    parts.append(Text("What this proves: " + " ".join(PROVES), style="green"))
    parts.append(Text("What it does not prove: " + " ".join(DOES_NOT_PROVE), style="dim"))
    return Group(*parts)
