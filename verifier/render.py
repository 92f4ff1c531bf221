"""Render a report for a terminal. Returns rich renderables; printing is the CLI's job.

Every string that may come from a package goes through ``display_text`` (rich ``Text`` does not
interpret markup, but a terminal would still obey escape sequences and bidi controls in it).
"""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from verifier.report import DOES_NOT_PROVE, GROUPS, Report, Status, Verdict
from verifier.sanitize import display_text

STATUS_STYLE = {Status.PASS: "bold green", Status.FAIL: "bold red", Status.WARN: "bold yellow",
                Status.SKIP: "dim"}
VERDICT_STYLE = {Verdict.VERIFIED: "bold white on green", Verdict.VERIFIED_OFFLINE: "bold black on yellow",
                 Verdict.FAILED: "bold white on red", Verdict.UNUSABLE: "bold white on red",
                 Verdict.CANNOT_JUDGE: "bold black on bright_white"}
FINDINGS_TITLE = {Verdict.VERIFIED_OFFLINE: "not checked offline", Verdict.FAILED: "what failed and what it means",
                  Verdict.UNUSABLE: "why it could not be read", Verdict.CANNOT_JUDGE: "trust missing"}


def safe(value: object) -> Text:
    """Package-derived text for the terminal: hidden characters shown as codes, no markup."""
    return Text(display_text(str(value)))


def render_report(report: Report, *, source: str = "") -> RenderableType:
    """A verdict banner, what the verdict means, the checks by group, and (verified only) what they prove."""
    verdict = report.verdict
    header = Text.assemble((f" {verdict.value.upper()} ", VERDICT_STYLE[verdict]), "  ", display_text(source))
    parts: list[RenderableType] = [header]
    findings = report.findings
    if findings:
        style = "red" if verdict in (Verdict.FAILED, Verdict.UNUSABLE) else "yellow"
        parts.append(Panel(Text("\n".join(f"• {display_text(f)}" for f in findings)),
                           title=FINDINGS_TITLE.get(verdict, ""), border_style=style))
    if report.unusable_reason:
        return Group(*parts)
    parts.append(Text(f"evidence {display_text(str(report.evidence_id))}   fingerprint {report.fingerprint}",
                      style="dim"))
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
                              safe(result.reason), Text(result.spec.basis))
    parts.append(table)
    if report.development:
        parts.append(Panel(Text("\n".join(f"• {display_text(item)}" for item in report.development)),
                           title="development trust (not for court use)", border_style="yellow"))
    for source_name, digest in report.trust_used:
        parts.append(Text(f"trust used: {display_text(source_name)}  sha256 {digest}", style="dim"))
    if report.proves:
        parts.append(Text("What this proves: " + " ".join(report.proves), style="green"))
        parts.append(Text("What it does not prove: " + " ".join(DOES_NOT_PROVE), style="dim"))
    return Group(*parts)
