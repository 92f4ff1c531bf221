"""Send one message by SMTP and keep the transcript: what the server said, and what we said to it.

The transcript is evidence of delivery: the server's banner, its EHLO answers (before and after
STARTTLS), the TLS version, cipher and the sha256 of the certificate the server showed, every command
and reply, and the ``250`` that accepted the message, with the queue id the server gave it. The
message body itself is recorded by size and sha256 (the sealed package holds the bytes); AUTH
exchanges are recorded as redacted.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import smtplib
import ssl
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from evidence.notices.dns_lookup import Nameserver, mail_servers
from evidence.notices.model import NoticeError

StartTls = Literal["auto", "require", "off"]
DEFAULT_TIMEOUT_SECONDS = 30.0
#: "250 2.0.0 Ok: queued as 4XyZ" (Postfix), "250 OK id=1abc" (Exim), "250 ... <queue id>" otherwise.
QUEUE_ID = re.compile(r"(?:queued as|id=)\s*([A-Za-z0-9._@<>-]+)", re.IGNORECASE)


class SendError(NoticeError):
    """The server did not accept the message; ``transcript`` says where it stopped."""

    def __init__(self, message: str, transcript: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.transcript = transcript


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int = 25
    starttls: StartTls = "auto"
    username: str = ""
    password: str = field(default="", repr=False)
    #: PEM file of CA certificates to trust instead of the system's (a private relay).
    ca_file: Path | None = None
    helo_name: str | None = None
    timeout: float = DEFAULT_TIMEOUT_SECONDS
    #: The name STARTTLS verifies the certificate against, when ``host`` is an address (a recipient's
    #: MX, reached at the address our resolver gave for it).
    server_name: str | None = None


@dataclass(frozen=True)
class Delivery:
    """What the server answered: the transcript, and the facts drawn from it."""

    transcript: list[dict[str, Any]]
    banner: str
    accepted: str
    queue_id: str | None
    tls: dict[str, Any] | None
    server: str
    address: str = ""
    #: How the message went: ``relay`` (the configured server) or ``mx`` (the recipient's own mail server).
    route: str = "relay"
    #: For ``mx``: the MX answer as fetched, and the servers tried before the one that accepted.
    mx: dict[str, Any] | None = None

    def summary(self) -> dict[str, Any]:
        return {"server": self.server, "address": self.address, "route": self.route, "banner": self.banner,
                "accepted_reply": self.accepted, "queue_id": self.queue_id, "tls": self.tls, "mx": self.mx}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class _RecordingSMTP(smtplib.SMTP):
    """smtplib's client, with every line in and out written to ``transcript``."""

    #: smtplib's own (undeclared in its stubs): the name STARTTLS sends as SNI and verifies the certificate for.
    _host: str

    def __init__(self, transcript: list[dict[str, Any]], **kwargs: Any) -> None:
        self.transcript = transcript
        self._body_next = False
        self._secret_next = False
        super().__init__(**kwargs)

    def send(self, s: bytes | str) -> None:  # type: ignore[override]
        data = s.encode("ascii") if isinstance(s, str) else s
        entry: dict[str, Any] = {"at": _now(), "from": "client"}
        if self._body_next:
            entry["data"] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                             "note": "the message, dot-stuffed and terminated; the package holds its bytes"}
            self._body_next = False
        elif data[:4].upper() == b"AUTH":
            entry["line"] = " ".join(data.decode("ascii", "replace").split()[:2]) + " … (redacted)"
            self._secret_next = True  # each answer to the server's 334 challenges is a credential too
        elif self._secret_next:
            entry["line"] = "(credential redacted)"
        else:
            entry["line"] = data.decode("ascii", "replace").rstrip("\r\n")
        self.transcript.append(entry)
        super().send(s)

    def getreply(self) -> tuple[int, bytes]:
        code, text = super().getreply()
        self.transcript.append({"at": _now(), "from": "server", "code": code,
                                "text": text.decode("utf-8", "replace")})
        self._body_next = code == 354
        self._secret_next = self._secret_next and code == 334
        return code, text


def _tls_facts(sock: Any) -> dict[str, Any]:
    cert = sock.getpeercert(binary_form=True) or b""
    name, _version, bits = sock.cipher() or ("", "", 0)
    return {"version": sock.version(), "cipher": name, "cipher_bits": bits,
            "peer_certificate_sha256": hashlib.sha256(cert).hexdigest() if cert else None}


