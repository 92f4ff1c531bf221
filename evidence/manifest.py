"""Build manifests (format ``tiezheng/1``) and the artifact records they list."""

from __future__ import annotations

import getpass
import platform
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from verifier import __version__ as verifier_version
from verifier import canonical
from verifier.package import MANIFEST_FORMAT

#: Evidence ids are sortable by creation time and unguessable.
EVIDENCE_ID_RANDOM_BYTES = 6


def new_evidence_id(now: datetime | None = None) -> str:
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return f"tz-{moment:%Y%m%dT%H%M%S}-{secrets.token_hex(EVIDENCE_ID_RANDOM_BYTES)}"


def utc_iso(moment: datetime) -> str:
    """UTC with microseconds, the way every manifest time is written."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Requester:
    tenant: str
    identity: str

    @classmethod
    def local(cls) -> Requester:
        """The requester for CLI use: this machine's user on the local tenant."""
        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = "unknown"
        return cls(tenant="local", identity=f"{user}@{platform.node() or 'localhost'}")

    def record(self) -> dict[str, str]:
        return {"tenant": self.tenant, "identity": self.identity}


def artifact_record(path_in_package: str, role: str, media_type: str, source: Path) -> dict[str, Any]:
    """Hash a file (streamed) and return its manifest artifact record."""
    with source.open("rb") as stream:
        digest, size = canonical.sha256_stream(stream)
    return {"path": path_in_package, "role": role, "media_type": media_type, "size": size, "sha256": digest.hex()}


def tool_record() -> dict[str, str]:
    return {"name": "tiezheng", "version": verifier_version, "python": platform.python_version()}


def finish(manifest: dict[str, Any]) -> tuple[dict[str, Any], bytes, bytes]:
    """Return ``(manifest, canonical bytes, fingerprint)`` after checking the required fields."""
    for key in ("evidence_id", "kind", "operator", "requester", "artifacts"):
        if key not in manifest:
            raise ValueError(f"manifest lacks {key}")
    manifest = {"format": MANIFEST_FORMAT, **manifest}
    body = canonical.canonical_json(manifest)
    return manifest, body, canonical.sha256(body)


def clock_source() -> dict[str, str]:
    """Describe the clock that stamped the capture times, as far as the host tells."""
    kernel_clock = Path("/sys/devices/system/clocksource/clocksource0/current_clocksource")
    try:
        kernel = kernel_clock.read_text().strip()
    except OSError:
        kernel = "unknown"
    return {"kind": "host system clock (UTC)", "kernel_clocksource": kernel,
            "note": "capture times come from this clock; the RFC 3161 timestamp is the independent time"}
