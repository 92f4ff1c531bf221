from __future__ import annotations

import shutil
import subprocess

import pytest

from evidence.notices.gate import IncompleteNotice, completeness, gate
from evidence.notices.model import Notice, NoticeError, Owner, SealedRef
from evidence.notices.pdf import render_notice_pdf
from tests.evidence.notices.conftest import complete_notice
from verifier.notice_rules import RULE_SETS, judge


def test_complete_notice_passes_every_rule_set(notice: Notice) -> None:
    results = gate(notice)
    assert [r.rule_set.id for r in results] == list(RULE_SETS)
    assert all(r.complete for r in results)


def test_gate_names_every_missing_element_per_rule_set_in_both_languages() -> None:
    bare = complete_notice(owner=Owner(name="Owner Ltd"), right_proofs=(), grounds="", guarantee_given=False,
                           infringing=(SealedRef("", "", url="https://shop.example/item/2"),))
    with pytest.raises(IncompleteNotice) as caught:
        gate(bare)
    missing = {r.rule_set.id: set(r.missing) for r in caught.value.results}
    # Each rule set asks for what its article names: SPC 2014 Art. 5 the notifier's name (given here),
    # not an identifier; E-Commerce Law Art. 42 only the preliminary evidence.
    assert missing == {
        "spc-2014-art5": {"owner_contact", "grounds"},
        "ecl-art42": {"infringement_evidence"},
        "ip-guideline-art5": {"right_proof", "owner_identity", "infringement_evidence", "authenticity_guarantee"},
        "civil-code-art1195": {"owner_identity", "infringement_evidence"},
    }
    message = str(caught.value)
    assert "the right owner's contact" in message and "权利人的联系方式" in message
    assert "通知真实性的书面保证" in message and "E-Commerce Law of the PRC, Art. 42: missing" in message
    assert "Civil Code of the PRC, Art. 1195 para. 1: missing" in message
    # Without a name, SPC 2014 Art. 5 misses it too.
    (spc,) = judge(complete_notice(owner=Owner(), grounds="").to_json(), ["spc-2014-art5"])
    assert spc.missing == ("owner_name", "owner_contact", "grounds")


def test_gate_can_be_told_to_let_an_incomplete_notice_through() -> None:
    results = gate(complete_notice(grounds=""), allow_incomplete=True)
    assert not next(r for r in results if r.rule_set.id == "spc-2014-art5").complete


def test_only_the_chosen_rule_sets_are_judged() -> None:
    results = gate(complete_notice(rule_sets=("ecl-art42",), grounds="", guarantee_given=False, right_proofs=()))
    assert [r.rule_set.id for r in results] == ["ecl-art42"]


def test_a_malformed_reference_is_a_missing_element(notice: Notice) -> None:
    record = notice.to_json()
    record["infringing"][0]["fingerprint"] = "not-hex"
    record["right_proofs"] = "a string"
    (ecl,) = judge(record, ["ecl-art42"])
    assert ecl.missing == ("infringement_evidence",)
    (guideline,) = judge(record, ["ip-guideline-art5"])
    assert "right_proof" in guideline.missing


def test_unknown_rule_set_and_unlinked_correction_are_refused() -> None:
    with pytest.raises(NoticeError, match="unknown rule set"):
        complete_notice(rule_sets=("dmca-512",))
    with pytest.raises(NoticeError, match="names the sealed version it replaces"):
        complete_notice(action="correction")


def test_record_round_trips(notice: Notice) -> None:
    assert Notice.from_json(notice.to_json()) == notice


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="pdftotext (poppler-utils) is not installed")
def test_pdf_is_bilingual_and_lists_the_sealed_fingerprints(notice: Notice, tmp_path) -> None:
    pdf = render_notice_pdf(notice, completeness(notice))
    assert pdf.startswith(b"%PDF") and render_notice_pdf(notice, completeness(notice)) == pdf
    (tmp_path / "n.pdf").write_bytes(pdf)
    shown = subprocess.run(["pdftotext", str(tmp_path / "n.pdf"), "-"], capture_output=True, text=True,
                           check=True).stdout
    for words in ("侵权通知及删除请求", "Notice of infringement", "上海某某文化传媒有限公司", "https://shop.example/item/1",
                  "真实性保证", "Guarantee of authenticity", "完备 complete"):
        assert words in shown
    assert "b" * 40 in shown.replace("\n", "").replace(" ", "")
