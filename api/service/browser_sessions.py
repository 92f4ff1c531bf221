"""A tenant's stored browser sessions: kept encrypted, used only for that tenant's captures.

The storage state is sealed with AES-256-GCM (``cryptography``) under the key in the environment
variable ``TIEZHENG_SESSION_KEY`` (32 random bytes, base64 or 64 hex digits). The associated data is
the tenant id and the session's name, so a sealed state copied to another tenant's row, or renamed,
does not open. Without the key no session can be stored or used, and the error says so; the key and
the plaintext are never logged, and the plaintext is never written anywhere.

Every function takes ``tenant_id`` and treats another tenant's session as absent (404), like evidence.
Functions add to the caller's session; the caller commits.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import secrets
from collections.abc import Mapping, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from api.service.errors import ApiError, not_found
from api.service.session_models import (
    SESSION_NAME_PATTERN,
    BrowserSessionPublic,
    BrowserSessionRow,
    CaptureChoice,
)
from evidence.browser_session import BrowserSession
from evidence.capture_errors import CaptureError

KEY_ENV = "TIEZHENG_SESSION_KEY"
NONCE_BYTES = 12
KEY_HINT = (f"set {KEY_ENV} to 32 random bytes in base64, e.g. "
            "`python3 -c 'import os, base64; print(base64.b64encode(os.urandom(32)).decode())'`")


def session_key(environ: Mapping[str, str] | None = None) -> bytes:
    """The 32-byte sealing key. Raises ApiError (409: this server is not set up for sessions) when it is
    unset or malformed, without echoing it; never a 5xx, which would say the server failed."""
    value = (os.environ if environ is None else environ).get(KEY_ENV, "").strip()
    if not value:
        raise ApiError(409, "session_key_missing", f"browser sessions are not available: {KEY_HINT}")
    key: bytes | None = None
    if re.fullmatch(r"[0-9a-fA-F]{64}", value):
        key = bytes.fromhex(value)
    else:
        try:
            key = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            key = None
    if key is None or len(key) != 32:
        raise ApiError(409, "session_key_invalid", f"{KEY_ENV} is not 32 bytes in base64 or hex: {KEY_HINT}")
    return key


def _associated(tenant_id: int, name: str) -> bytes:
    return f"tiezheng-browser-session/1\0{tenant_id}\0{name}".encode()


def seal_state(key: bytes, tenant_id: int, name: str, state: bytes) -> str:
    nonce = secrets.token_bytes(NONCE_BYTES)
    return base64.b64encode(nonce + AESGCM(key).encrypt(nonce, state, _associated(tenant_id, name))).decode()


def open_state(key: bytes, tenant_id: int, name: str, sealed: str) -> bytes:
    """The storage state's bytes. Raises ApiError when the key is wrong or the row was moved or altered."""
    raw = base64.b64decode(sealed)
    try:
        return AESGCM(key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], _associated(tenant_id, name))
    except InvalidTag:
        raise ApiError(409, "session_unreadable", f"session {name!r} cannot be opened with the current "
                                                  f"{KEY_ENV} (the key changed, or the record was altered)") from None


def public(row: BrowserSessionRow) -> BrowserSessionPublic:
    return BrowserSessionPublic(name=row.name, account=row.account, state_sha256=row.state_sha256,
                                cookies=row.cookies, origins=row.origins, created_at=row.created_at)


def create(session: Session, *, tenant_id: int, name: str, account: str, state: bytes) -> BrowserSessionRow:
    """Store a session. Raises ApiError: 422 for a bad name or storage state, 409 for a name in use,
    409 without the key."""
    if not re.fullmatch(SESSION_NAME_PATTERN, name):
        raise ApiError(422, "invalid_session", "a session name is 1 to 64 letters, digits, '.', '_' or '-'")
    try:
        parsed = BrowserSession.from_bytes(name, account, state)
    except CaptureError as exc:
        raise ApiError(422, "invalid_session", str(exc)) from None
    key = session_key()
    if _find(session, tenant_id, name) is not None:
        raise ApiError(409, "session_exists", f"a session named {name!r} exists; remove it first")
    row = BrowserSessionRow(tenant_id=tenant_id, name=name, account=account, state_sha256=parsed.sha256,
                            cookies=len(parsed.state["cookies"]), origins=len(parsed.state["origins"]),
                            sealed_state=seal_state(key, tenant_id, name, state))
    session.add(row)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise ApiError(409, "session_exists", f"a session named {name!r} exists; remove it first") from None
    return row


def state_bytes(storage_state: object) -> bytes:
    """The bytes a storage state sent as a JSON object is stored and hashed as (sorted, compact)."""
    return json.dumps(storage_state, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _find(session: Session, tenant_id: int, name: str) -> BrowserSessionRow | None:
    return session.exec(select(BrowserSessionRow).where(BrowserSessionRow.tenant_id == tenant_id,
                                                        BrowserSessionRow.name == name)).first()


def get(session: Session, *, tenant_id: int, name: str) -> BrowserSessionRow:
    """The tenant's session ``name``. Raises ApiError 404 (also for another tenant's)."""
    row = _find(session, tenant_id, name)
    if row is None:
        raise not_found("session")
    return row


def list_for(session: Session, *, tenant_id: int) -> Sequence[BrowserSessionRow]:
    return session.exec(select(BrowserSessionRow).where(BrowserSessionRow.tenant_id == tenant_id)
                        .order_by(col(BrowserSessionRow.name))).all()


def remove(session: Session, *, tenant_id: int, name: str) -> None:
    """Delete the tenant's session ``name`` (its sealed state goes with the row). Raises ApiError 404."""
    row = get(session, tenant_id=tenant_id, name=name)
    for choice in session.exec(select(CaptureChoice).where(CaptureChoice.session_id == row.id)).all():
        choice.session_id = None  # a capture still queued with it fails (its session_name stays), never runs
        # logged out
        session.add(choice)
    session.flush()
    session.delete(row)


def for_capture(session: Session, *, tenant_id: int, session_id: int) -> BrowserSession:
    """The decrypted session for one of ``tenant_id``'s captures. Raises ApiError (404 for another tenant's)."""
    row = session.get(BrowserSessionRow, session_id)
    if row is None or row.tenant_id != tenant_id:
        raise not_found("session")
    state = open_state(session_key(), tenant_id, row.name, row.sealed_state)
    return BrowserSession.from_bytes(row.name, row.account, state)
