// DKIM (RFC 6376) checked offline, against the key record sealed beside the reply: no DNS, ever.
// rsa-sha256 and ed25519-sha256 (RFC 8463) through WebCrypto, simple and relaxed canonicalization;
// rsa-sha1 and RSA keys under 1024 bits are refused (RFC 8301). The first DKIM-Signature is checked.
// What a forger could do with a real signature is refused, as verifier/dkim.py refuses it: From unsigned
// or not alone, an unsigned extra once-only field, x= before t= or past (or t= after) the moment of the
// check at import, l= over the body, i= outside d=, a key record whose k=, h=, s= or t=s forbid it, an
// empty p= (revoked); a t=y key verifies but counts as no signature (DkimTesting).
// Messages are handled as "binary strings" (one char per byte), so every byte hashes as it was sealed.

import { fromBase64, sha256 } from "./bytes.js";
import { CheckFailure } from "./errors.js";
import { pyRepr } from "./pyrepr.js";

export const MIN_RSA_BITS = 1024;
export const MAX_MESSAGE_BYTES = 32 << 20;
const WSP = /[ \t]+/g;
const FOLD = /\r?\n(?=[ \t])/g;
// The b= tag's value (base64 with folding whitespace), as RFC 6376 §3.7 empties it; not bh=.
const B_VALUE = /((?:^|[;\t\n\v\f\r ])b[ \t\r\n]*=)(?:(?:[ \t]*\r?\n)?[ \t]*[A-Za-z0-9+/=])*(?:\r?\n$)?/g;

export class DkimFailure extends CheckFailure {}

/** Bytes to a binary string and back: one char per byte, nothing decoded. */
export const binary = (bytes) => { let s = ""; for (let i = 0; i < bytes.length; i += 8192) s += String.fromCharCode(...bytes.subarray(i, i + 8192)); return s; };
export const bytesOf = (text) => Uint8Array.from(text, (c) => c.charCodeAt(0));
const strip = (s) => s.replace(/^[ \t\n\r\v\f]+|[ \t\n\r\v\f]+$/g, "");
const repr = (s) => `b${pyRepr(s)}`;

/** An RFC 6376 §3.2 tag list as a Map; folding whitespace inside b=, bh= and p= is removed. */
export function tagList(value) {
  const tags = new Map();
  for (const part of value.split(";")) {
    if (!strip(part)) continue;
    const eq = part.indexOf("=");
    if (eq < 0) throw new DkimFailure(`malformed tag ${repr(strip(part).slice(0, 20))}`);
    const key = strip(part.slice(0, eq));
    if (tags.has(key)) throw new DkimFailure(`tag ${key}= appears twice`);
    const raw = part.slice(eq + 1);
    tags.set(key, ["b", "bh", "p"].includes(key) ? raw.replace(/[ \t\r\n]+/g, "") : strip(raw));
  }
  return tags;
}

/** [[lower-case name, raw field with its line end]], body. LF-only input is read as CRLF. */
export function splitMessage(message) {
  if (!message.includes("\r\n")) message = message.replaceAll("\n", "\r\n");
  let cut = message.indexOf("\r\n\r\n");
  const head = cut < 0 ? message : message.slice(0, cut);
  const body = cut < 0 ? "" : message.slice(cut + 4);
  const fields = [];
  for (const line of (head + "\r\n").split("\r\n").slice(0, -1)) {
    if ((line[0] === " " || line[0] === "\t") && fields.length) {
      const [name, raw] = fields[fields.length - 1];
      fields[fields.length - 1] = [name, raw + line + "\r\n"];
    } else if (line) {
      fields.push([strip(line.split(":", 1)[0]).toLowerCase(), line + "\r\n"]);
    }
  }
  return [fields, body];
}

export function canonicalBody(body, method) {
  if (method === "relaxed") body = body.split("\r\n").map((line) => line.replace(WSP, " ").replace(/ +$/, "")).join("\r\n");
  body = body.replace(/[\r\n]+$/, "");
  if (body || method === "simple") body += "\r\n";
  return body;
}

