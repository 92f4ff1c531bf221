"""The fill-in certifications that go with a certificate: FRE 902(13)/(14) and a 电子数据存证证明.

Software cannot certify: a qualified person does, by signing. These texts give that person the
facts the verifier established (process, tools with versions, hashes and algorithm, chain of custody)
and leave blank what only the person can state (who they are, how they know the process, where they
got the file). Each says what the checks prove and what they cannot (DESIGN.md §1), in the same words
as the report's "what this proves / does not". The text is plain: each renderer passes every
paragraph through its own escaping (sanitize.display_text, then XML or HTML escaping).
"""

from __future__ import annotations

import platform
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from verifier import __version__
from verifier.report.exhibit import Exhibit, both_times
from verifier.verdict import DOES_NOT_PROVE, Report, Status
from verifier.wording import DOES_NOT_PROVE_ZH, STATUS_ZH, VERDICT_ZH

BLANK = "________________________"

@dataclass(frozen=True)
class Section:
    heading: str
    paragraphs: tuple[str, ...]


@dataclass(frozen=True)
class Certification:
    title: str
    subtitle: str
    sections: tuple[Section, ...]
    #: Labels of the lines the certifier fills in and signs.
    signature_fields: tuple[str, ...]
    #: BCP 47 language tag of the text.
    lang: str


def _fact(report: Report, *keys: str) -> Any:
    value: Any = report.facts
    for key in keys:
        value = value.get(key) if isinstance(value, Mapping) else None
    return value


def _tools(report: Report) -> list[str]:
    tools = _fact(report, "environment", "tools")
    listed = [str(t) for t in tools] if isinstance(tools, list) else []
    browser = _fact(report, "environment", "browser")
    if browser:
        listed = [t for t in listed if t != browser]  # named once, with its hash
        listed.insert(0, f"{browser} (SHA-256 {_fact(report, 'environment', 'browser_sha256') or '—'})")
    return listed


def _custody(report: Report, zh: bool) -> list[str]:
    """The chain of custody as the package records it, oldest first."""
    capture = _fact(report, "capture") or {}
    operator = _fact(report, "operator", "name") or "—"
    batch = _fact(report, "batch") or {}
    anchor = _fact(report, "anchor") or {}
    stamps = _fact(report, "timestamps") or []
    index, size = batch.get("leaf_index"), batch.get("tree_size")
    position = (f"{index + 1}" if isinstance(index, int) else "—", size if size is not None else "—")
    if zh:
        steps = [f"{both_times(capture.get('started_at'))} 至 {both_times(capture.get('ended_at'))}：由运营方"
                 f"“{operator}”取证或接收，并以其密钥签署清单。",
                 f"封存于批次 {batch.get('batch_id', '—')}（默克尔根 {batch.get('root', '—')}，"
                 f"共 {position[1]} 份证据中的第 {position[0]} 份）。"]
        steps += [f"{both_times(s.get('gen_time'))}：时间戳机构“{s.get('tsa', '—')}”对该批次根签发 RFC 3161 时间戳。"
                  for s in stamps if isinstance(s, Mapping)]
        if anchor:
            steps.append(f"{both_times(anchor.get('block_time'))}：该批次根记载于区块链 {anchor.get('chain', '—')} "
                         f"第 {anchor.get('block_number', '—')} 号区块，交易哈希 {anchor.get('tx_hash', '—')}。")
        steps.append(f"本人于 {BLANK} 从 {BLANK} 取得该证据包文件（SHA-256 见上文）。")
        return steps
    steps = [f"{both_times(capture.get('started_at'))} to {both_times(capture.get('ended_at'))}: captured or "
             f"received by the operator {operator}, whose key signed the manifest.",
             f"Sealed in batch {batch.get('batch_id', '—')} (Merkle root {batch.get('root', '—')}), "
             f"as evidence {position[0]} of {position[1]}."]
    steps += [f"{both_times(s.get('gen_time'))}: RFC 3161 timestamp over that root by {s.get('tsa', '—')}."
              for s in stamps if isinstance(s, Mapping)]
    if anchor:
        steps.append(f"{both_times(anchor.get('block_time'))}: the root recorded on {anchor.get('chain', '—')}, "
                     f"block {anchor.get('block_number', '—')}, transaction {anchor.get('tx_hash', '—')}.")
    steps.append(f"I obtained the package file (SHA-256 above) from {BLANK} on {BLANK}.")
    return steps


def _hash_basis(report: Report, zh: bool) -> str:
    """How the hashes below were checked: only H1 and H2 passing lets the text say they matched."""
    matched = all(report.result(i).status is Status.PASS for i in ("H1", "H2"))
    if zh:
        return ("算法：SHA-256（FIPS 180-4）。下列文件哈希值为已签名清单记载的封存值；验证程序由文件重新计算，"
                + ("结果与封存值一致（检查项 H1、H2 通过）。" if matched else
                   "结果并非全部一致（检查项 H1 或 H2 未通过），不一致的文件见验证证书。"))
    return ("Algorithm: SHA-256 (FIPS 180-4). The file hashes below are the sealed values the signed manifest "
            "records; the verifier recomputed each from the file " +
            ("and they matched (checks H1 and H2 pass)." if matched else
             "and they did not all match (H1 or H2 did not pass): the certificate names the files that differ."))


def _hashes(report: Report, exhibit: Exhibit, zh: bool) -> list[str]:
    package = report.package_sha256 or "—"
    lines = ([f"证据包文件 {package}", f"证据指纹（规范化清单的 SHA-256）{report.fingerprint or '—'}"] if zh else
             [f"Package file: {package}", f"Evidence fingerprint (SHA-256 of the canonical manifest): "
                                          f"{report.fingerprint or '—'}"])
    lines += [f"{path}: {digest} ({size:,} {'字节' if zh else 'byte' if size == 1 else 'bytes'})"
              for path, digest, size in exhibit.artifacts]
    return lines


