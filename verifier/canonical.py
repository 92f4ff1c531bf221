"""Canonical bytes and the one definition of "sha256 of X".

Every hash the verifier compares goes through this module, so there is exactly one place that
decides how a manifest becomes bytes and how bytes become a fingerprint. Changing anything here
changes every fingerprint ever issued: treat it as frozen.
"""

from __future__ import annotations

import hashlib
from typing import IO, Any

import rfc8785

from verifier.errors import InvalidPackage

#: Read size for streaming hashes: large enough that Python overhead vanishes, small enough to
#: keep memory flat whatever the artifact size.
HASH_CHUNK_BYTES = 1 << 20


def canonical_json(value: Any) -> bytes:
    """Return the RFC 8785 (JCS) canonical UTF-8 bytes of a JSON value.

    Raises InvalidPackage when the value cannot be canonicalised (floats out of range, non-string
    keys, lone surrogates, ...).
    """
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise InvalidPackage(f"value cannot be canonicalised as RFC 8785 JSON: {exc}") from exc


def sha256(data: bytes) -> bytes:
    """Return the SHA-256 digest of ``data``."""
    return hashlib.sha256(data).digest()


def sha256_hex(data: bytes) -> str:
    """Return the SHA-256 digest of ``data`` as lowercase hex."""
    return hashlib.sha256(data).hexdigest()


def sha256_stream(stream: IO[bytes], *, limit: int | None = None) -> tuple[bytes, int]:
    """Hash a binary stream in constant memory.

    Returns ``(digest, size)``. Raises InvalidPackage when more than ``limit`` bytes arrive, so a
    lying zip header cannot make us hash forever.
    """
    hasher = hashlib.sha256()
    size = 0
    buffer = bytearray(HASH_CHUNK_BYTES)
    view = memoryview(buffer)
    readinto = getattr(stream, "readinto", None)
    while True:
        if readinto is not None:
            n = readinto(buffer)
            if not n:
                break
            hasher.update(view[:n])
        else:
            chunk = stream.read(HASH_CHUNK_BYTES)
            if not chunk:
                break
            n = len(chunk)
            hasher.update(chunk)
        size += n
        if limit is not None and size > limit:
            raise InvalidPackage(f"stream exceeds its limit of {limit} bytes")
    return hasher.digest(), size


def fingerprint(manifest: Any) -> bytes:
    """Return the evidence fingerprint: sha256 of the canonical manifest bytes."""
    return sha256(canonical_json(manifest))
