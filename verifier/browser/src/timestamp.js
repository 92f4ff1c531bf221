// RFC 3161 TimeStampResp verification over a digest, against trusted TSA roots, with the chain
// judged at the token's genTime. pkijs and asn1js take the DER apart; every check is made here, and
// signatures go through WebCrypto. The trust-dependent step (the chain to a root) runs last, so a
// token that fails only there is known to be sound but unjudgeable with the trust given.

import * as asn1js from "asn1js";
import * as pkijs from "pkijs";
import { digest, equal, toHex } from "./bytes.js";
import { epochMicros } from "./courttime.js";
import {
  Cert, TimestampError, buildChain, checkValidAt, hashName, keyUsageBits, MAX_CERTIFICATES, OID, sameName,
  verifyWithKey,
} from "./certificates.js";

export { TimestampError };
export const MAX_TSR_BYTES = 1 << 20;
const ID_SIGNED_DATA = "1.2.840.113549.1.7.2";
const ID_CT_TST_INFO = "1.2.840.113549.1.9.16.1.4";
const ATTR = { contentType: "1.2.840.113549.1.9.3", messageDigest: "1.2.840.113549.1.9.4",
  signingCertificate: "1.2.840.113549.1.9.16.2.12", signingCertificateV2: "1.2.840.113549.1.9.16.2.47" };
const IMPRINT_BY_LENGTH = { 32: "sha256", 48: "sha384", 64: "sha512" };
const SIGNATURE_HASHES = new Set(["sha256", "sha384", "sha512"]);
const ESS_HASHES = new Set(["sha1", ...SIGNATURE_HASHES]);

const bytesOf = (block) => new Uint8Array(block.valueBlock.valueHexView);

function parse(data) {
  if (data.length > MAX_TSR_BYTES) throw new TimestampError(`not an RFC 3161 TimeStampResp: ${data.length} bytes exceed ${MAX_TSR_BYTES}`);
  const asn1 = asn1js.fromBER(data);
  if (asn1.offset === -1 || asn1.offset !== data.length) throw new TimestampError("not an RFC 3161 TimeStampResp: not one DER value");
  let resp;
  try { resp = new pkijs.TimeStampResp({ schema: asn1.result }); } catch (e) {
    throw new TimestampError(`not an RFC 3161 TimeStampResp: ${e.message || e}`);
  }
  if (resp.status.status !== 0) throw new TimestampError(`timestamp not granted: status ${resp.status.status}`);
  const token = resp.timeStampToken;
  if (!token || token.contentType !== ID_SIGNED_DATA) throw new TimestampError("timeStampToken is not CMS SignedData");
  try {
    const signed = new pkijs.SignedData({ schema: token.content });
    if (signed.encapContentInfo.eContentType !== ID_CT_TST_INFO || !signed.encapContentInfo.eContent) {
      throw new TimestampError("SignedData does not hold a TSTInfo");
    }
    const tstBytes = new Uint8Array(signed.encapContentInfo.eContent.getValue());
    const tst = pkijs.TSTInfo.fromBER(tstBytes);
    if (tst.version !== 1) throw new TimestampError(`TSTInfo version ${tst.version} is not 1`);
    const certs = (signed.certificates || []).filter((c) => c instanceof pkijs.Certificate)
      .map((c) => Cert.fromDer(c.toSchema().toBER(false)));
    if (certs.length > MAX_CERTIFICATES) throw new TimestampError(`token embeds ${certs.length} certificates, more than ${MAX_CERTIFICATES}`);
    if (signed.signerInfos.length !== 1) throw new TimestampError(`expected exactly one SignerInfo, got ${signed.signerInfos.length}`);
    return { signed, tst, tstBytes, certs, si: signed.signerInfos[0], genTimeMicros: genTimeMicros(tstBytes) };
  } catch (e) {
    if (e instanceof TimestampError) throw e;
    throw new TimestampError(`not an RFC 3161 TimeStampResp: ${e.message || e}`);
  }
}

// genTime as written: GeneralizedTime may carry microseconds, which pkijs's Date drops. Only durations
// shown to a reader use it; every comparison keeps the Date.
function genTimeMicros(tstBytes) {
  try {
    const block = asn1js.fromBER(tstBytes).result.valueBlock.value[4];
    return block instanceof asn1js.GeneralizedTime
      ? epochMicros(new TextDecoder("latin1").decode(block.valueBlock.valueHexView)) : null;
  } catch {
    return null;
  }
}

