// The report contract shared with the Python verifier (DESIGN §5, §6): stable check ids with their
// group, title and legal basis; four verdicts; and what a verified package proves, in English and
// Chinese. Only a verified report carries "what this proves".

const HUATAI = "Huatai v. Daotong (Hangzhou Internet Court, 2018)";
export const CHECKS = [
  ["S1", "source", "operator signature", `${HUATAI}: neutral platform; SPC Evidence Provisions (2019) Art. 94`],
  ["S2", "source", "neutral third party", "SPC Evidence Provisions (2019) Art. 94: data kept by a neutral third-party platform"],
  ["S3", "source", "network facts", "SPC Evidence Provisions (2019) Art. 93(1): reliable hardware and software environment"],
  ["S4", "source", "capture environment", `${HUATAI}: open, general-purpose tools; Evidence Provisions Art. 93(1)-(2); FRE 902(13)`],
  ["P1", "path", "call log chain", `${HUATAI}: clear generation path; Evidence Provisions Art. 93(3): process monitored`],
  ["P2", "path", "corroboration", `${HUATAI}: screenshot, source code and call logs corroborate each other`],
  ["P3", "path", "package complete", "SPC Evidence Provisions (2019) Art. 93(4)-(5): reliable storage, transmission and extraction"],
  ["H1", "hash", "artifact hashes", `${HUATAI}: hash consistency; SPC Internet Courts Provisions (2018) Art. 11; FRE 902(14)`],
  ["H2", "hash", "evidence fingerprint", "SPC Internet Courts Provisions (2018) Art. 11: hash verification"],
  ["H3", "hash", "Merkle inclusion", "SPC Online Litigation Rules (2021) Art. 16: consistent after technical verification"],
  ["H4", "hash", "trusted timestamp", "SPC Internet Courts Provisions (2018) Art. 11: trusted timestamps; eIDAS Art. 41"],
  ["H5", "hash", "blockchain anchor", `${HUATAI}: hash on chain; Online Litigation Rules (2021) Arts. 16-17`],
  ["T1", "time", "times agree", "SPC Online Litigation Rules (2021) Art. 16; Internet Courts Provisions Art. 11"],
  ["T2", "time", "pre-chain gap", "SPC Online Litigation Rules (2021) Art. 18: the time before going on chain is examined on its own"],
].map(([id, group, title, basis]) => ({ id, group, title, basis }));
export const REQUIRED_PASS = ["H1", "H2", "H3", "H4"];

export const VERDICTS = {
  VERIFIED: "verified", VERIFIED_OFFLINE: "verified (offline)", FAILED: "failed", UNUSABLE: "unusable",
  CANNOT_JUDGE: "cannot judge",
};

export const PROVES = {
  en: [
    "The evidence files in this package existed, byte for byte, no later than the trusted timestamp and the block time shown, and have not changed since.",
    "They were captured or received by the named operator, whose key signed the manifest, with the process the manifest and call log record.",
  ],
  zh: [
    "本证据包中的文件（逐字节）最迟在所示可信时间戳和区块时间之时已经存在，此后未被改动。",
    "这些文件由所列运营方采集或接收，其密钥签署了清单；过程如清单与调用日志所记录。",
  ],
};
export const DOES_NOT_PROVE = {
  en: [
    "That the web server itself vouched for the content: HTTP responses are not signed by their origin.",
    "Anything about the time before capture, or the truth of what the content says.",
    "Its legal weight, which stays with the court.",
  ],
  zh: [
    "网站服务器本身为内容作保：HTTP 响应并无来源方签名。",
    "采集之前的任何情况，或内容所述是否属实。",
    "其法律效力——这由法院判断。",
  ],
};

/** Decide the verdict from the check results (DESIGN §5). */
export function verdictOf(results, { offline, unusable }) {
  if (unusable) return VERDICTS.UNUSABLE;
  const byId = Object.fromEntries(results.map((r) => [r.id, r]));
  if (results.some((r) => r.status === "fail")) return VERDICTS.FAILED;
  // A required check that did not pass for another reason than missing trust (an unsealed package,
  // say) fails whatever the trust: more trust could not make this package verify.
  const required = offline ? REQUIRED_PASS : [...REQUIRED_PASS, "H5"];
  if (required.some((id) => byId[id].status !== "pass" && !byId[id].missingTrust)) return VERDICTS.FAILED;
  // Nothing failed, but a check could not judge for lack of trust: the package may be fine.
  if (results.some((r) => r.status === "skip" && r.missingTrust)) return VERDICTS.CANNOT_JUDGE;
  const anchor = byId.H5.status;
  if (anchor === "pass") return VERDICTS.VERIFIED;
  if (offline && (anchor === "warn" || anchor === "skip")) return VERDICTS.VERIFIED_OFFLINE;
  return VERDICTS.FAILED;
}

export const isVerified = (verdict) => verdict === VERDICTS.VERIFIED || verdict === VERDICTS.VERIFIED_OFFLINE;
