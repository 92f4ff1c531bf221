// The checks of a log export (kind log-export), L1-L4: the disclosed events are in a checkpoint that
// the sealed (anchored) checkpoint extends, both signed by the operator, and the aggregates recompute.
// The package's proof/ seals the anchored checkpoint (its leaf is that file's sha256), so H2-H5 fix it
// in time and on chain; L2 ties the events' checkpoint to it, L1 each event to that checkpoint.

import { fromBase64, fromHex, sha256, toHex } from "./bytes.js";
import { CheckFailure, Skip } from "./errors.js";
import { isObject } from "./json.js";
import { pyRepr } from "./pyrepr.js";
import { plural } from "./courttime.js";
import { leafHash, verifyConsistency, verifyInclusion } from "./merkle.js";
import { PROOF_PATH } from "./package.js";
import { parseCheckpoint, verifyNote } from "./signednote.js";
import { aggregate, canonical, readDisclosed, sortRows } from "./eventlog.js";

export const LOG_EXPORT_KIND = "log-export";
const EVENTS_PATH = "evidence/log/events.jsonl";
const CHECKPOINT_PATH = "evidence/log/checkpoint";
export const ANCHORED_CHECKPOINT_PATH = "evidence/log/anchored-checkpoint";
const CONSISTENCY_PATH = "evidence/log/consistency.json";
const AGGREGATES_PATH = "evidence/log/aggregates.json";
const CONSISTENCY_FORMAT = "tiezheng-log-consistency/1";
const AGGREGATES_FORMAT = "tiezheng-log-aggregates/1";
const MAX_LISTED = 5;
const MAX_RECORD_BYTES = 1 << 20;
const MAX_EVENTS_BYTES = 1 << 30;

const listing = (problems) =>
  problems.slice(0, MAX_LISTED).join("; ") + (problems.length > MAX_LISTED ? `; and ${problems.length - MAX_LISTED} more` : "");

function requireExport(ctx) {
  if (ctx.pkg.manifest.kind !== LOG_EXPORT_KIND) throw new Skip("not a log export");
}

function read(ctx, path, limit = 16 << 20) {
  if (!ctx.pkg.zip.has(path)) throw new CheckFailure(`the export has no ${path}`);
  try { return ctx.pkg.zip.read(path, limit); } catch (e) { throw new CheckFailure(`${path} unreadable: ${e.message}`); }
}

function parseJsonText(bytes) {
  return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
}

/** Every export record with its inclusion path, memoised on the context. Throws CheckFailure. */
function events(ctx) {
  ctx.logEvents ??= (async () => {
    if (!ctx.pkg.zip.has(EVENTS_PATH)) throw new CheckFailure(`the export has no ${EVENTS_PATH}`);
    let data;
    try { data = ctx.pkg.zip.read(EVENTS_PATH, MAX_EVENTS_BYTES); } catch (e) { throw new CheckFailure(`${EVENTS_PATH} unreadable: ${e.message}`); }
    const records = [];
    let start = 0, number = 0;
    while (start < data.length) {
      let end = data.indexOf(0x0a, start);
      end = end < 0 ? data.length : end + 1;
      number += 1;
      const line = data.subarray(start, end);
      start = end;
      if (line.length > MAX_RECORD_BYTES) throw new CheckFailure(`events.jsonl line ${number} is over ${MAX_RECORD_BYTES} bytes`);
      const where = `events.jsonl line ${number}`;
      let record, path;
      try {
        record = parseJsonText(line);
        const inclusion = isObject(record) ? record.inclusion ?? [] : null;
        if (!Array.isArray(inclusion)) throw new Error("no list");
        path = inclusion.map((h) => fromHex(h));
      } catch {
        throw new CheckFailure(`${where}: not a JSON record with a hex inclusion path`);
      }
      records.push([await readDisclosed(record, where), path]);
    }
    return records;
  })();
  return ctx.logEvents;
}

