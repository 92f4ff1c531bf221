"""``tiezheng-verify timeline DIR_OR_ZIP``: verify a watch's captures and the chain between them.

Thin wiring, like ``verifier.cli`` (which hands ``timeline …`` arguments here): parse, call
``verify_timeline``, print, return the exit code. Strings from packages reach the terminal through
``display_text`` and rich's markup escape; JSON is written with ``ensure_ascii``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from verifier.errors import InvalidInput
from verifier.sanitize import display_text
from verifier.timeline import TimelineReport, verify_timeline
from verifier.timeline_checks import TIMELINE_CHECKS
from verifier.trust import Trust, default_trust, load_trust
from verifier.verdict import Verdict
from verifier.wording import LANGS, STATUS_ZH, VERDICT_ZH

if TYPE_CHECKING:
    from rich.console import Console

EXIT_UNUSABLE = 2
COLOURS = {"pass": "green", "fail": "red", "warn": "yellow", "skip": "dim"}
VERDICT_COLOURS = {Verdict.VERIFIED: "green", Verdict.VERIFIED_OFFLINE: "green", Verdict.FAILED: "red",
                   Verdict.UNUSABLE: "red", Verdict.CANNOT_JUDGE: "yellow"}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_UNUSABLE, f"{self.prog}: error: {message}\n")


def parser() -> argparse.ArgumentParser:
    made = _Parser(prog="tiezheng-verify timeline", description=(
        "Verify a timeline: every evidence package in a folder (or a zip of packages) with all checks, then "
        "TL1 (the captures' previous links form one chain per watch: no gap, no fork) and TL2 (their order "
        "agrees with the trusted timestamps). Exit 0 verified, 1 failed, 2 unusable input, 3 cannot judge."))
    made.add_argument("source", type=Path, help="a folder of .wacz packages, or a zip of them")
    made.add_argument("--json", action="store_true", help="print the result as JSON (every text in English and "
                                                          "Chinese)")
    made.add_argument("--lang", choices=LANGS, default="en", help="language of the findings: en, zh or both")
    mode = made.add_mutually_exclusive_group()
    mode.add_argument("--rpc", metavar="[CHAIN_ID=]URL", action="append",
                      help="check anchors online against this JSON-RPC node (as for a single package)")
    mode.add_argument("--offline", action="store_true", help="use no network (the default)")
    made.add_argument("--trust", type=Path, action="append", default=[], metavar="FILE",
                      help="a trust file (TOML) to add to the default trust; may repeat")
    made.add_argument("--html", type=Path, metavar="FILE",
                      help="also write the timeline document (every capture in time order, with what changed) "
                           "as one bilingual HTML page; its links name the package files, so keep it beside them")
    made.add_argument("--pdf", type=Path, metavar="FILE",
                      help="also write the timeline document as PDF (needs: pip install 'tiezheng[pdf]')")
    made.add_argument("--title", default=None, help="the document's title (default: Timeline)")
    return made


def _trust(files: list[Path]) -> Trust:
    trust = default_trust()
    for file in files:
        trust = trust.merged(load_trust(file))
    return trust


def run(args: argparse.Namespace, console: Console) -> int:
    chain = None
    if args.rpc:
        from verifier.chain_source import ChainSources

        chain = ChainSources.parse(args.rpc)
    documents = args.html is not None or args.pdf is not None
    report = verify_timeline(args.source, _trust(args.trust), chain=chain, thumbnails=documents)
    if args.json:
        print(json.dumps(report.to_json(), indent=2, ensure_ascii=True))
    else:
        console.print(render(report, lang=args.lang), soft_wrap=True)
    if documents:
        for kind, path in _write_documents(report, args):
            if not args.json:  # with --json, stdout carries the JSON and nothing else
                console.print(f"{kind} written to {_text(str(path))}")
    return report.exit_code


def _write_documents(report: TimelineReport, args: argparse.Namespace) -> list[tuple[str, Path]]:
    """Write the --html and --pdf documents. A file that cannot be written raises InvalidInput (exit 2);
    a PDF without the ``pdf`` extra is one line on stderr, and the exit code stays the verdict's."""
    from verifier.report.timeline import render_timeline_html, render_timeline_pdf
    from verifier.report.timeline_entries import timeline_document

    document = timeline_document(report, title=args.title)
    written = []
    if args.html is not None:
        _write(args.html, render_timeline_html(document).encode("utf-8"), "timeline HTML")
        written.append(("timeline HTML", args.html))
    if args.pdf is not None:
        if not all(importlib.util.find_spec(name) for name in ("reportlab", "PIL")):
            print("no PDF written: the timeline PDF needs the optional 'pdf' extra: pip install 'tiezheng[pdf]'",
                  file=sys.stderr)
        else:
            _write(args.pdf, render_timeline_pdf(document), "timeline PDF")
            written.append(("timeline PDF", args.pdf))
    return written


def _write(path: Path, data: bytes, kind: str) -> None:
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise InvalidInput(f"cannot write the {kind} to {display_text(str(path))}: {exc.strerror or exc}") from exc


def _text(value: str) -> str:
    from rich.markup import escape

    return escape(display_text(value))


def _pick(en: str, zh: str, lang: str) -> str:
    return {"en": en, "zh": zh}.get(lang, f"{zh}\n    {en}")


def render(report: TimelineReport, *, lang: str = "en") -> str:
    """The terminal text of a timeline report (rich markup; every package string escaped)."""
    lines = []
    if report.unusable_reason is not None:
        lines.append(f"[red]{_pick('unusable input', '输入无法检验', lang)}:[/] {_text(report.unusable_reason)}")
    for link in report.links:
        verdict = link.report.verdict
        shown = _pick(verdict.value, VERDICT_ZH[verdict.value], "zh" if lang == "zh" else "en")
        lines.append(f"[{VERDICT_COLOURS[verdict]}]{shown:<20}[/] {_text(link.file)}"
                     + (f"  {_text(link.evidence_id)}" if link.evidence_id else ""))
        if verdict is Verdict.FAILED:
            failed = ", ".join(link.report.failed_ids) or ", ".join(link.report.unmet_required)
            lines.append(f"{'':<21}{_pick('failed', '未通过', lang)}: {_text(failed)}")
        elif verdict is Verdict.UNUSABLE and link.report.unusable_reason:
            lines.append(f"{'':<21}{_text(link.report.unusable_reason)}")
    for check in report.checks:
        title, title_zh = TIMELINE_CHECKS[check.id]
        status = check.status.value
        label = _pick(status, STATUS_ZH[status], "zh" if lang == "zh" else "en")
        lines.append(f"[{COLOURS[status]}]{check.id} {label:<5}[/] {_pick(title, title_zh, lang)}: "
                     f"{_text(_pick(check.reason, check.reason_zh, lang))}")
    if report.ignored:
        lines.append(f"[dim]{_pick('not packages, not read', '非证据包，未读取', lang)}: "
                     f"{_text(', '.join(report.ignored))}[/]")
    verdict = report.verdict
    lines.append(f"[bold {VERDICT_COLOURS[verdict]}]{_pick('timeline', '时间线', lang)}: "
                 f"{_pick(verdict.value, VERDICT_ZH[verdict.value], lang)}[/]")
    return "\n".join(lines)
