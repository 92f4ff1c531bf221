"""The recording proxy on its own, driven by a raw socket client: relays and records byte for byte."""

from __future__ import annotations

import asyncio
import io
import ssl
from pathlib import Path

from evidence.interception import InterceptionKey
from evidence.recorder import Recorder
from evidence.resolver import HostResolver
from evidence.ssrf import AddressPolicy
from evidence.tls_policy import TlsPolicy
from evidence.warc_sink import WarcSink
from tests.capture_site import EXACT_RESPONSE, Site, TlsMaterial
from verifier.warc_reader import iter_warc


async def _read_response(reader: asyncio.StreamReader, *, body: bool = True) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    return head + (await reader.readexactly(length) if body else b"")


def _records(path: Path) -> list[tuple[str, str, bytes]]:
    with path.open("rb") as stream:
        return [(r.type, r.target_uri, r.block or b"") for r in iter_warc(stream, want_block=lambda h: True)
                if r.type in ("request", "response")]


def _recorder(tmp_path: Path, key: InterceptionKey, tls: TlsPolicy | None = None,
              allow_private: bool = True) -> tuple[Recorder, WarcSink]:
    warc = WarcSink(tmp_path / "data.warc.gz", "recorder test")
    recorder = Recorder(resolver=HostResolver(AddressPolicy(allow_private=allow_private)),
                        tls_policy=tls or TlsPolicy(), interception=key, warc=warc, response_timeout=10)
    return recorder, warc


def test_plain_http_relay_keep_alive_post_head_and_upgrade(tmp_path: Path, http_site: Site) -> None:
    key = InterceptionKey()
    recorder, warc = _recorder(tmp_path, key)
    exact, dynamic = http_site.url("/exact"), http_site.url("/dynamic")

    async def scenario() -> list[bytes]:
        await recorder.start()
        reader, writer = await asyncio.open_connection("127.0.0.1", recorder.port)
        answers = []
        writer.write(f"GET {exact} HTTP/1.1\r\nHost: x\r\nProxy-Connection: keep-alive\r\n\r\n".encode())
        answers.append(await _read_response(reader))
        writer.write(f"HEAD {dynamic} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        answers.append(await _read_response(reader, body=False))
        writer.write(f"GET {dynamic} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
                     .encode())
        answers.append(await _read_response(reader))
        writer.close()
        # The site has no POST handler: its 501 says "Connection: close", so a new connection is needed.
        reader, writer = await asyncio.open_connection("127.0.0.1", recorder.port)
        writer.write(f"POST {dynamic} HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nbody".encode())
        answers.append(await _read_response(reader))
        writer.close()
        await recorder.stop()
        return answers

    try:
        answers = asyncio.run(scenario())
    finally:
        warc.close()
        key.close()
    assert answers[0] == EXACT_RESPONSE  # relayed unchanged, over a kept-alive connection
    assert answers[1].startswith(b"HTTP/1.1 200") and b"Content-Length" in answers[1]
    assert answers[2].startswith(b"HTTP/1.1 501") and b"upgrade" in answers[2]
    assert answers[3].startswith(b"HTTP/1.1 501")  # the origin's own answer to POST, recorded below
    records = _records(warc.path)
    assert [(kind, uri) for kind, uri, _ in records] == [
        ("request", exact), ("response", exact), ("request", dynamic), ("response", dynamic),
        ("request", dynamic), ("response", dynamic)]
    assert records[0][2] == b"GET /exact HTTP/1.1\r\nHost: x\r\n\r\n"  # origin-form, Proxy-* dropped
    assert records[1][2] == EXACT_RESPONSE
    assert records[3][2] == answers[1]  # HEAD: header block only
    assert records[4][2].endswith(b"\r\n\r\nbody") and records[5][2] == answers[3]
    assert recorder.refused == [{"url": dynamic, "reason": "protocol upgrade to 'websocket' is not recorded"}]
    assert len({e.ip for e in recorder.exchanges}) == 1


def test_connect_tunnel_is_recorded_with_upstream_tls(tmp_path: Path, https_site: Site,
                                                      tls_material: TlsMaterial) -> None:
    key = InterceptionKey()
    recorder, warc = _recorder(tmp_path, key, TlsPolicy(extra_ca_pem=tls_material.ca_pem))
    client = ssl.create_default_context()
    client.check_hostname, client.verify_mode = False, ssl.CERT_NONE

    async def scenario() -> tuple[bytes, bytes]:
        await recorder.start()
        reader, writer = await asyncio.open_connection("127.0.0.1", recorder.port)
        writer.write(f"CONNECT 127.0.0.1:{https_site.port} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        established = await reader.readuntil(b"\r\n\r\n")
        await writer.start_tls(client, server_hostname="127.0.0.1")
        peer = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        writer.write(b"GET /exact HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        answer = await _read_response(reader)
        writer.close()
        await recorder.stop()
        return established + answer, peer

    try:
        answer, peer = asyncio.run(scenario())
    finally:
        warc.close()
        key.close()
    assert answer.startswith(b"HTTP/1.1 200 Connection Established\r\n\r\n") and answer.endswith(EXACT_RESPONSE)
    assert peer != tls_material.leaf_der  # the browser side sees the recorder's certificate...
    exchange = recorder.exchanges[0]
    assert exchange.url == https_site.url("/exact")
    assert exchange.tls is not None and exchange.tls["verified"] is True  # ...the recorder saw the origin's
    assert recorder.certificates[exchange.tls["leaf_sha256"]]
    assert _records(warc.path)[1][2] == EXACT_RESPONSE


def test_refused_address_gets_a_synthetic_403_and_no_record(tmp_path: Path, http_site: Site) -> None:
    key = InterceptionKey()
    recorder, warc = _recorder(tmp_path, key, allow_private=False)

    async def scenario() -> bytes:
        await recorder.start()
        reader, writer = await asyncio.open_connection("127.0.0.1", recorder.port)
        writer.write(f"GET {http_site.url('/dynamic')} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        answer = await _read_response(reader)
        writer.close()
        await recorder.stop()
        return answer

    try:
        answer = asyncio.run(scenario())
    finally:
        warc.close()
        key.close()
    assert answer.startswith(b"HTTP/1.1 403 Forbidden") and b"loopback" in answer
    assert _records(warc.path) == [] and recorder.exchanges == []
    assert "loopback" in recorder.refused[0]["reason"]
    assert next(iter_warc(io.BytesIO(warc.path.read_bytes()))).type == "warcinfo"
