"""Shared response pieces: documented error bodies and file answers that carry their hash."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from fastapi import Request, Response
from fastapi.responses import FileResponse, JSONResponse

from api.service.intake import Acceptance
from api.service.models import ErrorResponse

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "no, invalid or revoked API key"},
    404: {"model": ErrorResponse, "description": "not found (or another tenant's)"},
    422: {"model": ErrorResponse, "description": "invalid request"},
    429: {"model": ErrorResponse, "description": "rate limited; see Retry-After"},
}


def package_response(path: Path, sha256_hex: str, filename: str) -> FileResponse:
    """A package download; ETag and Repr-Digest (RFC 9530) let the client check the bytes it got."""
    digest = base64.b64encode(bytes.fromhex(sha256_hex)).decode()
    return FileResponse(path, media_type="application/zip", filename=filename,
                        headers={"ETag": f'"{sha256_hex}"', "Repr-Digest": f"sha-256=:{digest}:",
                                 "Cache-Control": "private, no-transform"})


class AsciiJSONResponse(JSONResponse):
    """JSON with every non-ASCII character escaped: a report quotes package text, and bidi controls
    or C1 codes in it must stay inert even when someone `curl`s the answer to a terminal."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode("ascii")


def mark_replay(request: Request, response: Response, accepted: Acceptance) -> None:
    """A fresh acceptance audited itself in its transaction; a replay is left to the audit middleware."""
    if accepted.replayed:
        response.headers["Idempotent-Replayed"] = "true"
        request.state.audit_detail = {"idempotent_replay": True, "evidence_ids": accepted.evidence_ids}
    else:
        request.state.audited = True
