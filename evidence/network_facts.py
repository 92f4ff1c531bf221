"""The raw fetch (the "curl view") and the network facts around it: server address, TLS, redirects.

The raw fetch is an HTTP(S) GET made with httpx (direct, or tunnelled through the capture's egress
proxy, ``evidence.egress``), a general-purpose client independent of the
browser and of the recorder. Its connections go through a small httpcore network backend of ours
(``_PinnedBackend``) that

1. asks the capture's resolver for the host, applies the SSRF policy to every answer, and connects to
   a checked address (so a changing DNS answer cannot redirect the socket after the check), and
2. keeps every byte the socket carried after TLS: the request as sent and the response as received.

Those bytes go into the WARC as one request and one response record per hop, so the raw fetch is
recorded byte-exact just like the browser's traffic. ``evidence/source.html`` is the final response's
body with its transfer coding and content codings removed by ``verifier.http_body``: the same code the
verifier runs for P2. The raw fetch asks only for ``gzip, deflate`` so that the standard library can
always undo the coding; httpx's own dechunked body must equal ours (two parsers, one answer).
Redirects are followed by hand, each hop checked again by the policy.
"""

from __future__ import annotations

import asyncio
import ssl
import typing
import urllib.robotparser
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpcore
import httpx

from evidence.capture_errors import CaptureError
from evidence.egress import MAX_CONNECT_REPLY_BYTES, EgressProxy, connect_status
from evidence.resolver import HostResolver
from evidence.ssrf import normalise_url, split_url
from evidence.tls_policy import TlsPolicy, describe_tls, verify_failure, verify_message
from evidence.warc_sink import WarcSink
from verifier.errors import TiezhengError
from verifier.http_body import DecodedBody, HttpFormatError, HttpResponse, dechunk, decode_body, parse_response
from verifier.manifest_writer import utc_iso

MAX_REDIRECTS = 10
MAX_SOURCE_BYTES = 50 << 20
MAX_ROBOTS_BYTES = 512 << 10
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
#: Only codings the standard library can undo, so the verifier can always re-derive source.html.
ACCEPT_ENCODING = "gzip, deflate"


class _Untrusted(TiezhengError):
    """The TLS certificate failed verification; the facts are then retaken without verifying."""

    def __init__(self, error: ssl.SSLCertVerificationError) -> None:
        super().__init__(verify_message(error))
        self.error = error


@dataclass
class _Tape:
    """The bytes one connection carried, after TLS."""

    host: str
    ip: str
    port: int
    sent: bytearray = field(default_factory=bytearray)
    received: bytearray = field(default_factory=bytearray)
    tls: dict[str, Any] | None = None


class _TapedStream(httpcore.AsyncNetworkStream):
    def __init__(self, inner: httpcore.AsyncNetworkStream, tape: _Tape, limit: int, verify_error: str | None) -> None:
        self._inner, self._tape, self._limit, self._verify_error = inner, tape, limit, verify_error

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        data = await self._inner.read(max_bytes, timeout)
        self._tape.received += data
        if len(self._tape.received) > self._limit:
            raise CaptureError(f"the response from {self._tape.host} is over {self._limit} bytes")
        return data

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._tape.sent += buffer
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                        timeout: float | None = None) -> httpcore.AsyncNetworkStream:
        try:
            inner = await self._inner.start_tls(ssl_context, server_hostname, timeout)
        except httpcore.ConnectError as exc:
            failure = verify_failure(exc)
            if failure is not None:
                raise _Untrusted(failure) from exc
            raise
        self._tape.tls = describe_tls(inner.get_extra_info("ssl_object"), server_name=server_hostname or "",
                                      verified=ssl_context.verify_mode == ssl.CERT_REQUIRED,
                                      verify_error=self._verify_error)
        return _TapedStream(inner, self._tape, self._limit, self._verify_error)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _PinnedBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, resolver: HostResolver, limit: int, verify_error: str | None,
                 egress: EgressProxy | None = None) -> None:
        self._resolver, self._limit, self._verify_error = resolver, limit, verify_error
        self._egress = egress
        self._inner = httpcore.AnyIOBackend()
        self.tapes: list[_Tape] = []

    async def _tunnel(self, egress: EgressProxy, ip: str, port: int,
                      timeout: float | None) -> httpcore.AsyncNetworkStream:
        """A CONNECT tunnel through the capture's egress to the checked ``ip:port`` (``evidence.egress``)."""
        stream = await self._inner.connect_tcp(egress.host, egress.port, timeout=timeout)
        try:
            await stream.write(egress.connect_request(ip, port), timeout)
            reply = b""
            while b"\r\n\r\n" not in reply:
                piece = await stream.read(MAX_CONNECT_REPLY_BYTES, timeout)
                if not piece or len(reply) + len(piece) > MAX_CONNECT_REPLY_BYTES:
                    raise httpcore.ConnectError("the egress proxy closed or overflowed before answering CONNECT")
                reply += piece
            head, _, rest = reply.partition(b"\r\n\r\n")
            status, line = connect_status(head)
            if status != 200 or rest:
                raise httpcore.ConnectError(f"egress {egress.name!r} ({egress.public_url}) refused the tunnel: "
                                            f"{line[:120]}")
        except BaseException:
            await stream.aclose()
            raise
        return stream

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                          socket_options: typing.Iterable[Any] | None = None) -> httpcore.AsyncNetworkStream:
        errors = []
        for ip in await self._resolver.allowed_addresses(host):
            try:
                if self._egress is not None:
                    stream = await self._tunnel(self._egress, ip, port, timeout)
                else:
                    stream = await self._inner.connect_tcp(ip, port, timeout=timeout)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                errors.append(f"{ip}: {exc or 'timed out'}")
                continue
            tape = _Tape(host=host, ip=ip, port=port)
            self.tapes.append(tape)
            return _TapedStream(stream, tape, self._limit, self._verify_error)
        raise CaptureError(f"cannot connect to {host}:{port} ({'; '.join(errors)})")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _ResponseBody(httpx.AsyncByteStream):
    def __init__(self, response: httpcore.Response) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for part in self._response.aiter_stream():
            yield part

    async def aclose(self) -> None:
        await self._response.aclose()


