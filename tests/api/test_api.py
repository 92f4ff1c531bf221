"""The HTTP API against the running service (`tiezheng serve`), on SQLite and on PostgreSQL."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import capture_available
from tests.api.server import TEST_SETTINGS, Server, wait_for_status

PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAA"
                       "AABJRU5ErkJggg==")
UPLOAD_LIMIT = int(TEST_SETTINGS["TIEZHENG_UPLOAD_MAX_BYTES"])


@pytest.fixture(scope="module")
def client_a(server: Server, tenant_a: dict[str, Any]) -> Iterator[httpx.Client]:
    with server.client(tenant_a["api_key"]) as client:
        yield client


@pytest.fixture(scope="module")
def client_b(server: Server, tenant_b: dict[str, Any]) -> Iterator[httpx.Client]:
    with server.client(tenant_b["api_key"]) as client:
        yield client


@pytest.fixture(scope="module")
def sealed(client_a: httpx.Client) -> dict[str, Any]:
    """Tenant A's upload (a text file and a PNG), sealed."""
    files = [("file", ("listing 42.txt", b"infringing copy of the catalogue\n", "text/plain")),
             ("file", ("shot.png", PNG, "image/png"))]
    reply = client_a.post("/v1/uploads", files=files, data={"note": "listing forty-two"})
    assert reply.status_code == 202, reply.text
    (evidence_id,) = reply.json()["evidence_ids"]
    assert reply.json()["status"] == "pending"
    return wait_for_status(client_a, evidence_id, {"sealed"})


def _verify(server: Server, data: bytes, name: str = "package.wacz") -> httpx.Response:
    return httpx.post(f"{server.url}/v1/verify", files={"file": (name, data, "application/zip")}, timeout=60)


def test_health_ready_and_docs(server: Server) -> None:
    assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{server.url}/readyz").json()
    assert ready["status"] == "ready"
    assert {c["name"].split()[0] for c in ready["checks"]} == {"database", "tsa", "chain"}
    assert "swagger" in httpx.get(f"{server.url}/docs").text.lower()
    paths = httpx.get(f"{server.url}/openapi.json").json()["paths"]
    assert {"/v1/captures", "/v1/uploads", "/v1/evidence", "/v1/evidence/{evidence_id}",
            "/v1/evidence/{evidence_id}/package", "/v1/evidence/{evidence_id}/certificate.pdf",
            "/v1/batches/{batch_id}", "/v1/verify", "/healthz", "/readyz"} <= set(paths)


def test_sealed_upload_in_detail(server: Server, client_a: httpx.Client, sealed: dict[str, Any]) -> None:
    assert sealed["kind"] == "upload" and sealed["title"] == "listing 42.txt, shot.png"
    assert len(sealed["fingerprint"]) == 64 and sealed["sealed_at"] and sealed["packaged_at"]
    batch = sealed["batch"]
    assert batch["id"] == sealed["batch_id"] and batch["state"] == "attached" and len(batch["root"]) == 64
    assert batch["timestamps"][0]["tsa"] == "Tiezheng development TSA"
    assert batch["anchor"]["chain_id"] == 31337 and batch["anchor"]["tx_hash"].startswith("0x")
    assert batch["anchors"] == [batch["anchor"]]  # one chain configured: one anchor
    again = client_a.get(f"/v1/batches/{sealed['batch_id']}")
    assert again.status_code == 200 and again.json() == batch


def test_package_verifies_and_certificate(server: Server, client_a: httpx.Client, sealed: dict[str, Any]) -> None:
    reply = client_a.get(f"/v1/evidence/{sealed['id']}/package")
    assert reply.status_code == 200 and reply.headers["content-type"] == "application/zip"
    digest = hashlib.sha256(reply.content).hexdigest()
    assert reply.headers["etag"] == f'"{digest}"'
    with zipfile.ZipFile(io.BytesIO(reply.content)) as archive:
        assert "proof/anchor.json" in archive.namelist()
    report = _verify(server, reply.content)
    assert report.status_code == 200
    body = report.json()
    assert body["verdict"] == "verified (offline)" and body["fingerprint"] == sealed["fingerprint"]
    assert {c["id"] for c in body["checks"]} >= {"S1", "H1", "H2", "H3", "H4", "H5", "T1"}
    assert client_a.get(f"/v1/evidence/{sealed['id']}/report").json()["verdict"] == "verified (offline)"
    certificate = client_a.get(f"/v1/evidence/{sealed['id']}/certificate.pdf")
    if certificate.status_code == 501:
        assert certificate.json()["error"]["code"] == "certificate_unavailable"
    else:
        assert certificate.status_code == 200 and certificate.content.startswith(b"%PDF")
    shot = client_a.get(f"/v1/evidence/{sealed['id']}/screenshot")
    assert shot.status_code == 200 and shot.content == PNG


