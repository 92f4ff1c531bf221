"""Fuzz the package reader: whatever the bytes, the verifier returns a report and raises nothing else.

Only InvalidPackage (as an 'unusable' report) or a report with findings may come out.
"""

from __future__ import annotations

import io
import tempfile
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.factory import make_workspace, seal_batch
from verifier.errors import InvalidPackage
from verifier.package import open_package
from verifier.trust import Trust, load_trust
from verifier.verdict import Report, Verdict
from verifier.verify import verify_package

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
#: The issue asks for at least 2,000 hostile examples; mutations of a real package find the most.
DEEP_FUZZ = settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])


_SEALED: dict[str, tuple[bytes, Trust]] = {}


@pytest.fixture(scope="module", autouse=True)
def _sealed_package(rpc_url: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    # Hypothesis forbids function-scoped fixtures in @given tests; a module-level one is fine.
    workspace = make_workspace(tmp_path_factory.mktemp("fuzz"))
    built = workspace.upload()
    seal_batch(workspace, [built], rpc_url)
    _SEALED["package"] = (built.path.read_bytes(), load_trust(workspace.trust_file()))


def _sealed() -> tuple[bytes, Trust]:
    return _SEALED["package"]


def _verify_bytes(data: bytes) -> Report:
    _, trust = _sealed()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.wacz"
        path.write_bytes(data)
        report = verify_package(path, trust)
        try:
            open_package(path)
        except InvalidPackage:
            assert report.verdict is Verdict.UNUSABLE
    assert isinstance(report, Report)
    return report


@FUZZ
@given(st.binary(max_size=4096))
def test_random_bytes(data: bytes) -> None:
    assert _verify_bytes(data).verdict is Verdict.UNUSABLE


@DEEP_FUZZ
@given(st.lists(st.tuples(st.integers(min_value=0), st.integers(min_value=0, max_value=255)), min_size=1,
                max_size=8))
def test_mutated_sealed_package(mutations: list[tuple[int, int]]) -> None:
    data = bytearray(_sealed()[0])
    for position, value in mutations:
        data[position % len(data)] = value
    report = _verify_bytes(bytes(data))
    if bytes(data) != _sealed()[0]:
        assert report.verdict is not Verdict.VERIFIED


@FUZZ
@given(st.dictionaries(st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)),
                              min_size=1, max_size=40),
                      st.binary(max_size=300), max_size=6),
       st.one_of(st.none(), st.binary(max_size=600), st.text(max_size=300).map(str.encode)))
def test_random_zips(entries: dict[str, bytes], manifest: bytes | None) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in entries.items():
            archive.writestr(name, content)
        if manifest is not None and "evidence/manifest.json" not in entries:
            archive.writestr("evidence/manifest.json", manifest)
    _verify_bytes(buffer.getvalue())
