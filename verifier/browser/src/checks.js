// The fourteen checks of DESIGN §5. Each takes the Context and returns [status, reason], or throws:
// CheckFailure becomes a fail, Skip a skip. Every check runs whatever the others found.

import { fromBase64, sha256, toHex } from "./bytes.js";
import { CheckFailure, Skip } from "./errors.js";
import { isObject } from "./json.js";
import { leafHash, verifyInclusion } from "./merkle.js";
import {
  ANCHOR_NAME, ANCHOR_PATH, DATAPACKAGE_DIGEST_PATH, DATAPACKAGE_PATH, MANIFEST_PATH, PROOF_PATH, SIGNATURE_PATH, TIMESTAMP_NAME,
  TSA_CERTS_NAME, readJson,
} from "./package.js";
import { checkEnvironment } from "./environment.js";
import { checkOnline } from "./rpc.js";
import { checkCallLog } from "./calllog.js";
import { checkNetwork } from "./network.js";
import { checkCorroboration } from "./corroboration.js";
import { checkNoticeComplete, checkReplyProvenance } from "./notice.js";
import { LOG_EXPORT_KIND, anchoredCheckpointSealed, checkAggregates, checkConsistent, checkIncluded, checkSigned } from "./logexport.js";
import { implausibleClaims } from "./claims.js";
import { STREAM_KIND, checkStream, checkStreamCorroboration, checkStreamLog, streamNetwork } from "./stream.js";
import { epochMicros, formatDuration, formatSeconds, formatTime, plural } from "./courttime.js";

const STRUCTURAL = new Set([DATAPACKAGE_PATH, DATAPACKAGE_DIGEST_PATH, MANIFEST_PATH, SIGNATURE_PATH]);
const SEALING = new Set([PROOF_PATH, ANCHOR_PATH]);
const MAX_LISTED = 3;
const isSealingFile = (name) =>
  SEALING.has(name) || TIMESTAMP_NAME.test(name) || TSA_CERTS_NAME.test(name) || ANCHOR_NAME.test(name);
const listing = (problems, max = MAX_LISTED) =>
  problems.slice(0, max).join("; ") + (problems.length > max ? `; and ${problems.length - max} more` : "");
// Facts keep ISO 8601 (data); a reason shows each time in the court format, Beijing time and UTC.
const iso = (d) => d.toISOString();
const when = (d) => formatTime(d);

// -- source -----------------------------------------------------------------------------------------

async function checkSignature(ctx) {
  const { manifest, signature } = ctx.pkg;
  if (signature === null) return ["fail", "the package has no evidence/manifest.sig"];
  let body, sig;
  try {
    body = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(signature));
    sig = fromBase64(body.signature);
  } catch (e) {
    throw new CheckFailure(`manifest.sig is malformed: ${e.message}`);
  }
  if (body.alg !== "Ed25519" || typeof body.key_id !== "string" || sig.length !== 64) {
    throw new CheckFailure("manifest.sig is not an Ed25519 signature");
  }
  let publicKey;
  try {
    publicKey = fromBase64(manifest.operator.publicKey);
  } catch {
    return ["fail", "manifest operator.public_key: public key is not base64"];
  }
  if (publicKey.length !== 32) return ["fail", `manifest operator.public_key: public key is ${publicKey.length} bytes, expected 32`];
  if (body.key_id !== toHex(await sha256(publicKey))) throw new CheckFailure("manifest.sig names another key than the operator's");
  const key = await crypto.subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, ["verify"]);
  if (!(await crypto.subtle.verify({ name: "Ed25519" }, key, sig, ctx.pkg.manifestBytes))) {
    throw new CheckFailure("manifest signature does not verify with the operator key");
  }
  const trusted = ctx.trust.operators.find((op) => op.keyId === body.key_id);
  if (!trusted) {
    throw new Skip(`signature by '${manifest.operator.name}' is valid, but key ${body.key_id.slice(0, 16)}… is not in the trust given: cannot judge who signed`, { missingTrust: true });
  }
  if (trusted.development) ctx.flagDevelopment(`operator key '${trusted.name}' is a development key`);
  ctx.facts.operator = { name: trusted.name, key_id: body.key_id };
  return ["pass", `manifest signed by trusted operator '${trusted.name}' (key ${body.key_id.slice(0, 16)}…)`];
}

function checkNeutral(ctx) {
  const { operator, requester } = ctx.pkg.manifest;
  const fold = (s) => s.trim().toLowerCase();
  if (!operator.name.trim() || !requester.tenant.trim()) return ["fail", "operator or requester is not recorded"];
  if ([fold(requester.tenant), fold(requester.identity)].includes(fold(operator.name))) {
    return ["fail", `the requester '${requester.tenant}' is the operator itself: not a neutral third party`];
  }
  ctx.facts.requester = { tenant: requester.tenant, identity: requester.identity };
  return ["pass", `operator '${operator.name}' acted for requester '${requester.tenant}' (${requester.identity})`];
}

