"""`tiezheng demo`: the whole job on embedded defaults, end to end, in one command.

Until capture lands, the evidence is an upload of the sample site's files. It starts the embedded
TSA and devnet, makes the package, seals it, verifies it with the standalone verifier's code and
this data dir's trust, and prints where the package and the report are.
"""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console

from api.services import engine_for, local_trust, make_sealer, operator_for, sealing_services
from api.settings import Settings
from evidence.manifest import Requester
from evidence.upload import build_upload
from verifier.render import render_report
from verifier.trust import default_trust
from verifier.verify import verify_package

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "site"


def run_demo(settings: Settings, console: Console) -> int:
    """Run the demo; returns the exit code (0 when the sealed package verifies)."""
    files = sorted(p for p in SAMPLES.iterdir() if p.is_file())
    console.rule("Tiezheng demo: upload → seal → verify")
    console.print(f"data dir: {settings.root}")
    built = build_upload(files, packages_dir=settings.packages_dir, operator=operator_for(settings),
                         requester=Requester(tenant="demo-rights-owner", identity="demo@rights-owner.example"),
                         note="Tiezheng demo: the sample site's files")
    console.print(f"[green]1. packaged[/] {len(files)} files as {built.evidence_id}\n"
                  f"   fingerprint {built.fingerprint.hex()}")
    engine = engine_for(settings)
    with console.status("2. sealing: Merkle batch, RFC 3161 timestamp, anchor on the devnet…"), \
            sealing_services(settings, keep_devnet=False) as running:
        sealer = make_sealer(settings, engine, running)
        sealer.accept(built.evidence_id, built.fingerprint, built.path)
        batches = sealer.run_once(force=True)
    if not batches:
        console.print("[red]sealing did not finish[/]; run `tiezheng status` for the reason")
        return 1
    console.print(f"[green]2. sealed[/] in batch {batches[-1]}")
    report = verify_package(built.path, default_trust().merged(local_trust(settings)))
    console.print("[green]3. verified[/] with the standalone verifier:")
    console.print(render_report(report, source=str(built.path)))
    settings.reports_dir.mkdir(parents=True, exist_ok=True)
    report_path = settings.reports_dir / f"{built.evidence_id}.json"
    report_path.write_text(json.dumps(report.to_json(), indent=2, ensure_ascii=False), encoding="utf-8")
    console.print(f"\npackage: {built.path}\nreport:  {report_path}\n"
                  f"check it yourself: tiezheng verify {built.path} --data-dir {settings.root}")
    return 0 if report.verified else 1
