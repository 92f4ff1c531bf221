"""The HTML report and the PDF certificate: on a real sealed package, against hostile package text,
and through tiezheng-verify --html / --pdf."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.factory import Workspace, seal_batch
from tests.tamper import flip_byte, replace_entry
from verifier.errors import InvalidInput
from verifier.report import pdf_certificate, pdf_fonts
from verifier.report.html_page import GROUP_LABELS, render_html
from verifier.report.pdf_certificate import write_pdf
from verifier.report.pdf_fonts import CJK_FONT_ENV
from verifier.trust import load_trust
from verifier.verdict import CHECKS, GROUPS, CheckResult, Report, Status
from verifier.verify import verify_package
from verifier.wording import TITLES_ZH

CLI = str(Path(sys.executable).parent / "tiezheng-verify")
HOSTILE = '<script>alert("pwned")</script>'
FINGERPRINT = "ab" * 32


@pytest.fixture()
def sealed(workspace: Workspace, rpc_url: str) -> tuple[Path, Path]:
    built = workspace.upload([("exhibit.txt", b"infringing copy\n"), ("photo.png", bytes(range(256)))])
    seal_batch(workspace, [built], rpc_url)
    return built.path, workspace.trust_file()


@pytest.fixture()
def report(sealed: tuple[Path, Path]) -> Report:
    result = verify_package(sealed[0], load_trust(sealed[1]))
    assert result.verified, result.to_json()
    return result


def hostile_report() -> Report:
    """A report as a malicious package could shape it: markup in every field the documents show."""
    checks = tuple(CheckResult(spec.id, Status.FAIL if spec.id == "H1" else Status.PASS, f"{spec.id}: {HOSTILE}")
                   for spec in CHECKS)
    # One reason longer than a page: the PDF must truncate it rather than fail to lay it out.
    checks = (*checks[:-1], CheckResult("T2", Status.WARN, "x" * 30_000))
    return Report(checks=checks, fingerprint=FINGERPRINT, evidence_id='tz-"><img src=x onerror=alert(1)>',
                  facts={"kind": "web-capture",
                         "target": {"requested_url": f"https://evil.example/?q={HOSTILE}", "final_url": HOSTILE,
                                    "redirects": [HOSTILE, "https://evil.example/\x00&amp;"]},
                         "capture": {"started_at": HOSTILE, "ended_at": "2026-01-02T03:04:05.000001Z"},
                         "operator": {"name": HOSTILE}, "requester": {"tenant": "租户</td>", "identity": HOSTILE},
                         "timestamps": [{"tsa": HOSTILE, "trusted_as": "TSA <b>", "gen_time": "2026-01-02T03:04:06Z"}],
                         "anchor": {"chain": HOSTILE, "chain_id": 1, "block_number": "<i>", "tx_hash": HOSTILE,
                                    "block_time": "2026-01-02T03:05:00+00:00"}},
                  development=(HOSTILE,))


def pdf_text(path: Path) -> str:
    if shutil.which("pdftotext") is None:
        pytest.skip("needs pdftotext (poppler-utils)")
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True,
                          text=True).stdout


# HTML


def test_html_report_shows_fingerprint_checks_and_chinese_labels(report: Report) -> None:
    page = render_html(report, source="exhibit.wacz")
    assert page.startswith("<!DOCTYPE html>")
    assert report.fingerprint and report.fingerprint in page
    for spec in CHECKS:
        assert f'id="check-{spec.id}"' in page
        assert spec.basis in page
    for chinese in ("电子证据验证报告", "验证通过（离线）", "证据指纹", "时间线", "本报告证明", "本报告不证明",
                    "开发用信任材料", *(TITLES_ZH[spec.id] for spec in CHECKS),
                        *(GROUP_LABELS[group][1] for group in GROUPS)):
        assert chinese in page
    # The timeline runs capture → TSA → block, and the development trust is flagged.
    assert page.index("Capture ended") < page.index("Trusted timestamp (TSA)") < page.index("Block time (anchor)")
    assert "is a development TSA" in page
    # Self-contained: nothing to fetch, nothing to run.
    assert "<script" not in page and "<link" not in page and "src=" not in page and "url(" not in page


def test_html_escapes_hostile_package_text() -> None:
    page = render_html(hostile_report(), source=f"/tmp/{HOSTILE}.wacz")
    assert "<script" not in page and "<img" not in page and "<b>" not in page and "<i>" not in page
    assert "&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt;" in page
    assert 'tz-&quot;&gt;&lt;img src=x onerror=alert(1)&gt;' in page
    assert "租户&lt;/td&gt;" in page and "&amp;amp;" in page
    assert "NOT VERIFIED" in page and "验证未通过" in page


# PDF


def test_pdf_certificate_holds_fingerprint_chinese_and_checks(report: Report, tmp_path: Path) -> None:
    out = tmp_path / "certificate.pdf"
    write_pdf(report, out, source="exhibit.wacz")
    assert out.read_bytes().startswith(b"%PDF-")
    words = pdf_text(out)
    assert report.fingerprint and report.fingerprint in words
    assert "电子证据验证证书" in words and "验证通过（离线）" in words and "验证过程证明" in words
    for spec in CHECKS:
        assert f"{spec.id} {spec.title.split()[0]}" in words
    # FRE 902(14) is named, in the basis of H1 or the certification line (a narrow cell may wrap the basis).
    assert "FRE 902(14)" in words or "FRE 902(11)/(14)" in words
    assert "tiezheng-verify" in words


def test_pdf_qr_code_carries_the_fingerprint(report: Report, tmp_path: Path) -> None:
    out = tmp_path / "certificate.pdf"
    write_pdf(report, out, source="exhibit.wacz")
    if shutil.which("pdfimages") is None or shutil.which("pdftoppm") is None:
        pytest.skip("needs pdfimages and pdftoppm (poppler-utils)")
    images = subprocess.run(["pdfimages", "-list", str(out)], check=True, capture_output=True, text=True).stdout
    assert len(images.splitlines()) == 3  # two header lines and the QR code
    try:
        import zxingcpp
        from PIL import Image
    except ImportError:
        return  # no decoder installed: the embedded image is all we can check
    subprocess.run(["pdftoppm", "-png", "-r", "150", "-f", "1", "-l", "1", str(out), str(tmp_path / "page")],
                   check=True)
    decoded = zxingcpp.read_barcodes(Image.open(next(tmp_path.glob("page*.png"))))
    assert [code.text for code in decoded] == [report.fingerprint]


def test_pdf_shows_hostile_text_as_text(tmp_path: Path) -> None:
    out = tmp_path / "hostile.pdf"
    write_pdf(hostile_report(), out, source=HOSTILE)
    words = pdf_text(out)
    assert HOSTILE in words and "租户</td>" in words
    assert "truncated here; the JSON report has the full text" in " ".join(words.split())


def test_pdf_falls_back_to_the_builtin_cid_font(report: Report, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # Counsel's machine without the Debian font: the lookup ends at reportlab's own STSong-Light.
    monkeypatch.delenv(CJK_FONT_ENV, raising=False)
    monkeypatch.setattr(pdf_fonts, "CJK_FONT_ORDER", (str(tmp_path / "absent.ttc"), "STSong-Light"))
    out = tmp_path / "cid.pdf"
    write_pdf(report, out, source="exhibit.wacz")
    assert b"STSong-Light" in out.read_bytes()
    assert "电子证据验证证书" in pdf_text(out)


def test_font_override_must_name_a_usable_font(report: Report, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CJK_FONT_ENV, str(tmp_path / "absent.ttf"))
    with pytest.raises(InvalidInput, match=r"TIEZHENG_CJK_FONT=.* is neither a font file nor one of STSong-Light"):
        write_pdf(report, tmp_path / "out.pdf", source="x")
    junk = tmp_path / "junk.ttf"
    junk.write_bytes(b"not a font")
    monkeypatch.setenv(CJK_FONT_ENV, str(junk))
    with pytest.raises(InvalidInput, match="is not a usable TrueType font"):
        write_pdf(report, tmp_path / "out.pdf", source="x")
    monkeypatch.setenv(CJK_FONT_ENV, "STSong-Light")
    write_pdf(report, tmp_path / "out.pdf", source="x")
    assert b"STSong-Light" in (tmp_path / "out.pdf").read_bytes()


def test_missing_pdf_extra_names_it(report: Report, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert pdf_certificate.pdf_available()
    monkeypatch.setitem(sys.modules, "reportlab", None)  # what an install without the extra looks like
    assert not pdf_certificate.pdf_available()
    with pytest.raises(InvalidInput, match=r"optional 'pdf' extra \(reportlab is missing\).*tiezheng\[pdf\]"):
        write_pdf(report, tmp_path / "out.pdf", source="x")
    assert not (tmp_path / "out.pdf").exists()


# CLI


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([CLI, *map(str, args)], capture_output=True, text=True, timeout=120,
                            env={"PATH": str(Path(CLI).parent), "COLUMNS": "200"})
    assert "Traceback" not in result.stdout + result.stderr
    return result


def test_cli_writes_both_documents(sealed: tuple[Path, Path], tmp_path: Path) -> None:
    package, trust = sealed
    pdf, page = tmp_path / "out.pdf", tmp_path / "out.html"
    result = run(package, "--trust", trust, "--pdf", pdf, "--html", page)
    assert result.returncode == 0, result.stderr
    assert pdf.read_bytes().startswith(b"%PDF-")
    assert "验证通过（离线）" in page.read_text(encoding="utf-8")
    assert "PDF certificate written to" in result.stdout


def test_cli_json_stdout_stays_pure_json(sealed: tuple[Path, Path], tmp_path: Path) -> None:
    package, trust = sealed
    result = run(package, "--json", "--trust", trust, "--pdf", tmp_path / "o.pdf", "--html", tmp_path / "o.html")
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["verified"] is True
    assert (tmp_path / "o.pdf").is_file() and (tmp_path / "o.html").is_file()


def test_cli_failed_package_still_gets_documents_and_exit_1(sealed: tuple[Path, Path], tmp_path: Path) -> None:
    package, trust = sealed
    bad = replace_entry(package, tmp_path / "bad.wacz", "evidence/exhibit.txt", flip_byte)
    result = run(bad, "--trust", trust, "--html", tmp_path / "o.html", "--pdf", tmp_path / "o.pdf")
    assert result.returncode == 1
    page = (tmp_path / "o.html").read_text(encoding="utf-8")
    assert "验证未通过" in page and "What failed and what it means" in page and "H1 artifact hashes failed" in page
    assert "What this proves" not in page
    text = subprocess.run(["pdftotext", "-raw", str(tmp_path / "o.pdf"), "-"], capture_output=True, text=True,
                          check=True).stdout
    assert "What failed and what it means" in text and "What this proves" not in text


def test_cli_without_trust_cannot_judge_in_every_document(sealed: tuple[Path, Path], tmp_path: Path) -> None:
    package, _trust = sealed
    result = run(package, "--html", tmp_path / "o.html", "--pdf", tmp_path / "o.pdf")  # no trust file
    assert result.returncode == 3, result.stderr
    page = (tmp_path / "o.html").read_text(encoding="utf-8")
    assert "无法判断" in page and "/.well-known/tiezheng/trust.toml" in page and "What this proves" not in page
    text = subprocess.run(["pdftotext", "-raw", str(tmp_path / "o.pdf"), "-"], capture_output=True, text=True,
                          check=True).stdout
    assert "CANNOT JUDGE" in text and "What this proves" not in text and "Trust used" in text


def test_verified_documents_name_the_trust_used(sealed: tuple[Path, Path], tmp_path: Path) -> None:
    package, trust = sealed
    result = run(package, "--trust", trust, "--html", tmp_path / "o.html", "--pdf", tmp_path / "o.pdf")
    assert result.returncode == 0, result.stderr
    digest = hashlib.sha256(trust.read_bytes()).hexdigest()
    assert digest in (tmp_path / "o.html").read_text(encoding="utf-8") and digest in result.stdout
    text = subprocess.run(["pdftotext", "-raw", str(tmp_path / "o.pdf"), "-"], capture_output=True, text=True,
                          check=True).stdout
    assert digest in text.replace("\n", "").replace(" ", "") and "What this proves" in text


#: Two ways an install lacks the extra: the module is not found at all, or it is found but fails to import.
NO_EXTRA = {"absent": ("sitecustomize.py", "import sys\nsys.modules['reportlab'] = None\n"),
            "broken": ("reportlab.py", "raise ImportError('reportlab is not installed')\n")}


@pytest.mark.parametrize("how", sorted(NO_EXTRA))
@pytest.mark.parametrize(("trusted", "code"), [(True, 0), (False, 3)])
def test_pdf_without_the_extra_keeps_the_verdict_exit_code(sealed: tuple[Path, Path], tmp_path: Path,
                                                           trusted: bool, code: int, how: str) -> None:
    """An install without the pdf extra: reportlab cannot be imported. One line, same exit code."""
    package, trust = sealed
    shadow = tmp_path / "no-extra"
    shadow.mkdir()
    name, source = NO_EXTRA[how]
    (shadow / name).write_text(source)
    env = {**os.environ, "PYTHONPATH": str(shadow)}
    args = [CLI, str(package), "--pdf", str(tmp_path / "o.pdf"), *(["--trust", str(trust)] if trusted else [])]
    result = subprocess.run(args, capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == code, result.stderr
    assert not (tmp_path / "o.pdf").exists()
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "pip install 'tiezheng[pdf]'" in lines[0] and "Traceback" not in result.stderr


@pytest.mark.parametrize("option", ["--pdf", "--html"])
def test_cli_unwritable_output_exits_2(sealed: tuple[Path, Path], tmp_path: Path, option: str) -> None:
    package, trust = sealed
    result = run(package, "--trust", trust, option, tmp_path / "no-such-dir" / "out")
    assert result.returncode == 2
    assert "cannot write the" in result.stderr and "No such file or directory" in result.stderr
    result = run(package, "--trust", trust, option, tmp_path)  # a directory, not a file
    assert result.returncode == 2
    assert "cannot write the" in result.stderr
