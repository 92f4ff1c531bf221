"""The README's notice flow in six commands, run as written.

The commands are read from the README's code block, not copied here, so the README cannot drift
from the CLI. Only the placeholders a reader fills in are replaced (the relay's host, ``tz-…`` ids,
``nt-…``, ``mt-…``, ``reply.eml``, the default data dir); the relay is aiosmtpd and the platform's
DKIM key is served by a DNS server, both on loopback.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.conftest import capture_available
from tests.api.test_cli import BIN
from tests.api.test_notice_cli import _signed_reply
from tests.evidence.notices.servers import Mailbox, Zone, dns_server, smtp_server

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = "## Notices: takedown, delivery and replies"


def readme_commands() -> list[str]:
    """The shell lines of the first code block after the notices heading, continuations joined."""
    text = README.read_text(encoding="utf-8")
    block = text[text.index(SECTION):].split("```sh\n", 1)[1].split("```", 1)[0]
    return [line.strip() for line in block.replace("\\\n", " ").splitlines() if line.strip()]


@pytest.fixture()
def loopback(tmp_path: Path, anvil: Path) -> Iterator[tuple[Path, Mailbox, Zone]]:
    data = tmp_path / "data"
    with smtp_server(tmp_path, starttls=False) as mailbox, dns_server() as zone:
        try:
            yield data, mailbox, zone
        finally:
            subprocess.run([str(BIN / "tiezheng"), "chain", "down"], capture_output=True, timeout=60,
                           env={**os.environ, "TIEZHENG_DATA_DIR": str(data)})


@pytest.mark.slow  # a dozen `tiezheng` processes, a capture and two seals (158 s at a load of 10 on 2 cores)
@pytest.mark.skipif(capture_available() is not None, reason=f"web capture: {capture_available()}")
def test_the_readme_notice_flow_runs_as_written(loopback: tuple[Path, Mailbox, Zone], sample_site: str,
                                                tmp_path: Path) -> None:
    data, mailbox, zone = loopback
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "TIEZHENG_DATA_DIR": str(data),
           "COLUMNS": "200", "TIEZHENG_SMTP_PORT": str(mailbox.port), "TIEZHENG_SMTP_STARTTLS": "off",
           "TIEZHENG_DNS_RESOLVER": f"127.0.0.1:{zone.port}", "TIEZHENG_CAPTURE_ALLOW_PRIVATE": "true"}

    def sh(line: str) -> str:
        result = subprocess.run(["bash", "-c", line], capture_output=True, text=True, env=env, timeout=240)
        assert "Traceback" not in result.stdout + result.stderr, result.stderr
        assert result.returncode == 0, f"{line}\n{result.stdout}\n{result.stderr}"
        return result.stdout

    # What the reader already has: a matter, the sealed proof of right and the sealed capture of the listing.
    registration = tmp_path / "registration.pdf"
    registration.write_bytes(b"%PDF-1.4 copyright registration 2024-F-00123456")
    matter = json.loads(sh("tiezheng matter create 'Owner Co v. Shop' --json"))["id"]
    proof = json.loads(sh(f"tiezheng upload {registration} --json"))["evidence_id"]
    listing = json.loads(sh(f"tiezheng capture {sample_site}/index.html --allow-private --json"))["evidence_id"]
    sh("tiezheng seal")

    commands = readme_commands()
    assert len([c for c in commands if c.startswith("tiezheng ")]) == 6, commands
    filled = {"smtp.operator.example": "127.0.0.1", "tz-…-registration": proof, "tz-…-listing": listing,
              "mt-…": matter, "reply.eml": str(tmp_path / "reply.eml"), "~/.tiezheng": str(data)}
    exported: list[str] = []
    for command in commands:
        for placeholder, value in filled.items():
            command = command.replace(placeholder, value)
        if command.startswith("export "):
            exported.append(command)
            continue
        out = sh("; ".join([*exported, command]))
        if command.startswith("tiezheng notice draft"):
            notice_id = re.search(r"\bnt-[0-9A-Za-z-]+", out)
            assert notice_id, out
            filled["nt-…"] = notice_id.group(0)
            assert "missing:" not in out, out  # complete under every rule set
            (tmp_path / "reply.eml").write_bytes(_signed_reply(notice_id.group(0), zone))
        elif command.startswith("tiezheng notice send"):
            sealed = re.search(r"sealed as (tz-[0-9A-Za-z-]+)", out)
            assert sealed, out
            filled["tz-…"] = sealed.group(1)
        elif command.startswith("tiezheng notice reply"):
            assert "pass" in out.lower(), out
        elif command.startswith("tiezheng seal"):
            assert "VERIFIED (OFFLINE)" in out, out  # the sent notice, N2 and all
    assert len(mailbox.received) == 2  # the notice, then its withdrawal
