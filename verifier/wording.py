"""The report's words in Chinese and English: check titles, findings, verdicts and their meaning.

The English reason of a check comes from the check itself and names every detail. The Chinese
finding is composed here from the check id, its status and the facts the checks recorded, so both
languages state the same outcome and one term is used for one concept throughout (不得用于诉讼 for
development material, 可信时间戳, 证据指纹, 锚定). Keys are plain strings (check ids, status
values), so this module imports nothing of the report it describes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from verifier.court_time import format_duration, format_time

LANGS = ("zh", "en", "both")

TITLES_ZH: Mapping[str, str] = {
    "S1": "运营方签名", "S2": "中立第三方", "S3": "网络环境事实", "S4": "取证环境",
    "P1": "调用日志链", "P2": "相互印证", "P3": "证据包完整",
    "H1": "文件哈希值", "H2": "证据指纹", "H3": "默克尔包含证明", "H4": "可信时间戳", "H5": "区块链锚定",
    "T1": "时间一致", "T2": "上链前间隔", "N1": "回复来源", "N2": "通知要件",
    "L1": "事件包含证明", "L2": "检查点一致性", "L3": "检查点签名", "L4": "统计数据复算",
    "V1": "直播流片段链",
}
STATUS_ZH: Mapping[str, str] = {"pass": "通过", "fail": "未通过", "warn": "警告", "skip": "未检查"}
VERDICT_ZH: Mapping[str, str] = {
    "verified": "验证通过", "verified (offline)": "验证通过（离线）", "failed": "验证未通过",
    "unusable": "输入无法检验", "cannot judge": "无法判断",
}
#: What each verdict means, in one line (DESIGN §5).
VERDICT_MEANING: Mapping[str, tuple[str, str]] = {
    "verified": ("every check holds", "所有检查均成立"),
    "verified (offline)": ("every check that could run offline holds", "离线可进行的检查均成立"),
    "failed": ("the evidence does not hold: a check failed", "证据不成立：有检查未通过"),
    "unusable": ("not a readable evidence package", "不是可以读取的证据包"),
    "cannot judge": ("the trust given lacks what this package needs", "所给信任配置缺少本证据包所需的内容"),
}
DEVELOPMENT_TITLE = ("development trust (not for court use)", "开发用信任材料（不得用于诉讼）")

FAILURE_MEANING_ZH: Mapping[str, str] = {
    "S1": "清单并非由其所列运营方签署，或签署后被改动",
    "S2": "取证并非由中立第三方为他人进行",
    "S3": "所记录的网络事实不能支持网页来自所列主机",
    "S4": "取证环境记录不足，不能表明取证在清洁环境中自动完成",
    "P1": "调用日志断裂或顺序错乱，取证过程无法逐步显示",
    "P2": "截图、网页源码与网页存档不能相互印证",
    "P3": "证据包生成后有文件被增加或删除",
    "H1": "有证据文件并非封存时的文件，已被改动或替换",
    "H2": "清单并非封存时的清单，已被改动",
    "H3": "本证据不属于其声称的封存批次",
    "H4": "没有有效的可信时间戳覆盖该批次，存在时间未获证明",
    "H5": "区块链锚定不成立，批次根哈希未出现在预期的链上",
    "T1": "取证时间、可信时间戳时间与区块时间相互矛盾",
    "T2": "取证与封存之间间隔过长，不能认为内容在取证时即已固定",
    "L1": "所披露的事件并非日志记录时的事件：已被改动、移位或从未记入日志",
    "L2": "日志被改写：该检查点不是已锚定检查点的前缀",
    "L3": "检查点并非由运营方密钥签署",
    "L4": "统计数据不能由所披露的事件复算得出",
    "V1": "所录直播流与日志所记的播出内容不符：有片段被改动、调换顺序或无记录地缺失，或片段时长之和与声称的时长不符",
    "N1": "回复的 DKIM 签名不成立：回复已被改动，或并非来自其所称的域名",
    "N2": "封存的通知记录或 PDF 与实际发出的邮件所附内容不一致",
}
PROVES_ZH = (
    "本证据包中的证据文件（逐字节）不晚于所示的可信时间戳时间和区块时间已经存在，且此后未被改动。",
    "这些文件由列明的运营方取证或接收，其密钥签署了清单；取证过程如清单和调用日志所记录。",
)
PROVES_OFFLINE_ZH = (
    "本证据包中的证据文件（逐字节）不晚于所示的可信时间戳时间已经存在，且此后未被改动。",
    PROVES_ZH[1],
)
DOES_NOT_PROVE_ZH = (
    "网站服务器本身为内容作保：HTTP 响应并未由其来源签名。",
    "取证之前的任何情况，或内容所述是否属实。",
    "其法律效力，仍由法院认定。",
)
#: What stays a claim offline, per check, and how to check it.
NOT_CHECKED_ZH: Mapping[str, str] = {
    "H5": "锚定区块是否位于该链的主链上并有足够的确认数；可用 --rpc URL 连接该链任一节点核对",
    "T1": "锚定记录所称的区块及其时间是否真实；可用 --rpc URL 核对",
    "T2": "批次实际上链的时间（离线时区块时间仅为锚定记录的声明）；可用 --rpc URL 核对",
}
TRUST_HELP_ZH = ("请向运营方索取其信任文件（服务在 /.well-known/tiezheng/trust.toml 公布，或由 "
                 "`tiezheng trust export FILE` 导出），核对其 SHA-256 与运营方声明的一致后，以 --trust FILE 传入")


def _get(facts: Mapping[str, Any], *path: str) -> Any:
    value: Any = facts
    for key in path:
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return value


def _earliest_stamp(facts: Mapping[str, Any]) -> Mapping[str, Any] | None:
    stamps = facts.get("timestamps")
    if not isinstance(stamps, list) or not stamps or not isinstance(stamps[0], Mapping):
        return None
    earliest: Mapping[str, Any] = min(stamps, key=lambda s: str(s.get("gen_time", "")))
    return earliest


def _pass_zh(check_id: str, facts: Mapping[str, Any], offline: bool) -> str:
    """The Chinese finding of a pass, with the facts that check recorded."""
    operator, requester = _get(facts, "operator", "name"), _get(facts, "requester", "tenant")
    if check_id == "S1":
        return f"清单由受信任的运营方“{operator}”签署，签名有效" if operator else "清单由受信任的运营方签署，签名有效"
    if check_id == "S2":
        who = f"运营方受申请人“{requester}”委托取证，" if requester else ""
        declared = _get(facts, "operator_qualifications", "declared")
        qualifications = ("运营方声明的资质（备案、认证）为其自述，软件无法核验" if declared
                          else "运营方未声明资质（备案、认证）")
        return f"{who}运营方与申请人不同，为中立第三方；{qualifications}"
    if check_id == "S3":
        return "服务器地址在该域名的 DNS 解析结果之中，TLS 证书链覆盖该域名且取证时有效"
    if check_id == "S4":
        browser = _get(facts, "environment", "browser")
        tools = f"{browser}，" if browser else ""
        return (f"取证环境已记录且显示清洁：{tools}各工具的版本与哈希值、全新浏览器配置，"
                "除取证工具自身的记录代理外无其他代理")
    if check_id == "P1":
        return "调用日志以哈希链相连，时间先后有序，每一步均自动执行"
    if check_id == "P2":
        video = "；录屏视频时长覆盖其记录的各步骤" if facts.get("session_video") else ""
        return f"截图、网页源码与网页存档指向同一网址并相互印证；每个文件的哈希值均在生成时记入日志{video}"
    if check_id == "P3":
        return "证据包中的文件与清单所列一致，无缺失、无多余"
    if check_id == "H1":
        return "每个证据文件的 SHA-256 哈希值和大小均与清单一致"
    if check_id == "H2":
        return "由清单重新计算的证据指纹与封存时的叶子值一致"
    if check_id == "H3":
        index, size = _get(facts, "batch", "leaf_index"), _get(facts, "batch", "tree_size")
        if isinstance(index, int) and isinstance(size, int):
            return f"本证据是封存批次 {size} 个叶子中的第 {index + 1} 个，其包含证明可推导出批次根哈希"
        return "本证据的包含证明可推导出封存批次的根哈希"
    if check_id == "H4":
        stamp = _earliest_stamp(facts)
        if stamp is not None:
            return (f"时间戳服务“{stamp.get('trusted_as') or stamp.get('tsa')}”签发的可信时间戳有效，"
                    f"时间 {format_time(str(stamp.get('gen_time')))}")
        return "可信时间戳有效，并链接到受信任的时间戳服务根证书"
    if check_id == "H5":
        block, confirmations = _get(facts, "anchor", "block_number"), _get(facts, "anchor", "confirmations")
        chain = _get(facts, "anchor", "chain") or _get(facts, "anchor", "chain_id")
        return (f"锚定交易位于链“{chain}”第 {block} 号区块，载有批次根哈希，已获 {confirmations} 个确认"
                if confirmations is not None else f"锚定交易位于链“{chain}”第 {block} 号区块，载有批次根哈希")
    if check_id == "T1":
        if offline:
            return "取证结束时间与可信时间戳时间先后相符（在容差之内）；区块时间为锚定记录的声明，离线未核对"
        return "取证结束时间、可信时间戳时间与区块时间先后相符（在容差之内）"
    if check_id == "T2":
        gap = facts.get("prechain_gap_seconds")
        until = "可信时间戳" if offline else "上链"
        if isinstance(gap, int | float):
            return f"取证结束后 {format_duration(max(gap, 0), 'zh')}即由{until}固定，在政策时限之内"
        return f"取证结束后在政策时限之内由{until}固定"
    if check_id == "L1":
        count, size = _get(facts, "log", "events"), _get(facts, "log", "checkpoint_size")
        return f"所披露的 {count} 个事件均包含在规模为 {size} 的日志检查点中；未披露字段仅以加盐哈希值出现"
    if check_id == "L2":
        return "该检查点与已锚定的检查点一致（RFC 9162 一致性证明），此前记录的事件未被删除或改写"
    if check_id == "L3":
        return "两个检查点的签名（C2SP signed-note，Ed25519）均由受信任的运营方密钥验证通过"
    if check_id == "L4":
        return "导出所附的统计表均可由所披露的事件复算得出"
    if check_id == "V1":
        count, first, last = (_get(facts, "stream", k) for k in ("segments", "first", "last"))
        return (f"直播流的 {count} 个片段（序号 {first}–{last}）均在到达时以哈希值记入哈希链日志，"
                "与网页存档中的片段逐字节一致；媒体序号连续无缺口，片段时长之和与声称的时长一致")
    if check_id == "N1":
        domain = _get(facts, "reply_provenance", "domain")
        return (f"回复的 DKIM 签名有效，签名域名为 {domain}，已依导入时封存的 DNS 密钥记录离线核验"
                if domain else "回复的 DKIM 签名有效，已依导入时封存的 DNS 密钥记录离线核验")
    if check_id == "N2":
        return "发出的通知具备所选规则要求的全部要件"
    return "通过"


WARN_ZH: Mapping[str, str] = {
    "S3": "服务器地址与域名解析相符，但传输未受 TLS 完整保护（明文 HTTP，或取证主机不信任其证书链）",
    "S4": "取证环境记录中有未显示为清洁或无法确认的项目",
    "P2": "截图、网页源码与网页存档相互印证，但浏览器与原始请求最终到达的网址不同",
    "H5": "锚定交易载有批次根哈希（已离线证明）；该区块是否位于主链上尚未核对，可用 --rpc URL 核对",
    "T1": "取证结束时间与可信时间戳时间先后相符（在容差之内）；没有已核验的区块时间可供比较",
    "N1": "回复按收到时原样封存，但没有 DKIM 签名，或签名域名与发件人域名不符，不能据此确认其来自平台域名",
    "N2": "发出的通知缺少所选规则要求的要件，见英文原因中逐项所列",
}


def compose_zh(check_id: str, status: str, facts: Mapping[str, Any], *, kind: str = "capture",
               offline: bool = True, lacking: str | None = None, sealed: bool = True,
               unusable: bool = False) -> str:
    """The Chinese finding of one check, from its outcome and the facts; the English reason stays as is."""
    if unusable:
        return "输入无法检验，未进行此项检查"
    if status == "fail":  # the status says 未通过; the finding says what that means
        return FAILURE_MEANING_ZH[check_id]
    if status == "pass":
        return _pass_zh(check_id, facts, offline)
    if status == "warn":
        if check_id == "S4" and kind == "upload":
            return "文件由申请人上传，并非平台抓取，因此没有取证环境记录"
        if check_id == "S4" and kind == "log-export":
            return "事件由申请人的系统发送至日志，并非平台抓取，因此没有取证环境记录"
        if check_id == "S4" and kind == "notice-reply":
            return "回复由申请人导入，并非平台直接接收；其来源由 N1 核验"
        if check_id == "V1":
            return ("直播流片段均在到达时记入日志，与网页存档逐字节一致，时长相符；但录制中存在缺口"
                    "（已由录制程序记录，缺失的序号范围见英文原因），或个别片段哈希值记入日志晚于一秒")
        unclean = _get(facts, "environment", "clean_check", "unclean_or_unknown")
        if check_id == "S4" and isinstance(unclean, list) and unclean:
            return f"取证环境记录中有 {len(unclean)} 项未显示为清洁或无法确认，需逐项审查（见英文原因）"
        return WARN_ZH.get(check_id, "有需要注意的情况，见英文原因")
    if lacking is not None:
        return f"无法判断：所给信任配置中缺少 {lacking}"
    if kind == "upload" and check_id in ("S3", "P1", "P2"):
        return "文件由申请人上传，并非平台抓取，因此没有此项记录"
    if kind == "stream" and check_id == "S3":
        return "直播流录制未单独记录网络事实；每个片段的服务器地址见网页存档记录（WARC-IP-Address）"
    if kind == "log-export" and check_id in ("S3", "P1", "P2"):
        return "日志事件由申请人的系统发送，并非平台抓取，因此没有此项记录"
    if check_id == "L4":
        return "导出未附统计数据，无需复算"
    if kind in ("notice", "notice-reply") and check_id in ("S3", "S4", "P1", "P2"):
        return "通知及回复为封存的电子邮件，并非网页取证，因此没有此项记录"
    if not sealed:
        return "证据包尚未封存（没有 proof/proof.json），无法检查"
    return "现有数据不足以进行此项检查"


class HasFinding(Protocol):
    id: str
    reason: str
    reason_zh: str


def finding(check: HasFinding, lang: str = "en") -> str:
    """A check's finding in ``zh``, ``en`` or ``both`` (Chinese line, then English line)."""
    if lang == "zh":
        return check.reason_zh or check.reason
    if lang == "both":
        return f"{check.reason_zh}\n{check.reason}" if check.reason_zh else check.reason
    return check.reason


