"""The legal basis of each check: one table of the rules cited, by official title and article.

Chinese rules are cited by their official Chinese titles and document numbers, as a court cites
them; each rule carries the public page its title and article were checked against. A citation
names the article (and paragraph or item) the check serves, never more than the check shows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    zh: str  # the official Chinese title (or the court and parties, for a case)
    en: str
    source: str  # a public page where the title and the cited articles were checked


RULES: Mapping[str, Rule] = {
    "evidence": Rule(
        "《最高人民法院关于民事诉讼证据的若干规定》（法释〔2019〕19号）",
        "SPC Provisions on Evidence in Civil Proceedings (2019)",
        "https://www.cunnar.com/f/937.html"),  # Art. 93 (authenticity factors), Art. 94 (neutral platform)
    "internet_courts": Rule(
        "《最高人民法院关于互联网法院审理案件若干问题的规定》（法释〔2018〕16号）",
        "SPC Provisions on Several Issues Concerning the Trial of Cases by Internet Courts (2018)",
        "http://www.uianet.net/dictionary/b6515293.html"),  # Art. 11 in full: para. 1 items (1)-(6), para. 2
    "online_litigation": Rule(
        "《人民法院在线诉讼规则》（法释〔2021〕12号）",
        "SPC Online Litigation Rules of the People’s Courts (2021)",
        "http://www.bjlsjy.net/blockchain-25759-1"),  # Arts. 16-18: on-chain presumption, after and before
    "online_litigation_art17": Rule(
        "《人民法院在线诉讼规则》（法释〔2021〕12号）",
        "SPC Online Litigation Rules of the People’s Courts (2021)",
        "https://fx361.cc/page/2022/0426/10275562.shtml"),  # Art. 17: qualification, neutrality, system, process
    "huatai": Rule(
        "杭州互联网法院 杭州华泰一媒文化传媒有限公司诉深圳市道同科技发展有限公司案（2018年6月28日宣判）",
        "Hangzhou Internet Court, Huatai Yimei v. Shenzhen Daotong (judgment of 28 June 2018)",
        "http://hznews.hangzhou.com.cn/jingji/content/2018-06/29/content_7027840.htm"),
    "sft0091": Rule(
        "SF/T 0091-2021《电子数据公证保管技术规范》",
        "SF/T 0091-2021 Technical specification for electronic data notarization preservation",
        "https://www.bzchaxun.com/view/8026111024000000.html"),  # ch. 9: clean-environment check before capture
    "spc_2014_network": Rule(
        "《最高人民法院关于审理利用信息网络侵害人身权益民事纠纷案件适用法律若干问题的规定》（法释〔2014〕11号）",
        "SPC Provisions on Cases of Infringement of Personal Rights over Information Networks (2014)",
        "http://cndkt.com/separate/823.html"),  # Art. 5: what a valid notice contains
    "ecommerce_law": Rule(
        "《中华人民共和国电子商务法》",
        "E-Commerce Law of the PRC (2018)",
        "http://www.hrfabao.com/falvtiao/6471765.html"),  # Art. 42 in full
    "ip_guideline": Rule(
        "《最高人民法院关于审理涉电子商务平台知识产权民事案件的指导意见》（法发〔2020〕32号）",
        "SPC Guiding Opinions on IP Civil Cases Involving E-Commerce Platforms (2020)",
        "http://www.zhixianglawyer.com/news_view.aspx?typeid=4&id=1137&fid=t2:4:2"),  # Art. 5: notice contents
    "fre": Rule(
        "美国《联邦证据规则》",
        "U.S. FRE",
        "https://www.americanbar.org/groups/litigation/resources/newsletters/trial-evidence/"
        "new-rules-self-authenticating-electronic-evidence/"),
    "eidas": Rule(
        "欧盟第910/2014号条例（eIDAS）",
        "Regulation (EU) No 910/2014 (eIDAS)",
        "https://www.trustpro.eu/electronic-time-stamp/"),  # Art. 41 quoted in full
}


@dataclass(frozen=True)
class Citation:
    rule: str  # a key of RULES
    zh: str  # the article in Chinese, and what it weighs
    en: str

    def text(self, lang: str) -> str:
        rule = RULES[self.rule]
        if lang == "zh":
            return f"{rule.zh}{self.zh}"
        return f"{rule.en}{'' if self.en.startswith(':') else ' '}{self.en}"


def _c(rule: str, zh: str, en: str) -> Citation:
    return Citation(rule, zh, en)


HUATAI_PATH = _c("huatai", "：生成路径清晰，调用日志与网页截图、源码相互印证",
                 ": a clear generation path; call log, screenshot and source corroborate")
ART93_1 = _c("evidence", "第九十三条第一项：硬件、软件环境是否完整、可靠",
             "Art. 93(1): complete and reliable hardware and software environment")
ART94_2 = _c("evidence", "第九十四条第一款第二项：由记录和保存电子数据的中立第三方平台提供或者确认",
             "Art. 94(1)(2): provided or confirmed by a neutral third-party platform")
ART11_2 = _c("internet_courts", "第十一条第二款：可信时间戳、哈希值校验、区块链等防篡改技术手段",
             "Art. 11 para. 2: trusted timestamps, hash verification, blockchain")
OLR16 = _c("online_litigation", "第十六条：区块链存储并经技术核验一致的，推定上链后未经篡改",
           "Art. 16: data stored on a blockchain and found consistent by technical verification is "
           "presumed unaltered after going on chain")

#: The citations of each check, in the order a court weighs them.
BASES: Mapping[str, tuple[Citation, ...]] = {
    "S1": (ART94_2, _c("huatai", "：第三方存证平台的中立性与资质", ": neutrality and standing of the platform")),
    "S2": (ART94_2, _c("online_litigation_art17",
                       "第十七条第一项、第二项：存证平台的资质，当事人与存证平台有无利害关系",
                       "Art. 17(1)-(2): the platform’s qualification, and no interest in the case")),
    "S3": (ART93_1, _c("internet_courts", "第十一条第一款第一项：硬件、软件环境是否安全、可靠",
                       "Art. 11 para. 1(1): secure and reliable hardware and software environment")),
    "S4": (ART93_1, _c("huatai", "：公开、通用的取证工具，自动执行",
                       ": open, general-purpose tools, run automatically"),
           _c("sft0091", "第9章：取证前对运行环境进行清洁性检查", "ch. 9: clean-environment check before capture"),
           _c("fre", "第902条第（13）项：电子程序或系统生成的记录",
              "902(13): records generated by an electronic process")),
    "P1": (HUATAI_PATH, _c("evidence", "第九十三条第三项：有效的防止出错的监测、核查手段",
                           "Art. 93(3): effective means of monitoring and checking against error")),
    "P2": (HUATAI_PATH,),
    "P3": (_c("evidence", "第九十三条第四项：完整地保存、传输、提取，方法可靠",
              "Art. 93(4): kept, transmitted and extracted completely, by reliable methods"),),
    "H1": (ART11_2, _c("huatai", "：哈希值一致", ": hash values consistent"),
           _c("fre", "第902条第（14）项：以数字识别（哈希值）核验的复制数据",
              "902(14): data authenticated by digital identification (hash)")),
    "H2": (ART11_2,),
    "H3": (OLR16,),
    "H4": (ART11_2, _c("eidas", "第41条第1款：电子时间戳不因其为电子形式而被否认证据效力",
                       "Art. 41(1): an electronic time stamp is not denied effect as evidence for being electronic")),
    "H5": (OLR16, _c("online_litigation_art17", "第十七条第四项：存证技术和过程是否符合相关国家标准或者行业标准",
                     "Art. 17(4): whether the storage technology and process meet the national or industry standards"),
           _c("huatai", "：哈希值上链", ": hash recorded on chain")),
    "T1": (OLR16, _c("internet_courts", "第十一条第一款第二项：生成主体和时间是否明确",
                     "Art. 11 para. 1(2): who made the data, and when, is clear")),
    "N1": (_c("evidence", "第九十三条第五项：电子数据是否在正常的往来活动中形成和存储",
              "Art. 93(5): whether the data was formed and stored in normal dealings"),
           _c("evidence", "第九十三条第四项：完整地保存、传输、提取，方法可靠",
              "Art. 93(4): kept, transmitted and extracted completely, by reliable methods")),
    "N2": (_c("spc_2014_network", "第五条：通知的姓名（名称）和联系方式、网络地址、删除理由",
              "Art. 5: the notifier's name and contact, the network address, the grounds"),
           _c("ecommerce_law", "第四十二条：通知应当包括构成侵权的初步证据",
              "Art. 42: a notice shall include preliminary evidence of infringement"),
           _c("ip_guideline", "第五条：权利证明及真实身份信息、准确定位信息、初步证据、真实性书面保证",
              "Art. 5: proof of right and true identity, locating information, preliminary evidence, "
              "a written guarantee of truth")),
    "T2": (_c("online_litigation", "第十八条：电子数据上链存储前的真实性，另行审查",
              "Art. 18: the authenticity of data before it went on chain is examined on its own"),),
}


def legal_basis(check_id: str, lang: str = "en") -> str:
    """The legal basis of ``check_id``: ``zh``, ``en``, or ``both`` (Chinese, then English)."""
    if lang == "both":
        return f"{legal_basis(check_id, 'zh')}\n{legal_basis(check_id, 'en')}"
    separator = "；" if lang == "zh" else "; "
    return separator.join(citation.text(lang) for citation in BASES[check_id])


def sources(check_id: str) -> tuple[str, ...]:
    """The public pages the citations of ``check_id`` were checked against."""
    return tuple(dict.fromkeys(RULES[c.rule].source for c in BASES[check_id]))
