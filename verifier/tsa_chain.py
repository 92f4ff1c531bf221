"""Certificates for RFC 3161: reading certificate files and building a TSA's chain to a trusted root.

Boundary: part of timestamp verification. A change here can make an untrusted TSA trusted.
The chain walk is our own because cryptography's verifier is built for TLS server certificates,
and rfc3161-client treats the intermediates it is given as trusted.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import ExtendedKeyUsageOID

from verifier.court_time import format_time
from verifier.errors import InvalidInput, TimestampError

#: Certificate files (``tsa-<n>.pem``, ``--certs``) hold a chain, not a CA bundle dump.
MAX_CERT_FILE_BYTES = 1 << 20
MAX_CERTIFICATES = 64
#: A roots file may be a whole system CA bundle (Debian's holds about 150 roots in 220 KB).
MAX_ROOT_FILE_BYTES = 4 << 20
MAX_ROOTS = 2000
#: Certificates in a chain, signer and root included.
MAX_CHAIN_DEPTH = 8
#: Signature checks one chain search may spend: look-alike certificates in a bag could otherwise make
#: the depth-first search exponential.
MAX_CHAIN_STEPS = 256

_ANY_EKU = x509.ObjectIdentifier("2.5.29.37.0")


def load_certificates(data: bytes, *, max_bytes: int = MAX_CERT_FILE_BYTES,
                      max_certificates: int = MAX_CERTIFICATES) -> list[x509.Certificate]:
    """Return the certificates in PEM (one or many) or DER (one, or several concatenated) data.

    Raises InvalidInput when there are none, too many, or the data is no certificate.
    """
    if len(data) > max_bytes:
        raise InvalidInput(f"certificate file of {len(data)} bytes exceeds {max_bytes}")
    try:
        with warnings.catch_warnings():
            # System bundles still carry old roots with a zero or negative serial, which RFC 5280
            # forbids today; they load, and the warning would only be noise on the user's terminal.
            warnings.simplefilter("ignore", CryptographyDeprecationWarning)
            if b"-----BEGIN" in data:
                certs = x509.load_pem_x509_certificates(data)
            else:
                certs = [x509.load_der_x509_certificate(der) for der in _split_der(data, max_certificates)]
    except ValueError as e:
        raise InvalidInput(f"not a certificate (PEM or DER): {e}") from None
    if not certs:
        raise InvalidInput("no certificate found")
    if len(certs) > max_certificates:
        raise InvalidInput(f"{len(certs)} certificates exceed {max_certificates}")
    return certs


def load_roots(data: bytes) -> RootStore:
    """Return the trusted roots in a PEM or DER file; a whole system CA bundle is fine.

    Raises InvalidInput like ``load_certificates``.
    """
    return RootStore(load_certificates(data, max_bytes=MAX_ROOT_FILE_BYTES, max_certificates=MAX_ROOTS))


class RootStore:
    """Trusted roots, indexed so that a system CA bundle costs a dictionary look-up per chain step.

    Issuers are found by subject name (a chain must link by names, RFC 5280 §6.1), a signing
    certificate that is itself a root by serial or subject key id.
    """

    def __init__(self, roots: Iterable[x509.Certificate]) -> None:
        self._by_der: dict[bytes, x509.Certificate] = {}
        for root in roots:
            self._by_der.setdefault(root.public_bytes(Encoding.DER), root)
        self.roots: tuple[x509.Certificate, ...] = tuple(self._by_der.values())
        self._by_subject: dict[x509.Name, list[x509.Certificate]] = {}
        self._by_serial: dict[int, list[x509.Certificate]] = {}
        self._by_key_id: dict[bytes, list[x509.Certificate]] = {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CryptographyDeprecationWarning)  # see load_certificates
            for root in self.roots:
                self._by_subject.setdefault(root.subject, []).append(root)
                self._by_serial.setdefault(root.serial_number, []).append(root)
                if (key_id := subject_key_id(root)) is not None:
                    self._by_key_id.setdefault(key_id, []).append(root)

    def __len__(self) -> int:
        return len(self.roots)

    def __contains__(self, cert: object) -> bool:
        return isinstance(cert, x509.Certificate) and cert.public_bytes(Encoding.DER) in self._by_der

    def issuers_of(self, cert: x509.Certificate) -> list[x509.Certificate]:
        """The roots whose subject is ``cert``'s issuer: the only ones that can have signed it."""
        return self._by_subject.get(cert.issuer, [])

    def with_serial(self, serial: int) -> list[x509.Certificate]:
        return self._by_serial.get(serial, [])

    def with_key_id(self, key_id: bytes) -> list[x509.Certificate]:
        return self._by_key_id.get(key_id, [])


def subject_key_id(cert: x509.Certificate) -> bytes | None:
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        return None
    except (ValueError, x509.DuplicateExtension):
        return None  # an unreadable extension names nothing; the chain checks will refuse the certificate


def _split_der(data: bytes, limit: int) -> list[bytes]:
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
        if len(parts) > limit:
            raise ValueError(f"more than {limit} certificates")
    return parts


def check_valid_at(cert: x509.Certificate, at: datetime, what: str) -> None:
    if not cert.not_valid_before_utc <= at <= cert.not_valid_after_utc:
        raise TimestampError(
            f"{what} {cert.subject.rfc4514_string()} is not valid at {format_time(at)} "
            f"(valid {format_time(cert.not_valid_before_utc)} to {format_time(cert.not_valid_after_utc)})")
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
                roots: RootStore, at: datetime) -> list[x509.Certificate]:
    """Return a chain signer → … → trusted root, each certificate valid at ``at``.

    Tries every candidate issuer (depth-first) so injected look-alike certificates cannot block
    the real path; the pool's order means nothing. Raises TimestampError when there is none.
    """
    reasons: list[str] = []
    budget = [MAX_CHAIN_STEPS]

    def extend(chain: list[x509.Certificate]) -> list[x509.Certificate] | None:
        cert = chain[-1]
        if cert in roots:
            return chain
        if len(chain) >= MAX_CHAIN_DEPTH:
            reasons.append(f"chain longer than {MAX_CHAIN_DEPTH}")
            return None
        below = len(chain) - 1  # CA certificates between the signer and the next issuer
        for anchor, candidates in ((True, roots.issuers_of(cert)), (False, pool)):
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
