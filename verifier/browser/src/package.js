// Open an evidence package: the strict zip reading, then the manifest parsed and type-checked.
// Anything that makes the package unreadable as a whole throws Unusable; the sealing files under
// proof/ are judged later by the checks, so a damaged proof fails a check instead.

import canonicalize from "canonicalize";
import { encoder, equal, sha256 } from "./bytes.js";
import { CheckFailure, Unusable } from "./errors.js";
import { isObject, parseJson } from "./json.js";
import { openZip } from "./zip.js";

export const MANIFEST_PATH = "evidence/manifest.json";
export const SIGNATURE_PATH = "evidence/manifest.sig";
export const PROOF_PATH = "proof/proof.json";
export const ANCHOR_PATH = "proof/anchor.json";
export const DATAPACKAGE_PATH = "datapackage.json";
export const DATAPACKAGE_DIGEST_PATH = "datapackage-digest.json";
export const TIMESTAMP_NAME = /^proof\/timestamp-(\d{1,3})\.tsr$/;
export const TSA_CERTS_NAME = /^proof\/tsa-(\d{1,3})\.pem$/;
// With several chains, each anchor after the first is proof/anchor-<chain_id>.json; this page judges
// proof/anchor.json (the first) and accepts the others as sealing files (tiezheng-verify judges them all).
export const ANCHOR_NAME = /^proof\/anchor-(\d{1,20})\.json$/;
export const MAX_MANIFEST_BYTES = 4 << 20;
export const MAX_JSON_BYTES = 16 << 20;
const MAX_SIGNATURE_BYTES = 64 << 10;
const MAX_ARTIFACTS = 10_000;
const KINDS = ["web-capture", "upload", "notice", "notice-reply", "log-export", "stream"];
/** Kinds that are an e-mail sealed as sent (notice) or as received (notice-reply). */
export const isEmail = (kind) => kind === "notice" || kind === "notice-reply";
const MANIFEST_FORMAT = "tiezheng/1";

const TYPE_NAMES = { string: "str", integer: "int", object: "dict", array: "list" };

function field(data, key, kind, where) {
  const value = data[key];
  const ok = { string: typeof value === "string", integer: Number.isSafeInteger(value), object: isObject(value),
    array: Array.isArray(value) }[kind];
  if (!ok) throw new Unusable(`manifest: ${where}${key} must be a ${TYPE_NAMES[kind]}`);
  return value;
}

/** Parse and type-check manifest bytes; throws Unusable with the first problem found. */
export function parseManifest(bytes) {
  if (bytes.length > MAX_MANIFEST_BYTES) throw new Unusable(`manifest is over ${MAX_MANIFEST_BYTES} bytes`);
  const raw = parseJson(bytes, "manifest");
  if (!isObject(raw)) throw new Unusable("manifest must be a JSON object");
  const format = field(raw, "format", "string", "");
  if (format !== MANIFEST_FORMAT) throw new Unusable(`manifest format '${format}' is not '${MANIFEST_FORMAT}'`);
  const kind = field(raw, "kind", "string", "");
  if (!KINDS.includes(kind)) throw new Unusable(`manifest kind '${kind}' is not one of ${KINDS.join(", ")}`);
  const operator = field(raw, "operator", "object", "");
  const requester = field(raw, "requester", "object", "");
  const items = field(raw, "artifacts", "array", "");
  if (items.length > MAX_ARTIFACTS) throw new Unusable(`manifest lists more than ${MAX_ARTIFACTS} artifacts`);
  const artifacts = items.map((item, i) => {
    if (!isObject(item)) throw new Unusable(`manifest: artifacts[${i}] must be an object`);
    const where = `artifacts[${i}].`;
    const sha = field(item, "sha256", "string", where);
    if (!/^[0-9a-f]{64}$/.test(sha)) throw new Unusable(`manifest: ${where}sha256 must be 64 lowercase hex digits`);
    const size = field(item, "size", "integer", where);
    if (size < 0) throw new Unusable(`manifest: ${where}size must not be negative`);
    return { path: field(item, "path", "string", where), role: field(item, "role", "string", where),
      mediaType: field(item, "media_type", "string", where), size, sha256: sha };
  });
  if (new Set(artifacts.map((a) => a.path)).size !== artifacts.length) throw new Unusable("manifest lists the same artifact path twice");
  return {
    evidenceId: field(raw, "evidence_id", "string", ""), kind, artifacts,
    operator: { name: field(operator, "name", "string", "operator."), keyId: field(operator, "key_id", "string", "operator."),
      publicKey: field(operator, "public_key", "string", "operator.") },
    requester: { tenant: field(requester, "tenant", "string", "requester."), identity: field(requester, "identity", "string", "requester.") },
    target: isObject(raw.target) ? raw.target : {},
    capture: isObject(raw.capture) ? raw.capture : {},
    data: raw,
  };
}

function readWhole(zip, name, limit) {
  try {
    return zip.read(name, limit);
  } catch (e) {
    throw new Unusable(e.message);
  }
}

/** Open package bytes; returns a Package. Throws Unusable. */
export async function openPackage(bytes) {
  const zip = openZip(bytes);
  if (!zip.has(MANIFEST_PATH)) throw new Unusable(`package has no ${MANIFEST_PATH}`);
  const manifestBytes = readWhole(zip, MANIFEST_PATH, MAX_MANIFEST_BYTES);
  const signature = zip.has(SIGNATURE_PATH) ? readWhole(zip, SIGNATURE_PATH, MAX_SIGNATURE_BYTES) : null;
  const manifest = parseManifest(manifestBytes);
  let canonical;
  try {
    canonical = encoder.encode(canonicalize(manifest.data));
  } catch (e) {
    throw new Unusable(`value cannot be canonicalised as RFC 8785 JSON: ${e.message}`);
  }
  return { zip, manifest, manifestBytes, signature, fingerprint: await sha256(canonical),
    manifestIsCanonical: equal(canonical, manifestBytes) };
}

/** Parse a JSON entry strictly; throws CheckFailure (the check that asked fails). */
export function readJson(pkg, name, limit = MAX_JSON_BYTES) {
  const data = pkg.zip.read(name, limit);
  try {
    return parseJson(data, name);
  } catch (e) {
    throw new CheckFailure(e.message);
  }
}

export function timestampNames(pkg) {
  return pkg.zip.names.filter((n) => TIMESTAMP_NAME.test(n))
    .sort((a, b) => Number(TIMESTAMP_NAME.exec(a)[1]) - Number(TIMESTAMP_NAME.exec(b)[1]));
}