def test_tampered_and_malformed_packages(server: Server, client_a: httpx.Client, sealed: dict[str, Any]) -> None:
    package = client_a.get(f"/v1/evidence/{sealed['id']}/package").content
    source, target = io.BytesIO(package), io.BytesIO()
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            dst.writestr(info.filename, data.replace(b"infringing", b"harmless!!") if info.filename.endswith(".txt")
                         else data)
    tampered = _verify(server, target.getvalue()).json()
    assert tampered["verdict"] == "failed" and "H1" in {c["id"] for c in tampered["checks"] if c["status"] == "fail"}
    junk = _verify(server, b"PK\x03\x04 this is not a zip at all")
    assert junk.status_code == 200 and junk.json()["verdict"] == "unusable" and junk.json()["error"]
    empty = httpx.post(f"{server.url}/v1/verify", files={"other": ("x", b"x")})
    assert empty.status_code == 422 and empty.json()["error"]["code"] == "invalid_request"
    huge = _verify(server, b"\0" * ((1 << 20) + 1))
    assert huge.status_code == 413 and huge.json()["error"]["code"] == "payload_too_large"
    not_form = httpx.post(f"{server.url}/v1/verify", content=package, headers={"content-type": "application/zip"})
    assert not_form.status_code == 415 and not_form.json()["error"]["code"] == "unsupported_media_type"


def test_list_filter_search_page(client_a: httpx.Client, sealed: dict[str, Any]) -> None:
    everything = client_a.get("/v1/evidence").json()
    assert sealed["id"] in {e["id"] for e in everything["data"]} and everything["page"] == 1
    def ids(**params: Any) -> set[str]:
        return {e["id"] for e in client_a.get("/v1/evidence", params=params).json()["data"]}

    assert sealed["id"] in ids(status="sealed") and sealed["id"] not in ids(status="failed")
    found = client_a.get("/v1/evidence", params={"q": "forty-two"}).json()
    assert [e["id"] for e in found["data"]] == [sealed["id"]] and found["count"] == 1
    assert client_a.get("/v1/evidence", params={"q": "100%_"}).json()["count"] == 0
    beyond = client_a.get("/v1/evidence", params={"page": 99}).json()
    assert beyond["data"] == [] and beyond["page"] == 99
    bad = client_a.get("/v1/evidence", params={"status": "lost", "page": 0})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_request"


def test_tenant_isolation(client_a: httpx.Client, client_b: httpx.Client, sealed: dict[str, Any]) -> None:
    """Tenant B gets 404 for tenant A's evidence in every endpoint, the same 404 as for an unknown id."""
    evidence_id = sealed["id"]
    for path in (f"/v1/evidence/{evidence_id}", f"/v1/evidence/{evidence_id}/package",
                 f"/v1/evidence/{evidence_id}/certificate.pdf", f"/v1/evidence/{evidence_id}/report",
                 f"/v1/evidence/{evidence_id}/screenshot", f"/v1/batches/{sealed['batch_id']}",
                 f"/v1/evidence/{sealed['fingerprint']}"):
        reply = client_b.get(path)
        assert reply.status_code == 404, path
        unknown = client_b.get(path.replace(evidence_id, "tz-unknown").replace(sealed["batch_id"], "b-unknown"))
        assert reply.json() == unknown.json() or path.endswith(sealed["fingerprint"]), path
        assert client_a.get(path).status_code in (200, 404 if path.endswith(sealed["fingerprint"]) else 200), path
    listing = client_b.get("/v1/evidence", params={"q": evidence_id}).json()
    assert listing["count"] == 0 and listing["data"] == []
    assert evidence_id not in {e["id"] for e in client_b.get("/v1/evidence").json()["data"]}


