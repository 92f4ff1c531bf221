"""The verifier's own DKIM check against signatures dkimpy made (every canonicalization, RSA and Ed25519),
and against what a forged reply could do with a real signature: one test per class."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from hashlib import sha256

import dkim
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from verifier.dkim import DkimFailure, DkimTesting, canonical_body, canonical_header, split_message, verify_dkim

MESSAGE = (b"From: Platform IP Team <ip@platform.example>\r\n"
           b"To: notices@operator.example\r\n"
           b"Subject:  Re: notice   nt-1\r\n\tfolded part\r\n"
           b"Date: Tue, 01 Dec 2026 10:00:00 +0000\r\n"
           b"Message-ID: <r1@platform.example>\r\n"
           b"\r\n"
           b"We removed the listing.  \r\n\r\nRegards \t team\r\n\r\n\r\n")


def _rsa() -> tuple[bytes, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem, f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode()}"


RSA_KEY = _rsa()


@pytest.mark.parametrize("canon", [(b"simple", b"simple"), (b"relaxed", b"relaxed"), (b"relaxed", b"simple"),
                                   (b"simple", b"relaxed")], ids=lambda c: b"/".join(c).decode())
def test_rsa_signatures_of_dkimpy_verify(canon: tuple[bytes, bytes]) -> None:
    pem, record = RSA_KEY
    signed = dkim.sign(MESSAGE, b"s1", b"platform.example", pem, canonicalize=canon,
                       include_headers=[b"from", b"to", b"subject", b"date", b"message-id"]) + MESSAGE
    assert dkim.verify(signed, dnsfunc=lambda name, timeout=5: record.encode())
    result = verify_dkim(signed, record)
    assert (result.domain, result.selector, result.algorithm) == ("platform.example", "s1", "rsa-sha256")


def test_ed25519_signature_of_dkimpy_verifies() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    seed = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                             serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    record = f"v=DKIM1; k=ed25519; p={base64.b64encode(public).decode()}"
    signed = dkim.sign(MESSAGE, b"ed", b"platform.example", base64.b64encode(seed),
                       signature_algorithm=b"ed25519-sha256", canonicalize=(b"relaxed", b"relaxed")) + MESSAGE
    assert verify_dkim(signed, record).algorithm == "ed25519-sha256"


def _signed() -> bytes:
    signature: bytes = dkim.sign(MESSAGE, b"s1", b"platform.example", RSA_KEY[0], canonicalize=(b"relaxed", b"relaxed"))
    return signature + MESSAGE


@pytest.mark.parametrize(("old", "new", "why"), [
    (b"Subject:  Re: notice", b"Subject:  Re: notiCe", "does not match the signed headers"),
    (b"From: Platform", b"From: Plotform", "does not match the signed headers"),
    (b"We removed the listing.", b"We kept the listing.   ", "body hash"),
])
def test_one_changed_byte_fails(old: bytes, new: bytes, why: str) -> None:
    tampered = _signed().replace(old, new, 1)
    with pytest.raises(DkimFailure, match=why):
        verify_dkim(tampered, RSA_KEY[1])


def test_wrong_key_revoked_key_and_no_signature_fail() -> None:
    with pytest.raises(DkimFailure, match="does not match"):
        verify_dkim(_signed(), _rsa()[1])
    with pytest.raises(DkimFailure, match="revoked"):
        verify_dkim(_signed(), "v=DKIM1; k=rsa; p=")
    with pytest.raises(DkimFailure, match="no DKIM-Signature"):
        verify_dkim(MESSAGE, RSA_KEY[1])


def test_a_body_length_limit_is_reported() -> None:
    signed = dkim.sign(MESSAGE, b"s1", b"platform.example", RSA_KEY[0], length=True) + MESSAGE
    assert verify_dkim(signed, RSA_KEY[1]).unsigned_body_bytes == 0
    appended = signed + b"P.S. appended after signing\r\n"
    # The blank lines that ended the signed body are body lines now, before the appended one.
    assert verify_dkim(appended, RSA_KEY[1]).unsigned_body_bytes == len(b"\r\n\r\nP.S. appended after signing\r\n")


# -- what a forged reply could try with a real signature (RFC 6376 §3.5, §3.6.1, §5.4, §8; RFC 8301) --
#
# dkimpy refuses to make most of these signatures (no From in h=, no x=, no chosen l=), so `forge` signs
# with the tags given, the RFC 6376 way: the body and header canonicalization are the ones the tests
# above hold to dkimpy's.

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
T = int(NOW.timestamp())


def forge(message: bytes, *, headers: str = "from:to:subject", extra: str = "", domain: str = "platform.example",
          algorithm: str = "rsa-sha256", pem: bytes | None = None, body_length: int | None = None) -> bytes:
    key = serialization.load_pem_private_key(pem or RSA_KEY[0], password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    fields, body = split_message(message)
    canonical = canonical_body(body, "relaxed")
    body_hash = base64.b64encode(sha256(canonical[:body_length] if body_length else canonical).digest()).decode()
    value = (f" v=1; a={algorithm}; c=relaxed/relaxed; d={domain}; s=s1; h={headers};{extra} bh={body_hash}; b=")
    remaining: dict[bytes, list[bytes]] = {}
    for name, raw in fields:
        remaining.setdefault(name, []).append(raw)
    data = b""
    for name in headers.encode().split(b":"):
        if remaining.get(name):
            data += canonical_header(remaining[name].pop(), "relaxed")
    data += canonical_header(b"DKIM-Signature:" + value.encode(), "relaxed").removesuffix(b"\r\n")
    signature = base64.b64encode(key.sign(data, padding.PKCS1v15(), hashes.SHA256())).decode()
    return f"DKIM-Signature:{value}{signature}\r\n".encode() + message


def test_the_forging_signer_makes_signatures_the_verifier_accepts() -> None:
    assert verify_dkim(forge(MESSAGE), RSA_KEY[1], checked_at=NOW).domain == "platform.example"


def test_h_must_name_from() -> None:
    with pytest.raises(DkimFailure, match="does not cover From"):
        verify_dkim(forge(MESSAGE, headers="to:subject"), RSA_KEY[1])


def test_a_signature_that_expires_before_it_was_made_is_invalid() -> None:
    with pytest.raises(DkimFailure, match=r"expires \(x=.*\) before it was made"):
        verify_dkim(forge(MESSAGE, extra=f" t={T}; x={T - 1};"), RSA_KEY[1])


def test_expiry_and_signing_time_are_judged_at_the_moment_the_key_was_checked() -> None:
    signed = forge(MESSAGE, extra=f" t={T - 3600}; x={T + 3600};")
    assert verify_dkim(signed, RSA_KEY[1], checked_at=NOW).domain == "platform.example"
    with pytest.raises(DkimFailure, match="had expired"):
        verify_dkim(signed, RSA_KEY[1], checked_at=datetime.fromtimestamp(T + 7200, UTC))
    with pytest.raises(DkimFailure, match="after it was checked"):
        verify_dkim(forge(MESSAGE, extra=f" t={T + 86400};"), RSA_KEY[1], checked_at=NOW)
    with pytest.raises(DkimFailure, match="decimal number"):
        verify_dkim(forge(MESSAGE, extra=" x=soon;"), RSA_KEY[1], checked_at=NOW)


def test_an_added_unsigned_from_or_subject_fails_and_over_signing_protects() -> None:
    signed = forge(MESSAGE, headers="from:to:subject")
    # A reader sees the top field; the signature covers the bottom one.
    with pytest.raises(DkimFailure, match="2 From fields"):
        verify_dkim(b"From: ceo@owner.example\r\n" + signed, RSA_KEY[1])
    with pytest.raises(DkimFailure, match="2 Subject fields and the signature covers 1: an unsigned one was added"):
        verify_dkim(b"Subject: we refuse to remove anything\r\n" + signed, RSA_KEY[1])
    # Over-signed (h= names Subject once more than the message has it): an added one breaks the signature.
    over = forge(MESSAGE, headers="from:to:subject:subject")
    assert verify_dkim(over, RSA_KEY[1]).signed_headers == ("from", "to", "subject", "subject")
    with pytest.raises(DkimFailure, match="does not match the signed headers"):
        verify_dkim(b"Subject: we refuse to remove anything\r\n" + over, RSA_KEY[1])


def test_a_body_length_over_the_body_is_invalid_and_appended_text_is_reported() -> None:
    body_bytes = len(canonical_body(split_message(MESSAGE)[1], "relaxed"))
    with pytest.raises(DkimFailure, match=f"l={body_bytes + 10} is longer than the body"):
        verify_dkim(forge(MESSAGE, extra=f" l={body_bytes + 10};"), RSA_KEY[1])
    signed = forge(MESSAGE, extra=f" l={body_bytes - 12};", body_length=body_bytes - 12)
    assert verify_dkim(signed, RSA_KEY[1]).unsigned_body_bytes == 12


def test_the_identity_must_be_within_the_signing_domain() -> None:
    # "notplatform.example" ends with "platform.example" as a string, not as a domain.
    for identity in ("ip@notplatform.example", "ip@platform.example.evil.example", "no-at-sign"):
        with pytest.raises(DkimFailure, match=r"is not within d=platform\.example"):
            verify_dkim(forge(MESSAGE, extra=f" i={identity};"), RSA_KEY[1])
    within = forge(MESSAGE, extra=" i=ip@legal.platform.example;")
    assert verify_dkim(within, RSA_KEY[1]).identity == "ip@legal.platform.example"
    # A key with t=s allows no subdomain.
    with pytest.raises(DkimFailure, match="t=s"):
        verify_dkim(within, RSA_KEY[1] + "; t=s")


def test_a_key_in_testing_mode_counts_as_no_signature() -> None:
    with pytest.raises(DkimTesting, match="testing mode"):
        verify_dkim(forge(MESSAGE), RSA_KEY[1] + "; t=y")


def test_revoked_empty_and_mismatched_key_records() -> None:
    signed = forge(MESSAGE)
    public = RSA_KEY[1].split("p=", 1)[1]
    for record, why in ((f"v=DKIM1; k=; p={public}", "empty k="),
                        ("v=DKIM1; k=rsa; p=", "revoked"),
                        (f"v=DKIM1; k=ed25519; p={public}", "k=ed25519, which cannot check an rsa-sha256"),
                        (f"v=DKIM1; k=rsa; h=sha1; p={public}", "h= does not allow sha256"),
                        (f"v=DKIM1; k=rsa; s=tlsrpt; p={public}", "s= does not allow e-mail")):
        with pytest.raises(DkimFailure, match=why):
            verify_dkim(signed, record)


def test_unsupported_algorithms_are_refused() -> None:
    with pytest.raises(DkimFailure, match=r"rsa-sha1 signatures are refused \(RFC 8301"):
        verify_dkim(forge(MESSAGE, algorithm="rsa-sha1"), RSA_KEY[1])
    with pytest.raises(DkimFailure, match="algorithm rsa-md5 is not supported"):
        verify_dkim(forge(MESSAGE, algorithm="rsa-md5"), RSA_KEY[1])


def test_rsa_keys_under_1024_bits_are_refused() -> None:
    # cryptography will not make a 768-bit key; the check looks at the published key's size, so a
    # public key of that size (an odd 768-bit modulus) is what a record would carry.
    modulus = (1 << 767) | int.from_bytes(sha256(b"weak").digest() * 3, "big") | 1
    weak = rsa.RSAPublicNumbers(65537, modulus).public_key()
    der = weak.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(DkimFailure, match="768 bits, under 1024"):
        verify_dkim(forge(MESSAGE), f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode()}")
