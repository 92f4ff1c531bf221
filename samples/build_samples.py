"""Build the sample packages: good ones and one tampered package per check that can fail.

    python -m samples.build_samples        (needs the project's setup: anvil, the dev TSA; and root)
    python -m samples.build_samples --only-cannot-judge   (remake only that sample)

Every package is really sealed: a development TSA token and an anchor on a fresh anvil devnet,
with the offline proof inside, so each verifies offline as `verified (offline)` against
`samples/trust.toml`. Each tampered package is made from a good one by the one change its entry in
`samples/expected.json` describes, and must fail exactly that check. Regenerating makes new keys,
so all files change together.

The build runs in a clean room (``samples/clean_room.py``): the capture's clean-environment record
and manifest would otherwise publish the build machine (its hosts file, resolver, host name, home
folder). There they record a stock hosts file, ``nameserver 127.0.0.1`` and the host name
``tiezheng-sample``, so S4 passes; the build then checks that no fact of the machine got through.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import socket
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from anchor.devnet import Devnet
from api.cli.sample_site import serve_site
from evidence.operator_key import OperatorKey
from evidence.upload import BuiltPackage
from samples.clean_room import MARKER, run_in_clean_room, why_not
from tests.capture_site import BrowserRunner
from tests.factory import Workspace, make_workspace, seal_batch
from tests.tamper import flip_byte
from verifier.canonical import canonical_json, sha256
from verifier.package import DATAPACKAGE_DIGEST_PATH, DATAPACKAGE_PATH, MANIFEST_PATH, SIGNATURE_PATH
from verifier.wacz import Member, write_package

HERE = Path(__file__).resolve().parent
OUT = HERE / "packages"
SITE = HERE / "site"
CANNOT_JUDGE = "cannot-judge-unknown-operator"


def _entries(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _write(entries: dict[str, bytes], target: Path) -> None:
    # Rebuild datapackage.json over the changed files, as a careful forger would.
    metadata = json.loads(entries[DATAPACKAGE_PATH])
    members = [Member(n, data=d) for n, d in entries.items() if n not in (DATAPACKAGE_PATH, DATAPACKAGE_DIGEST_PATH)]
    write_package(target, members, {k: v for k, v in metadata.items() if isinstance(v, str)})


def _resign(built: BuiltPackage, operator: OperatorKey, edit: Callable[[dict[str, Any]], None]) -> BuiltPackage:
    """Change the manifest before sealing and sign it again: a package whose claims are wrong but authentic."""
    entries = _entries(built.path)
    manifest = json.loads(entries[MANIFEST_PATH])
    edit(manifest)
    body = canonical_json(manifest)
    entries[MANIFEST_PATH] = body
    entries[SIGNATURE_PATH] = operator.sign_manifest(body)
    _write(entries, built.path)
    return BuiltPackage(built.evidence_id, sha256(body), built.path)


def _tamper(source: Path, target: Path, name: str, change: Callable[[bytes], bytes]) -> None:
    entries = _entries(source)
    entries[name] = change(entries[name])
    _write(entries, target)


def _alter_first_path_hash(data: bytes) -> bytes:
    proof = json.loads(data)
    first = proof["inclusion_path"][0]
    proof["inclusion_path"][0] = ("1" if first[0] != "1" else "2") + first[1:]
    return canonical_json(proof)


def capture_site(workspace: Workspace) -> BuiltPackage:
    """A real capture of samples/site: served on loopback over HTTPS, captured by Chromium with the
    pre-capture clean check measured against a development TSA."""
    runner = BrowserRunner()
    try:
        with serve_site(SITE, workspace.root / "site-tls") as site:
            # Over HTTPS with the site's own CA trusted for this capture only, so S3 shows a verified TLS chain.
            return runner.capture(site.https_url + "index.html", workspace.packages, workspace.operator,
                                  extra_ca_pem=site.ca_pem, note="Tiezheng sample: the sample shop page")
    finally:
        runner.close()


def build(workspace: Workspace, rpc_url: str) -> list[dict[str, Any]]:
    site = [(p.name, p.read_bytes()) for p in sorted(SITE.iterdir()) if p.is_file()]
    captured = capture_site(workspace)
    good = workspace.upload(site)
    own = _resign(workspace.upload([("listing.html", site[0][1])]), workspace.operator,
                  lambda m: m["requester"].update(tenant=m["operator"]["name"]))
    late = _resign(workspace.upload([("listing.html", site[0][1])]), workspace.operator,
                   lambda m: m["capture"].update(ended_at="2099-01-01T00:00:00.000000Z"))
    stale = _resign(workspace.upload([("listing.html", site[0][1])]), workspace.operator,
                    lambda m: m["capture"].update(started_at="2020-01-01T00:00:00.000000Z",
                                                  ended_at="2020-01-01T00:00:01.000000Z"))
    seal_batch(workspace, [good, captured, own, late, stale], rpc_url, batch_id="samples")

    samples: list[dict[str, Any]] = []

    def add(name: str, path: Path, verdict: str, check: str | None, how: str) -> None:
        target = OUT / f"{name}.wacz"
        if path != target:
            shutil.copyfile(path, target)
        samples.append({"file": f"packages/{target.name}", "verdict": verdict, "fails": check, "how": how})

    add("good-upload", good.path, "verified (offline)", None, "the sample site's files, uploaded and sealed")
    add("good-capture", captured.path, "verified (offline)", None,
        "the sample site served on loopback over HTTPS, captured by Chromium in a clean room (stock hosts "
        "file and resolver, neutral host name) and sealed")
    add("bad-S2-requester-is-operator", own.path, "failed", "S2",
        "manifest names the operator as its own requester (signed and sealed as such)")
    add("bad-T1-capture-after-timestamp", late.path, "failed", "T1",
        "manifest says the capture ended in 2099, after the TSA time (signed and sealed as such)")
    add("bad-T2-prechain-gap", stale.path, "failed", "T2",
        "manifest says the capture ended in 2020, years before anchoring (signed and sealed as such)")
    tampered = [
        ("bad-S1-forged-signature", SIGNATURE_PATH, lambda d: d.replace(b'"signature":"', b'"signature":"AA', 1),
         "S1", "manifest.sig altered"),
        ("bad-H1-artifact-changed", "evidence/index.html", lambda d: d.replace(b"199.00", b"99.00"), "H1",
         "a price in the listing edited after sealing"),
        ("bad-H2-manifest-edited", MANIFEST_PATH, lambda d: d.replace(b"acme-rights", b"acme-rightz"), "H2",
         "requester edited in the manifest (so its signature fails too)"),
        ("bad-H3-inclusion-path", "proof/proof.json", _alter_first_path_hash, "H3",
         "first hash of the inclusion path altered"),
        ("bad-H4-timestamp-token", "proof/timestamp-0.tsr", lambda d: flip_byte(d, len(d) - 3), "H4",
         "a byte of the TSA signature flipped"),
        ("bad-H5-anchor-block", "proof/anchor.json", lambda d: d.replace(b'"block_number":', b'"block_number":1', 1),
         "H5", "anchor block number altered"),
    ]
    for name, member, change, check, how in tampered:
        _tamper(good.path, OUT / f"{name}.wacz", member, change)
        add(name, OUT / f"{name}.wacz", "failed", check, how)
    extra = _entries(good.path)
    extra["evidence/planted.png"] = b"\x89PNG planted after sealing"
    _write(extra, OUT / "bad-P3-planted-file.wacz")
    add("bad-P3-planted-file", OUT / "bad-P3-planted-file.wacz", "failed", "P3", "a file added after sealing")
    samples.append(build_cannot_judge(workspace.root / "stranger", rpc_url))
    return samples


def build_cannot_judge(root: Path, rpc_url: str) -> dict[str, Any]:
    """A genuine package from another operator, with its own key and development TSA, that trust.toml
    does not name: nothing in it is wrong, but the verifier lacks the trust to judge it."""
    stranger = make_workspace(root)
    site = [(p.name, p.read_bytes()) for p in sorted(SITE.iterdir()) if p.is_file()]
    built = stranger.upload(site[:1])
    seal_batch(stranger, [built], rpc_url, batch_id="stranger")
    target = OUT / f"{CANNOT_JUDGE}.wacz"
    shutil.copyfile(built.path, target)
    return {"file": f"packages/{target.name}", "verdict": "cannot judge", "fails": None,
            "how": "genuine, but signed by an operator key and stamped by a TSA that trust.toml does not name"}


def add_cannot_judge_only() -> None:
    """Add (or remake) only the cannot-judge sample, leaving every other sample untouched."""
    with (tempfile.TemporaryDirectory(prefix="tiezheng-samples-") as folder,
          Devnet(Path(folder) / "chain-data", die_with_parent=True) as devnet):
        sample = build_cannot_judge(Path(folder) / "stranger", devnet.rpc_url)
    samples = [s for s in json.loads((HERE / "expected.json").read_text()) if s["file"] != sample["file"]]
    (HERE / "expected.json").write_text(json.dumps([*samples, sample], indent=2) + "\n")


def _machine_facts() -> list[bytes]:
    """What of the build machine must not be in a published package: its names, resolvers and folders."""
    facts = {socket.gethostname(), socket.getfqdn(), str(Path.home()) + "/", str(HERE.parent) + "/"}
    try:
        resolv = Path("/etc/resolv.conf").read_text()
    except OSError:
        resolv = ""
    facts |= {fields[1] for fields in map(str.split, resolv.splitlines())
              if len(fields) > 1 and fields[0] == "nameserver"}
    return sorted({f.encode() for f in facts} - {b"localhost", b"127.0.0.1", b"/"})


def _member_texts(path: Path) -> dict[str, bytes]:
    texts = {}
    for name, data in _entries(path).items():
        texts[name] = gzip.decompress(data) if name.endswith(".gz") else data
    return texts


def machine_facts_in(paths: list[Path]) -> list[str]:
    """Where the packages record this machine: its host names, resolver addresses, home or checkout folder."""
    facts, found_in = _machine_facts(), []
    for path in paths:
        for name, data in _member_texts(path).items():
            for fact in facts:
                # A short host name ("vm") would match inside any compressed or encoded byte run, so it
                # is looked for as a whole JSON string or host-name token, the way a record would hold it.
                found = (re.search(rb'["/@ \t]' + re.escape(fact) + rb'["\s:/.]', data) if len(fact) < 8
                         else fact in data)
                if found:
                    found_in.append(f"{path.name}: {name} records the build machine ({fact.decode()!r})")
    return found_in


def main() -> None:
    if sys.argv[1:] == ["--only-cannot-judge"]:
        add_cannot_judge_only()
        return
    if MARKER not in os.environ:
        reason = why_not()
        if reason:
            sys.exit(f"build_samples: {reason}")
        done = run_in_clean_room(["-m", "samples.build_samples", *sys.argv[1:]])
        if done.returncode:
            sys.exit(done.returncode)
        leaks = machine_facts_in(sorted(OUT.glob("*.wacz")))
        if leaks:
            sys.exit("build_samples: the samples are not fit to publish:\n" + "\n".join(leaks))
        return
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    with tempfile.TemporaryDirectory(prefix="tiezheng-samples-") as folder:
        workspace = make_workspace(Path(folder))
        with Devnet(Path(folder) / "chain-data", die_with_parent=True) as devnet:
            samples = build(workspace, devnet.rpc_url)
        shutil.copyfile(workspace.trust_file(), HERE / "trust.toml")
    (HERE / "expected.json").write_text(json.dumps(samples, indent=2) + "\n")
    for sample in samples:
        print(f"{sample['file']:<50} {sample['verdict']:<20} {sample['fails'] or ''}")


if __name__ == "__main__":
    main()
