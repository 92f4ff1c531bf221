"""The operator's Ed25519 signature over the canonical manifest bytes (``evidence/manifest.sig``).

The signature file is a small JSON object so that a court can read what it is without our tools:
``{"alg": "Ed25519", "key_id": "<sha256 of the raw public key, hex>", "signature": "<base64>"}``.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from verifier import canonical
from verifier.errors import InvalidInput, VerificationError

ALGORITHM = "Ed25519"
PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64


@dataclass(frozen=True)
class ManifestSignature:
    alg: str
    key_id: str
    signature: bytes


def key_id(public_key: bytes) -> str:
    """Return the key id of a raw Ed25519 public key: its sha256 in hex."""
    return canonical.sha256_hex(public_key)


def decode_public_key(text: str) -> bytes:
    """Decode a base64 raw Ed25519 public key. Raises InvalidInput."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput("public key is not base64") from exc
    if len(raw) != PUBLIC_KEY_BYTES:
        raise InvalidInput(f"public key is {len(raw)} bytes, expected {PUBLIC_KEY_BYTES}")
    return raw


def encode_signature(key_id_hex: str, signature: bytes) -> bytes:
    """Return the bytes of a ``manifest.sig`` file."""
    body = {"alg": ALGORITHM, "key_id": key_id_hex, "signature": base64.b64encode(signature).decode()}
    return canonical.canonical_json(body)


def parse_signature(data: bytes) -> ManifestSignature:
    """Parse a ``manifest.sig`` file. Raises VerificationError when it is malformed."""
    try:
        body = json.loads(data.decode("utf-8"))
        signature = base64.b64decode(body["signature"], validate=True)
        alg, kid = body["alg"], body["key_id"]
    except (UnicodeDecodeError, ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise VerificationError(f"manifest.sig is malformed: {exc}") from exc
    if alg != ALGORITHM or not isinstance(kid, str) or len(signature) != SIGNATURE_BYTES:
        raise VerificationError(f"manifest.sig is not an {ALGORITHM} signature")
    return ManifestSignature(alg=alg, key_id=kid, signature=signature)


def verify_signature(signature: ManifestSignature, message: bytes, public_key: bytes) -> None:
    """Check an Ed25519 signature. Returns None, or raises VerificationError."""
    if signature.key_id != key_id(public_key):
        raise VerificationError("manifest.sig names another key than the operator's")
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature.signature, message)
    except InvalidSignature as exc:
        raise VerificationError("manifest signature does not verify with the operator key") from exc
