// The notice checks, offline: N1 (a reply's provenance: its DKIM signature against the key record
// sealed at import) and N2 (a sent notice is what went out, and holds what its rule sets require).

import canonicalize from "canonicalize";
import { sha256, toHex } from "./bytes.js";
import { CheckFailure, Skip } from "./errors.js";
import { isObject, parseJson } from "./json.js";
import { DkimFailure, DkimTesting, MAX_MESSAGE_BYTES, binary, bytesOf, splitMessage, tagList, verifyDkim } from "./dkim.js";
import { attachments } from "./mime.js";
import { pyRepr } from "./pyrepr.js";
import { ELEMENTS, describeMissing, elementOrder, judge, toJson } from "./noticerules.js";

// Python's str() of a JSON value, as the CLI's reasons show it.
const py = (v) => (v === null || v === undefined ? "None" : v === true ? "True" : v === false ? "False" : String(v));
const repr = (v) => (typeof v === "string" ? pyRepr(v) : py(v));

/** The bytes of artifact `path`, which the manifest must list; a changed file is noted (H1 fails it). */
async function listedBytes(ctx, path, what) {
  const artifact = ctx.pkg.manifest.artifacts.find((a) => a.path === path);
  if (!artifact || !ctx.pkg.zip.has(path)) throw new CheckFailure(`the ${what} (${repr(path)}) is not a listed artifact of the package`);
  const data = ctx.pkg.zip.read(artifact.path, MAX_MESSAGE_BYTES);
  if (toHex(await sha256(data)) !== artifact.sha256) (ctx.facts.notice_files_changed ??= []).push(artifact.path);
  return data;
}

function record(ctx, key) {
  const value = ctx.pkg.manifest.data[key];
  if (!isObject(value)) throw new CheckFailure(`the manifest has no ${key} record`);
  return value;
}

function domainOf(address) {
  const angle = /<([^<>]*)>\s*$/.exec(address);
  const mailbox = (angle ? angle[1] : address).trim();
  return mailbox.slice(mailbox.lastIndexOf("@") + 1).toLowerCase().replace(/\.+$/, "");
}

const utf8 = (raw) => new TextDecoder("utf-8").decode(bytesOf(raw));

const ISO = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?(Z|[+-]\d{2}:\d{2})?$/;

/** When the key record was fetched at import, the moment the signature was checked (t= and x= are
 * judged against it, not today: a signature may expire after the reply was received); null if unknown. */
function checkedAt(value) {
  const m = typeof value === "string" ? ISO.exec(value) : null;
  if (!m) return null;
  const zone = !m[8] || m[8] === "Z" ? "Z" : m[8];
  const date = new Date(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6] ?? "00"}${zone}`);
  return Number.isNaN(date.getTime()) ? null : new Date(date.getTime() + Number((m[7] ?? "0").padEnd(6, "0")) / 1000);
}

/** N1: the reply's DKIM signature verifies, offline, against the key record sealed at import. */
export async function checkReplyProvenance(ctx) {
  if (ctx.pkg.manifest.kind !== "notice-reply") throw new Skip("not a notice reply");
  const reply = record(ctx, "reply");
  const message = await listedBytes(ctx, reply.message, "reply message");
  const [fields] = splitMessage(binary(message));
  const signature = fields.find(([name]) => name === "dkim-signature");
  if (!signature) return ["warn", "the reply carries no DKIM signature: it is sealed as received, but no domain vouches for it"];
  let tags;
  try {
    tags = tagList(signature[1].slice(signature[1].indexOf(":") + 1));
  } catch (e) {
    if (e instanceof DkimFailure) return ["fail", `the reply's DKIM-Signature is malformed: ${e.message}`];
    throw e;
  }
  const expectedName = `${tags.get("s") ?? ""}._domainkey.${tags.get("d") ?? ""}`.replace(/[^\x00-\x7f]/g, "\ufffd").toLowerCase();
  const dnsRecord = parseJson(await listedBytes(ctx, reply.dns_record, "DKIM key record"), "DKIM key record");
  if (!isObject(dnsRecord)) return ["fail", "the sealed DKIM key record is not a JSON object"];
  const name = py(dnsRecord.name ?? "").toLowerCase().replace(/\.+$/, "");
  const where = `fetched from ${py(dnsRecord.resolver)} at ${py(dnsRecord.fetched_at)}`;
  if (name !== expectedName) return ["fail", `the sealed key record is for ${name || "nothing"}, not ${expectedName} as the signature says`];
  const value = dnsRecord.value;
  if (typeof value !== "string" || !value) {
    return ["fail", `no key record was found for ${expectedName} at import (${where}: ${py(dnsRecord.error)})`];
  }
  let result;
  try {
    result = await verifyDkim(message, value, { checkedAt: checkedAt(dnsRecord.fetched_at) });
  } catch (e) {
    if (e instanceof DkimTesting) return ["warn", `${e.message}; the reply is sealed as received, but no domain vouches for it`];
    if (e instanceof DkimFailure) return ["fail", `DKIM signature of ${expectedName} does not verify against the record ${where}: ${e.message}`];
    throw e;
  }
  const senders = fields.filter(([n]) => n === "from");
  if (senders.length !== 1) {
    return ["fail", `the reply has ${senders.length} From fields: which sender the DKIM signature of ${result.domain} vouches for is ambiguous`];
  }
  const sender = senders[0][1];
  const fromDomain = domainOf(utf8(sender.slice(sender.indexOf(":") + 1)).trim());
  ctx.facts.reply_provenance = { domain: result.domain, selector: result.selector, algorithm: result.algorithm,
    from_domain: fromDomain, resolver: dnsRecord.resolver ?? null, fetched_at: dnsRecord.fetched_at ?? null };
  if (result.unsignedBodyBytes) {
    return ["warn", `DKIM pass for ${result.domain}, but only part of the body is signed (l=): ${result.unsignedBodyBytes} bytes at its end are not covered`];
  }
  if (!(fromDomain === result.domain || fromDomain.endsWith(`.${result.domain}`))) {
    return ["warn", `DKIM pass for ${result.domain} (${result.algorithm}, key record ${where}), but the From address is of ${fromDomain || "no domain"}: the signer is not the sender's domain`];
  }
  return ["pass", `DKIM pass for ${result.domain} (selector ${result.selector}, ${result.algorithm}), checked offline against the key record ${where}; From is ${fromDomain}`];
}

