"""The in-browser verifier speaks both languages, as the printed reports do (issue 13, item 1).

For every sample package the page shows, for each of the 14 checks, a Chinese finding and a Chinese
legal basis beside the English ones; every time it shows is in the court format (Beijing time and
UTC); "what this proves" appears, in both languages, only for a verified package. The page's own
legal-basis table and time formatter are compared with verifier/legal_basis.py and
verifier/court_time.py, so the page and the certificate cite one law and write one clock.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.factory import make_workspace, seal_batch
from tests.verifier.browser_page import built_page, open_page
from tests.verifier.test_hostile_cli import CASES as HOSTILE_CASES
from tests.verifier.test_tamper_matrix import DATAPACKAGE_PATH, mutations, rebuild
from verifier.court_time import format_duration, format_seconds, format_time
from verifier.legal_basis import BASES, RULES, legal_basis, sources
from verifier.wording import FAILURE_MEANING_ZH

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"
SRC = ROOT / "verifier" / "browser" / "src"
CLI = str(Path(sys.executable).parent / "tiezheng-verify")
CHECK_IDS = ("S1", "S2", "S3", "S4", "P1", "P2", "P3", "H1", "H2", "H3", "H4", "H5", "T1", "T2")

#: The one court format: ``2026-12-01 23:14:42.123 (北京时间 UTC+8) / 2026-12-01 15:14:42.123 UTC``.
_CLOCK = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}"
COURT_TIME = re.compile(rf"{_CLOCK} \(北京时间 UTC\+8\) / {_CLOCK} UTC")
#: Anything that looks like a time of day on a date, in any notation (ISO 8601, a space, a "T").
ANY_TIME = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d")
QUOTED = re.compile(r'"[^"]*"')
HAN = re.compile(r"[\u4e00-\u9fff]")

#: Where the page's Chinese rightly differs from the CLI's: the page names its own controls.
PAGE_OWN_WORDS = {
    # The CLI says "可用 --rpc URL 核对"; the page has an RPC field instead of a flag.
    ("H5", "warn"): "可输入 RPC 地址在线核对",
}
#: S4 warns in a general sentence until the page's environment check (another module) records which
#: items were unclean, as the CLI's facts do (``clean_check.unclean_or_unknown``); then it counts them.
S4_GENERAL_WARN = "取证环境记录中有未显示为清洁或无法确认的项目"


def node_json(script: str) -> Any:
    """Run an ES module snippet against the page's sources with node and return what it prints as JSON."""
    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    result = subprocess.run(["node", "--input-type=module", "-e", script], capture_output=True, text=True,
                            timeout=60, cwd=SRC)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_page_legal_basis_table_is_pythons() -> None:
    page = node_json("""
        import { RULES, BASES, legalBasis, sources } from "./legalbasis.js";
        const ids = Object.keys(BASES);
        console.log(JSON.stringify({ RULES, BASES, text: Object.fromEntries(ids.map((id) =>
          [id, { zh: legalBasis(id, "zh"), en: legalBasis(id, "en"), sources: sources(id) }])) }));
    """)
    assert page["RULES"] == {key: {"zh": r.zh, "en": r.en, "source": r.source} for key, r in RULES.items()}
    assert page["BASES"] == {cid: [[c.rule, c.zh, c.en] for c in cites] for cid, cites in BASES.items()}
    assert list(page["text"]) == list(CHECK_IDS)
    for cid in CHECK_IDS:
        assert page["text"][cid] == {"zh": legal_basis(cid, "zh"), "en": legal_basis(cid, "en"),
                                     "sources": list(sources(cid))}, cid


def test_page_clock_is_pythons() -> None:
    """The page's formatter and court_time.py agree on times (ms, day and year edges) and durations."""
    moments = [datetime(2026, 12, 1, 15, 14, 42, 123000, tzinfo=UTC), datetime(2026, 12, 31, 16, 0, tzinfo=UTC),
               datetime(2024, 2, 28, 23, 59, 59, 999000, tzinfo=UTC), datetime(1970, 1, 1, tzinfo=UTC)]
    isos = [m.isoformat().replace("+00:00", "Z") for m in moments]
    durations = [0, 0.7, 0.131, 59.999, 60, 90, 3600, 3725.5, 86400, 90061, 2526 * 86400 + 15 * 3600, -2, -3600]
    page = node_json(f"""
        import {{ formatTime, formatDuration, formatSeconds }} from "./courttime.js";
        const isos = {json.dumps(isos)}, durations = {json.dumps(durations)};
        console.log(JSON.stringify({{ times: isos.map(formatTime), junk: formatTime("not a time"),
          durations: durations.map((d) => [formatDuration(d, "en"), formatDuration(d, "zh")]),
          seconds: [formatSeconds(300, "en"), formatSeconds(300, "zh"), formatSeconds(0.5, "en")] }}));
    """)
    assert page["times"] == [format_time(m) for m in moments]
    assert all(COURT_TIME.fullmatch(t) for t in page["times"])
    assert page["junk"] == format_time("not a time") == "not a time"
    assert page["durations"] == [[format_duration(timedelta(seconds=d)), format_duration(timedelta(seconds=d), "zh")]
                                 for d in durations]
    assert page["seconds"] == [format_seconds(300), format_seconds(300, "zh"), format_seconds(0.5)]


