"""Shared fixtures. Golden data is loaded through ``vectors`` only."""

from __future__ import annotations

from pathlib import Path

import pytest

VECTORS = Path(__file__).parent / "vectors"


@pytest.fixture(scope="session")
def vectors() -> Path:
    """The folder of golden test data (copies of public vectors plus our own)."""
    return VECTORS
