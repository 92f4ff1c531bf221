// X.509 for RFC 3161: reading PEM/DER, signature checks through WebCrypto, and the chain walk from a
// TSA certificate to a trusted root at a given time. The walk is depth-first over every candidate
// issuer, so a look-alike certificate planted in a package cannot hide the real path.

import * as asn1js from "asn1js";
import * as pkijs from "pkijs";
import { equal, toHex } from "./bytes.js";
import { formatTime } from "./courttime.js";

export const MAX_CERTIFICATES = 64;
export const MAX_CHAIN_DEPTH = 8;
const MAX_CHAIN_STEPS = 256;
const MAX_CERT_FILE_BYTES = 1 << 20;
export const OID = {
  eku: "2.5.29.37", keyUsage: "2.5.29.15", basicConstraints: "2.5.29.19", ski: "2.5.29.14", san: "2.5.29.17",
  timeStamping: "1.3.6.1.5.5.7.3.8", anyEku: "2.5.29.37.0",
};
// Extensions whose meaning a TSA chain check knows or may safely ignore; another critical one fails.
const KNOWN_EXTENSIONS = new Set(["2.5.29.14", "2.5.29.15", "2.5.29.17", "2.5.29.18", "2.5.29.19", "2.5.29.30",
  "2.5.29.31", "2.5.29.32", "2.5.29.33", "2.5.29.35", "2.5.29.36", "2.5.29.37", "2.5.29.54", "1.3.6.1.5.5.7.1.1",
  "1.3.6.1.5.5.7.1.11"]);
const HASH_OIDS = {
  "1.3.14.3.2.26": "sha1", "2.16.840.1.101.3.4.2.1": "sha256", "2.16.840.1.101.3.4.2.2": "sha384",
  "2.16.840.1.101.3.4.2.3": "sha512", "2.16.840.1.101.3.4.2.4": "sha224",
};
const WEBCRYPTO_HASH = { sha1: "SHA-1", sha256: "SHA-256", sha384: "SHA-384", sha512: "SHA-512" };
const CURVES = { "1.2.840.10045.3.1.7": "P-256", "1.3.132.0.34": "P-384", "1.3.132.0.35": "P-521" };
// Signature algorithm OID -> [kind, hash] (hash null: given elsewhere).
const SIGNATURE_OIDS = {
  "1.2.840.113549.1.1.1": ["pkcs1", null], "1.2.840.113549.1.1.5": ["pkcs1", "sha1"],
  "1.2.840.113549.1.1.11": ["pkcs1", "sha256"], "1.2.840.113549.1.1.12": ["pkcs1", "sha384"],
  "1.2.840.113549.1.1.13": ["pkcs1", "sha512"], "1.2.840.113549.1.1.14": ["pkcs1", "sha224"],
  "1.2.840.113549.1.1.10": ["pss", null], "1.2.840.10045.2.1": ["ecdsa", null],
  "1.2.840.10045.4.1": ["ecdsa", "sha1"], "1.2.840.10045.4.3.2": ["ecdsa", "sha256"],
  "1.2.840.10045.4.3.3": ["ecdsa", "sha384"], "1.2.840.10045.4.3.4": ["ecdsa", "sha512"],
  "1.3.101.112": ["ed25519", null],
};

export class TimestampError extends Error {
  constructor(message, { untrustedRoot = false } = {}) {
    super(message);
    this.untrustedRoot = untrustedRoot;
  }
}

export const hashName = (oid) => HASH_OIDS[oid];

/** A parsed certificate with its DER bytes. */
export class Cert {
  constructor(der) {
    this.der = der;
    const asn1 = asn1js.fromBER(der);
    if (asn1.offset === -1 || asn1.offset !== der.byteLength) throw new TimestampError("not a DER certificate");
    this.cert = new pkijs.Certificate({ schema: asn1.result });
    this.subjectDer = new Uint8Array(this.cert.subject.toSchema().toBER(false));
    this.issuerDer = new Uint8Array(this.cert.issuer.toSchema().toBER(false));
  }

