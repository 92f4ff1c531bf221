"""RFC 3161 time-stamp tokens: verify a TimeStampResp or a bare TimeStampToken over a digest
against trusted TSA roots.

Boundary: every change here can turn an invalid token into a valid one. The checks are our own
(asn1crypto + cryptography), so they run the same on every token. Where rfc3161-client can parse
a token, it verifies it as well and must agree: two implementations, one verdict. It cannot parse
tokens whose certificate SET is not in DER order (OpenSSL embeds the CA certificate that way, and
the DigiCert, GlobalSign and D-Trust tokens in tests/vectors come so too); those are judged by our
checks alone, which is what ``rfc3161_client_checked`` says. rfc3161-client also drops genTime's
fractional seconds, so genTime is always read here.

SHA-1 is a named policy, not an accident: a SHA-1 message imprint or a SHA-1 CMS digest is refused
unless the caller passes ``allow_sha1`` (the standalone ``timestamp`` command does, and reports the
``legacy-sha1-imprint`` / ``legacy-sha1-signature`` warnings; package checks never do).

Pure functions of bytes and certificates; nothing is fetched. Not checked: revocation (CRL/OCSP),
name constraints, certificate policies, and the unsigned CMS fields OpenSSL ignores as well
(SignedData and SignerInfo versions, digestAlgorithms, a hash named by signatureAlgorithm: the
signature is checked with SignerInfo's digestAlgorithm).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from verifier.errors import InvalidInput, TimestampError
from verifier.timestamp_token import (
    ID_CT_TST_INFO,
    MAX_TSR_BYTES,
    NOT_A_TOKEN,
    EssCertId,
    TimestampToken,
    UnreadableToken,
    brief,
    parse_timestamp_token,
)
from verifier.tsa_chain import MAX_CERTIFICATES, RootStore, build_chain, check_valid_at, subject_key_id

__all__ = ["MAX_TSR_BYTES", "NOT_A_TOKEN", "EssCertId", "TimestampInfo", "TimestampToken", "UnreadableToken",
           "parse_timestamp_response", "parse_timestamp_token", "verify_timestamp"]

#: The imprint's algorithm decides; a digest of its length is what the caller must give.
IMPRINT_LENGTHS = {"sha1": 20, "sha256": 32, "sha384": 48, "sha512": 64}
#: Hashes accepted for the CMS signature. SHA-1 only under the legacy policy, MD5 never: the TSA
#: signs content that partly comes from the requester, which is the setting chosen-prefix collisions need.
SIGNATURE_HASHES: dict[str, hashes.HashAlgorithm] = {
    "sha224": hashes.SHA224(), "sha256": hashes.SHA256(),
    "sha384": hashes.SHA384(), "sha512": hashes.SHA512(),
}
LEGACY_SHA1_HASHES: dict[str, hashes.HashAlgorithm] = {**SIGNATURE_HASHES, "sha1": hashes.SHA1()}  # noqa: S303
#: ESS v1 can only name SHA-1; it binds a certificate the signature already covers, so it stays.
ESS_HASHES = frozenset({"sha1", *SIGNATURE_HASHES})
_RFC3161_CLIENT_SIGNATURES = frozenset({"rsassa_pkcs1v15", "ecdsa"})
#: Names of the warnings a token accepted under the legacy SHA-1 policy carries.
LEGACY_SHA1_IMPRINT = "legacy-sha1-imprint"
LEGACY_SHA1_SIGNATURE = "legacy-sha1-signature"
_SHA1_WHY = "SHA-1 collisions are practical (chosen-prefix, 2020)"

#: The older name: it reads bare tokens as well now.
parse_timestamp_response = parse_timestamp_token


@dataclass(frozen=True)
class TimestampInfo:
    """What a verified token says."""

    gen_time: datetime  # tz-aware UTC, with genTime's fractional seconds
    tsa_name: str  # the signing certificate's subject, RFC 4514
    serial: int
    policy: str  # dotted OID
    hash_algorithm: str  # the imprint's: "sha256" | "sha384" | "sha512" ("sha1" under the legacy policy)
    accuracy: timedelta | None
    nonce: int | None
    signer: x509.Certificate
    rfc3161_client_checked: bool = False  # False: rfc3161-client could not parse it; our checks alone
    chain: tuple[x509.Certificate, ...] = ()  # signer first, trusted root last
    warnings: tuple[str, ...] = ()  # "<name>: <why>", e.g. legacy-sha1-imprint
    bare_token: bool = False  # the input was a TimeStampToken, not a TimeStampResp


def verify_timestamp(token: bytes | TimestampToken, digest: bytes, roots: Sequence[x509.Certificate] | RootStore, *,
                     nonce: int | None = None,
                     certificates: Sequence[x509.Certificate] = (),
                     tsa_common_name: str | None = None,
                     validation_time: datetime | None = None,
                     allow_sha1: bool = False) -> TimestampInfo:
    """Verify an RFC 3161 token over ``digest`` and return what it says.

    ``token`` is a TimeStampResp or a bare TimeStampToken (bytes), or one already parsed with
    ``parse_timestamp_token`` (to judge it against several trust sets without parsing it again).
    ``digest`` has the length of the imprint's algorithm: 32, 48 or 64 bytes, or 20 for SHA-1,
    which needs ``allow_sha1``. ``certificates`` are untrusted helpers (the TSA certificate,
    intermediates); only ``roots`` are trusted (a list, or a ``RootStore`` built once for a large
    bundle). ``tsa_common_name`` pins the signing certificate's CN (or its whole RFC 4514 subject).
    The chain is judged at ``validation_time``, by default the token's genTime; the signing
    certificate must also be valid at genTime itself.

    Raises UnreadableToken (a TimestampError) when the data is no token at all, TimestampError when
    it is not granted or not valid, and also for empty ``roots`` (trust fails closed); InvalidInput
    for a digest of no supported length or a naive time.
    """
    store = roots if isinstance(roots, RootStore) else RootStore(roots)
    if not len(store):
        raise TimestampError("no trusted roots: refusing to verify a timestamp without trust")
    if len(digest) not in IMPRINT_LENGTHS.values():
        raise InvalidInput(f"digest of {len(digest)} bytes: expected 20 (SHA-1), 32, 48 or 64")
    if validation_time is not None and validation_time.utcoffset() is None:
        raise InvalidInput("validation_time must be timezone-aware")
    tok = token if isinstance(token, TimestampToken) else parse_timestamp_token(token)
    extras = list(certificates)
    if len(extras) > MAX_CERTIFICATES:
        raise TimestampError(f"{len(extras)} extra certificates exceed {MAX_CERTIFICATES}")
    try:
        return _verify(tok, digest, store, extras, nonce, tsa_common_name,
                       tok.gen_time if validation_time is None else validation_time.astimezone(UTC), allow_sha1)
    except (ValueError, TypeError, LookupError, UnsupportedAlgorithm, x509.DuplicateExtension,
            x509.UnsupportedGeneralNameType) as e:
        # Certificates and asn1crypto values parse lazily, so a malformed part surfaces only when a
        # check reads it; whatever the library error, the token is not valid.
        raise TimestampError(f"malformed token or certificate: {type(e).__name__}: {brief(e)}") from None


def _verify(tok: TimestampToken, digest: bytes, roots: RootStore, extras: list[x509.Certificate],
            nonce: int | None, tsa_common_name: str | None, at: datetime, allow_sha1: bool) -> TimestampInfo:
    # 0. Policy: which hashes may carry the token at all.
    warnings = _sha1_policy(tok, allow_sha1)
    # 1. The signer is whoever SignerInfo's sid names; the bag's order means nothing.
    signer = _find_signer(tok, [*tok.certificates, *extras, *_root_candidates(tok, roots)])
    # 2. CMS: content type, messageDigest over the TSTInfo, signature over the signed attributes.
    _check_cms(tok, signer, LEGACY_SHA1_HASHES if allow_sha1 else SIGNATURE_HASHES)
    # 3. ESS signing-certificate(-v2) binds the signature to this very certificate.
    _check_ess(tok, signer)
    # 4. RFC 3161 §2.3: the key may only time-stamp, and says so in a critical extension.
    _check_tsa_usage(signer)
    # 5. The signer chains to a trusted root, every certificate valid at the validation time.
    check_valid_at(signer, tok.gen_time, "TSA certificate")
    if at != tok.gen_time:
        check_valid_at(signer, at, "TSA certificate")
    chain = build_chain(signer, [*tok.certificates, *extras], roots, at)
    # 6. What was stamped, and for whom. The imprint's algorithm decides the digest's length.
    expected_len = IMPRINT_LENGTHS.get(tok.imprint_algorithm)
    if expected_len is None:
        raise TimestampError(f"message imprint algorithm {tok.imprint_algorithm} is not supported")
    if len(digest) != expected_len:
        raise TimestampError(f"message imprint algorithm is {tok.imprint_algorithm} ({expected_len} bytes), "
                             f"but the digest given has {len(digest)} bytes")
    if len(tok.imprint) != expected_len:
        raise TimestampError(f"message imprint malformed: {len(tok.imprint)} bytes for {tok.imprint_algorithm}")
    if tok.imprint != digest:
        raise TimestampError(f"message imprint mismatch: expected {digest.hex()}, "
                             f"token has {tok.imprint.hex()}")
    if nonce is not None and tok.nonce != nonce:
        raise TimestampError(f"nonce mismatch: expected {nonce}, token has {tok.nonce}")
    # 7. Names: the TSTInfo tsa hint must name the signer; the caller's pin must too.
    if tok.tsa is not None and not _tsa_name_matches(tok.tsa, signer):
        raise TimestampError("TSTInfo tsa name does not match the signing certificate")
    if tsa_common_name is not None:
        cns = [str(a.value) for a in signer.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
        if tsa_common_name not in cns and tsa_common_name != signer.subject.rfc4514_string():
            raise TimestampError(f"TSA name pin mismatch: expected {tsa_common_name!r}, "
                                 f"signer is {signer.subject.rfc4514_string()!r}")
    # 8. The second implementation, where it can judge the token. Its OpenSSL store accepts only
    # self-signed anchors, and OpenSSL's PKCS7 code verifies neither RSASSA-PSS nor Ed25519.
    checked = (chain[-1].subject == chain[-1].issuer and tok.signature_algorithm in _RFC3161_CLIENT_SIGNATURES
               and _rfc3161_client_verify(digest, tok, signer, extras, chain[-1], nonce))
    return TimestampInfo(
        gen_time=tok.gen_time, tsa_name=signer.subject.rfc4514_string(), serial=tok.serial,
        policy=tok.policy, hash_algorithm=tok.imprint_algorithm, accuracy=tok.accuracy, nonce=tok.nonce,
        signer=signer, rfc3161_client_checked=checked, chain=tuple(chain), warnings=tuple(warnings),
        bare_token=tok.bare)


def _sha1_policy(tok: TimestampToken, allow_sha1: bool) -> list[str]:
    """Return the legacy-SHA-1 warnings the token earns; raise TimestampError if SHA-1 is not allowed."""
    found = []
    if tok.imprint_algorithm == "sha1":
        found.append((LEGACY_SHA1_IMPRINT, "the message imprint is SHA-1: whoever made the document could "
                                           "have made a second one with this digest"))
    if tok.digest_algorithm == "sha1" or (tok.pss is not None and "sha1" in tok.pss[:2]):
        found.append((LEGACY_SHA1_SIGNATURE, "the TSA signed a SHA-1 digest of the token"))
    if found and not allow_sha1:
        name, what = found[0]
        raise TimestampError(f"{name} refused: {what}; {_SHA1_WHY}, and this check accepts SHA-256 or stronger "
                             "('tiezheng-verify timestamp' accepts legacy SHA-1 tokens with a warning)")
    return [f"{name}: {what}; {_SHA1_WHY}" for name, what in found]


def _root_candidates(tok: TimestampToken, roots: RootStore) -> list[x509.Certificate]:
    # A TSA may sign with a certificate that is itself in the trust: find it by its index, not by a scan.
    if tok.sid_issuer_serial is not None:
        return roots.with_serial(tok.sid_issuer_serial[1])
    return roots.with_key_id(tok.sid_key_id) if tok.sid_key_id is not None else []


def _find_signer(tok: TimestampToken, candidates: Iterable[x509.Certificate]) -> x509.Certificate:
    matches: dict[bytes, x509.Certificate] = {}
    for cert in candidates:
        if tok.sid_issuer_serial is not None:
            issuer, serial = tok.sid_issuer_serial
            # asn1crypto compares names the RFC 5280 way (case and space folding), as CMS intends.
            found = cert.serial_number == serial and _same_name(asn1_x509.Name.load(issuer), _asn1(cert).issuer)
        else:
            found = tok.sid_key_id is not None and subject_key_id(cert) == tok.sid_key_id
        if found:
            matches.setdefault(cert.public_bytes(Encoding.DER), cert)
    if not matches:
        raise TimestampError("signing certificate not found: no certificate matches SignerInfo's sid")
    # Look-alikes can repeat issuer and serial; the ESS attribute, under the signature, names one exactly.
    for der, cert in matches.items():
        if any(e.hash_algorithm in ESS_HASHES and e.cert_hash == hashlib.new(e.hash_algorithm, der).digest()
               for e in tok.ess_ids):
            return cert
    return next(iter(matches.values()))


def _same_name(a: Any, b: Any) -> bool:
    """Return whether two asn1crypto Names are equal: byte-equal, or equal after RFC 5280 folding."""
    if a.dump() == b.dump():
        return True
    try:
        return bool(a == b)
    except ValueError:  # a value that string preparation refuses (or bad UTF-8) matches nothing else
        return False


def _asn1(cert: x509.Certificate) -> Any:
    return asn1_x509.Certificate.load(cert.public_bytes(Encoding.DER))


def _check_cms(tok: TimestampToken, signer: x509.Certificate, allowed: dict[str, hashes.HashAlgorithm]) -> None:
    if tok.content_type != ID_CT_TST_INFO:
        raise TimestampError("signed content-type attribute is missing or not id-ct-TSTInfo")
    hash_alg = allowed.get(tok.digest_algorithm)
    if hash_alg is None:
        raise TimestampError(f"digest algorithm {tok.digest_algorithm} is weak or unsupported")
    if tok.message_digest != hashlib.new(tok.digest_algorithm, tok.tst_info).digest():
        raise TimestampError("signature invalid: messageDigest attribute does not match the TSTInfo")
    _verify_signature(signer.public_key(), tok.signature, tok.signed_attrs, tok.signature_algorithm,
                      hash_alg, tok.pss, allowed)


def _verify_signature(key: Any, signature: bytes, data: bytes, algorithm: str, hash_alg: hashes.HashAlgorithm,
                      pss: tuple[str, str, int] | None, allowed: dict[str, hashes.HashAlgorithm]) -> None:
    failure = "signature invalid"
    try:
        if isinstance(key, rsa.RSAPublicKey) and algorithm == "rsassa_pkcs1v15":
            key.verify(signature, data, padding.PKCS1v15(), hash_alg)
        elif isinstance(key, rsa.RSAPublicKey) and algorithm == "rsassa_pss" and pss is not None:
            mgf_hash = allowed.get(pss[1])
            if pss[0] != hash_alg.name or mgf_hash is None:
                raise TimestampError(f"RSASSA-PSS parameters {pss} disagree with digest {hash_alg.name}")
            key.verify(signature, data, padding.PSS(padding.MGF1(mgf_hash), pss[2]), hash_alg)
        elif isinstance(key, ec.EllipticCurvePublicKey) and algorithm == "ecdsa":
            key.verify(signature, data, ec.ECDSA(hash_alg))
        elif isinstance(key, ed25519.Ed25519PublicKey) and algorithm == "ed25519":
            key.verify(signature, data)
        else:
            raise TimestampError(f"unsupported signature algorithm {algorithm} for a {type(key).__name__}")
    except InvalidSignature:
        raise TimestampError(f"{failure}: the signature does not verify") from None
    except UnsupportedAlgorithm as e:
        raise TimestampError(f"unsupported signature algorithm {algorithm}: {e}") from None


def _check_ess(tok: TimestampToken, signer: x509.Certificate) -> None:
    if not tok.ess_ids:
        raise TimestampError("ESS signing certificate attribute is missing")
    der = signer.public_bytes(Encoding.DER)
    for ess in tok.ess_ids:
        if ess.hash_algorithm not in ESS_HASHES:
            raise TimestampError(f"ESS signing certificate hash {ess.hash_algorithm} is unsupported")
        if ess.cert_hash != hashlib.new(ess.hash_algorithm, der).digest():
            raise TimestampError("ESS signing certificate does not match the signer certificate")
        if ess.issuer_serial is not None:
            names, serial = ess.issuer_serial
            issuer = _asn1(signer).issuer
            dir_names = [n.chosen for n in asn1_x509.GeneralNames.load(names) if n.name == "directory_name"]
            if serial != signer.serial_number or not any(_same_name(issuer, n) for n in dir_names):
                raise TimestampError("ESS signing certificate does not match: issuerSerial differs")


def _check_tsa_usage(signer: x509.Certificate) -> None:
    try:
        eku = signer.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except x509.ExtensionNotFound:
        raise TimestampError("timeStamping EKU missing or not critical: no extendedKeyUsage") from None
    if not eku.critical or ExtendedKeyUsageOID.TIME_STAMPING not in eku.value:
        raise TimestampError("timeStamping EKU missing or not critical")
    # RFC 3161 §2.3 as OpenSSL reads it: the key serves time-stamping only.
    if list(eku.value) != [ExtendedKeyUsageOID.TIME_STAMPING]:
        raise TimestampError("extendedKeyUsage must hold timeStamping only")
    try:
        ku = signer.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return
    if not (ku.digital_signature or ku.content_commitment):
        raise TimestampError("keyUsage of the TSA certificate allows no digital signature")


def _tsa_name_matches(tsa_der: bytes, signer: x509.Certificate) -> bool:
    # RFC 3161 §2.4.2: if present, tsa must be one of the subject names of the signing certificate.
    tsa = asn1_x509.GeneralName.load(tsa_der)
    cert = _asn1(signer)
    if tsa.name == "directory_name" and _same_name(tsa.chosen, cert.subject):
        return True
    san = cert.subject_alt_name_value
    return san is not None and any(n.name == tsa.name and n.chosen == tsa.chosen for n in san)


def _rfc3161_client_verify(digest: bytes, tok: TimestampToken, signer: x509.Certificate,
                           extras: Sequence[x509.Certificate], root: x509.Certificate, nonce: int | None) -> bool:
    """Return True when rfc3161-client verified the token, False when it cannot judge it.

    It is given the root our chain reached, not the whole trust: a system bundle of 150 roots
    would only slow it down, and one anchor is what the verdict rests on. Raises TimestampError
    when it rejects a token our checks accepted: a disagreement means one implementation is
    wrong, and a verifier must then fail closed. Its acceptance alone proves little:
    rfc3161-client 1.0.9 puts the intermediates it is given into its trust store, so an
    untrusted self-signed CA handed over as a helper certificate makes it accept (tested).
    """
    import rfc3161_client  # here, not above: only runs that reach this cross-check pay for its import

    try:
        resp = rfc3161_client.decode_timestamp_response(tok.response)
    except ValueError:
        return False  # e.g. InvalidSetOrdering: a certificate SET out of DER order (OpenSSL tokens)
    signer_der = signer.public_bytes(Encoding.DER)
    embedded = {c.public_bytes(Encoding.DER) for c in tok.certificates}
    if embedded and signer_der not in embedded:
        return False  # it looks for the signer in the bag only, and we found it elsewhere
    builder = rfc3161_client.VerifierBuilder().add_root_certificate(root)
    if not embedded:
        builder = builder.tsa_certificate(signer)
    seen = {root.public_bytes(Encoding.DER), signer_der}
    for cert in extras:
        if (der := cert.public_bytes(Encoding.DER)) not in seen:
            seen.add(der)
            builder = builder.add_intermediate_certificate(cert)
    if nonce is not None and nonce >= 0:
        builder = builder.nonce(nonce)
    try:
        builder.build().verify(resp, digest)
    except (rfc3161_client.VerificationError, ValueError, TypeError) as e:
        raise TimestampError(f"rfc3161-client rejects the token: {brief(e)}") from None
    return True
