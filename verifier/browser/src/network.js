// S3, network facts, from network.json and the WARC alone, offline: every server address the
// capture talked to is among the recorded DNS answers for its host; for https, the final hop's leaf
// certificate hashes to its recorded fingerprint, names the host and was valid when the capture
// started. Whether the chain was trusted is the capture host's signed statement, reported as such.

import { fromBase64, sha256, toHex } from "./bytes.js";
import { Cert } from "./certificates.js";
import { CheckFailure, Skip } from "./errors.js";
import { isObject } from "./json.js";
import { isEmail, readJson } from "./package.js";
import { WARC_PATH, warcRecords } from "./warc.js";

export const NETWORK_PATH = "evidence/network.json";
const NETWORK_FORMAT = "tiezheng-network/1";
const MAX_NETWORK_BYTES = 16 << 20;
const MAX_LISTED = 3;

const mapping = (v, where) => { if (!isObject(v)) throw new CheckFailure(`${where} is missing or not an object`); return v; };
const sequence = (v, where) => { if (!Array.isArray(v)) throw new CheckFailure(`${where} is missing or not a list`); return v; };
const text = (v, where) => { if (typeof v !== "string") throw new CheckFailure(`${where} is missing or not a string`); return v; };

function address(value) {
  const bare = value.replace(/^\[|\]$/g, "");
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(bare)) return bare.split(".").map(Number).join(".");
  if (bare.includes(":")) {
    try { return new URL(`http://[${bare}]/`).hostname.replace(/^\[|\]$/g, ""); } catch { return value; }
  }
  return value;
}

function host(url) {
  try { return new URL(url).hostname.toLowerCase().replace(/^\[|\]$/g, "").replace(/\.$/, ""); } catch { return ""; }
}

function answersOf(network) {
  const answers = new Map();
  sequence(network.dns, "network.json dns").forEach((item, i) => {
    const record = mapping(item, `network.json dns[${i}]`);
    const name = text(record.host, `network.json dns[${i}].host`).toLowerCase();
    if (!answers.has(name)) answers.set(name, new Set());
    for (const [kind, values] of Object.entries(mapping(record.answers, `network.json dns[${i}].answers`))) {
      for (const v of sequence(values, `network.json dns[${i}].answers.${kind}`)) if (typeof v === "string") answers.get(name).add(address(v));
    }
  });
  return answers;
}

function mismatch(answers, url, ip) {
  const name = host(url);
  const known = answers.get(name);
  if (!known) return `${name} has no recorded DNS answer (server ${ip})`;
  if (!known.has(address(ip))) return `server ${ip} for ${name} is not among its DNS answers ${JSON.stringify([...known].sort())}`;
  return null;
}

function covers(cert, name) {
  const san = cert.extension("2.5.29.17")?.parsedValue?.altNames;
  if (!san) return false;
  const isIp = /^[\d.]+$/.test(name) || name.includes(":");
  for (const entry of san) {
    if (isIp && entry.type === 7) {
      const raw = new Uint8Array(entry.value.valueBlock.valueHexView);
      if (raw.length === 4 && raw.join(".") === address(name)) return true;
    }
    if (!isIp && entry.type === 2) {
      const dns = String(entry.value).toLowerCase().replace(/\.$/, "");
      if (dns === name) return true;
      // RFC 6125 §6.4.3: a wildcard stands for exactly one left-most label.
      if (dns.startsWith("*.") && name.includes(".") && name.slice(name.indexOf(".") + 1) === dns.slice(2)) return true;
    }
  }
  return false;
}

