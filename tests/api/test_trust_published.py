"""The running service publishes its trust, shows its SHA-256, and answers /v1/verify inertly.

Against the real service (`tiezheng serve` as its own process, SQLite backend: the trust and the
verdicts do not depend on the database).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import start_server
from tests.api.server import Server
from tests.factory import Workspace
from tests.verifier.test_hostile_text import FAKE_LINE, FORBIDDEN, HYPERLINK, REVERSED, hostile  # noqa: F401
from verifier.trust import parse_trust

TRUST_PATH = "/.well-known/tiezheng/trust.toml"


@pytest.fixture(scope="module")
def service(anvil: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from start_server(tmp_path_factory.mktemp("service-trust"), "sqlite")


def test_trust_is_published_with_its_fingerprint(service: Server, tmp_path: Path) -> None:
    response = httpx.get(f"{service.url}{TRUST_PATH}", timeout=30)
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/toml")
    digest = hashlib.sha256(response.content).hexdigest()
    assert response.headers["etag"] == f'"{digest}"'
    trust = parse_trust(response.text, source="published")
    assert trust.operators and trust.tsas and trust.chains
    # The same content as `tiezheng trust export` writes for this data dir.
    exported = tmp_path / "exported.toml"
    service.cli("trust", "export", str(exported))
    assert exported.read_text(encoding="utf-8") == response.text
    # /verify shows the same SHA-256, in both languages.
    for lang in ("en", "zh"):
        page = httpx.get(f"{service.url}/verify?lang={lang}", timeout=30).text
        assert digest in page and TRUST_PATH in page


def test_v1_verify_is_inert_and_names_the_trust(service: Server, workspace: Workspace, hostile: Path,  # noqa: F811
                                                tmp_path: Path) -> None:
    published = httpx.get(f"{service.url}{TRUST_PATH}", timeout=30).content
    digest = hashlib.sha256(published).hexdigest()
    data = hostile.read_bytes()
    response = httpx.post(f"{service.url}/v1/verify", files={"file": ("p.wacz", data, "application/zip")}, timeout=60)
    assert response.status_code == 200
    raw = response.content.decode("utf-8")
    assert raw.isascii() and not any(char in raw for char in FORBIDDEN)
    body = json.loads(raw)
    # The service does not know this workspace's operator key or TSA: it cannot judge, and says how to.
    assert body["verdict"] == "cannot judge" and response.headers["x-tiezheng-verdict"] == "cannot judge"
    assert {"S1", "H4"} <= {m["check"] for m in body["missing_trust"]}
    assert body["proves"] == [] and any(TRUST_PATH in line for line in body["findings"])
    assert {"source": TRUST_PATH, "sha256": digest} in body["trust_used"]
    assert body["facts"]["requester"] == {"tenant": FAKE_LINE + REVERSED, "identity": HYPERLINK}

    certificate = httpx.post(f"{service.url}/v1/verify/certificate.pdf",
                             files={"file": ("p.wacz", data, "application/zip")}, timeout=120)
    assert certificate.status_code == 200, certificate.text
    pdf = tmp_path / "certificate.pdf"
    pdf.write_bytes(certificate.content)
    text = subprocess.run(["pdftotext", "-raw", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    assert not any(char in text for char in FORBIDDEN)
    assert "CANNOT JUDGE" in text and "What this proves" not in text
    assert digest in text.replace("\n", "").replace(" ", "")
