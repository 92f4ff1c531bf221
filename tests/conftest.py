"""Shared fixtures. Golden data is loaded through ``vectors`` only."""

from __future__ import annotations

from pathlib import Path

import pytest

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
