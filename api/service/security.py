"""API keys: random 32-byte tokens, shown once, stored only as an HMAC keyed by a server secret.

A key reads ``tzk_<prefix>_<secret>``. The prefix (not secret) finds the row; the HMAC-SHA256 of the
whole key under the server secret is compared in constant time. A stolen database alone therefore
neither yields keys nor lets anyone test guesses offline without the server secret, which lives in
the data dir (``keys/api-key-secret``, mode 0600) or comes from ``TIEZHENG_API_KEY_SECRET`` when
several servers share a database.
"""

from __future__ import annotations

import base64
import copy
import hmac
import json
import logging
import os
import re
import secrets
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from api.service.settings import Settings

KEY_PREFIX = "tzk"
#: Entropy of the secret part, in bytes.
KEY_SECRET_BYTES = 32
PREFIX_BYTES = 6
SERVER_SECRET_BYTES = 32
_KEY_PATTERN = re.compile(rf"^{KEY_PREFIX}_([0-9a-f]{{{2 * PREFIX_BYTES}}})_([A-Za-z0-9_-]{{43}})$")
#: Anything that looks like a key, whole or cut short, wherever it appears in a log line or a URL.
_KEY_ANYWHERE = re.compile(rf"{KEY_PREFIX}_[A-Za-z0-9_-]{{6,}}")
#: Query parameters that clients use for keys. Keys belong in the Authorization header only:
#: URLs end up in access logs, proxies and browser histories.
KEY_QUERY_NAMES = frozenset({"api_key", "apikey", "api-key", "key", "token", "access_token", "auth",
                             "authorization", "bearer", "x-api-key", "x_api_key"})
_KEY_QUERY_NAME_ALTERNATIVES = "|".join(re.escape(name) for name in sorted(KEY_QUERY_NAMES))
_KEY_QUERY_VALUE = re.compile(rf"(?i)([?&](?:{_KEY_QUERY_NAME_ALTERNATIVES})=)[^&\s\"']*")


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


#: An absolute file path of two or more parts (not a URL's path, not an API route): never shown to clients.
_SERVER_PATH = re.compile(r"(?<![\w:/.~=?&#-])/(?!v1/)(?:[\w.@+%=-]+/)+[\w.@+%=-]*")


def hide_server_paths(text: str) -> str:
    """``text`` with file paths on this server replaced: errors shown to API clients must not map the host."""
    return _SERVER_PATH.sub("[path on the server]", text)


def redact_secrets(text: str) -> str:
    """``text`` with every key-like token and every key query parameter's value masked."""
    return _KEY_QUERY_VALUE.sub(r"\1***", _KEY_ANYWHERE.sub(f"{KEY_PREFIX}_***", text))


def _redacted(value: Any) -> Any:
    return redact_secrets(value) if isinstance(value, str) else value


class SecretsFilter(logging.Filter):
    """Masks keys in every record a handler writes: uvicorn's access lines carry the query string.

    The record's arguments are redacted one by one rather than formatted here, because uvicorn's
    access formatter unpacks them itself.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact_secrets(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_redacted(arg) for arg in record.args)
        elif isinstance(record.args, dict):
            record.args = {name: _redacted(arg) for name, arg in record.args.items()}
        return True


def key_in_query(query_string: bytes) -> bool:
    """Whether a URL's query carries an API key (by parameter name, or a key-like value anywhere)."""
    text = query_string.decode("latin-1")
    if _KEY_ANYWHERE.search(text):
        return True
    return any(name.lower() in KEY_QUERY_NAMES or _KEY_ANYWHERE.search(value)
               for name, value in parse_qsl(text, keep_blank_values=True))


class RefuseKeysInQuery:
    """ASGI middleware: a request with a key in its URL gets 400 and a hint to use the header."""

    BODY = json.dumps({"error": {"code": "api_key_in_query", "message":
                       "send the API key in the Authorization header (Authorization: Bearer <key>), "
                       "never in the URL"}}).encode()

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not key_in_query(scope.get("query_string", b"")):
            await self.app(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": 400, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(self.BODY)).encode())]})
        await send({"type": "http.response.body", "body": self.BODY})


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's own logging, with keys masked on every handler (access lines carry query strings)."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {"secrets": {"()": "api.service.security.SecretsFilter"}}
    for handler in config["handlers"].values():
        handler["filters"] = ["secrets"]
    return config


@dataclass(frozen=True)
class Principal:
    """Who is calling: the tenant and the key (by id and public prefix; never the secret)."""

    tenant_id: int
    tenant_name: str
    api_key_id: int
    key_prefix: str
