"""API keys: random 32-byte tokens, shown once, stored only as an HMAC keyed by a server secret.

A key reads ``tzk_<prefix>_<secret>``. The prefix (not secret) finds the row; the HMAC-SHA256 of the
whole key under the server secret is compared in constant time. A stolen database alone therefore
neither yields keys nor lets anyone test guesses offline without the server secret, which lives in
the data dir (``keys/api-key-secret``, mode 0600) or comes from ``TIEZHENG_API_KEY_SECRET`` when
several servers share a database.
"""

from __future__ import annotations

import base64
import hmac
import os
import re
import secrets
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path

from api.settings import Settings

KEY_PREFIX = "tzk"
#: Entropy of the secret part, in bytes.
KEY_SECRET_BYTES = 32
PREFIX_BYTES = 6
SERVER_SECRET_BYTES = 32
_KEY_PATTERN = re.compile(rf"^{KEY_PREFIX}_([0-9a-f]{{{2 * PREFIX_BYTES}}})_([A-Za-z0-9_-]{{43}})$")


@dataclass(frozen=True)
class NewKey:
    """A freshly made key: ``token`` is shown to its owner once and never stored."""

    token: str
    prefix: str
    key_hash: str


def server_secret(settings: Settings) -> bytes:
    """The HMAC key: from the settings, else the data dir's file, made on first use."""
    if settings.api_key_secret is not None:
        return settings.api_key_secret.get_secret_value().encode()
    path = settings.root / "keys" / "api-key-secret"
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_bytes(SERVER_SECRET_BYTES)
    # O_EXCL: when two processes race to create it, one wins and both use the winner's secret.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes()
    with os.fdopen(fd, "wb") as out:
        out.write(secret)
        out.flush()
        os.fsync(out.fileno())
    return secret


def hash_key(token: str, secret: bytes) -> str:
    return hmac.new(secret, token.encode(), sha256).hexdigest()


def new_key(secret: bytes) -> NewKey:
    prefix = secrets.token_hex(PREFIX_BYTES)
    body = base64.urlsafe_b64encode(secrets.token_bytes(KEY_SECRET_BYTES)).rstrip(b"=").decode()
    token = f"{KEY_PREFIX}_{prefix}_{body}"
    return NewKey(token=token, prefix=prefix, key_hash=hash_key(token, secret))


def key_prefix(token: str) -> str | None:
    """The row-finding prefix of a well-formed key, or None for anything else."""
    match = _KEY_PATTERN.match(token)
    return match.group(1) if match else None


def key_matches(token: str, stored_hash: str, secret: bytes) -> bool:
    return hmac.compare_digest(hash_key(token, secret), stored_hash)


def secret_file(settings: Settings) -> Path:
    return settings.root / "keys" / "api-key-secret"
