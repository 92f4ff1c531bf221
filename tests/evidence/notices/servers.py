"""Real servers on loopback for the notice tests: aiosmtpd (with or without STARTTLS) and a DNS responder.

Nothing is mocked: the client code under test speaks SMTP and DNS over real sockets to these.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

QUEUE_ID = "4TzQ7x1Kd9z"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def self_signed_cert(folder: Path, names: tuple[str, ...] = ()) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1, localhost and ``names``, made now, and its key: (cert.pem, key.pem)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"), *map(x509.DNSName, names),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@dataclass
class Mailbox:
    port: int
    received: list[dict[str, Any]] = field(default_factory=list)
    cert: Path | None = None


class _Handler:
    def __init__(self, mailbox: Mailbox) -> None:
        self.mailbox = mailbox

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.mailbox.received.append({"from": envelope.mail_from, "to": list(envelope.rcpt_tos),
                                      "content": envelope.original_content, "tls": session.ssl is not None})
        return f"250 2.0.0 Ok: queued as {QUEUE_ID}"


@contextmanager
def smtp_server(folder: Path, *, starttls: bool, login: tuple[str, str] | None = None,
                names: tuple[str, ...] = ()) -> Iterator[Mailbox]:
    """aiosmtpd on 127.0.0.1; with ``starttls`` it offers and requires STARTTLS with a fresh certificate."""
    from aiosmtpd.controller import Controller

    mailbox = Mailbox(port=free_port())
    kwargs: dict[str, Any] = {}
    if starttls:
        cert, key = self_signed_cert(folder, names)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        kwargs = {"tls_context": context, "require_starttls": True}
        mailbox.cert = cert
    if login is not None:
        from aiosmtpd.smtp import AuthResult

        def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
            given = (data.login.decode(), data.password.decode())
            return AuthResult(success=given == login)

        kwargs.update(authenticator=authenticate, auth_required=True)
    controller = Controller(_Handler(mailbox), hostname="127.0.0.1", port=mailbox.port, **kwargs)
    controller.start()
    try:
        yield mailbox
    finally:
        controller.stop()


@dataclass
class Zone:
    """TXT records a loopback DNS server answers, by name (no trailing dot)."""

    port: int
    txt: dict[str, str] = field(default_factory=dict)
    #: MX records by domain: [(preference, exchange)]; A records by name.
    mx: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    a: dict[str, str] = field(default_factory=dict)
    queries: list[str] = field(default_factory=list)


@contextmanager
def dns_server() -> Iterator[Zone]:
    """A UDP DNS responder on 127.0.0.1 that answers TXT queries from ``Zone.txt`` and NXDOMAIN otherwise."""
    from dnslib import MX, QTYPE, RCODE, RR, TXT, A, DNSRecord

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    zone = Zone(port=sock.getsockname()[1])
    stop = threading.Event()

    def serve() -> None:
        sock.settimeout(0.1)
        while not stop.is_set():
            try:
                data, peer = sock.recvfrom(4096)
            except TimeoutError:
                continue
            query = DNSRecord.parse(data)
            name = str(query.q.qname).rstrip(".")
            zone.queries.append(name)
            answer = query.reply()
            value = zone.txt.get(name)
            if value is not None and query.q.qtype == QTYPE.TXT:
                # A long key is split into 255-byte strings, as a real zone serves it.
                chunks = [value[i:i + 255].encode() for i in range(0, len(value), 255)]
                answer.add_answer(RR(query.q.qname, QTYPE.TXT, rdata=TXT(chunks), ttl=300))
            elif name in zone.mx and query.q.qtype == QTYPE.MX:
                for preference, exchange in zone.mx[name]:
                    answer.add_answer(RR(query.q.qname, QTYPE.MX, rdata=MX(exchange, preference), ttl=300))
            elif name in zone.a and query.q.qtype == QTYPE.A:
                answer.add_answer(RR(query.q.qname, QTYPE.A, rdata=A(zone.a[name]), ttl=300))
            else:
                answer.header.rcode = RCODE.NXDOMAIN
            sock.sendto(answer.pack(), peer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield zone
    finally:
        stop.set()
        thread.join()
        sock.close()
