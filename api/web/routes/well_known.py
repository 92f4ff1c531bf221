"""GET /.well-known/tiezheng/trust.toml: the trust this service verifies with, for anyone to take.

Counsel downloads it, compares its SHA-256 with the one the operator declares (and the one on
/verify and in every certificate), and passes it to ``tiezheng-verify --trust FILE``. It is the
same text ``tiezheng trust export`` writes: operator keys, TSA roots, chains and policy; no secret.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from api.service.state import TRUST_PATH
from api.web.deps import StateDep

router = APIRouter(include_in_schema=False)

#: application/toml is registered (2024); browsers show text/plain inline, which helps counsel read it.
TOML_MEDIA_TYPE = "application/toml; charset=utf-8"


@router.get(TRUST_PATH)
def published_trust(state: StateDep) -> PlainTextResponse:
    published = state.published_trust()
    return PlainTextResponse(published.text, media_type=TOML_MEDIA_TYPE, headers={
        "Content-Disposition": 'inline; filename="trust.toml"', "X-Content-Type-Options": "nosniff",
        "ETag": f'"{published.sha256}"', "Cache-Control": "public, max-age=60"})
