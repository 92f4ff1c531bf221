"""Stored browser sessions through the real service: encrypted at rest, one tenant's only, used by its captures.

A tenant stores the storage state of a logged-in browser and captures a local members' page with it;
another tenant can neither see nor use it. The CLI stores and lists sessions in the data dir.
"""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import capture_available, start_server
from tests.api.server import Server, wait_for_status
from tests.member_site import ACCOUNT, MEMBERS_TEXT, SESSION_ID, MemberSite, serve_member_site, storage_state

SESSION_KEY = base64.b64encode(os.urandom(32)).decode()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def keyed_server(request: pytest.FixtureRequest, anvil: Path,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from start_server(tmp_path_factory.mktemp(f"sessions-{request.param}"), request.param,
                            TIEZHENG_SESSION_KEY=SESSION_KEY)


@pytest.fixture(scope="module")
def member_site() -> Iterator[MemberSite]:
    site = serve_member_site()
    yield site
    site.close()


def _create(client: Any, name: str = "buyer") -> Any:
    return client.post("/v1/sessions", json={"name": name, "account": ACCOUNT,
                                             "storage_state": json.loads(storage_state())})


def test_sessions_are_the_tenants_own_and_used_for_its_captures(keyed_server: Server, member_site: MemberSite) -> None:
    a, b = keyed_server.new_tenant(), keyed_server.new_tenant()
    with keyed_server.client(a["api_key"]) as client_a, keyed_server.client(b["api_key"]) as client_b:
        created = _create(client_a)
        assert created.status_code == 201, created.text
        assert created.json()["account"] == ACCOUNT and created.json()["cookies"] == 1
        assert SESSION_ID not in created.text and SESSION_ID not in client_a.get("/v1/sessions").text
        assert _create(client_a).status_code == 409
        # Tenant B neither sees it, nor captures with it, nor removes it.
        assert client_b.get("/v1/sessions").json() == []
        refused = client_b.post("/v1/captures", json={"urls": [member_site.url("/members")], "session": "buyer"})
        assert refused.status_code == 404, refused.text
        assert client_b.delete("/v1/sessions/buyer").status_code == 404
        unknown_egress = client_a.post("/v1/captures", json={"urls": [member_site.url("/members")],
                                                             "egress": "nowhere"})
        assert unknown_egress.status_code == 422 and "TIEZHENG_EGRESS_NOWHERE" in unknown_egress.text
        reason = capture_available()
        if reason is not None:
            pytest.skip(f"web capture: {reason}")
        accepted = client_a.post("/v1/captures", json={"urls": [member_site.url("/members")], "session": "buyer",
                                                       "save_media": True})
        assert accepted.status_code == 202, accepted.text
        done = wait_for_status(client_a, accepted.json()["evidence_ids"][0], {"sealed", "failed"}, timeout=120)
        assert done["status"] == "sealed", done["error"]
        package = client_a.get(f"/v1/evidence/{done['id']}/package")
        assert package.status_code == 200
        path = keyed_server.data_dir / "fetched.wacz"
        path.write_bytes(package.content)
        with zipfile.ZipFile(path) as archive:
            manifest = json.loads(archive.read("evidence/manifest.json"))
            assert MEMBERS_TEXT.encode() in archive.read("evidence/dom.html")
            assert any(name.startswith("media/") for name in archive.namelist())
        assert manifest["capture"]["session"]["account"] == ACCOUNT
        assert SESSION_ID.encode() not in package.content
        assert client_a.delete("/v1/sessions/buyer").status_code == 204
        assert client_a.get("/v1/sessions").json() == []
    # Neither the service's log nor (for SQLite) its database holds the session in the clear.
    assert SESSION_ID not in keyed_server.log() and SESSION_KEY not in keyed_server.log()


def test_cli_captures_logged_in(keyed_server: Server, member_site: MemberSite, tmp_path: Path) -> None:
    if (reason := capture_available()) is not None:
        pytest.skip(f"web capture: {reason}")
    state = tmp_path / "state.json"
    state.write_bytes(storage_state())
    keyed_server.cli("session", "add", "cli-buyer", str(state), "--account", ACCOUNT)
    done = keyed_server.cli("capture", member_site.url("/members"), "--session", "cli-buyer", "--allow-private",
                            "--save-media", "--json")
    package = Path(json.loads(done.stdout.splitlines()[-1])["package"])
    with zipfile.ZipFile(package) as archive:
        assert MEMBERS_TEXT.encode() in archive.read("evidence/dom.html")
        assert json.loads(archive.read("evidence/manifest.json"))["capture"]["session"]["name"] == "cli-buyer"
    missing = keyed_server.cli("capture", member_site.url("/members"), "--session", "nobody", "--allow-private",
                               check=False)
    assert missing.returncode == 2 and "session not found" in missing.stderr


def test_cli_stores_lists_and_refuses_without_a_key(keyed_server: Server, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    state.write_bytes(storage_state())
    added = keyed_server.cli("session", "add", "shop", str(state), "--account", ACCOUNT, "--json")
    assert json.loads(added.stdout)["account"] == ACCOUNT
    listed = keyed_server.cli("session", "list", "--json")
    assert "shop" in [s["name"] for s in json.loads(listed.stdout)]
    database = keyed_server.data_dir / "tiezheng.db"
    if database.exists() and keyed_server.database_url is None:
        with sqlite3.connect(database) as db:
            sealed = db.execute("select sealed_state from browser_session").fetchall()
        assert sealed and all(SESSION_ID not in row[0] for row in sealed)
    unknown = keyed_server.cli("capture", "http://127.0.0.1:9/x", "--egress", "nowhere", check=False)
    assert unknown.returncode == 2 and "TIEZHENG_EGRESS_NOWHERE" in unknown.stderr and "Traceback" not in unknown.stderr
    keyed_server.extra_env.pop("TIEZHENG_SESSION_KEY")
    try:
        refused = keyed_server.cli("session", "add", "other", str(state), "--account", ACCOUNT, check=False)
    finally:
        keyed_server.extra_env["TIEZHENG_SESSION_KEY"] = SESSION_KEY
    assert refused.returncode != 0 and "TIEZHENG_SESSION_KEY" in refused.stderr
    assert "Traceback" not in refused.stderr
    keyed_server.cli("session", "remove", "shop")