def test_auth_failures(server: Server, tenant_a: dict[str, Any]) -> None:
    prefix = tenant_a["key_prefix"]
    wrong_secret = f"tzk_{prefix}_{'A' * 43}"
    protected = [("GET", "/v1/evidence"), ("GET", "/v1/evidence/x"), ("GET", "/v1/evidence/x/package"),
                 ("GET", "/v1/evidence/x/certificate.pdf"), ("GET", "/v1/batches/x"), ("POST", "/v1/captures"),
                 ("POST", "/v1/uploads")]
    for header, code in ((None, "missing_api_key"), ("garbage", "invalid_api_key"), (wrong_secret, "invalid_api_key")):
        with server.client(header) as client:
            for method, path in protected:
                reply = client.request(method, path)
                assert reply.status_code == 401, (method, path, header)
                assert reply.json()["error"]["code"] == code
                assert reply.headers["www-authenticate"] == "Bearer"
    extra = server.cli("keys", "create", tenant_a["tenant"], "--json", "--label", "to revoke")
    token = json.loads(extra.stdout)["api_key"]
    with server.client(token) as client:
        assert client.get("/v1/evidence").status_code == 200
        server.cli("keys", "revoke", token)
        revoked = client.get("/v1/evidence")
        assert revoked.status_code == 401 and revoked.json()["error"]["code"] == "revoked_api_key"


