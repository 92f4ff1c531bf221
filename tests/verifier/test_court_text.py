"""The report a court reads: both languages, Beijing time and UTC, real counts, 80 columns.

The terminal tests run the real ``tiezheng-verify`` with ``COLUMNS=80`` on a sealed HTTPS capture made
by the real browser runner and on the failing sample packages, and read what a user would see.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rich.cells import cell_len

from evidence.upload import BuiltPackage
from tests.capture_site import BrowserRunner, make_tls, serve
from tests.factory import Workspace, make_workspace, seal_batch
from verifier.court_time import format_duration, format_time, ordinal_of, plural
from verifier.legal_basis import ALL_BASES, RULES, legal_basis, sources
from verifier.report.terminal import TIME_SPAN, clip, wrap
from verifier.trust import load_trust
from verifier.verdict import CHECK_BY_ID, CHECKS, Status
from verifier.verify import verify_package
from verifier.wording import FAILURE_MEANING_ZH, TITLES_ZH, compose_zh, development_zh

CLI = str(Path(sys.executable).parent / "tiezheng-verify")
SAMPLES = Path(__file__).resolve().parents[2] / "samples"
CJK = re.compile(r"[\u4e00-\u9fff]")
#: Anything that looks like a clock time; each must sit inside a full "Beijing / UTC" pair.
CLOCK = re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d")


def run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([CLI, *map(str, args)], capture_output=True, text=True, timeout=120, cwd=cwd,
                            env={"PATH": str(Path(CLI).parent), "COLUMNS": "80"})
    assert "Traceback" not in result.stdout + result.stderr
    return result


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return make_workspace(tmp_path_factory.mktemp("workspace"))


@pytest.fixture(scope="module")
def sealed_capture(tmp_path_factory: pytest.TempPathFactory, workspace: Workspace, rpc_url: str
                   ) -> Iterator[tuple[Path, Path]]:
    """One HTTPS capture of a local site by the real browser runner, sealed on the devnet."""
    tls = make_tls(tmp_path_factory.mktemp("tls"))
    site = serve(tls.trusted)
    runner = BrowserRunner()
    try:
        built = runner.capture(site.url("/r1"), workspace.packages, workspace.operator, extra_ca_pem=tls.ca_pem)
    finally:
        runner.close()
        site.close()
    seal_batch(workspace, [BuiltPackage(built.evidence_id, built.fingerprint, built.path)], rpc_url)
    yield built.path, workspace.trust_file()


# --- times, durations, counts ---------------------------------------------------------------


def test_every_time_reads_as_beijing_time_and_utc() -> None:
    moment = datetime(2026, 12, 1, 15, 14, 42, 123456, tzinfo=UTC)
    expected = "2026-12-01 23:14:42.123 (北京时间 UTC+8) / 2026-12-01 15:14:42.123 UTC"
    assert format_time(moment) == expected
    assert format_time("2026-12-01T15:14:42.123456+00:00") == expected
    assert format_time("2026-12-01T23:14:42.123+08:00") == expected
    # Across midnight and a year's end, Beijing is the next day.
    assert format_time(datetime(2026, 12, 31, 20, 0, tzinfo=UTC)).startswith("2027-01-01 04:00:00.000")
    assert format_time("not a time") == "not a time"


def test_durations_are_words_in_both_languages() -> None:
    assert (format_duration(0.7), format_duration(0.7, "zh")) == ("0.7 s", "0.7 秒")
    assert format_duration(timedelta(hours=24)) == "1 day" and format_duration(86400, "zh") == "1 天"
    assert format_duration(90) == "1 minute 30 s" and format_duration(90, "zh") == "1 分钟 30 秒"
    assert format_duration(7200.5) == "2 hours 0.5 s" and format_duration(-2) == "-2 s"


def test_counts_are_cardinal_and_positions_count_from_one() -> None:
    assert (plural(1, "hash", "hashes"), plural(2, "hash", "hashes"), plural(0, "token")) == \
        ("1 hash", "2 hashes", "0 tokens")
    assert ordinal_of(0, 2) == "leaf 1 of 2"


# --- the words --------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [s.value for s in Status])
@pytest.mark.parametrize("check_id", list(CHECK_BY_ID))
def test_every_check_and_outcome_has_a_chinese_finding(check_id: str, status: str) -> None:
    for kind in ("capture", "upload", "log-export"):
        for offline in (True, False):
            text = compose_zh(check_id, status, {}, kind=kind, offline=offline)
            assert CJK.search(text), (check_id, status, text)
            assert "不不" not in text and "并非不" not in text  # no double negatives
    if status == "fail":
        assert FAILURE_MEANING_ZH[check_id] in compose_zh(check_id, status, {})


def test_chinese_findings_state_the_facts_the_checks_recorded() -> None:
    facts = {"batch": {"leaf_index": 0, "tree_size": 2}, "prechain_gap_seconds": 0.7,
             "timestamps": [{"tsa": "CN=TSA", "trusted_as": "FreeTSA", "gen_time": "2026-12-01T15:14:42.123+00:00"}]}
    assert "2 个叶子中的第 1 个" in compose_zh("H3", "pass", facts)
    assert "0.7 秒" in compose_zh("T2", "pass", facts)
    assert "2026-12-01 23:14:42.123 (北京时间 UTC+8)" in compose_zh("H4", "pass", facts)
    assert "缺少 the TSA root" in compose_zh("H4", "skip", {}, lacking="the TSA root")
    assert compose_zh("H1", "skip", {}, sealed=False).startswith("证据包尚未封存")
    assert development_zh("chain 'devnet' (31337) is a development chain") == "区块链“devnet”（链 ID 31337）为开发用链"


def test_every_legal_basis_cites_official_titles_articles_and_a_public_source() -> None:
    assert set(ALL_BASES) == set(CHECK_BY_ID)
    for spec in CHECK_BY_ID.values():
        zh, en = legal_basis(spec.id, "zh"), legal_basis(spec.id, "en")
        assert re.search(r"《[^》]+》", zh) or "杭州互联网法院" in zh, zh
        assert re.search(r"第[一二三四五六七八九十百0-9]+(条|章)|：", zh), zh
        assert not CJK.search(en), en
        assert spec.basis == en and spec.basis_zh == zh
        assert all(url.startswith(("https://", "http://")) for url in sources(spec.id))
    # The titles as the Supreme People's Court issued them; SF/T 0091-2021 is the notarization standard.
    titles = {rule.zh for rule in RULES.values()}
    assert "《最高人民法院关于互联网法院审理案件若干问题的规定》（法释〔2018〕16号）" in titles
    assert "《最高人民法院关于民事诉讼证据的若干规定》（法释〔2019〕19号）" in titles
    assert "《人民法院在线诉讼规则》（法释〔2021〕12号）" in titles
    assert "SF/T 0091-2021《电子数据公证保管技术规范》" in titles
    assert "第九十四条第一款第二项" in legal_basis("S2", "zh") and "第十八条" in legal_basis("T2", "zh")


def test_wrap_and_clip_measure_cells_and_never_cut_a_time() -> None:
    text = "取证结束于 " + format_time(datetime(2026, 12, 1, tzinfo=UTC)) + " and then much more text " * 4
    for line in wrap(text, 40, 4):
        assert cell_len(line) <= 40
    for width in range(30, 90, 7):
        lines = clip(text, width, 2, 2)
        assert len(lines) <= 2 and all(cell_len(line) <= width for line in lines)
        joined = " ".join(line.strip() for line in lines)
        # A time is either shown whole or not begun.
        assert CLOCK.search(joined) is None or TIME_SPAN.search(joined), joined


# --- the report model and JSON ----------------------------------------------------------------


def test_report_model_and_json_carry_chinese_for_every_check(sealed_capture: tuple[Path, Path]) -> None:
    package, trust = sealed_capture
    report = verify_package(package, load_trust(trust))
    assert report.verified, report.to_json()
    for result in report.checks:
        assert CJK.search(result.reason_zh), result
    output = run(package, "--json", "--trust", trust).stdout
    assert str(package.parent) not in output and "/tmp/" not in output  # no path of the verifier's machine
    body = json.loads(output)
    for check in body["checks"]:
        assert {"reason", "basis", "reason_zh", "basis_zh", "title_zh"} <= set(check)
        assert CJK.search(check["reason_zh"]) and ("《" in check["basis_zh"] or "杭州" in check["basis_zh"])
    assert body["verdict_zh"] == "验证通过（离线）" and body["proves_zh"] and body["does_not_prove_zh"]
    # Policy numbers exactly as the trust file sets them (300 s tolerance, 24-hour window by default).
    policy = load_trust(trust).policy
    assert f"policy {policy.time_tolerance.total_seconds():g} s" in report.result("T1").reason
    assert f"policy window {policy.prechain_window.total_seconds() / 3600:g} hours" in report.result("T2").reason
    batch = report.facts["batch"]
    position = f"{batch['tree_size']} 个叶子中的第 {batch['leaf_index'] + 1} 个"
    assert position in report.result("H3").reason_zh
    assert f"leaf {batch['leaf_index'] + 1} of {batch['tree_size']}" in report.result("H3").reason


# --- the terminal -----------------------------------------------------------------------------


def _assert_court_readable(output: str, *, tmp: Path) -> list[str]:
    lines = output.splitlines()
    assert lines, output
    too_wide = [(cell_len(line), line) for line in lines if cell_len(line) > 80]
    assert not too_wide, too_wide
    for clock in CLOCK.finditer(output):
        assert any(span.start() <= clock.start() < span.end() for span in TIME_SPAN.finditer(output)), \
            output[clock.start() - 20:clock.end() + 40]
    assert str(tmp) not in output and "/tmp/" not in output and str(Path.home()) not in output
    return lines


@pytest.mark.parametrize("lang", ["en", "zh", "both"])
@pytest.mark.parametrize("details", [False, True])
def test_terminal_report_of_a_sealed_capture_fits_80_columns(sealed_capture: tuple[Path, Path], lang: str,
                                                             details: bool) -> None:
    package, trust = sealed_capture
    args = [package, "--trust", trust, "--lang", lang, *(["--details"] if details else [])]
    result = run(*args)
    assert result.returncode == 0, result.stderr
    lines = _assert_court_readable(result.stdout, tmp=package.parent)
    verdict = {"en": "VERIFIED (OFFLINE)", "zh": "验证通过（离线）",
               "both": "验证通过（离线） / VERIFIED (OFFLINE)"}[lang]
    assert lines[0].strip().startswith(verdict), lines[0]  # the verdict first …
    assert any(line.strip().startswith(verdict) for line in lines[-2:]), lines[-2:]  # … and again last
    check_lines = [line for line in lines if re.match(r"^[SPHT][1-5] ", line)]
    assert [line[:2] for line in check_lines] == [spec.id for spec in CHECKS]
    assert len(TIME_SPAN.findall(result.stdout)) >= 3, "the capture, TSA and block times are shown"
    if not details:
        # About one screen; both languages say everything twice.
        assert len(lines) <= (84 if lang == "both" else 64), len(lines)
    if lang != "en":
        assert "运营方签名" in result.stdout and "不得用于诉讼" in result.stdout
    if details:
        basis = {"en": "SPC Provisions on Evidence in Civil Proceedings (2019) Art. 94(1)(2)",
                 "zh": "《最高人民法院关于民事诉讼证据的若干规定》", "both": "第九十四条第一款第二项"}[lang]
        # Wrapped lines joined again: Chinese without a space, English with one.
        assert basis in re.sub(r"\n\s+", "", result.stdout) or basis in re.sub(r"\n\s+", " ", result.stdout)


@pytest.mark.parametrize("sample", ["bad-H1-artifact-changed", "bad-T1-capture-after-timestamp",
                                    "bad-S2-requester-is-operator"])
def test_terminal_report_of_a_failed_package_says_what_failed_in_80_columns(sample: str, tmp_path: Path) -> None:
    package = SAMPLES / "packages" / f"{sample}.wacz"
    failed = sample.split("-")[1]
    for lang in ("en", "zh", "both"):
        result = run(package.resolve(), "--trust", (SAMPLES / "trust.toml").resolve(), "--lang", lang)
        assert result.returncode == 1, result.stdout + result.stderr
        lines = _assert_court_readable(result.stdout, tmp=SAMPLES.resolve())
        label = "验证未通过" if lang != "en" else "FAILED"
        assert lines[0].strip().startswith(label) and any(line.strip().startswith(label) for line in lines[-2:])
        assert any(line.startswith(f"{failed} fail") or line.startswith(f"{failed} 未通过") for line in lines)
        if lang == "zh":
            finding = f"{failed} {TITLES_ZH[failed]}未通过：{FAILURE_MEANING_ZH[failed]}"
            assert finding in result.stdout.replace("\n  ", "")


def test_failed_sample_json_says_in_chinese_what_failed() -> None:
    package = SAMPLES / "packages" / "bad-H1-artifact-changed.wacz"
    body = json.loads(run(package, "--json", "--trust", SAMPLES / "trust.toml").stdout)
    h1 = next(c for c in body["checks"] if c["id"] == "H1")
    assert h1["status"] == "fail" and h1["reason_zh"] == FAILURE_MEANING_ZH["H1"]
    assert body["verdict_zh"] == "验证未通过" and body["proves_zh"] == []
    assert body["findings_zh"][0].startswith("H1 文件哈希值未通过：")


def test_an_unknown_language_is_a_one_line_usage_error() -> None:
    result = run(SAMPLES / "packages" / "good-upload.wacz", "--lang", "fr")
    assert result.returncode == 2 and "--lang" in result.stderr and result.stdout == ""


def test_the_text_layer_gives_findings_titles_and_bases_in_each_language() -> None:
    from verifier.verdict import CheckResult
    from verifier.wording import finding, title

    result = CheckResult("H1", Status.FAIL, "evidence/a.txt is missing", FAILURE_MEANING_ZH["H1"])
    assert finding(result, "en") == "evidence/a.txt is missing"
    assert finding(result, "zh") == FAILURE_MEANING_ZH["H1"]
    assert finding(result, "both") == f"{FAILURE_MEANING_ZH['H1']}\nevidence/a.txt is missing"
    assert title("H1", "artifact hashes", "both") == "artifact hashes 文件哈希值"
    assert legal_basis("H1", "both") == f"{legal_basis('H1', 'zh')}\n{legal_basis('H1', 'en')}"