/** L1: every disclosed event recomputes to a leaf included in the checkpoint. */
export async function checkIncluded(ctx) {
  requireExport(ctx);
  const [checkpoint] = parseCheckpoint(read(ctx, CHECKPOINT_PATH));
  const records = await events(ctx);
  if (!records.length) return ["fail", "the export discloses no event"];
  const problems = [];
  const seen = new Set();
  for (const [event, path] of records) {
    if (seen.has(event.index)) { problems.push(`event ${event.index} is disclosed twice`); continue; }
    seen.add(event.index);
    try {
      await verifyInclusion(await leafHash(event.entry), event.index, checkpoint.size, path, checkpoint.root);
    } catch (e) {
      if (!(e instanceof CheckFailure)) throw e;
      problems.push(`event ${event.index}: ${e.message}`);
    }
  }
  const withheld = [...new Set(records.flatMap(([event]) => event.withheld))].sort();
  ctx.facts.log = { ...(ctx.facts.log ?? {}), origin: checkpoint.origin, checkpoint_size: checkpoint.size, events: records.length, withheld_fields: withheld };
  if (problems.length) return ["fail", `${problems.length} of ${plural(records.length, "event")} not included: ${listing(problems)}`];
  const hidden = withheld.length ? `; withheld fields (salted hashes only): ${withheld.join(", ")}` : "";
  return ["pass", `all ${plural(records.length, "disclosed event")} are included in checkpoint ${checkpoint.origin} of size ${checkpoint.size}${hidden}`];
}

/** L2: the checkpoint is consistent (RFC 9162) with the anchored checkpoint, the one sealed. */
export async function checkConsistent(ctx) {
  requireExport(ctx);
  const [checkpoint] = parseCheckpoint(read(ctx, CHECKPOINT_PATH));
  const anchoredBytes = read(ctx, ANCHORED_CHECKPOINT_PATH);
  const [anchored] = parseCheckpoint(anchoredBytes);
  if (anchored.origin !== checkpoint.origin) {
    return ["fail", `the anchored checkpoint is of log ${pyRepr(anchored.origin)}, not ${pyRepr(checkpoint.origin)}`];
  }
  const raw = read(ctx, CONSISTENCY_PATH);
  let proof;
  try {
    const document = parseJsonText(raw);
    if (!isObject(document)) throw new Error("not an object");
    if (document.format !== CONSISTENCY_FORMAT) throw new CheckFailure(`consistency.json format is not '${CONSISTENCY_FORMAT}'`);
    if (!Array.isArray(document.consistency)) throw new Error("not a list");
    proof = document.consistency.map((h) => fromHex(h));
  } catch (e) {
    if (e instanceof CheckFailure) throw e;
    throw new CheckFailure("consistency.json is not a list of hex hashes");
  }
  await verifyConsistency(checkpoint.size, anchored.size, proof, checkpoint.root, anchored.root);
  if (ctx.pkg.zip.has(PROOF_PATH)) {
    const sealed = (await ctx.proof()).leaf;
    if (toHex(sealed) !== toHex(await sha256(anchoredBytes))) {
      return ["fail", "the anchored checkpoint is not the one sealed: its sha256 differs from proof.json's leaf"];
    }
  }
  ctx.facts.log = { ...(ctx.facts.log ?? {}), anchored_size: anchored.size };
  const how = anchored.size === checkpoint.size ? "is the anchored checkpoint"
    : `is extended by the anchored checkpoint of size ${anchored.size} (${plural(proof.length, "hash", "hashes")} of consistency proof)`;
  return ["pass", `checkpoint of size ${checkpoint.size} ${how}; nothing logged before it was removed or rewritten`];
}

/** The name of the trusted operator whose key signed `note` (under any key name), or null. */
async function trustedSigner(ctx, note) {
  for (const operator of ctx.trust.operators) {
    for (const signature of note.signatures) {
      try {
        await verifyNote(note, signature.name, operator.publicKey);
      } catch (e) {
        if (e instanceof CheckFailure) continue;
        throw e;
      }
      if (operator.development) ctx.flagDevelopment(`operator key '${operator.name}' is a development key`);
      return operator.name;
    }
  }
  return null;
}

