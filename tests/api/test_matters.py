"""Matters and watches over HTTP: tenant isolation on every endpoint, filing, moves and the matter's log."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import start_server
from tests.api.server import Server, wait_for_status
from verifier.canonical import canonical_json

GENESIS = "0" * 64


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, anvil: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # Watches here point at a closed port, far in the future: this module tests bookkeeping, not runs.
    yield from start_server(tmp_path_factory.mktemp(f"matters-{request.param}"), request.param,
                            TIEZHENG_WATCH_MIN_SECONDS="60")


@pytest.fixture(scope="module")
def client_a(server: Server) -> Iterator[httpx.Client]:
    with server.client(server.new_tenant()["api_key"]) as client:
        yield client


@pytest.fixture(scope="module")
def client_b(server: Server) -> Iterator[httpx.Client]:
    with server.client(server.new_tenant()["api_key"]) as client:
        yield client


def _upload(client: httpx.Client, matter: str | None = None) -> str:
    data = {"note": "listing"} | ({"matter": matter} if matter else {})
    reply = client.post("/v1/uploads", files=[("file", ("a.txt", b"copy\n", "text/plain"))], data=data)
    assert reply.status_code == 202, reply.text
    evidence_id: str = reply.json()["evidence_ids"][0]
    return evidence_id


def _matter(client: httpx.Client, title: str = "Seller X") -> dict[str, Any]:
    reply = client.post("/v1/matters", json={"title": title, "reference": "(2026) Jing 0491 Min Chu 1"})
    assert reply.status_code == 201, reply.text
    body: dict[str, Any] = reply.json()
    return body


def _log_chain_holds(log: list[dict[str, Any]], matter_id: str, head: str) -> bool:
    """Recompute the log's hash chain from the answer alone, as a client would."""
    previous = GENESIS
    for seq, line in enumerate(log):
        at = line["at"].replace("+00:00", "Z")
        at = at if "." in at else at.replace("Z", ".000000Z")
        digest = hashlib.sha256(canonical_json({"matter": matter_id, "seq": seq, "at": at, "action": line["action"],
                                                "detail": line["detail"], "previous": previous})).hexdigest()
        if line["previous_sha256"] != previous or line["entry_sha256"] != digest:
            return False
        previous = digest
    return previous == head


def test_every_matter_and_watch_endpoint_hides_another_tenants(client_a: httpx.Client, client_b: httpx.Client) -> None:
    matter = _matter(client_a)["id"]
    watch = client_a.post("/v1/watches", json={"url": "http://127.0.0.1:9/x", "every": "6h", "matter": matter})
    assert watch.status_code == 201, watch.text
    watch_id = watch.json()["id"]
    evidence_a = _upload(client_a)
    evidence_b = _upload(client_b)

    def absent(reply: httpx.Response) -> None:
        assert reply.status_code == 404, (reply.request.method, reply.request.url, reply.text)
        assert reply.json()["error"]["code"] == "not_found"

    # Another tenant's id answers exactly like an id that does not exist, on every endpoint.
    for other, missing in ((matter, "mt-0000000000000000"), (watch_id, "wt-0000000000000000")):
        kind = "matters" if other.startswith("mt-") else "watches"
        for ident in (other, missing):
            absent(client_b.get(f"/v1/{kind}/{ident}"))
            if kind == "matters":
                absent(client_b.get(f"/v1/matters/{ident}/log"))
                for form in ("json", "html", "pdf"):
                    absent(client_b.get(f"/v1/matters/{ident}/timeline", params={"format": form}))
                absent(client_b.post(f"/v1/matters/{ident}/evidence", json={"evidence_id": evidence_b}))
            else:
                absent(client_b.post(f"/v1/watches/{ident}/pause"))
                absent(client_b.post(f"/v1/watches/{ident}/resume"))
                absent(client_b.delete(f"/v1/watches/{ident}"))
    # Nor can B file anything under A's matter, nor A file B's evidence under its own.
    absent(client_b.post("/v1/uploads", files=[("file", ("b.txt", b"b\n", "text/plain"))], data={"matter": matter}))
    absent(client_b.post("/v1/captures", json={"urls": ["http://127.0.0.1:9/x"], "matter": matter}))
    absent(client_b.post("/v1/watches", json={"url": "http://127.0.0.1:9/x", "every": "6h", "matter": matter}))
    absent(client_a.post(f"/v1/matters/{matter}/evidence", json={"evidence_id": evidence_b}))
    # Lists show only one's own.
    assert matter not in {m["id"] for m in client_b.get("/v1/matters").json()}
    assert watch_id not in {w["id"] for w in client_b.get("/v1/watches").json()}
    assert client_b.get("/v1/matters").status_code == client_b.get("/v1/watches").status_code == 200
    # And A's own calls work, so the 404s above are about ownership.
    assert client_a.get(f"/v1/matters/{matter}").status_code == 200
    assert client_a.post(f"/v1/matters/{matter}/evidence", json={"evidence_id": evidence_a}).status_code == 200
    assert client_a.get(f"/v1/watches/{watch_id}").status_code == 200
    assert client_a.delete(f"/v1/watches/{watch_id}").status_code == 204
    absent(client_a.get(f"/v1/watches/{watch_id}"))  # removed: gone from view, its runs stay evidence


