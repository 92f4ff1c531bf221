"""Send, reply, import and verify: real SMTP and DNS servers on loopback, real sealing, N1 and N2."""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from evidence.notices.message import load_or_create_dkim_key
from evidence.notices.reply import Nameserver, import_reply
from evidence.notices.send import send_notice
from evidence.notices.smtp_send import SmtpConfig
from tests.evidence.notices.conftest import complete_notice
from tests.evidence.notices.servers import dns_server, smtp_server
from tests.factory import Workspace, seal_batch
from tests.tamper import replace_sealed_entry
from verifier.trust import load_trust
from verifier.verdict import Status
from verifier.verify import verify_package

PLATFORM = "platform.example"
SELECTOR = "s2026"
REQUESTER_TO = "ip@platform.example"


def _platform_key() -> tuple[bytes, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem, f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode()}"


def _reply(pem: bytes, notice_id: str, *, sender: str = f"IP Team <ip@{PLATFORM}>",
           headers: list[bytes] | None = None) -> bytes:
    body = (f"From: {sender}\r\nTo: notices@operator.example\r\n"
            f"Subject: Re: notice [{notice_id}]\r\nDate: {format_datetime(datetime.now(UTC))}\r\n"
            f"Message-ID: <reply-1@{PLATFORM}>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "\r\n已删除相关商品链接。We removed the listing on 2 Dec 2026.\r\n").encode()
    return dkim.sign(body, SELECTOR.encode(), PLATFORM.encode(), pem, canonicalize=(b"relaxed", b"simple"),
                     include_headers=headers) + body


def _checks(report) -> dict[str, tuple[Status, str]]:  # type: ignore[no-untyped-def]
    return {c.id: (c.status, c.reason) for c in report.checks}


@pytest.fixture
def dossier(workspace: Workspace, tmp_path: Path, rpc_url: str):  # type: ignore[no-untyped-def]
    """A notice sent over loopback SMTP and a signed reply imported against loopback DNS, both sealed."""
    notice = complete_notice()
    dkim_key = load_or_create_dkim_key(tmp_path / "dkim", domain="operator.example", selector="tz")
    requester = _requester()
    with smtp_server(tmp_path, starttls=False) as mailbox:
        sent = send_notice(notice, to=REQUESTER_TO, sender="notices@operator.example",
                           smtp=SmtpConfig("127.0.0.1", mailbox.port), dkim_key=dkim_key,
                           packages_dir=workspace.packages, operator=workspace.operator, requester=requester)
    pem, record = _platform_key()
    eml = _reply(pem, notice.notice_id)
    with dns_server() as zone:
        zone.txt[f"{SELECTOR}._domainkey.{PLATFORM}"] = record
        reply, checked = import_reply(eml, notice_id=notice.notice_id, notice_fingerprint=sent.built.fingerprint.hex(),
                                      nameserver=Nameserver("127.0.0.1", zone.port), packages_dir=workspace.packages,
                                      operator=workspace.operator, requester=requester)
        assert zone.queries == [f"{SELECTOR}._domainkey.{PLATFORM}"]
    assert checked.result["status"] == "pass" and checked.result["domain"] == PLATFORM
    assert checked.dns_record["value"] == record and checked.dns_record["resolver"] == f"127.0.0.1:{zone.port}"
    seal_batch(workspace, [sent.built, reply], rpc_url)
    return {"sent": sent, "reply": reply, "pem": pem, "record": record, "requester": requester,
            "trust": load_trust(workspace.trust_file())}


def test_notice_and_reply_verify_with_n2_and_n1(dossier) -> None:  # type: ignore[no-untyped-def]
    notice_report = verify_package(dossier["sent"].built.path, dossier["trust"])
    checks = _checks(notice_report)
    assert notice_report.verified, checks
    assert checks["N2"][0] is Status.PASS and "E-Commerce Law" in checks["N2"][1]
    assert "accepted it without TLS: 250 2.0.0 Ok: queued as" in checks["N2"][1]
    assert "N1" not in checks and checks["S3"][0] is Status.SKIP
    assert notice_report.facts["notice"]["rule_sets"][0]["complete"]
    reply_report = verify_package(dossier["reply"].path, dossier["trust"])
    checks = _checks(reply_report)
    assert reply_report.verified, checks
    assert checks["N1"][0] is Status.PASS and f"DKIM pass for {PLATFORM}" in checks["N1"][1]
    assert "N2" not in checks
    n1 = next(c for c in reply_report.checks if c.id == "N1")
    assert PLATFORM in n1.reason_zh and "第九十三条" in n1.to_json()["basis_zh"]


def test_a_reply_changed_after_sealing_fails_h1_and_n1(dossier, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tampered = replace_sealed_entry(dossier["reply"].path, tmp_path / "tampered.wacz", "evidence/reply.eml",
                                    lambda data: data.replace(b"Subject: Re:", b"Subject: RE:", 1))
    checks = _checks(verify_package(tampered, dossier["trust"]))
    assert checks["H1"][0] is Status.FAIL
    assert checks["N1"][0] is Status.FAIL and "does not verify" in checks["N1"][1]


def test_a_reply_changed_before_import_is_sealed_but_fails_n1(workspace: Workspace, tmp_path: Path,
                                                              rpc_url: str) -> None:
    pem, record = _platform_key()
    eml = _reply(pem, "nt-x").replace(b"Subject: Re:", b"Subject: RE:", 1)  # one header byte
    with dns_server() as zone:
        zone.txt[f"{SELECTOR}._domainkey.{PLATFORM}"] = record
        reply, checked = import_reply(eml, notice_id="nt-x", notice_fingerprint="0" * 64,
                                      nameserver=Nameserver("127.0.0.1", zone.port), packages_dir=workspace.packages,
                                      operator=workspace.operator, requester=_requester())
    assert checked.result["status"] == "fail"
    seal_batch(workspace, [reply], rpc_url)
    report = verify_package(reply.path, load_trust(workspace.trust_file()))
    checks = _checks(report)
    assert checks["H1"][0] is Status.PASS and checks["N1"][0] is Status.FAIL
    assert "signed headers" in checks["N1"][1] and not report.verified


def test_an_unsigned_reply_and_a_missing_key_record(workspace: Workspace, rpc_url: str) -> None:
    unsigned = b"From: MAILER-DAEMON@mx.platform.example\r\nSubject: Delivery Status\r\n\r\ndelivered\r\n"
    pem, _ = _platform_key()
    with dns_server() as zone:  # serves nothing: the key record is NXDOMAIN
        first, _ = import_reply(unsigned, notice_id="nt-x", notice_fingerprint="0" * 64,
                                nameserver=Nameserver("127.0.0.1", zone.port), packages_dir=workspace.packages,
                                operator=workspace.operator, requester=_requester())
        second, checked = import_reply(_reply(pem, "nt-x"), notice_id="nt-x", notice_fingerprint="0" * 64,
                                       nameserver=Nameserver("127.0.0.1", zone.port),
                                       packages_dir=workspace.packages, operator=workspace.operator,
                                       requester=_requester())
    assert checked.dns_record["error"] == "NXDOMAIN"
    seal_batch(workspace, [first, second], rpc_url)
    trust = load_trust(workspace.trust_file())
    unsigned_checks = _checks(verify_package(first.path, trust))
    assert unsigned_checks["N1"][0] is Status.WARN and "no DKIM signature" in unsigned_checks["N1"][1]
    missing = _checks(verify_package(second.path, trust))
    assert missing["N1"][0] is Status.FAIL and "no key record was found" in missing["N1"][1]


def test_a_signer_other_than_the_senders_domain_warns(workspace: Workspace, rpc_url: str) -> None:
    pem, record = _platform_key()
    with dns_server() as zone:
        zone.txt[f"{SELECTOR}._domainkey.{PLATFORM}"] = record
        reply, _ = import_reply(_reply(pem, "nt-x", sender="someone@elsewhere.example"), notice_id="nt-x",
                                notice_fingerprint="0" * 64, nameserver=Nameserver("127.0.0.1", zone.port),
                                packages_dir=workspace.packages, operator=workspace.operator,
                                requester=_requester())
    seal_batch(workspace, [reply], rpc_url)
    checks = _checks(verify_package(reply.path, load_trust(workspace.trust_file())))
    assert checks["N1"][0] is Status.WARN and "elsewhere.example" in checks["N1"][1]


def _requester():  # type: ignore[no-untyped-def]
    from verifier.package import Requester

    return Requester(tenant="owner-co", identity="counsel@owner.example")


def _notice_package(workspace: Workspace, tmp_path: Path, *, sent, record):  # type: ignore[no-untyped-def]
    from evidence.notices.gate import completeness
    from evidence.notices.message import signed_message
    from evidence.notices.packaging import build_notice_package
    from evidence.notices.pdf import render_notice_pdf

    key = load_or_create_dkim_key(tmp_path / "dkim", domain="operator.example", selector="tz")
    pdf = render_notice_pdf(sent, completeness(sent))
    message = signed_message(sent, pdf, sender="n@operator.example", to=REQUESTER_TO, key=key,
                             now=datetime.now(UTC))
    # What an SMTP session records (tests/evidence/notices/test_send.py makes real ones).
    wire = re.sub(rb"(?m)^\.", b"..", message) + b".\r\n"
    transcript = [{"from": "server", "code": 220, "text": "mx ready"},
                  {"from": "client", "data": {"size": len(wire), "sha256": hashlib.sha256(wire).hexdigest()}},
                  {"from": "server", "code": 250, "text": "2.0.0 Ok: queued as Q1"}]
    return build_notice_package(message=message, pdf=pdf, record=record.to_json(),
                                completeness=[r.to_json() for r in completeness(record)],
                                delivery={"server": "127.0.0.1:25"}, transcript=transcript, recipient=REQUESTER_TO,
                                sent_at=datetime.now(UTC), packages_dir=workspace.packages,
                                operator=workspace.operator, requester=_requester())


def test_n2_warns_on_an_incomplete_notice_and_fails_on_a_record_that_was_not_sent(
        workspace: Workspace, tmp_path: Path, rpc_url: str) -> None:
    incomplete = complete_notice(grounds="", guarantee_given=False)
    honest = _notice_package(workspace, tmp_path, sent=incomplete, record=incomplete)
    # The manifest claims a complete notice; the message that went out carried the incomplete one.
    forged = _notice_package(workspace, tmp_path, sent=incomplete, record=complete_notice())
    seal_batch(workspace, [honest, forged], rpc_url)
    trust = load_trust(workspace.trust_file())
    report = verify_package(honest.path, trust)
    n2 = next(c for c in report.checks if c.id == "N2")
    assert n2.status is Status.WARN and report.verified
    assert "missing the grounds for the measures requested" in n2.reason
    assert "a written guarantee that the notice is true" in n2.reason and "要件" in n2.reason_zh
    checks = _checks(verify_package(forged.path, trust))
    assert checks["N2"][0] is Status.FAIL and "not the record the sent message carried" in checks["N2"][1]


def test_a_second_from_field_fails_n1(workspace: Workspace, rpc_url: str) -> None:
    pem, record = _platform_key()
    # Prepended above the signature: the signed From is the bottom one, the one a reader sees is this.
    # (dkimpy oversigns From by default, which already breaks the signature; this signer did not.)
    eml = b"From: ceo@owner.example\r\n" + _reply(pem, "nt-x", headers=[b"from", b"to", b"subject", b"date"])
    with dns_server() as zone:
        zone.txt[f"{SELECTOR}._domainkey.{PLATFORM}"] = record
        reply, _ = import_reply(eml, notice_id="nt-x", notice_fingerprint="0" * 64,
                                nameserver=Nameserver("127.0.0.1", zone.port), packages_dir=workspace.packages,
                                operator=workspace.operator, requester=_requester())
    seal_batch(workspace, [reply], rpc_url)
    checks = _checks(verify_package(reply.path, load_trust(workspace.trust_file())))
    assert checks["N1"][0] is Status.FAIL and "2 From fields" in checks["N1"][1]


def test_n2_fails_when_the_transcript_does_not_carry_the_sealed_message(dossier, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tampered = replace_sealed_entry(dossier["sent"].built.path, tmp_path / "t.wacz", "evidence/smtp-transcript.json",
                                    lambda data: data.replace(b'"sha256": "', b'"sha256": "0', 1)[:-1] + b"\n")
    checks = _checks(verify_package(tampered, dossier["trust"]))
    assert checks["N2"][0] is Status.FAIL and "not the sealed message" in checks["N2"][1]


def test_n1_counts_a_testing_key_as_unsigned_and_fails_a_signature_expired_when_fetched(
        workspace: Workspace, rpc_url: str) -> None:
    from tests.verifier.test_dkim import forge

    pem, record = _platform_key()
    now = int(datetime.now(UTC).timestamp())
    fresh = forge(_reply(pem, "nt-x", headers=[b"from"]), pem=pem, extra=f" t={now - 60};")
    expired = forge(_reply(pem, "nt-x", headers=[b"from"]), pem=pem, extra=f" t={now - 7200}; x={now - 3600};")
    built = []
    with dns_server() as zone:
        for eml, key_record in ((fresh, record + "; t=y"), (expired, record)):
            zone.txt[f"s1._domainkey.{PLATFORM}"] = key_record
            reply, _ = import_reply(eml, notice_id="nt-x", notice_fingerprint="0" * 64,
                                    nameserver=Nameserver("127.0.0.1", zone.port), packages_dir=workspace.packages,
                                    operator=workspace.operator, requester=_requester())
            built.append(reply)
    seal_batch(workspace, built, rpc_url)
    trust = load_trust(workspace.trust_file())
    testing = _checks(verify_package(built[0].path, trust))
    assert testing["N1"][0] is Status.WARN and "testing mode (t=y)" in testing["N1"][1]
    late = _checks(verify_package(built[1].path, trust))
    assert late["N1"][0] is Status.FAIL and "had expired" in late["N1"][1]
