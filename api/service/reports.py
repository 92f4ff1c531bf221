"""Verification reports and certificates: verifier.verify_package plus the colleague-owned renderers.

The PDF and HTML renderers (verifier/report/pdf_certificate.py ``write_pdf``, verifier/report/html_page.py
``render_html``) are imported when first needed. Without them the service still verifies and
returns JSON; a certificate request gets 501 ``certificate_unavailable`` instead of a crash.
Certificates of sealed packages are cached by the package's sha256: same bytes, same certificate.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from api.service.errors import ApiError
from verifier.trust import Trust
from verifier.verdict import Report
from verifier.verify import verify_package

PDF_MODULE = "verifier.report.pdf_certificate"
HTML_MODULE = "verifier.report.html_page"


def verify(path: Path, trust: Trust) -> Report:
    """The offline report for a package, as ``tiezheng-verify --json`` computes it. Never raises for bad input."""
    return verify_package(path, trust)


def _renderer(module_name: str, function: str) -> Callable[..., Any]:
    try:
        module = importlib.import_module(module_name)
        render: Callable[..., Any] = getattr(module, function)
    except (ImportError, AttributeError) as exc:
        raise ApiError(501, "certificate_unavailable",
                       f"certificates are not available on this server ({module_name}.{function}: {exc})") from None
    return render


def renderers_available() -> dict[str, bool]:
    found = {}
    for name, module, function in (("pdf", PDF_MODULE, "write_pdf"), ("html", HTML_MODULE, "render_html")):
        try:
            _renderer(module, function)
            found[name] = True
        except ApiError:
            found[name] = False
    return found


def write_pdf(report: Report, target: Path, *, source: str, package: Path | None = None,
              verify_url: str | None = None) -> Path:
    """Render ``report`` to ``target`` atomically (temp file, then rename). Raises ApiError 501 without a renderer.

    ``verify_url`` is the service's /verify page (settings.verify_url): the QR code links to it."""
    render = _renderer(PDF_MODULE, "write_pdf")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".cert.", suffix=".pdf", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        render(report, tmp, source=source, package=package, verify_url=verify_url)  # the package: its screenshot
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def render_html(report: Report, *, source: str) -> str:
    render = _renderer(HTML_MODULE, "render_html")
    return str(render(report, source=source))


def certificate_pdf(cache_dir: Path, package: Path, package_sha256: str, trust: Trust, *, source: str,
                    verify_url: str | None = None) -> Path:
    """The certificate of a sealed package, made once per package content and trust, then served from disk.

    The trust is part of the key: a certificate names the SHA-256 of the trust it was judged with.
    """
    # The verify page is part of the key too: the QR code of a cached certificate must not go stale.
    trust_key = hashlib.sha256(("".join(digest for _, digest in trust.digests) + (verify_url or ""))
                               .encode()).hexdigest()[:16]
    target = cache_dir / f"{package_sha256}-{trust_key}.pdf"
    if target.is_file():
        return target
    return write_pdf(verify(package, trust), target, source=source, package=package, verify_url=verify_url)
