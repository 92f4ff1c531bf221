"""Capture through a named egress: a real tinyproxy (Debian) on loopback relays every connection.

The proxy's own log shows the CONNECT tunnels of the raw fetch and of the recorder, the manifest
records the egress without its credentials, S4 says "through egress", and the SSRF guard still
applies to the target.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from evidence.capture_errors import BlockedAddress, CaptureError
from evidence.egress import configured_egress, configured_names, env_name, parse_proxy_url
from evidence.operator_key import OperatorKey
from tests.capture_site import BrowserRunner, Site, member, statuses, verify

START_SECONDS = 10.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def tinyproxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    """``(port, log file)`` of a tinyproxy on 127.0.0.1 that tunnels CONNECT to any port."""
    binary = shutil.which("tinyproxy") or ("/usr/bin/tinyproxy" if Path("/usr/bin/tinyproxy").exists() else None)
    if binary is None:
        pytest.skip("tinyproxy is not installed (Debian package tinyproxy; `make setup` installs it)")
    folder = tmp_path_factory.mktemp("tinyproxy")
    port, log = _free_port(), folder / "tinyproxy.log"
    config = folder / "tinyproxy.conf"
    # No ConnectPort line: CONNECT is allowed to every port (the test site is not on 443).
    config.write_text(f"Port {port}\nListen 127.0.0.1\nTimeout 60\nLogFile \"{log}\"\nLogLevel Connect\n"
                      f"MaxClients 50\nAllow 127.0.0.1\nPidFile \"{folder / 'tinyproxy.pid'}\"\n")
    process = subprocess.Popen([binary, "-d", "-c", str(config)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + START_SECONDS
        while not _listening(port):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.skip(f"tinyproxy did not start here: {log.read_text() if log.exists() else ''}"[-300:])
            time.sleep(0.1)
        yield port, log
    finally:
        process.terminate()
        process.wait(10)


def test_every_connection_goes_through_the_egress(runner: BrowserRunner, http_site: Site, tinyproxy: tuple[int, Path],
                                                  operator: OperatorKey, trust: Path, packages: Path) -> None:
    port, log = tinyproxy
    before = log.read_text() if log.exists() else ""
    egress = parse_proxy_url("cn-east", f"http://user:pw%40secret@127.0.0.1:{port}")
    built = runner.capture(http_site.url("/dynamic"), packages, operator, egress=egress)
    seen = (log.read_text())[len(before):]
    # The raw fetch, robots.txt and the browser's page and image: each a tunnel to the checked address.
    tunnels = [line for line in seen.splitlines() if f"CONNECT 127.0.0.1:{http_site.port}" in line
               or (f"127.0.0.1:{http_site.port}" in line and "CONNECT" in line)]
    assert len(tunnels) >= 3, seen
    manifest = json.loads(member(built.path, "evidence/manifest.json"))
    recorded = manifest["capture"]["egress"]
    assert recorded["name"] == "cn-east" and recorded["url"] == f"http://127.0.0.1:{port}"
    assert recorded["authenticated"] is True
    assert b"pw%40secret" not in member(built.path, "evidence/manifest.json")
    assert b"pw@secret" not in member(built.path, "evidence/network.json")
    assert manifest["capture"]["browser"]["proxy"]["raw_fetch"].startswith("through egress 'cn-east'")
    report = verify(built.path, trust)
    found = statuses(report)
    assert found["S4"] == "warn" and f"through egress 'cn-east' (http://127.0.0.1:{port})" in \
        report.result("S4").reason, report.result("S4")
    # The clean check does not claim this host's address is what the target saw: the proxy's is, unseen.
    environment = json.loads(member(built.path, "evidence/environment-check.json"))
    assert environment["egress"]["status"] == "unknown" and "cn-east" in environment["egress"]["reason"]
    assert {found[i] for i in ("P1", "P2", "P3", "H1")} == {"pass"}, report.checks


def test_the_ssrf_guard_still_applies_through_the_egress(runner: BrowserRunner, http_site: Site,
                                                         tinyproxy: tuple[int, Path], operator: OperatorKey,
                                                         packages: Path) -> None:
    egress = parse_proxy_url("cn-east", f"http://127.0.0.1:{tinyproxy[0]}")
    with pytest.raises(BlockedAddress):
        runner.capture(http_site.url("/dynamic"), packages, operator, egress=egress, allow_private=False)


def test_a_proxy_that_is_not_there_fails_in_one_line(runner: BrowserRunner, http_site: Site, operator: OperatorKey,
                                                     packages: Path) -> None:
    egress = parse_proxy_url("gone", f"http://127.0.0.1:{_free_port()}")
    with pytest.raises(CaptureError, match=r"cannot connect to 127\.0\.0\.1"):
        runner.capture(http_site.url("/dynamic"), packages, operator, egress=egress)


def test_egress_names_come_from_the_environment() -> None:
    env = {env_name("cn-east"): "http://10.0.0.5:3128", "TIEZHENG_EGRESS_US": "http://10.0.0.6:8080"}
    assert env_name("cn-east") == "TIEZHENG_EGRESS_CN_EAST"
    assert configured_egress("cn-east", env).public_url == "http://10.0.0.5:3128"
    assert configured_names(env) == ["cn-east", "us"]
    with pytest.raises(CaptureError, match="no egress named 'eu' is configured \\(set TIEZHENG_EGRESS_EU="):
        configured_egress("eu", env)
    with pytest.raises(CaptureError, match="must name the proxy's port"):
        parse_proxy_url("x", "http://user:pw@10.0.0.5")
    with pytest.raises(CaptureError, match="must be http://host:port"):
        parse_proxy_url("x", "socks5://10.0.0.5:1080")
