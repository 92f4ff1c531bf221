"""``tiezheng notice draft|send|reply|show|withdraw|dkim-record``: takedown notices from the command line.

Thin wiring over ``api.service.notices``: parse, call, print. The SMTP relay, From address, DKIM
selector and DNS resolver come from ``TIEZHENG_SMTP_*``, ``TIEZHENG_DKIM_*`` and
``TIEZHENG_DNS_RESOLVER``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from api.cli.support import DataDir, JsonFlag, UserError, existing_settings, input_file, writable_settings

notice_app = typer.Typer(no_args_is_help=True, help="Takedown notices: draft, send, import replies, withdraw.")
console = Console()

#: A reply is an e-mail; the importer refuses anything larger (evidence.notices.reply.MAX_REPLY_BYTES).
MAX_EML_BYTES = 32 << 20


def _print_version(version: Any, as_json: bool) -> None:
    if as_json:
        print(version.model_dump_json())
        return
    console.print(f"[bold]{version.notice_id}[/] version {version.version} ({version.action}, {version.status})")
    if version.evidence_id:
        console.print(f"  sealed as {version.evidence_id}  fingerprint {version.fingerprint}")
        console.print(f"  sent to {escape(version.recipient)}  queue id {escape(str(version.queue_id))}")
    if version.due:
        console.print(f"  the platform's window ({version.window}) ends on {version.due} (China Standard Time)")
    for result in version.completeness:
        mark = "[green]complete[/]" if result["complete"] else "[red]incomplete[/]"
        console.print(f"  {mark}  {escape(str(result['title_zh']))}")
        console.print(f"            {escape(str(result['title']))}")
        for en, zh in zip(result["missing_en"], result["missing_zh"], strict=True):
            console.print(f"            missing: {escape(en)} / {escape(zh)}")


def _infringing(item: str) -> Any:
    from api.service.notice_models import InfringingIn

    # Evidence ids hold no "=", so the first one separates the id from a URL.
    evidence_id, _, url = item.partition("=")
    return InfringingIn(evidence_id=evidence_id.strip(), url=url.strip())


def _desk(settings: Any) -> Any:
    from api.service.notices import NoticeDesk

    return NoticeDesk.local(settings)


@notice_app.command("draft")
def draft(owner: Annotated[str, typer.Option(help="The right owner's name.")] = "",
          owner_id: Annotated[str, typer.Option("--owner-id", help="Its identifier (USCC, ID number).")] = "",
          email: Annotated[str, typer.Option(help="The owner's contact e-mail.")] = "",
          phone: Annotated[str, typer.Option(help="The owner's contact telephone.")] = "",
          address: Annotated[str, typer.Option(help="The owner's postal address.")] = "",
          proof: Annotated[list[str] | None, typer.Option(
              help="Evidence id of a sealed upload proving the right; repeat for several.")] = None,
          capture: Annotated[list[str] | None, typer.Option(
              help="EVIDENCE_ID of a sealed capture of an infringing page (its URL is taken from it), or "
                   "EVIDENCE_ID=URL; repeat.")] = None,
          url: Annotated[list[str] | None, typer.Option(help="An infringing URL with no capture yet; repeat.")] = None,
          grounds: Annotated[str, typer.Option(help="Why the content infringes, and the measure asked.")] = "",
          guarantee: Annotated[str, typer.Option(
              help="The owner's own guarantee text (default: the standard one).")] = "",
          guarantee_given: Annotated[bool, typer.Option(
              "--guarantee-given", help="The owner gives the written guarantee of authenticity.")] = False,
          to: Annotated[str, typer.Option(help="The platform's notice address.")] = "",
          matter: Annotated[str | None, typer.Option(help="The matter this notice serves.")] = None,
          rule_set: Annotated[list[str] | None, typer.Option(
              help="spc-2014-art5, ecl-art42, ip-guideline-art5 or civil-code-art1195; repeat "
                 "(default: all four).")] = None,
          window: Annotated[str, typer.Option(help="Response window: 15d, 20wd (working days) or a date.")] = "15d",
          corrects: Annotated[str | None, typer.Option(help="Draft a correction of this sent notice.")] = None,
          data_dir: DataDir = None, as_json: JsonFlag = False) -> None:
    """Draft a notice (nothing is sent) and show what each rule set finds missing."""
    from api.service import notices
    from api.service.notice_models import InfringingIn, NoticeCreate

    body = NoticeCreate(owner_name=owner, owner_identifier=owner_id, owner_email=email, owner_phone=phone,
                        owner_address=address, right_proofs=list(proof or []),
                        infringing=[_infringing(item) for item in capture or []]
                        + [InfringingIn(url=u) for u in url or []],
                        grounds=grounds, guarantee=guarantee, guarantee_given=guarantee_given, recipient=to,
                        matter=matter, rule_sets=list(rule_set) if rule_set else None, window=window,
                        corrects=corrects)
    _print_version(notices.draft(_desk(writable_settings(data_dir)), notices.Caller.local(), body), as_json)


@notice_app.command("send")
def send(notice_id: Annotated[str, typer.Argument(metavar="ID")],
         to: Annotated[str | None, typer.Option(help="The platform's notice address (default: the draft's).")] = None,
         allow_incomplete: Annotated[bool, typer.Option(
             "--allow-incomplete", help="Send even when a rule set finds elements missing.")] = False,
         data_dir: DataDir = None, as_json: JsonFlag = False) -> None:
    """Send the notice's draft by SMTP, DKIM-signed, and seal exactly what went out."""
    from api.service import notices

    version = notices.send(_desk(writable_settings(data_dir)), notices.Caller.local(), notice_id, to=to,
                           allow_incomplete=allow_incomplete)
    _print_version(version, as_json)
    if not as_json:
        console.print("  status  pending (run `tiezheng seal`)")