function signedAttributes(si) {
  if (!si.signedAttrs || !si.signedAttrs.attributes.length) throw new TimestampError("SignerInfo has no signed attributes");
  const attrs = si.signedAttrs.attributes;
  const values = (oid) => {
    const found = attrs.filter((a) => a.type === oid);
    if (found.length > 1 || found.some((a) => a.values.length !== 1)) {
      throw new TimestampError(`signed attribute ${oid} must occur once with one value`);
    }
    return found.map((a) => a.values[0]);
  };
  const ess = [];
  for (const v of values(ATTR.signingCertificate)) ess.push(essId(v, false));
  for (const v of values(ATTR.signingCertificateV2)) ess.push(essId(v, true));
  const contentType = values(ATTR.contentType)[0];
  const messageDigest = values(ATTR.messageDigest)[0];
  // The signature covers the attributes as a DER SET OF, not as the [0] IMPLICIT field.
  const covered = new Uint8Array(si.signedAttrs.encodedValue.slice(0));
  covered[0] = 0x31;
  return { ess, covered, contentType: contentType?.getValue?.(), messageDigest: messageDigest && bytesOf(messageDigest) };
}

function essId(value, v2) {
  const first = value.valueBlock.value[0].valueBlock.value[0].valueBlock.value;
  let at = 0, hash = v2 ? "sha256" : "sha1";
  if (v2 && first[0] instanceof asn1js.Sequence) {
    hash = hashName(new pkijs.AlgorithmIdentifier({ schema: first[0] }).algorithmId) || "unknown";
    at = 1;
  }
  const certHash = bytesOf(first[at]);
  const issuerSerial = first[at + 1] ? {
    names: first[at + 1].valueBlock.value[0].valueBlock.value,
    serial: BigInt(`0x${toHex(bytesOf(first[at + 1].valueBlock.value[1])) || "0"}`),
  } : null;
  return { hash, certHash, issuerSerial };
}

async function findSigner(si, ess, candidates) {
  const sid = si.sid;
  const matches = new Map();
  for (const cert of candidates) {
    let found;
    if (sid instanceof pkijs.IssuerAndSerialNumber) {
      const serial = BigInt(`0x${toHex(bytesOf(sid.serialNumber)) || "0"}`);
      found = cert.serial === serial && sameName(new Uint8Array(sid.issuer.toSchema().toBER(false)), cert.issuerDer);
    } else {
      const kid = cert.subjectKeyId;
      found = kid !== null && equal(kid, bytesOf(sid));
    }
    if (found && !matches.has(toHex(cert.der))) matches.set(toHex(cert.der), cert);
  }
  if (!matches.size) throw new TimestampError("signing certificate not found: no certificate matches SignerInfo's sid");
  // Look-alikes can repeat issuer and serial; the ESS attribute, under the signature, names one exactly.
  for (const cert of matches.values()) {
    for (const e of ess) if (ESS_HASHES.has(e.hash) && equal(e.certHash, await digest(e.hash, cert.der))) return cert;
  }
  return matches.values().next().value;
}

async function checkEss(ess, signer) {
  if (!ess.length) throw new TimestampError("ESS signing certificate attribute is missing");
  for (const e of ess) {
    if (!ESS_HASHES.has(e.hash)) throw new TimestampError(`ESS signing certificate hash ${e.hash} is unsupported`);
    if (!equal(e.certHash, await digest(e.hash, signer.der))) throw new TimestampError("ESS signing certificate does not match the signer certificate");
    if (e.issuerSerial) {
      const dirNames = e.issuerSerial.names.filter((n) => n.idBlock.tagClass === 3 && n.idBlock.tagNumber === 4)
        .map((n) => new Uint8Array(n.valueBlock.value[0].toBER(false)));
      if (e.issuerSerial.serial !== signer.serial || !dirNames.some((d) => sameName(d, signer.issuerDer))) {
        throw new TimestampError("ESS signing certificate does not match: issuerSerial differs");
      }
    }
  }
}

function checkTsaUsage(signer) {
  const eku = signer.extension(OID.eku);
  if (!eku) throw new TimestampError("timeStamping EKU missing or not critical: no extendedKeyUsage");
  const purposes = eku.parsedValue.keyPurposes;
  if (!eku.critical || !purposes.includes(OID.timeStamping)) throw new TimestampError("timeStamping EKU missing or not critical");
  if (purposes.length !== 1) throw new TimestampError("extendedKeyUsage must hold timeStamping only");
  const ku = keyUsageBits(signer);
  if (ku && !ku.has(0) && !ku.has(1)) throw new TimestampError("keyUsage of the TSA certificate allows no digital signature");
}

