"""A logged-in capture's browser session: the requester's Playwright storage state, and what the package says of it.

A tenant stores a session (cookies and local storage, as Playwright's ``storage_state`` writes them)
and names it in a capture. The capture's browser context starts with that state, and the raw fetch
sends the cookies the state holds for each URL, so both views see the logged-in page.

What a court sees, and what it does not
---------------------------------------
- The manifest (``capture.session``) states that an authenticated session was used, the account the
  requester declared, that the requester supplied it, the sha256 of the storage state as stored, and
  how many cookies and local-storage origins it held. S4 warns: the platform did not log in itself
  and cannot vouch for who the account is.
- The storage state file and its local storage never enter the package.
- The WARC's *request* records would hold the session's cookies as the browser sent them: a live
  credential in a file handed to the other side. In an authenticated capture the values of the
  request fields in ``REDACTED_REQUEST_FIELDS`` are replaced in the WARC copy (never on the wire)
  by ``[redacted by Tiezheng: sha256 <hex of the original value>]``, so those request records are
  not byte-exact; the requester can later prove which value was sent by showing it. Response records
  stay byte-exact, including any ``Set-Cookie`` the site sent: log the account out after the capture
  so that those cookies die.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from evidence.capture_errors import CaptureError

MAX_STATE_BYTES = 1 << 20
MAX_COOKIES = 1000
MAX_ORIGINS = 200
MAX_ACCOUNT_CHARS = 200
#: Request fields whose values an authenticated capture keeps out of the WARC (lower-case, as bytes).
REDACTED_REQUEST_FIELDS = frozenset({b"cookie", b"authorization"})
_COOKIE_KEYS = ("name", "value", "domain", "path")


def _cookie_problem(i: int, cookie: Any) -> str | None:
    if not isinstance(cookie, dict):
        return f"cookies[{i}] is not an object"
    for key in _COOKIE_KEYS:
        if not isinstance(cookie.get(key), str):
            return f"cookies[{i}] has no string {key!r}"
    if not cookie["name"] or not cookie["domain"]:
        return f"cookies[{i}] has an empty name or domain"
    if any(c in cookie["name"] + cookie["value"] for c in ";\r\n"):
        return f"cookies[{i}] holds ';' or a line break"
    if not isinstance(cookie.get("expires", -1), (int, float)) or isinstance(cookie.get("expires"), bool):
        return f"cookies[{i}] has a non-numeric 'expires'"
    return None


def parse_storage_state(data: bytes) -> dict[str, Any]:
    """The storage state in ``data`` (Playwright's JSON: ``cookies`` and ``origins``). Raises CaptureError."""
    if len(data) > MAX_STATE_BYTES:
        raise CaptureError(f"the session file is over {MAX_STATE_BYTES} bytes")
    try:
        state = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CaptureError(f"the session file is not JSON: {exc}") from None
    if not isinstance(state, dict) or not isinstance(state.get("cookies", []), list) \
            or not isinstance(state.get("origins", []), list):
        raise CaptureError('the session file is not a Playwright storage state ({"cookies": [...], "origins": [...]})')
    cookies, origins = state.get("cookies", []), state.get("origins", [])
    if len(cookies) > MAX_COOKIES or len(origins) > MAX_ORIGINS:
        raise CaptureError(f"the session holds over {MAX_COOKIES} cookies or {MAX_ORIGINS} origins")
    for i, cookie in enumerate(cookies):
        problem = _cookie_problem(i, cookie)
        if problem:
            raise CaptureError(f"the session file's {problem}")
    for i, origin in enumerate(origins):
        if not isinstance(origin, dict) or not isinstance(origin.get("origin"), str) \
                or not isinstance(origin.get("localStorage", []), list):
            raise CaptureError(f"the session file's origins[{i}] is not {{\"origin\", \"localStorage\"}}")
    if not cookies and not origins:
        raise CaptureError("the session file holds no cookies and no local storage")
    return {"cookies": cookies, "origins": origins}


def _domain_matches(host: str, domain: str, host_only: bool) -> bool:
    domain = domain.lower()
    if host_only:
        return host == domain
    domain = domain.lstrip(".")
    return host == domain or host.endswith("." + domain)


def _path_matches(path: str, cookie_path: str) -> bool:
    if path == cookie_path or cookie_path in ("", "/"):
        return True
    return path.startswith(cookie_path) and (cookie_path.endswith("/") or path[len(cookie_path)] == "/")


@dataclass(frozen=True)
class BrowserSession:
    """A stored session, decrypted for one capture. ``state`` never leaves the capture process."""

    name: str
    account: str
    sha256: str
    state: dict[str, Any] = field(repr=False)

    @classmethod
    def from_bytes(cls, name: str, account: str, data: bytes) -> BrowserSession:
        """A session from the storage state's bytes as stored. Raises CaptureError."""
        if not 1 <= len(account) <= MAX_ACCOUNT_CHARS:
            raise CaptureError(f"the declared account must be 1 to {MAX_ACCOUNT_CHARS} characters")
        return cls(name=name, account=account, sha256=hashlib.sha256(data).hexdigest(),
                   state=parse_storage_state(data))

    @property
    def cookies(self) -> list[dict[str, Any]]:
        return list(self.state["cookies"])

    def cookie_header(self, url: str, now: float | None = None) -> str | None:
        """The ``Cookie`` value a browser holding this state sends to ``url`` (RFC 6265 §5.4), or None."""
        parts = urlsplit(url)
        host, path = (parts.hostname or "").lower(), parts.path or "/"
        moment = time.time() if now is None else now
        chosen = []
        for cookie in self.cookies:
            expires = cookie.get("expires", -1)
            if expires not in (-1, None) and expires <= moment:
                continue
            if cookie.get("secure") and parts.scheme != "https":
                continue
            # Playwright writes a domain cookie with a leading dot, a host-only cookie without one.
            if not _domain_matches(host, cookie["domain"], host_only=not cookie["domain"].startswith(".")):
                continue
            if not _path_matches(path, cookie.get("path") or "/"):
                continue
            chosen.append(cookie)
        chosen.sort(key=lambda c: -len(c.get("path") or "/"))
        return "; ".join(f"{c['name']}={c['value']}" for c in chosen) or None

    def record(self) -> dict[str, Any]:
        """What the manifest states about the session (``capture.session``): never a cookie or a value."""
        return {"authenticated": True, "name": self.name, "account": self.account, "supplied_by": "requester",
                "storage_state_sha256": self.sha256, "cookies": len(self.state["cookies"]),
                "local_storage_origins": len(self.state["origins"]),
                "in_package": "no: neither the storage state nor its local storage",
                "warc_request_fields_redacted": sorted(f.decode() for f in REDACTED_REQUEST_FIELDS),
                "redaction": "in the WARC request records only, each value replaced by "
                             "'[redacted by Tiezheng: sha256 <hex of the original value>]'; what was sent upstream "
                             "is unchanged, response records (Set-Cookie included) are byte-exact"}


def redact_request_head(head: bytes, fields: frozenset[bytes] = REDACTED_REQUEST_FIELDS) -> bytes:
    """``head`` (request line and header block) with the values of ``fields`` replaced by their sha256."""
    lines = head.split(b"\r\n")
    out = lines[:1]
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if colon and name.strip().lower() in fields:
            digest = hashlib.sha256(value.strip()).hexdigest()
            line = name + b": [redacted by Tiezheng: sha256 " + digest.encode() + b"]"
        out.append(line)
    return b"\r\n".join(out)


def unexpected_cookies(cookies: list[Any], session: BrowserSession | None) -> int:
    """How many of a new context's ``cookies`` did not come from ``session`` (all of them without one)."""
    known = {(c["name"], c["domain"], c.get("path") or "/") for c in session.cookies} if session else set()
    return sum(1 for c in cookies if (c.get("name"), c.get("domain"), c.get("path") or "/") not in known)
