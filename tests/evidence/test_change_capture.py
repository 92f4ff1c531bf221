"""Change detection on real captures: Chromium behind the recorder, the local site, sealed-format packages."""

from __future__ import annotations

from pathlib import Path

from evidence.change import compare
from evidence.operator_key import OperatorKey
from evidence.page_text import KeyField
from tests.capture_site import BrowserRunner, Site

STATE = KeyField("stock", "#state")


def test_real_captures(runner: BrowserRunner, http_site: Site, operator: OperatorKey, packages: Path) -> None:
    first = runner.capture(http_site.url("/dynamic"), packages, operator).path
    again = runner.capture(http_site.url("/dynamic"), packages, operator).path
    missing = runner.capture(http_site.url("/missing"), packages, operator, accept_error_status=True).path
    other = runner.capture(http_site.url("/lazy"), packages, operator).path

    same = compare(first, again, key_fields=(STATE,))
    body = same.to_json()
    assert same.classification == "unchanged", body["signals"]
    assert body["screenshot"]["compared"] and body["screenshot"]["distance"] == 0
    assert body["key_fields"][0]["before"] == body["key_fields"][0]["after"]
    assert body["key_fields"][0]["before"] and "Loading" not in body["key_fields"][0]["before"]

    gone = compare(again, missing)
    assert gone.classification == "removed" and gone.to_json()["removed"]["after"]["reason"] == "http-404"
    assert compare(missing, first).classification == "reappeared"
    assert compare(first, other).classification == "changed"
