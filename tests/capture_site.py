"""A real local web site to capture in tests: HTTP and HTTPS on 127.0.0.1, plus a warm browser runner.

No mocks: the site is a threaded ``http.server`` speaking real HTTP/1.1 (gzip, chunked, redirects,
slow answers, a 404), TLS is real (a test CA made here with cryptography, and a self-signed server),
and the browser is the real Chromium, kept warm on an event loop in a background thread.
"""

from __future__ import annotations

import asyncio
import gzip
import http.server
import ipaddress
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
import zlib
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from anchor.tsa_server import DevTSA
from evidence.browser import WarmBrowser
from evidence.capture import CaptureOptions, ClockReferences, capture_one
from evidence.environment_check import hosts_record, proxy_record
from evidence.operator_key import OperatorKey
from evidence.upload import BuiltPackage
from verifier.package import Requester
from verifier.trust import load_trust
from verifier.verdict import Report
from verifier.verify import verify_package

T = TypeVar("T")
REQUESTER = Requester(tenant="acme-rights", identity="counsel@acme.example")
BIN = Path(sys.executable).parent


def png(width: int = 2, height: int = 2, rgb: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    """A tiny valid PNG (so the browser really decodes and lays it out)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


DYNAMIC = b"""<!doctype html><html><head><meta charset="utf-8"><title>Dynamic listing</title></head>
<body><h1>Listing</h1><img src="/img/a.png" width="40" height="40"><p id="state">Loading stock level</p>
<script>window.addEventListener("load", () => {
  document.getElementById("state").textContent = "Rendered by script after load"; });</script></body></html>
"""
LAZY = (b"<!doctype html><html><head><title>Lazy</title></head><body><h1>Top</h1>"
        b"<div style='height:4000px'>spacer</div>"
        b"<img loading='lazy' src='/img/lazy-bottom.png' width='50' height='50'><p>Bottom</p></body></html>")
IFRAME = (b"<!doctype html><html><head><title>Frame host</title></head><body><iframe src='/framed'></iframe>"
          b"</body></html>")
FRAMED = b"<!doctype html><html><body><p>inside the frame</p><img src='/img/in-frame.png'></body></html>"
NEVER = (b"<!doctype html><html><head><title>Busy</title></head><body><p>polling</p><script>"
         b"setInterval(() => fetch('/ping?' + Date.now()), 100);</script></body></html>")
MISSING = b"<!doctype html><html><head><title>Not found</title></head><body><h1>No such listing</h1></body></html>"
GZIP_PAGE = ("<!doctype html><html><head><meta charset='utf-8'><title>Compressed</title></head><body>"
             + "<p>gzip-encoded and chunked, 中文 text</p>" * 40 + "</body></html>").encode()
ROBOTS = b"User-agent: *\nDisallow: /private\n"
#: Sent as-is: odd spacing and case that a parser would normalise; the WARC must keep it.
EXACT_BODY = b"<!doctype html><html><head><title>Exact</title></head><body><p>bytes as sent</p></body></html>"
EXACT_RESPONSE = (b"HTTP/1.1 200 OK\r\nx-ODD-header:    spaced   value  \r\ncontent-type: text/html\r\n"
                  b"Content-Length: " + str(len(EXACT_BODY)).encode() + b"\r\n\r\n" + EXACT_BODY)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _SiteServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes, content_type: str = "text/html; charset=utf-8",
              extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _redirect(self, status: int, location: str) -> None:
        self._send(status, b"", extra={"Location": location})

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        self.server.paths.append(path)
        port = self.server.server_address[1]
        scheme = "https" if self.server.tls else "http"
        routes: dict[str, Callable[[], None]] = {
            "/dynamic": lambda: self._send(200, DYNAMIC),
            "/lazy": lambda: self._send(200, LAZY),
            "/iframe": lambda: self._send(200, IFRAME),
            "/framed": lambda: self._send(200, FRAMED),
            "/never": lambda: self._send(200, NEVER),
            "/missing": lambda: self._send(404, MISSING),
            "/robots.txt": lambda: self._send(200, ROBOTS, "text/plain"),
            "/r1": lambda: self._redirect(301, "/r2"),
            "/r2": lambda: self._redirect(302, f"{scheme}://127.0.0.1:{port}/dynamic"),
            "/to-unspecified": lambda: self._redirect(302, f"http://0.0.0.0:{port}/dynamic"),
            "/blocked-sub": lambda: self._send(200, f"<!doctype html><html><body><p>sub-request to 0.0.0.0</p>"
                                                    f"<img src='http://0.0.0.0:{port}/img/x.png'></body></html>"
                                               .encode()),
            "/ping": lambda: self._send(204, b""),
            "/gzip": self._gzip_chunked,
            "/exact": self._exact,
            "/slow": self._slow,
        }
        if path in routes:
            routes[path]()
        elif path.startswith("/img/"):
            self._send(200, png(), "image/png", {"Cache-Control": "no-store"})
        else:
            self._send(404, b"not found", "text/plain")

    do_HEAD = do_GET

    def _gzip_chunked(self) -> None:
        body = gzip.compress(GZIP_PAGE, mtime=0)
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for start in range(0, len(body), 300):
            piece = body[start:start + 300]
            self.wfile.write(b"%x\r\n" % len(piece) + piece + b"\r\n")
        self.wfile.write(b"0\r\n\r\n")

    def _exact(self) -> None:
        self.wfile.write(EXACT_RESPONSE)

    def _slow(self) -> None:
        time.sleep(1.0)
        self._send(200, b"<!doctype html><html><head><title>Slow</title></head><body><p>finally</p></body></html>")


class _SiteServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, tls: ssl.SSLContext | None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.tls = tls
        self.paths: list[str] = []

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The TLS handshake happens in the request's own thread, so a slow client blocks nobody.
        if self.tls is not None:
            try:
                request = self.tls.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                return
        super().finish_request(request, client_address)


@dataclass
class Site:
    server: _SiteServer
    scheme: str

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def serve(tls: ssl.SSLContext | None = None) -> Site:
    server = _SiteServer(tls)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return Site(server, "https" if tls else "http")


@dataclass(frozen=True)
class TlsMaterial:
    ca_pem: bytes
    trusted: ssl.SSLContext
    self_signed: ssl.SSLContext
    leaf_der: bytes


def _cert(subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name | None,
          signer: ec.EllipticCurvePrivateKey, *, ca: bool) -> x509.Certificate:
    now = datetime.now(UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer or name).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
               .not_valid_after(now + timedelta(days=30))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
            key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False),
            critical=True).add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    else:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        if issuer is not None:
            builder = builder.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()),
                                            critical=False)
    return builder.sign(signer, hashes.SHA256())


def _server_context(folder: Path, name: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> ssl.SSLContext:
    cert_path, key_path = folder / f"{name}.pem", folder / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert_path, key_path)
    return ctx


def make_tls(folder: Path) -> TlsMaterial:
    """A test CA with a leaf for 127.0.0.1/localhost, and an unrelated self-signed server certificate."""
    ca_key, leaf_key, lone_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    ca = _cert("Tiezheng test CA", ca_key, None, ca_key, ca=True)
    leaf = _cert("127.0.0.1", leaf_key, ca.subject, ca_key, ca=False)
    lone = _cert("self-signed test server", lone_key, None, lone_key, ca=False)
    return TlsMaterial(ca_pem=ca.public_bytes(serialization.Encoding.PEM),
                       trusted=_server_context(folder, "leaf", leaf, leaf_key),
                       self_signed=_server_context(folder, "lone", lone, lone_key),
                       leaf_der=leaf.public_bytes(serialization.Encoding.DER))


class BrowserRunner:
    """An event loop in a background thread holding one warm browser for many tests."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.browser: WarmBrowser = self.run(WarmBrowser.launch())
        # The real development TSA over HTTP: the clean check measures the clock against it.
        self._tsa_dir = tempfile.TemporaryDirectory(prefix="tiezheng-test-tsa-")
        self._tsa = DevTSA(Path(self._tsa_dir.name)).serve()
        self.clock_references = ClockReferences(tsa_url=self._tsa.url, tsa_name="development TSA")

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 180) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def capture(self, url: str, packages: Path, operator: OperatorKey, **options: Any) -> BuiltPackage:
        opts = CaptureOptions(**{"allow_private": True, **options})
        return self.run(capture_one(url, browser=self.browser, packages_dir=packages, operator=operator,
                                    requester=REQUESTER, options=opts, clock_references=self.clock_references))

    def close(self) -> None:
        try:
            self.run(self.browser.close(), timeout=60)
        finally:
            self._tsa.close()
            self._tsa_dir.cleanup()
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)


