// The page's words in English and Chinese. Check reasons stay as the verifier wrote them.

const CHECK_TITLES = {
  en: { S1: "operator signature", S2: "neutral third party", S3: "network facts", S4: "capture environment",
    P1: "call log chain", P2: "corroboration", P3: "package complete", H1: "artifact hashes", H2: "evidence fingerprint",
    H3: "Merkle inclusion", H4: "trusted timestamp", H5: "blockchain anchor", T1: "times agree", T2: "pre-chain gap" },
  zh: { S1: "运营方签名", S2: "中立第三方", S3: "网络事实", S4: "采集环境", P1: "调用日志链", P2: "相互印证",
    P3: "证据包完整", H1: "文件哈希", H2: "证据指纹", H3: "默克尔包含证明", H4: "可信时间戳", H5: "区块链锚定",
    T1: "时间一致", T2: "上链前间隔" },
};

const prefixed = (lang) => Object.fromEntries(Object.entries(CHECK_TITLES[lang]).map(([k, v]) => [`check_${k}`, v]));

export const STRINGS = {
  en: {
    ...prefixed("en"), title: "Verify evidence in your browser", other_language: "中文",
    intro: "Choose a Tiezheng evidence package (.wacz). It is checked here, in this browser: nothing is uploaded.",
    drop_package: "Drop or choose the evidence package", trust_file: "Trust file (trust.toml)",
    load_operator_trust: "Use the operator's published trust", trust_used: "Trust used",
    no_trust: "No trust file given: the verdict can at best be “cannot judge”.", trust_error: "Trust file refused",
    rpc_optin: "Also confirm the anchor online through this RPC URL (optional; contacts that node)",
    verifying: "Verifying…", internal_error: "Internal error (please report it)", verdict: "Verdict", evidence_id: "Evidence id", fingerprint: "Fingerprint",
    unusable_reason: "Why it could not be read", development_trust: "Development trust in use",
    check: "Check", status: "Status", finding: "Finding", basis: "Legal basis",
    status_pass: "pass", status_fail: "fail", status_warn: "warn", status_skip: "skip",
    proves: "What this proves", does_not_prove: "What it does not prove", elapsed: "Checked in",
    local_only: "verified in this browser, nothing uploaded",
    "verdict_verified": "verified", "verdict_verified (offline)": "verified (offline)", "verdict_failed": "failed",
    "verdict_unusable": "unusable", "verdict_cannot judge": "cannot judge",
    "explain_verified": "Every check that could run holds, and the anchor was confirmed online.",
    "explain_verified (offline)": "Every check that could run holds. Offline, that the anchor's block is canonical is not checked: enter an RPC URL to confirm it.",
    "explain_failed": "The evidence does not hold: the failed checks below say what and what it means.",
    "explain_unusable": "This is not a readable evidence package.",
    "explain_cannot judge": "The package may be fine, but the trust given lacks the operator key, TSA root or chain it needs. Load the operator's published trust (/.well-known/tiezheng/trust.toml) or the file from `tiezheng trust export`, and compare its SHA-256 with the one declared in court.",
  },
  zh: {
    ...prefixed("zh"), title: "在浏览器中核验证据", other_language: "English",
    intro: "选择一个铁证证据包（.wacz）。核验在本浏览器中完成，不上传任何内容。",
    drop_package: "拖入或选择证据包", trust_file: "信任文件（trust.toml）",
    load_operator_trust: "使用运营方公布的信任文件", trust_used: "所用信任",
    no_trust: "未提供信任文件：结论至多为“无法判断”。", trust_error: "信任文件被拒绝",
    rpc_optin: "另通过此 RPC 地址在线确认锚定（可选；会联系该节点）",
    verifying: "核验中…", internal_error: "内部错误（请报告）", verdict: "结论", evidence_id: "证据编号", fingerprint: "证据指纹",
    unusable_reason: "无法读取的原因", development_trust: "正在使用开发用信任",
    check: "检查项", status: "状态", finding: "结果", basis: "法律依据",
    status_pass: "通过", status_fail: "失败", status_warn: "警告", status_skip: "跳过",
    proves: "本结果证明", does_not_prove: "本结果不证明", elapsed: "核验用时",
    local_only: "在本浏览器中核验，未上传任何内容",
    "verdict_verified": "已验证", "verdict_verified (offline)": "已验证（离线）", "verdict_failed": "未通过",
    "verdict_unusable": "无法使用", "verdict_cannot judge": "无法判断",
    "explain_verified": "所有可执行的检查均成立，且锚定已在线确认。",
    "explain_verified (offline)": "所有可执行的检查均成立。离线时不核验锚定区块是否为规范链上的区块：可输入 RPC 地址在线确认。",
    "explain_failed": "证据不成立：下方失败的检查项说明了问题及其含义。",
    "explain_unusable": "这不是一个可读取的证据包。",
    "explain_cannot judge": "证据包可能没有问题，但所给信任缺少所需的运营方密钥、时间戳机构根证书或链。请载入运营方公布的信任文件（/.well-known/tiezheng/trust.toml）或 `tiezheng trust export` 导出的文件，并将其 SHA-256 与庭上声明的值比对。",
  },
};
