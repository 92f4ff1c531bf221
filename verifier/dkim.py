"""Verify a DKIM signature (RFC 6376) offline, against a key record given as text: pure functions of bytes.

The verifier installs without dkimpy, and must never ask DNS: N1 gives this module the sealed e-mail
and the TXT record sealed beside it at import, and nothing else. Supported: ``rsa-sha256`` and
``ed25519-sha256`` (RFC 8463), ``simple`` and ``relaxed`` canonicalization of header and body, and
the ``l=`` body length. ``rsa-sha1`` is refused (RFC 8301). The first DKIM-Signature is checked.

Raises ``DkimFailure`` (a VerificationError) with the reason, or returns the signing domain and selector.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import load_der_public_key

from verifier.errors import VerificationError

#: RSA keys shorter than this are refused (RFC 8301 §3.2).
MIN_RSA_BITS = 1024
MAX_MESSAGE_BYTES = 32 << 20
_WSP = re.compile(rb"[ \t]+")
_FOLD = re.compile(rb"\r?\n(?=[ \t])")
#: The b= tag's value (base64 with folding whitespace), as RFC 6376 §3.7 empties it; not bh=.
_B_VALUE = re.compile(rb"((?:^|[;\s])b[ \t\r\n]*=)(?:(?:[ \t]*\r?\n)?[ \t]*[A-Za-z0-9+/=])*(?:\r?\n\Z)?")


class DkimFailure(VerificationError):
    """The DKIM signature does not verify; the message says why."""


@dataclass(frozen=True)
class DkimPass:
    domain: str
    selector: str
    algorithm: str
    signed_headers: tuple[str, ...]
    #: The signing identity (``i=``), when given.
    identity: str | None = None
    #: Body bytes after the ``l=`` length, which the signature does not cover (0 without ``l=``).
    unsigned_body_bytes: int = 0


def tag_list(value: bytes) -> dict[str, bytes]:
    """An RFC 6376 §3.2 tag list as a dict; folding whitespace inside values is removed."""
    tags: dict[str, bytes] = {}
    for part in value.split(b";"):
        if not part.strip():
            continue
        name, eq, tag_value = part.partition(b"=")
        if not eq:
            raise DkimFailure(f"malformed tag {part.strip()[:20]!r}")
        key = name.strip().decode("ascii", "replace")
        if key in tags:
            raise DkimFailure(f"tag {key}= appears twice")
        tags[key] = re.sub(rb"[ \t\r\n]+", b"", tag_value) if key in ("b", "bh", "p") else tag_value.strip()
    return tags


def split_message(message: bytes) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """(headers as (lower-case name, raw field with its line end), body). Accepts LF-only input as CRLF."""
    if b"\r\n" not in message:
        message = message.replace(b"\n", b"\r\n")
    head, sep, body = message.partition(b"\r\n\r\n")
    if not sep:
        head, body = message, b""
    fields: list[tuple[bytes, bytes]] = []
    for line in (head + b"\r\n").split(b"\r\n")[:-1]:
        if line[:1] in (b" ", b"\t") and fields:
            name, raw = fields[-1]
            fields[-1] = (name, raw + line + b"\r\n")
        elif line:
            fields.append((line.split(b":", 1)[0].strip().lower(), line + b"\r\n"))
    return fields, body


def canonical_body(body: bytes, method: str) -> bytes:
    if method == "relaxed":
        lines = [_WSP.sub(b" ", line).rstrip(b" ") for line in body.split(b"\r\n")]
        body = b"\r\n".join(lines)
    body = body.rstrip(b"\r\n")
    if body or method == "simple":
        body += b"\r\n"
    return body


def canonical_header(raw: bytes, method: str) -> bytes:
    if method == "simple":
        return raw
    name, _, value = raw.partition(b":")
    value = _FOLD.sub(b"", value).rstrip(b"\r\n")
    value = _WSP.sub(b" ", value).strip(b" ")
    return name.strip().lower() + b":" + value + b"\r\n"


def _public_key(record: str) -> tuple[str, bytes]:
    tags = tag_list(record.encode("ascii", "replace"))
    if tags.get("v", b"DKIM1") != b"DKIM1":
        raise DkimFailure("the key record is not v=DKIM1")
    if not tags.get("p"):
        raise DkimFailure("the key record has an empty p=: the key was revoked")
    try:
        return tags.get("k", b"rsa").decode("ascii"), base64.b64decode(tags["p"], validate=True)
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise DkimFailure(f"the key record's p= is not base64: {exc}") from exc


def _verify(algorithm: str, key_type: str, key_bytes: bytes, signature: bytes, data: bytes) -> None:
    try:
        if algorithm == "rsa-sha256" and key_type == "rsa":
            key = load_der_public_key(key_bytes)
            if not isinstance(key, rsa.RSAPublicKey):
                raise DkimFailure("the key record's p= is not an RSA key")
            if key.key_size < MIN_RSA_BITS:
                raise DkimFailure(f"the RSA key has {key.key_size} bits, under {MIN_RSA_BITS}")
            key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
        elif algorithm == "ed25519-sha256" and key_type == "ed25519":
            ed25519.Ed25519PublicKey.from_public_bytes(key_bytes).verify(signature, hashlib.sha256(data).digest())
        else:
            raise DkimFailure(f"algorithm {algorithm} with a k={key_type} key is not supported")
    except InvalidSignature as exc:
        raise DkimFailure("the signature does not match the signed headers") from exc
    except ValueError as exc:
        raise DkimFailure(f"the key record's key is unusable: {exc}") from exc


def verify_dkim(message: bytes, key_record: str) -> DkimPass:
    """Check the first DKIM-Signature of ``message`` with ``key_record`` (the TXT value). Raises DkimFailure."""
    if len(message) > MAX_MESSAGE_BYTES:
        raise DkimFailure(f"the message is over {MAX_MESSAGE_BYTES} bytes")
    fields, body = split_message(message)
    signature_field = next((raw for name, raw in fields if name == b"dkim-signature"), None)
    if signature_field is None:
        raise DkimFailure("the message carries no DKIM-Signature")
    tags = tag_list(signature_field.split(b":", 1)[1])
    for required in ("v", "a", "b", "bh", "d", "h", "s"):
        if required not in tags:
            raise DkimFailure(f"the DKIM-Signature lacks {required}=")
    if tags["v"] != b"1":
        raise DkimFailure("the DKIM-Signature is not v=1")
    algorithm = tags["a"].decode("ascii", "replace")
    header_c, _, body_c = tags.get("c", b"simple/simple").decode("ascii", "replace").partition("/")
    body_c = body_c or "simple"
    if {header_c, body_c} - {"simple", "relaxed"}:
        raise DkimFailure(f"canonicalization {header_c}/{body_c} is not defined")
    signed_body = canonical_body(body, body_c)
    whole_body = len(signed_body)
    if "l" in tags:
        try:
            signed_body = signed_body[:int(tags["l"])]
        except ValueError as exc:
            raise DkimFailure("l= is not a number") from exc
    expected = tags["bh"]
    if base64.b64encode(hashlib.sha256(signed_body).digest()) != expected:
        raise DkimFailure("the body hash does not match bh=: the body was changed after signing")
    names = [n.strip().lower() for n in tags["h"].split(b":") if n.strip()]
    if b"from" not in names:
        raise DkimFailure("the signature does not cover From")
    # Each name in h= takes the next instance of that field from the bottom (RFC 6376 §5.4.2).
    remaining: dict[bytes, list[bytes]] = {}
    for name, raw in fields:
        remaining.setdefault(name, []).append(raw)
    data = b""
    for name in names:
        instances = remaining.get(name)
        if instances:
            data += canonical_header(instances.pop(), header_c)
    # The signature's own field is signed with its b= value empty, and without its final line end.
    name_part, _, value_part = signature_field.partition(b":")
    data += canonical_header(name_part + b":" + _B_VALUE.sub(rb"\1", value_part), header_c).removesuffix(b"\r\n")
    try:
        signature = base64.b64decode(tags["b"], validate=True)
    except binascii.Error as exc:
        raise DkimFailure("b= is not base64") from exc
    key_type, key_bytes = _public_key(key_record)
    _verify(algorithm, key_type, key_bytes, signature, data)
    identity = tags.get("i")
    return DkimPass(domain=tags["d"].decode("ascii", "replace").lower(), selector=tags["s"].decode("ascii", "replace"),
                    algorithm=algorithm, signed_headers=tuple(n.decode("ascii", "replace") for n in names),
                    identity=identity.decode("ascii", "replace") if identity else None,
                    unsigned_body_bytes=whole_body - len(signed_body))
