"""Shared fixtures. Golden data is loaded through ``vectors`` only."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from anchor.devnet import AnvilNotFound, Devnet, find_anvil

VECTORS = Path(__file__).parent / "vectors"


@pytest.fixture(scope="session")
def vectors() -> Path:
    """The folder of golden test data (copies of public vectors plus our own)."""
    return VECTORS


@pytest.fixture()
def workspace(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A fresh data folder with a real operator key and development TSA."""
    from tests.factory import make_workspace

    return make_workspace(tmp_path)


@pytest.fixture(scope="session")
def anvil() -> Path:
    """The anvil binary; tests that need a chain are skipped when there is none."""
    try:
        return find_anvil()
    except AnvilNotFound as exc:
        pytest.skip(f"needs the anvil binary (run `make setup`): {exc}")


@pytest.fixture(scope="session")
def devnet(anvil: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    """One running devnet in a temporary data dir, shared by the session and stopped at its end."""
    node = Devnet(tmp_path_factory.mktemp("devnet-data"), anvil=anvil, die_with_parent=True)
    node.start()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="session")
def rpc_url(devnet: Devnet) -> str:
    return devnet.rpc_url
