// The report contract shared with the Python verifier (DESIGN §5, §6): stable check ids with their
// group, title and legal basis; four verdicts; and what a verified package proves, in English and
// Chinese. Only a verified report carries "what this proves"; the words are those of verifier/verdict.py
// and verifier/wording.py, so the page and the printed report say the same.

import { legalBasis } from "./legalbasis.js";

// Titles in both languages are in strings.js; the legal bases come from the page's own table.
export const CHECKS = [
  ["S1", "source", "operator signature"], ["S2", "source", "neutral third party"], ["S3", "source", "network facts"],
  ["S4", "source", "capture environment"], ["P1", "path", "call log chain"], ["P2", "path", "corroboration"],
  ["P3", "path", "package complete"], ["H1", "hash", "artifact hashes"], ["H2", "hash", "evidence fingerprint"],
  ["H3", "hash", "Merkle inclusion"], ["H4", "hash", "trusted timestamp"], ["H5", "hash", "blockchain anchor"],
  ["T1", "time", "times agree"], ["T2", "time", "pre-chain gap"],
].map(([id, group, title]) => ({ id, group, title, basis: legalBasis(id, "en"), basis_zh: legalBasis(id, "zh") }));
// Checks of one kind of evidence only, run after the common ones (DESIGN §5, other kinds).
const spec = ([id, group, title]) => ({ id, group, title, basis: legalBasis(id, "en"), basis_zh: legalBasis(id, "zh") });
export const KIND_CHECKS = {
  "notice": [["N2", "notice", "notice completeness"]].map(spec),
  "notice-reply": [["N1", "notice", "reply provenance"]].map(spec),
  "log-export": [["L1", "log", "events included"], ["L2", "log", "checkpoint consistency"], ["L3", "log", "checkpoint signature"],
    ["L4", "log", "aggregates recompute"]].map(spec),
  "stream": [["V1", "stream", "stream segment chain"]].map(spec),
};
/** Every check a package of `kind` gets, in report order. */
export const checksFor = (kind) => [...CHECKS, ...(KIND_CHECKS[kind] ?? [])];
export const REQUIRED_PASS = ["H1", "H2", "H3", "H4"];

export const VERDICTS = {
  VERIFIED: "verified", VERIFIED_OFFLINE: "verified (offline)", FAILED: "failed", UNUSABLE: "unusable",
  CANNOT_JUDGE: "cannot judge",
};

// Online the block time is confirmed; offline it is the anchor's claim, so only the trusted time is proven.
export const PROVES = {
  en: [
    "The evidence files in this package existed, byte for byte, no later than the trusted timestamp and the block time shown, and have not changed since.",
    "They were captured or received by the named operator, whose key signed the manifest, with the process the manifest and call log record.",
  ],
  zh: [
    "本证据包中的证据文件（逐字节）不晚于所示的可信时间戳时间和区块时间已经存在，且此后未被改动。",
    "这些文件由列明的运营方取证或接收，其密钥签署了清单；取证过程如清单和调用日志所记录。",
  ],
};
export const PROVES_OFFLINE = {
  en: ["The evidence files in this package existed, byte for byte, no later than the trusted timestamp shown, and have not changed since.", PROVES.en[1]],
  zh: ["本证据包中的证据文件（逐字节）不晚于所示的可信时间戳时间已经存在，且此后未被改动。", PROVES.zh[1]],
};
// A verified log export proves the disclosed events were in the log: the checkpoint was sealed, not the export.
export const PROVES_LOG = {
  en: [
    "The disclosed events, with the values shown, were in the operator's log no later than the trusted timestamp and the block time of the anchored checkpoint, at the positions shown, and the log was not rewritten between the two checkpoints.",
    "Withheld fields are fixed by their salted hashes; the aggregates follow from the disclosed events.",
  ],
  zh: [
    "所披露的事件及其所示内容，不晚于已锚定检查点的可信时间戳时间和区块时间已在运营方的日志中，位置如所示；两个检查点之间日志未被改写。",
    "未披露的字段由其加盐哈希值固定；统计数据可由所披露的事件复算得出。",
  ],
};
export const PROVES_LOG_OFFLINE = {
  en: ["The disclosed events, with the values shown, were in the operator's log no later than the trusted timestamp of the anchored checkpoint, at the positions shown, and the log was not rewritten between the two checkpoints.", PROVES_LOG.en[1]],
  zh: ["所披露的事件及其所示内容，不晚于已锚定检查点的可信时间戳时间已在运营方的日志中，位置如所示；两个检查点之间日志未被改写。", PROVES_LOG.zh[1]],
};
export const DOES_NOT_PROVE = {
  en: [
    "That the web server itself vouched for the content: HTTP responses are not signed by their origin.",
    "Anything about the time before capture, or the truth of what the content says.",
    "Its legal weight, which stays with the court.",
  ],
  zh: [
    "网站服务器本身为内容作保：HTTP 响应并未由其来源签名。",
    "取证之前的任何情况，或内容所述是否属实。",
    "其法律效力，仍由法院认定。",
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
