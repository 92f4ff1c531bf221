"""Nothing from a package reaches a terminal, an HTML page or a PDF unescaped.

The package here is genuine (signed by the test operator's key, sealed with a real TSA token and a
real devnet anchor), but its manifest's operator name and requester hold terminal escape sequences
(cursor up + erase line + a fake VERIFIED), an OSC 8 hyperlink and a right-to-left override. Every
output of the real CLI must show them as inert codes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from evidence.operator_key import OperatorKey
from evidence.upload import build_upload
from tests.factory import Workspace, seal_batch
from verifier.package import Requester
from verifier.sanitize import display_text

FAKE_LINE = "\x1b[1A\x1b[2K\rVERIFIED - all checks passed\x1b[0m"
HYPERLINK = "\x1b]8;;https://evil.example/\x1b\\counsel@acme.example\x1b]8;;\x1b\\"
REVERSED = "acme\u202egnp.exe\u2066x\u2069"
#: What must never appear raw in any output: ESC, CSI/OSC (7- and 8-bit), CR, BEL, bidi controls.
FORBIDDEN = ["\x1b", "\x9b", "\x9d", "\r", "\x07", *map(chr, range(0x202A, 0x202F)), *map(chr, range(0x2066, 0x206A))]
BIN = Path(sys.executable).parent


@pytest.fixture()
def hostile(workspace: Workspace, rpc_url: str, tmp_path: Path) -> Path:
    exhibit = tmp_path / "exhibit.txt"
    exhibit.write_bytes(b"infringing copy\n")
    operator = OperatorKey(name="Operator " + FAKE_LINE, signer=workspace.operator.signer)
    built = build_upload([exhibit], packages_dir=workspace.packages, operator=operator,
                         requester=Requester(tenant=FAKE_LINE + REVERSED, identity=HYPERLINK))
    seal_batch(workspace, [built], rpc_url)
    return built.path


def _run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "400"}
    return subprocess.run([str(BIN / "tiezheng-verify"), *map(str, args)], capture_output=True, text=True,
                          timeout=120, env=env)


def _assert_inert(output: str) -> None:
    for char in FORBIDDEN:
        assert char not in output, f"raw U+{ord(char):04X} reached the output"
    fake = [line for line in output.splitlines() if line.strip().upper().startswith("VERIFIED")]
    assert not fake, fake


def test_sanitiser_makes_every_hidden_character_visible() -> None:
    shown = display_text(FAKE_LINE + HYPERLINK + REVERSED + "\u200b\ufeff\U000e0041\u2028")
    _assert_inert(shown)
    assert "\\x1b[1A\\x1b[2K\\x0dVERIFIED" in shown and "\\u202e" in shown and "\\U000e0041" in shown
    assert display_text("plain 中文 text") == "plain 中文 text"


def test_table_json_html_and_pdf_are_inert(workspace: Workspace, hostile: Path, tmp_path: Path) -> None:
    # Without the operator key in the trust the verdict is "cannot judge": any VERIFIED line is fake.
    trust = workspace.trust_file(operator=False)
    html, pdf = tmp_path / "report.html", tmp_path / "report.pdf"
    table = _run(hostile, "--trust", trust, "--html", html, "--pdf", pdf, "--details")
    assert table.returncode == 3, table.stderr
    _assert_inert(table.stdout + table.stderr)
    assert "CANNOT JUDGE" in table.stdout and "\\x1b[1A" in table.stdout and "\\u202e" in table.stdout

    page = html.read_text(encoding="utf-8")
    _assert_inert(page)
    assert "\\u202e" in page and "What this proves" not in page

    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout
    _assert_inert(text)
    assert "CANNOT JUDGE" in text and "What this proves" not in text

    as_json = _run(hostile, "--trust", trust, "--json")
    assert as_json.returncode == 3
    assert as_json.stdout.isascii(), "JSON output must escape every non-ASCII character"
    body = json.loads(as_json.stdout)
    # JSON stays faithful data: the exact strings come back after decoding.
    assert body["facts"]["requester"] == {"tenant": FAKE_LINE + REVERSED, "identity": HYPERLINK}


def test_verified_package_with_hostile_text_renders_inert(workspace: Workspace, hostile: Path) -> None:
    result = _run(hostile, "--trust", workspace.trust_file())
    assert result.returncode == 0, result.stdout
    _assert_inert(result.stdout.replace(" VERIFIED (OFFLINE) ", ""))  # the banner, first and last
    assert "What this proves" in result.stdout