def title(check_id: str, english: str, lang: str = "en") -> str:
    """A check's title: ``文件哈希值``, ``artifact hashes`` or ``artifact hashes 文件哈希值``."""
    if lang == "zh":
        return TITLES_ZH[check_id]
    return f"{english} {TITLES_ZH[check_id]}" if lang == "both" else english


#: The development flags a check raises (``Context.flag_development``), in Chinese.
DEVELOPMENT_ZH = (
    (re.compile(r"operator key '(.*)' is a development key", re.S), "运营方密钥“{0}”为开发用密钥"),
    (re.compile(r"TSA '(.*)' is a development TSA", re.S), "时间戳服务“{0}”为开发用时间戳服务"),
    (re.compile(r"chain '(.*)' \((\d+)\) is a development chain", re.S), "区块链“{0}”（链 ID {1}）为开发用链"),
)


def development_zh(item: str) -> str:
    """A development-trust flag in Chinese; an unknown one stays as it is."""
    for pattern, text in DEVELOPMENT_ZH:
        match = pattern.fullmatch(item)
        if match:
            return text.format(*match.groups())
    return item


def shown_name(source: str) -> str:
    """A file of the verifier's machine by its name only; any other label (``default trust``, a
    relative name as typed, the service's ``/.well-known/…`` address) as it is."""
    path = Path(source)
    try:
        local = path.is_absolute() and path.exists()
    except OSError:  # a name too long or otherwise unusable as a path is a label
        local = False
    return path.name if local else source


def pick(en: str, zh: str, lang: str) -> str:
    """One of two texts, or both (Chinese first) for ``both``."""
    return zh if lang == "zh" else en if lang == "en" else f"{zh} / {en}"


def lines(en: str, zh: str, lang: str) -> tuple[str, ...]:
    """Two texts as separate lines for a document: Chinese then English for ``both``, else the one
    asked for. A renderer escapes each line on its own, so package text is never split or joined."""
    if lang == "zh":
        return (zh or en,)
    if lang == "en" or not zh:
        return (en,)
    return (zh, en)


class ReadsFinding(Protocol):
    """What ``finding_lines`` reads of a check; read-only, so a frozen CheckResult fits."""

    @property
    def reason(self) -> str: ...

    @property
    def reason_zh(self) -> str: ...


def finding_lines(check: ReadsFinding, lang: str = "both") -> tuple[str, ...]:
    """``finding`` as separate lines (see ``lines``)."""
    return lines(check.reason, check.reason_zh, lang)
