// The trust the verdict rests on, in the TOML format `tiezheng trust export` writes (and the service
// publishes at /.well-known/tiezheng/trust.toml): operator keys, TSA roots, chains, policy. The
// verifier's own default trust (public TSAs and chains, no operator) is always included, as the CLI does.

import { parse as parseToml } from "smol-toml";
import DEFAULT_TRUST from "../../default_trust.toml";
import { fromBase64, sha256, toHex, encoder } from "./bytes.js";
import { loadCertificates } from "./certificates.js";

export const MAX_TRUST_BYTES = 1 << 20;
const HOUR_MS = 3600 * 1000;

export class TrustError extends Error {}

function tables(document, key) {
  const value = document[key] ?? [];
  if (!Array.isArray(value) || !value.every((t) => t && typeof t === "object" && !Array.isArray(t))) {
    throw new TrustError(`trust: [[${key}]] must be a list of tables`);
  }
  return value;
}

function publicKey(text) {
  let raw;
  try { raw = fromBase64(String(text)); } catch { throw new TrustError("operator public_key is not base64"); }
  if (raw.length !== 32) throw new TrustError(`operator public_key is ${raw.length} bytes, expected 32`);
  return raw;
}

/** Parse trust TOML text; returns a Trust. Throws TrustError for anything malformed or empty. */
export async function parseTrust(text, source = "trust file") {
  let document;
  try { document = parseToml(text); } catch (e) {
    throw new TrustError(`${source}: not valid TOML: ${String(e.message || e).split("\n")[0]}`);
  }
  try {
    const operators = [];
    for (const item of tables(document, "operators")) {
      const key = publicKey(item.public_key);
      operators.push({ name: String(item.name), publicKey: key, keyId: toHex(await sha256(key)), development: item.development === true });
    }
    const tsas = tables(document, "tsa").map((item) => {
      if ("roots_file" in item) throw new TrustError(`${source}: roots_file cannot be read in a browser; put the PEM in roots`);
      if (item.name === undefined || item.roots === undefined) throw new TrustError(`${source}: a [[tsa]] needs name and roots`);
      return { name: String(item.name), roots: loadCertificates(encoder.encode(String(item.roots))), development: item.development === true };
    });
    const chains = tables(document, "chains").map((item) => {
      const chainId = Number(item.chain_id);
      if (!Number.isSafeInteger(chainId)) throw new TrustError(`${source}: chain_id must be an integer`);
      return { chainId, name: String(item.name ?? chainId), rpcUrls: (item.rpc_urls ?? []).map(String),
        confirmations: Number(item.confirmations ?? 1), development: item.development === true };
    });
    const policy = document.policy ?? {};
    const trust = { operators, tsas, chains, sources: [source], policy: {
      prechainWindowMs: Number(policy.prechain_window_hours ?? 24) * HOUR_MS,
      toleranceMs: Number(policy.time_tolerance_seconds ?? 300) * 1000 } };
    if (!(operators.length || tsas.length || chains.length)) {
      throw new TrustError(`${source}: trusts nothing (no operators, TSAs or chains); refusing to go on`);
    }
    return trust;
  } catch (e) {
    if (e instanceof TrustError) throw e;
    throw new TrustError(`${source}: malformed entry: ${e.message || e}`);
  }
}

/** The union of two trust sets; `other`'s policy wins. */
export function mergeTrust(base, other) {
  return { operators: [...base.operators, ...other.operators], tsas: [...base.tsas, ...other.tsas],
    chains: [...base.chains, ...other.chains], policy: other.policy, sources: [...base.sources, ...other.sources] };
}

let defaultTrust = null;
export async function loadDefaultTrust() {
  defaultTrust ??= await parseTrust(DEFAULT_TRUST, "default trust");
  return defaultTrust;
}

/** The user's trust file bytes, merged into the default trust; returns { trust, sha256 }. */
export async function userTrust(bytes, source) {
  if (bytes.length > MAX_TRUST_BYTES) throw new TrustError(`${source}: over ${MAX_TRUST_BYTES} bytes`);
  let text;
  try { text = new TextDecoder("utf-8", { fatal: true }).decode(bytes); } catch { throw new TrustError(`${source}: not UTF-8`); }
  const parsed = await parseTrust(text, source);
  return { trust: mergeTrust(await loadDefaultTrust(), parsed), sha256: toHex(await sha256(bytes)) };
}
