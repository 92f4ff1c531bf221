"""TLS toward origin servers: which roots are trusted, and what a handshake showed.

Both the raw fetch and the recorder connect to origins with these contexts, so the two views of a
site are judged by the same trust. Verification uses the host's default store plus, optionally,
extra roots (intranets, tests). A chain that does not verify is an error unless the capture allows
untrusted TLS; then the capture proceeds with an unverified connection and network.json records
``verified: false`` and why, so the verifier's S3 warns instead of passing.
"""

from __future__ import annotations

import base64
import hashlib
import ssl
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

ALPN = ["http/1.1"]


@lru_cache(maxsize=32)
def _client_context(verify: bool, extra_ca_pem: bytes | None) -> ssl.SSLContext:
    # Loading the default trust store takes tens of milliseconds; a context is safe to share.
    ctx = ssl.create_default_context()
    if extra_ca_pem:
        ctx.load_verify_locations(cadata=extra_ca_pem.decode("ascii"))
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    # The recorder speaks HTTP/1.1 upstream, so the wire bytes it keeps are HTTP/1.1 messages.
    ctx.set_alpn_protocols(ALPN)
    return ctx


@dataclass(frozen=True)
class TlsPolicy:
    allow_untrusted: bool = False
    extra_ca_pem: bytes | None = None

    def context(self, *, verify: bool) -> ssl.SSLContext:
        """A client context: verifying against the trust store, or (for allowed untrusted TLS) not."""
        return _client_context(verify, self.extra_ca_pem)

    def record(self) -> dict[str, Any]:
        extra = []
        if self.extra_ca_pem:
            for cert in x509.load_pem_x509_certificates(self.extra_ca_pem):
                extra.append({"subject": cert.subject.rfc4514_string(),
                              "sha256": hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()})
        return {"store": f"host default ({ssl.OPENSSL_VERSION})", "extra_roots": extra,
                "untrusted_allowed": self.allow_untrusted}


def describe_tls(ssl_object: ssl.SSLObject | ssl.SSLSocket | None, *, server_name: str, verified: bool,
                 verify_error: str | None) -> dict[str, Any] | None:
    """What a finished handshake showed: protocol, cipher, ALPN and the leaf certificate (DER)."""
    if ssl_object is None:
        return None
    leaf = ssl_object.getpeercert(binary_form=True) or b""
    cipher = ssl_object.cipher()
    return {"server_name": server_name, "protocol": ssl_object.version(),
            "cipher": cipher[0] if cipher else None, "cipher_bits": cipher[2] if cipher else None,
            "alpn": ssl_object.selected_alpn_protocol(),
            "leaf_der_b64": base64.b64encode(leaf).decode(), "leaf_sha256": hashlib.sha256(leaf).hexdigest(),
            "verified": verified, "verify_error": verify_error}


def verify_failure(exc: BaseException | None) -> ssl.SSLCertVerificationError | None:
    """The certificate verification error somewhere in an exception's cause chain, if any."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, ssl.SSLCertVerificationError):
            return exc
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None


def verify_message(error: ssl.SSLCertVerificationError) -> str:
    return str(error.verify_message or error.reason or error)
