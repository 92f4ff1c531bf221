"""`tiezheng notice poll` against a real IMAP server on loopback (pymap, in-memory mailbox)."""

from __future__ import annotations

import imaplib
import json
import subprocess
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.test_cli import BIN
from tests.api.test_notice_cli import PLATFORM, _signed_reply, run
from tests.evidence.notices.servers import Mailbox, Zone, dns_server, free_port, smtp_server

USER, PASSWORD = "demouser", "demopass"


@pytest.fixture()
def imap(tmp_path: Path) -> Iterator[int]:
    if not (BIN / "pymap").exists():
        pytest.skip("pymap is not installed (the dev extra)")
    port = free_port()
    log = (tmp_path / "pymap.log").open("wb")
    server = subprocess.Popen([str(BIN / "pymap"), "--host", "127.0.0.1", "--port", str(port), "--no-tls", "dict",
                               "--demo-user", USER, "--demo-password", PASSWORD], stdout=log, stderr=log)
    try:
        for _ in range(100):
            try:
                imaplib.IMAP4("127.0.0.1", port).logout()
                break
            except OSError:
                time.sleep(0.1)
        yield port
    finally:
        server.terminate()
        server.wait(10)
        log.close()


@pytest.fixture()
def servers(tmp_path: Path) -> Iterator[tuple[Mailbox, Zone]]:
    with smtp_server(tmp_path, starttls=False) as mailbox, dns_server() as zone:
        yield mailbox, zone


def _deliver(port: int, message: bytes) -> None:
    client = imaplib.IMAP4("127.0.0.1", port)
    client.login(USER, PASSWORD)
    client.append("INBOX", None, None, message)
    client.logout()


def test_poll_imports_each_reply_once_and_leaves_strangers_unread(tmp_path: Path, imap: int,
                                                                  servers: tuple[Mailbox, Zone]) -> None:
    mailbox, zone = servers
    data_dir = tmp_path / "data"
    mail_env = {"TIEZHENG_IMAP_HOST": "127.0.0.1", "TIEZHENG_IMAP_PORT": str(imap), "TIEZHENG_IMAP_SECURITY": "off",
                "TIEZHENG_IMAP_USER": USER, "TIEZHENG_IMAP_PASSWORD": PASSWORD}

    def tz(*args: str | Path) -> subprocess.CompletedProcess[str]:
        return run(data_dir, mailbox, zone, *args, **mail_env)

    # Incomplete on purpose (no sealed evidence): what is polled here does not need sealing.
    drafted = json.loads(tz("notice", "draft", "--owner", "Owner Co", "--url", "https://shop.example/i/1",
                            "--grounds", "copies", "--to", f"ip@{PLATFORM}", "--json").stdout)
    tz("notice", "send", drafted["notice_id"], "--allow-incomplete")
    reply = _signed_reply(drafted["notice_id"], zone)
    _deliver(imap, reply)
    _deliver(imap, b"From: someone@else.example\r\nSubject: hello\r\n\r\nnot about a notice\r\n")

    first = json.loads(tz("notice", "poll", "--json").stdout)
    assert [r["dkim_status"] for r in first["imported"]] == ["pass"] and first["unmatched"] == 1
    again = json.loads(tz("notice", "poll", "--json").stdout)
    assert again == {"imported": [], "duplicates": 0, "unmatched": 1}
    shown = json.loads(tz("notice", "show", drafted["notice_id"], "--json").stdout)
    assert [r["evidence_id"] for r in shown["replies"]] == [first["imported"][0]["evidence_id"]]
    with zipfile.ZipFile(data_dir / "packages" / f"{first['imported'][0]['evidence_id']}.wacz") as package:
        assert package.read("evidence/reply.eml") == reply  # the bytes as delivered

    # Marked unread again (a crash between sealing and marking): recognised, not sealed twice.
    client = imaplib.IMAP4("127.0.0.1", imap)
    client.login(USER, PASSWORD)
    client.select("INBOX")
    client.store("1:*", "-FLAGS", "(\\Seen)")
    client.logout()
    assert json.loads(tz("notice", "poll", "--json").stdout) == {"imported": [], "duplicates": 1, "unmatched": 1}