async function tlsOutcome(ctx, hop, name) {
  const tls = mapping(hop.tls, "network.json: the final https hop's tls");
  let der;
  try { der = fromBase64(text(tls.leaf_der_b64, "tls.leaf_der_b64")); } catch (e) {
    if (e instanceof CheckFailure) throw e;
    throw new CheckFailure("network.json: the leaf certificate is not valid base64");
  }
  const fingerprint = toHex(await sha256(der));
  if (fingerprint !== tls.leaf_sha256) return ["fail", `the recorded leaf certificate hashes to ${fingerprint.slice(0, 16)}…, not its stated fingerprint`];
  let cert;
  try { cert = Cert.fromDer(der); } catch (e) { throw new CheckFailure(`network.json: the leaf certificate cannot be parsed: ${e.message}`); }
  if (!covers(cert, name)) return ["fail", `the server's certificate does not name ${name}`];
  const started = ctx.pkg.manifest.capture.started_at;
  const when = typeof started === "string" && /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/.test(started) ? new Date(started) : null;
  if (!when || Number.isNaN(when.getTime())) throw new CheckFailure("the manifest has no valid capture.started_at");
  const from = cert.cert.notBefore.value, to = cert.cert.notAfter.value;
  if (!(from <= when && when <= to)) {
    return ["fail", `the server's certificate was not valid when the capture started (${from.toISOString().slice(0, 10)} to ${to.toISOString().slice(0, 10)})`];
  }
  const summary = `TLS ${tls.protocol} ${tls.cipher}, leaf ${fingerprint.slice(0, 16)}… names ${name} and was valid`;
  if (tls.verified !== true) return ["warn", `${summary}, but the capture host did not trust its chain: ${tls.verify_error || "not verified"}`];
  return ["pass", `${summary}; the capture host verified the chain`];
}

export async function checkNetwork(ctx) {
  const { manifest, zip } = ctx.pkg;
  if (manifest.kind === "log-export") throw new Skip("log-export: events sent to the log by the requester's systems, not fetched: no network facts");
  if (isEmail(manifest.kind)) {
    throw new Skip(`${manifest.kind}: an e-mail, not a fetched page: no network facts (the SMTP transcript or the DKIM key record stands for them)`);
  }
  if (manifest.kind !== "web-capture") throw new Skip("upload: no network facts; the platform received the files, it did not fetch them");
  if (!zip.has(NETWORK_PATH)) throw new CheckFailure(`the capture has no ${NETWORK_PATH}`);
  let network;
  try { network = readJson(ctx.pkg, NETWORK_PATH, MAX_NETWORK_BYTES); } catch (e) { throw new CheckFailure(`network.json: ${e.message}`); }
  if (!isObject(network) || network.format !== NETWORK_FORMAT) throw new CheckFailure(`network.json is not in the ${NETWORK_FORMAT} format`);
  const answers = answersOf(network);
  const fetch = mapping(network.fetch, "network.json fetch");
  const hops = sequence(fetch.hops, "network.json fetch.hops").map((h) => mapping(h, "network.json fetch.hops[]"));
  if (!hops.length) throw new CheckFailure("network.json records no raw-fetch hop");
  const traffic = mapping(network.traffic, "network.json traffic");
  const exchanges = sequence(traffic.exchanges, "traffic.exchanges").map((e) => mapping(e, "traffic.exchanges[]"));
  const problems = [];
  let checked = 0;
  for (const item of [...hops, ...exchanges]) {
    const server = mapping(item.server, "a recorded exchange's server");
    const problem = mismatch(answers, text(item.url, "an exchange's url"), text(server.ip, "server.ip"));
    checked++;
    if (problem) problems.push(problem);
  }
  if (!zip.has(WARC_PATH)) throw new CheckFailure(`the capture has no ${WARC_PATH}`);
  for (const record of await warcRecords(zip.read(WARC_PATH))) {
    if ((record.type === "request" || record.type === "response") && /^https?:\/\//.test(record.targetUri)) {
      checked++;
      const problem = mismatch(answers, record.targetUri, record.ipAddress || "(none)");
      if (problem) problems.push(`WARC: ${problem}`);
    }
  }
  if (problems.length) {
    const more = problems.length - MAX_LISTED;
    return ["fail", problems.slice(0, MAX_LISTED).join("; ") + (more > 0 ? `; and ${more} more` : "")];
  }
  const final = hops[hops.length - 1];
  const url = text(final.url, "final hop url");
  const name = host(url);
  const server = mapping(final.server, "final hop server");
  const where = `server ${server.ip}:${server.port} is among the DNS answers for ${name}`;
  ctx.facts.network = { final_url: url, server: `${server.ip}:${server.port}`, hosts: [...answers.keys()].sort() };
  if (!url.startsWith("https:")) return ["warn", `${where} (${checked} connections checked), but plain http: no TLS protected the content`];
  const [status, reason] = await tlsOutcome(ctx, final, name);
  return [status, `${where} (${checked} connections checked); ${reason}`];
}