def test_upload_limits_and_errors(client_a: httpx.Client) -> None:
    over = client_a.post("/v1/uploads", files={"file": ("big.bin", b"x" * (UPLOAD_LIMIT + 1))})
    assert over.status_code == 413 and over.json()["error"]["code"] == "payload_too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit is enforced while streaming
        yield b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"s.bin\"\r\n\r\n"
        for _ in range(UPLOAD_LIMIT // 65536 + 2):
            yield b"y" * 65536
        yield b"\r\n--b--\r\n"

    multipart = {"content-type": "multipart/form-data; boundary=b"}
    streamed = client_a.post("/v1/uploads", content=chunks(), headers=multipart)
    assert streamed.status_code == 413 and streamed.json()["error"]["code"] == "payload_too_large"
    assert client_a.post("/v1/uploads", json={"file": "x"}).json()["error"]["code"] == "unsupported_media_type"
    no_file = client_a.post("/v1/uploads", data={"note": "n"}, files={"other": ("a", b"a")})
    assert no_file.status_code == 422 and no_file.json()["error"]["code"] == "invalid_request"
    traversal = client_a.post("/v1/uploads", files={"file": ("../../etc/passwd", b"root")})
    assert traversal.status_code == 202
    detail = client_a.get(f"/v1/evidence/{traversal.json()['evidence_ids'][0]}").json()
    assert detail["title"] == "../../etc/passwd" and detail["status"] in ("pending", "sealed")


def test_capture_requests(server: Server, client_a: httpx.Client, sample_site: str) -> None:
    for bad in ({"urls": []}, {"urls": ["file:///etc/passwd"]}, {"urls": "http://x"}, {}):
        reply = client_a.post("/v1/captures", json=bad)
        assert reply.status_code == 422 and reply.json()["error"]["code"] == "invalid_request", bad
    unreachable = client_a.post("/v1/captures", json={"urls": ["http://127.0.0.1:9/nothing"], "note": "down"})
    assert unreachable.status_code == 202
    failed = wait_for_status(client_a, unreachable.json()["evidence_ids"][0], {"failed", "sealed"})
    assert failed["status"] == "failed" and failed["error"]
    reason = capture_available()
    if reason is not None:
        assert "not available" in failed["error"]
        pytest.skip(f"web capture: {reason}")
    bad_steps = client_a.post("/v1/captures", json={"urls": [f"{sample_site}/index.html"],
                                                    "steps": ["type #pw"]})
    assert bad_steps.status_code == 422 and bad_steps.json()["error"]["code"] == "invalid_steps"
    assert "step 1: type needs a text" in bad_steps.json()["error"]["message"]
    accepted = client_a.post("/v1/captures", json={"urls": [f"{sample_site}/index.html"], "note": "sample",
                                                   "steps": ["scroll", {"action": "wait_for", "ms": 100}]})
    assert accepted.status_code == 202
    done = wait_for_status(client_a, accepted.json()["evidence_ids"][0], {"sealed", "failed"}, timeout=120)
    assert done["status"] == "sealed", done["error"]
    assert done["kind"] == "web-capture" and done["evidence_id"] and done["evidence_id"] != done["id"]
    shot = client_a.get(f"/v1/evidence/{done['id']}/screenshot")
    assert shot.status_code == 200 and shot.content.startswith(b"\x89PNG")
    package = client_a.get(f"/v1/evidence/{done['id']}/package").content
    report = _verify(server, package).json()
    assert report["verified"], [c for c in report["checks"] if c["status"] == "fail"]
    with zipfile.ZipFile(io.BytesIO(package)) as archive:  # the steps ran, and the session video is there
        manifest = json.loads(archive.read("evidence/manifest.json"))
        names = set(archive.namelist())
    assert manifest["capture"]["options"]["steps"] == [{"action": "scroll"}, {"action": "wait_for", "ms": 100}]
    assert {"evidence/step-01.png", "evidence/step-02.png"} <= names
    assert "evidence/session.webm" in names


def test_rate_limit_per_key(server: Server) -> None:
    tenant = server.new_tenant()
    with server.client(tenant["api_key"]) as client:
        # Ask until refused: on a loaded machine the bucket refills while the burst is being spent.
        replies = [client.get("/v1/evidence")]
        while replies[-1].status_code == 200 and len(replies) < 20 * int(TEST_SETTINGS["TIEZHENG_RATE_BURST"]):
            replies.append(client.get("/v1/evidence"))
        assert replies[0].status_code == 200
        limited = replies[-1]
        assert limited.status_code == 429 and limited.json()["error"]["code"] == "rate_limited"
        assert int(limited.headers["retry-after"]) >= 1
    with server.client(server.new_tenant()["api_key"]) as other:  # another key has its own bucket
        assert other.get("/v1/evidence").status_code == 200


def test_audit_trail_and_no_secrets(server: Server, tenant_a: dict[str, Any], sealed: dict[str, Any]) -> None:
    from sqlalchemy import create_engine, text

    url = server.database_url or f"sqlite:///{server.data_dir / 'tiezheng.db'}"
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT action, outcome, tenant_id, target, detail FROM audit_event")).all()
        key_rows = conn.execute(text("SELECT prefix, key_hash FROM api_key")).all()
    engine.dispose()
    actions = {(r[0], r[1]) for r in rows}
    assert {("tenant.create", 200), ("key.create", 200), ("evidence.upload", 202), ("evidence.read", 200),
            ("evidence.package", 200), ("evidence.list", 401), ("verify", 200), ("key.revoke", 200)} <= actions
    assert ("evidence.sealed", 200) in actions and any(r[3] == sealed["id"] for r in rows)
    token = tenant_a["api_key"]
    assert all(token not in (r[4] or "") for r in rows)
    secret_part = token.split("_", 2)[2]  # the body may itself contain "_" (URL-safe base64)
    assert all(secret_part not in r[1] for r in key_rows)
    assert token not in server.log() and secret_part not in server.log()


def test_data_dir_layout(server: Server, client_a: httpx.Client, sealed: dict[str, Any]) -> None:
    """Blobs are addressed by sha256 and never change: the package as accepted and its proof files. The
    sealed package is put together from them for each download, with the sha256 the view gives."""
    blobs = list((server.data_dir / "blobs" / "sha256").glob("*/*"))
    assert all(hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name for blob in blobs)
    downloaded = client_a.get(f"/v1/evidence/{sealed['id']}/package").content
    viewed = client_a.get(f"/v1/evidence/{sealed['id']}").json()
    assert viewed["package_sha256"] == hashlib.sha256(downloaded).hexdigest()
    assert viewed["package_sha256"] not in {blob.name for blob in blobs}
    with zipfile.ZipFile(io.BytesIO(downloaded)) as archive:
        proofs = {hashlib.sha256(archive.read(n)).hexdigest() for n in archive.namelist() if n.startswith("proof/")}
    assert proofs and proofs <= {blob.name for blob in blobs}
    # The blob is the package: the service keeps no second copy under packages/.
    assert not (server.data_dir / "packages" / f"{sealed['evidence_id']}.wacz").exists()
    # Only the live server's own temp folder (no request body left in it: the warm browser's key
    # folder may be there) and its lock.
    leftovers = list(Path(server.data_dir / "tmp").iterdir())
    assert sorted(p.suffix for p in leftovers) == ["", ".lock"], leftovers
    assert [p.name for folder in leftovers if folder.is_dir() for p in folder.iterdir()
            if not p.name.startswith("tiezheng-recorder-")] == []
