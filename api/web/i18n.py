"""The pages' words in English and Chinese. One dict per language, the same keys in both.

The language comes from ``?lang=`` (then remembered in a cookie), else the cookie, else the
browser's Accept-Language. The verifier's findings and legal bases stay in the verifier's words
(English): they are the report's content, and a court reads the same text in the PDF.
"""

from __future__ import annotations

from fastapi import Request

LANGUAGES = ("en", "zh")
COOKIE = "tz_lang"

STRINGS: dict[str, dict[str, str]] = {
    "en": {
        "brand": "Tiezheng", "tagline": "ironclad web evidence",
        "nav_verify": "Verify", "nav_app": "Dashboard", "nav_api": "API",
        "other_language": "中文", "other_language_code": "zh",
        "verify_title": "Verify an evidence package",
        "verify_intro": "Drop a .wacz package here. It is checked on this server with the same code as "
                        "tiezheng-verify, and nothing is kept.",
        "drop_here": "Drop a package here, or tap to choose one",
        "verifying": "Verifying…", "verdict": "Verdict",
        "verdict_verified": "Verified", "verdict_verified_offline": "Verified (offline)",
        "verdict_failed": "Failed", "verdict_unusable": "Unusable input", "verdict_cannot_judge": "Cannot judge",
        "findings_verified_offline": "Not checked offline", "findings_failed": "What failed and what it means",
        "findings_unusable": "Why the file could not be read",
        "findings_cannot_judge": "Trust missing, and how to get it",
        "trust_published": "This service verifies with the trust it publishes at",
        "trust_sha256": "SHA-256 of that file", "trust_used": "Trust used",
        "evidence_id": "Evidence", "fingerprint": "Fingerprint",
        "group_source": "Source", "group_path": "Generation and transmission path", "group_hash": "Hash consistency",
        "group_time": "Time",
        "check": "Check", "status": "Status", "finding": "Finding", "basis": "Legal basis",
        "status_pass": "pass", "status_fail": "fail", "status_warn": "warn", "status_skip": "skip",
        "timeline": "Timeline", "tl_capture_start": "Capture started", "tl_capture_end": "Capture ended",
        "tl_tsa": "Trusted timestamp", "tl_block": "Anchored in block",
        "proves": "What this proves", "does_not_prove": "What it does not prove",
        "development_trust": "Development trust (not for court use)",
        "download_pdf": "Download the PDF certificate", "pdf_unavailable": "PDF certificates are not available on "
                                                                          "this server.",
        "error": "Error", "unusable_reason": "The file could not be examined", "failed_checks": "Failed checks",
        "login_title": "Sign in with your API key", "api_key": "API key", "sign_in": "Sign in",
        "sign_out": "Sign out", "login_failed": "This key was not accepted.",
        "key_hint": "Your administrator gives you a key made with `tiezheng tenants create`. It stays in this tab "
                    "only.",
        "capture_title": "Capture web pages", "urls": "URLs, one per line", "note": "Note", "capture": "Capture",
        "upload_title": "Upload files", "files": "Files", "upload": "Upload",
        "accepted": "Accepted", "evidence_title": "Your evidence", "search": "Search",
        "all": "All", "pending": "Pending", "sealed": "Sealed", "failed": "Failed",
        "refresh": "Refresh", "empty": "No evidence yet.",
        "created": "Accepted", "sealed_at": "Sealed", "batch": "Batch", "tx": "Transaction", "block": "Block",
        "package": "Package", "certificate": "Certificate", "preview": "Preview", "report": "Report",
        "no_preview": "No screenshot to preview.", "prev": "Previous", "next": "Next", "page": "Page",
        "close": "Close", "busy": "Working…",
    },
    "zh": {
        "brand": "铁证", "tagline": "网页电子证据保全",
        "nav_verify": "验证", "nav_app": "控制台", "nav_api": "接口",
        "other_language": "English", "other_language_code": "en",
        "verify_title": "验证证据包",
        "verify_intro": "将 .wacz 证据包拖到这里。服务器使用与 tiezheng-verify 相同的代码进行校验，不保留任何文件。",
        "drop_here": "拖入证据包，或点击选择文件",
        "verifying": "正在验证…", "verdict": "结论",
        "verdict_verified": "验证通过", "verdict_verified_offline": "验证通过（离线）",
        "verdict_failed": "验证未通过", "verdict_unusable": "无法识别的文件", "verdict_cannot_judge": "无法判断",
        "findings_verified_offline": "离线未检查事项", "findings_failed": "未通过的检查及其含义",
        "findings_unusable": "无法读取的原因", "findings_cannot_judge": "缺少的信任及获取方式",
        "trust_published": "本服务验证时使用的信任配置公开于",
        "trust_sha256": "该文件的 SHA-256", "trust_used": "所用信任配置",
        "evidence_id": "证据编号", "fingerprint": "证据指纹",
        "group_source": "来源", "group_path": "生成及传输路径", "group_hash": "哈希值一致性", "group_time": "时间",
        "check": "检查项", "status": "结果", "finding": "发现", "basis": "法律依据",
        "status_pass": "通过", "status_fail": "未通过", "status_warn": "警告", "status_skip": "跳过",
        "timeline": "时间线", "tl_capture_start": "开始取证", "tl_capture_end": "取证结束",
        "tl_tsa": "可信时间戳", "tl_block": "上链区块",
        "proves": "可以证明", "does_not_prove": "不能证明",
        "development_trust": "开发用信任（不可用于诉讼）",
        "download_pdf": "下载 PDF 证书", "pdf_unavailable": "本服务器暂不提供 PDF 证书。",
        "error": "错误", "unusable_reason": "无法检查该文件", "failed_checks": "未通过的检查项",
        "login_title": "使用 API 密钥登录", "api_key": "API 密钥", "sign_in": "登录", "sign_out": "退出",
        "login_failed": "密钥无效。",
        "key_hint": "密钥由管理员通过 `tiezheng tenants create` 生成，仅保存在当前标签页中。",
        "capture_title": "网页取证", "urls": "网址（每行一个）", "note": "备注", "capture": "取证",
        "upload_title": "上传文件", "files": "文件", "upload": "上传",
        "accepted": "已受理", "evidence_title": "我的证据", "search": "搜索",
        "all": "全部", "pending": "处理中", "sealed": "已存证", "failed": "失败",
        "refresh": "刷新", "empty": "暂无证据。",
        "created": "受理时间", "sealed_at": "存证时间", "batch": "批次", "tx": "交易", "block": "区块",
        "package": "证据包", "certificate": "证书", "preview": "预览", "report": "报告",
        "no_preview": "没有可预览的截图。", "prev": "上一页", "next": "下一页", "page": "页",
        "close": "关闭", "busy": "处理中…",
    },
}

#: Check titles for the pages (the report's own titles are English).
CHECK_TITLES_ZH = {
    "S1": "运营方签名", "S2": "中立第三方", "S3": "网络事实", "S4": "取证环境",
    "P1": "调用日志链", "P2": "相互印证", "P3": "证据包完整",
    "H1": "文件哈希", "H2": "证据指纹", "H3": "默克尔包含证明", "H4": "可信时间戳", "H5": "区块链锚定",
    "T1": "时间一致", "T2": "上链前间隔",
}


def language(request: Request) -> str:
    asked = request.query_params.get("lang")
    if asked in LANGUAGES:
        return asked
    remembered = request.cookies.get(COOKIE)
    if remembered in LANGUAGES:
        return remembered
    accept = request.headers.get("accept-language", "").lower()
    return "zh" if accept.startswith("zh") else "en"


def strings(lang: str) -> dict[str, str]:
    words = dict(STRINGS[lang])
    if lang == "zh":
        words.update({f"check_{k}": v for k, v in CHECK_TITLES_ZH.items()})
    return words
