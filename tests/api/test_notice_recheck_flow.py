"""A notice's whole course, end to end: draft → gate → send → reply → deadline → re-capture → timeline.

Real parts only: the listing is served on loopback and captured by Chromium, the notice goes out over
SMTP to aiosmtpd, the reply's DKIM key is served by a loopback DNS server, sealing runs the embedded
TSA and devnet. Days do not pass: the notice's window is a user-set date, and the scheduler is run
with its clock set past that date (``run_due(now=…)``), as a cron run on that day would be.
"""

from __future__ import annotations

import base64
import http.server
import os
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any, ClassVar

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from api.service import local_cases, notices, pipeline
from api.service.notice_models import InfringingIn, NoticeCreate
from api.service.settings import Settings, load_settings
from evidence.notices.deadline import CHINA_STANDARD_TIME
from tests.api.conftest import capture_available
from tests.api.test_cli import BIN
from tests.evidence.notices.servers import QUEUE_ID, Mailbox, Zone, dns_server, smtp_server

PLATFORM = "platform.example"
LISTING = ("<!doctype html><html><head><meta charset='utf-8'><title>摄影作品 · item 1</title></head><body>"
           "<h1>Photograph print</h1><p id='price'>¥ 99.00</p><p>Sold by Shop 12345.</p></body></html>")
REMOVED = ("<!doctype html><html><head><meta charset='utf-8'><title>该商品已下架</title></head>"
           "<body><h1>该商品已下架</h1></body></html>")

pytestmark = pytest.mark.skipif(capture_available() is not None, reason=f"web capture: {capture_available()}")


class _Shop(http.server.BaseHTTPRequestHandler):
    """The platform's listing: live, or taken down (a 404 with the platform's words) once ``removed`` is set."""

    state: ClassVar[dict[str, bool]] = {}

    def do_GET(self) -> None:
        removed = self.state.get("removed", False)
        body = (REMOVED if removed else LISTING).encode()
        self.send_response(404 if removed else 200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture()
def shop() -> Iterator[tuple[str, dict[str, bool]]]:
    state: dict[str, bool] = {}
    handler: type[_Shop] = type("Shop", (_Shop,), {"state": state})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/item/1", state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture()
def settings(tmp_path: Path, anvil: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Settings, Mailbox, Zone]]:
    with smtp_server(tmp_path, starttls=False) as mailbox, dns_server() as zone:
        for name, value in {"TIEZHENG_SMTP_HOST": "127.0.0.1", "TIEZHENG_SMTP_PORT": str(mailbox.port),
                            "TIEZHENG_SMTP_STARTTLS": "off", "TIEZHENG_SMTP_FROM": "notices@operator.example",
                            "TIEZHENG_DNS_RESOLVER": f"127.0.0.1:{zone.port}",
                            "TIEZHENG_CAPTURE_ALLOW_PRIVATE": "true"}.items():
            monkeypatch.setenv(name, value)
        data = tmp_path / "data"
        try:
            yield load_settings(data), mailbox, zone
        finally:
            subprocess.run([str(BIN / "tiezheng"), "chain", "down"], capture_output=True, timeout=60,
                           env={**os.environ, "TIEZHENG_DATA_DIR": str(data)})


def _signed_reply(notice_id: str, zone: Zone) -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    zone.txt[f"mail._domainkey.{PLATFORM}"] = f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode()}"
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    body = (f"From: ip@{PLATFORM}\r\nTo: notices@operator.example\r\nSubject: Re: [{notice_id}]\r\n"
            f"Date: {format_datetime(datetime.now(UTC))}\r\nMessage-ID: <r@{PLATFORM}>\r\n\r\n"
            "We are looking into it.\r\n").encode()
    signature: bytes = dkim.sign(body, b"mail", PLATFORM.encode(), pem)
    return signature + body


def _seal(settings: Settings) -> None:
    pipeline.seal_pending(settings, on_step=lambda _: None)


