"""``tiezheng-verify timeline``: real sealed packages linked by ``previous``, and forged timelines.

Each package is sealed in its own batch, a second apart: the development TSA's gen_time has whole
seconds, and TL2 needs the times to increase.
"""

from __future__ import annotations

import io
import json
import shutil
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from evidence.upload import BuiltPackage
from tests.chain_factory import with_manifest_fields
from tests.factory import Workspace, make_workspace, seal_batch
from tests.tamper import flip_byte, replace_sealed_entry
from verifier.capture_format import CHANGE_PATH
from verifier.change_record import ChangeRecord
from verifier.cli import main
from verifier.errors import InvalidPackage
from verifier.timeline import TimelineReport, verify_timeline
from verifier.trust import default_trust, load_trust
from verifier.verdict import Status

#: More than the TSA's one-second resolution.
NEXT_SECOND = 1.05


def capture(workspace: Workspace, label: str, previous: BuiltPackage | None = None, *,
            change: ChangeRecord | None = None, **fields: str) -> BuiltPackage:
    built = workspace.upload(((f"{label}.txt", f"capture {label}\n".encode()),))
    if previous is not None:
        fields["previous"] = previous.fingerprint.hex()
    files = {CHANGE_PATH: change.canonical_bytes()} if change is not None else None
    return with_manifest_fields(built, workspace.operator, files=files, **fields) if fields or files else built


def change(classification: str, previous: BuiltPackage, **body: object) -> ChangeRecord:
    return ChangeRecord(classification, previous.fingerprint, previous.evidence_id, body=body)


def seal_apart(workspace: Workspace, rpc_url: str, *batches: Sequence[BuiltPackage]) -> None:
    for number, batch in enumerate(batches):
        if number:
            time.sleep(NEXT_SECOND)
        seal_batch(workspace, batch, rpc_url, batch_id=f"batch-{number}")


@dataclass(frozen=True)
class Chain:
    workspace: Workspace
    trust: Path
    packages: tuple[BuiltPackage, ...]

    def folder(self, root: Path, name: str, *, without: Sequence[int] = ()) -> Path:
        """A folder holding copies of the chain's packages, less those at ``without``."""
        target = root / name
        target.mkdir()
        for index, package in enumerate(self.packages):
            if index not in without:
                shutil.copy(package.path, target / package.path.name)
        return target

    def verify(self, source: Path) -> TimelineReport:
        return verify_timeline(source, default_trust().merged(load_trust(self.trust)))


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory, rpc_url: str) -> Chain:
    """Three captures of one watch, a -> b -> c, each sealed a second after the one before."""
    workspace = make_workspace(tmp_path_factory.mktemp("timeline"))
    a = capture(workspace, "a")
    b = capture(workspace, "b", a)
    c = capture(workspace, "c", b)
    seal_apart(workspace, rpc_url, [a], [b], [c])
    return Chain(workspace, workspace.trust_file(), (a, b, c))


def run_json(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict]:  # type: ignore[type-arg]
    code = main(["timeline", *args, "--json"])
    return code, json.loads(capsys.readouterr().out)


def statuses(report: TimelineReport) -> dict[str, Status]:
    return {check.id: check.status for check in report.checks}


