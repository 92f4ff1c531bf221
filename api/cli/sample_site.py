"""The demo's local web site: a folder served on loopback over HTTP and over HTTPS.

HTTPS uses a CA of its own, made once in the data dir, with a leaf for 127.0.0.1 and localhost. The
capture is told to trust that CA (and only for this capture), so the demo shows S3 passing on a
verified TLS chain rather than a warning about an untrusted one.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import ipaddress
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

LOOPBACK = "127.0.0.1"
CERT_DAYS = 365


@dataclass(frozen=True)
class ServedSite:
    http_url: str
    https_url: str
    ca_pem: bytes


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def _certificate(name: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name | None,
                 signer: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    now = datetime.now(UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    is_ca = issuer is None
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer or subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=CERT_DAYS))
               .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True))
    if not is_ca:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(LOOPBACK))]), critical=False)
    return builder.sign(signer, hashes.SHA256())


def _tls_material(folder: Path) -> tuple[bytes, Path, Path]:
    """The demo CA (PEM) and the leaf's cert and key files, made on first use."""
    ca_path, cert_path, key_path = folder / "ca.pem", folder / "site.pem", folder / "site.key"
    if not (ca_path.exists() and cert_path.exists() and key_path.exists()):
        folder.mkdir(parents=True, exist_ok=True)
        ca_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
        ca = _certificate("Tiezheng demo site CA", ca_key, None, ca_key)
        leaf = _certificate(LOOPBACK, leaf_key, ca.subject, ca_key)
        key_path.touch(mode=0o600)
        key_path.write_bytes(leaf_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption()))
        cert_path.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
        ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    return ca_path.read_bytes(), cert_path, key_path


@contextlib.contextmanager
def serve_site(folder: Path, tls_dir: Path) -> Iterator[ServedSite]:
    """Serve ``folder`` on two free loopback ports, HTTP and HTTPS, until the block ends."""
    ca_pem, cert_path, key_path = _tls_material(tls_dir)
    handler = functools.partial(_QuietHandler, directory=str(folder))
    plain = http.server.ThreadingHTTPServer((LOOPBACK, 0), handler)
    secure = http.server.ThreadingHTTPServer((LOOPBACK, 0), handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    secure.socket = context.wrap_socket(secure.socket, server_side=True)
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in (plain, secure)]
    for thread in threads:
        thread.start()
    try:
        yield ServedSite(http_url=f"http://{LOOPBACK}:{plain.server_port}/",
                         https_url=f"https://{LOOPBACK}:{secure.server_port}/", ca_pem=ca_pem)
    finally:
        for server in (plain, secure):
            server.shutdown()
            server.server_close()