def test_a_notice_from_draft_to_the_recapture_after_its_window_on_the_timeline(
        settings: tuple[Settings, Mailbox, Zone], shop: tuple[str, dict[str, bool]], tmp_path: Path) -> None:
    config, mailbox, zone = settings
    url, page = shop
    matter = local_cases.create_matter(config, title="Owner Co v. Shop 12345").id
    watch = local_cases.add_watch(config, url=url, every="30d", matter=matter)
    (first,) = local_cases.run_due(config).runs
    assert first.evidence_id, first
    proof_file = tmp_path / "registration.pdf"
    proof_file.write_bytes(b"%PDF-1.4 copyright registration 2024-F-00123456")
    proof = pipeline.upload_local(config, [proof_file], note="proof of right", matter=matter).evidence_id
    _seal(config)

    # Draft and gate: complete under every rule set once the proof and the capture are sealed.
    desk, caller = notices.NoticeDesk.local(config), notices.Caller.local()
    sent_day = datetime.now(CHINA_STANDARD_TIME).date()
    drafted = notices.draft(desk, caller, NoticeCreate(
        owner_name="Owner Co", owner_identifier="91310000MA1FL0XX1X", owner_email="legal@owner.example",
        right_proofs=[proof], infringing=[InfringingIn(url=url, evidence_id=first.evidence_id)],
        grounds="unlicensed photographs", guarantee_given=True, recipient=f"ip@{PLATFORM}", matter=matter,
        window=(sent_day + timedelta(days=1)).isoformat()))
    assert all(r["complete"] for r in drafted.completeness), drafted.completeness

    sent = notices.send(desk, caller, drafted.notice_id)
    assert sent.status == "sent" and sent.queue_id == QUEUE_ID and sent.due == drafted.window
    assert len(mailbox.received) == 1
    replied = notices.reply(desk, caller, drafted.notice_id, _signed_reply(drafted.notice_id, zone))
    assert replied.dkim_status == "pass" and replied.dkim_domain == PLATFORM

    # The window is open on its last day: a run then re-captures nothing.
    last_day = datetime.combine(sent_day + timedelta(days=1), datetime.min.time(), CHINA_STANDARD_TIME)
    assert local_cases.run_due(config, now=last_day + timedelta(hours=12)).rechecks == 0
    # The day after, the matter's watch captures the listing again, once: it is still there.
    after = last_day + timedelta(days=1, minutes=5)
    recheck = local_cases.run_due(config, now=after)
    assert recheck.rechecks == 1 and recheck.missed == 0
    (still,) = recheck.runs
    assert still.evidence_id and still.url == url
    assert local_cases.run_due(config, now=after + timedelta(minutes=1)).runs == []
    slots = next(w for w in local_cases.list_watches(config) if w.id == watch.id).slots
    (extra,) = [s for s in slots if s.reason and s.reason.startswith(f"notice {drafted.notice_id} v1")]
    assert extra.state == "done" and extra.evidence_id == still.row_id

    # Then the platform takes the listing down, and the watch's next run finds it removed.
    page["removed"] = True
    next_slot = next(w for w in local_cases.list_watches(config) if w.id == watch.id).next_slot
    (gone,) = local_cases.run_due(config, now=next_slot.replace(tzinfo=next_slot.tzinfo or UTC)).runs
    assert gone.evidence_id and gone.error is None
    _seal(config)

    timeline = local_cases.local_timeline(config, matter_id=matter)
    assert timeline.without_package == ()
    assert all(link.report.verified for link in timeline.report.links), timeline.report.to_json()
    kinds = {entry.evidence_id: entry.kind for entry in timeline.document.entries}
    assert sent.evidence_id is not None and still.evidence_id is not None and gone.evidence_id is not None
    assert kinds[sent.evidence_id] == "notice" and kinds[replied.evidence_id] == "reply"
    assert kinds[still.evidence_id] in ("capture", "change") and kinds[gone.evidence_id] == "removal"
    (course,) = timeline.document.courses()
    assert course.notice.evidence_id == sent.evidence_id
    assert [e.evidence_id for e in course.present] == [still.evidence_id]
    assert course.removal is not None and course.removal.evidence_id == gone.evidence_id
    # Captured today, not on the simulated days: day 0 after delivery, worded as the court will read it.
    assert course.words[0] == "notice delivered → still present on day 0 → removed on day 0"
    html = timeline.html()
    assert "notice delivered → still present on day 0 → removed on day 0" in html
    assert "通知送达 → 第 0 天仍然存在 → 第 0 天被删除" in html
    assert timeline.pdf().startswith(b"%PDF")
    if os.environ.get("TIEZHENG_KEEP_TIMELINE"):  # to look at them: the folder to write them in
        folder = Path(os.environ["TIEZHENG_KEEP_TIMELINE"])
        (folder / "notice-timeline.html").write_text(html, encoding="utf-8")
        (folder / "notice-timeline.pdf").write_bytes(timeline.pdf())
