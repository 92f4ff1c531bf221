"""The notice flow as an operator runs it: real `tiezheng` processes, loopback SMTP and DNS, real sealing.

draft → gate → send → reply → seal → verify (N2 on the notice, N1 on the reply) → withdraw.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.api.test_cli import BIN
from tests.evidence.notices.servers import QUEUE_ID, Mailbox, Zone, dns_server, smtp_server

PLATFORM = "platform.example"


@pytest.fixture()
def servers(tmp_path: Path) -> Iterator[tuple[Mailbox, Zone]]:
    with smtp_server(tmp_path, starttls=True) as mailbox, dns_server() as zone:
        yield mailbox, zone


@pytest.fixture()
def data_dir(tmp_path: Path, anvil: Path) -> Iterator[Path]:
    folder = tmp_path / "data"
    yield folder
    subprocess.run([str(BIN / "tiezheng"), "chain", "down"], env={**os.environ, "TIEZHENG_DATA_DIR": str(folder)},
                   capture_output=True, timeout=60)


def run(data_dir: Path, mailbox: Mailbox, zone: Zone, *args: str | Path, check: bool = True,
        **extra_env: str) -> subprocess.CompletedProcess[str]:
    """`tiezheng` with the loopback relay (STARTTLS required when it offers TLS) and resolver configured."""
    tls = {"TIEZHENG_SMTP_STARTTLS": "require", "TIEZHENG_SMTP_CA_FILE": str(mailbox.cert)} if mailbox.cert else {}
    env = {**os.environ, "TIEZHENG_DATA_DIR": str(data_dir), "COLUMNS": "200",
           "TIEZHENG_SMTP_HOST": "127.0.0.1", "TIEZHENG_SMTP_PORT": str(mailbox.port), **tls,
           "TIEZHENG_SMTP_FROM": "notices@operator.example", "TIEZHENG_DKIM_SELECTOR": "tz2026",
           "TIEZHENG_DNS_RESOLVER": f"127.0.0.1:{zone.port}", **extra_env}
    result = subprocess.run([str(BIN / "tiezheng"), *map(str, args)], capture_output=True, text=True, env=env,
                            timeout=180)
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def _signed_reply(notice_id: str, zone: Zone) -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    zone.txt[f"mail._domainkey.{PLATFORM}"] = f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode()}"
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    body = (f"From: ip@{PLATFORM}\r\nTo: notices@operator.example\r\nSubject: Re: [{notice_id}]\r\n"
            f"Date: {format_datetime(datetime.now(UTC))}\r\nMessage-ID: <r@{PLATFORM}>\r\n\r\n"
            "Listing removed.\r\n").encode()
    signature: bytes = dkim.sign(body, b"mail", PLATFORM.encode(), pem)
    return signature + body


def test_draft_send_reply_seal_verify_withdraw(data_dir: Path, tmp_path: Path,
                                               servers: tuple[Mailbox, Zone]) -> None:
    mailbox, zone = servers

    def tz(*args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run(data_dir, mailbox, zone, *args, check=check)

    (tmp_path / "registration.pdf").write_bytes(b"%PDF-1.4 copyright registration 2024-F-00123456")
    (tmp_path / "listing.png").write_bytes(b"\x89PNG listing 12345" * 40)
    matter = json.loads(tz("matter", "create", "Owner Co v. Shop 12345", "--json").stdout)["id"]
    proof = json.loads(tz("upload", tmp_path / "registration.pdf", "--json").stdout)["evidence_id"]
    listing = json.loads(tz("upload", tmp_path / "listing.png", "--matter", matter, "--json").stdout)["evidence_id"]

    # Before sealing, the evidence is not yet sealed: the gate names it and nothing is sent.
    early = json.loads(tz("notice", "draft", "--owner", "Owner Co", "--owner-id", "91310000MA1FL0XX1X",
                          "--email", "legal@owner.example", "--proof", proof,
                          "--capture", f"{listing}=https://shop.platform.example/item/12345",
                          "--grounds", "unlicensed photographs", "--guarantee-given",
                          "--to", f"ip@{PLATFORM}", "--json").stdout)
    refused = tz("notice", "send", early["notice_id"], check=False)
    assert refused.returncode == 2 and "preliminary evidence of infringement" in refused.stderr
    assert mailbox.received == []

    tz("seal")
    drafted = json.loads(tz("notice", "draft", "--owner", "Owner Co", "--owner-id", "91310000MA1FL0XX1X",
                            "--email", "legal@owner.example", "--proof", proof,
                            "--capture", f"{listing}=https://shop.platform.example/item/12345",
                            "--grounds", "unlicensed photographs", "--guarantee-given", "--matter", matter,
                            "--window", "20wd", "--to", f"ip@{PLATFORM}", "--json").stdout)
    assert all(r["complete"] for r in drafted["completeness"])
    notice_id = drafted["notice_id"]

    record = tz("notice", "dkim-record").stdout
    assert record.startswith("tz2026._domainkey.operator.example. IN TXT \"v=DKIM1; k=rsa; p=")

    sent = json.loads(tz("notice", "send", notice_id, "--json").stdout)
    assert sent["status"] == "sent" and sent["queue_id"] == QUEUE_ID and sent["due"]
    (received,) = mailbox.received
    assert received["tls"] and received["to"] == [f"ip@{PLATFORM}"]

    eml = tmp_path / "reply.eml"
    eml.write_bytes(_signed_reply(notice_id, zone))
    replied = json.loads(tz("notice", "reply", notice_id, eml, "--json").stdout)
    assert replied["dkim_status"] == "pass" and replied["dkim_domain"] == PLATFORM

    withdrawn = json.loads(tz("notice", "withdraw", notice_id, "--reason", "settled", "--json").stdout)
    assert withdrawn["version"] == 2 and withdrawn["action"] == "withdrawal"
    assert withdrawn["previous"] == sent["fingerprint"] and withdrawn["due"] is None
    assert len(mailbox.received) == 2

    tz("seal")
    shown = json.loads(tz("notice", "show", notice_id, "--json").stdout)
    assert [v["version"] for v in shown["versions"]] == [1, 2] and len(shown["replies"]) == 1
    packages = data_dir / "packages"
    for evidence_id, check in ((sent["evidence_id"], "N2"), (withdrawn["evidence_id"], "N2"),
                               (replied["evidence_id"], "N1")):
        report = json.loads(tz("verify", packages / f"{evidence_id}.wacz", "--json").stdout)
        assert report["verdict"] == "verified (offline)", report
        assert next(c for c in report["checks"] if c["id"] == check)["status"] == "pass"

    # The matter's timeline holds the capture of the listing, the notice, the reply and the withdrawal.
    document = tmp_path / "timeline.html"
    timeline = json.loads(tz("timeline", matter, "--json", "--html", document, check=False).stdout)
    # Every package verifies; TL1 holds. (With one stand-alone capture there is no chain for TL2 to order,
    # and a timeline verifies only when both checks ran: that is the timeline's rule, not the notices'.)
    assert {p["verdict"] for p in timeline["packages"]} == {"verified (offline)"}
    assert timeline["checks"][0]["status"] == "pass"
    filed = {p["evidence_id"] for p in timeline["packages"]}
    assert filed == {listing, sent["evidence_id"], replied["evidence_id"], withdrawn["evidence_id"]}
    page = document.read_text()
    assert "Notice delivered" in page and "通知送达" in page and "Reply received" in page