// -- path -------------------------------------------------------------------------------------------

async function datapackageProblems(ctx, names) {
  let datapackage, digest;
  try {
    datapackage = readJson(ctx.pkg, DATAPACKAGE_PATH);
    digest = readJson(ctx.pkg, DATAPACKAGE_DIGEST_PATH);
  } catch (e) {
    return [e.message];
  }
  const resources = isObject(datapackage) ? datapackage.resources : undefined;
  if (!Array.isArray(resources)) return ["datapackage.json has no resources list"];
  const problems = [];
  const listed = new Map();
  for (const item of resources) {
    if (!isObject(item) || typeof item.path !== "string") { problems.push("datapackage.json has a malformed resource"); continue; }
    listed.set(item.path, item);
  }
  for (const name of [...names].filter((n) => !STRUCTURAL.has(n)).sort()) {
    const item = listed.get(name);
    if (!item) { problems.push(`${name} is not listed in datapackage.json`); continue; }
    const data = ctx.pkg.zip.read(name);
    if (item.hash !== `sha256:${toHex(await sha256(data))}` || item.bytes !== data.length) {
      problems.push(`datapackage.json has a wrong hash or size for ${name}`);
    }
  }
  for (const name of [...listed.keys()].filter((n) => !names.has(n)).sort()) problems.push(`datapackage.json lists ${name}, which the package lacks`);
  const own = toHex(await sha256(ctx.pkg.zip.read(DATAPACKAGE_PATH)));
  if (!isObject(digest) || digest.hash !== `sha256:${own}`) problems.push("datapackage-digest.json does not match datapackage.json");
  return problems;
}

async function checkComplete(ctx) {
  const names = new Set(ctx.pkg.zip.names);
  const artifacts = new Set(ctx.pkg.manifest.artifacts.map((a) => a.path));
  const missing = [...new Set([...artifacts, ...STRUCTURAL])].filter((n) => !names.has(n)).sort();
  const extra = [...names].filter((n) => !artifacts.has(n) && !STRUCTURAL.has(n) && !isSealingFile(n)).sort();
  let problems = [...missing.map((n) => `missing ${n}`), ...extra.map((n) => `unexpected ${n}`)];
  if (!missing.length) problems = problems.concat(await datapackageProblems(ctx, names));
  if (problems.length) return ["fail", listing(problems, 5)];
  const sealing = [...names].filter(isSealingFile).length;
  return ["pass", `${plural(names.size, "file")}: ${plural(artifacts.size, "artifact")}, the WACZ and Tiezheng files, ${plural(sealing, "proof file")}; datapackage.json hashes valid`];
}

// -- hash -------------------------------------------------------------------------------------------

async function checkArtifacts(ctx) {
  const problems = [];
  const { artifacts } = ctx.pkg.manifest;
  for (const a of artifacts) {
    const entry = ctx.pkg.zip.entries.get(a.path);
    if (!entry) { problems.push(`${a.path} is missing`); continue; }
    if (entry.size !== a.size) { problems.push(`${a.path} is ${entry.size} bytes, manifest says ${a.size}`); continue; }
    let data;
    try { data = ctx.pkg.zip.read(a.path); } catch (e) { problems.push(`${a.path}: ${e.message}`); continue; }
    const hex = toHex(await sha256(data));
    if (hex !== a.sha256) problems.push(`${a.path} has sha256 ${hex.slice(0, 16)}…, manifest says ${a.sha256.slice(0, 16)}…`);
  }
  if (problems.length) return ["fail", listing(problems)];
  if (!artifacts.length) return ["fail", "the manifest lists no artifacts"];
  return ["pass", `${artifacts.length === 1 ? "the" : "all"} ${plural(artifacts.length, "artifact")} match their sha256 and size`];
}

async function checkFingerprint(ctx) {
  const fingerprint = toHex(ctx.pkg.fingerprint);
  if (!ctx.pkg.manifestIsCanonical) return ["fail", "manifest.json is not in RFC 8785 canonical form, so its bytes were altered"];
  const sealed = (await ctx.proof()).leaf;
  if (ctx.pkg.manifest.kind === LOG_EXPORT_KIND) return anchoredCheckpointSealed(ctx, sealed);
  const leaf = toHex(sealed);
  if (leaf !== fingerprint) return ["fail", `fingerprint ${fingerprint} differs from the sealed leaf ${leaf}`];
  return ["pass", `fingerprint ${fingerprint} equals the sealed leaf`];
}

