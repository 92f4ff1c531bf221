// DKIM (RFC 6376) checked offline, against the key record sealed beside the reply: no DNS, ever.
// rsa-sha256 and ed25519-sha256 (RFC 8463) through WebCrypto, simple and relaxed canonicalization;
// rsa-sha1 and RSA keys under 1024 bits are refused (RFC 8301). The first DKIM-Signature is checked.
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

function keyRecord(record) {
  const tags = tagList(record.replace(/[^\x00-\x7f]/g, "?"));
  if ((tags.get("v") ?? "DKIM1") !== "DKIM1") throw new DkimFailure("the key record is not v=DKIM1");
  if (!tags.get("p")) throw new DkimFailure("the key record has an empty p=: the key was revoked");
  const flags = (tags.get("t") ?? "").split(":").map(strip);
  return { type: tags.get("k") ?? "rsa", key: base64(tags.get("p"), "the key record's p= is not base64"), testing: flags.includes("y") };
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

const isDomainWithin = (identityDomain, domain) => identityDomain === domain || identityDomain.endsWith(`.${domain}`);

/**
 * Check the first DKIM-Signature of `message` (bytes) with `keyText` (the TXT value), at `sealedAt`
 * (a Date: when the reply was sealed, for x=). Returns { domain, selector, algorithm, signedHeaders,
 * identity, unsignedBodyBytes, testing }; throws DkimFailure with the reason.
 */
export async function verifyDkim(message, keyText, { sealedAt = null } = {}) {
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
  const algorithm = tags.get("a");
  const c = tags.get("c") ?? "simple/simple";
  const slash = c.indexOf("/");
  const headerC = slash < 0 ? c : c.slice(0, slash);
  const bodyC = (slash < 0 ? "" : c.slice(slash + 1)) || "simple";
  for (const method of [headerC, bodyC]) {
    if (method !== "simple" && method !== "relaxed") throw new DkimFailure(`canonicalization ${headerC}/${bodyC} is not defined`);
  }
  let signedBody = canonicalBody(body, bodyC);
  const wholeBody = signedBody.length;
  if (tags.has("l")) {
    if (!/^\s*[+-]?\d+\s*$/.test(tags.get("l"))) throw new DkimFailure("l= is not a number");
    const length = Number(tags.get("l"));
    signedBody = signedBody.slice(0, length < 0 ? Math.max(0, signedBody.length + length) : length);
  }
  const bodyHash = btoa(binary(await sha256(bytesOf(signedBody))));
  if (bodyHash !== tags.get("bh")) throw new DkimFailure("the body hash does not match bh=: the body was changed after signing");
  const names = tags.get("h").split(":").map((n) => strip(n).toLowerCase()).filter(Boolean);
  if (!names.includes("from")) throw new DkimFailure("the signature does not cover From");
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
  const record = keyRecord(keyText);
  await verifySignature(algorithm, record, signature, bytesOf(data));
  const domain = tags.get("d").toLowerCase();
  const identity = tags.get("i") || null;
  if (identity !== null) {
    const at = identity.lastIndexOf("@");
    if (at < 0 || !isDomainWithin(identity.slice(at + 1).toLowerCase(), domain)) {
      throw new DkimFailure(`the signing identity i=${identity} is not within the signing domain ${domain}`);
    }
  }
  checkTimes(tags, sealedAt);
  return { domain, selector: tags.get("s"), algorithm, signedHeaders: names, identity,
    unsignedBodyBytes: wholeBody - signedBody.length, testing: record.testing };
}

/** t= and x= (RFC 6376 §3.5): x must not precede t, and the signature must not have expired when sealed. */
function checkTimes(tags, sealedAt) {
  const seconds = (name) => {
    if (!tags.has(name)) return null;
    if (!/^\d{1,12}$/.test(tags.get(name))) throw new DkimFailure(`${name}= is not a number of seconds`);
    return Number(tags.get(name));
  };
  const signed = seconds("t"), expires = seconds("x");
  if (expires === null) return;
  if (signed !== null && expires < signed) throw new DkimFailure(`x= (${expires}) is before t= (${signed}): the signature is invalid`);
  if (sealedAt && expires * 1000 < sealedAt.getTime()) {
    throw new DkimFailure(`the signature expired (x=${expires}) before the reply was sealed`);
  }
}
