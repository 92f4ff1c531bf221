// verifyPackage: open the package bytes, run every check, return the report (same shape as
// `tiezheng-verify --json`). It never throws for bad input: unusable input is a report too.

import { toHex } from "./bytes.js";
import { CheckFailure, Skip, Unusable } from "./errors.js";
import { CHECKS, DOES_NOT_PROVE, PROVES, isVerified, verdictOf } from "./report.js";
import { Context } from "./context.js";
import { REGISTRY } from "./checks.js";
import { openPackage } from "./package.js";
import { TimestampError } from "./timestamp.js";

async function runCheck(spec, ctx) {
  const base = { id: spec.id, group: spec.group, title: spec.title, basis: spec.basis };
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

function unusableReport(reason) {
  return { verified: false, verdict: "unusable", fingerprint: null, evidence_id: null, mode: "offline",
    checks: CHECKS.map((s) => ({ id: s.id, group: s.group, title: s.title, basis: s.basis, status: "skip", reason: "input unusable" })),
    facts: {}, development_trust: [], proves: [], does_not_prove: [], error: reason };
}

/**
 * Verify package bytes with `trust` (null: none given). `rpc` (a URL) makes H5 online.
 * Returns the report object, with `proves` only when verified.
 */
export async function verifyPackage(bytes, trust, { rpc = null, lang = "en" } = {}) {
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
  const checks = [];
  for (const spec of CHECKS) checks.push(await runCheck(spec, ctx));
  const verdict = verdictOf(checks, { offline: ctx.offline, unusable: false });
  const verified = isVerified(verdict);
  return {
    verified, verdict, fingerprint: toHex(pkg.fingerprint), evidence_id: manifest.evidenceId,
    mode: ctx.offline ? "offline" : "online", checks, facts: ctx.facts, development_trust: ctx.development,
    proves: verified ? PROVES[lang] : [], does_not_prove: verified ? DOES_NOT_PROVE[lang] : [],
  };
}
