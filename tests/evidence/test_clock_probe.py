"""The pre-capture clock probes against real servers: the development TSA over HTTP and chronyd over NTP.

chronyd (Debian ``chrony``) runs as an unprivileged-clock NTP server on a loopback port (``-x``: it never
touches the system clock), serving its local clock at stratum 8.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import socket
from collections.abc import Iterator

import pytest

from anchor.tsa_server import DevTSA
from evidence.clock_probe import ClockReferences, ntp_offset, tsa_offset
from tests.evidence.conftest import free_udp_port
from verifier.manifest_writer import utc_iso
from verifier.timestamp import verify_timestamp
from verifier.tsa_chain import load_certificates


@pytest.fixture(scope="module")
def dev_tsa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DevTSA, str]]:
    """The development TSA and the URL it answers on."""
    tsa = DevTSA(tmp_path_factory.mktemp("tsa"))
    with tsa.serve() as server:
        yield tsa, server.url


def test_ntp_offset_is_measured_against_chronyd(chrony: str) -> None:
    reading = asyncio.run(ntp_offset(ClockReferences(ntp_server=chrony)))
    assert reading["status"] == "measured" and reading["stratum"] == 8 and reading["server"] == chrony
    # chronyd serves this very host's clock: the offset is the measurement's noise, well under a second.
    assert abs(reading["offset_seconds"]) < 0.5 and 0 <= reading["uncertainty_seconds"] < 0.5


def test_ntp_not_configured_and_unreachable_are_recorded_as_such() -> None:
    assert asyncio.run(ntp_offset(ClockReferences()))["status"] == "not configured"
    silent = asyncio.run(ntp_offset(ClockReferences(ntp_server=f"127.0.0.1:{free_udp_port()}")))
    assert silent["status"] == "unreachable" and silent["reason"]


def test_tsa_round_trip_measures_the_clock_and_keeps_a_verifiable_token(dev_tsa: tuple[DevTSA, str]) -> None:
    tsa, url = dev_tsa
    reading = asyncio.run(tsa_offset(ClockReferences(tsa_url=url, tsa_name="dev"), b"tz-test-evidence"))
    assert reading["status"] == "measured" and reading["url"] == url
    assert abs(reading["offset_seconds"]) < 1.0 + reading["uncertainty_seconds"]
    token = base64.b64decode(reading["response_base64"])
    assert hashlib.sha256(token).hexdigest() == reading["token_sha256"]
    # The kept token is a real one: an expert can check it over sha256(evidence id) later.
    info = verify_timestamp(token, hashlib.sha256(b"tz-test-evidence").digest(),
                            load_certificates(tsa.ca_certificate_pem()),
                            certificates=load_certificates(tsa.chain_pem()))
    assert utc_iso(info.gen_time) == reading["gen_time"]


def test_tsa_not_configured_and_unreachable_are_recorded_as_such() -> None:
    assert asyncio.run(tsa_offset(ClockReferences(), b"x"))["status"] == "not configured"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}/"
    down = asyncio.run(tsa_offset(ClockReferences(tsa_url=closed), b"x"))
    assert down["status"] == "unreachable" and "ConnectError" in down["reason"]
