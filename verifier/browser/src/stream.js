// V1 and the stream side of P1, P2, S3 and S4, for packages of kind `stream`, as verifier/checks/stream.py
// words them (one verdict, one reason in both verifiers). V1 answers: is this the stream as it was
// served, in order, with every missing span named? The log's chain holds to the signed head; every
// logged segment is in the WARC record the line names, byte for byte; each hash was logged within a
// second of arrival (warns otherwise); a jump in the media sequence is a gap the recorder logged
// (warns, naming it) or a silent drop (fails); the durations add up to the claimed span.

import { sha256, toHex } from "./bytes.js";
import { CAPTURE_LOG_PATH, parseCallLog, verifyChain, verifySteps, verifyTimes } from "./calllog.js";
import { epochMicros, formatDuration, plural } from "./courttime.js";
import { CheckFailure, Skip } from "./errors.js";
import { decodeBody, parseResponse } from "./http.js";
import { isObject } from "./json.js";
import { WARC_PATH, warcRecords } from "./warc.js";

export const STREAM_KIND = "stream";
const SEGMENT_STEP = "segment", GAP_STEP = "gap", START_STEP = "start";
const MEDIA_STEPS = [SEGMENT_STEP, "init"];
const REQUIRED_STEPS = [START_STEP, "package"];
const MAX_LOG_DELAY_SECONDS = 1.0;
const DURATION_SLACK_SECONDS = 0.05;
const DURATION_SLACK_PER_SEGMENT = 0.002;
const MAX_SEGMENT_BYTES = 256 << 20;
const MAX_LISTED = 4;
const HEX64 = /^[0-9a-f]{64}$/;
// Written record by record as the stream ran; V1 checks what the log says is in them.
const RECORDED_ROLES = new Set(["warc", "wacz-pages", "wacz-index", "wacz-index-summary"]);

const listing = (items) => items.slice(0, MAX_LISTED).join("; ") + (items.length > MAX_LISTED ? `; and ${items.length - MAX_LISTED} more` : "");
const isInt = (v) => Number.isSafeInteger(v);
const isNumber = (v) => typeof v === "number" && Number.isFinite(v);
// A package value in a reason as Python's f-string shows it (None, True), so both reasons read alike.
const pyStr = (v) => (v === null || v === undefined ? "None" : v === true ? "True" : v === false ? "False"
  : typeof v === "object" ? JSON.stringify(v) : String(v));
const span = (first, last) => (first === last ? `segment ${first}` : `segments ${first}–${last}`);
const nameOf = (m) => (m.sequence === null ? `the ${m.step} segment (log line ${m.line})` : `segment ${m.sequence} (log line ${m.line})`);

function media(number, line) {
  const { url, sha256: digest, size, warc_response_id: record } = line.inputs;
  if (!(typeof url === "string" && typeof digest === "string" && HEX64.test(digest) && isInt(size) && typeof record === "string")) {
    throw new CheckFailure(`capture-log line ${number}: a ${line.step} line without url, sha256, size and warc_response_id`);
  }
  const sequence = line.inputs.sequence, duration = line.inputs.duration ?? 0;
  const segment = line.step === SEGMENT_STEP;
  if (segment && (!isInt(sequence) || !isNumber(duration) || duration < 0)) {
    throw new CheckFailure(`capture-log line ${number}: a segment line without a media sequence number and a duration`);
  }
  let delay = null;
  if (typeof line.inputs.arrived_at === "string") {
    const arrived = epochMicros(line.inputs.arrived_at), logged = epochMicros(line.time);
    if (arrived === null || !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/.test(line.inputs.arrived_at)) {
      throw new CheckFailure(`capture-log line ${number}: arrived_at is not a UTC time`);
    }
    delay = Number(logged - arrived) / 1e6;
  }
  return { line: number, step: line.step, url, sha256: digest, size, recordId: record,
    sequence: segment ? sequence : null, duration: segment ? duration : 0, delay };
}

