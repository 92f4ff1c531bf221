"""Fixtures for the service: a running `tiezheng serve` per backend, tenants, and a local site to capture."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.server import Server, drop_postgres_database, postgres_database, postgres_where

SAMPLE_SITE = Path(__file__).resolve().parents[2] / "samples" / "site"


def capture_available() -> str | None:
    """None when web capture can run here, else the reason it cannot."""
    try:
        import evidence.capture  # noqa: F401  (playwright is in the `capture` extra)
    except ImportError as exc:
        return f"evidence.capture is not importable ({exc})"
    return None


def start_server(tmp: Path, backend: str, **extra_env: str) -> Iterator[Server]:
    database_url = None
    if backend == "postgresql":
        database_url = postgres_database()
        if database_url is None:
            pytest.skip(f"PostgreSQL is not reachable at {postgres_where()} (set TIEZHENG_TEST_POSTGRES)")
    server = Server(data_dir=tmp / "data", database_url=database_url, extra_env=dict(extra_env))
    try:
        server.start()
        yield server
    finally:
        server.close()
        if database_url:
            drop_postgres_database(database_url)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, anvil: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The service on each backend, shared by a module's tests."""
    yield from start_server(tmp_path_factory.mktemp(f"service-{request.param}"), request.param)


@pytest.fixture(scope="module")
def tenant_a(server: Server) -> dict[str, Any]:
    return server.new_tenant()


@pytest.fixture(scope="module")
def tenant_b(server: Server) -> dict[str, Any]:
    return server.new_tenant()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="session")
def sample_site() -> Iterator[str]:
    """samples/site served on loopback: the page the capture tests capture."""
    handler = functools.partial(_QuietHandler, directory=str(SAMPLE_SITE))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