def cli_findings(package: Path, trust: Path) -> dict[str, tuple[str, str]]:
    result = subprocess.run([CLI, str(package), "--json", "--trust", str(trust)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode in (0, 1, 2, 3), result.stderr
    return {c["id"]: (c["status"], c["reason_zh"]) for c in json.loads(result.stdout)["checks"]}


def shown_rows(page: Any) -> list[dict[str, str]]:
    return list(page.page.eval_on_selector_all("tr[data-check]", """rows => rows.map(r => ({
        id: r.dataset.check, status: r.dataset.status,
        finding_zh: r.querySelector('.tz-finding .tz-zh')?.textContent ?? '',
        finding_en: r.querySelector('.tz-finding .tz-en')?.textContent ?? '',
        basis_zh: r.querySelector('.tz-basis .tz-zh')?.textContent ?? '',
        basis_en: r.querySelector('.tz-basis .tz-en')?.textContent ?? ''}))"""))


def untimed(text: str) -> list[str]:
    """Times shown in any other notation than the court format."""
    return ANY_TIME.findall(COURT_TIME.sub("", text))


@pytest.fixture(scope="module")
def page(chromium: Any) -> Any:
    return open_page(chromium, built_page().as_uri())


def test_every_sample_reads_in_both_languages(page: Any) -> None:
    trust = SAMPLES / "trust.toml"
    problems: list[str] = []
    for item in json.loads((SAMPLES / "expected.json").read_text()):
        case, package = item["file"], SAMPLES / item["file"]
        report = page.verify(package, trust)
        rows = shown_rows(page)
        assert [r["id"] for r in rows] == list(CHECK_IDS), case
        cli = cli_findings(package, trust)
        for row in rows:
            cid, status = row["id"], row["status"]
            if not HAN.search(row["finding_zh"]) or not row["finding_en"].strip():
                problems.append(f"{case} {cid}: finding zh={row['finding_zh']!r} en={row['finding_en']!r}")
            if row["basis_zh"] != legal_basis(cid, "zh") or row["basis_en"] != legal_basis(cid, "en"):
                problems.append(f"{case} {cid}: legal basis shown {row['basis_zh']!r} / {row['basis_en']!r}")
            # The same outcome in the same words as the CLI, except where the page names its own
            # controls or a missing trust item in Chinese words (the CLI quotes the English name).
            own = PAGE_OWN_WORDS.get((cid, status))
            cli_status, cli_zh = cli[cid]
            lacking = cli_zh.startswith("无法判断：")
            if (cid, status, cli_status, row["finding_zh"]) == ("S4", "warn", "warn", S4_GENERAL_WARN):
                continue
            if own is not None or lacking:
                if (own or "无法判断：") not in row["finding_zh"]:
                    problems.append(f"{case} {cid}: page {row['finding_zh']!r}")
            elif (status, row["finding_zh"]) != (cli_status, cli_zh):
                problems.append(f"{case} {cid}: page {status} {row['finding_zh']!r}, CLI {cli_status} {cli_zh!r}")
        text = page.page.inner_text("#tz-result")
        if untimed(text):
            problems.append(f"{case}: times not in the court format: {untimed(text)}")
        shown = page.page.query_selector("#tz-proves") is not None
        if shown != report.verdict.startswith("verified"):
            problems.append(f"{case}: verdict {report.verdict}, 'what this proves' shown: {shown}")
    assert problems == [], "\n".join(problems)


def test_verified_page_says_what_it_proves_in_both_languages(page: Any) -> None:
    report = page.verify(SAMPLES / "packages" / "good-capture.wacz", SAMPLES / "trust.toml")
    assert report.verdict == "verified (offline)", report
    assert "验证通过（离线） / verified (offline)" in page.page.inner_text("#tz-verdict")
    explain = page.page.eval_on_selector(".tz-explain", "p => [...p.children].map(c => c.lang)")
    assert explain == ["zh-CN", "en"], explain
    for block in ("#tz-proves", "#tz-does-not-prove"):
        items = page.page.eval_on_selector_all(
            f"{block} li", "items => items.map(li => [li.querySelector('.tz-zh')?.textContent ?? '', "
                           "li.querySelector('.tz-en')?.textContent ?? ''])")
        assert items and all(HAN.search(zh) and en.strip() for zh, en in items), (block, items)
    # Offline, the block time is the anchor's claim: the page proves the trusted time only, as the CLI.
    proves = page.page.inner_text("#tz-proves")
    assert "不晚于所示的可信时间戳时间已经存在" in proves and "block time" not in proves
    times = page.page.inner_text("#tz-result")
    assert COURT_TIME.search(times) and untimed(times) == []


def test_findings_language_switch(page: Any) -> None:
    """The reader may keep one language; `both` is the default and comes back."""
    page.verify(SAMPLES / "packages" / "good-upload.wacz", SAMPLES / "trust.toml")
    assert page.page.input_value("#tz-findings-lang") == "both"
    try:
        page.page.select_option("#tz-findings-lang", "zh")
        assert page.page.query_selector(".tz-finding .tz-en") is None
        assert len(page.page.query_selector_all(".tz-finding .tz-zh")) == len(CHECK_IDS)
        page.page.select_option("#tz-findings-lang", "en")
        assert page.page.query_selector(".tz-finding .tz-zh, .tz-basis .tz-zh, #tz-proves .tz-zh") is None
        assert len(page.page.query_selector_all(".tz-basis .tz-en")) == len(CHECK_IDS)
    finally:
        page.page.select_option("#tz-findings-lang", "both")
    assert len(page.page.query_selector_all(".tz-finding .tz-en")) == len(CHECK_IDS)


def test_package_strings_stay_inert_in_chinese(page: Any, tmp_path: Path) -> None:
    """A hostile operator name reaches the Chinese finding too, as visible text and codes, never as markup."""
    trust = SAMPLES / "trust.toml"
    for name, make in HOSTILE_CASES.items():
        path = tmp_path / "hostile.wacz"
        path.write_bytes(make())
        page.verify(path, trust)
        assert page.page.query_selector("#tz-result script, #tz-result img, #tz-result iframe") is None, name
        for row in shown_rows(page):
            assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f\u202a-\u202e\u2066-\u2069\u200b-\u200f]",
                                 row["finding_zh"] + row["finding_en"]), (name, row)


