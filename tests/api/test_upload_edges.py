"""Uploads at the edges, against the real service: broken multipart, odd names, keys where they do not belong."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import start_server
from tests.api.server import Server, wait_for_status

PART_HEAD = b'Content-Disposition: form-data; name="file"; filename="exhibit.txt"\r\nContent-Type: text/plain\r\n\r\n'


@pytest.fixture(scope="module")
def service(anvil: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from start_server(tmp_path_factory.mktemp("upload-edges"), "sqlite")


@pytest.fixture(scope="module")
def tenant(service: Server) -> dict[str, Any]:
    return service.new_tenant()


@pytest.fixture(scope="module")
def client(service: Server, tenant: dict[str, Any]) -> Iterator[httpx.Client]:
    with service.client(tenant["api_key"]) as http:
        yield http


def _post_raw(client: httpx.Client, body: bytes, boundary: bytes) -> httpx.Response:
    return client.post("/v1/uploads", content=body,
                       headers={"content-type": "multipart/form-data; boundary=" + boundary.decode()})


def _no_server_path(service: Server, reply: httpx.Response) -> None:
    text = reply.text
    for secret_place in (str(service.data_dir), str(service.data_dir.parent), "/tmp/", "Traceback"):
        assert secret_place not in text, text


def test_broken_multipart_is_a_400_and_never_accepted(service: Server, client: httpx.Client) -> None:
    before = client.get("/v1/evidence").json()["count"]
    whole = b"--b\r\n" + PART_HEAD + b"the whole exhibit\r\n--b--\r\n"
    cases = {
        "no closing boundary": whole[: -len(b"\r\n--b--\r\n")],
        "cut inside the part": whole[:40],
        "cut after a boundary line": b"--b\r\n" + PART_HEAD + b"content\r\n--b\r\n",
        "no content-disposition": b"--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b--\r\n",
        "disposition without a name": b'--b\r\nContent-Disposition: form-data; filename="a"\r\n\r\nx\r\n--b--\r\n',
        "garbage instead of framing": b"this is not multipart at all",
        "wrong boundary": b"--other\r\n" + PART_HEAD + b"x\r\n--other--\r\n",
    }
    for case, body in cases.items():
        reply = _post_raw(client, body, b"b")
        assert reply.status_code == 400, (case, reply.status_code, reply.text)
        assert reply.json()["error"]["code"] == "bad_request", case
        _no_server_path(service, reply)
    assert client.get("/v1/evidence").json()["count"] == before


@pytest.mark.parametrize("length", [71, 257, 300, 5000])
def test_long_boundaries_are_a_400(service: Server, client: httpx.Client, length: int) -> None:
    boundary = b"x" * length
    reply = _post_raw(client, b"--" + boundary + b"\r\n" + PART_HEAD + b"x\r\n--" + boundary + b"--\r\n", boundary)
    assert reply.status_code == 400 and reply.json()["error"]["code"] == "bad_request", reply.text
    assert "70" in reply.json()["error"]["message"]
    _no_server_path(service, reply)


def test_boundary_of_seventy_is_fine(client: httpx.Client) -> None:
    boundary = b"'()+_,-./:=?" + b"B" * 58
    assert len(boundary) == 70
    body = b"--" + boundary + b"\r\n" + PART_HEAD + b"bytes\r\n--" + boundary + b"--\r\n"
    assert _post_raw(client, body, boundary).status_code == 202


@pytest.mark.parametrize(("name", "shown"), [
    ("证" * 100 + ".pdf", "证" * 100 + ".pdf"), ("名" * 300, "名" * 300), ("a" * 400 + ".txt", "a" * 400 + ".txt"),
    ("报告 (final).docx", "报告 (final).docx"), ("..\\..\\截图.png", "..\\..\\截图.png"),
    ("ファイル\u200b名.jpg", "ファイル\u200b名.jpg"),  # the manifest keeps what was sent
])
def test_long_and_non_ascii_names_are_kept_in_the_manifest(service: Server, client: httpx.Client,
                                                           name: str, shown: str) -> None:
    reply = client.post("/v1/uploads", files={"file": (name, b"exhibit bytes " + name.encode(), "text/plain")})
    assert reply.status_code == 202, reply.text
    evidence = wait_for_status(client, reply.json()["evidence_ids"][0], {"sealed", "failed"})
    assert evidence["status"] == "sealed", evidence
    package = client.get(f"/v1/evidence/{evidence['id']}/package").content
    with zipfile.ZipFile(io.BytesIO(package)) as archive:
        manifest = json.loads(archive.read("evidence/manifest.json"))
        names = archive.namelist()
    recorded = manifest["upload"]["files"][0]
    assert recorded["original_name"] == shown and evidence["title"] == shown
    assert recorded["path"] in names and recorded["path"].isascii() and len(recorded["path"]) <= 120
    verified = httpx.post(f"{service.url}/v1/verify", files={"file": ("p.wacz", package)}, timeout=60).json()
    assert verified["verified"], [c for c in verified["checks"] if c["status"] == "fail"]


def test_keys_in_the_url_are_refused_and_never_logged(service: Server, tenant: dict[str, Any],
                                                      client: httpx.Client) -> None:
    key = tenant["api_key"]
    anonymous = httpx.Client(base_url=service.url, timeout=30)
    for params in ({"api_key": key}, {"token": key}, {"key": key}, {"access_token": key}, {"q": key},
                   {"API_KEY": "whatever"}):
        reply = anonymous.get("/v1/evidence", params=params)
        assert reply.status_code == 400, (params, reply.text)
        error = reply.json()["error"]
        assert error["code"] == "api_key_in_query" and "Authorization" in error["message"]
        assert key not in reply.text
    # Even with a good header, a key in the URL is refused: the URL has already leaked it.
    assert client.get("/v1/evidence", params={"api_key": key}).status_code == 400
    assert anonymous.get(f"/v1/evidence/{key}").status_code == 401  # in the path: refused, and logged masked
    in_form = anonymous.post("/v1/uploads", data={"api_key": key, "note": key}, files={"file": ("a.txt", b"a")})
    assert in_form.status_code == 401 and in_form.json()["error"]["code"] == "missing_api_key"
    assert client.get("/v1/evidence").status_code == 200  # the header is the way
    anonymous.close()
    service.stop()  # flush and close every log before reading them
    try:
        logs = [service.log_path, *service.data_dir.rglob("*.log")]
        secret = key.rsplit("_", 1)[1]
        for log in logs:
            text = log.read_text(errors="replace")
            assert secret not in text and key[:20] not in text, log.name
        assert "/v1/evidence?api_key=***" in service.log_path.read_text()  # the line is there, masked
    finally:
        service.start()
