"""S4 in both verifiers: captures made in a clean room, and every kind of record item the page must judge.

A capture of the sample site runs in a clean room (samples/clean_room.py: a private mount and UTS
namespace with a stock hosts file and resolver and a neutral host name), once as is, where S4 must
pass, and once with a hosts entry planted for the target's kind of name, where S4 must warn and name
it. Both go through `tiezheng-verify --json` and the page; then the clean package's record is edited
item by item (clock, proxies, browser, hosts text, resolver, egress, malformed record, log order), and
the two verifiers must still give S4, and every other check, the same status. The page's hosts-file
reader is also run against the CLI's over every address spelling and stock name (node, no browser), and
the committed good-capture sample is checked to record the clean room, not the machine that built it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from samples.build_samples import machine_facts_in
from samples.clean_room import HOSTNAME, STOCK_HOSTS, STOCK_RESOLV, run_in_clean_room, why_not
from tests.verifier.test_browser_parity import cli_report, mismatches, page
from tests.verifier.test_tamper_matrix import DATAPACKAGE_PATH, rebuild
from verifier.hosts_file import non_default_entries, parse_hosts

__all__ = ["page"]  # a fixture, imported for pytest

ROOT = Path(__file__).resolve().parents[2]
RECORD = "evidence/environment-check.json"
CAPTURE_LOG = "evidence/capture-log.jsonl"
PLANTED = "203.0.113.7\tshop.example.com www.shop.example.com\n"
#: Runs in the clean room: capture the sample site as the sample builder does, seal it, print the paths.
CAPTURE = """
import json, sys
from pathlib import Path
from samples.build_samples import capture_site
from tests.factory import make_workspace, seal_batch
root, rpc_url = sys.argv[1:3]
workspace = make_workspace(Path(root))
captured = capture_site(workspace)
seal_batch(workspace, [captured], rpc_url)
print(json.dumps({"package": str(captured.path), "trust": str(workspace.trust_file())}))
"""

Edit = Callable[[dict[str, Any]], None]


def _clean_room_capture(hosts: str, root: Path, rpc_url: str) -> tuple[Path, Path]:
    reason = why_not()
    if reason:
        pytest.skip(reason)
    done = run_in_clean_room(["-c", CAPTURE, str(root), rpc_url], hosts=hosts, capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    paths = json.loads(done.stdout.strip().splitlines()[-1])
    return Path(paths["package"]), Path(paths["trust"])


@pytest.fixture(scope="module")
def clean_capture(rpc_url: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return _clean_room_capture(STOCK_HOSTS, tmp_path_factory.mktemp("clean"), rpc_url)


def test_clean_room_capture_passes_s4_in_both(page: Any, clean_capture: tuple[Path, Path]) -> None:
    package, trust = clean_capture
    cli, report = cli_report(package, trust), page.verify(package, trust)
    assert cli[1]["S4"] == "pass" and report.statuses["S4"] == "pass", report.reasons["S4"]
    assert "hosts file default" in report.reasons["S4"] and "resolver 127.0.0.1" in report.reasons["S4"]
    assert report.verdict == cli[0] == "verified (offline)"
    assert mismatches("clean room", cli, report) == []


def test_planted_hosts_entry_warns_in_both(page: Any, rpc_url: str, tmp_path: Path) -> None:
    package, trust = _clean_room_capture(STOCK_HOSTS + PLANTED, tmp_path, rpc_url)
    cli, report = cli_report(package, trust), page.verify(package, trust)
    assert cli[1]["S4"] == "warn" and report.statuses["S4"] == "warn", report.reasons["S4"]
    assert ("hosts file has 1 non-default entry: 203.0.113.7 shop.example.com www.shop.example.com"
            in report.reasons["S4"])
    assert mismatches("planted hosts entry", cli, report) == []


def _set(path: str, value: Any) -> Edit:
    *parents, last = path.split(".")

    def edit(record: dict[str, Any]) -> None:
        node = record
        for key in parents:
            node = node[key]
        node[last] = value
    return edit


def _drop(path: str) -> Edit:
    *parents, last = path.split(".")

    def edit(record: dict[str, Any]) -> None:
        node = record
        for key in parents:
            node = node[key]
        del node[last]
    return edit


def _hosts_text(text: str, *, rehash: bool) -> Edit:
    def edit(record: dict[str, Any]) -> None:
        record["hosts_file"]["text"] = text
        if rehash:
            record["hosts_file"]["sha256"] = hashlib.sha256(text.encode()).hexdigest()
    return edit


#: (name, edit of the record, S4 status both verifiers must give).
RECORD_CASES: list[tuple[str, Edit, str]] = [
    ("clock 5 s off the TSA", _set("clock.tsa.offset_seconds", 5.0), "warn"),
    ("clock 2.5 s off, within the uncertainty", lambda r: r["clock"]["tsa"].update(offset_seconds=-2.5,
                                                                                  uncertainty_seconds=1.0), "pass"),
    ("clock offset a string", _set("clock.tsa.offset_seconds", "0.1"), "warn"),
    ("clock uncertainty a boolean", _set("clock.tsa.uncertainty_seconds", True), "pass"),
    ("TSA not measured", lambda r: r["clock"].update(tsa={"status": "failed", "reason": "timeout"}), "warn"),
    ("NTP configured, not answering", _set("clock.ntp", {"status": "unreachable", "server": "ntp.example"}), "warn"),
    ("NTP measured within limits", _set("clock.ntp", {"status": "measured", "offset_seconds": 0.01,
                                                      "uncertainty_seconds": 0.02}), "pass"),
    ("proxy variable in the capture's environment",
     _set("proxy.environment", [{"name": "HTTPS_PROXY", "value": "http://10.20.30.40:3128"}]), "warn"),
    ("system proxy", _set("proxy.system.variables", [{"name": "http_proxy", "value": "http://10.0.0.1:3128"}]),
     "warn"),
    ("proxy environment not recorded", _drop("proxy.environment"), "warn"),
    ("an extension installed", _set("browser.extensions_installed", ["abcdefghijklmnop"]), "warn"),
    ("extensions not turned off", _set("browser.extensions_disabled_by_flag", False), "warn"),
    ("extension targets not recorded", _drop("browser.extension_targets"), "warn"),
    ("another browser binary", _set("browser.sha256", "0" * 64), "warn"),
    ("browser hash not recorded", _drop("browser.sha256"), "warn"),
    ("hosts entry the tool did not list", _hosts_text(STOCK_HOSTS + PLANTED, rehash=True), "warn"),
    ("hosts text that does not hash to the record", _hosts_text(STOCK_HOSTS + "# edited\n", rehash=False), "warn"),
    ("hosts: localhost off loopback", _hosts_text("10.1.2.3 localhost\n", rehash=True), "warn"),
    ("hosts: stock ip6 names, scoped and long forms", _hosts_text(
        "127.0.0.1 localhost\n0:0:0:0:0:0:0:1%lo ip6-localhost\nfe00::0 ip6-localnet\nFF02::1 IP6-ALLNODES\n"
        "127.0.1.1 tiezheng-sample\n", rehash=True), "pass"),
    ("hosts: leading zeros are not an address", _hosts_text("127.000.000.001 localhost\n", rehash=True), "warn"),
    ("hosts file unreadable", _set("hosts_file", {"status": "unreadable", "reason": "permission denied"}), "warn"),
    ("hosts count beyond the list, no text", lambda r: r["hosts_file"].update(non_default_count=2, text=None),
     "warn"),
    ("resolver unread", _set("resolver.status", "unreadable"), "warn"),
    ("no DNS server recorded", lambda r: r["resolver"].update(nameservers=[], dns_servers_used=[]), "warn"),
    ("egress unknown", _set("egress", {"status": "unknown", "reason": "no route"}), "warn"),
    ("record for another evidence id", _set("evidence_id", "tz-20200101T000000-000000000000"), "fail"),
    ("record in another format", _set("format", "tiezheng-environment-check/0"), "fail"),
]


def _variant(entries: dict[str, bytes], metadata: dict[str, Any], target: Path,
             change: Callable[[dict[str, bytes]], None]) -> Path:
    changed = dict(entries)
    change(changed)
    return rebuild(changed, metadata, target)


def _record_edit(edit: Edit) -> Callable[[dict[str, bytes]], None]:
    def change(entries: dict[str, bytes]) -> None:
        record = json.loads(entries[RECORD])
        edit(record)
        entries[RECORD] = json.dumps(record).encode()
    return change


def test_every_record_item_is_judged_alike(page: Any, clean_capture: tuple[Path, Path], tmp_path: Path) -> None:
    package, trust = clean_capture
    with zipfile.ZipFile(package) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    metadata = json.loads(entries[DATAPACKAGE_PATH])
    whole: list[tuple[str, Callable[[dict[str, bytes]], None], str]] = [
        (name, _record_edit(edit), status) for name, edit, status in RECORD_CASES]
    whole += [
        ("record not JSON", lambda e: e.update({RECORD: b"{not json"}), "fail"),
        ("record a list", lambda e: e.update({RECORD: b"[]"}), "fail"),
        ("record listed but missing", lambda e: e.pop(RECORD), "fail"),
        ("record not the first step of the log",
         lambda e: e.update({CAPTURE_LOG: e[CAPTURE_LOG].replace(b'"step":"environment-check"',
                                                                 b'"step":"environment-later"', 1)}), "warn"),
    ]
    problems: list[str] = []
    for number, (name, change, status) in enumerate(whole):
        path = _variant(entries, metadata, tmp_path / f"env{number}.wacz", change)
        cli, report = cli_report(path, trust), page.verify(path, trust)
        problems += mismatches(f"record: {name}", cli, report)
        if cli[1]["S4"] != status:
            problems.append(f"record: {name}: S4 is {cli[1]['S4']}, expected {status}")
    assert problems == [], "\n".join(problems)


def test_committed_capture_sample_records_a_clean_room_not_its_build_machine(page: Any) -> None:
    """samples/packages/good-capture.wacz was captured in the clean room: S4 passes in both verifiers, and
    nothing of the machine that built it (or of this one) is in it."""
    sample, trust = ROOT / "samples" / "packages" / "good-capture.wacz", ROOT / "samples" / "trust.toml"
    with zipfile.ZipFile(sample) as archive:
        record = json.loads(archive.read(RECORD))
        tools = json.loads(archive.read("evidence/manifest.json"))["capture"]["tools"]
    assert record["host"]["name"] == HOSTNAME and record["hosts_file"]["own_names"] == [HOSTNAME]
    assert record["hosts_file"]["text"] == STOCK_HOSTS and record["hosts_file"]["non_default"] == []
    assert record["resolver"]["nameservers"] == STOCK_RESOLV.split()[1:]
    python = next(t for t in tools if t["name"] == "python")
    assert python["executable"].startswith("/srv/python/"), python
    assert machine_facts_in([sample]) == []
    cli, report = cli_report(sample, trust), page.verify(sample, trust)
    assert cli[1]["S4"] == report.statuses["S4"] == "pass", report.reasons["S4"]


#: Addresses and names a hosts line may carry: stock and not, every spelling an address parser must settle.
ADDRESSES = ["127.0.0.1", "127.1.2.3", "10.1.2.3", "127.000.000.001", "256.0.0.1", "127.0.0.1%lo", "::1",
             "0:0:0:0:0:0:0:1", "::0:1", "::1%eth0", "::ffff:127.0.0.1", "::127.0.0.1", "fe00::", "fe00::0",
             "FE00:0:0::0", "ff00::", "ff02::1", "ff02::2", "ff02::3", "ff02::01", "1:2:3:4:5:6:7::", "1::2::3",
             "12345::1", "localhost", ""]
NAMES = ["localhost", "LOCALHOST", "localhost.localdomain", "localhost6", "ip6-localhost", "ip6-loopback",
         "ip6-localnet", "ip6-mcastprefix", "ip6-allnodes", "ip6-allrouters", "ip6-allhosts", "tiezheng-sample",
         "shop.example.com"]


def _hosts_cases() -> list[tuple[str, list[str]]]:
    lines = [f"{address}\t{name}" for address in ADDRESSES for name in NAMES]
    lines += [f"{address} localhost {name}" for address in ("127.0.0.1", "::1") for name in NAMES]
    odd = ["127.0.0.1\u00a0localhost\u3000evil", "127.0.0.1 localhost#evil", "#127.0.0.1 evil",
           "  127.0.0.1   localhost  ", "127.0.0.1\x0bevil", "127.0.0.1 a\x1cb", "127.0.0.1 a\u2028b c",
           "127.0.0.1\ufefflocalhost x", "127.0.0.1 localhost\r\n10.0.0.1 evil", "127.0.0.1"]
    text = "\n".join(lines + odd) + "\n"
    return [(text, ["tiezheng-sample"]), (text, []), (text, ["shop.example.com", "localhost"])]


def test_page_reads_hosts_files_as_the_cli_does() -> None:
    """A differential test of the two hosts readers over every address spelling and stock name."""
    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    cases = _hosts_cases()
    done = subprocess.run(["node", str(ROOT / "verifier" / "browser" / "test" / "hosts_entries.mjs")],
                          input=json.dumps(cases), capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    page = json.loads(done.stdout)
    cli = [[e.record() for e in non_default_entries(text, own)] for text, own in cases]
    # The cases hold both kinds: stock entries the readers must let pass, and entries they must name.
    assert 100 < len(cli[0]) < len(parse_hosts(cases[0][0])) - 20
    for (_, own), theirs, ours in zip(cases, page, cli, strict=True):
        assert theirs == ours, own
