"""The errors a capture reports: one class, one line of reason, no traceback for the user."""

from __future__ import annotations

MAX_REASON_CHARS = 500


class CaptureError(Exception):
    """A capture that could not be made. ``str(error)`` is a one-line reason fit for the user."""

    def __init__(self, reason: object) -> None:
        # Library messages can span lines (Playwright's call logs); the user gets one line.
        line = " ".join(str(reason).split())
        super().__init__(line if len(line) <= MAX_REASON_CHARS else line[:MAX_REASON_CHARS - 1] + "…")


class BlockedAddress(CaptureError):
    """A host resolved to an address the capture policy refuses (SSRF protection)."""
