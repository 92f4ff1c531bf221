"""Server-rendered pages: /verify (public) and /app (a tenant's dashboard). Jinja2, local JS, no CDN."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from api.deps import StateDep
from api.i18n import COOKIE, language, strings
from api.reports import renderers_available
from api.state import TRUST_PATH
from verifier import __version__

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).resolve().parent.parent / "templates")

#: A year: the language choice is a preference, not a secret.
COOKIE_MAX_AGE = 365 * 24 * 3600
#: No inline scripts or remote origins: the pages load only their own files.
CSP = ("default-src 'self'; img-src 'self' blob: data:; script-src 'self'; style-src 'self'; "
       "object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")


def _page(request: Request, template: str, page: str, **context: object) -> HTMLResponse:
    lang = language(request)
    response = templates.TemplateResponse(request, template, {
        "lang": lang, "t": strings(lang), "page": page, "version": __version__,
        "renderers": renderers_available(), **context})
    if request.query_params.get("lang") == lang:
        response.set_cookie(COOKIE, lang, max_age=COOKIE_MAX_AGE, samesite="lax")
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@router.get("/")
def home() -> RedirectResponse:
    return RedirectResponse("/app", status_code=307)


@router.get("/verify", response_class=HTMLResponse)
def verify_page(request: Request, state: StateDep) -> HTMLResponse:
    # The digest counsel compares with the trust file they fetch and with every certificate.
    return _page(request, "verify.html", "verify", trust_path=TRUST_PATH,
                 trust_sha256=state.published_trust().sha256)


@router.get("/app", response_class=HTMLResponse)
def app_page(request: Request) -> HTMLResponse:
    return _page(request, "app.html", "app")
