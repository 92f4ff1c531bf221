// P2, corroboration: the artifacts hash to what the call log recorded when each was made;
// source.html equals a recorded WARC response body for the final URL; and the screenshot, the DOM
// and the WARC name the same page; the session video, when the log says one was recorded, lasts the
// span of the steps it covers (sessionvideo.js).

import { equal, sha256, toHex } from "./bytes.js";
import { CheckFailure, Skip } from "./errors.js";
import { CAPTURE_LOG_PATH, parseCallLog } from "./calllog.js";
import { decodeBody, parseResponse } from "./http.js";
import { isObject } from "./json.js";
import { NETWORK_PATH } from "./network.js";
import { isEmail, readJson } from "./package.js";
import { WARC_PATH, warcRecords } from "./warc.js";
import { mediaOutcome } from "./media.js";
import { plural } from "./courttime.js";
import { sessionVideoOutcome } from "./sessionvideo.js";

const SOURCE_PATH = "evidence/source.html";
const MAX_SOURCE_BYTES = 256 << 20;
const MAX_LISTED = 3;
const listing = (problems) => problems.slice(0, MAX_LISTED).join("; ") +
  (problems.length > MAX_LISTED ? `; and ${problems.length - MAX_LISTED} more` : "");
const defrag = (url) => url.split("#", 1)[0];

function stepUrl(lines, step) {
  const line = lines.find((l) => l.step === step);
  if (!line || typeof line.inputs.url !== "string") throw new CheckFailure(`the capture log has no '${step}' step naming its URL`);
  return line.inputs.url;
}

async function hashProblems(ctx, lines) {
  const logged = new Map();
  for (const line of lines) for (const o of line.outputs) if (!logged.has(o.path)) logged.set(o.path, [o.sha256, line]);
  const problems = [];
  for (const a of ctx.pkg.manifest.artifacts) {
    if (a.path === CAPTURE_LOG_PATH) continue; // the log cannot hold its own hash; log_head covers it (P1)
    if (!ctx.pkg.zip.has(a.path)) { problems.push(`${a.path} is missing`); continue; }
    if (!logged.has(a.path)) { problems.push(`${a.path} was never logged when it was made`); continue; }
    const digest = toHex(await sha256(ctx.pkg.zip.read(a.path)));
    const [sha, line] = logged.get(a.path);
    if (digest !== sha) problems.push(`${a.path} has sha256 ${digest.slice(0, 16)}…, but step '${line.step}' logged ${sha.slice(0, 16)}… when it was made`);
  }
  return problems;
}

function labelsOf(network) {
  const labels = new Map();
  const fetch = network.fetch;
  if (!isObject(fetch)) throw new CheckFailure("network.json fetch is missing or not an object");
  if (!Array.isArray(fetch.hops)) throw new CheckFailure("network.json fetch.hops is missing or not a list");
  for (const hop of fetch.hops) if (isObject(hop) && typeof hop.warc_response_id === "string") labels.set(hop.warc_response_id, "the raw fetch's response");
  const main = isObject(network.browser) ? network.browser.main_document : null;
  if (isObject(main) && typeof main.warc_response_id === "string") labels.set(main.warc_response_id, "the browser's response");
  return labels;
}

export async function checkCorroboration(ctx) {
  const { manifest, zip } = ctx.pkg;
  if (manifest.kind === "log-export") throw new Skip("log-export: events recorded by an append-only log: no web traffic to corroborate");
  if (isEmail(manifest.kind)) throw new Skip(`${manifest.kind}: an e-mail sealed as sent or received: no web traffic to corroborate`);
  if (manifest.kind !== "web-capture") throw new Skip("upload: no capture log or recorded traffic to corroborate");
  let lines;
  try {
    if (!zip.has(CAPTURE_LOG_PATH)) throw new CheckFailure(`the capture has no ${CAPTURE_LOG_PATH}`);
    lines = await parseCallLog(zip.read(CAPTURE_LOG_PATH));
  } catch (e) {
    return ["fail", `the capture log is unreadable, so no logged hash can be compared: ${e.message}`];
  }
  const problems = await hashProblems(ctx, lines);
  const [videoProblems, video] = sessionVideoOutcome(ctx, lines);
  problems.push(...videoProblems);
  if (video) ctx.facts.session_video = video;
  const finalUrl = manifest.target.final_url;
  if (typeof finalUrl !== "string") throw new CheckFailure("manifest target.final_url is missing or not a string");
  const shotUrl = stepUrl(lines, "screenshot"), domUrl = stepUrl(lines, "dom");
  let labels = new Map();
  if (zip.has(NETWORK_PATH)) {
    let network;
    try { network = readJson(ctx.pkg, NETWORK_PATH, 16 << 20); } catch (e) { throw new CheckFailure(`network.json: ${e.message}`); }
    if (!isObject(network) || network.format !== "tiezheng-network/1") throw new CheckFailure("network.json is not in the tiezheng-network/1 format");
    labels = labelsOf(network);
  }
  let source = null;
  try { source = zip.read(SOURCE_PATH, MAX_SOURCE_BYTES); } catch (e) { problems.push(`source.html cannot be read: ${e.message}`); }
  const wanted = defrag(finalUrl);
  const responded = new Set();
  const matched = [];
  let compared = 0;
  if (source !== null) {
    if (!zip.has(WARC_PATH)) throw new CheckFailure(`the capture has no ${WARC_PATH}`);
    for (const record of await warcRecords(zip.read(WARC_PATH))) {
      if (record.type !== "response") continue;
      if (record.targetUri === defrag(shotUrl)) responded.add(record.targetUri);
      if (record.targetUri !== wanted) continue;
      responded.add(record.targetUri);
      compared++;
      let body;
      try { body = decodeBody(parseResponse(record.block), MAX_SOURCE_BYTES); } catch (e) {
        problems.push(`the WARC response for the final URL cannot be decoded: ${e.message}`);
        continue;
      }
      if (equal(body, source)) matched.push(labels.get(record.recordId) ?? "a recorded response");
    }
    if (compared === 0) problems.push(`the WARC holds no response for the final URL ${wanted.slice(0, 120)}`);
    else if (!matched.length) problems.push(`source.html (sha256 ${toHex(await sha256(source)).slice(0, 16)}…) differs from all ${compared} WARC response bodies for the final URL`);
  }
  const [mediaProblems, mediaClause] = await mediaOutcome(ctx);
  problems.push(...mediaProblems);
  if (shotUrl !== domUrl) problems.push(`the screenshot was taken of ${shotUrl.slice(0, 120)} but the DOM of ${domUrl.slice(0, 120)}`);
  if (!responded.has(defrag(shotUrl))) problems.push(`the WARC holds no response for the page the screenshot shows (${shotUrl.slice(0, 120)})`);
  if (problems.length) return ["fail", listing(problems)];
  const sources = [...new Set(matched)].join(" and ");
  const made = manifest.artifacts.length - 1;
  const reason = `${plural(made, "artifact")} ${made === 1 ? "matches the hash" : "match the hashes"} logged when made; ${video ? `${video}; ` : ""}source.html equals ${sources} for the final URL; screenshot, DOM and WARC name the same page${mediaClause ? `; ${mediaClause}` : ""}`;
  if (defrag(shotUrl) !== defrag(finalUrl)) {
    return ["warn", `${reason}, but the browser ended at ${shotUrl.slice(0, 120)} while the raw fetch ended at ${finalUrl.slice(0, 120)} (moved by script?)`];
  }
  return ["pass", reason];
}