async function checkInclusion(ctx) {
  const p = await ctx.proof();
  await verifyInclusion(await leafHash(p.leaf), p.leafIndex, p.treeSize, p.path, p.root);
  ctx.facts.batch = { batch_id: p.batchId, root: toHex(p.root), tree_size: p.treeSize, leaf_index: p.leafIndex };
  return ["pass", `leaf ${p.leafIndex + 1} of ${p.treeSize} leads to batch root ${toHex(p.root)} (${plural(p.path.length, "hash", "hashes")})`];
}

async function checkTimestamp(ctx) {
  const results = await ctx.timestampResults();
  if (!results.length) throw new CheckFailure("the package carries no RFC 3161 timestamp (proof/timestamp-<n>.tsr)");
  const valid = await ctx.validTimestamps();
  const errors = results.filter((r) => r.error).map((r) => `${r.name.replace("proof/", "")}: ${r.error.message}`);
  if (!valid.length) {
    if (results.some((r) => r.error?.untrustedRoot)) {
      throw new Skip(`no token chains to a TSA root in the trust given: cannot judge (${listing(errors)})`, { missingTrust: true });
    }
    return ["fail", listing(errors)];
  }
  ctx.facts.timestamps = valid.map((v) => ({ file: v.name, tsa: v.info.tsaName, trusted_as: v.tsa.name,
    gen_time: iso(v.info.genTime), serial: v.info.serial, policy: v.info.policy, development: v.tsa.development }));
  for (const v of valid) if (v.tsa.development) ctx.flagDevelopment(`TSA '${v.tsa.name}' is a development TSA`);
  const first = valid[0];
  let reason = `${valid.length} of ${plural(results.length, "token")} valid; ${first.tsa.name} signed root ${toHex((await ctx.proof()).root).slice(0, 16)}… at ${when(first.info.genTime)}`;
  if (errors.length) reason += ` (invalid: ${listing(errors)})`;
  return ["pass", reason];
}

async function checkAnchor(ctx) {
  const proof = await ctx.proof();
  const anchor = await ctx.anchor();
  if (toHex(anchor.root) !== toHex(proof.root) || anchor.treeSize !== BigInt(proof.treeSize)) {
    return ["fail", `the transaction anchors root ${toHex(anchor.root).slice(0, 16)}… of ${anchor.treeSize} items, not this batch's ${toHex(proof.root).slice(0, 16)}… of ${proof.treeSize}`];
  }
  const chain = ctx.trust.chains.find((c) => c.chainId === anchor.chainId);
  const where = `tx ${anchor.txHash} in block ${anchor.blockNumber} (${anchor.blockHash}) of chain ${anchor.chainId}`;
  ctx.facts.anchor = { chain_id: anchor.chainId, chain: chain ? chain.name : null, tx_hash: anchor.txHash,
    block_number: anchor.blockNumber, block_hash: anchor.blockHash, block_time: iso(anchor.blockTime) };
  if (!chain) throw new Skip(`${where}: chain ${anchor.chainId} is not in the trust given: cannot judge`, { missingTrust: true });
  if (chain.development) ctx.flagDevelopment(`chain '${chain.name}' (${chain.chainId}) is a development chain`);
  if (ctx.offline) {
    return ["warn", `${where} carries the root (proven offline). Not checked offline: that this block is canonical; ask any explorer or RPC for block ${anchor.blockNumber} and compare its hash, or enter an RPC URL`];
  }
  return checkOnline(ctx, anchor, chain, where);
}

// -- time -------------------------------------------------------------------------------------------

const RPC_HINT = "enter an RPC URL to check it online";

async function verifiedAnchor(ctx) {
  try {
    return await ctx.anchor();
  } catch {
    return null; // H5 reports why
  }
}

async function earliestStamp(ctx) {
  const valid = await ctx.validTimestamps();
  return valid.length ? valid.reduce((a, b) => (b.info.genTime < a.info.genTime ? b : a)).info : null;
}

const claimedBlock = (a) => `block ${a.blockNumber} of chain ${a.chainId} at ${when(a.blockTime)}`;

async function checkTimesAgree(ctx) {
  const ended = ctx.captureEnded();
  const stamp = await earliestStamp(ctx);
  if (!stamp) throw new Skip("no valid timestamp to compare (see H4)");
  const slack = (stamp.accuracyMs || 0) + ctx.trust.policy.toleranceMs;
  if (ended.getTime() > stamp.genTime.getTime() + slack) {
    return ["fail", `capture ended ${when(ended)}, after the TSA time ${when(stamp.genTime)} (${formatDuration((ended - stamp.genTime) / 1000)} later, allowed ${formatSeconds(slack / 1000)})`];
  }
  const reason = `capture ended ${when(ended)} ≤ TSA ${when(stamp.genTime)}`;
  const anchor = await verifiedAnchor(ctx);
  if (!anchor) return ["warn", `${reason}; no verified block time to compare (see H5)`];
  // Offline too: a package whose own anchor claims a block before its timestamp contradicts itself.
  if (stamp.genTime.getTime() - slack > anchor.blockTime.getTime()) {
    return ["fail", `TSA time ${when(stamp.genTime)} is after the block time ${when(anchor.blockTime)} (allowed ${formatSeconds(slack / 1000)})`];
  }
  if (!ctx.offline) return ["pass", `${reason} ≤ block ${when(anchor.blockTime)} (within a tolerance of ${formatSeconds(slack / 1000)})`];
  const problems = implausibleClaims(anchor, { stamped: stamp.genTime, slackMs: slack, windowMs: ctx.trust.policy.prechainWindowMs });
  if (problems.length) return ["fail", `the anchor's claimed ${claimedBlock(anchor)} is implausible: ${problems.join("; ")}`];
  return ["pass", `${reason} (trusted time). Not checked offline: the block time ${when(anchor.blockTime)} is the anchor's claim (plausible: after the TSA time, within the policy window, header well formed); ${RPC_HINT}`];
}

