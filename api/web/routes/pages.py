"""Server-rendered pages: /verify (public) and /app (a tenant's dashboard). Jinja2, local JS, no CDN."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

import verifier
from api.service.reports import renderers_available
from api.service.state import TRUST_PATH
from api.web.deps import StateDep
from api.web.i18n import COOKIE, language, strings
from verifier import __version__

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).resolve().parent.parent / "templates")

#: A year: the language choice is a preference, not a secret.
COOKIE_MAX_AGE = 365 * 24 * 3600
#: No inline scripts or remote origins: the pages load only their own files.
CSP = ("default-src 'self'; img-src 'self' blob: data:; script-src 'self'; style-src 'self'; "
       "object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")


#: The in-browser verifier, built from verifier/browser by `make setup` (never committed).
BROWSER_DIST = Path(verifier.__file__).resolve().parent / "browser" / "dist"
NOT_BUILT = "the in-browser verifier is not built: run `make setup` (it needs node and npm)"


def rpc_origin(value: str | None) -> str | None:
    """The origin of an RPC URL the reader opted into, or None when absent or not plain http(s)."""
    if not value or len(value) > 2048:
        return None
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    if any(c in host for c in " ;,'\"\\"):
        return None
    return f"{parts.scheme}://{host}" + (f":{port}" if port else "")


def verify_csp(rpc: str | None) -> str:
    """/verify's policy: own files only; the page may fetch the operator's trust from this origin and,
    only when the reader opted in with ?rpc=URL, that one RPC node. Nothing else, so the package the
    reader drops has nowhere to go."""
    connect = "'self'" + (f" {rpc}" if rpc else "")
    return (f"default-src 'self'; img-src 'self' blob: data:; script-src 'self'; style-src 'self'; "
            f"connect-src {connect}; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")


def _page(request: Request, template: str, page: str, *, csp: str = CSP, **extra: object) -> HTMLResponse:
    lang = language(request)
    response = templates.TemplateResponse(request, template, {
        "lang": lang, "t": strings(lang), "page": page, "version": __version__,
        "renderers": renderers_available(), **extra})
    if request.query_params.get("lang") == lang:
        response.set_cookie(COOKIE, lang, max_age=COOKIE_MAX_AGE, samesite="lax")
    response.headers["Content-Security-Policy"] = csp
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@router.get("/")
def home() -> RedirectResponse:
    return RedirectResponse("/app", status_code=307)


@router.get("/verify", response_class=HTMLResponse)
def verify_page(request: Request, state: StateDep, rpc: str | None = None) -> HTMLResponse:
    """The in-browser verifier: the package is checked in the reader's browser and never uploaded.
    The published trust's digest is shown so counsel can compare it with the file they load."""
    origin = rpc_origin(rpc)
    return _page(request, "verify.html", "verify", csp=verify_csp(origin),
                 built=(BROWSER_DIST / "verifier.js").is_file(), trust_path=TRUST_PATH,
                 trust_sha256=state.published_trust().sha256, rpc=rpc if origin else "")


def _built(name: str, media_type: str, **headers: str) -> Response:
    path = BROWSER_DIST / name
    if not path.is_file():
        return PlainTextResponse(NOT_BUILT, status_code=503)
    response = FileResponse(path, media_type=media_type, headers=headers)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@router.get("/verify/verifier.js")
def verifier_script() -> Response:
    return _built("verifier.js", "text/javascript")


@router.get("/verify/verifier.css")
def verifier_style() -> Response:
    return _built("verifier.css", "text/css")


@router.get("/verify/tiezheng-verify.html")
def verifier_download() -> Response:
    """The same verifier as one self-contained file to keep beside the evidence; it runs from file://."""
    return _built("verify.html", "text/html", **{"Content-Disposition": 'attachment; filename="tiezheng-verify.html"'})


@router.get("/app", response_class=HTMLResponse)
def app_page(request: Request) -> HTMLResponse:
    return _page(request, "app.html", "app")