def test_an_intact_timeline_verifies(chain: Chain, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = chain.folder(tmp_path, "all")
    code, body = run_json(str(folder), "--trust", str(chain.trust), capsys=capsys)
    assert code == 0, body["checks"]
    assert body["verified"] is True and body["verdict"] == "verified (offline)"
    assert [c["id"] for c in body["checks"]] == ["TL1", "TL2"]
    assert [c["status"] for c in body["checks"]] == ["pass", "pass"]
    assert len(body["packages"]) == 3 and all(p["verified"] for p in body["packages"])
    order = [link["evidence_id"] for link in body["chains"][0]]
    assert order == [p.evidence_id for p in chain.packages]
    assert body["checks"][0]["basis_zh"] and body["checks"][1]["reason_zh"]


def test_the_terminal_report(chain: Chain, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = chain.folder(tmp_path, "all")
    assert main(["timeline", str(folder), "--trust", str(chain.trust), "--lang", "both"]) == 0
    out = capsys.readouterr().out
    assert "TL1" in out and "取证链完整" in out and "chain intact" in out
    assert out.count("verified (offline)") >= 3


def test_a_gap(chain: Chain, tmp_path: Path) -> None:
    report = chain.verify(chain.folder(tmp_path, "gap", without=[1]))
    assert statuses(report) == {"TL1": Status.FAIL, "TL2": Status.SKIP}
    assert "gap:" in report.checks[0].reason and chain.packages[2].evidence_id in report.checks[0].reason
    assert "缺口" in report.checks[0].reason_zh
    assert report.exit_code == 1


def test_a_missing_first_capture(chain: Chain, tmp_path: Path) -> None:
    report = chain.verify(chain.folder(tmp_path, "headless", without=[0]))
    assert report.checks[0].status is Status.FAIL
    assert "no first capture" in report.checks[0].reason and report.exit_code == 1


def test_a_fork(chain: Chain, tmp_path: Path, rpc_url: str) -> None:
    folder = chain.folder(tmp_path, "fork")
    rival = capture(chain.workspace, "rival", chain.packages[0])
    seal_batch(chain.workspace, [rival], rpc_url, batch_id="rival")
    shutil.copy(rival.path, folder / rival.path.name)
    report = chain.verify(folder)
    assert report.checks[0].status is Status.FAIL
    assert report.checks[0].reason.startswith("fork:") and rival.evidence_id in report.checks[0].reason
    assert report.exit_code == 1


def test_an_unrelated_package_beside_a_chain_stands_alone(chain: Chain, tmp_path: Path, rpc_url: str) -> None:
    """An unrelated package beside a chain links to nothing and nothing links to it: it stands alone,
    and TL1 says so; the chain is still checked whole."""
    folder = chain.folder(tmp_path, "two")
    other = capture(chain.workspace, "unrelated")
    seal_batch(chain.workspace, [other], rpc_url, batch_id="unrelated")
    shutil.copy(other.path, folder / other.path.name)
    report = chain.verify(folder)
    assert report.checks[0].status is Status.PASS and "1 stand-alone item" in report.checks[0].reason
    assert len(report.chains) == 1 and len(report.chains[0]) == 3


def test_reordered_times(tmp_path: Path, rpc_url: str) -> None:
    """y names x as its previous, but y was sealed a second before x: the TSA contradicts the chain."""
    workspace = make_workspace(tmp_path / "ws")
    x = capture(workspace, "x")
    y = capture(workspace, "y", x)
    seal_apart(workspace, rpc_url, [y], [x])
    report = verify_timeline(workspace.packages, default_trust().merged(load_trust(workspace.trust_file())))
    assert all(link.report.verified for link in report.links)
    assert statuses(report) == {"TL1": Status.PASS, "TL2": Status.FAIL}
    assert "earlier than" in report.checks[1].reason and y.evidence_id in report.checks[1].reason
    assert report.exit_code == 1


def test_one_batch_warns_and_watches_are_separate_chains(tmp_path: Path, rpc_url: str) -> None:
    """Two watches; each watch's two captures sealed in one batch (the same TSA time)."""
    workspace = make_workspace(tmp_path / "ws")
    first = [capture(workspace, f"{w}-1", watch=w) for w in ("w1", "w2")]
    second = [capture(workspace, f"{w}-2", prev, watch=w) for w, prev in zip(("w1", "w2"), first, strict=True)]
    seal_apart(workspace, rpc_url, [*first, *second])
    report = verify_timeline(workspace.packages, default_trust().merged(load_trust(workspace.trust_file())))
    assert statuses(report) == {"TL1": Status.PASS, "TL2": Status.WARN}, report.checks
    assert report.checks[0].reason.startswith("2 watches")
    assert len(report.chains) == 2 and report.exit_code == 0


def test_a_matter_beside_its_watch_holds_stand_alone_items_but_no_orphan_run(tmp_path: Path, rpc_url: str) -> None:
    """A matter's own upload stands beside its watch's runs; a run that names a missing one still breaks TL1."""
    workspace = make_workspace(tmp_path / "ws")
    first = capture(workspace, "run-1", watch="w1")
    second = capture(workspace, "run-2", first, watch="w1")
    upload = workspace.upload((("proof-of-right.txt", b"registration certificate\n"),))
    seal_apart(workspace, rpc_url, [first], [second, upload])
    trust = default_trust().merged(load_trust(workspace.trust_file()))
    report = verify_timeline(workspace.packages, trust)
    assert statuses(report) == {"TL1": Status.PASS, "TL2": Status.PASS}, report.checks
    assert "1 stand-alone item" in report.checks[0].reason and report.exit_code == 0
    assert len(report.chains) == 1 and len(report.chains[0]) == 2

    # A run of the watch with its first capture taken away is a gap, whatever stands beside it.
    first.path.unlink()
    report = verify_timeline(workspace.packages, trust)
    assert report.checks[0].status is Status.FAIL and "gap" in report.checks[0].reason


def test_a_tampered_member(chain: Chain, tmp_path: Path) -> None:
    folder = chain.folder(tmp_path, "tampered", without=[1])
    middle = chain.packages[1].path
    replace_sealed_entry(middle, folder / middle.name, "evidence/b.txt", flip_byte)
    report = chain.verify(folder)
    assert statuses(report) == {"TL1": Status.PASS, "TL2": Status.PASS}
    assert report.links[[link.file for link in report.links].index(middle.name)].report.failed_ids == ["H1"]
    assert report.exit_code == 1 and report.verdict.value == "failed"


def test_a_zip_of_packages(chain: Chain, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bundle = tmp_path / "timeline.zip"
    with zipfile.ZipFile(bundle, "w") as archive:
        archive.writestr("timeline/", b"")
        for package in chain.packages:
            archive.write(package.path, f"timeline/{package.path.name}")
        archive.writestr("timeline/README.txt", b"three captures")
    code, body = run_json(str(bundle), "--trust", str(chain.trust), capsys=capsys)
    assert code == 0 and body["ignored"] == ["timeline/README.txt"]


@pytest.mark.parametrize("forge", ["prepended", "traversal"])
def test_an_unsafe_zip_is_unusable(chain: Chain, tmp_path: Path, forge: str,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    bundle = tmp_path / "timeline.zip"
    with zipfile.ZipFile(bundle, "w") as archive:
        for package in chain.packages:
            name = f"../{package.path.name}" if forge == "traversal" else package.path.name
            archive.write(package.path, name)
    if forge == "prepended":
        bundle.write_bytes(b"MZ" + bundle.read_bytes())
    code, body = run_json(str(bundle), "--trust", str(chain.trust), capsys=capsys)
    assert code == 2 and body["verdict"] == "unusable" and body["error"]


def test_an_unusable_member(chain: Chain, tmp_path: Path) -> None:
    folder = chain.folder(tmp_path, "junk")
    (folder / "junk.wacz").write_bytes(b"not a zip")
    report = chain.verify(folder)
    assert statuses(report) == {"TL1": Status.SKIP, "TL2": Status.SKIP}
    assert "junk.wacz" in report.checks[0].reason and report.exit_code == 2


def test_an_empty_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, body = run_json(str(tmp_path), capsys=capsys)
    assert code == 2 and "no evidence package" in body["error"]


def test_without_the_trust_it_cannot_judge(chain: Chain, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = chain.folder(tmp_path, "all")
    code, body = run_json(str(folder), "--trust", str(chain.workspace.trust_file(tsa=False)), capsys=capsys)
    assert code == 3 and body["verdict"] == "cannot judge"


def test_a_malformed_previous(tmp_path: Path, rpc_url: str) -> None:
    """A previous that is not a fingerprint breaks the chain (or, where the manifest parser refuses it,
    makes that package unusable): never a pass."""
    workspace = make_workspace(tmp_path / "ws")
    first = capture(workspace, "first")
    # The manifest reader types `previous` (verifier/package.py): it refuses this one, so no such
    # package can be built through it, and a package carrying one is unusable, never a pass.
    with pytest.raises(InvalidPackage, match="previous must be a fingerprint"):
        with_manifest_fields(capture(workspace, "odd"), workspace.operator, previous=first.fingerprint.hex().upper())


def test_a_watch_timeline_and_its_document(tmp_path: Path, rpc_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A first capture, a price change, a removal, a capture still removed, a reappearance: sealed, verified,
    and written as the timeline document."""
    workspace = make_workspace(tmp_path / "ws")
    first = capture(workspace, "first", subject="shop.example/store/8812")
    price = {"name": "price", "css_selector": ".price", "before": "¥ 99.00", "after": "¥ 79.00", "changed": True}
    changed = capture(workspace, "changed", first, change=change("changed", first, signals=["key_fields"],
                                                                     key_fields=[price]))
    gone = {"removed": {"before": None, "after": {"reason": "notice", "phrase": "该商品已下架"}}}
    removed = capture(workspace, "removed", changed, change=change("removed", changed, **gone))
    still = {"removed": {"before": {"reason": "notice", "phrase": "该商品已下架"},
                         "after": {"reason": "http-404", "phrase": None}}}
    still_removed = capture(workspace, "still", removed, change=change("removed", removed, **still))
    back = capture(workspace, "back", still_removed, change=change("reappeared", still_removed))
    seal_apart(workspace, rpc_url, [first], [changed], [removed], [still_removed], [back])
    html, pdf = tmp_path / "timeline.html", tmp_path / "timeline.pdf"
    code = main(["timeline", str(workspace.packages), "--trust", str(workspace.trust_file()), "--html", str(html),
                 "--pdf", str(pdf), "--title", "Matter 17"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "timeline HTML written" in out and pdf.read_bytes().startswith(b"%PDF")
    page = html.read_text()
    events = ["Capture<br>", "Change<br>", "Removal<br>", "Capture<br>", "Reappearance<br>"]
    positions, start = [], 0
    for event in events:
        start = page.index(event, start) + 1
        positions.append(start)
    assert "changed: price: ¥ 99.00 → ¥ 79.00" in page and "removed (notice: 该商品已下架)" in page
    assert "Timeline verification: verified (offline)" in page and "subject: shop.example/store/8812" in page
    assert f'href="{back.path.name}"' in page


def test_a_change_record_of_another_capture_breaks_the_chain(tmp_path: Path, rpc_url: str) -> None:
    workspace = make_workspace(tmp_path / "ws")
    first = capture(workspace, "first")
    stranger = capture(workspace, "stranger")
    second = capture(workspace, "second", first, change=change("unchanged", stranger))
    stranger.path.unlink()
    seal_apart(workspace, rpc_url, [first], [second])
    report = verify_timeline(workspace.packages, default_trust().merged(load_trust(workspace.trust_file())))
    assert report.checks[0].status is Status.FAIL
    assert "its change record compares it with" in report.checks[0].reason and report.exit_code == 1


def test_thumbnails_come_from_screenshots_that_h1_showed_sealed(tmp_path: Path) -> None:
    from PIL import Image

    from tests.chain_factory import capture_files, capture_like_package
    from tests.evidence.test_change import listing, screenshot

    workspace = make_workspace(tmp_path / "ws")
    built = capture_like_package(workspace.packages, workspace.operator, capture_files(screenshot(), listing()))
    replace_sealed_entry(built.path, workspace.packages / "forged.wacz", "evidence/screenshot.png",
                         lambda png: screenshot(picture="other"))
    report = verify_timeline(workspace.packages, default_trust(), thumbnails=True)
    by_file = {link.file: link for link in report.links}
    with Image.open(io.BytesIO(by_file[built.path.name].thumbnail_png or b"")) as thumb:
        assert thumb.format == "PNG" and thumb.width == 240
    assert "H1" in by_file["forged.wacz"].report.failed_ids
    assert by_file["forged.wacz"].thumbnail_png is None


def test_hostile_file_names_reach_the_terminal_inert(chain: Chain, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    folder = chain.folder(tmp_path, "hostile", without=[0])
    shutil.copy(chain.packages[0].path, folder / "[bold]x\u202egpj.wacz")
    assert main(["timeline", str(folder), "--trust", str(chain.trust)]) == 0
    out = capsys.readouterr().out
    assert "\u202e" not in out and "[bold]x" in out