function tsaNameMatches(tsa, signer) {
  if (tsa.type === 4) return sameName(new Uint8Array(tsa.value.toSchema().toBER(false)), signer.subjectDer);
  const san = signer.extension(OID.san)?.parsedValue?.altNames || [];
  return san.some((n) => n.type === tsa.type && typeof n.value === "string" && n.value === tsa.value);
}

function accuracyMs(tst) {
  const a = tst.accuracy;
  if (!a) return null;
  return (a.seconds || 0) * 1000 + (a.millis || 0) + (a.micros || 0) / 1000;
}

/**
 * Check everything in a TimeStampResp over `root` (32/48/64 bytes) that does not depend on trust.
 * `extras` are untrusted helper certificates; `roots` are only searched for the signer. Returns a
 * checked token for `chainToRoots`. Throws TimestampError.
 */
export async function checkToken(data, root, extras = [], roots = []) {
  const { tst, tstBytes, certs, si, genTimeMicros: micros } = parse(data);
  const attrs = signedAttributes(si);
  const genTime = tst.genTime;
  // 1. The signer is whoever SignerInfo's sid names; the bag's order means nothing.
  const signer = await findSigner(si, attrs.ess, [...certs, ...extras, ...roots]);
  // 2. CMS: content type, messageDigest over the TSTInfo, signature over the signed attributes.
  if (attrs.contentType !== ID_CT_TST_INFO) throw new TimestampError("signed content-type attribute is missing or not id-ct-TSTInfo");
  const hash = hashName(si.digestAlgorithm.algorithmId);
  if (!SIGNATURE_HASHES.has(hash)) throw new TimestampError(`digest algorithm ${hash || si.digestAlgorithm.algorithmId} is weak or unsupported`);
  if (!attrs.messageDigest || !equal(attrs.messageDigest, await digest(hash, tstBytes))) {
    throw new TimestampError("signature invalid: messageDigest attribute does not match the TSTInfo");
  }
  const ok = await verifyWithKey(signer, si.signatureAlgorithm.algorithmId, si.signatureAlgorithm.algorithmParams, hash,
    bytesOf(si.signature), attrs.covered);
  if (!ok) throw new TimestampError("signature invalid: the signature does not verify");
  // 3. ESS binds the signature to this very certificate; 4. the key may only time-stamp.
  await checkEss(attrs.ess, signer);
  checkTsaUsage(signer);
  checkValidAt(signer, genTime, "TSA certificate");
  // 5. What was stamped, and by whom.
  const expected = IMPRINT_BY_LENGTH[root.length];
  const imprintAlg = hashName(tst.messageImprint.hashAlgorithm.algorithmId);
  if (imprintAlg !== expected) throw new TimestampError(`message imprint algorithm ${imprintAlg} does not match a ${root.length}-byte digest (${expected})`);
  const imprint = bytesOf(tst.messageImprint.hashedMessage);
  if (!equal(imprint, root)) throw new TimestampError(`message imprint mismatch: expected ${toHex(root)}, token has ${toHex(imprint)}`);
  if (tst.tsa && !tsaNameMatches(tst.tsa, signer)) throw new TimestampError("TSTInfo tsa name does not match the signing certificate");
  return { signer, pool: [...certs, ...extras], info: { genTime, genTimeMicros: micros, accuracyMs: accuracyMs(tst), tsaName: signer.subjectText,
    serial: BigInt(`0x${toHex(bytesOf(tst.serialNumber)) || "0"}`).toString(), policy: tst.policy } };
}

/** 6. The only step that depends on trust: a chain to one of `roots`, valid at genTime. Throws TimestampError. */
export async function chainToRoots(token, roots) {
  if (!roots.length) throw new TimestampError("no trusted roots: refusing to verify a timestamp without trust", { untrustedRoot: true });
  await buildChain(token.signer, token.pool, roots, token.info.genTime);
  return token.info;
}

/** Verify a TimeStampResp over `root` against trusted `roots`; returns what it says. Throws TimestampError. */
export async function verifyTimestamp(data, root, roots, extras = []) {
  return chainToRoots(await checkToken(data, root, extras, roots), roots);
}
