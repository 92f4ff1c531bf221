"""The recorder's TLS identity toward the browser.

To keep the bytes of HTTPS traffic, the recorder terminates the browser's TLS and opens its own,
verified TLS connection to the origin. The browser must accept the recorder's certificates, and
nothing else that is not publicly trusted. So each browser launch gets one fresh EC P-256 key; every
leaf certificate the recorder shows uses that key, and Chromium is launched with
``--ignore-certificate-errors-spki-list=<sha256 of this key's SPKI>``: it accepts certificate errors
only for this one key. The key exists only for the life of that browser, in a private temporary
folder (mode 0700) that ``close`` removes; the manifest records its SPKI hash.

What the browser's own TLS view shows (``response.security_details()``) is therefore the recorder's
certificate. The origin's real certificate, protocol and cipher are what the recorder saw upstream,
and network.json records those.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import shutil
import ssl
import tempfile
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

LEAF_VALIDITY = timedelta(days=2)
#: Leaf certificates are re-issued once this old, so a browser kept warm for weeks stays valid.
LEAF_REISSUE_AFTER = timedelta(days=1)
CLOCK_SKEW = timedelta(hours=1)
MAX_CACHED_HOSTS = 2000


class InterceptionKey:
    """One key per browser launch and the per-host server contexts made with it."""

    def __init__(self) -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        self._spki = self._key.public_key().public_bytes(serialization.Encoding.DER,
                                                         serialization.PublicFormat.SubjectPublicKeyInfo)
        self._folder = Path(tempfile.mkdtemp(prefix="tiezheng-recorder-"))
        self._key_path = self._folder / "key.pem"
        self._key_path.write_bytes(self._key.private_bytes(serialization.Encoding.PEM,
                                                           serialization.PrivateFormat.PKCS8,
                                                           serialization.NoEncryption()))
        self._key_path.chmod(0o600)
        self._contexts: dict[str, tuple[datetime, ssl.SSLContext]] = {}
        self._lock = threading.Lock()

    @property
    def spki_pin(self) -> str:
        """base64(sha256(SPKI)): the value Chromium's --ignore-certificate-errors-spki-list takes."""
        return base64.b64encode(hashlib.sha256(self._spki).digest()).decode()

    def record(self) -> dict[str, Any]:
        return {"key": "EC P-256, one per browser launch, kept in a private temporary folder and deleted "
                       "when the browser closes",
                "spki_sha256": hashlib.sha256(self._spki).hexdigest(),
                "browser_trust": "--ignore-certificate-errors-spki-list with this key's SPKI only"}

    def _certificate(self, host: str, now: datetime) -> bytes:
        try:
            san: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
        except ValueError:
            san = x509.DNSName(host)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host[:64]),
                          x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Tiezheng capture recorder")])
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(self._key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - CLOCK_SKEW).not_valid_after(now + LEAF_VALIDITY)
                .add_extension(x509.SubjectAlternativeName([san]), critical=False)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                .sign(self._key, hashes.SHA256()))
        return cert.public_bytes(serialization.Encoding.PEM)

    def server_context(self, host: str) -> ssl.SSLContext:
        """The TLS server context the recorder uses toward the browser for ``host``."""
        host = host.lower().strip("[]")
        now = datetime.now(UTC)
        with self._lock:
            cached = self._contexts.get(host)
            if cached is not None and now - cached[0] < LEAF_REISSUE_AFTER:
                return cached[1]
            if len(self._contexts) >= MAX_CACHED_HOSTS:
                self._contexts.clear()
            # ssl can load a certificate only from a file; the folder is private and short-lived.
            cert_path = self._folder / f"leaf-{hashlib.sha256(host.encode()).hexdigest()[:24]}.pem"
            cert_path.write_bytes(self._certificate(host, now))
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(cert_path, self._key_path)
            ctx.set_alpn_protocols(["http/1.1"])
            self._contexts[host] = (now, ctx)
            return ctx

    def close(self) -> None:
        shutil.rmtree(self._folder, ignore_errors=True)