// The gap in seconds as a reader is told it, from the microseconds both records carry (a Date keeps
// milliseconds); the verdict compares the Dates, as before.
function statedGap(ctx, later, laterMicros) {
  const ended = epochMicros(ctx.pkg.manifest.capture.ended_at);
  return ended !== null && laterMicros !== null && laterMicros !== undefined
    ? Number(laterMicros - ended) / 1e6 : (later - ctx.captureEnded()) / 1000;
}

async function checkPrechainGap(ctx) {
  const ended = ctx.captureEnded();
  const window = ctx.trust.policy.prechainWindowMs;
  const hours = window === 3600e3 ? "1 hour" : `${window / 3600e3} hours`; // exact, as the trust file sets it
  const tooLong = (gap, shown, until) => (gap > window
    ? ["fail", `${formatDuration(shown)} passed between the end of capture and ${until}, more than the policy window of ${hours}: that time is not covered`]
    : null);
  const blockGap = (anchor) => statedGap(ctx, anchor.blockTime, BigInt(anchor.blockTime.getTime()) * 1000n);
  if (!ctx.offline) {
    let anchor;
    try { anchor = await ctx.anchor(); } catch (e) { throw new Skip(`no verified anchor time (${e.message})`); }
    const shown = blockGap(anchor);
    ctx.facts.prechain_gap_seconds = Math.round(shown * 1000) / 1000;
    return tooLong(anchor.blockTime - ended, shown, "anchoring")
      ?? ["pass", `anchored ${formatDuration(Math.max(shown, 0))} after the capture ended (policy window ${hours})`];
  }
  // Offline the trusted timestamp fixes the content; the anchor's block time is only a claim.
  const stamp = await earliestStamp(ctx);
  if (!stamp) throw new Skip(`no trusted time to measure the gap: no valid timestamp (see H4); the anchor's block time is a claim offline; ${RPC_HINT}`);
  const shown = statedGap(ctx, stamp.genTime, stamp.genTimeMicros);
  ctx.facts.prechain_gap_seconds = Math.round(shown * 1000) / 1000;
  const failed = tooLong(stamp.genTime - ended, shown, "the trusted timestamp");
  if (failed) return failed;
  const anchor = await verifiedAnchor(ctx);
  if (anchor) {
    // The package's own claim of a later anchoring counts against it, never for it.
    const claimed = tooLong(anchor.blockTime - ended, blockGap(anchor), `the anchor's claimed ${claimedBlock(anchor)}`);
    if (claimed) return claimed;
  }
  return ["pass", `fixed by the trusted timestamp ${formatDuration(Math.max(shown, 0))} after the capture ended (policy window ${hours}). Not checked offline: when the batch went on chain (the anchor's block time is a claim); ${RPC_HINT}`];
}

// A stream recording has its own P1, P2 and S3 (stream.js), as verifier/checks/stream.py has.
const isStream = (ctx) => ctx.pkg.manifest.kind === STREAM_KIND;

export const REGISTRY = {
  S1: checkSignature,
  S2: checkNeutral,
  S3: (ctx) => (isStream(ctx) ? streamNetwork(ctx) : checkNetwork(ctx)),
  S4: checkEnvironment,
  P1: (ctx) => (isStream(ctx) ? checkStreamLog(ctx) : checkCallLog(ctx)),
  P2: (ctx) => (isStream(ctx) ? checkStreamCorroboration(ctx) : checkCorroboration(ctx)),
  P3: checkComplete,
  H1: checkArtifacts,
  H2: checkFingerprint,
  H3: checkInclusion,
  H4: checkTimestamp,
  H5: checkAnchor,
  T1: checkTimesAgree,
  T2: checkPrechainGap,
  N1: checkReplyProvenance,
  N2: checkNoticeComplete,
  L1: checkIncluded,
  L2: checkConsistent,
  L3: checkSigned,
  L4: checkAggregates,
  V1: checkStream,
};
