"""`tiezheng-verify … --json` loads only what a verification needs: start-up is most of its time.

Guarded by what a fresh interpreter has imported after the run, not by a clock: rich (the terminal
table), the HTML/PDF renderers and the HTTP stack (only --rpc needs it) are each worth tens of
milliseconds, more than the checks themselves.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
#: Packages (with all their modules), and exact modules, that the --json path must not load. The
#: report renderers all live in verifier.report: none of them is needed for JSON.
#: pycparser (through pycryptodome's cffi) cost ~60 ms a run before verifier/keccak.py replaced it.
UNNEEDED_PACKAGES = ("rich", "reportlab", "qrcode", "pycparser", "Crypto", "verifier.report")
UNNEEDED_MODULES = ("urllib.request", "http.client", "ssl")

_PROBE = """
import contextlib, io, json, sys
from verifier.cli import main
with contextlib.redirect_stdout(io.StringIO()) as out:
    code = main(sys.argv[1:])
print(json.dumps({"code": code, "report": json.loads(out.getvalue()), "modules": sorted(sys.modules)}))
"""


def _run_json(*argv: str) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-c", _PROBE, *argv], check=True, capture_output=True, text=True,
                          cwd=SAMPLES.parent)
    result: dict[str, object] = json.loads(done.stdout)
    return result


def _unneeded(modules: list[str]) -> list[str]:
    return [m for m in modules if m in UNNEEDED_MODULES
            or any(m == package or m.startswith(f"{package}.") for package in UNNEEDED_PACKAGES)]


@pytest.mark.parametrize(("package", "exit_code"), [
    ("good-upload.wacz", 0),
    ("bad-H4-timestamp-token.wacz", 1),
    ("bad-H5-anchor-block.wacz", 1),
    ("cannot-judge-unknown-operator.wacz", 3),
])
def test_json_verification_loads_no_renderer_no_http_and_no_c_parser(package: str, exit_code: int) -> None:
    result = _run_json(str(SAMPLES / "packages" / package), "--json", "--trust", str(SAMPLES / "trust.toml"))
    assert result["code"] == exit_code
    modules = result["modules"]
    assert isinstance(modules, list)
    assert _unneeded(modules) == []
    # The probe did verify: the checks and the offline anchor proof (keccak) ran.
    assert {"verifier.checks.hash", "verifier.anchor_proof", "verifier.keccak"} <= set(modules)
    report = result["report"]
    assert isinstance(report, dict) and len(report["checks"]) > 10


def test_an_unusable_input_with_json_loads_no_renderer_either(tmp_path: Path) -> None:
    not_a_zip = tmp_path / "not-a-package.wacz"
    not_a_zip.write_bytes(b"no zip here")
    result = _run_json(str(not_a_zip), "--json")
    assert result["code"] == 2
    modules = result["modules"]
    assert isinstance(modules, list) and _unneeded(modules) == []


@pytest.fixture(scope="module")
def sample_proof(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The good sample's token, TSA certificate, trusted TSA root and inclusion proof, as the subcommands take them."""
    folder = tmp_path_factory.mktemp("sample-proof")
    with zipfile.ZipFile(SAMPLES / "packages" / "good-upload.wacz") as archive:
        (folder / "t.tsr").write_bytes(archive.read("proof/timestamp-0.tsr"))
        (folder / "tsa.pem").write_bytes(archive.read("proof/tsa-0.pem"))
        proof = json.loads(archive.read("proof/proof.json"))
    [tsa] = tomllib.loads((SAMPLES / "trust.toml").read_text(encoding="utf-8"))["tsa"]
    (folder / "root.pem").write_text(tsa["roots"], encoding="utf-8")
    return {"tsr": str(folder / "t.tsr"), "certs": str(folder / "tsa.pem"), "roots": str(folder / "root.pem"),
            "root": proof["root"], "leaf": proof["leaf"], "index": str(proof["leaf_index"]),
            "size": str(proof["tree_size"]), "path": ",".join(proof["inclusion_path"])}


@pytest.mark.parametrize("valid", [True, False])
def test_timestamp_and_inclusion_json_load_no_rich(sample_proof: dict[str, str], valid: bool) -> None:
    root = sample_proof["root"] if valid else "00" * 32
    timestamp = _run_json("timestamp", sample_proof["tsr"], "--digest", root, "--roots", sample_proof["roots"],
                          "--certs", sample_proof["certs"], "--json")
    inclusion = _run_json("inclusion", "--leaf", sample_proof["leaf"], "--index", sample_proof["index"],
                          "--size", sample_proof["size"], "--root", root, "--proof", sample_proof["path"], "--json")
    for result in (timestamp, inclusion):
        assert result["code"] == (0 if valid else 1)
        report = result["report"]
        assert isinstance(report, dict) and report["valid"] is valid
        modules = result["modules"]
        assert isinstance(modules, list) and _unneeded(modules) == []
