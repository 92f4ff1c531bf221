"""What a caller may choose about a capture, checked once before anything runs."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from evidence.browser_session import BrowserSession
from evidence.capture_errors import CaptureError
from evidence.capture_steps import Step, parse_steps
from evidence.egress import EgressProxy

WAIT_MODES = ("load", "networkidle")
MAX_WAIT_SECONDS = 60.0
MAX_TIMEOUT_SECONDS = 300.0
MAX_CONCURRENCY = 16
MAX_NOTE_CHARS = 2000
MIN_VIEWPORT, MAX_VIEWPORT = 200, 4096
MAX_SUBJECT_CHARS = 500
MAX_MATTER_CHARS = 40


@dataclass(frozen=True)
class CaptureOptions:
    """``wait`` is "load", "networkidle" or a number of seconds to wait after load.

    ``allow_private`` lifts the SSRF block (tests, intranets); ``accept_error_status`` captures 4xx/5xx
    pages instead of failing (a 404 can be evidence too); ``allow_untrusted_tls`` captures over a
    certificate that does not verify and records that it did not; ``extra_ca_pem`` adds trusted roots.
    """

    note: str = ""
    full_page: bool = True
    wait: str | float = "networkidle"
    scroll: bool = True
    viewport: tuple[int, int] = (1280, 800)
    timeout: float = 30.0
    allow_private: bool = False
    accept_error_status: bool = False
    allow_untrusted_tls: bool = False
    extra_ca_pem: bytes | None = None
    check_robots: bool = True
    concurrency: int = 2
    #: What the capture is filed under and about, and the fingerprint (hex) of the same watch's
    #: previous capture: signed into the manifest as ``matter``, ``subject`` and ``previous``.
    matter: str | None = None
    subject: str | None = None
    previous: str | None = None
    #: A watch's run: the watch's id, its previous package (compared into ``evidence/change.json``)
    #: and the key fields it marks, NAME -> CSS selector.
    watch: str | None = None
    previous_package: Path | None = None
    key_fields: Mapping[str, str] = field(default_factory=dict)
    #: Record the session video (evidence/session.webm); scripted steps run before the screenshot
    #: (evidence/capture_steps.py checks them when they are parsed).
    video: bool = True
    steps: tuple[Step, ...] = ()
    #: A logged-in capture's session (``evidence.browser_session``), the egress proxy every connection
    #: goes through (``evidence.egress``), and whether embedded media are also saved as artifacts.
    session: BrowserSession | None = None
    egress: EgressProxy | None = None
    save_media: bool = False

    def validated(self) -> CaptureOptions:
        """Return self (its steps parsed), or raise CaptureError naming the first bad option."""
        if self.steps and not all(isinstance(step, Step) for step in self.steps):
            return replace(self, steps=parse_steps(list(self.steps))).validated()
        if isinstance(self.wait, str):
            if self.wait not in WAIT_MODES:
                raise CaptureError(f"wait must be load, networkidle or a number of seconds, not {self.wait!r}")
        elif isinstance(self.wait, bool) or not 0 <= self.wait <= MAX_WAIT_SECONDS:
            raise CaptureError(f"wait must be between 0 and {MAX_WAIT_SECONDS:g} seconds")
        if not 1 <= self.timeout <= MAX_TIMEOUT_SECONDS:
            raise CaptureError(f"timeout must be between 1 and {MAX_TIMEOUT_SECONDS:g} seconds")
        if not 1 <= self.concurrency <= MAX_CONCURRENCY:
            raise CaptureError(f"concurrency must be between 1 and {MAX_CONCURRENCY}")
        if not all(MIN_VIEWPORT <= side <= MAX_VIEWPORT for side in self.viewport):
            raise CaptureError(f"viewport sides must be between {MIN_VIEWPORT} and {MAX_VIEWPORT} pixels")
        if len(self.note) > MAX_NOTE_CHARS:
            raise CaptureError(f"the note is longer than {MAX_NOTE_CHARS} characters")
        if self.subject is not None and not 1 <= len(self.subject) <= MAX_SUBJECT_CHARS:
            raise CaptureError(f"the subject must be 1 to {MAX_SUBJECT_CHARS} characters")
        if self.matter is not None and not 1 <= len(self.matter) <= MAX_MATTER_CHARS:
            raise CaptureError(f"the matter id must be 1 to {MAX_MATTER_CHARS} characters")
        if self.previous is not None and not re.fullmatch(r"[0-9a-f]{64}", self.previous):
            raise CaptureError("previous must be a fingerprint: 64 lowercase hex digits")
        if self.watch is not None and not 1 <= len(self.watch) <= MAX_MATTER_CHARS:
            raise CaptureError(f"the watch id must be 1 to {MAX_MATTER_CHARS} characters")
        return self

    def links(self) -> dict[str, Any]:
        """The manifest writer's ``matter``, ``subject``, ``watch`` and ``previous`` (bytes)."""
        return {"matter": self.matter, "subject": self.subject, "watch": self.watch,
                "previous": bytes.fromhex(self.previous) if self.previous is not None else None}

    def record(self) -> dict[str, Any]:
        """The options as the manifest and the call log state them."""
        return {"full_page": self.full_page, "wait": self.wait, "scroll": self.scroll,
                "viewport": list(self.viewport), "timeout_seconds": self.timeout,
                "allow_private": self.allow_private, "accept_error_status": self.accept_error_status,
                "allow_untrusted_tls": self.allow_untrusted_tls, "check_robots": self.check_robots,
                "extra_ca_sha256": hashlib.sha256(self.extra_ca_pem).hexdigest() if self.extra_ca_pem else None,
                "video": self.video, "steps": [step.record() for step in self.steps],
                "session": self.session.name if self.session else None,
                "egress": self.egress.name if self.egress else None, "save_media": self.save_media}