  static fromDer(der) {
    try { return new Cert(new Uint8Array(der)); } catch (e) {
      throw e instanceof TimestampError ? e : new TimestampError(`not a certificate: ${e.message || e}`);
    }
  }

  get subjectText() {
    return this.cert.subject.typesAndValues.map((tv) => `${shortName(tv.type)}=${tv.value.valueBlock.value}`).reverse().join(",");
  }

  extension(oid) { return (this.cert.extensions || []).find((e) => e.extnID === oid); }

  get serial() { return BigInt(`0x${toHex(this.cert.serialNumber.valueBlock.valueHexView) || "0"}`); }

  get subjectKeyId() {
    const ext = this.extension(OID.ski);
    return ext ? new Uint8Array(ext.parsedValue.valueBlock.valueHexView) : null;
  }
}

function shortName(oid) {
  return { "2.5.4.3": "CN", "2.5.4.10": "O", "2.5.4.11": "OU", "2.5.4.6": "C", "2.5.4.7": "L", "2.5.4.8": "ST" }[oid] || oid;
}

/** Compare two X.501 names: byte-equal, or equal after pkijs's case and space folding. */
export function sameName(aDer, bDer) {
  if (equal(aDer, bDer)) return true;
  try {
    const a = pkijs.RelativeDistinguishedNames.fromBER(aDer), b = pkijs.RelativeDistinguishedNames.fromBER(bDer);
    return a.isEqual(b);
  } catch {
    return false;
  }
}

/** Return the certificates in PEM (one or many) or DER data; throws TimestampError. */
export function loadCertificates(data) {
  if (data.length > MAX_CERT_FILE_BYTES) throw new TimestampError(`certificate file of ${data.length} bytes exceeds ${MAX_CERT_FILE_BYTES}`);
  const text = new TextDecoder("latin1").decode(data);
  const ders = [];
  if (text.includes("-----BEGIN")) {
    const blocks = [...text.matchAll(/-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g)];
    if (!blocks.length) throw new TimestampError("not a certificate (PEM or DER): no PEM certificate");
    for (const block of blocks) {
      const body = block[1].replace(/\s+/g, "");
      let raw;
      try { raw = atob(body); } catch { throw new TimestampError("not a certificate (PEM or DER): bad base64"); }
      ders.push(Uint8Array.from(raw, (c) => c.charCodeAt(0)));
    }
  } else {
    let rest = data;
    while (rest.length) {
      const asn1 = asn1js.fromBER(rest);
      if (asn1.offset === -1) throw new TimestampError("not a certificate (PEM or DER)");
      ders.push(rest.subarray(0, asn1.offset));
      rest = rest.subarray(asn1.offset);
    }
  }
  if (!ders.length) throw new TimestampError("no certificate found");
  if (ders.length > MAX_CERTIFICATES) throw new TimestampError(`${ders.length} certificates exceed ${MAX_CERTIFICATES}`);
  return ders.map((der) => Cert.fromDer(der));
}

/**
 * ECDSA signatures are DER SEQUENCE { INTEGER r, INTEGER s } in X.509 and CMS; WebCrypto wants r || s.
 * The DER is read strictly: another tag (a SET, say), a long or non-minimal length, a non-minimal or
 * negative integer or trailing bytes is a different byte string that must not verify.
 */
function ecdsaRaw(signature, curve) {
  const size = { "P-256": 32, "P-384": 48, "P-521": 66 }[curve];
  const bad = () => new TimestampError("malformed ECDSA signature (not strict DER)");
  const length = (at) => {
    const first = signature[at];
    if (first === undefined) throw bad();
    if (first < 0x80) return [first, at + 1];
    if (first !== 0x81 || signature[at + 1] === undefined || signature[at + 1] < 0x80) throw bad();
    return [signature[at + 1], at + 2];
  };
  if (signature[0] !== 0x30) throw bad();
  const [total, body] = length(1);
  if (body + total !== signature.length) throw bad();
  const out = new Uint8Array(size * 2);
  let at = body;
  for (let i = 0; i < 2; i++) {
    if (signature[at] !== 0x02) throw bad();
    const [n, start] = length(at + 1);
    let v = signature.subarray(start, start + n);
    if (n === 0 || start + n > signature.length || v[0] & 0x80 || (n > 1 && v[0] === 0 && !(v[1] & 0x80))) throw bad();
    at = start + n;
    while (v.length > size && v[0] === 0) v = v.subarray(1);
    if (v.length > size) throw bad();
    out.set(v, size * (i + 1) - v.length);
  }
  if (at !== signature.length) throw bad();
  return out;
}

