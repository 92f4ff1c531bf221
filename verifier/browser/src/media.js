// P2, embedded media (evidence/media.json, tiezheng-media/1): each indexed item names a WARC response
// record for its URL whose payload (body with transfer and content codings removed) has the item's
// size and sha256; each saved media/<sha256>.<ext> file holds the bytes its name and index item say.
// A capture without the index is not judged on it. Mirrors verifier/checks/media.py.

import { sha256, toHex } from "./bytes.js";
import { decodeBody, parseResponse } from "./http.js";
import { isObject } from "./json.js";
import { readJson } from "./package.js";
import { WARC_PATH, warcRecords } from "./warc.js";
import { plural } from "./courttime.js";

export const MEDIA_INDEX_PATH = "evidence/media.json";
const MEDIA_FORMAT = "tiezheng-media/1";
const MEDIA_FOLDER = "media/";
const MAX_MEDIA_ITEMS = 5000;
const MAX_MEDIA_INDEX_BYTES = 16 << 20;
const MAX_MEDIA_PAYLOAD_BYTES = 64 << 20;
const HEX64 = /^[0-9a-f]{64}$/;
const SAVED = /^media\/[0-9a-f]{64}\.[a-z0-9]{1,8}$/;

function parseItems(index) {
  if (!isObject(index) || index.format !== MEDIA_FORMAT || !Array.isArray(index.items)) {
    throw new Error(`media.json is not in the ${MEDIA_FORMAT} format`);
  }
  if (index.items.length > MAX_MEDIA_ITEMS) throw new Error(`media.json lists over ${MAX_MEDIA_ITEMS} items`);
  return index.items.map((item, i) => {
    const where = `media.json items[${i}]`;
    if (!isObject(item)) throw new Error(`${where} is not an object`);
    for (const key of ["url", "media_type", "sha256", "warc_record_id"]) {
      if (typeof item[key] !== "string") throw new Error(`${where} lacks one of url, media_type, sha256, warc_record_id`);
    }
    for (const key of ["status", "size"]) {
      if (!Number.isInteger(item[key]) || item[key] < 0) throw new Error(`${where} has no valid ${key}`);
    }
    if (!HEX64.test(item.sha256)) throw new Error(`${where} sha256 is not 64 lowercase hex digits`);
    if (item.saved_as != null && (typeof item.saved_as !== "string" || !SAVED.test(item.saved_as))) {
      throw new Error(`${where} saved_as is not media/<sha256>.<ext>`);
    }
    return item;
  });
}

async function warcProblems(ctx, items) {
  const byRecord = new Map();
  for (const item of items) {
    if (!byRecord.has(item.warc_record_id)) byRecord.set(item.warc_record_id, []);
    byRecord.get(item.warc_record_id).push(item);
  }
  const problems = [];
  const seen = new Set();
  for (const record of await warcRecords(ctx.pkg.zip.read(WARC_PATH))) {
    const listed = byRecord.get(record.recordId);
    if (!listed || record.type !== "response") continue;
    seen.add(record.recordId);
    let payload;
    try { payload = decodeBody(parseResponse(record.block), MAX_MEDIA_PAYLOAD_BYTES); } catch (e) {
      problems.push(`the WARC record of medium ${listed[0].url.slice(0, 120)} cannot be decoded: ${e.message}`);
      continue;
    }
    const digest = toHex(await sha256(payload));
    for (const item of listed) {
      if (record.targetUri !== item.url) problems.push(`medium ${item.url.slice(0, 120)} names a WARC record of ${record.targetUri.slice(0, 120)}`);
      else if (digest !== item.sha256 || payload.length !== item.size) {
        problems.push(`medium ${item.url.slice(0, 120)}: the index says sha256 ${item.sha256.slice(0, 16)}… (${item.size} bytes), its WARC payload is ${digest.slice(0, 16)}… (${payload.length} bytes)`);
      }
    }
  }
  for (const [recordId, listed] of byRecord) {
    if (!seen.has(recordId)) problems.push(`medium ${listed[0].url.slice(0, 120)} names WARC record ${recordId.slice(0, 60)}, which is not a response in the WARC`);
  }
  return problems;
}

async function savedProblems(ctx, items) {
  const named = new Map(items.filter((i) => i.saved_as != null).map((i) => [i.saved_as, i.sha256]));
  const saved = ctx.pkg.manifest.artifacts.map((a) => a.path).filter((p) => p.startsWith(MEDIA_FOLDER));
  const problems = [];
  for (const path of saved) {
    if (!ctx.pkg.zip.has(path)) continue; // P2 already reports a listed artifact that is missing
    const digest = toHex(await sha256(ctx.pkg.zip.read(path)));
    if (!named.has(path)) problems.push(`${path} is saved but no media index item names it`);
    else if (digest !== named.get(path) || !path.startsWith(`${MEDIA_FOLDER}${digest}.`)) {
      problems.push(`${path} holds bytes with sha256 ${digest.slice(0, 16)}…, not the indexed medium's`);
    }
  }
  for (const path of named.keys()) if (!saved.includes(path)) problems.push(`the media index names ${path}, which the manifest does not list`);
  return [problems, saved.length];
}

// [problems, clause for P2's reason or null without an index]
export async function mediaOutcome(ctx) {
  if (!ctx.pkg.zip.has(MEDIA_INDEX_PATH)) return [[], null];
  let items;
  try { items = parseItems(readJson(ctx.pkg, MEDIA_INDEX_PATH, MAX_MEDIA_INDEX_BYTES)); } catch (e) {
    return [[e.message.startsWith("media.json") ? e.message : `media.json cannot be read: ${e.message}`], null];
  }
  const problems = await warcProblems(ctx, items);
  const [saved, savedCount] = await savedProblems(ctx, items);
  problems.push(...saved);
  let clause = `${items.length} embedded ${items.length === 1 ? "medium matches its WARC payload" : "media match their WARC payloads"}`;
  if (savedCount) clause += `, ${plural(savedCount, "saved medium file")} ${savedCount === 1 ? "matches" : "match"} the index`;
  return [problems, clause];
}
