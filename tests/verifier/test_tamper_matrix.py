"""The tamper matrix: every single mutation of a good sealed package fails, and names its check.

The attacker here is careful: after each change it rebuilds datapackage.json and its digest, so
the WACZ layer (P3) cannot be what catches it. Each mutation must make the verdict `failed` with
the expected check among the failures; the same rebuild with no mutation stays verified.
"""

from __future__ import annotations

import base64
import json
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.factory import make_workspace, seal_batch
from verifier.canonical import canonical_json
from verifier.package import DATAPACKAGE_DIGEST_PATH, DATAPACKAGE_PATH
from verifier.timestamp import parse_timestamp_response
from verifier.trust import Trust, load_trust
from verifier.verdict import Verdict
from verifier.verify import verify_package
from verifier.wacz import Member, write_package

Entries = dict[str, bytes]
TOKEN, TSA_CERTS = "proof/timestamp-0.tsr", "proof/tsa-0.pem"
Mutation = Callable[[Entries], None]


@pytest.fixture(scope="module")
def good(rpc_url: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Entries, dict[str, Any], Trust]:
    workspace = make_workspace(tmp_path_factory.mktemp("matrix"))
    packages = [workspace.upload([("exhibit.txt", f"exhibit {i}\n".encode() * 40), ("photo.png", bytes(range(256)))])
                for i in range(5)]
    seal_batch(workspace, packages, rpc_url)
    with zipfile.ZipFile(packages[2].path) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    metadata = json.loads(entries[DATAPACKAGE_PATH])
    return entries, metadata, load_trust(workspace.trust_file())


def rebuild(entries: Entries, metadata: dict[str, Any], target: Path) -> Path:
    members = [Member(name, data=data) for name, data in entries.items()
               if name not in (DATAPACKAGE_PATH, DATAPACKAGE_DIGEST_PATH)]
    write_package(target, members, {k: v for k, v in metadata.items() if isinstance(v, str)})
    return target


def flip(data: bytes, at: int) -> bytes:
    at %= len(data)
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1:]


def _json_edit(name: str, edit: Callable[[Any], None]) -> Mutation:
    def apply(entries: Entries) -> None:
        body = json.loads(entries[name])
        edit(body)
        entries[name] = canonical_json(body)
    return apply


_SWAPS = {"upload": "web-capture", "web-capture": "upload"}