/**
 * Verify `signature` over `data` with the certificate's key. `algorithm` is a signature algorithm
 * OID with its params; `hash` names the digest when the OID does not. Returns a boolean; throws
 * TimestampError for an unsupported combination.
 */
export async function verifyWithKey(cert, algorithmId, params, hash, signature, data) {
  const entry = SIGNATURE_OIDS[algorithmId];
  if (!entry) throw new TimestampError(`unsupported signature algorithm ${algorithmId}`);
  const [kind, fixedHash] = entry;
  const spki = cert.cert.subjectPublicKeyInfo;
  const keyOid = spki.algorithm.algorithmId;
  const spkiDer = spki.toSchema().toBER(false);
  let hashName = fixedHash || hash;
  try {
    if (kind === "ed25519") {
      if (keyOid !== "1.3.101.112") throw new TimestampError(`unsupported signature algorithm ed25519 for this key`);
      const key = await crypto.subtle.importKey("spki", spkiDer, { name: "Ed25519" }, false, ["verify"]);
      return await crypto.subtle.verify({ name: "Ed25519" }, key, signature, data);
    }
    if (!WEBCRYPTO_HASH[hashName]) throw new TimestampError(`digest algorithm ${hashName} is weak or unsupported`);
    if (kind === "ecdsa") {
      const params = spki.algorithm.algorithmParams;
      const curve = params instanceof asn1js.ObjectIdentifier ? CURVES[params.getValue()] : undefined;
      if (keyOid !== "1.2.840.10045.2.1" || !curve) throw new TimestampError("unsupported signature algorithm ecdsa for this key");
      const key = await crypto.subtle.importKey("spki", spkiDer, { name: "ECDSA", namedCurve: curve }, false, ["verify"]);
      return await crypto.subtle.verify({ name: "ECDSA", hash: WEBCRYPTO_HASH[hashName] }, key, ecdsaRaw(signature, curve), data);
    }
    if (keyOid !== "1.2.840.113549.1.1.1") throw new TimestampError(`unsupported signature algorithm ${kind} for this key`);
    if (kind === "pkcs1") {
      const key = await crypto.subtle.importKey("spki", spkiDer, { name: "RSASSA-PKCS1-v1_5", hash: WEBCRYPTO_HASH[hashName] }, false, ["verify"]);
      return await crypto.subtle.verify({ name: "RSASSA-PKCS1-v1_5" }, key, signature, data);
    }
    const pss = new pkijs.RSASSAPSSParams({ schema: params });
    const pssHash = HASH_OIDS[pss.hashAlgorithm.algorithmId];
    const mgf = new pkijs.AlgorithmIdentifier({ schema: pss.maskGenAlgorithm.algorithmParams });
    if (pssHash !== hashName || HASH_OIDS[mgf.algorithmId] !== hashName) {
      throw new TimestampError(`RSASSA-PSS parameters disagree with digest ${hashName}`);
    }
    const key = await crypto.subtle.importKey("spki", spkiDer, { name: "RSA-PSS", hash: WEBCRYPTO_HASH[hashName] }, false, ["verify"]);
    return await crypto.subtle.verify({ name: "RSA-PSS", saltLength: pss.saltLength }, key, signature, data);
  } catch (e) {
    if (e instanceof TimestampError) throw e;
    throw new TimestampError(`unsupported or malformed key: ${e.message || e}`);
  }
}

async function issuedBy(cert, issuer) {
  const c = cert.cert;
  try {
    return await verifyWithKey(issuer, c.signatureAlgorithm.algorithmId, c.signatureAlgorithm.algorithmParams, null,
      new Uint8Array(c.signatureValue.valueBlock.valueHexView), new Uint8Array(c.tbsView));
  } catch {
    return false;
  }
}

