// P1, the capture's call log (evidence/capture-log.jsonl): one RFC 8785 JSON line per step, each
// holding the sha256 of the line before it (the first holds 64 zeros); the signed manifest names the
// last line's hash as capture.log_head, so the chain is fixed end to end. Times must be monotonic
// and inside the capture window, and every step done by the system, the required steps in order.

import { sha256, toHex } from "./bytes.js";
import { isEmail } from "./package.js";
import { CheckFailure, Skip } from "./errors.js";
import { isObject, parseJson } from "./json.js";
import { epochMicros, formatDuration, plural } from "./courttime.js";

export const CAPTURE_LOG_PATH = "evidence/capture-log.jsonl";
const GENESIS = "0".repeat(64);
const MAX_LOG_BYTES = 4 << 20;
const MAX_LOG_LINES = 10_000;
const HEX64 = /^[0-9a-f]{64}$/;
const TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;
const SYSTEM_ACTOR = "system";
const REQUIRED_STEPS = ["start", "resolve", "fetch", "navigate", "wait", "screenshot", "dom", "warc", "network", "package"];

const broken = (line, why) => new CheckFailure(`capture-log line ${line}: ${why}`);
// Microsecond timestamps in this fixed format sort as strings exactly as they do as times.
const validTime = (value) => (typeof value === "string" && TIME.test(value) && !Number.isNaN(Date.parse(value)) ? value : null);

async function parseLine(raw, number) {
  let entry;
  try { entry = parseJson(raw, `capture-log line ${number}`); } catch (e) { throw broken(number, e.message); }
  if (!isObject(entry)) throw broken(number, "not a JSON object");
  const time = validTime(entry.time);
  if (!time) throw broken(number, `time ${JSON.stringify(entry.time)} is not UTC with microseconds`);
  if (!Number.isSafeInteger(entry.seq)) throw broken(number, "seq is not an integer");
  if (typeof entry.prev_sha256 !== "string" || !HEX64.test(entry.prev_sha256)) throw broken(number, "prev_sha256 is not 64 lowercase hex digits");
  if (typeof entry.step !== "string" || typeof entry.actor !== "string") throw broken(number, "step or actor is not a string");
  if (!isObject(entry.inputs) || !isObject(entry.outcome)) throw broken(number, "inputs or outcome is not an object");
  if (!Array.isArray(entry.outputs)) throw broken(number, "outputs is not a list");
  for (const o of entry.outputs) {
    if (!(isObject(o) && typeof o.path === "string" && typeof o.sha256 === "string" && HEX64.test(o.sha256) && Number.isSafeInteger(o.size))) {
      throw broken(number, "an output is not {path, sha256 (64 hex), size}");
    }
  }
  return { ...entry, time, sha256: toHex(await sha256(raw)) };
}

/** Parse the log's lines; throws CheckFailure for a malformed or oversized log. */
export async function parseCallLog(data) {
  if (data.length > MAX_LOG_BYTES) throw new CheckFailure(`capture-log is over ${MAX_LOG_BYTES} bytes`);
  const newlines = data.reduce((n, b) => n + (b === 0x0a ? 1 : 0), 0);
  if (data[data.length - 1] !== 0x0a) throw broken(newlines + 1, "the log does not end with a newline (truncated?)");
  const raws = [];
  let start = 0;
  for (let i = 0; i < data.length; i++) if (data[i] === 0x0a) { raws.push(data.subarray(start, i)); start = i + 1; }
  if (raws.length > MAX_LOG_LINES) throw new CheckFailure(`capture-log has more than ${MAX_LOG_LINES} lines`);
  const lines = [];
  for (let i = 0; i < raws.length; i++) lines.push(await parseLine(raws[i], i + 1));
  return lines;
}

/** The chain from GENESIS to the signed `head`; throws CheckFailure naming the first broken line. */
export function verifyChain(lines, head) {
  if (!lines.length) throw broken(1, "the log is empty");
  let previous = GENESIS;
  lines.forEach((line, i) => {
    if (line.seq !== i) throw broken(i + 1, `seq is ${line.seq}, expected ${i}`);
    if (line.prev_sha256 !== previous) {
      throw broken(i + 1, `prev_sha256 is ${line.prev_sha256.slice(0, 16)}…, but the previous line hashes to ${previous.slice(0, 16)}… (a line was edited, removed or inserted)`);
    }
    previous = line.sha256;
  });
  if (previous !== head) {
    throw broken(lines.length, `the last line hashes to ${previous.slice(0, 16)}…, but the manifest's log_head is ${head.slice(0, 16)}… (the last line was edited or lines were cut)`);
  }
}

/** Times monotonic and inside the capture window of the manifest's `capture`; throws CheckFailure. */
export function verifyTimes(lines, capture) {
  const started = validTime(capture.started_at), ended = validTime(capture.ended_at);
  lines.forEach((line, i) => {
    if (i && line.time < lines[i - 1].time) throw broken(i + 1, `time ${line.time} is earlier than the line before it`);
    if (started && line.time < started) throw broken(i + 1, `time ${line.time} is before the capture started`);
    if (ended && line.time > ended) throw broken(i + 1, `time ${line.time} is after the capture ended`);
  });
}

/** Every line by the system and the `required` steps in order; throws CheckFailure. */
export function verifySteps(lines, required) {
  lines.forEach((line, i) => {
    if (line.actor !== SYSTEM_ACTOR) throw broken(i + 1, `step '${line.step}' was done by '${line.actor}', not automated by '${SYSTEM_ACTOR}'`);
  });
  let at = 0;
  for (const step of required) {
    while (at < lines.length && lines[at].step !== step) at++;
    if (at === lines.length) throw broken(lines.length, `required step '${step}' is missing or out of order`);
    at++;
  }
}

export async function checkCallLog(ctx) {
  const { manifest, zip } = ctx.pkg;
  if (manifest.kind === "log-export") {
    throw new Skip("log-export: events recorded by an append-only log, not a web capture: no capture log (L1-L4 check the log)");
  }
  if (isEmail(manifest.kind)) throw new Skip(`${manifest.kind}: an e-mail sealed as sent or received, not a web capture: no capture log`);
  if (manifest.kind !== "web-capture") throw new Skip("upload: no capture log; the files were received, not captured");
  if (!zip.has(CAPTURE_LOG_PATH)) throw new CheckFailure(`the capture has no ${CAPTURE_LOG_PATH}`);
  const lines = await parseCallLog(zip.read(CAPTURE_LOG_PATH));
  const head = manifest.capture.log_head;
  if (typeof head !== "string" || !HEX64.test(head)) return ["fail", "the manifest does not record the capture log's head (capture.log_head)"];
  if (!lines.length) throw broken(1, "the log is empty");
  verifyChain(lines, head);
  verifyTimes(lines, manifest.capture);
  verifySteps(lines, REQUIRED_STEPS);
  if (lines[0].inputs.evidence_id !== manifest.evidenceId) return ["fail", "the capture log was started for another evidence id"];
  // From the microseconds the log records (a Date keeps milliseconds), stated to the millisecond.
  const [first, last] = [epochMicros(lines[0].time), epochMicros(lines[lines.length - 1].time)];
  const seconds = first !== null && last !== null ? Number(last - first) / 1e6
    : (Date.parse(lines[lines.length - 1].time) - Date.parse(lines[0].time)) / 1000;
  return ["pass", `${plural(lines.length, "step")} hash-chained from ${lines[0].step} to ${lines[lines.length - 1].step} over ${formatDuration(Math.round(seconds * 1000) / 1000)}, times monotonic, all by the system; head ${head.slice(0, 16)}… is signed`];
}
