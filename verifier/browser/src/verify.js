// verifyPackage: open the package bytes, run every check, return the report (same shape as
// `tiezheng-verify --json`). It never throws for bad input: unusable input is a report too.

import { toHex } from "./bytes.js";
import { CheckFailure, Skip, Unusable } from "./errors.js";
import { CHECKS, DOES_NOT_PROVE, PROVES, PROVES_LOG, PROVES_LOG_OFFLINE, PROVES_OFFLINE, VERDICTS, checksFor, isVerified, verdictOf } from "./report.js";
import { composeZh, developmentZh } from "./wording.js";
import { Context } from "./context.js";
import { REGISTRY } from "./checks.js";
import { PROOF_PATH, openPackage } from "./package.js";
import { TimestampError } from "./timestamp.js";

async function runCheck(spec, ctx) {
  const base = { id: spec.id, group: spec.group, title: spec.title, basis: spec.basis, basis_zh: spec.basis_zh };
  try {
    const [status, reason] = await REGISTRY[spec.id](ctx);
    return { ...base, status, reason };
  } catch (e) {
    if (e instanceof Skip) return { ...base, status: "skip", reason: e.message, missingTrust: e.missingTrust };
    if (e instanceof CheckFailure || e instanceof Unusable || e instanceof TimestampError) {
      return { ...base, status: "fail", reason: e.message };
    }
    // A bug or a library error on hostile data: still a finding against this check, never a pass.
    return { ...base, status: "fail", reason: `could not be checked: ${e && e.message ? e.message : e}` };
  }
}

// The Chinese finding of each check, composed once every check has run, from the facts all of them recorded.
function withChinese(check, ctx) {
  const reasonZh = composeZh(check.id, check.status, ctx.facts, { kind: ctx.pkg.manifest.kind, offline: ctx.offline,
    missingTrust: Boolean(check.missingTrust), sealed: ctx.pkg.zip.entries.has(PROOF_PATH) });
  return { ...check, reason_zh: reasonZh };
}

function unusableReport(reason) {
  return { verified: false, verdict: "unusable", fingerprint: null, evidence_id: null, mode: "offline",
    checks: CHECKS.map((s) => ({ id: s.id, group: s.group, title: s.title, basis: s.basis, basis_zh: s.basis_zh, status: "skip",
      reason: "input unusable", reason_zh: composeZh(s.id, "skip", {}, { unusable: true }) })),
    facts: {}, development_trust: [], development_trust_zh: [], proves: [], does_not_prove: [], proves_zh: [],
    does_not_prove_zh: [], error: reason };
}

/**
 * Verify package bytes with `trust` (null: none given). `rpc` (a URL) makes H5 online.
 * Returns the report object: each finding in English (`reason`) and Chinese (`reason_zh`), and
 * "what this proves" in both languages only when verified.
 */
export async function verifyPackage(bytes, trust, { rpc = null } = {}) {
  let pkg;
  try {
    pkg = await openPackage(bytes);
  } catch (e) {
    if (e instanceof Unusable) return unusableReport(e.message);
    return unusableReport(`damaged zip file: ${e && e.message ? e.message : e}`);
  }
  const empty = { operators: [], tsas: [], chains: [], sources: [], policy: { prechainWindowMs: 24 * 3600e3, toleranceMs: 300e3 } };
  const ctx = new Context(pkg, trust || empty, { rpc });
  const { manifest } = pkg;
  ctx.facts.kind = manifest.kind;
  ctx.facts.target = manifest.target;
  ctx.facts.capture = { started_at: manifest.capture.started_at ?? null, ended_at: manifest.capture.ended_at ?? null };
  const results = [];
  for (const spec of checksFor(manifest.kind)) results.push(await runCheck(spec, ctx));
  const checks = results.map((c) => withChinese(c, ctx));
  const verdict = verdictOf(checks, { offline: ctx.offline, unusable: false });
  const verified = isVerified(verdict);
  const offlineVerdict = verdict === VERDICTS.VERIFIED_OFFLINE;
  const proves = manifest.kind === "log-export" ? (offlineVerdict ? PROVES_LOG_OFFLINE : PROVES_LOG) : (offlineVerdict ? PROVES_OFFLINE : PROVES);
  return {
    verified, verdict, fingerprint: toHex(pkg.fingerprint), evidence_id: manifest.evidenceId,
    mode: ctx.offline ? "offline" : "online", checks, facts: ctx.facts, development_trust: ctx.development,
    development_trust_zh: ctx.development.map(developmentZh), proves: verified ? proves.en : [],
    does_not_prove: verified ? DOES_NOT_PROVE.en : [], proves_zh: verified ? proves.zh : [],
    does_not_prove_zh: verified ? DOES_NOT_PROVE.zh : [],
  };
}
