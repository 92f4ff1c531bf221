"""The S3-compatible blob store against a real S3 API server (s3rver from npm), and the service on it."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.service.blobs import CHUNK_BYTES, BlobMissing, BlobStore
from api.service.blobs_s3 import S3BlobStore
from api.service.runtime import blob_store
from api.service.settings import Settings
from tests.api.conftest import start_server
from tests.api.server import wait_for_status
from tests.s3server import BUCKET, S3_ENV, running_s3rver, s3rver_missing

PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAA"
                       "AABJRU5ErkJggg==")


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real S3 API server on a free loopback port with an empty bucket; stopped afterwards."""
    reason = s3rver_missing()
    if reason:
        pytest.skip(reason)
    with running_s3rver(tmp_path_factory.mktemp("s3rver")) as endpoint:
        yield endpoint


@pytest.fixture()
def store(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> S3BlobStore:
    """The store as the service makes it: from settings, credentials from the AWS environment."""
    for name, value in S3_ENV.items():
        monkeypatch.setenv(name, value)
    settings = Settings(blob_url=f"s3://{BUCKET}/{request.node.name}", s3_endpoint_url=s3_endpoint)
    made = blob_store(settings)
    assert isinstance(made, S3BlobStore)
    return made


def _keys(store: S3BlobStore) -> list[str]:
    listed = store.client.list_objects_v2(Bucket=store.bucket, Prefix=store.prefix)
    return [entry["Key"] for entry in listed.get("Contents", [])]


def test_factory_picks_the_backend(tmp_path: Path) -> None:
    assert isinstance(blob_store(Settings(data_dir=tmp_path)), BlobStore)
    with pytest.raises(ValueError, match="s3://bucket/prefix"):
        blob_store(Settings(data_dir=tmp_path, blob_url="https://bucket.example/x"))


def test_put_exists_open_round_trip(store: S3BlobStore, tmp_path: Path) -> None:
    source = tmp_path / "package.wacz"
    source.write_bytes(b"accepted bytes")
    address = store.put_file(source)
    assert address == hashlib.sha256(b"accepted bytes").hexdigest()
    assert store.exists(address)
    with store.open(address) as stream:
        assert stream.read() == b"accepted bytes"
    assert _keys(store) == [f"{store.prefix}sha256/{address[:2]}/{address}"]
    # Sealing replaces the package by rename: the stored bytes stay, the new ones get their own address.
    replacement = tmp_path / "new.wacz"
    replacement.write_bytes(b"sealed bytes")
    os.replace(replacement, source)
    sealed = store.put_file(source)
    assert sealed == hashlib.sha256(b"sealed bytes").hexdigest()
    with store.open(address) as old, store.open(sealed) as new:
        assert (old.read(), new.read()) == (b"accepted bytes", b"sealed bytes")


def test_put_is_idempotent(store: S3BlobStore, tmp_path: Path) -> None:
    source = tmp_path / "package.wacz"
    source.write_bytes(b"the same bytes")
    first = store.put_file(source)
    copy = tmp_path / "copy.wacz"
    copy.write_bytes(b"the same bytes")
    assert store.put_file(source) == store.put_file(copy) == first
    assert len(_keys(store)) == 1


@pytest.mark.parametrize("address", ["0" * 64, "", "../../etc/passwd", "A" * 64, "0" * 63])
def test_missing_address_raises_blob_missing(store: S3BlobStore, address: str) -> None:
    assert not store.exists(address)
    with pytest.raises(BlobMissing):
        store.open(address)


def test_large_file_streams(store: S3BlobStore, tmp_path: Path) -> None:
    # 12 MiB: past boto3's 8 MiB multipart threshold, so the upload goes in parts.
    source = tmp_path / "large.wacz"
    hasher = hashlib.sha256()
    with source.open("wb") as out:
        for _ in range(12):
            chunk = os.urandom(1 << 20)
            hasher.update(chunk)
            out.write(chunk)
    address = store.put_file(source)
    assert address == hasher.hexdigest()
    reread, size, largest = hashlib.sha256(), 0, 0
    with store.open(address) as stream:
        while chunk := stream.read(CHUNK_BYTES):
            reread.update(chunk)
            size += len(chunk)
            largest = max(largest, len(chunk))
    assert reread.hexdigest() == address and size == 12 << 20
    assert largest <= CHUNK_BYTES


def test_doctor_checks_the_bucket(s3_endpoint: str, tmp_path: Path) -> None:
    """`tiezheng doctor` reaches the bucket with the AWS environment's credentials and never prints them."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TIEZHENG_", "AWS_")) or k == "TIEZHENG_ANVIL"}
    env.update(S3_ENV, AWS_SECRET_ACCESS_KEY="s3rver-accepts-any-secret", TIEZHENG_DATA_DIR=str(tmp_path / "data"),
               TIEZHENG_S3_ENDPOINT_URL=s3_endpoint)
    for bucket, status, reason in ((BUCKET, "ok", f"bucket {BUCKET} at {s3_endpoint} answers"),
                                   ("no-such-bucket", "fail", "bucket no-such-bucket at")):
        result = subprocess.run([str(Path(sys.executable).parent / "tiezheng"), "doctor", "--json"],
                                env={**env, "TIEZHENG_BLOB_URL": f"s3://{bucket}/p"}, capture_output=True, text=True,
                                timeout=120)
        assert "Traceback" not in result.stderr and "s3rver-accepts-any-secret" not in result.stdout + result.stderr
        (check,) = [c for c in json.loads(result.stdout)["checks"] if c["name"] == "blob_store"]
        assert check["status"] == status and check["reason"].startswith(reason), check


def test_service_on_s3(anvil: Path, s3_endpoint: str, tmp_path: Path) -> None:
    """An upload is stored in the bucket only, and every download comes back from it byte for byte."""
    blob_url = f"s3://{BUCKET}/service"
    servers = start_server(tmp_path, "sqlite", TIEZHENG_BLOB_URL=blob_url, TIEZHENG_S3_ENDPOINT_URL=s3_endpoint,
                           **S3_ENV)
    server = next(servers)
    try:
        tenant = server.new_tenant()
        with server.client(tenant["api_key"]) as client:
            files = [("file", ("listing.txt", b"infringing copy on S3\n", "text/plain")),
                     ("file", ("shot.png", PNG, "image/png"))]
            reply = client.post("/v1/uploads", files=files, data={"note": "blobs in a bucket"})
            assert reply.status_code == 202, reply.text
            (evidence_id,) = reply.json()["evidence_ids"]

            accepted = client.get(f"/v1/evidence/{evidence_id}/package")
            assert accepted.status_code == 200, accepted.text
            sealed_body = wait_for_status(client, evidence_id, {"sealed"})
            package = client.get(f"/v1/evidence/{evidence_id}/package")
            assert package.status_code == 200, package.text
            screenshot = client.get(f"/v1/evidence/{evidence_id}/screenshot")
            report = client.get(f"/v1/evidence/{evidence_id}/report")
            certificate = client.get(f"/v1/evidence/{evidence_id}/certificate.pdf")
            viewed = client.get(f"/v1/evidence/{evidence_id}").json()  # recorded by the download at the latest

        bucket = S3BlobStore(blob_url, client=_client(s3_endpoint))
        for answer in (accepted, package):
            address = hashlib.sha256(answer.content).hexdigest()
            assert answer.headers["etag"] == f'"{address}"'
            assert answer.headers["content-length"] == str(len(answer.content))
            assert answer.headers["content-type"] == "application/zip"
            assert answer.headers["content-disposition"] == f'attachment; filename="{sealed_body["evidence_id"]}.wacz"'
        # The accepted package stays in the bucket as it was; the sealed one is it plus proof objects,
        # put together for the download, and its sha256 is what the evidence view says.
        with bucket.open(hashlib.sha256(accepted.content).hexdigest()) as stream:
            assert stream.read() == accepted.content
        assert viewed["package_sha256"] == hashlib.sha256(package.content).hexdigest()
        assert not bucket.exists(viewed["package_sha256"])
        with zipfile.ZipFile(io.BytesIO(package.content)) as archive:
            proofs = [name for name in archive.namelist() if name.startswith("proof/")]
            assert proofs and all(bucket.get_bytes(hashlib.sha256(archive.read(name)).hexdigest())
                                  == archive.read(name) for name in proofs)
        built = zipfile.ZipFile(io.BytesIO(accepted.content)).infolist()
        first_rewritten = next(i.header_offset for i in built if i.filename == "datapackage.json")
        assert package.content[:first_rewritten] == accepted.content[:first_rewritten]  # entries sent raw
        assert screenshot.status_code == 200 and screenshot.content == PNG
        assert screenshot.headers["content-type"] == "image/png"
        assert report.status_code == 200 and report.json()["verdict"] == "verified (offline)", report.text
        assert certificate.status_code == 501 or certificate.content.startswith(b"%PDF"), certificate.text
        # Nothing went to the local blob store; the downloads' temporary copies are gone.
        assert not (server.data_dir / "blobs").exists()
        assert not list((server.data_dir / "tmp").glob(".package.*"))
    finally:
        servers.close()


def _client(endpoint: str) -> object:
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=S3_ENV["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=S3_ENV["AWS_SECRET_ACCESS_KEY"],
                        region_name=S3_ENV["AWS_DEFAULT_REGION"])
