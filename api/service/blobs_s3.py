"""The S3-compatible blob store: the same content-addressed interface as the local one, in a bucket.

Objects are keyed ``<prefix>sha256/ab/<hex>`` and written once: ``put_file`` hashes first, skips
what exists, uploads, then reads the object's size back before it returns, so an acknowledged
blob is in the bucket. It hashes and uploads through one open file, so a package that sealing
replaces (by rename) meanwhile can never be stored under the other version's address.
Credentials come from the usual AWS environment (never from our settings file or logs);
``TIEZHENG_S3_ENDPOINT_URL`` points at any S3-compatible server.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, BinaryIO
from urllib.parse import urlparse

from anchor.sealed_package import read_exactly
from api.service.blobs import CHUNK_BYTES, BlobMissing

S3_SCHEME = "s3"
#: Error codes S3-compatible servers use for "no such object" (AWS says NoSuchKey; HEAD has no body).
NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NotFound"})


def _sha256_stream(stream: IO[bytes]) -> tuple[str, int]:
    hasher, size = hashlib.sha256(), 0
    while chunk := stream.read(CHUNK_BYTES):
        hasher.update(chunk)
        size += len(chunk)
    return hasher.hexdigest(), size


def _not_found(exc: Any) -> bool:
    return exc.response.get("Error", {}).get("Code") in NOT_FOUND_CODES


class S3BlobStore:
    """Blobs in ``s3://bucket/prefix`` through boto3."""

    def __init__(self, url: str, *, endpoint_url: str | None = None, client: Any = None) -> None:
        parsed = urlparse(url)
        if parsed.scheme != S3_SCHEME or not parsed.netloc:
            raise ValueError(f"blob URL must look like s3://bucket/prefix, not {url!r}")
        self.bucket = parsed.netloc
        self.prefix = parsed.path.lstrip("/")
        if self.prefix and not self.prefix.endswith("/"):
            self.prefix += "/"
        if client is None:
            import boto3  # the scale extra; only loaded when an S3 store is configured

            client = boto3.client("s3", endpoint_url=endpoint_url)
        self.client = client

    def key(self, address: str) -> str:
        if len(address) != 64 or any(c not in "0123456789abcdef" for c in address):
            raise BlobMissing(address)
        return f"{self.prefix}sha256/{address[:2]}/{address}"

    def exists(self, address: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self.key(address))
        except BlobMissing:
            return False
        except self.client.exceptions.ClientError as exc:
            if _not_found(exc):
                return False
            raise
        return True

    def put_file(self, source: Path) -> str:
        """Upload ``source`` under its sha256 and return the address. Idempotent; durable on return."""
        with source.open("rb") as stream:
            address, size = _sha256_stream(stream)
            if self.exists(address):
                return address
            key = self.key(address)
            stream.seek(0)
            self.client.upload_fileobj(stream, self.bucket, key, ExtraArgs={"Metadata": {"sha256": address}})
        stored = self.client.head_object(Bucket=self.bucket, Key=key)
        if int(stored["ContentLength"]) != size:
            raise OSError(f"object {key} has {stored['ContentLength']} bytes, expected {size}")
        return address

    def open(self, address: str) -> BinaryIO:
        """A stream of the blob's bytes. Raises BlobMissing."""
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self.key(address))
        except self.client.exceptions.ClientError as exc:
            if _not_found(exc):
                raise BlobMissing(address) from exc
            raise
        body: BinaryIO = answer["Body"]
        return body

    def put_bytes(self, data: bytes) -> str:
        """Upload a small byte string under its sha256 and return the address. Idempotent; durable on return."""
        address = hashlib.sha256(data).hexdigest()
        if not self.exists(address):
            self.client.put_object(Bucket=self.bucket, Key=self.key(address), Body=data,
                                   Metadata={"sha256": address})
        return address

    def get_bytes(self, address: str) -> bytes:
        with self.open(address) as stream:
            return stream.read()

    def size(self, address: str) -> int:
        try:
            stored = self.client.head_object(Bucket=self.bucket, Key=self.key(address))
        except self.client.exceptions.ClientError as exc:
            if _not_found(exc):
                raise BlobMissing(address) from exc
            raise
        return int(stored["ContentLength"])

    def read_range(self, address: str, start: int, end: int) -> Iterator[bytes]:
        """One ranged GET, read in chunks: a sealed download streams the package's entries this way."""
        if end <= start:
            return
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self.key(address), Range=f"bytes={start}-{end - 1}")
        except self.client.exceptions.ClientError as exc:
            if _not_found(exc):
                raise BlobMissing(address) from exc
            raise
        with answer["Body"] as body:
            yield from read_exactly(body, end - start, f"object {self.key(address)} ends before byte {end}")