def test_filing_and_moving_are_logged_in_a_hash_chain(client_a: httpx.Client) -> None:
    first, second = _matter(client_a, "Store A")["id"], _matter(client_a, "Store B, reopened")["id"]
    uploaded = _upload(client_a, matter=first)
    captured = client_a.post("/v1/captures", json={"urls": ["http://127.0.0.1:9/x"], "matter": first,
                                                   "subject": "seller 42"})
    assert captured.status_code == 202, captured.text
    capture_id = captured.json()["evidence_ids"][0]
    assert client_a.get(f"/v1/matters/{first}").json()["evidence"] == [uploaded, capture_id]

    moved = client_a.post(f"/v1/matters/{second}/evidence", json={"evidence_id": uploaded})
    assert moved.status_code == 200 and moved.json()["evidence"] == [uploaded]
    assert client_a.get(f"/v1/matters/{first}").json()["evidence"] == [capture_id]
    # The package is untouched by the move: same fingerprint as before.
    assert client_a.get(f"/v1/evidence/{uploaded}").json()["fingerprint"]

    for matter, actions in ((first, ["created", "filed", "filed", "moved-out"]), (second, ["created", "moved-in"])):
        body = client_a.get(f"/v1/matters/{matter}").json()
        log = client_a.get(f"/v1/matters/{matter}/log").json()
        assert [line["action"] for line in log] == actions
        assert body["log_length"] == len(log)
        assert _log_chain_holds(log, matter, body["log_head"])
        # A line changed afterwards no longer chains.
        forged = json.loads(json.dumps(log))
        forged[1]["detail"]["evidence"] = "tz-forged"
        assert not _log_chain_holds(forged, matter, body["log_head"])


def test_watch_requests_are_checked(client_a: httpx.Client) -> None:
    for bad in ({"url": "file:///etc/passwd", "every": "6h"}, {"url": "http://x/", "every": "often"},
                {"url": "http://x/", "every": "5s"},  # under the server's shortest interval
                {"url": "http://x/", "every": "6h", "until": "2000-01-01T00:00:00Z"},
                {"url": "http://x/", "every": "6h", "fields": {"price": ""}},
                {"url": "http://x/", "every": "6h", "fields": {"price": "[[["}},  # not a CSS selector
                {"url": "http://x/", "every": "6h", "subject": "s" * 501}):
        reply = client_a.post("/v1/watches", json=bad)
        assert reply.status_code == 422, (bad, reply.text)
    made = client_a.post("/v1/watches", json={"url": "http://127.0.0.1:9/item", "every": "1d", "subject": "shop 7",
                                              "fields": {"price": ".price", "seller": "#seller-name"}})
    assert made.status_code == 201, made.text
    watch = made.json()
    assert watch["every_seconds"] == 86400 and watch["state"] == "active"
    assert watch["fields"] == {"price": ".price", "seller": "#seller-name"}
    assert client_a.post(f"/v1/watches/{watch['id']}/pause").json()["state"] == "paused"
    assert client_a.post(f"/v1/watches/{watch['id']}/resume").json()["state"] == "active"


def test_a_matters_timeline_is_verified_and_rendered(client_a: httpx.Client) -> None:
    """Two uploads filed under a matter, sealed: the timeline verifies both (stand-alone items: no watch)."""
    matter = _matter(client_a, "Timeline")["id"]
    ids = [_upload(client_a, matter=matter) for _ in range(2)]
    for evidence_id in ids:
        wait_for_status(client_a, evidence_id, {"sealed"})
    report = client_a.get(f"/v1/matters/{matter}/timeline")
    assert report.status_code == 200, report.text
    body = report.json()
    assert len(body["packages"]) == 2 and all(p["verified"] for p in body["packages"])
    assert body["without_package"] == []
    assert [c["status"] for c in body["checks"]] == ["pass", "pass"] and "stand alone" in body["checks"][0]["reason"]
    assert body["verified"] is True
    page = client_a.get(f"/v1/matters/{matter}/timeline", params={"format": "html"})
    assert page.headers["content-type"].startswith("text/html") and "Timeline" in page.text
    assert "script-src" not in page.headers["content-security-policy"] and "default-src 'none'" in \
        page.headers["content-security-policy"]
    pdf = client_a.get(f"/v1/matters/{matter}/timeline", params={"format": "pdf"})
    assert pdf.content.startswith(b"%PDF")


def test_a_subjects_timeline_spans_matters_and_tenants_see_only_their_own(client_a: httpx.Client,
                                                                        client_b: httpx.Client) -> None:
    """Captures about one seller in two matters come back together; another tenant's query finds none."""
    ids = []
    for store in ("Store A", "Store A reopened as Store B"):
        matter = _matter(client_a, store)["id"]
        reply = client_a.post("/v1/captures", json={"urls": ["http://127.0.0.1:9/x"], "matter": matter,
                                                    "subject": "seller 4242"})
        assert reply.status_code == 202, reply.text
        ids += reply.json()["evidence_ids"]
    for evidence_id in ids:  # port 9 answers nothing: the captures fail, so they have no package
        wait_for_status(client_a, evidence_id, {"failed"})
    found = client_a.get("/v1/timeline", params={"subject": "seller 4242"}).json()
    assert sorted(found["without_package"]) == sorted(ids) and found["packages"] == []
    assert client_b.get("/v1/timeline", params={"subject": "seller 4242"}).json()["without_package"] == []
    assert client_a.get("/v1/timeline", params={"subject": ""}).status_code == 422
