"""RFC 3161 tokens taken apart: a TimeStampResp, or a bare TimeStampToken as PDF, CAdES and
Authenticode signatures embed it (a CMS ContentInfo without the response's status).

Boundary: part of timestamp verification. Parsing decides which bytes the checks in
``verifier.timestamp`` look at, so a change here can turn an invalid token into a valid one.
Nothing here is verified yet; input that cannot be taken apart raises ``UnreadableToken``
with a short reason (library messages are clipped: a hostile file must not fill a terminal).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from asn1crypto import cms, core, tsp
from cryptography import x509

from verifier.errors import TimestampError
from verifier.tsa_chain import MAX_CERTIFICATES

#: A TimeStampResp is a few KiB; anything larger is not one we parse.
MAX_TSR_BYTES = 1 << 20
ID_CT_TST_INFO = "1.2.840.113549.1.9.16.1.4"
NOT_A_TOKEN = "not an RFC 3161 time-stamp token or response"  # noqa: S105 (a message, not a secret)
_GRANTED = b"\x30\x03\x02\x01\x00"  # PKIStatusInfo { status granted }
_LONG_NUMBER = re.compile(r"\d{16,}")
_MAX_REASON = 120


class UnreadableToken(TimestampError):
    """The data is no RFC 3161 token at all (not DER, or neither a response nor a token).

    A ``TimestampError``, so a package whose token is garbage fails H4; the ``timestamp``
    command reports it as unusable input (exit 2).
    """


@dataclass(frozen=True)
class EssCertId:
    """The first ESSCertID(v2) of a signing-certificate attribute: it names the signing certificate."""

    hash_algorithm: str
    cert_hash: bytes
    issuer_serial: tuple[bytes, int] | None  # (DER GeneralNames, serial)


@dataclass(frozen=True)
class TimestampToken:
    """A granted TimeStampResp or a bare TimeStampToken, taken apart. Nothing in it is verified yet."""

    response: bytes  # a TimeStampResp: the input, or a bare token wrapped with status granted
    bare: bool  # True when the input was a TimeStampToken without the response around it
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


def parse_timestamp_token(data: bytes) -> TimestampToken:
    """Return the parts of a granted TimeStampResp or of a bare TimeStampToken, unverified.

    Raises UnreadableToken when the data is too large, not DER, or neither of the two;
    TimestampError when a response's status is not granted.
    """
    if len(data) > MAX_TSR_BYTES:
        raise UnreadableToken(f"{NOT_A_TOKEN}: {len(data)} bytes exceed {MAX_TSR_BYTES}")
    try:
        outer = core.Sequence.load(data, strict=True)
        first = outer[0]
    except Exception:  # asn1crypto raises ValueError, TypeError, ... on garbage
        raise UnreadableToken(f"{NOT_A_TOKEN}: not DER-encoded") from None
    if first.class_ == 0 and first.tag == core.ObjectIdentifier.tag:
        return _parse_bare(data)
    if first.class_ != 0 or first.tag != core.Sequence.tag:
        raise UnreadableToken(f"{NOT_A_TOKEN}: DER, but neither a TimeStampResp nor a TimeStampToken")
    try:
        # asn1crypto makes timeStampToken mandatory, but a refusal carries only the status: read it alone.
        status_info = tsp.PKIStatusInfo.load(first.dump())
        status, text = status_info["status"].native, "; ".join(status_info["status_string"].native or [])
    except Exception as e:
        raise UnreadableToken(f"{NOT_A_TOKEN}: bad PKIStatusInfo: {brief(e)}") from None
    if status != "granted":
        raise TimestampError(f"timestamp not granted: status {status}{': ' + brief(text) if text else ''}")
    try:
        token = tsp.TimeStampResp.load(data, strict=True)["time_stamp_token"]
        return _parse_token(token, response=data, bare=False)
    except TimestampError:
        raise
    except Exception as e:  # every library error while taking the token apart means "malformed"
        raise UnreadableToken(f"{NOT_A_TOKEN}: {brief(e)}") from None


def _parse_bare(data: bytes) -> TimestampToken:
    try:
        token = cms.ContentInfo.load(data, strict=True)
        # rfc3161-client reads responses only; a granted status around the same bytes is one.
        return _parse_token(token, response=_der_sequence(_GRANTED + data), bare=True)
    except TimestampError:
        raise
    except Exception as e:
        raise UnreadableToken(f"{NOT_A_TOKEN}: {brief(e)}") from None


def brief(error: object) -> str:
    """One short line from a library error: no long numbers, no multi-line dumps."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    text = _LONG_NUMBER.sub(lambda m: f"<{len(m.group())}-digit number>", text)
    return text if len(text) <= _MAX_REASON else text[:_MAX_REASON - 1] + "…"


def _der_sequence(content: bytes) -> bytes:
    size = len(content)
    if size < 0x80:
        return b"\x30" + bytes([size]) + content
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return b"\x30" + bytes([0x80 | len(length)]) + length + content


def _parse_token(token: Any, *, response: bytes, bare: bool) -> TimestampToken:
    if token["content_type"].native != "signed_data":
        raise UnreadableToken(f"{NOT_A_TOKEN}: the ContentInfo is not CMS SignedData")
    signed = token["content"]
    econtent = signed["encap_content_info"]
    if econtent["content_type"].dotted != ID_CT_TST_INFO or econtent["content"].native is None:
        raise UnreadableToken(f"{NOT_A_TOKEN}: SignedData does not hold a TSTInfo")
    tst_bytes = bytes(econtent["content"].contents)
    tst = tsp.TSTInfo.load(tst_bytes, strict=True)
    if (version := int(tst["version"])) != 1:
        raise TimestampError(f"TSTInfo version {brief(version)} is not 1")
    gen_time = tst["gen_time"].native
    if not isinstance(gen_time, datetime):
        raise TimestampError(f"genTime {brief(gen_time)!r} is out of range")
    acc = tst["accuracy"]
    accuracy = None if acc.native is None else timedelta(
        seconds=acc["seconds"].native or 0, milliseconds=acc["millis"].native or 0,
        microseconds=acc["micros"].native or 0)
    # Other choices (attribute certificates, which Microsoft's TSA adds) say nothing about the signer.
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
        response=response,
        bare=bare,
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