def send_message(config: SmtpConfig, message: bytes, *, sender: str, to: str) -> Delivery:
    """Send ``message`` (RFC 5322 bytes, CRLF) from ``sender`` to ``to``; return the delivery record.

    STARTTLS is used when the server offers it (``auto``), demanded (``require``: a server without it
    is refused before any mail command) or skipped (``off``). Raises SendError when the server refuses.
    """
    transcript: list[dict[str, Any]] = []
    started = time.monotonic()
    tls: dict[str, Any] | None = None
    client: _RecordingSMTP | None = None
    try:
        # Connecting in the constructor lets smtplib know the host name STARTTLS must verify.
        client = _RecordingSMTP(transcript, host=config.host, port=config.port, local_hostname=config.helo_name,
                                timeout=config.timeout)
        if config.server_name:
            # smtplib verifies STARTTLS against the host it connected to; an MX is named, not addressed.
            client._host = config.server_name
        banner = transcript[0]["text"]
        client.ehlo()
        if config.starttls != "off" and client.has_extn("starttls"):
            context = ssl.create_default_context(cafile=str(config.ca_file) if config.ca_file else None)
            client.starttls(context=context)
            tls = _tls_facts(client.sock)
            transcript.append({"at": _now(), "from": "tls", **tls})
            client.ehlo()
        elif config.starttls == "require":
            raise SendError(f"{config.host}:{config.port} does not offer STARTTLS, and TLS is required", transcript)
        if config.username:
            client.login(config.username, config.password)
        refused = client.sendmail(sender, [to], message)
        if refused:
            raise SendError(f"the server refused {', '.join(refused)}", transcript)
        accepted = next(e for e in reversed(transcript) if e["from"] == "server" and e["code"] == 250)
        client.quit()
    except (smtplib.SMTPException, OSError) as exc:
        raise SendError(f"sending to {config.host}:{config.port} failed: {exc}", transcript) from exc
    finally:
        if client is not None:
            client.close()
    transcript.append({"at": _now(), "from": "client", "note": f"session took {time.monotonic() - started:.3f} s"})
    found = QUEUE_ID.search(accepted["text"])
    return Delivery(transcript=transcript, banner=banner,
                    accepted=f"{accepted['code']} {accepted['text']}", queue_id=found.group(1) if found else None,
                    tls=tls, server=f"{config.server_name or config.host}:{config.port}",
                    address=f"{config.host}:{config.port}")


#: ``TIEZHENG_SMTP_HOST=mx``: deliver to the recipient's own mail server, found by its MX records.
DIRECT = "mx"


def deliver_direct(config: SmtpConfig, message: bytes, *, sender: str, to: str,
                   nameserver: Nameserver | None) -> Delivery:
    """Deliver straight to the recipient domain's mail servers, in MX preference order, so the sealed
    ``250`` is the platform's own server accepting the notice (through a relay it would be the relay's).

    A server that cannot be reached, or answers with a temporary (4xx) refusal, passes to the next; a
    permanent refusal (5xx) ends the attempt. Raises SendError naming every server tried.
    """
    servers, answer = mail_servers(to.rpartition("@")[2].strip().rstrip(">").lower(), nameserver)
    tried: list[dict[str, Any]] = []
    for server in servers:
        for address in server.addresses:
            attempt = dataclasses.replace(config, host=address, server_name=server.name)
            try:
                delivery = send_message(attempt, message, sender=sender, to=to)
            except SendError as exc:
                tried.append({"server": server.name, "address": address, "error": str(exc)})
                permanent = [e for e in exc.transcript if e.get("from") == "server" and 500 <= e.get("code", 0) < 600]
                if permanent:
                    raise SendError(f"{server.name} refused the notice permanently: {exc}", exc.transcript) from exc
                continue
            return dataclasses.replace(delivery, route=DIRECT, mx={**answer, "tried_before": tried})
    raise SendError("no mail server of the recipient accepted the notice: "
                    + ("; ".join(f"{t['server']} ({t['address']}): {t['error']}" for t in tried)
                       or f"{answer.get('name')} has no reachable mail server"), [])
