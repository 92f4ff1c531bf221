// S4, second half: the clean-environment record a web capture makes before it touches the target
// (evidence/environment-check.json, format tiezheng-environment-check/1). The record states facts;
// the page judges them item by item and never takes the capture tool's word that the machine was
// clean. An item not clean, or not known, is a warning naming it:
//   hosts file: entries beyond the stock ones, recomputed from the file's text where it is carried;
//   resolver: its configuration unread, or no DNS server known;
//   proxies: any proxy variable in the capture's or the system's environment;
//   clock: no TSA measurement, an NTP server configured but not measured, or an offset beyond
//     MAX_CLOCK_OFFSET_SECONDS plus the measurement's own uncertainty;
//   egress: the address the target saw is not known;
//   browser: a binary hash other than the manifest's, an extension, or extensions not turned off.
// A record there but malformed, or made for another evidence id, is a problem (S4 fails): the
// operator signed it. A capture without a record warns.

import { encoder, sha256, toHex } from "./bytes.js";
import { CAPTURE_LOG_PATH, parseCallLog } from "./calllog.js";
import { nonDefaultEntries } from "./hosts.js";
import { isObject } from "./json.js";
import { readJson } from "./package.js";

export const ENVIRONMENT_PATH = "evidence/environment-check.json";
const ENVIRONMENT_FORMAT = "tiezheng-environment-check/1";
const ENVIRONMENT_STEP = "environment-check";
const MAX_RECORD_BYTES = 4 << 20;
const MAX_CLOCK_OFFSET_SECONDS = 2.0;
const MAX_NAMED = 3;
const MAX_TEXT = 80;

const text = (value) => {
  const s = typeof value === "string" ? value : JSON.stringify(value) ?? String(value);
  return s.length <= MAX_TEXT ? s : `${s.slice(0, MAX_TEXT)}…`;
};
const named = (items) => items.slice(0, MAX_NAMED).join(", ") + (items.length > MAX_NAMED ? ` and ${items.length - MAX_NAMED} more` : "");
const section = (record, key) => (isObject(record[key]) ? record[key] : {});
const list = (value) => (Array.isArray(value) ? value : []);
const orElse = (value, fallback) => (value === undefined ? fallback : value);
// JSON numbers, with true/false counted as 1/0 as the record's reference reader does.
const number = (value) => (typeof value === "boolean" ? Number(value) : value);
const signed = (x) => `${x < 0 ? "-" : "+"}${Math.abs(x).toFixed(3)}`;

function sameEntry(listed, recomputed) {
  const keys = Object.keys(listed).sort();
  return keys.length === 2 && keys[0] === "address" && keys[1] === "names" && listed.address === recomputed.address
    && Array.isArray(listed.names) && listed.names.length === recomputed.names.length
    && listed.names.every((n, i) => n === recomputed.names[i]);
}

async function judgeHosts(hosts, found) {
  if (hosts.status !== "read" || !Array.isArray(hosts.non_default)) {
    found.warnings.push(`hosts file unknown (${text(orElse(hosts.reason, "not recorded"))})`);
    return;
  }
  let listed = hosts.non_default.filter(isObject);
  const count = number(hosts.non_default_count);
  let total = Number.isInteger(count) && count >= listed.length ? count : listed.length;
  const own = list(hosts.own_names).filter((n) => typeof n === "string");
  if (typeof hosts.text === "string") {
    // The record carries the file: judge it here rather than take the tool's list.
    if (toHex(await sha256(encoder.encode(hosts.text))) !== hosts.sha256) {
      found.warnings.push("hosts file: the text in the record does not hash to the recorded sha256");
    }
    const recomputed = nonDefaultEntries(hosts.text, own);
    const head = recomputed.slice(0, listed.length);
    if (head.length !== listed.length || !listed.every((e, i) => sameEntry(e, head[i])) || recomputed.length !== total) {
      found.warnings.push("hosts file: the record's list of non-default entries does not match the file");
    }
    listed = recomputed;
    total = recomputed.length;
  }
  const extra = listed.map((e) => `${text(e.address)} ${list(e.names).map(text).join(" ")}`);
  if (total) found.warnings.push(`hosts file has ${total} non-default entr${total === 1 ? "y" : "ies"}: ${extra.length ? named(extra) : "not listed"}`);
  else found.summary.push("hosts file default");
}

function judgeResolver(resolver, found) {
  const servers = list(resolver.dns_servers_used).length ? list(resolver.dns_servers_used) : list(resolver.nameservers);
  if (resolver.status !== "read") found.warnings.push(`resolver configuration unknown (${text(orElse(resolver.reason, "not recorded"))})`);
  else if (!servers.length) found.warnings.push("resolver unknown: no DNS server is recorded");
  else found.summary.push(`resolver ${named(servers.map(text))}`);
}

function judgeProxies(proxy, found) {
  const system = section(proxy, "system");
  if (!Array.isArray(proxy.environment) || !Array.isArray(system.variables)) {
    found.warnings.push("proxy settings unknown (not recorded)");
    return;
  }
  const pairs = (vars) => vars.filter(isObject).map((v) => `${text(orElse(v.name, null))}=${text(orElse(v.value, null))}`);
  const inProcess = pairs(proxy.environment), inSystem = pairs(system.variables);
  if (inProcess.length) found.warnings.push(`proxy variables set in the capture's environment: ${named(inProcess)}`);
  if (inSystem.length) found.warnings.push(`system proxy set in ${text(orElse(system.path, null))}: ${named(inSystem)}`);
  if (!inProcess.length && !inSystem.length) found.summary.push("no proxy variables");
}

