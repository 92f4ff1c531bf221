// S4, capture environment: the manifest states what ran, in what state, through what. An upload
// warns: its files were not captured by the platform at all.

import { isObject } from "./json.js";
import { readJson } from "./package.js";

const HEX64 = /^[0-9a-f]{64}$/;
const RECORDER_KIND = "tiezheng-recorder";
const TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;
const MAX_LISTED = 4;
const ENVIRONMENT_PATH = "evidence/environment-check.json";
const ENVIRONMENT_FORMAT = "tiezheng-environment-check/1";
const MAX_RECORD_BYTES = 4 << 20;

// The clean-environment record made before the capture. The page checks that it is there, readable
// and made for this evidence; judging each of its items (hosts file, resolver, proxies, clock, egress,
// browser) is left to tiezheng-verify, so the page never passes S4 on it: it warns and says so.
function environmentRecord(ctx) {
  const found = { problems: [], warnings: [] };
  if (!ctx.pkg.manifest.artifacts.some((a) => a.path === ENVIRONMENT_PATH)) {
    found.warnings.push(`no environment record (${ENVIRONMENT_PATH}): whether the capture machine was clean before the capture is not on record`);
    return found;
  }
  if (!ctx.pkg.zip.has(ENVIRONMENT_PATH)) {
    found.problems.push(`the manifest lists ${ENVIRONMENT_PATH}, but the package lacks it`);
    return found;
  }
  let record;
  try { record = readJson(ctx.pkg, ENVIRONMENT_PATH, MAX_RECORD_BYTES); } catch (e) {
    found.problems.push(`the environment record is unreadable: ${e.message}`);
    return found;
  }
  if (!isObject(record) || record.format !== ENVIRONMENT_FORMAT) found.problems.push(`the environment record is not in the ${ENVIRONMENT_FORMAT} format`);
  else if (record.evidence_id !== ctx.pkg.manifest.evidenceId) found.problems.push("the environment record was made for another evidence id");
  else found.warnings.push("its items (hosts file, resolver, proxies, clock, egress, browser) are not judged in the browser: run tiezheng-verify for them");
  return found;
}

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

const time = (value) => (typeof value === "string" && TIME.test(value) ? value : null);

export function checkEnvironment(ctx) {
  const { kind, capture } = ctx.pkg.manifest;
  if (kind === "upload") return ["warn", "not captured by the platform: the files were uploaded by the requester"];
  const problems = [...toolProblems(capture.tools), ...browserProblems(capture.browser)];
  if (!isObject(capture.clock_source)) problems.push("the clock source is not recorded");
  const started = time(capture.started_at), ended = time(capture.ended_at);
  if (!started || !ended) problems.push("start and end times (UTC, microseconds) are not both recorded");
  else if (ended < started) problems.push("the capture ended before it started");
  const record = environmentRecord(ctx);
  problems.push(...record.problems);
  if (problems.length) {
    const more = problems.length - MAX_LISTED;
    return ["fail", problems.slice(0, MAX_LISTED).join("; ") + (more > 0 ? `; and ${more} more` : "")];
  }
  const { browser, tools } = capture;
  ctx.facts.environment = { browser: `chromium ${browser.version}`, browser_sha256: browser.sha256,
    tools: tools.map((t) => `${t.name} ${t.version}`) };
  if (record.warnings.length) {
    const [first, ...rest] = record.warnings;
    return ["warn", [`capture environment not shown clean: ${first}`, ...rest].join("; ")];
  }
  return ["pass", `chromium ${browser.version} (sha256 ${browser.sha256.slice(0, 16)}…) and ${tools.length} tools recorded with versions and hashes; fresh profile; no proxy but the capture tool's own recorder, which saw all browser traffic`];
}
