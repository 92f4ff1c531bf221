"""A matter's timeline with its notice and the platform's reply: notice delivered → still present → removed.

Notices and replies are events on the timeline, verified like every package (N2, N1), but not links of
the watch's capture chain: TL1 and TL2 judge the captures alone.
"""

from __future__ import annotations

from pathlib import Path

from evidence.notices.reply import Nameserver, import_reply
from tests.evidence.notices.conftest import complete_notice
from tests.evidence.notices.servers import dns_server
from tests.evidence.notices.test_reply_and_checks import (
    PLATFORM,
    SELECTOR,
    _notice_package,
    _platform_key,
    _reply,
    _requester,
)
from tests.factory import Workspace
from tests.verifier.test_timeline import capture, change, seal_apart
from verifier.report.timeline_entries import timeline_document
from verifier.timeline import verify_timeline
from verifier.trust import load_trust
from verifier.verdict import Status


def test_notice_and_reply_sit_on_the_timeline_between_captures(workspace: Workspace, tmp_path: Path,
                                                                rpc_url: str) -> None:
    first = capture(workspace, "present", matter="m-7")
    notice = complete_notice(matter="m-7")
    sent = _notice_package(workspace, tmp_path, sent=notice, record=notice)
    pem, record = _platform_key()
    with dns_server() as zone:
        zone.txt[f"{SELECTOR}._domainkey.{PLATFORM}"] = record
        reply, _ = import_reply(_reply(pem, notice.notice_id), notice_id=notice.notice_id,
                                notice_fingerprint=sent.fingerprint.hex(),
                                nameserver=Nameserver("127.0.0.1", zone.port), packages_dir=workspace.packages,
                                operator=workspace.operator, requester=_requester())
    gone = capture(workspace, "gone", first, change=change("removed", first, status=[200, 404]), matter="m-7")
    seal_apart(workspace, rpc_url, [first, sent], [reply, gone])

    report = verify_timeline(workspace.packages, load_trust(workspace.trust_file()))
    assert report.verified, report.to_json()
    assert [c.status for c in report.checks] == [Status.PASS, Status.PASS]
    (chain,) = report.chains
    assert [report.links[i].evidence_id for i in chain] == [first.evidence_id, gone.evidence_id]

    document = timeline_document(report)
    kinds = [entry.kind for entry in document.ordered]
    assert kinds == ["capture", "notice", "reply", "removal"]
    notice_entry = document.ordered[1]
    assert notice.notice_id in str(notice_entry.summary) and "ip@platform.example" in str(notice_entry.summary)
    assert f"DKIM pass for {PLATFORM}" in str(document.ordered[2].summary)
    (delay,) = document.delays()
    assert delay.words[0].startswith("removed ") and delay.words[0].endswith("after the notice was delivered")
    assert "matter: m-7" in str(document.subtitle)