/** L3: both checkpoints' signed notes verify with a trusted operator key. */
export async function checkSigned(ctx) {
  requireExport(ctx);
  const signers = [];
  let origin = "";
  for (const path of [CHECKPOINT_PATH, ANCHORED_CHECKPOINT_PATH]) {
    const [checkpoint, note] = parseCheckpoint(read(ctx, path));
    origin = checkpoint.origin;
    const signer = await trustedSigner(ctx, note);
    if (signer === null) {
      try {
        let key;
        try { key = fromBase64(ctx.pkg.manifest.operator.publicKey); } catch { throw new CheckFailure("public key is not base64"); }
        if (key.length !== 32) throw new CheckFailure(`public key is ${key.length} bytes, expected 32`);
        await verifyNote(note, checkpoint.origin, key);
      } catch (e) {
        if (!(e instanceof CheckFailure)) throw e;
        return ["fail", `${path.split("/").pop()}: no valid signature by a trusted operator key (${e.message})`];
      }
      throw new Skip(`cannot judge: the operator key that signed checkpoint ${checkpoint.origin} is not in the trust given (get the operator's trust file, e.g. from /.well-known/tiezheng/trust.toml, and pass it with --trust FILE)`, { missingTrust: true });
    }
    signers.push(signer);
  }
  return ["pass", `both checkpoints are signed notes of log ${origin}, verified with the operator key of '${signers[0]}'`];
}

function table(item, number) {
  if (!isObject(item) || !Array.isArray(item.rows)) throw new CheckFailure(`aggregates.json table ${number} has no rows`);
  const by = item.by ?? [], per = item.per ?? null;
  if (!Array.isArray(by) || !by.every((b) => typeof b === "string") || !(per === null || typeof per === "string")) {
    throw new CheckFailure(`aggregates.json table ${number}: by is a list of names, per a string or null`);
  }
  return [by, per, item.rows];
}

/** L4: every aggregate table recomputes from the disclosed events. */
export async function checkAggregates(ctx) {
  requireExport(ctx);
  if (!ctx.pkg.zip.has(AGGREGATES_PATH)) throw new Skip("the export carries no aggregates");
  let tables;
  try {
    const document = parseJsonText(read(ctx, AGGREGATES_PATH));
    if (!isObject(document)) throw new Error("not an object");
    tables = document.format === AGGREGATES_FORMAT ? document.tables : null;
    if (tables === undefined) throw new Error("no tables");
  } catch (e) {
    if (e instanceof CheckFailure && /unreadable|has no/.test(e.message)) throw e;
    throw new CheckFailure("aggregates.json is malformed");
  }
  if (!Array.isArray(tables)) throw new CheckFailure(`aggregates.json format is not '${AGGREGATES_FORMAT}'`);
  const values = (await events(ctx)).map(([event]) => event.values);
  const problems = [];
  tables.forEach((item, number) => {
    const [by, per, rows] = table(item, number);
    let computed;
    try {
      computed = aggregate(values, by, per);
    } catch (e) {
      if (!(e instanceof CheckFailure)) throw e;
      problems.push(`table ${number}: ${e.message}`);
      return;
    }
    if (canonical(computed) !== canonical(sortRows(rows))) {
      problems.push(`table ${number} (by ${by.join(", ") || "nothing"}${per ? ` per ${per}` : ""}) does not recompute: ${rows.length} rows given, ${computed.length} computed`);
    }
  });
  if (problems.length) return ["fail", listing(problems)];
  return ["pass", `every aggregate table (${tables.length}) recomputes from the ${plural(values.length, "disclosed event")}`];
}

/** H2 of a log export: what was sealed is the anchored checkpoint the signed manifest lists. */
export async function anchoredCheckpointSealed(ctx, leaf) {
  if (!ctx.pkg.zip.has(ANCHORED_CHECKPOINT_PATH)) return ["fail", `the log export has no ${ANCHORED_CHECKPOINT_PATH}`];
  const digest = toHex(await sha256(ctx.pkg.zip.read(ANCHORED_CHECKPOINT_PATH)));
  if (digest !== toHex(leaf)) return ["fail", `the anchored checkpoint's sha256 ${digest} differs from the sealed leaf ${toHex(leaf)}`];
  return ["pass", `the anchored checkpoint's sha256 ${digest} equals the sealed leaf`];
}
