"""Fixtures for capture tests: the local sites, TLS material, one warm browser and an operator key."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

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
