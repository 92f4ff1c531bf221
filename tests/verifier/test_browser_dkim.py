"""The page's DKIM rules (verifier/browser/src/dkim.js), one case per class a forged reply could use.

Each message is signed here by a small RFC 6376 signer that lets a test set any tag (x=, t=, i=, l=,
h=), using the Python verifier's own canonicalization, then checked by the page's code under node
(its WebCrypto is the browser's API). The rules mirror those of verifier/dkim.py: From signed and alone,
no unsigned extra once-only field, x= not before t= nor past (and t= not after) when the key record was
fetched, l= within the body, i= within d=, a t=y key counts as no signature, an empty p= is a revoked
key, only rsa-sha256 and ed25519-sha256 and a key record allowing them, RSA keys of 1024 bits or more.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from verifier.dkim import canonical_body, canonical_header, split_message

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "verifier" / "browser" / "test" / "dkim_cases.mjs"
MESSAGE = (b"From: IP Team <ip@platform.example>\r\nTo: notices@operator.example\r\nSubject: Re: notice\r\n"
           b"Date: Tue, 01 Dec 2026 10:00:00 +0000\r\n\r\nWe removed the listing.\r\n")
CHECKED_AT = "2026-12-01T10:05:00Z"
T_SIGNED = 1796119200  # 2026-12-01T10:00:00Z


def _record(public: rsa.RSAPublicKey) -> str:
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode()}"


def _rsa() -> tuple[rsa.RSAPrivateKey, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key, _record(key.public_key())


def sign(key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey, *, message: bytes = MESSAGE, h: str = "from:to:subject",
         extra: str = "", algorithm: str | None = None, body_length: int | None = None) -> bytes:
    """A relaxed/relaxed DKIM-Signature over ``message`` with the tags given, prepended to it."""
    algorithm = algorithm or ("ed25519-sha256" if isinstance(key, ed25519.Ed25519PrivateKey) else "rsa-sha256")
    fields, body = split_message(message)
    signed_body = canonical_body(body, "relaxed")
    if body_length is not None:
        signed_body = signed_body[:body_length]
        extra += f" l={body_length};"
    bh = base64.b64encode(hashlib.sha256(signed_body).digest()).decode()
    field = (f"DKIM-Signature: v=1; a={algorithm}; c=relaxed/relaxed; d=platform.example; s=s1;{extra} h={h}; "
             f"bh={bh}; b=")
    remaining: dict[bytes, list[bytes]] = {}
    for name, raw in fields:
        remaining.setdefault(name, []).append(raw)
    data = b"".join(canonical_header(remaining[n.encode()].pop(), "relaxed") for n in h.split(":")
                    if remaining.get(n.encode()))
    data += canonical_header(field.encode() + b"\r\n", "relaxed").removesuffix(b"\r\n")
    if isinstance(key, ed25519.Ed25519PrivateKey):
        signature = key.sign(hashlib.sha256(data).digest())
    else:
        signature = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    return (field + base64.b64encode(signature).decode() + "\r\n").encode() + message


def test_page_dkim_rules(tmp_path: Path) -> None:
    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    key, record = _rsa()
    # A 768-bit public key (no library here makes such a private key): the size is refused before any maths.
    small_record = _record(rsa.RSAPublicNumbers(65537, (1 << 767) | 0x1D).public_key())
    ed = ed25519.Ed25519PrivateKey.generate()
    ed_record = "v=DKIM1; k=ed25519; p=" + base64.b64encode(
        ed.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)).decode()
    cases = {
        "rsa": (sign(key), record, "pass"),
        "ed25519": (sign(ed), ed_record, "pass"),
        "header byte changed": (sign(key).replace(b"Subject: Re:", b"Subject: RE:"), record, "does not match"),
        "body changed": (sign(key).replace(b"removed", b"kept"), record, "body hash"),
        "From not signed": (sign(key, h="to:subject"), record, "does not cover From"),
        "a second From above": (b"From: ceo@owner.example\r\n" + sign(key), record, "2 From fields"),
        "an unsigned Subject above": (b"Subject: urgent\r\n" + sign(key), record,
                                      "2 Subject fields and the signature covers 1"),
        "x before t": (sign(key, extra=f" t={T_SIGNED}; x={T_SIGNED - 60};"), record, "before it was made"),
        "expired when checked": (sign(key, extra=f" t={T_SIGNED}; x={T_SIGNED + 60};"), record,
                                 "had expired (2026-12-01 10:01:00 UTC) when it was checked (2026-12-01 10:05:00 UTC)"),
        "made after it was checked": (sign(key, extra=f" t={T_SIGNED + 3600};"), record, "after it was checked"),
        "x after the check": (sign(key, extra=f" t={T_SIGNED}; x={T_SIGNED + 86400};"), record, "pass"),
        "t= not a number": (sign(key, extra=" t=12ab;"), record, "t= is not a decimal number of at most 12 digits"),
        "i= outside d=": (sign(key, extra=" i=ceo@owner.example;"), record, "is not within d=platform.example"),
        "i= in a subdomain of d=": (sign(key, extra=" i=ip@mail.platform.example;"), record, "pass"),
        "i= in a subdomain, key t=s": (sign(key, extra=" i=ip@mail.platform.example;"), record + "; t=s",
                                       "which the key (t=s) does not allow"),
        "l= leaves bytes unsigned": (sign(key, body_length=10), record, "pass (15 unsigned)"),
        "l= over the body": (sign(key, body_length=10).replace(b"l=10;", b"l=99;"), record, "l=99 is longer than"),
        "testing key t=y": (sign(key), record + "; t=y", "testing mode (t=y)"),
        "revoked key (empty p=)": (sign(key), "v=DKIM1; k=rsa; p=", "revoked"),
        "key for another service": (sign(key), record + "; s=other", "s= does not allow e-mail"),
        "key for another hash": (sign(key), record + "; h=sha1", "h= does not allow sha256"),
        "rsa-sha1": (sign(key, algorithm="rsa-sha1"), record, "rsa-sha1 signatures are refused"),
        "RSA key under 1024 bits": (sign(key), small_record, "768 bits, under 1024"),
        "ed25519 signature, rsa record": (sign(ed), record, "cannot check an ed25519-sha256 signature"),
    }
    document = [{"name": name, "message": base64.b64encode(message).decode(), "record": rec, "checked_at": CHECKED_AT}
                for name, (message, rec, _) in cases.items()]
    path = tmp_path / "cases.json"
    path.write_text(json.dumps(document))
    result = subprocess.run(["node", str(SCRIPT), str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    outcomes = json.loads(result.stdout)
    wrong = [f"{name}: expected {expected!r}, page says {outcomes[name]!r}" for name, (_, _, expected) in cases.items()
             if not (outcomes[name] == expected if expected.startswith("pass") else
                     outcomes[name].startswith("fail:") and expected in outcomes[name])]
    assert wrong == [], "\n".join(wrong)
