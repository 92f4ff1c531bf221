"""What a package costs to verify is bounded before any byte is decompressed, and each entry is hashed once."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import zipfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.factory import make_workspace, seal_batch
from tests.verifier.zip_forge import sparse_bomb
from verifier import package as package_module
from verifier.errors import InvalidPackage
from verifier.package import MAX_COMPRESSION_RATIO, open_package
from verifier.trust import load_trust
from verifier.verify import verify_opened

CLI = str(Path(sys.executable).parent / "tiezheng-verify")
#: Generous: the refusal itself takes milliseconds; inflating the bomb takes a minute.
MAX_SECONDS = 5.0


@pytest.fixture(scope="module")
def bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sparse_bomb(tmp_path_factory.mktemp("bomb") / "sparse.wacz")


def test_the_sparse_bomb_is_a_real_zip_under_the_ratio_check(bomb: Path) -> None:
    # What any other zip reader sees: three 2 GiB entries of zeros, each under the ratio check.
    with zipfile.ZipFile(bomb) as archive:
        big = [i for i in archive.infolist() if i.file_size == 2 << 30]
        assert len(big) == 3
        assert all(i.file_size < MAX_COMPRESSION_RATIO * i.compress_size for i in big)
        with archive.open(big[0]) as stream:
            assert stream.read(4 << 20) == bytes(4 << 20)
    assert bomb.stat().st_size < 48 << 20


def test_the_sparse_bomb_is_refused_quickly_by_the_cli(bomb: Path) -> None:
    started = time.monotonic()
    result = subprocess.run([CLI, str(bomb), "--json"], capture_output=True, text=True, timeout=120)
    elapsed = time.monotonic() - started
    assert result.returncode == 2, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["verdict"] == "unusable" and "decompression bomb" in report["error"]
    assert elapsed < MAX_SECONDS


@pytest.fixture(scope="module")
def sealed(rpc_url: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    workspace = make_workspace(tmp_path_factory.mktemp("cost"))
    built = workspace.upload([("exhibit.txt", b"exhibit\n" * 4000), ("photo.png", bytes(range(256)) * 64)])
    seal_batch(workspace, [built], rpc_url)
    return built.path, workspace.trust_file()


@pytest.fixture()
def entry_reads(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[str]]:
    """How many times each entry's bytes are streamed from the file (a counting wrapper, same behaviour)."""
    reads: Counter[str] = Counter()
    real = package_module.open_entry

    def counting(f: Any, entry: Any) -> Any:
        reads[entry.name] += 1
        return real(f, entry)

    monkeypatch.setattr(package_module, "open_entry", counting)
    yield reads


def test_each_artifact_is_read_and_hashed_once(sealed: tuple[Path, Path], entry_reads: Counter[str]) -> None:
    path, trust = sealed
    package = open_package(path)
    report = verify_opened(package, load_trust(trust))
    assert report.failed_ids == [], report.to_json()
    # H1, P3 (and P2 for captures) all need each artifact's hash: one pass over its bytes serves them.
    for artifact in package.manifest.artifacts:
        assert entry_reads[artifact.path] == 1, entry_reads
    assert set(entry_reads) == set(package.entries)
    assert max(entry_reads.values()) <= 2, entry_reads  # a small entry: parsed once, hashed from the same bytes


def test_a_package_that_changes_while_verified_is_refused(sealed: tuple[Path, Path], tmp_path: Path) -> None:
    copy = tmp_path / "changing.wacz"
    copy.write_bytes(sealed[0].read_bytes())
    package = open_package(copy)
    copy.write_bytes(copy.read_bytes() + b"\0")
    with pytest.raises(InvalidPackage, match="changed while it was being verified"):
        package.hash_entry(package.manifest.artifacts[0].path)