/** The log, chain-checked to the signed head, and its media lines; memoised. Throws CheckFailure. */
function streamLog(ctx) {
  ctx.streamLog ??= (async () => {
    if (!ctx.pkg.zip.has(CAPTURE_LOG_PATH)) throw new CheckFailure(`the capture has no ${CAPTURE_LOG_PATH}`);
    const lines = await parseCallLog(ctx.pkg.zip.read(CAPTURE_LOG_PATH));
    const head = ctx.pkg.manifest.capture.log_head;
    if (typeof head !== "string" || !HEX64.test(head)) throw new CheckFailure("the manifest does not record the capture log's head (capture.log_head)");
    verifyChain(lines, head);
    const items = [];
    lines.forEach((line, i) => { if (MEDIA_STEPS.includes(line.step)) items.push(media(i + 1, line)); });
    return { lines, media: items };
  })();
  return ctx.streamLog;
}

async function warcProblems(ctx, items) {
  const wanted = new Map(items.map((m) => [m.recordId, m]));
  if (!ctx.pkg.zip.has(WARC_PATH)) throw new CheckFailure(`the capture has no ${WARC_PATH}`);
  const problems = [];
  const found = new Set();
  for (const record of await warcRecords(ctx.pkg.zip.read(WARC_PATH))) {
    const logged = wanted.get(record.recordId);
    if (!logged || record.type !== "response") continue;
    found.add(record.recordId);
    const name = nameOf(logged);
    if (record.targetUri !== logged.url) {
      problems.push(`${name}: the WARC record is for ${record.targetUri.slice(0, 100)}, the log names ${logged.url.slice(0, 100)}`);
      continue;
    }
    let body;
    try {
      body = decodeBody(parseResponse(record.block), MAX_SEGMENT_BYTES);
    } catch (e) {
      if (!(e instanceof CheckFailure)) throw e;
      problems.push(`${name}: the WARC response cannot be decoded: ${e.message}`);
      continue;
    }
    const digest = toHex(await sha256(body));
    if (digest !== logged.sha256 || body.length !== logged.size) {
      problems.push(`${name}: the WARC holds ${body.length} bytes with sha256 ${digest.slice(0, 16)}…, the log recorded ${logged.size} bytes with sha256 ${logged.sha256.slice(0, 16)}… on arrival`);
    }
  }
  for (const logged of items) {
    if (!found.has(logged.recordId)) problems.push(`${nameOf(logged)}: the WARC has no response record ${logged.recordId.slice(0, 60)}`);
  }
  return problems;
}

function loggedGaps(lines) {
  const gaps = new Map();
  lines.forEach((line, i) => {
    if (line.step !== GAP_STEP) return;
    const first = line.inputs.first_missing, last = line.inputs.last_missing;
    if ((first === null || first === undefined) && (last === null || last === undefined)) return; // a restart that lost nothing
    if (!isInt(first) || !isInt(last) || last < first) {
      throw new CheckFailure(`capture-log line ${i + 1}: a gap line without first_missing ≤ last_missing`);
    }
    gaps.set(`${first},${last}`, { span: [first, last], inputs: line.inputs });
  });
  return gaps;
}

function restartText(start, lines) {
  const line = lines.find((l) => l.step === GAP_STEP && l.inputs.between_parts);
  const down = line ? line.inputs.seconds_not_recording : undefined;
  const how = isNumber(down) ? ` for ${formatDuration(Math.round(down * 10) / 10)}` : "";
  const part = isInt(start.part) ? start.part - 1 : "?";
  return `this part continues part ${part} (which ended at segment ${pyStr(start.previous_last_sequence)}) after the recorder stopped${how}`;
}