@pytest.mark.parametrize(("width", "height"), [(1280, 900), (390, 844)])
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_page_fits_desktop_and_phone(chromium: Any, tmp_path: Path, width: int, height: int, lang: str) -> None:
    """Desktop 1280 px and phone 390 px, in either interface language: nothing wider than the screen."""
    fresh = open_page(chromium, built_page().as_uri(), viewport={"width": width, "height": height}, locale="en-US")
    if lang == "zh":
        fresh.page.click("#tz-lang")
    fresh.verify(SAMPLES / "packages" / "good-capture.wacz", SAMPLES / "trust.toml")
    fresh.page.screenshot(path=str(tmp_path / f"verify-{lang}-{width}.png"), full_page=True)
    assert fresh.page.evaluate("document.documentElement.lang") == ("zh-CN" if lang == "zh" else "en")
    overflow = fresh.page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"{overflow} px wider than a {width} px screen"


def test_every_tampered_package_reads_in_both_languages(page: Any, rpc_url: str, tmp_path: Path) -> None:
    """The tamper matrix through the page: each check has a Chinese finding; each failure says what it
    means in the CLI's words; every time a finding shows is in the court format."""
    workspace = make_workspace(tmp_path / "ws")
    packages = [workspace.upload([("exhibit.txt", f"exhibit {i}\n".encode() * 40), ("photo.png", bytes(range(256)))])
                for i in range(2)]
    seal_batch(workspace, packages, rpc_url)
    with zipfile.ZipFile(packages[1].path) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    metadata = json.loads(entries[DATAPACKAGE_PATH])
    trust = workspace.trust_file()
    problems: list[str] = []
    for number, (name, mutate, _expected) in enumerate(mutations(entries)):
        changed = dict(entries)
        mutate(changed)
        page.verify(rebuild(changed, metadata, tmp_path / f"m{number}.wacz"), trust)
        for row in shown_rows(page):
            if not HAN.search(row["finding_zh"]):
                problems.append(f"{name} {row['id']}: no Chinese finding")
            if row["status"] == "fail" and row["finding_zh"] != FAILURE_MEANING_ZH[row["id"]]:
                problems.append(f"{name} {row['id']}: failure said as {row['finding_zh']!r}")
            # A malformed package value is quoted as written ("…"), so the reader sees what is wrong with it.
            shown = untimed(QUOTED.sub("", row["finding_en"] + row["finding_zh"]))
            if shown:
                problems.append(f"{name} {row['id']}: times not in the court format: {shown}")
    assert problems == [], "\n".join(problems)
