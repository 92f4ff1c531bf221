"""The RFC 3161 client against real local HTTP servers: the dev TSA and small misbehaving ones."""

from __future__ import annotations

import hashlib
import socket
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from anchor.tsa_client import TSARejected, TSAUnavailable, check_response, request_timestamp
from anchor.tsa_server import TSAServer

DIGEST = hashlib.sha256(b"merkle root").digest()

#: Answers (status, body) for the n-th request (0-based), given the request body.
Behaviour = Callable[[int, bytes], tuple[int, bytes]]


@contextmanager
def http_server(behaviour: Behaviour) -> Iterator[str]:
    """A tiny real HTTP server on loopback whose answers the test decides."""
    calls = [0]

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            status, answer = behaviour(calls[0], body)
            calls[0] += 1
            self.send_response(status)
            self.send_header("Content-Type", "application/timestamp-reply")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()


def _forward(url: str, body: bytes) -> bytes:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/timestamp-query"})
    with urllib.request.urlopen(request, timeout=5) as reply:
        return bytes(reply.read())


def test_granted_token_echoes_nonce_and_imprint(tsa_server: TSAServer) -> None:
    response = request_timestamp(tsa_server.url, DIGEST, nonce=42)
    info = check_response(response, DIGEST, 42)
    assert info["nonce"].native == 42
    assert info["message_imprint"]["hashed_message"].native == DIGEST


def test_random_nonce_is_64_bit_and_fresh(tsa_server: TSAServer) -> None:
    nonces = {check_response(request_timestamp(tsa_server.url, DIGEST), DIGEST, None)["nonce"].native for _ in range(4)}
    assert len(nonces) == 4
    assert all(0 <= n < 2**64 for n in nonces)


def test_digest_is_not_hashed_again(tsa_server: TSAServer) -> None:
    for size in (32, 48, 64):
        digest = bytes(range(size))
        assert (
            check_response(request_timestamp(tsa_server.url, digest), digest, None)["message_imprint"][
                "hashed_message"
            ].native
            == digest
        )


def test_bad_digest_length_is_a_caller_error(tsa_server: TSAServer) -> None:
    with pytest.raises(ValueError, match="20 bytes"):
        request_timestamp(tsa_server.url, b"\x00" * 20)


def test_garbage_answer_is_rejected() -> None:
    with (
        http_server(lambda n, body: (200, b"<html>hello</html>")) as url,
        pytest.raises(TSARejected, match="not a valid TimeStampResp"),
    ):
        request_timestamp(url, DIGEST, attempts=1)


def test_replayed_token_is_rejected(tsa_server: TSAServer) -> None:
    """A TSA (or a proxy) that hands back an old token for our digest fails the nonce check."""
    old = request_timestamp(tsa_server.url, DIGEST, nonce=1)
    with http_server(lambda n, body: (200, old)) as url, pytest.raises(TSARejected, match="nonce mismatch"):
        request_timestamp(url, DIGEST, nonce=2)


def test_token_for_another_digest_is_rejected(tsa_server: TSAServer) -> None:
    other = hashlib.sha256(b"other").digest()
    with (
        http_server(lambda n, body: (200, _forward(tsa_server.url, body.replace(DIGEST, other)))) as url,
        pytest.raises(TSARejected, match="imprint"),
    ):
        request_timestamp(url, DIGEST)


def test_tsa_rejection_is_reported_with_its_reason(tsa_server: TSAServer) -> None:
    with (
        http_server(lambda n, body: (200, _forward(tsa_server.url, b"garbage"))) as url,
        pytest.raises(TSARejected, match=r"rejection.*bad_data_format"),
    ):
        request_timestamp(url, DIGEST)


def test_client_error_is_not_retried() -> None:
    calls: list[int] = []

    def refuse(n: int, body: bytes) -> tuple[int, bytes]:
        calls.append(n)
        return 403, b"forbidden"

    with http_server(refuse) as url, pytest.raises(TSARejected, match="HTTP 403"):
        request_timestamp(url, DIGEST, attempts=3, backoff=0.01)
    assert calls == [0]


def test_server_errors_are_retried_until_granted(tsa_server: TSAServer) -> None:
    def flaky(n: int, body: bytes) -> tuple[int, bytes]:
        return (503, b"busy") if n < 2 else (200, _forward(tsa_server.url, body))

    with http_server(flaky) as url:
        response = request_timestamp(url, DIGEST, nonce=9, attempts=3, backoff=0.01)
    assert check_response(response, DIGEST, 9)["nonce"].native == 9


def test_persistent_server_errors_make_the_tsa_unavailable() -> None:
    with (
        http_server(lambda n, body: (502, b"bad gateway")) as url,
        pytest.raises(TSAUnavailable, match=r"3 attempt.*HTTP 502"),
    ):
        request_timestamp(url, DIGEST, attempts=3, backoff=0.01)


def test_closed_port_makes_the_tsa_unavailable_quickly() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(TSAUnavailable, match="after 3 attempt"):
        request_timestamp(f"http://127.0.0.1:{port}/", DIGEST, attempts=3, backoff=0.01, timeout=1)
    assert time.monotonic() - started < 2


def test_only_http_urls() -> None:
    with pytest.raises(ValueError, match="http"):
        request_timestamp("file:///etc/passwd", DIGEST)
