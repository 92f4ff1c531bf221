"""What the evidence side puts into a manifest: ids, the local requester, file records, tool and clock facts.

The manifest itself is written by ``verifier.manifest_writer``, beside its reader.
"""

from __future__ import annotations

import getpass
import platform
import secrets
from datetime import UTC, datetime
from pathlib import Path

from verifier import __version__ as verifier_version
from verifier.manifest_writer import artifact_of_stream
from verifier.package import Artifact, Requester

#: Evidence ids are sortable by creation time and unguessable.
EVIDENCE_ID_RANDOM_BYTES = 6


def new_evidence_id(now: datetime | None = None) -> str:
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return f"tz-{moment:%Y%m%dT%H%M%S}-{secrets.token_hex(EVIDENCE_ID_RANDOM_BYTES)}"


def local_requester() -> Requester:
    """The requester for CLI use: this machine's user on the local tenant."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return Requester(tenant="local", identity=f"{user}@{platform.node() or 'localhost'}")


def file_artifact(path_in_package: str, role: str, media_type: str, source: Path) -> Artifact:
    """Hash a file (streamed) and return its manifest artifact record."""
    with source.open("rb") as stream:
        return artifact_of_stream(path_in_package, role, media_type, stream)


def tool_record() -> dict[str, str]:
    return {"name": "tiezheng", "version": verifier_version, "python": platform.python_version()}


def clock_source() -> dict[str, str]:
    """Describe the clock that stamped the capture times, as far as the host tells."""
    kernel_clock = Path("/sys/devices/system/clocksource/clocksource0/current_clocksource")
    try:
        kernel = kernel_clock.read_text().strip()
    except OSError:
        kernel = "unknown"
    return {"kind": "host system clock (UTC)", "kernel_clocksource": kernel,
            "note": "capture times come from this clock; the RFC 3161 timestamp is the independent time"}