function sequenceFindings(lines, items) {
  const logged = loggedGaps(lines);
  const start = lines[0].step === START_STEP ? lines[0].inputs : {};
  let previous = start.previous_last_sequence;
  const gaps = [], problems = [];
  const seen = new Set();
  if (isInt(previous) && lines.some((l) => l.step === GAP_STEP && l.inputs.between_parts)) gaps.push(restartText(start, lines));
  for (const item of items) {
    if (item.sequence === null) continue;
    if (isInt(previous)) {
      if (item.sequence <= previous) {
        problems.push(`segment ${item.sequence} (log line ${item.line}) does not follow segment ${previous}: the sequence goes back or repeats`);
      } else if (item.sequence > previous + 1) {
        const key = `${previous + 1},${item.sequence - 1}`;
        seen.add(key);
        const gap = logged.get(key);
        if (gap) gaps.push(`${span(previous + 1, item.sequence - 1)} missing (${pyStr(gap.inputs.reason ?? "reason not given")})`);
        else problems.push(`${span(previous + 1, item.sequence - 1)} missing and the recorder logged no gap for them`);
      }
    }
    previous = item.sequence;
  }
  for (const [key, gap] of logged) if (!seen.has(key)) problems.push(`a gap of ${span(...gap.span)} is logged but no segment follows it`);
  return [gaps, problems];
}

function durationFindings(ctx, segments) {
  const stream = ctx.pkg.manifest.capture.stream;
  const total = segments.reduce((sum, m) => sum + m.duration, 0);
  if (!isObject(stream)) return [total, ["the manifest has no capture.stream record"]];
  const claimed = stream.media_seconds;
  if (!isNumber(claimed)) return [total, ["the manifest claims no span (capture.stream.media_seconds)"]];
  const problems = [];
  const slack = DURATION_SLACK_SECONDS + DURATION_SLACK_PER_SEGMENT * segments.length;
  if (Math.abs(total - claimed) > slack) {
    problems.push(`the segment durations add up to ${total.toFixed(3)} s, but the manifest claims ${claimed.toFixed(3)} s`);
  }
  if (stream.segments !== segments.length) problems.push(`the manifest claims ${pyStr(stream.segments)} segments, the log holds ${segments.length}`);
  return [total, problems];
}

/** V1: segment chain intact, no unreported gap, durations add up; a reported gap warns, naming it. */
export async function checkStream(ctx) {
  if (ctx.pkg.manifest.kind !== STREAM_KIND) throw new Skip("not a stream recording");
  const { lines, media: items } = await streamLog(ctx);
  const segments = items.filter((m) => m.sequence !== null);
  const problems = await warcProblems(ctx, items);
  const [gaps, sequenceProblems] = sequenceFindings(lines, items);
  const [total, durationProblems] = durationFindings(ctx, segments);
  problems.push(...sequenceProblems, ...durationProblems);
  const slow = items.filter((m) => m.delay !== null && !(m.delay >= 0 && m.delay <= MAX_LOG_DELAY_SECONDS));
  const first = segments.length ? segments[0].sequence : null;
  const last = segments.length ? segments[segments.length - 1].sequence : null;
  const seconds = Math.round(total * 1000) / 1000;
  ctx.facts.stream = { segments: segments.length, first, last, media_seconds: seconds, gaps: gaps.length, problems: problems.length };
  if (problems.length) return ["fail", listing(problems)];
  if (!segments.length) return ["fail", "the recording holds no media segment"];
  const summary = `${plural(segments.length, "segment")} (${span(first, last)}, ${formatDuration(seconds)} of media) hash-chained in the log on arrival and found byte for byte in the WARC; durations add up to the claimed span`;
  const warnings = [...gaps.map((g) => `gap: ${g}`),
    ...slow.map((m) => `${nameOf(m)}: hash logged ${m.delay.toFixed(3)} s after arrival (over ${MAX_LOG_DELAY_SECONDS} s)`)];
  if (warnings.length) return ["warn", `${summary}; but ${listing(warnings)}`];
  return ["pass", `${summary}; no gap in the media sequence`];
}