/** The DATA bytes an SMTP client sends for `message` (RFC 5321 §4.5.2 dot-stuffing, final dot line). */
function onTheWire(message) {
  let text = binary(message).replace(/^\./gm, "..");
  if (!text.endsWith("\r\n")) text += "\r\n";
  return bytesOf(`${text}.\r\n`);
}

/** How the sealed SMTP transcript shows the message delivered ("; … accepted it …"), "!why", or "". */
async function delivery(ctx, message) {
  const artifact = ctx.pkg.manifest.artifacts.find((a) => a.role === "smtp-transcript");
  if (!artifact) return "";
  const transcript = parseJson(await listedBytes(ctx, artifact.path, "SMTP transcript"), "SMTP transcript");
  if (!Array.isArray(transcript)) return "!the SMTP transcript is not a list of exchanges";
  const exchange = transcript.find((e) => isObject(e) && isObject(e.data));
  if (!exchange) return "!the SMTP transcript shows no message sent (no DATA)";
  if (exchange.data.sha256 !== toHex(await sha256(onTheWire(message)))) {
    return "!the message in the SMTP transcript (by its sha256) is not the sealed message";
  }
  const replies = transcript.filter((e) => isObject(e) && e.from === "server");
  const after = Math.max(0, transcript.findIndex((e) => isObject(e) && Object.hasOwn(e, "data")));
  const accepted = transcript.slice(after).find((e) => isObject(e) && e.from === "server");
  if (!accepted || accepted.code !== 250) return "!the SMTP transcript shows no 250 accepting the message";
  const sent = record(ctx, "notice").delivery;
  const server = isObject(sent) ? sent.server ?? null : null;
  const tls = transcript.find((e) => isObject(e) && e.from === "tls");
  ctx.facts.notice_delivery = { server, accepted: `${py(accepted.code)} ${py(accepted.text)}`, tls: tls ? tls.version ?? null : null,
    exchanges: replies.length };
  const over = tls ? ` over ${py(tls.version)}` : " without TLS";
  return `; ${server ? py(server) : "the server"} accepted it${over}: ${py(accepted.code)} ${py(accepted.text)}`;
}

const sameBytes = (a, b) => a !== undefined && a.length === b.length && a.every((x, i) => x === b[i]);

/** N2: the sealed notice is what was sent, and holds every element its rule sets require. */
export async function checkNoticeComplete(ctx) {
  if (ctx.pkg.manifest.kind !== "notice") throw new Skip("not a notice");
  const notice = record(ctx, "notice");
  const sealed = notice.record;
  if (!isObject(sealed)) return ["fail", "the manifest's notice record is missing"];
  const message = await listedBytes(ctx, notice.message, "sent message");
  const delivered = await delivery(ctx, message);
  if (delivered.startsWith("!")) return ["fail", delivered.slice(1)];
  const attached = attachments(message);
  const pdf = await listedBytes(ctx, notice.pdf, "notice PDF");
  if (!sameBytes(attached.get("application/pdf"), pdf)) return ["fail", "the notice PDF in the package is not the PDF the sent message carried"];
  let sentRecord = null;
  try {
    sentRecord = JSON.parse(new TextDecoder("utf-8").decode(attached.get("application/json") ?? new TextEncoder().encode("null")));
  } catch {
    sentRecord = null;
  }
  if (!isObject(sentRecord) || canonicalize(sentRecord) !== canonicalize(sealed)) {
    return ["fail", "the notice record in the manifest is not the record the sent message carried"];
  }
  const results = judge(sealed);
  if (!results.length) return ["fail", "the notice names no known rule set"];
  ctx.facts.notice = { notice_id: sealed.notice_id ?? null, action: sealed.action ?? null, version: sealed.version ?? null,
    previous: sealed.previous ?? null, rule_sets: results.map(toJson) };
  const contained = elementOrder(new Set(results.flatMap((r) => r.present)));
  const holds = contained.map((e) => ELEMENTS[e].en).join("; ") || "none of the elements";
  if (sealed.action === "withdrawal") return ["pass", `a withdrawal of an earlier notice (it needs no grounds); it holds: ${holds}${delivered}`];
  const missing = describeMissing(results);
  if (missing.length) return ["warn", `the notice as sent is incomplete: ${missing.join(" | ")}. It holds: ${holds}${delivered}`];
  return ["pass", `the notice as sent holds every element of ${results.map((r) => r.rule.en).join(", ")}: ${holds}${delivered}`];
}