@notice_app.command("reply")
def reply(notice_id: Annotated[str, typer.Argument(metavar="ID")],
          eml: Annotated[Path, typer.Argument(metavar="FILE.eml", help="The reply or bounce, as received.")],
          data_dir: DataDir = None, as_json: JsonFlag = False) -> None:
    """Import a reply or delivery-status notification: check its DKIM signature and seal it with the key record."""
    from api.service import notices

    path = input_file(eml, what="e-mail file")
    if path.stat().st_size > MAX_EML_BYTES:
        raise UserError(f"{path} is over {MAX_EML_BYTES} bytes", "give the .eml of one message")
    result = notices.reply(_desk(writable_settings(data_dir)), notices.Caller.local(), notice_id, path.read_bytes())
    if as_json:
        print(result.model_dump_json())
        return
    status = {"pass": "[green]DKIM pass[/]", "fail": "[red]DKIM fail[/]", "none": "[yellow]not signed[/]"}
    console.print(f"{status.get(result.dkim_status, result.dkim_status)} {escape(str(result.dkim_domain or ''))}\n"
                  f"  sealed as {result.evidence_id}  fingerprint {result.fingerprint}\n"
                  "  status  pending (run `tiezheng seal`)")


@notice_app.command("show")
def show(notice_id: Annotated[str, typer.Argument(metavar="ID")], data_dir: DataDir = None,
         as_json: JsonFlag = False) -> None:
    """Every version of a notice (completeness, deadline, sealed package) and its replies."""
    from api.service import notices

    found = notices.show(_desk(existing_settings(data_dir)), notices.Caller.local(), notice_id)
    if as_json:
        print(found.model_dump_json())
        return
    for version in found.versions:
        _print_version(version, False)
    for item in found.replies:
        console.print(f"reply {item.evidence_id}: DKIM {item.dkim_status} {escape(str(item.dkim_domain or ''))}")


@notice_app.command("withdraw")
def withdraw(notice_id: Annotated[str, typer.Argument(metavar="ID")],
             reason: Annotated[str, typer.Option(help="Why the notice is withdrawn.")] = "",
             data_dir: DataDir = None, as_json: JsonFlag = False) -> None:
    """Withdraw a sent notice: a new sealed version, sent to the same address, linked to the one before."""
    from api.service import notices

    _print_version(notices.withdraw(_desk(writable_settings(data_dir)), notices.Caller.local(), notice_id,
                                    reason=reason), as_json)


@notice_app.command("dkim-record")
def dkim_record(data_dir: DataDir = None, as_json: JsonFlag = False) -> None:
    """Print the DNS TXT record to publish for the operator's DKIM key (made on first use)."""
    from api.service.notices import dkim_key

    key = dkim_key(writable_settings(data_dir))
    if as_json:
        print(json.dumps({"name": key.record_name, "type": "TXT", "value": key.dns_record().split('"')[1]}))
    else:
        print(key.dns_record())


@notice_app.command("poll")
def poll(data_dir: DataDir = None, as_json: JsonFlag = False) -> None:
    """Import the replies waiting in the notice mailbox (TIEZHENG_IMAP_*): each one naming a notice is sealed."""
    from api.service import notices

    outcome = notices.poll_replies(_desk(writable_settings(data_dir)))
    if as_json:
        print(json.dumps({"imported": [json.loads(r.model_dump_json()) for r in outcome.imported],
                          "duplicates": outcome.duplicates, "unmatched": outcome.unmatched}))
        return
    for item in outcome.imported:
        console.print(f"imported {item.evidence_id}: DKIM {item.dkim_status} {escape(str(item.dkim_domain or ''))}")
    console.print(f"{len(outcome.imported)} imported, {outcome.duplicates} already imported, "
                  f"{outcome.unmatched} naming no single notice (left unread)")