def machine_s4_status() -> str:
    """S4 for a capture made on this machine with a TSA at hand: ``pass`` unless the machine itself is
    not clean (a hosts entry beyond the defaults, a proxy variable); the clean-check tests then run
    in a private mount namespace to show both outcomes on a hosts file they control."""
    hosts, proxy = hosts_record(), proxy_record(())
    unclean = hosts.get("non_default_count") or proxy["environment"] or proxy["system"].get("variables")
    return "warn" if unclean else "pass"


def trust_file(folder: Path, operator: OperatorKey) -> Path:
    path = folder / "trust.toml"
    path.write_text(f'[[operators]]\nname = "test operator"\npublic_key = "{operator.public_key_b64}"\n'
                    "development = true\n")
    return path


def verify(package: Path, trust: Path) -> Report:
    return verify_package(package, load_trust(trust))


def statuses(report: Report) -> dict[str, str]:
    return {r.id: str(r.status) for r in report.checks}


def wacz_validate(package: Path) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory() as cwd:
        return subprocess.run([str(BIN / "wacz"), "validate", "-f", str(package.resolve())], cwd=cwd,
                              capture_output=True, text=True, timeout=120)


def warcio_check(package: Path) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory() as folder:
        warc = Path(folder) / "data.warc.gz"
        with zipfile.ZipFile(package) as archive:
            warc.write_bytes(archive.read("archive/data.warc.gz"))
        return subprocess.run([str(BIN / "warcio"), "check", "-v", str(warc)], capture_output=True, text=True,
                              timeout=120)


def member(package: Path, name: str) -> bytes:
    with zipfile.ZipFile(package) as archive:
        return archive.read(name)
