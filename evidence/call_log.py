"""Write the capture's call log (``evidence/capture-log.jsonl``) as the capture happens.

Each step appends one canonical JSON line holding the sha256 of the line before it (see
``verifier.call_log`` for the format and the checks). A file the capture makes is hashed and logged
the moment it is written, before anything else can touch it; the verifier's P2 compares those
logged hashes with the files in the package.

The last step, ``package``, cannot hold the hash of the package or of the manifest: both are made
after the log is closed, and the manifest itself lists the log's hash. It logs what is fixed by then
(every artifact's path, size and sha256, and the end time); the manifest then records the hash of
that last line as ``capture.log_head``, which closes the chain under the operator's signature.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from verifier import canonical
from verifier.call_log import GENESIS, encode_line, line_sha256
from verifier.capture_format import SYSTEM_ACTOR
from verifier.manifest_writer import utc_iso


def output_record(path_in_package: str, file: Path) -> dict[str, Any]:
    """``{path, sha256, size}`` of a file just written, hashed now."""
    with file.open("rb") as stream:
        digest, size = canonical.sha256_stream(stream)
    return {"path": path_in_package, "sha256": digest.hex(), "size": size}


class CallLog:
    """An append-only, hash-chained log file. Not thread-safe: one capture, one writer."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = path.open("xb")
        self._seq = 0
        self.head = GENESIS
        self.last_time: datetime | None = None

    @property
    def next_seq(self) -> int:
        """The ``seq`` the next line will get (so the last line written is ``next_seq - 1``)."""
        return self._seq

    def record(self, step: str, *, inputs: Mapping[str, Any], outcome: Mapping[str, Any] | None = None,
               outputs: Sequence[Mapping[str, Any]] = ()) -> str:
        """Append one step and return the sha256 of its line (the new head)."""
        now = datetime.now(UTC)
        if self.last_time is not None and now < self.last_time:
            # The wall clock stepped back during the capture; the log says so instead of hiding it.
            outcome = {**(outcome or {}), "clock_stepped_back": True}
        self.last_time = now
        line = encode_line({"seq": self._seq, "time": utc_iso(now), "step": step, "actor": SYSTEM_ACTOR,
                            "inputs": dict(inputs), "outcome": {"status": "ok", **(outcome or {})},
                            "outputs": [dict(o) for o in outputs], "prev_sha256": self.head})
        self._file.write(line + b"\n")
        self._file.flush()
        self._seq += 1
        self.head = line_sha256(line)
        return self.head

    def close(self) -> None:
        if not self._file.closed:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