export function canonicalHeader(raw, method) {
  if (method === "simple") return raw;
  const colon = raw.indexOf(":");
  const name = colon < 0 ? raw : raw.slice(0, colon);
  let value = colon < 0 ? "" : raw.slice(colon + 1);
  value = value.replace(FOLD, "").replace(/[\r\n]+$/, "");
  value = value.replace(WSP, " ").replace(/^ +| +$/g, "");
  return strip(name).toLowerCase() + ":" + value + "\r\n";
}

function base64(text, failure) {
  try { return fromBase64(text); } catch { throw new DkimFailure(failure); }
}

const ALGORITHMS = { "rsa-sha256": "rsa", "ed25519-sha256": "ed25519" };
// Fields RFC 5322 §3.6 allows once: an extra, unsigned instance would be the one a reader sees.
const SINGLE_FIELDS = ["from", "sender", "reply-to", "to", "cc", "subject", "date", "message-id", "in-reply-to", "references"];
// How far a signature's t= may lie after the moment it was checked (clocks of mail servers drift).
const MAX_CLOCK_SKEW_SECONDS = 900;
const list = (value, fallback) => (value ?? fallback).split(":").map((v) => strip(v).toLowerCase());

function keyRecord(record, algorithm) {
  const tags = tagList(record.replace(/[^\x00-\x7f]/g, "?"));
  if ((tags.get("v") ?? "DKIM1") !== "DKIM1") throw new DkimFailure("the key record is not v=DKIM1");
  if (!tags.get("p")) throw new DkimFailure("the key record has an empty p=: the key was revoked");
  const type = strip(tags.get("k") ?? "rsa").toLowerCase();
  if (!type) throw new DkimFailure("the key record has an empty k=: no key type");
  if (type !== ALGORITHMS[algorithm]) throw new DkimFailure(`the key record is k=${type}, which cannot check an ${algorithm} signature`);
  if (!list(tags.get("h"), "sha256").includes("sha256")) throw new DkimFailure("the key record's h= does not allow sha256");
  const services = list(tags.get("s"), "*");
  if (!services.includes("*") && !services.includes("email")) throw new DkimFailure("the key record's s= does not allow e-mail");
  const flags = list(tags.get("t"), "").filter(Boolean);
  return { type, key: base64(tags.get("p"), "the key record's p= is not base64: Only base64 data is allowed"), flags };
}

// A DER length and a wrapper: a PKCS#1 RSAPublicKey becomes the SubjectPublicKeyInfo WebCrypto reads.
const derLength = (n) => (n < 128 ? [n] : n < 256 ? [0x81, n] : [0x82, n >> 8, n & 255]);
const der = (tag, body) => Uint8Array.from([tag, ...derLength(body.length), ...body]);
const RSA_ALGORITHM = [0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00];
const spkiOfPkcs1 = (key) => der(0x30, [...RSA_ALGORITHM, ...der(0x03, [0, ...key])]);

