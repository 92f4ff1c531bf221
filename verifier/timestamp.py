"""RFC 3161 time-stamp responses: verify a TimeStampResp over a digest against trusted TSA roots.

Boundary: every change here can turn an invalid token into a valid one. The checks are our own
(asn1crypto + cryptography), so they run the same on every token. Where rfc3161-client can parse
a token, it verifies it as well and must agree: two implementations, one verdict. It cannot parse
tokens whose certificate SET is not in DER order (OpenSSL embeds the CA certificate that way, and
real TSAs do it); those are judged by our checks alone, which is what ``rfc3161_client_checked``
says. rfc3161-client also drops genTime's fractional seconds, so genTime is always read here.

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

import rfc3161_client
from asn1crypto import core, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from verifier.errors import InvalidInput, TimestampError
from verifier.tsa_chain import MAX_CERTIFICATES, build_chain, check_valid_at

#: A TimeStampResp is a few KiB; anything larger is not one we parse.
MAX_TSR_BYTES = 1 << 20
ID_CT_TST_INFO = "1.2.840.113549.1.9.16.1.4"
#: The imprint algorithm follows from the digest length; nothing else is accepted.
DIGEST_ALGORITHMS = {32: "sha256", 48: "sha384", 64: "sha512"}
#: Hashes accepted for the CMS signature. SHA-1 and MD5 are refused: the TSA signs content that
#: partly comes from the requester, which is the setting chosen-prefix collisions need.
SIGNATURE_HASHES: dict[str, hashes.HashAlgorithm] = {
    "sha224": hashes.SHA224(), "sha256": hashes.SHA256(),
    "sha384": hashes.SHA384(), "sha512": hashes.SHA512(),
}
#: ESS v1 can only name SHA-1; it binds a certificate the signature already covers, so it stays.
ESS_HASHES = frozenset({"sha1", *SIGNATURE_HASHES})
_RFC3161_CLIENT_SIGNATURES = frozenset({"rsassa_pkcs1v15", "ecdsa"})


@dataclass(frozen=True)
class TimestampInfo:
    """What a verified token says."""

    gen_time: datetime  # tz-aware UTC, with genTime's fractional seconds
    tsa_name: str  # the signing certificate's subject, RFC 4514
    serial: int
    policy: str  # dotted OID
    hash_algorithm: str  # "sha256" | "sha384" | "sha512"
    accuracy: timedelta | None
    nonce: int | None
    signer: x509.Certificate
    rfc3161_client_checked: bool = False  # False: rfc3161-client could not parse it; our checks alone


@dataclass(frozen=True)
class EssCertId:
    """The first ESSCertID(v2) of a signing-certificate attribute: it names the signing certificate."""

    hash_algorithm: str
    cert_hash: bytes
    issuer_serial: tuple[bytes, int] | None  # (DER GeneralNames, serial)


@dataclass(frozen=True)
class TimestampToken:
    """A granted TimeStampResp taken apart. Nothing in it is verified yet."""

    tst_info: bytes  # the eContent octets: what messageDigest covers
    gen_time: datetime
    serial: int
    policy: str
    imprint_algorithm: str
    imprint: bytes
    accuracy: timedelta | None
    nonce: int | None
    tsa: bytes | None  # DER GeneralName from TSTInfo
    certificates: tuple[x509.Certificate, ...]
    sid_issuer_serial: tuple[bytes, int] | None  # (DER Name, serial)
    sid_key_id: bytes | None
    digest_algorithm: str
    signature_algorithm: str
    pss: tuple[str, str, int] | None  # (hash, MGF1 hash, salt length)
    signature: bytes
    signed_attrs: bytes  # DER SET OF Attribute: what the signature covers
    content_type: str | None
    message_digest: bytes | None
    ess_ids: tuple[EssCertId, ...]


def parse_timestamp_response(data: bytes) -> TimestampToken:
    """Return the parts of a granted TimeStampResp, unverified.

    Raises TimestampError when the data is too large, no TimeStampResp, or its status is not granted.
    """
    if len(data) > MAX_TSR_BYTES:
        raise TimestampError(f"not an RFC 3161 TimeStampResp: {len(data)} bytes exceed {MAX_TSR_BYTES}")
    try:
        # asn1crypto makes timeStampToken mandatory, but a refusal carries only the status: read it alone.
        outer = core.Sequence.load(data, strict=True)
        status_info = tsp.PKIStatusInfo.load(outer[0].dump())
        status, text = status_info["status"].native, "; ".join(status_info["status_string"].native or [])
    except Exception as e:  # asn1crypto raises ValueError, TypeError, ... on garbage
        raise TimestampError(f"not an RFC 3161 TimeStampResp: {e}") from None
    if status != "granted":
        raise TimestampError(f"timestamp not granted: status {status}{': ' + text if text else ''}")
    try:
        return _parse_token(tsp.TimeStampResp.load(data, strict=True)["time_stamp_token"])
    except TimestampError:
        raise
    except Exception as e:  # every library error while taking the token apart means "malformed"
        raise TimestampError(f"not an RFC 3161 TimeStampResp: {type(e).__name__}: {e}") from None


def _parse_token(token: Any) -> TimestampToken:
    if token["content_type"].native != "signed_data":
        raise TimestampError("timeStampToken is not CMS SignedData")
    signed = token["content"]
    econtent = signed["encap_content_info"]
    if econtent["content_type"].dotted != ID_CT_TST_INFO or econtent["content"].native is None:
        raise TimestampError("SignedData does not hold a TSTInfo")
    tst_bytes = bytes(econtent["content"].contents)
    tst = tsp.TSTInfo.load(tst_bytes, strict=True)
    if int(tst["version"]) != 1:
        raise TimestampError(f"TSTInfo version {int(tst['version'])} is not 1")
    gen_time = tst["gen_time"].native
    if not isinstance(gen_time, datetime):
        raise TimestampError(f"genTime {gen_time!r} is out of range")
    acc = tst["accuracy"]
    accuracy = None if acc.native is None else timedelta(
        seconds=acc["seconds"].native or 0, milliseconds=acc["millis"].native or 0,
        microseconds=acc["micros"].native or 0)
    certs = [c.chosen.dump() for c in signed["certificates"] if c.name == "certificate"]
    if len(certs) > MAX_CERTIFICATES:
        raise TimestampError(f"token embeds {len(certs)} certificates, more than {MAX_CERTIFICATES}")
    if len(signed["signer_infos"]) != 1:
        raise TimestampError(f"expected exactly one SignerInfo, got {len(signed['signer_infos'])}")
    si = signed["signer_infos"][0]
    sid = si["sid"]
    sig_alg = si["signature_algorithm"]
    sig_name = "ecdsa" if sig_alg["algorithm"].dotted == "1.2.840.10045.2.1" else sig_alg.signature_algo
    pss = None
    if sig_name == "rsassa_pss":
        params = sig_alg["parameters"]
        pss = (params["hash_algorithm"]["algorithm"].native,
               params["mask_gen_algorithm"]["parameters"]["algorithm"].native,
               int(params["salt_length"].native))
    attrs = si["signed_attrs"]
    if not attrs.native:
        raise TimestampError("SignerInfo has no signed attributes")

    def values(name: str) -> list[Any]:
        found = [a["values"] for a in attrs if a["type"].native == name]
        if len(found) > 1 or any(len(v) != 1 for v in found):
            raise TimestampError(f"signed attribute {name} must occur once with one value")
        return [v[0] for v in found]

    ess_ids = [EssCertId("sha1", v["certs"][0]["cert_hash"].native, _issuer_serial(v["certs"][0]))
               for v in values("signing_certificate")]
    ess_ids += [EssCertId(v["certs"][0]["hash_algorithm"]["algorithm"].native,
                          v["certs"][0]["cert_hash"].native, _issuer_serial(v["certs"][0]))
                for v in values("signing_certificate_v2")]
    content_types, digests = values("content_type"), values("message_digest")
    isn = sid.chosen if sid.name == "issuer_and_serial_number" else None
    return TimestampToken(
        tst_info=tst_bytes,
        gen_time=gen_time.astimezone(UTC),
        serial=int(tst["serial_number"].native),
        policy=str(tst["policy"].dotted),
        imprint_algorithm=str(tst["message_imprint"]["hash_algorithm"]["algorithm"].native),
        imprint=bytes(tst["message_imprint"]["hashed_message"].native),
        accuracy=accuracy,
        nonce=tst["nonce"].native,
        tsa=None if tst["tsa"].native is None else tst["tsa"].untag().dump(),
        certificates=tuple(x509.load_der_x509_certificate(der) for der in certs),
        sid_issuer_serial=None if isn is None else (isn["issuer"].dump(), int(isn["serial_number"].native)),
        sid_key_id=None if isn is not None else bytes(sid.chosen.native),
        digest_algorithm=str(si["digest_algorithm"]["algorithm"].native),
        signature_algorithm=str(sig_name),
        pss=pss,
        signature=bytes(si["signature"].native),
        # The signature covers the attributes as a DER SET OF, not as the [0] IMPLICIT field.
        signed_attrs=b"\x31" + attrs.dump()[1:],
        content_type=content_types[0].dotted if content_types else None,
        message_digest=bytes(digests[0].native) if digests else None,
        ess_ids=tuple(ess_ids),
    )


def _issuer_serial(ess_id: Any) -> tuple[bytes, int] | None:
    isn = ess_id["issuer_serial"]
    return None if isn.native is None else (isn["issuer"].dump(), int(isn["serial_number"].native))


def verify_timestamp(response: bytes, digest: bytes, roots: Sequence[x509.Certificate], *,
                     nonce: int | None = None,
                     certificates: Sequence[x509.Certificate] = (),
                     tsa_common_name: str | None = None,
                     validation_time: datetime | None = None) -> TimestampInfo:
    """Verify an RFC 3161 TimeStampResp over ``digest`` (32, 48 or 64 bytes) and return what it says.

    ``certificates`` are untrusted helpers (the TSA certificate, intermediates); only ``roots`` are
    trusted. ``tsa_common_name`` pins the signing certificate's CN (or its whole RFC 4514 subject).
    The chain is judged at ``validation_time``, by default the token's genTime; the signing
    certificate must also be valid at genTime itself.

    Raises TimestampError when the token is malformed, not granted or not valid, and also for an
    empty ``roots`` (trust fails closed); InvalidInput for a digest of another length or a naive time.
    """
    if not roots:
        raise TimestampError("no trusted roots: refusing to verify a timestamp without trust")
    if len(digest) not in DIGEST_ALGORITHMS:
        raise InvalidInput(f"digest of {len(digest)} bytes: expected 32, 48 or 64")
    if validation_time is not None and validation_time.utcoffset() is None:
        raise InvalidInput("validation_time must be timezone-aware")
    tok = parse_timestamp_response(response)
    extras = list(certificates)
    if len(extras) > MAX_CERTIFICATES:
        raise TimestampError(f"{len(extras)} extra certificates exceed {MAX_CERTIFICATES}")
    try:
        return _verify(tok, response, digest, roots, extras, nonce, tsa_common_name,
                       tok.gen_time if validation_time is None else validation_time.astimezone(UTC))
    except (ValueError, TypeError, LookupError, UnsupportedAlgorithm, x509.DuplicateExtension,
            x509.UnsupportedGeneralNameType) as e:
        # Certificates and asn1crypto values parse lazily, so a malformed part surfaces only when a
        # check reads it; whatever the library error, the token is not valid.
        raise TimestampError(f"malformed token or certificate: {type(e).__name__}: {e}") from None


def _verify(tok: TimestampToken, response: bytes, digest: bytes, roots: Sequence[x509.Certificate],
            extras: list[x509.Certificate], nonce: int | None, tsa_common_name: str | None,
            at: datetime) -> TimestampInfo:
    # 1. The signer is whoever SignerInfo's sid names; the bag's order means nothing.
    signer = _find_signer(tok, [*tok.certificates, *extras, *roots])
    # 2. CMS: content type, messageDigest over the TSTInfo, signature over the signed attributes.
    _check_cms(tok, signer)
    # 3. ESS signing-certificate(-v2) binds the signature to this very certificate.
    _check_ess(tok, signer)
    # 4. RFC 3161 §2.3: the key may only time-stamp, and says so in a critical extension.
    _check_tsa_usage(signer)
    # 5. The signer chains to a trusted root, every certificate valid at the validation time.
    check_valid_at(signer, tok.gen_time, "TSA certificate")
    if at != tok.gen_time:
        check_valid_at(signer, at, "TSA certificate")
    chain = build_chain(signer, [*tok.certificates, *extras], roots, at)
    # 6. What was stamped, and for whom.
    expected_alg = DIGEST_ALGORITHMS[len(digest)]
    if tok.imprint_algorithm != expected_alg:
        raise TimestampError(f"message imprint algorithm {tok.imprint_algorithm} does not match a "
                             f"{len(digest)}-byte digest ({expected_alg})")
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
               and _rfc3161_client_verify(response, digest, tok, signer, extras, roots, nonce))
    return TimestampInfo(
        gen_time=tok.gen_time, tsa_name=signer.subject.rfc4514_string(), serial=tok.serial,
        policy=tok.policy, hash_algorithm=tok.imprint_algorithm, accuracy=tok.accuracy, nonce=tok.nonce,
        signer=signer, rfc3161_client_checked=checked)


def _find_signer(tok: TimestampToken, candidates: Iterable[x509.Certificate]) -> x509.Certificate:
    matches: dict[bytes, x509.Certificate] = {}
    for cert in candidates:
        if tok.sid_issuer_serial is not None:
            issuer, serial = tok.sid_issuer_serial
            # asn1crypto compares names the RFC 5280 way (case and space folding), as CMS intends.
            found = cert.serial_number == serial and _same_name(asn1_x509.Name.load(issuer), _asn1(cert).issuer)
        else:
            found = tok.sid_key_id is not None and _key_id(cert) == tok.sid_key_id
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


def _key_id(cert: x509.Certificate) -> bytes | None:
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        return None


def _check_cms(tok: TimestampToken, signer: x509.Certificate) -> None:
    if tok.content_type != ID_CT_TST_INFO:
        raise TimestampError("signed content-type attribute is missing or not id-ct-TSTInfo")
    hash_alg = SIGNATURE_HASHES.get(tok.digest_algorithm)
    if hash_alg is None:
        raise TimestampError(f"digest algorithm {tok.digest_algorithm} is weak or unsupported")
    if tok.message_digest != hashlib.new(tok.digest_algorithm, tok.tst_info).digest():
        raise TimestampError("signature invalid: messageDigest attribute does not match the TSTInfo")
    _verify_signature(signer.public_key(), tok.signature, tok.signed_attrs, tok.signature_algorithm,
                      hash_alg, tok.pss, "signature invalid")


def _verify_signature(key: Any, signature: bytes, data: bytes, algorithm: str, hash_alg: hashes.HashAlgorithm,
                      pss: tuple[str, str, int] | None, failure: str) -> None:
    try:
        if isinstance(key, rsa.RSAPublicKey) and algorithm == "rsassa_pkcs1v15":
            key.verify(signature, data, padding.PKCS1v15(), hash_alg)
        elif isinstance(key, rsa.RSAPublicKey) and algorithm == "rsassa_pss" and pss is not None:
            mgf_hash = SIGNATURE_HASHES.get(pss[1])
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


def _rfc3161_client_verify(response: bytes, digest: bytes, tok: TimestampToken, signer: x509.Certificate,
                           extras: Sequence[x509.Certificate], roots: Sequence[x509.Certificate],
                           nonce: int | None) -> bool:
    """Return True when rfc3161-client verified the token, False when it cannot judge it.

    Raises TimestampError when it rejects a token our checks accepted: a disagreement means one
    implementation is wrong, and a verifier must then fail closed. Its acceptance alone proves
    little: rfc3161-client 1.0.9 puts the intermediates it is given into its trust store, so an
    untrusted self-signed CA handed over as a helper certificate makes it accept (tested).
    """
    try:
        resp = rfc3161_client.decode_timestamp_response(response)
    except ValueError:
        return False  # e.g. InvalidSetOrdering: a certificate SET out of DER order (OpenSSL tokens)
    signer_der = signer.public_bytes(Encoding.DER)
    embedded = {c.public_bytes(Encoding.DER) for c in tok.certificates}
    if embedded and signer_der not in embedded:
        return False  # it looks for the signer in the bag only, and we found it elsewhere
    builder = rfc3161_client.VerifierBuilder()
    if not embedded:
        builder = builder.tsa_certificate(signer)
    seen: set[bytes] = set()
    for cert in roots:
        if (der := cert.public_bytes(Encoding.DER)) not in seen:
            seen.add(der)
            builder = builder.add_root_certificate(cert)
    seen.add(signer_der)
    for cert in extras:
        if (der := cert.public_bytes(Encoding.DER)) not in seen:
            seen.add(der)
            builder = builder.add_intermediate_certificate(cert)
    if nonce is not None and nonce >= 0:
        builder = builder.nonce(nonce)
    try:
        builder.build().verify(resp, digest)
    except (rfc3161_client.VerificationError, ValueError, TypeError) as e:
        raise TimestampError(f"rfc3161-client rejects the token: {e}") from None
    return True
