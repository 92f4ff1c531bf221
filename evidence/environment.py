"""The capture environment as the manifest states it: tools, versions, hashes, platform (check S4).

Every tool gets a sha256 of what actually ran: the Chromium binary the browser process executes,
the Python interpreter, our own capture code (every module of evidence/ and verifier/), and for each
installed library the distribution's RECORD file, which itself lists the sha256 of every file that
distribution installed.
"""

from __future__ import annotations

import hashlib
import platform
import ssl
import sys
from functools import cache, lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

from evidence.browser import BrowserFacts, file_sha256
from verifier import __version__ as tiezheng_version
from verifier import canonical

#: Libraries whose code takes part in a capture.
LIBRARIES = ("playwright", "httpx", "httpcore", "h11", "dnspython", "warcio", "cdxj-indexer", "cryptography",
             "rfc8785")
CODE_PACKAGES = ("evidence", "verifier")


@lru_cache(maxsize=1)
def code_record() -> dict[str, Any]:
    """sha256 of each module of our capture code, and one sha256 over that list."""
    root = Path(__file__).resolve().parent.parent
    files = {}
    for package in CODE_PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            files[path.relative_to(root).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return {"sha256": canonical.sha256_hex(canonical.canonical_json(files)), "files": files,
            "sha256_of": "RFC 8785 JSON of {module path: sha256 of its source}"}


@cache
def library_record(name: str) -> dict[str, str]:
    try:
        dist = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return {"name": name, "version": "not installed", "sha256": hashlib.sha256(b"").hexdigest()}
    record = dist.read_text("RECORD") or ""
    return {"name": name, "version": dist.version, "sha256": hashlib.sha256(record.encode()).hexdigest(),
            "sha256_of": "the distribution's RECORD file (it lists the sha256 of every installed file)"}


@lru_cache(maxsize=1)
def python_record() -> dict[str, str]:
    executable = Path(sys.executable).resolve()
    return {"name": "python", "version": platform.python_version(), "sha256": file_sha256(executable),
            "executable": str(executable)}


def tool_records(browser: BrowserFacts) -> list[dict[str, str]]:
    """The manifest's ``capture.tools``: name, version and sha256 of each tool that took part."""
    code = code_record()
    return [{"name": "tiezheng-capture", "version": tiezheng_version, "sha256": code["sha256"],
             "sha256_of": code["sha256_of"]},
            {"name": "chromium", "version": browser.version, "sha256": browser.sha256,
             "executable": browser.executable},
            python_record(), *(library_record(name) for name in LIBRARIES)]


def platform_record() -> dict[str, str]:
    return {"system": platform.platform(), "machine": platform.machine(), "openssl": ssl.OPENSSL_VERSION}
