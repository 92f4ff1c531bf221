"""The demo's event log: a burst of likes from a few devices and IPs, checkpointed, sealed with the
captures, then exported with the actors withheld and verified, with its per-device and per-IP table."""

from __future__ import annotations

import json
import tempfile
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console
from rich.table import Table

from api.service import log_pipeline
from api.service.settings import Settings
from verifier.trust import Trust
from verifier.verify import verify_package

LOG_NAME = "demo-likes"
START = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
#: Who liked: (device, IP, likes); one device and address do most of it, as in a bought burst.
BURST = (("phone-a", "203.0.113.7", 4), ("phone-b", "203.0.113.8", 3), ("emulator-1", "198.51.100.23", 40),
         ("emulator-2", "198.51.100.23", 25))
SHOWN = ["event_time", "type", "device_id", "ip"]


def prepare(settings: Settings) -> int:
    """Append the burst and publish its checkpoint, queued for the demo's sealing. Returns the event count."""
    lines, n = [], 0
    for device, ip, likes in BURST:
        for i in range(likes):
            when = START + timedelta(seconds=83 * n)  # 72 likes over 100 minutes
            lines.append(json.dumps({"event_time": when.strftime("%Y-%m-%dT%H:%M:%SZ"), "type": "like",
                                     "actor": f"account-{n % 9}", "device_id": device, "ip": ip,
                                     "session": f"{device}-s{i // 10}", "payload": {"post": "listing-42"}}))
            n += 1
    engine = log_pipeline.log_engine(settings)
    with tempfile.TemporaryDirectory(prefix="tiezheng-demo-log-") as tmp:
        burst = Path(tmp) / "likes.ndjson"
        burst.write_text("\n".join(lines) + "\n", encoding="utf-8")
        receipts = log_pipeline.append_file(engine, LOG_NAME, burst)
    log_pipeline.sequence(settings, engine, LOG_NAME)
    return len(receipts)


def show(settings: Settings, trust: Trust, console: Console) -> bool:
    """Export the likes (actors, sessions and payloads withheld), verify, print the table. True when verified."""
    engine = log_pipeline.log_engine(settings)
    built = log_pipeline.export(settings, engine, LOG_NAME, "type=like", SHOWN, aggregates=True)
    report = verify_package(built.path, trust)
    checks = "  ".join(f"{r.id} {r.status.value}" for r in report.checks if r.id.startswith("L"))
    console.print(f"[green]4. log export[/] {built.path}\n   {checks}  verdict: {report.verdict.value}\n"
                  "   accounts, sessions and payloads withheld: only their salted hashes are in the export")
    with zipfile.ZipFile(built.path) as archive:
        tables = json.loads(archive.read("evidence/log/aggregates.json"))["tables"]
    for table in tables:
        column = table["by"][0]
        shown = Table(title=f"likes per hour per {column} (recomputed by the verifier: L4)")
        for name in ("hour", column, "events"):
            shown.add_column(name, justify="right" if name == "events" else "left")
        for row in sorted(table["rows"], key=lambda r: (r["hour"], -r["events"], str(r[column]))):
            shown.add_row(row["hour"], str(row[column]), str(row["events"]))
        console.print(shown)
    return report.verified
