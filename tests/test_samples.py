"""Every sample package gives the verdict and the failing check that samples/expected.json states."""

from __future__ import annotations

import json
import subprocess
import venv
from pathlib import Path

import pytest

from verifier.trust import load_trust
from verifier.verdict import EXIT_CODES, Status, Verdict
from verifier.verify import verify_package

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
EXPECTED = json.loads((SAMPLES / "expected.json").read_text())
#: Packages whose claims are authentic but wrong: only the named check may fail.
ONLY_ONE = {"S2", "T1", "T2", "H1", "H3", "H4", "H5", "P3"}


@pytest.mark.parametrize("sample", EXPECTED, ids=lambda s: s["file"])
def test_sample_verdict(sample: dict[str, str]) -> None:
    report = verify_package(SAMPLES / sample["file"], load_trust(SAMPLES / "trust.toml"))
    assert report.verdict.value == sample["verdict"], report.to_json()
    if sample["fails"]:
        assert sample["fails"] in report.failed_ids
        if sample["fails"] in ONLY_ONE:
            assert report.failed_ids == [sample["fails"]]
    else:
        assert report.failed_ids == []
        assert report.result("H5").status is Status.WARN  # offline: the block's canonicity stays open
    if sample["verdict"] == "cannot judge":
        assert {check for check, _ in report.missing_trust} == {"S1", "H4"}
        assert report.exit_code == 3 and report.proves == ()


def test_readme_lists_every_sample() -> None:
    readme = (SAMPLES / "README.md").read_text()
    for sample in EXPECTED:
        assert Path(sample["file"]).name in readme


@pytest.mark.slow
def test_counsel_installs_only_the_verifier(tmp_path: Path) -> None:
    """In a fresh venv, `pip install .` (no extras), then `tiezheng-verify` on the samples."""
    repo = Path(__file__).resolve().parents[1]
    venv.EnvBuilder(with_pip=True).create(tmp_path / "counsel")
    bin_dir = tmp_path / "counsel" / "bin"
    subprocess.run([str(bin_dir / "pip"), "install", "-q", str(repo)], check=True, capture_output=True, timeout=900)
    installed = subprocess.run([str(bin_dir / "pip"), "list", "--format=json"], check=True, capture_output=True,
                               text=True).stdout
    names = {p["name"].lower() for p in json.loads(installed)}
    assert not names & {"web3", "fastapi", "sqlmodel", "playwright", "sqlalchemy", "rlp", "trie", "reportlab"}
    for sample in EXPECTED:
        result = subprocess.run([str(bin_dir / "tiezheng-verify"), str(SAMPLES / sample["file"]), "--json", "--trust",
                                 str(SAMPLES / "trust.toml")], capture_output=True, text=True, timeout=120)
        assert result.returncode == EXIT_CODES[Verdict(sample["verdict"])], result.stderr
        assert json.loads(result.stdout)["verdict"] == sample["verdict"]