def _scope(report: Report, zh: bool) -> tuple[str, str]:
    proves = report.proves
    if zh:
        shown = "".join(report.proves_zh) if proves else \
            "本次验证结论不是“验证通过”，故本证明不据此证明任何事项。"
        return (f"上述检查能够证明：{shown}", f"上述检查不能证明：{''.join(DOES_NOT_PROVE_ZH)}"
                "哈希值比对只能证明文件自封存以来未被更改，不能证明封存之前的情况。")
    shown = " ".join(proves) if proves else ("The verification did not end in \"verified\", so this "
                                             "certification relies on it to prove nothing.")
    return (f"What these checks prove: {shown}",
            f"What they cannot prove: {' '.join(DOES_NOT_PROVE)} Hash comparison shows that the files have not "
            "changed since they were sealed; it says nothing about them before that.")


def certifications(report: Report, exhibit: Exhibit, *, when: str) -> tuple[Certification, Certification]:
    """The English FRE 902(13)/(14) certification and the Chinese 电子数据存证证明, ready to fill in."""
    tools = _tools(report)
    verifier_tool = f"tiezheng-verify {__version__} (Python {platform.python_version()})"
    checks = "; ".join(f"{r.id} {r.status.value}" for r in report.checks)
    checks_zh = "；".join(f"{r.id} {STATUS_ZH[r.status.value]}" for r in report.checks)
    verdict = report.verdict.value
    target = _fact(report, "target", "requested_url") or _fact(report, "target", "url")
    english = Certification(
        title="Certification of Electronic Evidence",
        subtitle="US Federal Rules of Evidence 902(13) and 902(14); 28 U.S.C. § 1746",
        sections=(
            Section("1. Certifier", (
                f"I, {BLANK} (name), am {BLANK} (title) of {BLANK} (organisation). I am qualified to make this "
                f"certification because {BLANK}{BLANK}.",)),
            Section("2. The record", (
                f"Evidence {report.evidence_id or '—'}" + (f", a capture of {target}" if target else "")
                + f", in the package file whose SHA-256 is {report.package_sha256 or '—'}.",)),
            Section("3. The process (FRE 902(13))", (
                "The Tiezheng system captured or received the files, listed each with its SHA-256 in a manifest "
                "signed with the operator's Ed25519 key, sealed the manifest's hash in an RFC 9162 Merkle batch, "
                "had the batch root timestamped under RFC 3161 and recorded it on a blockchain. The process "
                "produces an accurate result when every check below passes.",
                f"I verified the package on {when} with {verifier_tool}: verdict {verdict}; {checks}.")),
            Section("4. Tools and versions",
                    (*(tools or ["— (an upload records no capture tools)"]), f"Verifier: {verifier_tool}")),
            Section("5. Hashes and algorithm (FRE 902(14))",
                    (_hash_basis(report, zh=False), *_hashes(report, exhibit, zh=False))),
            Section("6. Chain of custody", tuple(_custody(report, zh=False))),
            Section("7. Scope", _scope(report, False)),
            Section("Declaration", (
                "I declare under penalty of perjury under the laws of the United States of America that the "
                "foregoing is true and correct.",)),
        ),
        signature_fields=("Executed on (date)", "At (place)", "Signature", "Printed name"), lang="en",
    )
    chinese = Certification(
        title="电子数据存证证明",
        subtitle="依据哈希值校验、可信时间戳及区块链存证出具；由出具人签署后生效",
        sections=(
            Section("一、出具人", (f"出具人 {BLANK}（姓名），系 {BLANK}（单位）的 {BLANK}（职务），"
                                 f"其了解上述存证过程的依据为：{BLANK}{BLANK}。",)),
            Section("二、存证对象", (
                f"证据编号 {report.evidence_id or '—'}" + (f"，取证对象为 {target}" if target else "")
                + f"；证据包文件 SHA-256 值为 {report.package_sha256 or '—'}。",)),
            Section("三、存证过程", (
                "铁证系统取证或接收上述文件，在以运营方 Ed25519 密钥签署的清单中逐一记载其 SHA-256 值，"
                "将清单的哈希值封存于 RFC 9162 默克尔批次，由时间戳机构依 RFC 3161 对批次根签发时间戳，"
                "并将批次根记载于区块链。",
                f"本人于 {when} 使用 {verifier_tool} 验证该证据包，结论为“{VERDICT_ZH[verdict]}”；"
                f"各项检查结果：{checks_zh}。")),
            Section("四、使用的工具及版本",
                    (*(tools or ["—（上传文件，无取证工具记录）"]), f"验证程序：{verifier_tool}")),
            Section("五、哈希值及算法", (_hash_basis(report, zh=True), *_hashes(report, exhibit, zh=True))),
            Section("六、保管链", tuple(_custody(report, zh=True))),
            Section("七、证明范围", _scope(report, True)),
            Section("声明", ("本人确认以上内容真实、准确；如有虚假，愿承担相应法律责任。",)),
        ),
        signature_fields=("出具日期", "出具地点", "出具人签名", "单位（盖章）"), lang="zh-CN",
    )
    return english, chinese


def paragraphs(certification: Certification) -> Sequence[str]:
    """Every paragraph in reading order (for tests and plain-text use)."""
    return [p for section in certification.sections for p in (section.heading, *section.paragraphs)]
