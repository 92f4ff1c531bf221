"""How far this host's clock is off, measured just before a capture: one RFC 3161 round trip, one SNTP query.

Both probes return a record for ``evidence/environment-check.json`` and never raise: a reference
that is not configured or does not answer is recorded as such, with the reason, because an
unknown clock is itself a finding (the verifier's S4 warns on it).

The offset is the reference's time minus the midpoint of our send and receive times, so a slow
round trip widens the stated uncertainty instead of skewing the offset. The TSA's token is kept
(base64) so that anyone can check its signature later; it is not verified here, because what this
probe measures is our clock, not the TSA.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import socket
import ssl
import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import httpx
from asn1crypto import tsp

from verifier.manifest_writer import utc_iso

PROBE_TIMEOUT_SECONDS = 5.0
NTP_TIMEOUT_SECONDS = 2.0
NTP_PORT = 123
#: Seconds between the NTP era (1900) and the Unix epoch (1970).
NTP_EPOCH_OFFSET = 2_208_988_800
MAX_TSA_RESPONSE_BYTES = 64 << 10
NONCE_BITS = 64


@dataclass(frozen=True)
class ClockReferences:
    """Where the pre-capture clock check asks: a TSA URL (RFC 3161 over HTTP) and an NTP server."""

    tsa_url: str | None = None
    tsa_name: str | None = None
    #: ``host`` or ``host:port``; ``None`` records "not configured".
    ntp_server: str | None = None


def _offset(reference: datetime, sent: datetime, received: datetime) -> tuple[float, float]:
    """``(offset, half round trip)`` in seconds: reference minus our midpoint."""
    midpoint = sent + (received - sent) / 2
    return (reference - midpoint).total_seconds(), (received - sent).total_seconds() / 2


def timestamp_request(message: bytes) -> tuple[bytes, int]:
    """A DER TimeStampReq over sha256(message) with a random nonce, and that nonce."""
    nonce = secrets.randbits(NONCE_BITS)
    request = tsp.TimeStampReq({
        "version": 1,
        "message_imprint": {"hash_algorithm": {"algorithm": "sha256"},
                            "hashed_message": hashlib.sha256(message).digest()},
        "nonce": nonce,
        "cert_req": False,
    })
    return bytes(request.dump()), nonce


def _gen_time(response_der: bytes, nonce: int) -> tuple[datetime, float, float | None]:
    """``(genTime, its precision in seconds, stated accuracy in seconds)``. Raises ValueError."""
    response = tsp.TimeStampResp.load(response_der)
    status = response["status"]["status"].native
    if status not in ("granted", "granted_with_mods"):
        raise ValueError(f"the TSA answered {status}")
    tst_info = response["time_stamp_token"]["content"]["encap_content_info"]["content"].parsed
    if tst_info["nonce"].native != nonce:
        raise ValueError("the TSA's answer carries another nonce")
    field = tst_info["gen_time"]
    moment = field.native
    if not isinstance(moment, datetime):
        raise ValueError("the token has no genTime")
    raw = bytes(field.contents).decode("ascii", "replace").rstrip("Z")
    fraction = raw.split(".", 1)[1] if "." in raw else ""
    accuracy = tst_info["accuracy"].native if tst_info["accuracy"].contents else None
    stated = None
    if isinstance(accuracy, dict):
        stated = (accuracy.get("seconds") or 0) + (accuracy.get("millis") or 0) / 1e3 + (accuracy.get("micros")
                                                                                          or 0) / 1e6
    return moment.astimezone(UTC), 10.0 ** -len(fraction), stated


@cache
def _tls_context() -> ssl.SSLContext:
    # Loading the CA store costs tens of milliseconds: once per process, not once per capture.
    return ssl.create_default_context()


async def tsa_offset(references: ClockReferences, message: bytes) -> dict[str, Any]:
    """One RFC 3161 round trip to the configured TSA; the record of what it showed."""
    if not references.tsa_url:
        return {"status": "not configured", "reason": "no TSA URL was given to the capture"}
    record: dict[str, Any] = {"url": references.tsa_url, "name": references.tsa_name}
    request, nonce = timestamp_request(message)
    try:
        # trust_env off: the probe must not go through a proxy the environment happens to name.
        async with httpx.AsyncClient(trust_env=False, timeout=PROBE_TIMEOUT_SECONDS, verify=_tls_context()) as client:
            sent = datetime.now(UTC)
            answer = await client.post(references.tsa_url, content=request,
                                       headers={"Content-Type": "application/timestamp-query"})
            received = datetime.now(UTC)
        if answer.status_code != 200:
            raise ValueError(f"HTTP {answer.status_code}")
        if len(answer.content) > MAX_TSA_RESPONSE_BYTES:
            raise ValueError(f"the answer is over {MAX_TSA_RESPONSE_BYTES} bytes")
        gen_time, precision, accuracy = _gen_time(answer.content, nonce)
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        return {**record, "status": "unreachable", "reason": f"{type(exc).__name__}: {str(exc)[:200]}"}
    offset, half_trip = _offset(gen_time, sent, received)
    return {**record, "status": "measured", "sent_at": utc_iso(sent), "received_at": utc_iso(received),
            "gen_time": utc_iso(gen_time), "gen_time_precision_seconds": precision,
            "tsa_accuracy_seconds": accuracy, "offset_seconds": round(offset, 6),
            "uncertainty_seconds": round(half_trip + precision + (accuracy or 0.0), 6),
            "token_sha256": hashlib.sha256(answer.content).hexdigest(),
            "response_base64": base64.b64encode(answer.content).decode(),
            "imprint_of": "sha256 of this capture's evidence id; the token is kept, not verified here"}


def _ntp_time(seconds: int, fraction: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds - NTP_EPOCH_OFFSET + fraction / 2**32)


def _sntp_query(host: str, port: int) -> tuple[datetime, datetime, datetime, datetime, int]:
    """``(sent, server received, server sent, received, stratum)``. Raises OSError or ValueError."""
    address = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
    with socket.socket(address[0], socket.SOCK_DGRAM) as sock:
        sock.settimeout(NTP_TIMEOUT_SECONDS)
        sent = datetime.now(UTC)
        unix = sent.timestamp()
        transmit = (int(unix) + NTP_EPOCH_OFFSET, int((unix % 1) * 2**32))
        # LI 0, version 4, mode 3 (client); our transmit time comes back as the originate time.
        sock.sendto(struct.pack("!B47x", 0x23)[:40] + struct.pack("!II", *transmit), address[4])
        data, _ = sock.recvfrom(512)
        received = datetime.now(UTC)
    if len(data) < 48:
        raise ValueError("short NTP answer")
    stratum = data[1]
    origin = struct.unpack("!II", data[24:32])
    if origin != transmit:
        raise ValueError("the NTP answer does not echo our request")
    if stratum == 0:
        raise ValueError("the server sent a kiss-o'-death (stratum 0)")
    server_received = _ntp_time(*struct.unpack("!II", data[32:40]))
    server_sent = _ntp_time(*struct.unpack("!II", data[40:48]))
    return sent, server_received, server_sent, received, stratum


def _split_server(server: str) -> tuple[str, int]:
    if server.startswith("["):
        host, _, rest = server[1:].partition("]")
        return host, int(rest.lstrip(":") or NTP_PORT)
    if server.count(":") == 1:
        host, port = server.split(":")
        return host, int(port)
    return server, NTP_PORT


async def ntp_offset(references: ClockReferences) -> dict[str, Any]:
    """One SNTP query (RFC 4330) to the configured NTP server; the record of what it showed."""
    if not references.ntp_server:
        return {"status": "not configured", "reason": "no NTP server was given to the capture"}
    record: dict[str, Any] = {"server": references.ntp_server}
    try:
        host, port = _split_server(references.ntp_server)
        sent, server_received, server_sent, received, stratum = await asyncio.to_thread(_sntp_query, host, port)
    except (OSError, ValueError) as exc:
        return {**record, "status": "unreachable", "reason": f"{type(exc).__name__}: {str(exc)[:200]}"}
    # RFC 4330 §5: offset = ((T2 - T1) + (T3 - T4)) / 2; the delay excludes the server's own time.
    offset = ((server_received - sent) + (server_sent - received)).total_seconds() / 2
    delay = ((received - sent) - (server_sent - server_received)).total_seconds()
    return {**record, "status": "measured", "stratum": stratum, "sent_at": utc_iso(sent),
            "received_at": utc_iso(received), "offset_seconds": round(offset, 6),
            "uncertainty_seconds": round(max(delay, 0.0) / 2, 6)}
