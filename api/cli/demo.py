"""`tiezheng demo`: the whole job on embedded defaults, end to end, in one command.

It serves samples/site on loopback over HTTP and HTTPS, captures both with headless Chromium,
seals the packages (embedded dev TSA, anvil devnet), verifies them with the standalone verifier's
code and this data dir's trust, and prints the report and where the package and reports are.
"""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console

from api.cli import demo_log
from api.cli.sample_site import serve_site
from api.service import pipeline
from api.service.runtime import local_trust
from api.service.settings import Settings
from verifier.report.html_page import render_html
from verifier.report.pdf_certificate import pdf_available, write_pdf
from verifier.report.terminal import render_report
from verifier.trust import default_trust
from verifier.verdict import Report
from verifier.verify import verify_package

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "site"
#: The demo's rights owner, as its manifests name it: (tenant, identity).
DEMO_REQUESTER = ("demo-rights-owner", "demo@rights-owner.example")


def run_demo(settings: Settings, console: Console) -> int:
    """Run the demo; returns the exit code (0 when every sealed package verifies)."""
    console.rule("Tiezheng demo: capture → seal → verify")
    console.print(f"data dir: {settings.root}")
    with console.status("1. capturing the sample site over HTTP and HTTPS with headless Chromium…"), \
            serve_site(SAMPLES, settings.root / "demo-site-tls") as site:
        # Loopback is private: the SSRF guard is lifted for this local site only.
        options = pipeline.capture_options(note="Tiezheng demo: the sample shop page", allow_private=True,
                                           extra_ca_pem=site.ca_pem)
        results = pipeline.capture_local(settings, [site.http_url + "index.html", site.https_url + "index.html"],
                                         options, requester=pipeline.requester(*DEMO_REQUESTER))
    failures = [r for r in results if not r.ok]
    for failed in failures:
        console.print(f"[red]capture failed[/] {failed.url}: {failed.error}")
    captured = [r.package for r in results if r.ok and r.package is not None]
    if not captured:
        return 1
    for package in captured:
        console.print(f"[green]1. captured[/] {package.evidence_id}  fingerprint {package.fingerprint.hex()}")
    likes = demo_log.prepare(settings)
    console.print(f"[green]1. logged[/] a burst of {likes} likes in event log {demo_log.LOG_NAME}, checkpointed")
    with console.status("2. sealing: Merkle batch, RFC 3161 timestamp, anchor on the devnet…"):
        outcome = pipeline.seal_pending(settings, on_step=lambda _: None)
    batches = [b["id"] for b in outcome.batches]
    if not batches or outcome.left:
        console.print("[red]sealing did not finish[/]; run `tiezheng status` for the reason")
        return 1
    console.print(f"[green]2. sealed[/] {len(captured)} packages in batch {batches[-1]}")
    trust = default_trust().merged(local_trust(settings))
    reports = [(package.path, verify_package(package.path, trust)) for package in captured]
    console.print("[green]3. verified[/] with the standalone verifier (the HTTPS capture):")
    console.print(render_report(reports[-1][1], source=str(reports[-1][0])))
    settings.reports_dir.mkdir(parents=True, exist_ok=True)
    for path, report in reports:
        written = _write_reports(settings.reports_dir, path, report)
        console.print(f"\npackage: {path}\nreports: {', '.join(str(p) for p in written)}\n"
                      f"verdict: {report.verdict.value}")
    log_verified = demo_log.show(settings, trust, console)
    console.print(f"\ncheck it yourself: tiezheng verify {reports[-1][0]} --data-dir {settings.root}")
    return 0 if all(report.verified for _, report in reports) and log_verified and not failures else 1


def _write_reports(folder: Path, package: Path, report: Report) -> list[Path]:
    """The report as JSON, as a self-contained HTML page and, with the pdf extra, as a PDF certificate."""
    stem = folder / package.stem
    written = [stem.with_suffix(".json"), stem.with_suffix(".html")]
    written[0].write_text(json.dumps(report.to_json(), indent=2, ensure_ascii=False), encoding="utf-8")
    written[1].write_text(render_html(report, source=str(package), package=package), encoding="utf-8")
    if pdf_available():
        write_pdf(report, stem.with_suffix(".pdf"), source=str(package), package=package)
        written.append(stem.with_suffix(".pdf"))
    return written
