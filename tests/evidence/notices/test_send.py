from __future__ import annotations

import base64
import email
import email.policy
import json
import zipfile
from pathlib import Path

import dkim
import pytest

from evidence.notices.gate import IncompleteNotice
from evidence.notices.message import load_or_create_dkim_key
from evidence.notices.model import Notice
from evidence.notices.send import send_notice
from evidence.notices.smtp_send import SendError, SmtpConfig
from evidence.operator_key import load_or_create
from tests.evidence.notices.conftest import complete_notice
from tests.evidence.notices.servers import QUEUE_ID, smtp_server
from verifier.package import Requester, open_package

SENDER = "notices@operator.example"
TO = "ip-complaints@platform.example"
REQUESTER = Requester(tenant="owner-co", identity="counsel@owner.example")


def _send(tmp_path: Path, notice: Notice, smtp: SmtpConfig):
    key = load_or_create_dkim_key(tmp_path / "dkim", domain="operator.example", selector="tz1")
    operator = load_or_create(tmp_path / "operator.pem")
    (tmp_path / "packages").mkdir(exist_ok=True)
    return key, send_notice(notice, to=TO, sender=SENDER, smtp=smtp, dkim_key=key,
                            packages_dir=tmp_path / "packages", operator=operator, requester=REQUESTER)


@pytest.mark.parametrize("starttls", [False, True], ids=["plain", "starttls"])
def test_the_sealed_message_is_the_message_the_server_accepted(tmp_path: Path, notice: Notice,
                                                               starttls: bool) -> None:
    with smtp_server(tmp_path, starttls=starttls) as mailbox:
        smtp = SmtpConfig("127.0.0.1", mailbox.port, starttls="require" if starttls else "auto",
                          ca_file=mailbox.cert)
        key, sent = _send(tmp_path, notice, smtp)
    (received,) = mailbox.received
    assert received["to"] == [TO] and received["tls"] is starttls
    with zipfile.ZipFile(sent.built.path) as package:
        sealed = package.read("evidence/message.eml")
        transcript = json.loads(package.read("evidence/smtp-transcript.json"))
    assert sealed == sent.message
    assert received["content"].rstrip(b"\r\n") == sealed.rstrip(b"\r\n")
    # DKIM holds over the bytes as sealed, with the key the operator publishes.
    record = key.dns_record().split('"')[1].encode()
    assert dkim.verify(sealed, dnsfunc=lambda name, timeout=5: record)
    assert sent.delivery.queue_id == QUEUE_ID
    assert sent.delivery.banner and transcript[0]["from"] == "server" and transcript[0]["code"] == 220
    assert any(e.get("line", "").upper().startswith("RCPT TO:<" + TO.upper()) for e in transcript)
    data = next(e["data"] for e in transcript if "data" in e)
    assert data["size"] >= len(sealed)
    if starttls:
        assert sent.delivery.tls["version"].startswith("TLSv1.")
        assert len(sent.delivery.tls["peer_certificate_sha256"]) == 64
    else:
        assert sent.delivery.tls is None
    manifest = open_package(sent.built.path).manifest
    assert manifest.kind == "notice"
    assert manifest.data["notice"]["delivery"]["queue_id"] == QUEUE_ID
    assert manifest.data["notice"]["record"]["notice_id"] == notice.notice_id
    parsed = email.message_from_bytes(sealed, policy=email.policy.SMTP)
    names = [part.get_filename() for part in parsed.iter_attachments()]
    assert names == [f"{notice.notice_id}.pdf", f"{notice.notice_id}.json"]


def test_an_incomplete_notice_is_not_sent(tmp_path: Path) -> None:
    with smtp_server(tmp_path, starttls=False) as mailbox, pytest.raises(IncompleteNotice, match="grounds"):
        _send(tmp_path, complete_notice(grounds=""), SmtpConfig("127.0.0.1", mailbox.port))
    assert mailbox.received == []
    assert list((tmp_path / "packages").iterdir()) == []


