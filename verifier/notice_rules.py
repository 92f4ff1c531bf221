"""What a takedown notice must contain, per rule set: the data behind the send gate and check N2.

One table serves both sides. ``evidence.notices`` refuses to send a notice that lacks an element its
rule sets require (unless told to), and the verifier's N2 reads the sealed notice record and reports
the same elements, so the gate and the check cannot disagree about what a rule asks for.

Each rule set lists only what its article names (wording checked against public copies, cited beside
each rule set below and in ``legal_basis.KIND_RULES``):
- SPC 2014 Art. 5 (法释〔2014〕11号): a notice "包含下列内容的，人民法院应当认定有效": the notifier's
  name (姓名（名称）) and contact, the network address or information that locates the content, and
  the reasons for deletion. It names no identifier, no evidence and no guarantee. The 2020 amendment
  (法释〔2020〕17号, in force 1 January 2021) deleted the article, and its articles were renumbered;
  since then the Civil Code's Art. 1195 says what a notice holds. The rule set stays for notices
  judged by the 2014 text, and because its elements are still what courts look for.
- Civil Code Art. 1195 para. 1: "通知应当包括构成侵权的初步证据及权利人的真实身份信息": preliminary
  evidence of infringement and the right holder's true identity.
- E-Commerce Law Art. 42 para. 1: "通知应当包括构成侵权的初步证据": preliminary evidence of
  infringement, and nothing else by name.
- IP Guideline Art. 5 (法发〔2020〕32号, point 五): "知识产权权利证明及权利人的真实身份信息；能够实现
  准确定位的被诉侵权商品或者服务信息；构成侵权的初步证据；通知真实性的书面保证等": proof of the right and
  the owner's true identity, information that locates the accused goods or services, preliminary
  evidence of infringement, and a written guarantee that the notice is true. It also asks for written
  form, which an e-mail is (Civil Code Art. 469).

The functions here take the notice record as JSON data (from a draft, or from a sealed manifest) and
never raise for a malformed record: a malformed element is a missing element.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

NOTICE_FORMAT = "tiezheng-notice/1"
FINGERPRINT = re.compile(r"^[0-9a-f]{64}$")
#: A notice names at most this many URLs or documents; a longer list is several notices.
MAX_LISTED_ITEMS = 500


@dataclass(frozen=True)
class Element:
    id: str
    en: str
    zh: str


ELEMENTS: Mapping[str, Element] = {e.id: e for e in (
    Element("owner_name", "the notifier's name", "通知人的姓名（名称）"),
    Element("owner_identity", "the right owner's true identity (name and identifier)",
            "权利人的真实身份信息（名称及证件号码）"),
    Element("owner_contact", "the right owner's contact (e-mail, telephone or address)", "权利人的联系方式"),
    Element("right_proof", "proof of the right, sealed as evidence", "知识产权权利证明（已封存为证据）"),
    Element("infringing_urls", "the network addresses of the infringing content", "侵权内容的网络地址"),
    Element("infringement_evidence", "preliminary evidence of infringement: a sealed capture of every address",
            "构成侵权的初步证据：每一网络地址均有已封存的取证"),
    Element("grounds", "the grounds for the measures requested", "要求采取必要措施的理由"),
    Element("authenticity_guarantee", "a written guarantee that the notice is true", "通知真实性的书面保证"),
)}


@dataclass(frozen=True)
class RuleSet:
    id: str
    en: str
    zh: str
    requires: tuple[str, ...]


RULE_SETS: Mapping[str, RuleSet] = {r.id: r for r in (
    # 2014 text: http://cndkt.com/separate/823.html; the 2020 amended text, without it:
    # https://66zhonglv.com/fagui/7082.html
    RuleSet("spc-2014-art5",
            "SPC Provisions on Network Infringement of Personal Rights (2014), Art. 5 "
            "(2014 text; deleted by the 2020 amendment)",
            "《最高人民法院关于审理利用信息网络侵害人身权益民事纠纷案件适用法律若干问题的规定》"
            "（法释〔2014〕11号）第五条（2014年文本，2020年修正时删除）",
            ("owner_name", "owner_contact", "infringing_urls", "grounds")),
    # http://www.hrfabao.com/falvtiao/6471765.html
    RuleSet("ecl-art42",
            "E-Commerce Law of the PRC, Art. 42",
            "《中华人民共和国电子商务法》第四十二条",
            ("infringement_evidence",)),
    # http://www.zhixianglawyer.com/news_view.aspx?typeid=4&id=1137&fid=t2:4:2
    RuleSet("ip-guideline-art5",
            "SPC Guiding Opinions on IP Civil Cases Involving E-Commerce Platforms (2020), Art. 5",
            "《最高人民法院关于审理涉电子商务平台知识产权民事案件的指导意见》（法发〔2020〕32号）第五条",
            ("right_proof", "owner_identity", "infringing_urls", "infringement_evidence",
             "authenticity_guarantee")),
    # https://www.xing528.com/lilun/1715892.html
    RuleSet("civil-code-art1195",
            "Civil Code of the PRC, Art. 1195 para. 1",
            "《中华人民共和国民法典》第一千一百九十五条第一款",
            ("owner_identity", "infringement_evidence")),
)}
DEFAULT_RULE_SETS = tuple(RULE_SETS)


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _list(value: Any) -> Sequence[Any]:
    return value if isinstance(value, list) and len(value) <= MAX_LISTED_ITEMS else []


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _sealed_reference(item: Any) -> bool:
    return (isinstance(item, Mapping) and bool(_text(item.get("evidence_id")))
            and bool(FINGERPRINT.match(_text(item.get("fingerprint")))))


def present_elements(record: Mapping[str, Any]) -> frozenset[str]:
    """The element ids that ``record`` (a notice record, JSON data) holds in usable form."""
    owner = _mapping(record.get("owner"))
    contact = _mapping(owner.get("contact"))
    urls = _list(record.get("infringing"))
    guarantee = _mapping(record.get("guarantee"))
    found = set()
    if _text(owner.get("name")):
        found.add("owner_name")
        if _text(owner.get("identifier")):
            found.add("owner_identity")
    if any(_text(contact.get(key)) for key in ("email", "phone", "address")):
        found.add("owner_contact")
    proofs = _list(record.get("right_proofs"))
    if proofs and all(_sealed_reference(p) for p in proofs):
        found.add("right_proof")
    if urls and all(isinstance(u, Mapping) and _text(u.get("url")).startswith(("http://", "https://"))
                    for u in urls):
        found.add("infringing_urls")
        if all(_sealed_reference(u) for u in urls):
            found.add("infringement_evidence")
    if _text(record.get("grounds")):
        found.add("grounds")
    if guarantee.get("given") is True and _text(guarantee.get("text")):
        found.add("authenticity_guarantee")
    return frozenset(found)


@dataclass(frozen=True)
class RuleResult:
    rule_set: RuleSet
    present: tuple[str, ...]
    missing: tuple[str, ...]

    @property
    def complete(self) -> bool:
        return not self.missing

    def to_json(self) -> dict[str, Any]:
        return {"rule_set": self.rule_set.id, "title": self.rule_set.en, "title_zh": self.rule_set.zh,
                "complete": self.complete, "present": list(self.present), "missing": list(self.missing),
                "missing_en": [ELEMENTS[e].en for e in self.missing],
                "missing_zh": [ELEMENTS[e].zh for e in self.missing]}


def judge(record: Mapping[str, Any], rule_sets: Sequence[str] | None = None) -> tuple[RuleResult, ...]:
    """Each rule set's verdict on ``record``: what it requires that is present, and what is missing.

    ``rule_sets`` defaults to the record's own ``rule_sets`` list, else every known rule set. Unknown
    rule set ids are ignored (the caller validates user input with ``unknown_rule_sets``).
    """
    chosen = rule_sets if rule_sets is not None else _list(record.get("rule_sets")) or DEFAULT_RULE_SETS
    present = present_elements(record)
    results = []
    for rule_id in chosen:
        rule = RULE_SETS.get(rule_id) if isinstance(rule_id, str) else None
        if rule is not None:
            results.append(RuleResult(rule, tuple(e for e in rule.requires if e in present),
                                      tuple(e for e in rule.requires if e not in present)))
    return tuple(results)


def unknown_rule_sets(rule_sets: Sequence[str]) -> list[str]:
    return [r for r in rule_sets if r not in RULE_SETS]


def describe_missing(results: Sequence[RuleResult], lang: str = "en") -> list[str]:
    """One line per incomplete rule set: its title and every element it lacks, in ``lang``."""
    lines = []
    for result in results:
        if result.missing:
            if lang == "zh":
                lines.append(f"{result.rule_set.zh}：缺少" + "、".join(ELEMENTS[e].zh for e in result.missing))
            else:
                lines.append(f"{result.rule_set.en}: missing " + "; ".join(ELEMENTS[e].en for e in result.missing))
    return lines
