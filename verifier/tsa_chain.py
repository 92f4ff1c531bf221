"""Certificates for RFC 3161: reading certificate files and building a TSA's chain to a trusted root.

Boundary: part of timestamp verification. A change here can make an untrusted TSA trusted.
The chain walk is our own because cryptography's verifier is built for TLS server certificates,
and rfc3161-client treats the intermediates it is given as trusted.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

from verifier.errors import InvalidInput, TimestampError

#: Certificate files (``tsa-<n>.pem``, trust roots) hold a chain, not a CA bundle dump.
MAX_CERT_FILE_BYTES = 1 << 20
MAX_CERTIFICATES = 64
#: Certificates in a chain, signer and root included.
MAX_CHAIN_DEPTH = 8
#: Signature checks one chain search may spend: look-alike certificates in a bag could otherwise make
#: the depth-first search exponential.
MAX_CHAIN_STEPS = 256

_ANY_EKU = x509.ObjectIdentifier("2.5.29.37.0")


def load_certificates(data: bytes) -> list[x509.Certificate]:
    """Return the certificates in PEM (one or many) or DER (one, or several concatenated) data.

    Raises InvalidInput when there are none, too many, or the data is no certificate.
    """
    if len(data) > MAX_CERT_FILE_BYTES:
        raise InvalidInput(f"certificate file of {len(data)} bytes exceeds {MAX_CERT_FILE_BYTES}")
    try:
        if b"-----BEGIN" in data:
            certs = x509.load_pem_x509_certificates(data)
        else:
            certs = [x509.load_der_x509_certificate(der) for der in _split_der(data)]
    except ValueError as e:
        raise InvalidInput(f"not a certificate (PEM or DER): {e}") from None
    if not certs:
        raise InvalidInput("no certificate found")
    if len(certs) > MAX_CERTIFICATES:
        raise InvalidInput(f"{len(certs)} certificates exceed {MAX_CERTIFICATES}")
    return certs


def _split_der(data: bytes) -> list[bytes]:
    # Some tools write a chain as DER certificates back to back; split on each SEQUENCE header.
    parts = []
    while data:
        if len(data) < 2 or data[0] != 0x30:
            raise ValueError("not a DER SEQUENCE")
        size, offset = data[1], 2
        if size & 0x80:
            count = size & 0x7F
            if not 0 < count <= 4 or len(data) < 2 + count:
                raise ValueError("bad DER length")
            size, offset = int.from_bytes(data[2:2 + count], "big"), 2 + count
        if len(data) < offset + size:
            raise ValueError("truncated DER")
        parts.append(data[:offset + size])
        data = data[offset + size:]
        if len(parts) > MAX_CERTIFICATES:
            raise ValueError(f"more than {MAX_CERTIFICATES} certificates")
    return parts


def check_valid_at(cert: x509.Certificate, at: datetime, what: str) -> None:
    if not cert.not_valid_before_utc <= at <= cert.not_valid_after_utc:
        raise TimestampError(
            f"{what} {cert.subject.rfc4514_string()} is not valid at {at.isoformat()} "
            f"(valid {cert.not_valid_before_utc.isoformat()} to {cert.not_valid_after_utc.isoformat()})")
    for ext in cert.extensions:
        # An extension we cannot read may restrict the certificate in ways we would miss.
        if ext.critical and isinstance(ext.value, x509.UnrecognizedExtension):
            raise TimestampError(f"{what} {cert.subject.rfc4514_string()} has unknown critical "
                                 f"extension {ext.oid.dotted_string}")


def issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def check_issuer(issuer: x509.Certificate, below: int, at: datetime, anchor: bool) -> None:
    """Raise TimestampError unless ``issuer`` may sign certificates with ``below`` CAs under it."""
    check_valid_at(issuer, at, "trusted root" if anchor else "intermediate")
    name = issuer.subject.rfc4514_string()
    try:
        bc = issuer.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        bc = None
    # Only a trust anchor may lack basicConstraints (old v1 roots); what we trust is our choice.
    if (bc is None and not anchor) or (bc is not None and not bc.ca):
        raise TimestampError(f"{name} is not a CA certificate")
    if bc is not None and bc.path_length is not None and below > bc.path_length:
        raise TimestampError(f"path length constraint of {name} exceeded")
    try:
        ku = issuer.extensions.get_extension_for_class(x509.KeyUsage).value
        if not ku.key_cert_sign:
            raise TimestampError(f"keyUsage of {name} does not allow certificate signing")
    except x509.ExtensionNotFound:
        pass
    try:
        eku = issuer.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        # A CA restricted to other purposes must not vouch for a time-stamping key.
        if ExtendedKeyUsageOID.TIME_STAMPING not in eku and _ANY_EKU not in eku:
            raise TimestampError(f"extendedKeyUsage of CA {name} excludes timeStamping")
    except x509.ExtensionNotFound:
        pass


def build_chain(signer: x509.Certificate, pool: Sequence[x509.Certificate],
                 roots: Sequence[x509.Certificate], at: datetime) -> list[x509.Certificate]:
    """Return a chain signer → … → trusted root, each certificate valid at ``at``.

    Tries every candidate issuer (depth-first) so injected look-alike certificates cannot block
    the real path. Raises TimestampError when there is none.
    """
    root_ders = {r.public_bytes(Encoding.DER) for r in roots}
    reasons: list[str] = []
    budget = [MAX_CHAIN_STEPS]

    def extend(chain: list[x509.Certificate]) -> list[x509.Certificate] | None:
        cert = chain[-1]
        if cert.public_bytes(Encoding.DER) in root_ders:
            return chain
        if len(chain) >= MAX_CHAIN_DEPTH:
            reasons.append(f"chain longer than {MAX_CHAIN_DEPTH}")
            return None
        below = len(chain) - 1  # CA certificates between the signer and the next issuer
        for anchor, candidates in ((True, roots), (False, pool)):
            for issuer in candidates:
                if issuer in chain or issuer.subject != cert.issuer:
                    continue
                budget[0] -= 1
                if budget[0] < 0:
                    raise TimestampError(f"certificate chain search gave up after {MAX_CHAIN_STEPS} steps")
                if not issued_by(cert, issuer):
                    continue
                try:
                    check_issuer(issuer, below, at, anchor)
                except (TimestampError, ValueError, UnsupportedAlgorithm, x509.DuplicateExtension) as e:
                    reasons.append(str(e))
                    continue
                found = [*chain, issuer] if anchor else extend([*chain, issuer])
                if found:
                    return found
        return None

    chain = extend([signer])
    if chain is None:
        why = f" ({reasons[-1]})" if reasons else ""
        raise TimestampError(f"certificate chain does not lead to a trusted root{why}")
    return chain
