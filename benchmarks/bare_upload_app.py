"""The floor for benchmarks/api_load.py: the least an upload endpoint can do and still be honest.

``POST /v1/uploads`` here does what any durable upload service must do, and nothing more: the same
streamed multipart parse as Tiezheng (``api.web.multipart_stream.receive_form``), one key lookup (the
HMAC of the bearer key under a server secret, one SELECT on an indexed column), an fsync'd write of
the uploaded bytes, and one row inserted and committed in SQLite. No packaging, signing or sealing.

    BARE_DATA_DIR=/some/dir uvicorn benchmarks.bare_upload_app:create_app --factory

On first start it creates its tables and one key (``BARE_API_KEY``, default ``bench-key``). The
benchmark starts it with the same uvicorn settings (and the same worker count) as ``tiezheng serve``,
so the ratio of the two measures the service's own work per upload.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import sqlite3
import uuid
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from api.service.errors import ApiError
from api.web.multipart_stream import ReceivedForm, receive_form

SECRET = b"bare-benchmark-server-secret"
UPLOAD_LIMIT = 64 << 20
SQLITE_TIMEOUT_SECONDS = 30.0


def _hash(token: str) -> str:
    return hmac.new(SECRET, token.encode(), hashlib.sha256).hexdigest()


def _connect(database: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(database, timeout=SQLITE_TIMEOUT_SECONDS, isolation_level=None,
                                 check_same_thread=False)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")
    return connection


def _prepare(root: Path, key: str) -> None:
    (root / "files").mkdir(parents=True, exist_ok=True)
    (root / "tmp").mkdir(parents=True, exist_ok=True)
    with _connect(root / "bare.db") as connection:
        connection.execute("CREATE TABLE IF NOT EXISTS api_key (id INTEGER PRIMARY KEY, key_hash TEXT UNIQUE)")
        connection.execute("CREATE TABLE IF NOT EXISTS upload (id TEXT PRIMARY KEY, key_id INTEGER, "
                           "name TEXT, size INTEGER, created_at TEXT DEFAULT CURRENT_TIMESTAMP)")
        connection.execute("INSERT OR IGNORE INTO api_key (key_hash) VALUES (?)", (_hash(key),))


def _store(root: Path, form: ReceivedForm, token: str) -> list[str]:
    connection = _connect(root / "bare.db")
    try:
        row = connection.execute("SELECT id FROM api_key WHERE key_hash = ?", (_hash(token),)).fetchone()
        if row is None:
            raise ApiError(401, "invalid_api_key", "invalid API key")
        ids = []
        for received in form.files:
            upload_id = uuid.uuid4().hex
            with received.path.open("rb") as source, (root / "files" / upload_id).open("wb") as target:
                target.write(source.read())
                target.flush()
                os.fsync(target.fileno())
            connection.execute("INSERT INTO upload (id, key_id, name, size) VALUES (?, ?, ?, ?)",
                               (upload_id, row[0], received.filename, received.size))
            ids.append(upload_id)
        return ids
    finally:
        connection.close()


def create_app() -> FastAPI:
    root = Path(os.environ["BARE_DATA_DIR"])
    _prepare(root, os.environ.get("BARE_API_KEY", "bench-key"))
    app = FastAPI()

    @app.exception_handler(ApiError)
    async def _error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"error": {"code": exc.code, "message": exc.message}}, status_code=exc.status)

    @app.get("/readyz")
    def ready() -> dict[str, str]:
        return {"status": "ready"}

    @app.post("/v1/uploads", status_code=202)
    async def upload(request: Request) -> Any:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        form = await receive_form(request, workdir=root / "tmp", limit=UPLOAD_LIMIT)
        try:
            ids = await run_in_threadpool(_store, root, form, token)
        finally:
            await run_in_threadpool(form.discard)
        return {"evidence_ids": ids}

    return app