async function importRsa(key) {
  const params = { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" };
  try {
    return await crypto.subtle.importKey("spki", key, params, false, ["verify"]);
  } catch {
    try { return await crypto.subtle.importKey("spki", spkiOfPkcs1(key), params, false, ["verify"]); } catch (e) {
      throw new DkimFailure(`the key record's key is unusable: ${e && e.message ? e.message : "not an RSA public key"}`);
    }
  }
}

async function verifySignature(algorithm, record, signature, data) {
  let valid;
  if (algorithm === "rsa-sha256" && record.type === "rsa") {
    const key = await importRsa(record.key);
    if (key.algorithm.modulusLength < MIN_RSA_BITS) throw new DkimFailure(`the RSA key has ${key.algorithm.modulusLength} bits, under ${MIN_RSA_BITS}`);
    valid = await crypto.subtle.verify({ name: "RSASSA-PKCS1-v1_5" }, key, signature, data);
  } else if (algorithm === "ed25519-sha256" && record.type === "ed25519") {
    if (record.key.length !== 32) throw new DkimFailure("the key record's key is unusable: An Ed25519 public key is 32 bytes long");
    const key = await crypto.subtle.importKey("raw", record.key, { name: "Ed25519" }, false, ["verify"]);
    valid = await crypto.subtle.verify({ name: "Ed25519" }, key, signature, await sha256(data));
  } else {
    throw new DkimFailure(`algorithm ${algorithm} with a k=${record.type} key is not supported`);
  }
  if (!valid) throw new DkimFailure("the signature does not match the signed headers");
}

/** A decimal tag of at most `digits` digits (t=, x=, l=), as a BigInt, or null when absent. */
function decimal(tags, name, digits) {
  if (!tags.has(name)) return null;
  const value = tags.get(name);
  if (!/^[0-9]{1,76}$/.test(value) || value.length > digits) throw new DkimFailure(`${name}= is not a decimal number of at most ${digits} digits`);
  return BigInt(value);
}

const MAX_DATE_SECONDS = 253402300799n; // 9999-12-31 23:59:59 UTC, the last moment Python's datetime shows
function utcText(seconds) {
  if (seconds > MAX_DATE_SECONDS) return `${seconds} s after 1970`;
  return `${new Date(Number(seconds) * 1000).toISOString().slice(0, 19).replace("T", " ")} UTC`;
}

/** t= and x= (RFC 6376 §3.5): x after t, and the signature valid when it was checked (at import). */
function checkTimes(tags, checkedAt) {
  const signedAt = decimal(tags, "t", 12), expires = decimal(tags, "x", 12);
  if (signedAt !== null && expires !== null && expires < signedAt) {
    throw new DkimFailure(`the signature expires (x=${expires}) before it was made (t=${signedAt})`);
  }
  if (!checkedAt) return;
  const moment = BigInt(Math.floor(checkedAt.getTime() / 1000));
  const exact = checkedAt.getTime() / 1000;
  if (expires !== null && Number(expires) < exact) {
    throw new DkimFailure(`the signature had expired (${utcText(expires)}) when it was checked (${utcText(moment)})`);
  }
  if (signedAt !== null && Number(signedAt) > exact + MAX_CLOCK_SKEW_SECONDS) {
    throw new DkimFailure(`the signature says it was made at ${utcText(signedAt)}, after it was checked (${utcText(moment)})`);
  }
}

/** The i= identity (RFC 6376 §3.5): its domain is d= or under it; exactly d= under a t=s key. */
function checkIdentity(tags, domain, record) {
  if (!tags.has("i")) return null;
  const text = tags.get("i").replace(/[^\x00-\x7f]/g, "\ufffd");
  const at = text.lastIndexOf("@");
  const where = text.slice(at + 1).toLowerCase().replace(/\.+$/, "");
  if (at < 0 || !(where === domain || where.endsWith(`.${domain}`))) throw new DkimFailure(`i=${text} is not within d=${domain}`);
  if (record.flags.includes("s") && where !== domain) {
    throw new DkimFailure(`i=${text} is a subdomain of d=${domain}, which the key (t=s) does not allow`);
  }
  return text;
}

const title = (name) => name.replace(/(^|[^a-z])([a-z])/g, (_, before, letter) => before + letter.toUpperCase());

/** From is signed and appears once, and no once-only field has an instance h= does not cover. */
function checkFields(names, fields) {
  if (!names.includes("from")) throw new DkimFailure("the signature does not cover From");
  const counts = new Map();
  for (const [name] of fields) counts.set(name, (counts.get(name) ?? 0) + 1);
  const froms = counts.get("from") ?? 0;
  if (froms !== 1) throw new DkimFailure(`the message has ${froms} From fields: which sender is meant is ambiguous`);
  for (const name of SINGLE_FIELDS) {
    const signed = names.filter((n) => n === name).length;
    if (signed && (counts.get(name) ?? 0) > signed) {
      throw new DkimFailure(`the message has ${counts.get(name)} ${title(name)} fields and the signature covers ${signed}: an unsigned one was added`);
    }
  }
}

/** A key in testing mode (t=y): RFC 6376 §3.6.1 has verifiers treat the message as unsigned. */
export class DkimTesting extends DkimFailure {}

/**
 * Check the first DKIM-Signature of `message` (bytes) with `keyText` (the TXT value), as of `checkedAt`
 * (a Date: when the key record was fetched at import; null: t= and x= only against each other).
 * Returns { domain, selector, algorithm, signedHeaders, identity, unsignedBodyBytes }; throws
 * DkimTesting for a key in testing mode, DkimFailure with the reason for every other failure.
 */
export async function verifyDkim(message, keyText, { checkedAt = null } = {}) {
  if (message.length > MAX_MESSAGE_BYTES) throw new DkimFailure(`the message is over ${MAX_MESSAGE_BYTES} bytes`);
  const [fields, body] = splitMessage(binary(message));
  const field = fields.find(([name]) => name === "dkim-signature");
  if (!field) throw new DkimFailure("the message carries no DKIM-Signature");
  const signatureField = field[1];
  const tags = tagList(signatureField.slice(signatureField.indexOf(":") + 1));
  for (const required of ["v", "a", "b", "bh", "d", "h", "s"]) {
    if (!tags.has(required)) throw new DkimFailure(`the DKIM-Signature lacks ${required}=`);
  }
  if (tags.get("v") !== "1") throw new DkimFailure("the DKIM-Signature is not v=1");
  const algorithm = strip(tags.get("a")).toLowerCase().replace(/[^\x00-\x7f]/g, "\ufffd");
  if (algorithm === "rsa-sha1") throw new DkimFailure("rsa-sha1 signatures are refused (RFC 8301 §3.1)");
  if (!Object.hasOwn(ALGORITHMS, algorithm)) throw new DkimFailure(`algorithm ${[...algorithm].slice(0, 40).join("")} is not supported`);
  const domain = strip(tags.get("d")).toLowerCase().replace(/\.+$/, "");
  const c = tags.get("c") ?? "simple/simple";
  const slash = c.indexOf("/");
  const headerC = slash < 0 ? c : c.slice(0, slash);
  const bodyC = (slash < 0 ? "" : c.slice(slash + 1)) || "simple";
  for (const method of [headerC, bodyC]) {
    if (method !== "simple" && method !== "relaxed") throw new DkimFailure(`canonicalization ${headerC}/${bodyC} is not defined`);
  }
  checkTimes(tags, checkedAt);
  let signedBody = canonicalBody(body, bodyC);
  const wholeBody = signedBody.length;
  const length = decimal(tags, "l", 76);
  if (length !== null) {
    if (length > BigInt(wholeBody)) throw new DkimFailure(`l=${length} is longer than the body (${wholeBody} bytes canonicalized)`);
    signedBody = signedBody.slice(0, Number(length));
  }
  const bodyHash = btoa(binary(await sha256(bytesOf(signedBody))));
  if (bodyHash !== tags.get("bh")) throw new DkimFailure("the body hash does not match bh=: the body was changed after signing");
  const names = tags.get("h").split(":").map((n) => strip(n).toLowerCase()).filter(Boolean);
  checkFields(names, fields);
  // Each name in h= takes the next instance of that field from the bottom (RFC 6376 §5.4.2).
  const remaining = new Map();
  for (const [name, raw] of fields) remaining.set(name, [...(remaining.get(name) ?? []), raw]);
  let data = "";
  for (const name of names) {
    const instances = remaining.get(name);
    if (instances && instances.length) data += canonicalHeader(instances.pop(), headerC);
  }
  // The signature's own field is signed with its b= value empty, and without its final line end.
  const colon = signatureField.indexOf(":");
  const own = signatureField.slice(0, colon) + ":" + signatureField.slice(colon + 1).replace(B_VALUE, "$1");
  data += canonicalHeader(own, headerC).replace(/\r\n$/, "");
  const signature = base64(tags.get("b"), "b= is not base64");
  const record = keyRecord(keyText, algorithm);
  const identity = checkIdentity(tags, domain, record);
  await verifySignature(algorithm, record, signature, bytesOf(data));
  if (record.flags.includes("y")) {
    throw new DkimTesting(`the key of ${domain} is in testing mode (t=y): the signature verifies, but RFC 6376 §3.6.1 has it count as no signature`);
  }
  return { domain, selector: tags.get("s"), algorithm, signedHeaders: names, identity,
    unsignedBodyBytes: wholeBody - signedBody.length };
}
