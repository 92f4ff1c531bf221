"""The errors a capture reports: one class, one line of reason, no traceback for the user."""

from __future__ import annotations

from verifier.errors import TiezhengError

MAX_REASON_CHARS = 500


class CaptureError(TiezhengError):
    """A capture that could not be made. ``reason`` (and ``str(error)``) is one line fit for the user."""

    def __init__(self, reason: object) -> None:
        # Library messages can span lines (Playwright's call logs); the user gets one line.
        line = " ".join(str(reason).split())
        self.reason = line if len(line) <= MAX_REASON_CHARS else line[:MAX_REASON_CHARS - 1] + "…"
        super().__init__(self.reason)


class BlockedAddress(CaptureError):
    """``host`` resolved to ``address``, of a ``kind`` the capture policy refuses (SSRF protection)."""

    def __init__(self, host: str, address: str, kind: str, hint: str = "") -> None:
        self.host, self.address, self.kind = host, address, kind
        shown = host if host == address else f"{host} resolves to {address}, which"
        super().__init__(f"{shown} is {kind}{hint}")
