"""The recording proxy: the browser's traffic, byte for byte as the origin sent it, into the WARC.

Why a proxy of our own (DESIGN.md §3, "byte-exact browser traffic")
--------------------------------------------------------------------
Playwright's ``response.body()`` and CDP's ``Network.getResponseBody`` give bodies *after* the
browser removed the transfer and content codings, and headers as the browser parsed them: not what
the server sent. warcprox (Brozzler's proxy) and pywb's recorder do keep the bytes, but they are
separate services with their own CA handling and dependencies. The recorder here is the same idea
reduced to what a capture needs, and it runs inside the capture process: an asyncio HTTP/1.1 proxy,
one per capture, set as that capture's browser-context proxy (``--proxy-server`` for that context
only; Playwright's per-context proxy). For HTTPS it answers the browser's CONNECT with TLS made with
the per-browser interception key (see ``evidence.interception``; Chromium trusts that key alone via
``--ignore-certificate-errors-spki-list``) and opens its own, verified TLS connection to the origin.

For each request it resolves the host through the capture's resolver, refuses addresses the SSRF
policy forbids, connects to the checked address (directly, or through a CONNECT tunnel of the
capture's egress proxy, ``evidence.egress``), sends the browser's request (origin-form, without
the proxy-only ``Proxy-Connection``/``Proxy-Authorization`` fields), and relays the response to the
browser piece by piece *unchanged*, while keeping the same pieces for the record. Once a response
is complete it writes a WARC request record (the bytes sent upstream) and a response record (the
bytes received: status line, header block, body with its transfer and content codings) with
``WARC-IP-Address`` set to the origin socket's address.

What it guarantees
 - Each response record is exactly the byte sequence the origin sent on the recorder's upstream
   connection, and the browser rendered exactly those bytes (it received the same pieces).
 - Each request record is exactly what was sent upstream.
 - Every connection went to an address the policy allowed and that is among the recorded DNS answers.
 - The origin's TLS certificate, protocol and cipher are what the recorder's upstream handshake saw.
What it does not
 - The upstream leg is HTTP/1.1 (ALPN ``http/1.1``) even where a browser alone would have used
   HTTP/2 or HTTP/3: the bytes are those of the HTTP/1.1 exchange that happened, and a server may
   answer differently per protocol.
 - WebSocket upgrades are refused (501) and listed, not recorded. Requests the policy refused, and
   responses over the size limit, get a synthetic error and are listed in network.json, never in
   the WARC.
 - It proves what the origin sent to this recorder at that time; not that the origin signed it.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from evidence.capture_errors import BlockedAddress, CaptureError
from evidence.egress import EgressProxy, open_tunnel
from evidence.http_wire import (
    MAX_HEAD_BYTES,
    FramingError,
    Head,
    copy_request_body,
    copy_response_body,
    keeps_alive,
    read_head,
    status_of,
)
from evidence.interception import InterceptionKey
from evidence.resolver import HostResolver
from evidence.tls_policy import TlsPolicy, describe_tls, verify_message
from evidence.warc_sink import WarcSink
from verifier.http_body import HttpFormatError
from verifier.manifest_writer import utc_iso

MAX_RESPONSE_BYTES = 64 << 20
MAX_REQUEST_BODY_BYTES = 16 << 20
MAX_CAPTURE_BYTES = 512 << 20
MAX_LISTED_REFUSALS = 200
CONNECT_TIMEOUT_SECONDS = 10.0
PROXY_ONLY_FIELDS = frozenset({b"proxy-connection", b"proxy-authorization"})
#: What a connection handler may meet when a peer misbehaves or goes away; it then just closes.
_PEER_ERRORS = (OSError, ssl.SSLError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError,
                TimeoutError, HttpFormatError)


class _Oversize(HttpFormatError):
    pass


@dataclass
class _Upstream:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    ip: str
    port: int
    tls: dict[str, Any] | None
    used: int = 0

    def close(self) -> None:
        self.writer.close()


@dataclass(frozen=True)
class Exchange:
    """One recorded request/response pair, as network.json lists it."""

    url: str
    method: str
    status: int
    ip: str
    port: int
    started_at: datetime
    request_id: str
    response_id: str
    response_bytes: int
    tls: dict[str, Any] | None

    def record(self) -> dict[str, Any]:
        tls = None if self.tls is None else {k: self.tls[k] for k in ("protocol", "cipher", "leaf_sha256",
                                                                      "verified")}
        return {"url": self.url, "method": self.method, "status": self.status,
                "server": {"ip": self.ip, "port": self.port}, "started_at": utc_iso(self.started_at),
                "warc_request_id": self.request_id, "warc_response_id": self.response_id,
                "response_bytes": self.response_bytes, "tls": tls}


def _url(scheme: str, host: str, port: int, target: str) -> str:
    shown = f"[{host}]" if ":" in host else host
    default = 443 if scheme == "https" else 80
    return f"{scheme}://{shown}{'' if port == default else f':{port}'}{target}"


def _authority(target: str) -> tuple[str, int]:
    parts = urlsplit(f"//{target}")
    if not parts.hostname or parts.port is None:
        raise FramingError(f"bad CONNECT target {target[:80]!r}")
    return parts.hostname, parts.port


class Recorder:
    """One capture's recording proxy on 127.0.0.1. ``start``, point the browser context at
    ``proxy_url``, then ``stop``; ``exchanges`` and ``refused`` then describe the traffic."""

    def __init__(self, *, resolver: HostResolver, tls_policy: TlsPolicy, interception: InterceptionKey,
                 warc: WarcSink, response_timeout: float, egress: EgressProxy | None = None) -> None:
        self._resolver = resolver
        self._egress = egress
        self._tls = tls_policy
        self._interception = interception
        self._warc = warc
        self._response_timeout = response_timeout
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.exchanges: list[Exchange] = []
        self.refused: list[dict[str, str]] = []
        self.certificates: dict[str, str] = {}
        self.total_bytes = 0
        self.port = 0

    @property
    def proxy_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0, limit=MAX_HEAD_BYTES)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening and end every open connection; exchanges not complete by now are dropped."""
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def record(self) -> dict[str, Any]:
        return {"kind": "tiezheng-recorder", "listen": f"127.0.0.1:{self.port}",
                "scope": "this capture's browser context only", "upstream_protocol": "HTTP/1.1",
                "upstream_via": self._egress.record() if self._egress else "direct connections",
                "tls_interception": self._interception.record()}

    def _refuse_note(self, url: str, reason: str) -> None:
        if len(self.refused) < MAX_LISTED_REFUSALS:
            self.refused.append({"url": url[:2000], "reason": reason})

    async def _refuse(self, writer: asyncio.StreamWriter, status: int, url: str, reason: str) -> None:
        self._refuse_note(url, reason)
        body = f"Tiezheng recorder: {reason}\n".encode()
        phrase = {403: "Forbidden", 501: "Not Implemented"}.get(status, "Bad Gateway")
        writer.write(f"HTTP/1.1 {status} {phrase}\r\nContent-Type: text/plain; charset=utf-8\r\n"
                     f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
        await writer.drain()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        upstreams: dict[tuple[str, str, int], _Upstream] = {}
        try:
            await self._serve(reader, writer, upstreams)
        except _PEER_ERRORS:
            pass  # a peer went away or misbehaved: this connection ends, the capture goes on
        except asyncio.CancelledError:
            # ``stop`` cancels open connections. Python 3.11's stream callback logs a cancelled handler
            # task as an error, so the handler ends normally instead.
            pass
        finally:
            for upstream in upstreams.values():
                upstream.close()
            writer.close()
            self._tasks.discard(task)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     upstreams: dict[tuple[str, str, int], _Upstream]) -> None:
        tunnel: tuple[str, int] | None = None
        while (head := await read_head(reader)) is not None:
            parts = head.parts()
            if len(parts) != 3:
                raise FramingError(f"bad request line {head.start_line[:80]!r}")
            method, target, version = parts
            if method == "CONNECT":
                if tunnel is not None:
                    raise FramingError("CONNECT inside a tunnel")
                tunnel = _authority(target)
                writer.write(b"HTTP/1.1 200 Connection Established\r\n\r\n")
                await writer.drain()
                await writer.start_tls(self._interception.server_context(tunnel[0]))
                continue
            if tunnel is not None:
                if not target.startswith("/"):
                    raise FramingError(f"request target {target[:80]!r} inside a tunnel")
                scheme, (host, port) = "https", tunnel
                url, request_line = _url(scheme, host, port, target), head.start_line
            else:
                parts_url = urlsplit(target)
                if parts_url.scheme != "http" or not parts_url.hostname:
                    await self._refuse(writer, 502, target, "only absolute http:// targets or CONNECT")
                    return
                scheme, host, port = "http", parts_url.hostname, parts_url.port or 80
                path = target[len(f"http://{parts_url.netloc}"):] or "/"
                url, request_line = target, f"{method} {path} {version}"
            if not await self._exchange(reader, writer, head, (scheme, host, port), url, request_line, upstreams):
                return

    async def _open_upstream(self, scheme: str, host: str, port: int) -> _Upstream:
        addresses = await self._resolver.allowed_addresses(host)
        errors: list[str] = []
        for ip in addresses:
            try:
                async with asyncio.timeout(CONNECT_TIMEOUT_SECONDS):
                    if scheme == "https":
                        return await self._open_tls(ip, port, host)
                    reader, writer = await self._connect(ip, port, None, host)
                    return _Upstream(reader, writer, ip, port, None)
            except (OSError, TimeoutError) as exc:
                errors.append(f"{ip}: {getattr(exc, 'strerror', None) or exc or 'timed out'}")
            except CaptureError as exc:
                if self._egress is None or isinstance(exc, BlockedAddress):
                    raise
                errors.append(f"{ip}: {exc}")
        raise CaptureError(f"cannot connect to {host}:{port} ({'; '.join(errors)})")

    async def _connect(self, ip: str, port: int, context: ssl.SSLContext | None,
                       host: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A connection to the checked ``ip:port``: direct, or tunnelled through the capture's egress
        (``evidence.egress``), with TLS to ``host`` end to end when ``context`` is given."""
        if self._egress is None:
            return await asyncio.open_connection(ip, port, ssl=context, server_hostname=host if context else None,
                                                 limit=MAX_HEAD_BYTES)
        reader, writer = await open_tunnel(self._egress, ip, port, limit=MAX_HEAD_BYTES)
        if context is not None:
            try:
                await writer.start_tls(context, server_hostname=host)
            except BaseException:
                writer.close()
                raise
        return reader, writer

    async def _open_tls(self, ip: str, port: int, host: str) -> _Upstream:
        verified, error = True, None
        try:
            reader, writer = await self._connect(ip, port, self._tls.context(verify=True), host)
        except ssl.SSLCertVerificationError as exc:
            if not self._tls.allow_untrusted:
                raise CaptureError(f"TLS certificate of {host} is not trusted: {verify_message(exc)}") from exc
            verified, error = False, verify_message(exc)
            reader, writer = await self._connect(ip, port, self._tls.context(verify=False), host)
        tls = describe_tls(writer.get_extra_info("ssl_object"), server_name=host, verified=verified,
                           verify_error=error)
        if tls is not None:
            self.certificates[tls["leaf_sha256"]] = tls["leaf_der_b64"]
        return _Upstream(reader, writer, ip, port, tls)

    async def _send(self, origin: tuple[str, str, int], request: bytes,
                    upstreams: dict[tuple[str, str, int], _Upstream]) -> tuple[_Upstream, Head | None]:
        upstream = upstreams.pop(origin, None)
        for _ in range(2):
            fresh = upstream is None
            if upstream is None:
                upstream = await self._open_upstream(*origin)
            try:
                upstream.writer.write(request)
                await upstream.writer.drain()
                head = await read_head(upstream.reader)
            except (ConnectionError, FramingError):
                if fresh:
                    raise
                head = None
            if head is not None or fresh:
                return upstream, head
            # A kept-alive connection the origin had already closed: try once on a fresh one.
            upstream.close()
            upstream = None
        raise AssertionError("unreachable")

    async def _exchange(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: Head,
                        origin: tuple[str, str, int], url: str, request_line: str,
                        upstreams: dict[tuple[str, str, int], _Upstream]) -> bool:
        method = head.parts()[0]
        if head.get("upgrade") is not None:
            await self._refuse(writer, 501, url, f"protocol upgrade to {head.get('upgrade')!r} is not recorded")
            return False
        body = bytearray()

        async def keep_body(piece: bytes) -> None:
            body.extend(piece)
            if len(body) > MAX_REQUEST_BODY_BYTES:
                raise _Oversize(f"request body over {MAX_REQUEST_BODY_BYTES} bytes")

        await copy_request_body(reader, head, keep_body)
        fields = b"".join(line for name, _, line in head.headers if name.lower() not in PROXY_ONLY_FIELDS)
        request = request_line.encode("latin-1") + b"\r\n" + fields + b"\r\n" + bytes(body)
        started = datetime.now(UTC)
        try:
            upstream, response_head = await self._send(origin, request, upstreams)
        except BlockedAddress as exc:
            await self._refuse(writer, 403, url, str(exc))
            return False
        except CaptureError as exc:
            await self._refuse(writer, 502, url, str(exc))
            return False
        if response_head is None:
            upstream.close()
            await self._refuse(writer, 502, url, "the origin closed the connection without a response")
            return False
        raw = bytearray()

        async def relay(piece: bytes) -> None:
            raw.extend(piece)
            self.total_bytes += len(piece)
            if len(raw) > MAX_RESPONSE_BYTES or self.total_bytes > MAX_CAPTURE_BYTES:
                self._refuse_note(url, f"response over the size limit ({MAX_RESPONSE_BYTES} bytes per response, "
                                       f"{MAX_CAPTURE_BYTES} per capture): not recorded")
                raise _Oversize("over the size limit")
            writer.write(piece)
            await writer.drain()

        try:
            async with asyncio.timeout(self._response_timeout):
                status = status_of(response_head)
                while 100 <= status < 200 and status != 101:
                    await relay(response_head.raw)
                    next_head = await read_head(upstream.reader)
                    if next_head is None:
                        raise FramingError("connection closed after an interim response")
                    response_head, status = next_head, status_of(next_head)
                await relay(response_head.raw)
                to_end = await copy_response_body(upstream.reader, response_head, method, status, relay)
        except BaseException:
            upstream.close()
            raise
        upstream.used += 1
        request_id, response_id = self._warc.write_exchange(url=url, request=request, response=bytes(raw),
                                                            ip=upstream.ip, date=started)
        self.exchanges.append(Exchange(url=url, method=method, status=status, ip=upstream.ip, port=upstream.port,
                                       started_at=started, request_id=request_id, response_id=response_id,
                                       response_bytes=len(raw), tls=upstream.tls))
        reusable = not to_end and keeps_alive(response_head)
        if reusable:
            upstreams[origin] = upstream
        else:
            upstream.close()
        return reusable and keeps_alive(head)