class _Transport(httpx.AsyncBaseTransport):
    """httpx over our own httpcore pool (httpx's transport has no network-backend option)."""

    def __init__(self, pool: httpcore.AsyncConnectionPool) -> None:
        self._pool = pool

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        core = httpcore.Request(method=request.method, url=httpcore.URL(
            scheme=request.url.raw_scheme, host=request.url.raw_host, port=request.url.port,
            target=request.url.raw_path), headers=request.headers.raw, content=request.stream,
            extensions=request.extensions)
        response = await self._pool.handle_async_request(core)
        return httpx.Response(status_code=response.status, headers=response.headers,
                              stream=_ResponseBody(response), extensions=response.extensions)

    async def aclose(self) -> None:
        await self._pool.aclose()


@dataclass(frozen=True)
class Hop:
    url: str
    status: int
    reason: str
    http_version: str
    headers: list[list[str]]
    ip: str
    port: int
    tls: dict[str, Any] | None
    started_at: datetime
    location: str | None
    request_id: str
    response_id: str
    response: bytes = field(repr=False)

    def record(self) -> dict[str, Any]:
        return {"url": self.url, "status": self.status, "reason": self.reason, "http_version": self.http_version,
                "headers": self.headers, "server": {"ip": self.ip, "port": self.port}, "tls": self.tls,
                "started_at": utc_iso(self.started_at), "location": self.location,
                "warc_request_id": self.request_id, "warc_response_id": self.response_id}


@dataclass(frozen=True)
class RawFetch:
    hops: tuple[Hop, ...]
    body: DecodedBody

    @property
    def final(self) -> Hop:
        return self.hops[-1]

    def redirects(self) -> list[dict[str, Any]]:
        return [{"url": h.url, "status": h.status, "location": h.location} for h in self.hops[:-1]]