/** P1 for a stream: the chain to the signed head, monotonic times, every step automated. */
export async function checkStreamLog(ctx) {
  const { lines, media: items } = await streamLog(ctx);
  verifyTimes(lines, ctx.pkg.manifest.capture);
  verifySteps(lines, REQUIRED_STEPS);
  if (lines[0].inputs.evidence_id !== ctx.pkg.manifest.evidenceId) return ["fail", "the capture log was started for another evidence id"];
  const seconds = Number(epochMicros(lines[lines.length - 1].time) - epochMicros(lines[0].time)) / 1e6;
  return ["pass", `${plural(lines.length, "step")} (${plural(items.length, "segment")} logged on arrival) hash-chained over ${formatDuration(Math.round(seconds * 1000) / 1000)}, times monotonic, all by the system; head ${lines[lines.length - 1].sha256.slice(0, 16)}… is signed`];
}

/** P2 for a stream: every artifact has the hash logged when it was made (the remux with its command). */
export async function checkStreamCorroboration(ctx) {
  const { manifest, zip } = ctx.pkg;
  if (!zip.has(CAPTURE_LOG_PATH)) throw new CheckFailure(`the capture has no ${CAPTURE_LOG_PATH}`);
  const lines = await parseCallLog(zip.read(CAPTURE_LOG_PATH));
  const logged = new Map();
  for (const line of lines) for (const o of line.outputs) if (!logged.has(o.path)) logged.set(o.path, [o.sha256, line]);
  const problems = [];
  for (const artifact of manifest.artifacts) {
    if (artifact.path === CAPTURE_LOG_PATH || !zip.has(artifact.path)) continue; // the signed head (P1); P3 names a missing file
    if (RECORDED_ROLES.has(artifact.role)) continue;
    const entry = logged.get(artifact.path);
    if (!entry) { problems.push(`${artifact.path} was never logged when it was made`); continue; }
    const [digest, line] = entry;
    const actual = toHex(await sha256(zip.read(artifact.path)));
    if (actual !== digest) problems.push(`${artifact.path} has sha256 ${actual.slice(0, 16)}…, but step '${line.step}' logged ${digest.slice(0, 16)}… when it was made`);
    if (line.step === "remux" && !(line.inputs.command && line.inputs.tool && !isEmpty(line.inputs.command) && !isEmpty(line.inputs.tool))) {
      problems.push(`${artifact.path} is derived, but its remux step does not record the command and tool`);
    }
  }
  if (problems.length) return ["fail", listing(problems)];
  return ["pass", "every derived artifact matches the hash logged when it was made, with the command and tool version that derived it; the segments are corroborated against the WARC by V1"];
}

// Python's truthiness of a JSON value: an empty list, object or string is false.
function isEmpty(value) {
  if (Array.isArray(value) || typeof value === "string") return value.length === 0;
  return isObject(value) && Object.keys(value).length === 0;
}

/** S3 for a stream: no separate network facts. */
export function streamNetwork() {
  throw new Skip("stream: no separate network facts are recorded; every segment's WARC record names the server address it came from (WARC-IP-Address)");
}

/** S4 for a stream: tools with versions and hashes, a clock source, times in order, no proxy. */
export function checkStreamEnvironment(ctx, toolProblems) {
  const { capture } = ctx.pkg.manifest;
  const problems = [...toolProblems];
  if (!isObject(capture.clock_source)) problems.push("the clock source is not recorded");
  if (!isObject(capture.proxy) || capture.proxy.third_party_proxy !== false) {
    problems.push("the recording does not state that no third-party proxy was in the path");
  }
  const time = (v) => (typeof v === "string" && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/.test(v) ? v : null);
  const started = time(capture.started_at), ended = time(capture.ended_at);
  if (!started || !ended) problems.push("start and end times (UTC, microseconds) are not both recorded");
  else if (ended < started) problems.push("the capture ended before it started");
  if (problems.length) return ["fail", listing(problems)];
  const tools = capture.tools.map((t) => `${t.name} ${t.version}`);
  ctx.facts.environment = { tools };
  return ["pass", `stream recorded by the platform's own HTTP client, no third-party proxy; ${plural(tools.length, "tool")} recorded with versions and hashes (${tools.join(", ")})`];
}
