"""The verifier's own DKIM check against signatures dkimpy made: every canonicalization, RSA and Ed25519."""

from __future__ import annotations

import base64

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from verifier.dkim import DkimFailure, verify_dkim

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
    return dkim.sign(MESSAGE, b"s1", b"platform.example", RSA_KEY[0], canonicalize=(b"relaxed", b"relaxed")) + MESSAGE


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
