"""/v1/notices on a running service: draft, gate, send over loopback SMTP, import a signed reply
against loopback DNS, withdraw, and tenant isolation throughout."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.api.conftest import start_server
from tests.api.server import Server, wait_for_status
from tests.evidence.notices.servers import QUEUE_ID, Mailbox, Zone, dns_server, smtp_server

PLATFORM = "platform.example"


@pytest.fixture(scope="module")
def loopback(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Mailbox, Zone]]:
    folder = tmp_path_factory.mktemp("mail")
    with smtp_server(folder, starttls=False) as mailbox, dns_server() as zone:
        yield mailbox, zone


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def service(request: pytest.FixtureRequest, anvil: Path, tmp_path_factory: pytest.TempPathFactory,
            loopback: tuple[Mailbox, Zone]) -> Iterator[Server]:
    mailbox, zone = loopback
    yield from start_server(tmp_path_factory.mktemp(f"notices-{request.param}"), request.param,
                            TIEZHENG_SMTP_HOST="127.0.0.1", TIEZHENG_SMTP_PORT=str(mailbox.port),
                            TIEZHENG_SMTP_FROM="notices@operator.example",
                            TIEZHENG_DNS_RESOLVER=f"127.0.0.1:{zone.port}")


def _sealed_upload(client: Any, name: str, data: bytes) -> str:
    reply = client.post("/v1/uploads", files={"file": (name, data)})
    assert reply.status_code == 202, reply.text
    evidence_id: str = reply.json()["evidence_ids"][0]
    wait_for_status(client, evidence_id, {"sealed"})
    return evidence_id


def _reply(notice_id: str, zone: Zone) -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    zone.txt[f"k1._domainkey.{PLATFORM}"] = f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode()}"
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    body = (f"From: ip@{PLATFORM}\r\nTo: notices@operator.example\r\nSubject: Re: [{notice_id}]\r\n"
            f"Date: {format_datetime(datetime.now(UTC))}\r\n\r\nRemoved.\r\n").encode()
    return dkim.sign(body, b"k1", PLATFORM.encode(), pem) + body


def test_notice_flow_and_tenant_isolation(service: Server, loopback: tuple[Mailbox, Zone]) -> None:
    mailbox, zone = loopback
    a = service.new_tenant()
    b = service.new_tenant()
    client_a, client_b = service.client(a["api_key"]), service.client(b["api_key"])
    proof = _sealed_upload(client_a, "registration.pdf", b"%PDF-1.4 registration")
    listing = _sealed_upload(client_a, "listing.png", b"\x89PNG listing" * 20)
    body = {"owner_name": "Owner Co", "owner_identifier": "91310000MA1FL0XX1X", "owner_email": "legal@owner.example",
            "right_proofs": [proof], "infringing": [{"evidence_id": listing, "url": "https://shop.example/item/9"}],
            "grounds": "unlicensed photographs", "guarantee_given": True, "recipient": f"ip@{PLATFORM}"}

    # Tenant B may not cite tenant A's evidence.
    stolen = client_b.post("/v1/notices", json=body)
    assert stolen.status_code == 422 and stolen.json()["error"]["code"] == "unknown_evidence"

    incomplete = client_a.post("/v1/notices", json={**body, "grounds": "", "guarantee_given": False})
    assert incomplete.status_code == 201
    refused = client_a.post(f"/v1/notices/{incomplete.json()['notice_id']}/send", json={})
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "incomplete_notice"
    missing = {d["rule_set"]: d["missing"] for d in refused.json()["error"]["details"]}
    assert missing["spc-2014-art5"] == ["grounds"] and missing["ip-guideline-art5"] == ["authenticity_guarantee"]

    # A matter of tenant B cannot be named; tenant A's own files the notice and its reply.
    matter_b = client_b.post("/v1/matters", json={"title": "B's case"}).json()["id"]
    assert client_a.post("/v1/notices", json={**body, "matter": matter_b}).status_code == 404
    matter = client_a.post("/v1/matters", json={"title": "Owner Co v. Shop 9"}).json()["id"]
    body["matter"] = matter
    drafted = client_a.post("/v1/notices", json=body)
    assert drafted.status_code == 201 and all(r["complete"] for r in drafted.json()["completeness"])
    notice_id = drafted.json()["notice_id"]
    before = len(mailbox.received)
    assert client_b.post(f"/v1/notices/{notice_id}/send", json={}).status_code == 404
    assert len(mailbox.received) == before

    sent = client_a.post(f"/v1/notices/{notice_id}/send", json={})
    assert sent.status_code == 202, sent.text
    assert sent.json()["queue_id"] == QUEUE_ID and len(mailbox.received) == before + 1
    sealed = wait_for_status(client_a, sent.json()["evidence_id"], {"sealed"})
    assert sealed["kind"] == "notice"

    eml = _reply(notice_id, zone)
    headers = {"Content-Type": "message/rfc822"}
    assert client_b.post(f"/v1/notices/{notice_id}/replies", content=eml, headers=headers).status_code == 404
    imported = client_a.post(f"/v1/notices/{notice_id}/replies", content=eml, headers=headers)
    assert imported.status_code == 202, imported.text
    assert imported.json()["dkim_status"] == "pass" and imported.json()["dkim_domain"] == PLATFORM

    wait_for_status(client_a, imported.json()["evidence_id"], {"sealed"})
    report = client_a.get(f"/v1/evidence/{imported.json()['evidence_id']}/report")
    assert report.status_code == 200
    n1 = next(c for c in report.json()["checks"] if c["id"] == "N1")
    assert n1["status"] == "pass", n1

    filed = client_a.get(f"/v1/matters/{matter}").json()["evidence"]
    assert set(filed) == {sent.json()["evidence_id"], imported.json()["evidence_id"]}
    assert client_b.get(f"/v1/notices/{notice_id}").status_code == 404
    assert client_b.post(f"/v1/notices/{notice_id}/withdraw", json={"reason": "x"}).status_code == 404
    withdrawn = client_a.post(f"/v1/notices/{notice_id}/withdraw", json={"reason": "settled"})
    assert withdrawn.status_code == 202 and withdrawn.json()["previous"] == sent.json()["fingerprint"]
    shown = client_a.get(f"/v1/notices/{notice_id}").json()
    assert [v["action"] for v in shown["versions"]] == ["notice", "withdrawal"] and len(shown["replies"]) == 1