def test_required_tls_is_refused_by_a_plain_server(tmp_path: Path, notice: Notice) -> None:
    with (smtp_server(tmp_path, starttls=False) as mailbox,
          pytest.raises(SendError, match="does not offer STARTTLS") as caught):
        _send(tmp_path, notice, SmtpConfig("127.0.0.1", mailbox.port, starttls="require"))
    assert mailbox.received == [] and caught.value.transcript[0]["code"] == 220


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_credentials_never_reach_the_sealed_transcript(tmp_path: Path, notice: Notice, mechanism: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import smtplib

    # Force one mechanism: smtplib otherwise picks the first the server offers.
    monkeypatch.setattr(smtplib.SMTP, "login", _login_with(mechanism))
    with smtp_server(tmp_path, starttls=True, login=("relay-user", "s3cret-pass")) as mailbox:
        smtp = SmtpConfig("127.0.0.1", mailbox.port, starttls="require", ca_file=mailbox.cert,
                          username="relay-user", password="s3cret-pass")
        _, sent = _send(tmp_path, notice, smtp)
    with zipfile.ZipFile(sent.built.path) as package:
        transcript = package.read("evidence/smtp-transcript.json").decode()
    assert "235" in transcript and "(redacted)" in transcript
    plain = base64.b64encode(b"\0relay-user\0s3cret-pass").decode()
    for secret in ("s3cret-pass", "relay-user", "cmVsYXktdXNlcg", "czNjcmV0LXBhc3M", plain):
        assert secret not in transcript


def _login_with(mechanism: str):  # type: ignore[no-untyped-def]
    import smtplib

    original = smtplib.SMTP.login

    def login(self, user, password, *, initial_response_ok=True):  # type: ignore[no-untyped-def]
        self.user, self.password = user, password
        if mechanism == "LOGIN":
            return self.auth("LOGIN", self.auth_login, initial_response_ok=False)
        return original(self, user, password, initial_response_ok=initial_response_ok)

    return login


def test_direct_delivery_to_the_recipients_mx_in_preference_order(tmp_path: Path, notice: Notice) -> None:
    from evidence.notices.dns_lookup import Nameserver
    from tests.evidence.notices.servers import dns_server

    with (smtp_server(tmp_path, starttls=True, names=("mx2.platform.example",)) as mailbox, dns_server() as zone):
        # The preferred server is down (nothing listens on 127.0.0.2); the second accepts, over verified TLS.
        zone.mx["platform.example"] = [(20, "mx2.platform.example"), (10, "mx1.platform.example")]
        zone.a.update({"mx1.platform.example": "127.0.0.2", "mx2.platform.example": "127.0.0.1"})
        key = load_or_create_dkim_key(tmp_path / "dkim", domain="operator.example", selector="tz1")
        (tmp_path / "packages").mkdir()
        sent = send_notice(notice, to=TO, sender=SENDER, dkim_key=key, packages_dir=tmp_path / "packages",
                           smtp=SmtpConfig("mx", mailbox.port, starttls="require", ca_file=mailbox.cert),
                           operator=load_or_create(tmp_path / "operator.pem"), requester=REQUESTER,
                           nameserver=Nameserver("127.0.0.1", zone.port))
    assert len(mailbox.received) == 1 and mailbox.received[0]["tls"]
    delivery = open_package(sent.built.path).manifest.data["notice"]["delivery"]
    assert delivery["route"] == "mx" and delivery["server"] == f"mx2.platform.example:{mailbox.port}"
    assert [s["name"] for s in delivery["mx"]["servers"]] == ["mx1.platform.example", "mx2.platform.example"]
    assert delivery["mx"]["tried_before"][0]["server"] == "mx1.platform.example"
    assert delivery["queue_id"] == QUEUE_ID and delivery["tls"]["version"].startswith("TLSv1.")


def test_direct_delivery_verifies_the_mx_name(tmp_path: Path, notice: Notice) -> None:
    from evidence.notices.dns_lookup import Nameserver
    from tests.evidence.notices.servers import dns_server

    with (smtp_server(tmp_path, starttls=True) as mailbox, dns_server() as zone):  # the cert does not name the MX
        zone.mx["platform.example"] = [(10, "mx1.platform.example")]
        zone.a["mx1.platform.example"] = "127.0.0.1"
        with pytest.raises(SendError, match="no mail server of the recipient accepted"):
            key = load_or_create_dkim_key(tmp_path / "dkim", domain="operator.example", selector="tz1")
            (tmp_path / "packages").mkdir()
            send_notice(notice, to=TO, sender=SENDER, dkim_key=key, packages_dir=tmp_path / "packages",
                        smtp=SmtpConfig("mx", mailbox.port, starttls="require", ca_file=mailbox.cert),
                        operator=load_or_create(tmp_path / "operator.pem"), requester=REQUESTER,
                        nameserver=Nameserver("127.0.0.1", zone.port))
    assert mailbox.received == []
