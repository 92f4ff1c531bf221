"""Verify a DKIM signature (RFC 6376) offline, against a key record given as text: pure functions of bytes.

The verifier installs without dkimpy, and must never ask DNS: N1 gives this module the sealed e-mail
and the TXT record sealed beside it at import, and nothing else. Supported: ``rsa-sha256`` and
``ed25519-sha256`` (RFC 8463), ``simple`` and ``relaxed`` canonicalization of header and body, and
the ``l=`` body length. ``rsa-sha1`` is refused (RFC 8301). The first DKIM-Signature is checked.

A reply is evidence against a platform, so what a forger could do with a real signature is refused:
- h= must name From (RFC 6376 §5.4), and a field the message may hold once (RFC 5322 §3.6) must not
  appear more often than h= names it: a second From (or Subject, To, ...) added above a signed one is
  what a mail program shows, unsigned (RFC 6376 §8.15), unless the signer over-signed it;
- t= and x= (§3.5): a signature that expires before it was made, that had expired when it was
  checked (``checked_at``: when the key record was fetched), or made after it was checked;
- l= (§8.2): a length over the body is invalid; content after it is reported as unsigned;
- i= must be d= or a subdomain of it (§3.5), and exactly d= when the key says t=s (§3.6.1);
- a key in testing mode (t=y) counts as no signature (§3.6.1: ``DkimTesting``), an empty p= is a
  revoked key, and k=, h= and s= of the key record must allow this signature (§3.6.1);
- unsupported algorithms and RSA keys under 1024 bits (RFC 8301 §3.1, §3.2).

Raises ``DkimFailure`` (a VerificationError) with the reason, or returns the signing domain and selector.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import load_der_public_key

from verifier.errors import VerificationError

#: RSA keys shorter than this are refused (RFC 8301 §3.2).
MIN_RSA_BITS = 1024
#: How far a signature's t= may lie after the moment it was checked (clocks of mail servers drift).
MAX_CLOCK_SKEW_SECONDS = 900
#: Fields RFC 5322 §3.6 allows once: an extra, unsigned instance would be the one a reader sees.
SINGLE_FIELDS = (b"from", b"sender", b"reply-to", b"to", b"cc", b"subject", b"date", b"message-id",
                 b"in-reply-to", b"references")
ALGORITHMS = {"rsa-sha256": "rsa", "ed25519-sha256": "ed25519"}
#: l= and t=/x= are decimal; RFC 6376 caps them at 76 and 12 digits.
_DECIMAL = re.compile(rb"\A[0-9]{1,76}\Z")
MAX_MESSAGE_BYTES = 32 << 20
_WSP = re.compile(rb"[ \t]+")
_FOLD = re.compile(rb"\r?\n(?=[ \t])")
#: The b= tag's value (base64 with folding whitespace), as RFC 6376 §3.7 empties it; not bh=.
_B_VALUE = re.compile(rb"((?:^|[;\s])b[ \t\r\n]*=)(?:(?:[ \t]*\r?\n)?[ \t]*[A-Za-z0-9+/=])*(?:\r?\n\Z)?")


class DkimFailure(VerificationError):
    """The DKIM signature does not verify; the message says why."""


class DkimTesting(DkimFailure):
    """The key record says t=y (the domain is testing DKIM): RFC 6376 §3.6.1 has verifiers treat the
    message as unsigned, whatever the signature."""


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


@dataclass(frozen=True)
class _KeyRecord:
    key_type: str
    key_bytes: bytes
    flags: tuple[str, ...]


def _public_key(record: str, algorithm: str) -> _KeyRecord:
    tags = tag_list(record.encode("ascii", "replace"))
    if tags.get("v", b"DKIM1") != b"DKIM1":
        raise DkimFailure("the key record is not v=DKIM1")
    if not tags.get("p"):
        raise DkimFailure("the key record has an empty p=: the key was revoked")
    key_type = tags.get("k", b"rsa").decode("ascii", "replace").strip().lower()
    if not key_type:
        raise DkimFailure("the key record has an empty k=: no key type")
    if key_type != ALGORITHMS.get(algorithm):
        raise DkimFailure(f"the key record is k={key_type}, which cannot check an {algorithm} signature")
    hashes_allowed = [h.strip().lower() for h in tags.get("h", b"sha256").split(b":")]
    if b"sha256" not in hashes_allowed:
        raise DkimFailure("the key record's h= does not allow sha256")
    services = [v.strip().lower() for v in tags.get("s", b"*").split(b":")]
    if b"*" not in services and b"email" not in services:
        raise DkimFailure("the key record's s= does not allow e-mail")
    flags = tuple(f.strip().decode("ascii", "replace").lower() for f in tags.get("t", b"").split(b":") if f.strip())
    try:
        return _KeyRecord(key_type, base64.b64decode(tags["p"], validate=True), flags)
    except binascii.Error as exc:
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


def _decimal(tags: dict[str, bytes], name: str, digits: int) -> int | None:
    value = tags.get(name)
    if value is None:
        return None
    if not _DECIMAL.match(value) or len(value) > digits:
        raise DkimFailure(f"{name}= is not a decimal number of at most {digits} digits")
    return int(value)


def _check_times(tags: dict[str, bytes], checked_at: datetime | None) -> None:
    """t= and x= (RFC 6376 §3.5): x after t, and the signature valid when it was checked."""
    signed_at, expires = _decimal(tags, "t", 12), _decimal(tags, "x", 12)
    if signed_at is not None and expires is not None and expires < signed_at:
        raise DkimFailure(f"the signature expires (x={expires}) before it was made (t={signed_at})")
    if checked_at is None:
        return
    moment = checked_at.timestamp()
    if expires is not None and expires < moment:
        raise DkimFailure(f"the signature had expired ({_utc_text(expires)}) when it was checked "
                          f"({_utc_text(int(moment))})")
    if signed_at is not None and signed_at > moment + MAX_CLOCK_SKEW_SECONDS:
        raise DkimFailure(f"the signature says it was made at {_utc_text(signed_at)}, after it was checked "
                          f"({_utc_text(int(moment))})")


def _utc_text(seconds: int) -> str:
    try:
        return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, OSError, ValueError):
        return f"{seconds} s after 1970"


def _check_identity(tags: dict[str, bytes], domain: str, key: _KeyRecord) -> str | None:
    """The i= identity (RFC 6376 §3.5): its domain is d= or under it; exactly d= under a t=s key."""
    identity = tags.get("i")
    if identity is None:
        return None
    text = identity.decode("ascii", "replace")
    _, at, where = text.rpartition("@")
    where = where.lower().rstrip(".")
    if not at or not (where == domain or where.endswith("." + domain)):
        raise DkimFailure(f"i={text} is not within d={domain}")
    if "s" in key.flags and where != domain:
        raise DkimFailure(f"i={text} is a subdomain of d={domain}, which the key (t=s) does not allow")
    return text


def _check_fields(names: list[bytes], fields: list[tuple[bytes, bytes]]) -> None:
    """From is signed, appears once, and no once-only field has an instance h= does not cover."""
    if b"from" not in names:
        raise DkimFailure("the signature does not cover From")
    counts: dict[bytes, int] = {}
    for name, _ in fields:
        counts[name] = counts.get(name, 0) + 1
    if counts.get(b"from", 0) != 1:
        raise DkimFailure(f"the message has {counts.get(b'from', 0)} From fields: which sender is meant is ambiguous")
    for name in SINGLE_FIELDS:
        signed = names.count(name)
        if signed and counts.get(name, 0) > signed:
            field_name = name.decode("ascii").title()
            raise DkimFailure(f"the message has {counts[name]} {field_name} fields and the signature covers "
                              f"{signed}: an unsigned one was added")


def verify_dkim(message: bytes, key_record: str, *, checked_at: datetime | None = None) -> DkimPass:
    """Check the first DKIM-Signature of ``message`` with ``key_record`` (the TXT value), as of ``checked_at``
    (when the key record was fetched; None: t= and x= are checked only against each other).
    Raises DkimTesting for a key in testing mode, DkimFailure for every other failure."""
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
    algorithm = tags["a"].decode("ascii", "replace").strip().lower()
    if algorithm == "rsa-sha1":
        raise DkimFailure("rsa-sha1 signatures are refused (RFC 8301 §3.1)")
    if algorithm not in ALGORITHMS:
        raise DkimFailure(f"algorithm {algorithm[:40]} is not supported")
    domain = tags["d"].decode("ascii", "replace").strip().lower().rstrip(".")
    header_c, _, body_c = tags.get("c", b"simple/simple").decode("ascii", "replace").partition("/")
    body_c = body_c or "simple"
    if {header_c, body_c} - {"simple", "relaxed"}:
        raise DkimFailure(f"canonicalization {header_c}/{body_c} is not defined")
    _check_times(tags, checked_at)
    signed_body = canonical_body(body, body_c)
    whole_body = len(signed_body)
    length = _decimal(tags, "l", 76)
    if length is not None:
        if length > whole_body:
            raise DkimFailure(f"l={length} is longer than the body ({whole_body} bytes canonicalized)")
        signed_body = signed_body[:length]
    expected = tags["bh"]
    if base64.b64encode(hashlib.sha256(signed_body).digest()) != expected:
        raise DkimFailure("the body hash does not match bh=: the body was changed after signing")
    names = [n.strip().lower() for n in tags["h"].split(b":") if n.strip()]
    _check_fields(names, fields)
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
    key = _public_key(key_record, algorithm)
    identity = _check_identity(tags, domain, key)
    _verify(algorithm, key.key_type, key.key_bytes, signature, data)
    if "y" in key.flags:
        raise DkimTesting(f"the key of {domain} is in testing mode (t=y): the signature verifies, but RFC 6376 "
                          "§3.6.1 has it count as no signature")
    return DkimPass(domain=domain, selector=tags["s"].decode("ascii", "replace"),
                    algorithm=algorithm, signed_headers=tuple(n.decode("ascii", "replace") for n in names),
                    identity=identity, unsigned_body_bytes=whole_body - len(signed_body))