def _changed(value: Any) -> Any:
    """A different value of the same shape, so the change is wrong rather than malformed."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, str):
        if value in _SWAPS:
            return _SWAPS[value]
        body = value.removeprefix("0x")
        if body and all(c in "0123456789abcdef" for c in body):
            return value[:-1] + ("1" if value[-1] != "1" else "2")
        return value + "x"
    return "x"


def _leaf_paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaf_paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaf_paths(item, (*prefix, index))
    else:
        yield prefix


def _set_path(path: tuple[Any, ...]) -> Callable[[Any], None]:
    def edit(body: Any) -> None:
        target = body
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = _changed(target[path[-1]])
    return edit


def mutations(entries: Entries) -> Iterator[tuple[str, Mutation, str]]:
    manifest = json.loads(entries["evidence/manifest.json"])
    for artifact in manifest["artifacts"]:
        for at in (0, artifact["size"] // 2, -1):
            yield (f"artifact {artifact['path']} byte {at}",
                   lambda e, p=artifact["path"], a=at: e.__setitem__(p, flip(e[p], a)), "H1")
    for path in _leaf_paths(manifest):
        # Another format is not a wrong tiezheng/1 manifest but no manifest we read: unusable (exit 2).
        expected = "unusable" if path == ("format",) else "H2"
        yield f"manifest {'.'.join(map(str, path))}", _json_edit("evidence/manifest.json", _set_path(path)), expected

    def forge_signature(e: Entries) -> None:
        sig = json.loads(e["evidence/manifest.sig"])
        sig["signature"] = base64.b64encode(flip(base64.b64decode(sig["signature"]), 5)).decode()
        e["evidence/manifest.sig"] = canonical_json(sig)
    yield "signature", forge_signature, "S1"

    proof = json.loads(entries["proof/proof.json"])
    # A wrong tree size can leave the path's arithmetic unchanged (RFC 9162 proofs only fix the
    # shape they walk), so what binds the size is the anchor: TZ01 || root || size (H5).
    expected = {"leaf": "H2", "leaf_index": "H3", "tree_size": "H5", "root": "H3", "format": "H2"}
    for path in _leaf_paths(proof):
        if path == ("batch_id",):
            continue  # a label for people; the root, not the name, is what the token and chain bind
        check = expected.get(path[0], "H3")
        yield f"proof {'.'.join(map(str, path))}", _json_edit("proof/proof.json", _set_path(path)), check

    token = entries[TOKEN]
    parsed = parse_timestamp_response(token)
    # The signed parts of the token: what the TSA vouches for, how, and the signature itself. (Its
    # certificate bag is unsigned: a changed copy there is ignored for the ESS-bound certificate,
    # the way a re-zipped package still verifies, so it is no forgery and not in the matrix.)
    regions = {"TSTInfo": parsed.tst_info, "signed attributes": parsed.signed_attrs[2:],
               "signature": parsed.signature}
    for region, content in regions.items():
        start = token.find(content)
        assert start >= 0, region
        for offset in (0, len(content) // 2, len(content) - 1):
            yield (f"token {region} byte {offset}",
                   lambda e, a=start + offset: e.__setitem__(TOKEN, flip(e[TOKEN], a)), "H4")
    yield "token replaced by garbage", lambda e: e.__setitem__(TOKEN, b"\x30\x00"), "H4"
    yield "tsa certificates garbage", lambda e: e.__setitem__(TSA_CERTS, b"-----BEGIN CERTIFICATE-----\nAA\n"), "H4"

    anchor = json.loads(entries["proof/anchor.json"])
    for path in _leaf_paths(anchor):
        yield f"anchor {'.'.join(map(str, path))}", _json_edit("proof/anchor.json", _set_path(path)), "H5"
    yield "anchor gains a field", _json_edit("proof/anchor.json", lambda b: b.__setitem__("note", "trust me")), "H5"

    yield "file added", lambda e: e.__setitem__("evidence/planted.txt", b"planted"), "P3"
    yield "artifact removed", lambda e: e.pop("evidence/photo.png"), "P3"
    yield "anchor removed", lambda e: e.pop("proof/anchor.json"), "H5"
    yield "token removed", lambda e: (e.pop(TOKEN), e.pop(TSA_CERTS)), "H4"


def test_rebuilt_but_untouched_package_verifies(good: tuple[Entries, dict[str, Any], Trust], tmp_path: Path) -> None:
    entries, metadata, trust = good
    assert verify_package(rebuild(dict(entries), metadata, tmp_path / "same.wacz"), trust).verified


def test_every_mutation_fails_with_its_check(good: tuple[Entries, dict[str, Any], Trust], tmp_path: Path) -> None:
    entries, metadata, trust = good
    missed, wrong = [], []
    cases = list(mutations(entries))
    assert len(cases) > 60
    for number, (name, mutate, expected) in enumerate(cases):
        changed = dict(entries)
        mutate(changed)
        report = verify_package(rebuild(changed, metadata, tmp_path / f"m{number}.wacz"), trust)
        if expected == "unusable":
            if report.verdict is not Verdict.UNUSABLE:
                missed.append(f"{name}: {report.verdict.value}, expected unusable")
        elif report.verdict is not Verdict.FAILED:
            missed.append(f"{name}: {report.verdict.value}")
        elif expected not in report.failed_ids:
            wrong.append(f"{name}: failed {report.failed_ids}, expected {expected}")
    assert missed == [], "\n".join(missed)
    assert wrong == [], "\n".join(wrong)
