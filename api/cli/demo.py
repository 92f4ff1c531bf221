"""`tiezheng demo`: the whole job on embedded defaults, end to end, in one command.

It serves samples/site on loopback over HTTP and HTTPS, captures both with headless Chromium,
seals the packages (embedded dev TSA, anvil devnet), verifies them with the standalone verifier's
code and this data dir's trust, and prints the report and where the package and reports are.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

from rich.console import Console

from api.cli import demo_log
from api.cli.sample_site import serve_site
from api.service import pipeline
from api.service.local_cases import RunResult
from api.service.runtime import local_trust
from api.service.settings import Settings
from verifier.report.html_page import render_html
from verifier.report.pdf_certificate import pdf_available, write_pdf
from verifier.report.terminal import render_report
from verifier.trust import Trust, default_trust
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
    runs = _watch_demo(settings, console)
    if runs is None:
        return 1
    likes = demo_log.prepare(settings)
    console.print(f"[green]1. logged[/] a burst of {likes} likes in event log {demo_log.LOG_NAME}, checkpointed")
    with console.status("2. sealing: Merkle batch, RFC 3161 timestamp, anchor on the devnet…"):
        outcome = pipeline.seal_pending(settings, on_step=lambda _: None)
    batches = [b["id"] for b in outcome.batches]
    if not batches or outcome.left:
        console.print("[red]sealing did not finish[/]; run `tiezheng status` for the reason")
        return 1
    console.print(f"[green]2. sealed[/] {len(outcome.items)} packages (captures and watch runs) in batch {batches[-1]}")
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
    timeline_ok = _timeline(settings, console, runs, trust)
    return 0 if all(report.verified for _, report in reports) and not failures and timeline_ok and log_verified \
        else 1


#: The demo watch: this many runs, this far apart; the price changes before the last run.
WATCH_RUNS = 3
WATCH_EVERY_SECONDS = 5
PRICE_BEFORE, PRICE_AFTER = "¥ 199.00", "¥ 149.00"


def _watch_demo(settings: Settings, console: Console) -> list[RunResult] | None:
    """A short watch of a copy of the sample page: three runs, the price changed before the third.

    Each run is a full capture whose manifest names the run before it (``previous``) and whose
    ``evidence/change.json`` says how it differs from that run; the runs are sealed with the rest in
    step 2. Returns the runs, or None when a run failed.
    """
    from api.service.local_cases import follow_now

    folder = settings.root / "demo-watch-site"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(SAMPLES, folder)
    page = folder / "index.html"

    def before_run(done: int) -> None:
        if done == WATCH_RUNS - 1:
            page.write_text(page.read_text(encoding="utf-8").replace(PRICE_BEFORE, PRICE_AFTER), encoding="utf-8")

    doing = (f"1b. watching the sample page: {WATCH_RUNS} runs {WATCH_EVERY_SECONDS} s apart, the price changes "
             "before the last…")
    with console.status(doing), serve_site(folder, settings.root / "demo-site-tls") as site:
        watch, runs = follow_now(settings.model_copy(update={"capture_allow_private": True}),
                                 url=site.http_url + "index.html", runs=WATCH_RUNS, every_seconds=WATCH_EVERY_SECONDS,
                                 matter_title="Demo: the sample shop over time", subject="demo shop",
                                 fields=["price=#price"], before_run=before_run)
    ids = []
    for number, run in enumerate(runs, 1):
        if run.fingerprint is None or run.evidence_id is None:
            console.print(f"[red]watch run {number} failed[/]: {run.error}")
            return None
        change = _classification(settings.packages_dir / f"{run.evidence_id}.wacz")
        console.print(f"[green]1b. watch run {number}[/] {run.evidence_id}  fingerprint {run.fingerprint[:16]}…  "
                      f"{change or 'first of the chain'}")
        ids.append(run)
    console.print(f"    watch {watch.id} (matter {watch.matter}); `tiezheng matter show {watch.matter}` lists its log")
    return ids


def _classification(package: Path) -> str | None:
    """The run's change record in a few words ("changed: key_fields, text"), None without one."""
    with zipfile.ZipFile(package) as archive:
        if "evidence/change.json" not in archive.namelist():
            return None
        record = json.loads(archive.read("evidence/change.json"))
    signals = ", ".join(record.get("signals") or [])
    return f"{record['classification']}{': ' + signals if signals else ''} (vs the previous run)"


def _timeline(settings: Settings, console: Console, runs: list[RunResult], trust: Trust) -> bool:
    """5. The watch's sealed runs checked as one timeline (TL1, TL2) and written as its document."""
    from api.service.local_cases import write_packages
    from verifier.report.timeline import render_timeline_html, render_timeline_pdf
    from verifier.report.timeline_entries import timeline_document
    from verifier.timeline import verify_timeline
    from verifier.timeline_cli import render

    folder = settings.reports_dir / "demo-timeline"
    shutil.rmtree(folder, ignore_errors=True)
    # The sealed runs beside the document, which links each line to its package file.
    write_packages(settings, [run.row_id for run in runs], folder)
    report = verify_timeline(folder, trust, thumbnails=True)
    console.print("[green]5. timeline[/] of the watch, verified with tiezheng-verify timeline:")
    console.print(render(report), soft_wrap=True)
    document = timeline_document(report, title="Demo: the sample shop over time")
    written = [folder / "timeline.html"]
    written[0].write_text(render_timeline_html(document), encoding="utf-8")
    if pdf_available():
        written.append(folder / "timeline.pdf")
        written[1].write_bytes(render_timeline_pdf(document))
    console.print(f"timeline document: {', '.join(str(p) for p in written)}")
    return report.exit_code == 0


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
