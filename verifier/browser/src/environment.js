// S4, capture environment: the manifest states what ran, in what state, through what, and the
// clean-environment record made before the capture shows every item clean and known
// (environment_record.js); an unclean or unknown item warns and is named. An upload warns: its files
// were not captured by the platform at all.

import { judgeEnvironmentRecord } from "./environment_record.js";
import { isObject } from "./json.js";
import { Skip } from "./errors.js";
import { checkStreamEnvironment } from "./stream.js";

const HEX64 = /^[0-9a-f]{64}$/;
const RECORDER_KIND = "tiezheng-recorder";
const TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;
const MAX_LISTED = 4;

function toolProblems(tools) {
  if (!Array.isArray(tools) || !tools.length) return ["no tools are recorded"];
  const problems = [];
  tools.forEach((tool, i) => {
    if (!isObject(tool)) { problems.push(`tools[${i}] is not an object`); return; }
    const name = tool.name;
    if (typeof name !== "string" || !name) problems.push(`tools[${i}] has no name`);
    if (typeof tool.version !== "string" || !tool.version) problems.push(`tool ${name} has no version`);
    if (typeof tool.sha256 !== "string" || !HEX64.test(tool.sha256)) problems.push(`tool ${name} has no sha256`);
  });
  return problems;
}

function browserProblems(browser) {
  if (!isObject(browser)) return ["no browser is recorded"];
  const problems = [];
  for (const key of ["executable", "version"]) {
    if (typeof browser[key] !== "string" || !browser[key]) problems.push(`the browser's ${key} is not recorded`);
  }
  if (typeof browser.sha256 !== "string" || !HEX64.test(browser.sha256)) problems.push("the browser binary's sha256 is not recorded");
  const flags = browser.flags;
  if (!Array.isArray(flags) || !flags.length || !flags.every((f) => typeof f === "string")) problems.push("the browser flags are not recorded");
  if (browser.fresh_profile !== true) problems.push("the browser profile was not fresh");
  const proxy = browser.proxy;
  if (!isObject(proxy)) problems.push("the proxy setting is not recorded");
  else {
    if (proxy.kind !== RECORDER_KIND || proxy.part_of_capture_tool !== true) problems.push(`the proxy is not the capture tool's own recorder (${RECORDER_KIND})`);
    if (proxy.third_party_proxy !== false) problems.push("a third-party proxy was (or may have been) in the path");
    if (proxy.all_traffic_via_recorder !== true) problems.push("some browser traffic did not go through the recorder");
  }
  return problems;
}

// What the requester chose and the platform cannot vouch for: a logged-in session (capture.session) and an
// egress proxy (capture.egress). Each warns, named; a malformed record is a problem.
function requesterChoices(capture, problems) {
  const warnings = [];
  const session = capture.session;
  if (session != null) {
    const account = isObject(session) ? session.account : null, digest = isObject(session) ? session.storage_state_sha256 : null;
    if (typeof account !== "string" || typeof digest !== "string" || !HEX64.test(digest)) {
      problems.push("capture.session is recorded but lacks its account or storage_state_sha256");
    } else {
      warnings.push(`authenticated as ${pyRepr(account)}, session supplied by the requester (storage state sha256 ${digest.slice(0, 16)}…; the platform did not log in itself)`);
    }
  }
  const egress = capture.egress;
  if (egress != null) {
    const name = isObject(egress) ? egress.name : null, url = isObject(egress) ? egress.url : null;
    if (typeof name !== "string" || typeof url !== "string") problems.push("capture.egress is recorded but lacks its name or url");
    else warnings.push(`through egress ${pyRepr(name)} (${url}): an HTTP proxy of the operator's relayed every connection to the target (TLS end to end inside its tunnels; plain HTTP it could alter)`);
  }
  return warnings;
}

// The quoting the Python verifier's reasons use for a name (repr of a str), so both read alike.
const pyRepr = (s) => (s.includes("'") && !s.includes('"') ? `"${s}"` : `'${s.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`);

const time = (value) => (typeof value === "string" && TIME.test(value) ? value : null);

const listing = (items) => items.slice(0, MAX_LISTED).join("; ") + (items.length > MAX_LISTED ? `; and ${items.length - MAX_LISTED} more` : "");
const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;

export async function checkEnvironment(ctx) {
  const { kind, capture } = ctx.pkg.manifest;
  if (kind === "upload") return ["warn", "not captured by the platform: the files were uploaded by the requester"];
  if (kind === "log-export") return ["warn", "not captured by the platform: the requester's systems sent the events to the log"];
  if (kind === "notice-reply") return ["warn", "not received by the platform: the requester imported the reply (N1 checks its origin)"];
  if (kind === "notice") throw new Skip("notice: sent by the platform's mailer, not captured with a browser; the SMTP transcript is sealed");
  if (kind === "stream") return checkStreamEnvironment(ctx, toolProblems(capture.tools));
  const problems = [...toolProblems(capture.tools), ...browserProblems(capture.browser)];
  if (!isObject(capture.clock_source)) problems.push("the clock source is not recorded");
  const started = time(capture.started_at), ended = time(capture.ended_at);
  if (!started || !ended) problems.push("start and end times (UTC, microseconds) are not both recorded");
  else if (ended < started) problems.push("the capture ended before it started");
  const record = await judgeEnvironmentRecord(ctx.pkg);
  problems.push(...record.problems);
  const choices = requesterChoices(capture, problems);
  if (problems.length) return ["fail", listing(problems)];
  const { browser, tools } = capture;
  ctx.facts.environment = { browser: `chromium ${browser.version}`, browser_sha256: browser.sha256,
    tools: tools.map((t) => `${t.name} ${t.version}`),
    clean_check: { unclean_or_unknown: record.warnings, clean: record.summary } };
  const unclean = record.warnings.length ? [`capture environment not shown clean: ${record.warnings[0]}`, ...record.warnings.slice(1)] : [];
  if (choices.length || unclean.length) return ["warn", listing([...choices, ...unclean])];
  return ["pass", `chromium ${browser.version} (sha256 ${browser.sha256.slice(0, 16)}…) and ${plural(tools.length, "tool")} recorded with versions and hashes; fresh profile; no proxy but the capture tool's own recorder, which saw all browser traffic; clean check before capture: ${record.summary.join(", ")}`];
}