function judgeOffset(reading, against, found) {
  const offset = reading.offset_seconds, uncertainty = number(reading.uncertainty_seconds);
  if (typeof offset !== "number" || typeof uncertainty !== "number") {
    found.warnings.push(`clock against the ${against} unknown (no offset recorded)`);
  } else if (Math.abs(offset) > MAX_CLOCK_OFFSET_SECONDS + Math.abs(uncertainty)) {
    found.warnings.push(`clock off by ${signed(offset)} s against the ${against} (± ${uncertainty.toFixed(3)} s; more than ${MAX_CLOCK_OFFSET_SECONDS} s)`);
  } else {
    found.summary.push(`clock ${signed(offset)} s (± ${uncertainty.toFixed(3)} s) against the ${against}`);
  }
}

function judgeClock(clock, found) {
  const tsa = section(clock, "tsa"), ntp = section(clock, "ntp");
  if (tsa.status === "measured") judgeOffset(tsa, "TSA", found);
  else found.warnings.push(`clock against the TSA ${text(orElse(tsa.status, "not recorded"))} (${text(orElse(tsa.reason, "no reason given"))})`);
  if (ntp.status === "measured") judgeOffset(ntp, "NTP server", found);
  else if (ntp.status !== "not configured") {
    found.warnings.push(`clock against the NTP server ${text(orElse(ntp.server, ""))} ${text(orElse(ntp.status, "not recorded"))} (${text(orElse(ntp.reason, ""))})`);
  }
}

function judgeEgress(egress, found) {
  const seen = egress.seen_by_target;
  if (egress.status === "known" && typeof seen === "string" && seen) found.summary.push(`egress address ${text(seen)}`);
  else found.warnings.push(`egress address unknown (${text(orElse(egress.reason, "not recorded"))})`);
}

function judgeBrowser(browser, manifestBrowser, found) {
  const hash = browser.sha256;
  if (typeof hash !== "string") found.warnings.push("browser binary hash unknown at the clean check");
  else if (hash !== manifestBrowser.sha256) {
    found.warnings.push(`browser binary at the clean check (sha256 ${text(hash).slice(0, 16)}…) is not the one the manifest names`);
  }
  const extensions = [browser.extensions_installed, browser.extension_targets, browser.load_extension_flags].flatMap((v) => list(v).map(text));
  if (!Array.isArray(browser.extensions_installed) || !Array.isArray(browser.extension_targets)) {
    found.warnings.push(`browser extensions unknown (${text(orElse(browser.extension_targets_unknown, "not recorded"))})`);
  } else if (extensions.length) found.warnings.push(`browser extensions present: ${named(extensions)}`);
  else if (browser.extensions_disabled_by_flag !== true) found.warnings.push("browser extensions were not turned off (--disable-extensions)");
  else found.summary.push("no extensions");
}

async function judgeLoggedFirst(pkg, found) {
  if (!pkg.zip.has(CAPTURE_LOG_PATH)) return; // P1 reports a missing log; this only asks what came first
  let lines;
  try { lines = await parseCallLog(pkg.zip.read(CAPTURE_LOG_PATH)); } catch { return; }
  const first = lines[0];
  if (!first || first.step !== ENVIRONMENT_STEP || !first.outputs.some((o) => o.path === ENVIRONMENT_PATH)) {
    found.warnings.push("the environment record is not the first step of the call log (not made before the capture)");
  }
}

/** Read and judge a web capture's clean-environment record: {problems, warnings, summary}. Never throws. */
export async function judgeEnvironmentRecord(pkg) {
  const found = { problems: [], warnings: [], summary: [] };
  if (!pkg.manifest.artifacts.some((a) => a.path === ENVIRONMENT_PATH)) {
    found.warnings.push(`no environment record (${ENVIRONMENT_PATH}): whether the capture machine was clean before the capture is not on record`);
    return found;
  }
  if (!pkg.zip.has(ENVIRONMENT_PATH)) {
    found.problems.push(`the manifest lists ${ENVIRONMENT_PATH}, but the package lacks it`);
    return found;
  }
  let record;
  try { record = readJson(pkg, ENVIRONMENT_PATH, MAX_RECORD_BYTES); } catch (e) {
    found.problems.push(`the environment record is unreadable: ${e.message}`);
    return found;
  }
  if (!isObject(record) || record.format !== ENVIRONMENT_FORMAT) {
    found.problems.push(`the environment record is not in the ${ENVIRONMENT_FORMAT} format`);
    return found;
  }
  if (record.evidence_id !== pkg.manifest.evidenceId) {
    found.problems.push("the environment record was made for another evidence id");
    return found;
  }
  await judgeLoggedFirst(pkg, found);
  await judgeHosts(section(record, "hosts_file"), found);
  judgeResolver(section(record, "resolver"), found);
  judgeProxies(section(record, "proxy"), found);
  judgeClock(section(record, "clock"), found);
  judgeEgress(section(record, "egress"), found);
  judgeBrowser(section(record, "browser"), section(pkg.manifest.capture, "browser"), found);
  return found;
}
