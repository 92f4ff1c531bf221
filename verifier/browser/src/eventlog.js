// Event-log leaves with selective disclosure, and the aggregates a log export may carry (DESIGN's
// log-export kind). Each field is committed to on its own: commitment = sha256(field salt ‖
// RFC 8785 value), field salt = sha256(event salt ‖ field name)[:16]; the log entry is the RFC 8785
// JSON {"fields": {name: hex commitment}}, and its leaf the RFC 9162 leaf hash of that entry. A
// disclosed field recomputes its commitment from its value and salt; a withheld one gives only it.

import canonicalize from "canonicalize";
import { sha256 } from "@noble/hashes/sha2.js";
import { concat, encoder, fromHex, toHex } from "./bytes.js";
import { CheckFailure } from "./errors.js";
import { isObject } from "./json.js";
import { pyRepr } from "./pyrepr.js";

const SALT_BYTES = 16;
const BUCKETS = ["hour", "day"];
export const COUNT_COLUMN = "events";

export const canonical = (value) => {
  const text = canonicalize(value);
  if (text === undefined) throw new CheckFailure("value cannot be canonicalised as RFC 8785 JSON");
  return text;
};

// Synchronous SHA-256 (@noble/hashes), as in merkle.js: one small hash per disclosed field of every event.
const commitment = (fieldSalt, value) => toHex(sha256(concat(fieldSalt, encoder.encode(canonical(value)))));

/** Recompute one export record's log entry: { index, values, withheld, entry }. Throws CheckFailure. */
export async function readDisclosed(record, where) {
  if (!isObject(record) || !Number.isSafeInteger(record.index)) throw new CheckFailure(`${where}: not an event record with an integer index`);
  const disclosed = record.disclosed ?? {}, withheld = record.withheld ?? {};
  if (!isObject(disclosed) || !isObject(withheld)) throw new CheckFailure(`${where}: disclosed and withheld must be objects`);
  if (Object.keys(disclosed).some((k) => Object.hasOwn(withheld, k))) throw new CheckFailure(`${where}: a field is both disclosed and withheld`);
  const commitments = {}, values = {};
  for (const [name, opened] of Object.entries(disclosed)) {
    let own;
    try {
      if (!isObject(opened) || !Object.hasOwn(opened, "salt") || !Object.hasOwn(opened, "value")) throw new Error("no salt or value");
      own = fromHex(opened.salt);
    } catch {
      throw new CheckFailure(`${where}: field ${pyRepr(name)} lacks a hex salt or a value`);
    }
    if (own.length !== SALT_BYTES) throw new CheckFailure(`${where}: field ${pyRepr(name)} has a salt of ${own.length} bytes`);
    commitments[name] = commitment(own, opened.value);
    values[name] = opened.value;
  }
  for (const [name, hashed] of Object.entries(withheld)) {
    if (typeof hashed !== "string" || hashed.length !== 64) throw new CheckFailure(`${where}: withheld field ${pyRepr(name)} is not a sha256 in hex`);
    commitments[name] = hashed;
  }
  return { index: record.index, values, withheld: Object.keys(withheld).sort(), entry: encoder.encode(canonical({ fields: commitments })) };
}

const ISO = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2})(?::?(\d{2})(?::?(\d{2})(?:[.,](\d{1,6}))?)?)?)?(Z|[+-]\d{2}(?::?\d{2})?)?$/;

/** The hour (2026-12-01T10Z) or day (2026-12-01) of an ISO 8601 event time, in UTC. */
export function bucketOf(eventTime, per) {
  if (typeof eventTime !== "string") throw new CheckFailure("event_time is not a string");
  const m = ISO.exec(eventTime);
  const quoted = pyRepr(eventTime.slice(0, 40));
  if (!m) throw new CheckFailure(`event_time ${quoted} is not ISO 8601`);
  if (!m[8]) throw new CheckFailure(`event_time ${quoted} has no time zone`);
  let offsetMinutes = 0;
  if (m[8] !== "Z") {
    const digits = m[8].slice(1).replace(":", "");
    offsetMinutes = (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2, 4) || 0)) * (m[8][0] === "-" ? -1 : 1);
  }
  const utc = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4] ?? 0), Number(m[5] ?? 0), Number(m[6] ?? 0))
    - offsetMinutes * 60e3;
  const moment = new Date(utc);
  if (Number.isNaN(utc) || moment.getUTCDate() === 0) throw new CheckFailure(`event_time ${quoted} is not ISO 8601`);
  const day = moment.toISOString().slice(0, 10);
  return per === "hour" ? `${day}T${moment.toISOString().slice(11, 13)}Z` : day;
}

/** Count events per `per` bucket of event_time (or overall) and per value of each `by` field; rows sorted. */
export function aggregate(events, by, per) {
  if (per !== null && !BUCKETS.includes(per)) throw new CheckFailure(`aggregate bucket ${pyRepr(per)} is not one of ${BUCKETS.join(", ")}`);
  const needed = [...by, ...(per ? ["event_time"] : [])];
  const counts = new Map();
  for (const event of events) {
    const missing = needed.filter((name) => !Object.hasOwn(event, name));
    if (missing.length) throw new CheckFailure(`an event does not disclose ${missing.join(", ")}, which the table counts by`);
    const key = {};
    for (const name of by) key[name] = event[name];
    if (per) key[per] = bucketOf(event.event_time, per);
    const text = canonical(key);
    counts.set(text, (counts.get(text) ?? 0) + 1);
  }
  const rows = [...counts].map(([text, n]) => ({ ...JSON.parse(text), [COUNT_COLUMN]: n }));
  return sortRows(rows);
}

const byCanonical = (a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);
export const sortRows = (rows) => rows.map((r) => [canonical(r), r]).sort(byCanonical).map(([, r]) => r);