class Fetcher:
    """Makes raw fetches for one capture: pinned connections, recorded bytes, the capture's TLS policy."""

    def __init__(self, *, resolver: HostResolver, tls_policy: TlsPolicy, warc: WarcSink, user_agent: str,
                 timeout: float, egress: EgressProxy | None = None,
                 cookie_header: Callable[[str], str | None] = lambda _url: None) -> None:
        self._resolver, self._tls, self._warc = resolver, tls_policy, warc
        self._user_agent, self._timeout = user_agent, timeout
        #: ``egress``: the proxy every connection tunnels through; ``cookie_header``: the Cookie field an
        #: authenticated capture's session sends to a URL (``evidence.browser_session``), or None.
        self._egress, self._cookie_header = egress, cookie_header

    async def _attempt(self, url: str, verify: bool, verify_error: str | None, limit: int) -> tuple[_Tape, bytes]:
        backend = _PinnedBackend(self._resolver, limit, verify_error, self._egress)
        pool = httpcore.AsyncConnectionPool(ssl_context=self._tls.context(verify=verify), network_backend=backend,
                                            http1=True, http2=False, retries=0, max_keepalive_connections=0)
        headers = {"User-Agent": self._user_agent, "Accept": ACCEPT, "Accept-Encoding": ACCEPT_ENCODING,
                   "Connection": "close"}
        cookie = self._cookie_header(url)
        if cookie:
            headers["Cookie"] = cookie
        client = httpx.AsyncClient(transport=_Transport(pool), follow_redirects=False, trust_env=False,
                                   timeout=self._timeout)
        body = bytearray()
        async with client, client.stream("GET", url, headers=headers) as response:
            async for part in response.aiter_raw():
                body += part
        return backend.tapes[-1], bytes(body)

    async def _hop(self, url: str, limit: int) -> tuple[_Tape, bytes]:
        _, host, port = split_url(url)
        try:
            async with asyncio.timeout(self._timeout):
                try:
                    return await self._attempt(url, True, None, limit)
                except _Untrusted as exc:
                    if not self._tls.allow_untrusted:
                        raise CaptureError(f"TLS certificate of {host} is not trusted: {exc}") from exc
                    return await self._attempt(url, False, str(exc), limit)
        except TimeoutError as exc:
            raise CaptureError(f"no complete answer from {host}:{port} within {self._timeout:g} s") from exc
        except (httpx.HTTPError, httpcore.NetworkError, httpcore.ProtocolError, httpcore.TimeoutException,
                ssl.SSLError) as exc:
            raise CaptureError(f"fetching {url[:200]} failed: {exc or type(exc).__name__}") from exc

    async def fetch(self, url: str, *, limit: int = MAX_SOURCE_BYTES, follow: int = MAX_REDIRECTS) -> RawFetch:
        """GET ``url`` and follow redirects. Raises CaptureError (unreachable, refused, TLS, too many
        redirects, malformed response); an HTTP error status is returned, not raised."""
        hops: list[Hop] = []
        url = normalise_url(url)
        while True:
            started = datetime.now(UTC)
            tape, httpx_body = await self._hop(url, limit)
            try:
                response = parse_response(bytes(tape.received))
                body = decode_body(response, limit=limit)
            except HttpFormatError as exc:
                raise CaptureError(f"{url[:200]} sent a malformed HTTP response: {exc}") from exc
            if httpx_body != _transfer_decoded(response, limit):
                raise CaptureError("the raw fetch's recorded bytes disagree with httpx's body (recording fault)")
            request_id, response_id = self._warc.write_exchange(url=url, request=bytes(tape.sent),
                                                                response=bytes(tape.received), ip=tape.ip, date=started)
            location = response.header("location")
            hops.append(Hop(url=url, status=response.status, reason=response.reason, http_version=response.version,
                            headers=[[k, v] for k, v in response.headers], ip=tape.ip, port=tape.port, tls=tape.tls,
                            started_at=started, location=location, request_id=request_id, response_id=response_id,
                            response=bytes(tape.received)))
            if response.status not in REDIRECT_STATUSES or not location:
                return RawFetch(hops=tuple(hops), body=body)
            if len(hops) > follow:
                raise CaptureError(f"more than {follow} redirects, starting at {hops[0].url[:200]}")
            url = normalise_url(urljoin(url, location.strip()))


def _transfer_decoded(response: HttpResponse, limit: int) -> bytes:
    """The body with only the transfer coding removed: what httpx's ``aiter_raw`` yields."""
    if response.tokens("transfer-encoding")[-1:] == ("chunked",):
        return dechunk(response.body, limit)
    length = response.header("content-length")
    return response.body[:int(length)] if length is not None and length.strip().isdigit() else response.body


async def robots_status(fetcher: Fetcher, page_url: str, user_agent: str) -> dict[str, Any]:
    """Fetch /robots.txt of the page's origin and say whether it would allow the page.

    The capture records this; it does not obey it. Preserving evidence of a public page is not
    crawling, and a site that infringes should not be able to opt out of being proven to.
    """
    parts = urlsplit(page_url)
    robots_url = f"{parts.scheme}://{parts.netloc}/robots.txt"
    record: dict[str, Any] = {"url": robots_url, "obeyed": False,
                              "note": "recorded, not obeyed: a capture preserves evidence of one public page"}
    try:
        fetched = await fetcher.fetch(robots_url, limit=MAX_ROBOTS_BYTES, follow=3)
    except CaptureError as exc:
        return {**record, "status": None, "error": str(exc)}
    record.update(status=fetched.final.status, warc_response_id=fetched.final.response_id)
    if fetched.final.status == 200:
        parser = urllib.robotparser.RobotFileParser()
        parser.parse(fetched.body.data.decode("utf-8", "replace").splitlines())
        record["allows_page"] = parser.can_fetch(user_agent, page_url)
    else:
        # RFC 9309 §2.3.1: a 4xx robots.txt allows everything; a 5xx one means "assume disallowed".
        record["allows_page"] = fetched.final.status < 500
    return record
