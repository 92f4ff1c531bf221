"""The service's errors: each has an HTTP status and a stable code, so the web room can answer it as is.

The codes are part of the API contract (clients branch on them, never on messages); the web room
(api/web/errors.py) turns these into ``{"error": {"code", "message"}}`` answers.
"""

from __future__ import annotations

from typing import Any

from verifier.errors import TiezhengError


class ServiceError(TiezhengError):
    """The service refuses a request; the message says why in words safe to show its caller."""


class ApiError(ServiceError):
    """An error with its HTTP status, stable code and a message safe to show."""

    def __init__(self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None,
                 details: list[Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
        self.details = details

    def diagnostics(self) -> str:
        return f"{self.code} (HTTP {self.status}): {self.message}"


def not_found(what: str = "evidence") -> ApiError:
    # The same answer for "absent" and "another tenant's": existence is not disclosed.
    return ApiError(404, "not_found", f"{what} not found")