const iso = (d) => formatTime(d); // shown in the court format, Beijing time and UTC

/** Throw TimestampError unless `cert` is valid at `at` and has no unknown critical extension. */
export function checkValidAt(cert, at, what) {
  const from = cert.cert.notBefore.value, to = cert.cert.notAfter.value;
  if (!(from <= at && at <= to)) {
    throw new TimestampError(`${what} ${cert.subjectText} is not valid at ${iso(at)} (valid ${iso(from)} to ${iso(to)})`);
  }
  for (const ext of cert.cert.extensions || []) {
    if (ext.critical && !KNOWN_EXTENSIONS.has(ext.extnID)) {
      throw new TimestampError(`${what} ${cert.subjectText} has unknown critical extension ${ext.extnID}`);
    }
  }
}

/** keyUsage bits as a Set of bit numbers (0 = digitalSignature, 1 = nonRepudiation, 5 = keyCertSign). */
export function keyUsageBits(cert) {
  const ext = cert.extension(OID.keyUsage);
  if (!ext) return null;
  const raw = new Uint8Array(ext.parsedValue.valueBlock.valueHexView);
  const bits = new Set();
  raw.forEach((byte, i) => { for (let b = 0; b < 8; b++) if (byte & (0x80 >> b)) bits.add(i * 8 + b); });
  return bits;
}

function checkIssuer(issuer, below, at, anchor) {
  checkValidAt(issuer, at, anchor ? "trusted root" : "intermediate");
  const name = issuer.subjectText;
  const bc = issuer.extension(OID.basicConstraints)?.parsedValue;
  if ((!bc && !anchor) || (bc && !bc.cA)) throw new TimestampError(`${name} is not a CA certificate`);
  const pathLen = bc?.pathLenConstraint;
  if (bc && pathLen !== undefined && pathLen !== null && below > Number(pathLen.valueBlock?.valueDec ?? pathLen)) {
    throw new TimestampError(`path length constraint of ${name} exceeded`);
  }
  const ku = keyUsageBits(issuer);
  if (ku && !ku.has(5)) throw new TimestampError(`keyUsage of ${name} does not allow certificate signing`);
  const eku = issuer.extension(OID.eku)?.parsedValue?.keyPurposes;
  if (eku && !eku.includes(OID.timeStamping) && !eku.includes(OID.anyEku)) {
    throw new TimestampError(`extendedKeyUsage of CA ${name} excludes timeStamping`);
  }
}

/** Return signer -> ... -> trusted root, each valid at `at`; throws TimestampError (untrustedRoot). */
export async function buildChain(signer, pool, roots, at) {
  const rootDers = new Set(roots.map((r) => toHex(r.der)));
  const reasons = [];
  let budget = MAX_CHAIN_STEPS;
  async function extend(chain) {
    const cert = chain[chain.length - 1];
    if (rootDers.has(toHex(cert.der))) return chain;
    if (chain.length >= MAX_CHAIN_DEPTH) { reasons.push(`chain longer than ${MAX_CHAIN_DEPTH}`); return null; }
    const below = chain.length - 1;
    for (const [anchor, candidates] of [[true, roots], [false, pool]]) {
      for (const issuer of candidates) {
        if (chain.some((c) => equal(c.der, issuer.der)) || !sameName(issuer.subjectDer, cert.issuerDer)) continue;
        if (--budget < 0) throw new TimestampError(`certificate chain search gave up after ${MAX_CHAIN_STEPS} steps`);
        if (!(await issuedBy(cert, issuer))) continue;
        try {
          checkIssuer(issuer, below, at, anchor);
        } catch (e) {
          reasons.push(e.message);
          continue;
        }
        const found = anchor ? [...chain, issuer] : await extend([...chain, issuer]);
        if (found) return found;
      }
    }
    return null;
  }
  const chain = await extend([signer]);
  if (!chain) {
    const why = reasons.length ? ` (${reasons[reasons.length - 1]})` : "";
    throw new TimestampError(`certificate chain does not lead to a trusted root${why}`, { untrustedRoot: reasons.length === 0 });
  }
  return chain;
}
