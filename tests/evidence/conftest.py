"""Fixtures for capture tests: the local sites, TLS material, one warm browser and an operator key."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from evidence.clock_probe import ClockReferences, ntp_offset
from evidence.operator_key import OperatorKey, load_or_create
from tests.capture_site import BrowserRunner, Site, TlsMaterial, make_tls, serve, trust_file


@pytest.fixture(scope="session")
def tls_material(tmp_path_factory: pytest.TempPathFactory) -> TlsMaterial:
    return make_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def http_site() -> Iterator[Site]:
    site = serve()
    yield site
    site.close()


@pytest.fixture(scope="session")
def https_site(tls_material: TlsMaterial) -> Iterator[Site]:
    site = serve(tls_material.trusted)
    yield site
    site.close()


@pytest.fixture(scope="session")
def self_signed_site(tls_material: TlsMaterial) -> Iterator[Site]:
    site = serve(tls_material.self_signed)
    yield site
    site.close()


@pytest.fixture(scope="session")
def runner() -> Iterator[BrowserRunner]:
    """One warm Chromium for every capture test."""
    browser = BrowserRunner()
    yield browser
    browser.close()


@pytest.fixture(scope="session")
def operator(tmp_path_factory: pytest.TempPathFactory) -> OperatorKey:
    return load_or_create(tmp_path_factory.mktemp("keys") / "operator.key")


@pytest.fixture(scope="session")
def trust(tmp_path_factory: pytest.TempPathFactory, operator: OperatorKey) -> Path:
    return trust_file(tmp_path_factory.mktemp("trust"), operator)


@pytest.fixture()
def packages(tmp_path: Path) -> Path:
    return tmp_path / "packages"


CHRONY_START_SECONDS = 10.0


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(port: int) -> bool:
    reading = asyncio.run(ntp_offset(ClockReferences(ntp_server=f"127.0.0.1:{port}")))
    return reading["status"] == "measured"


@pytest.fixture(scope="session")
def chrony(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``host:port`` of a running chronyd NTP server on loopback."""
    binary = shutil.which("chronyd") or ("/usr/sbin/chronyd" if Path("/usr/sbin/chronyd").exists() else None)
    if binary is None:
        pytest.skip("chronyd is not installed (Debian package chrony; `make setup` installs it)")
    folder = tmp_path_factory.mktemp("chrony")
    port = free_udp_port()
    config = folder / "chrony.conf"
    config.write_text(f"port {port}\nbindaddress 127.0.0.1\nallow 127.0.0.1\nlocal stratum 8\ncmdport 0\n"
                      f"pidfile {folder / 'chronyd.pid'}\n")
    process = subprocess.Popen([binary, "-x", "-d", "-u", "root", "-f", str(config)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + CHRONY_START_SECONDS
        while not _answers(port):
            if process.poll() is not None or time.monotonic() > deadline:
                output = process.stdout.read().decode(errors="replace") if process.stdout else ""
                pytest.skip(f"chronyd did not serve NTP here: {output.strip()[-300:]}")
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)
