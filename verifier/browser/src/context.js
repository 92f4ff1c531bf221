// What several checks share, parsed once on first use: the proof, the judged timestamps, the anchor
// and the capture end time. Each getter keeps its result or its error, like the checks expect.

import { fromHex } from "./bytes.js";
import { CheckFailure, Skip } from "./errors.js";
import { verifyOfflineAnchor } from "./anchor.js";
import { loadCertificates } from "./certificates.js";
import { ANCHOR_PATH, PROOF_PATH, readJson, timestampNames, TSA_CERTS_NAME } from "./package.js";
import { MAX_PROOF_LEN } from "./merkle.js";
import { isObject } from "./json.js";
import { checkToken, chainToRoots, TimestampError, MAX_TSR_BYTES } from "./timestamp.js";

const HEX32 = /^[0-9a-f]{64}$/;

function memo(target, key, compute) {
  if (!(key in target.cache)) {
    target.cache[key] = (async () => compute())().then((value) => ({ value }), (error) => ({ error }));
  }
  return target.cache[key].then(({ value, error }) => { if (error) throw error; return value; });
}

function parseProof(data) {
  if (!isObject(data)) throw new CheckFailure("proof.json must be a JSON object");
  if (data.format !== "tiezheng-proof/1") throw new CheckFailure("proof.json format is not 'tiezheng-proof/1'");
  const path = data.inclusion_path;
  if (!Array.isArray(path) || path.length > MAX_PROOF_LEN) {
    throw new CheckFailure(`proof.json: inclusion_path must be a list of at most ${MAX_PROOF_LEN} hashes`);
  }
  if (typeof data.batch_id !== "string") throw new CheckFailure("proof.json: batch_id must be a string");
  const hash = (v, what) => {
    if (typeof v !== "string" || !HEX32.test(v)) throw new CheckFailure(`proof.json: ${what} must be 64 lowercase hex digits`);
    return fromHex(v);
  };
  const count = (v, what) => {
    if (!Number.isSafeInteger(v) || v < 0) throw new CheckFailure(`proof.json: ${what} must be a non-negative integer`);
    return v;
  };
  return { batchId: data.batch_id, leaf: hash(data.leaf, "leaf"), leafIndex: count(data.leaf_index, "leaf_index"),
    treeSize: count(data.tree_size, "tree_size"), path: path.map((h, i) => hash(h, `inclusion_path[${i}]`)),
    root: hash(data.root, "root") };
}

export class Context {
  constructor(pkg, trust, { rpc = null } = {}) {
    this.pkg = pkg;
    this.trust = trust;
    this.rpc = rpc;
    this.offline = rpc === null;
    this.cache = {};
    this.facts = {};
    this.development = [];
  }

  flagDevelopment(what) { if (!this.development.includes(what)) this.development.push(what); }

  proof() {
    return memo(this, "proof", () => {
      if (!this.pkg.zip.has(PROOF_PATH)) throw new Skip("package is not sealed yet (no proof/proof.json)");
      let data;
      try { data = readJson(this.pkg, PROOF_PATH); } catch (e) { throw new CheckFailure(`proof.json unreadable: ${e.message}`); }
      return parseProof(data);
    });
  }

  /** Every token judged against every trusted TSA: [{ name, valid: {info, tsa} } | { name, error }]. */
  timestampResults() {
    return memo(this, "timestamps", async () => {
      const root = (await this.proof()).root;
      const results = [];
      for (const name of timestampNames(this.pkg)) {
        const number = /(\d+)\.tsr$/.exec(name)[1];
        let raw, extra = [];
        try {
          raw = this.pkg.zip.read(name, MAX_TSR_BYTES);
          const certsName = `proof/tsa-${number}.pem`;
          if (this.pkg.zip.has(certsName) && TSA_CERTS_NAME.test(certsName)) extra = loadCertificates(this.pkg.zip.read(certsName, 1 << 20));
        } catch (e) {
          results.push({ name, error: e });
          continue;
        }
        let token;
        try {
          // The signer is normally in the token or beside it; a trusted root may be it in a bare setup.
          token = await checkToken(raw, root, extra, this.trust.tsas.flatMap((t) => t.roots));
        } catch (e) {
          results.push({ name, error: e });
          continue;
        }
        let outcome = { name, error: new TimestampError("no TSA in the trust configuration", { untrustedRoot: true }) };
        for (const tsa of this.trust.tsas) {
          try {
            outcome = { name, valid: { info: await chainToRoots(token, tsa.roots), tsa } };
            break;
          } catch (e) {
            outcome = { name, error: e };
          }
        }
        results.push(outcome);
      }
      return results;
    });
  }

  async validTimestamps() {
    return (await this.timestampResults()).filter((r) => r.valid).map((r) => ({ name: r.name, ...r.valid }));
  }

  /** The anchor record with its offline proof verified. */
  anchor() {
    return memo(this, "anchor", () => {
      if (!this.pkg.zip.has(ANCHOR_PATH)) throw new CheckFailure("the package carries no proof/anchor.json");
      let record;
      try { record = readJson(this.pkg, ANCHOR_PATH); } catch (e) { throw new CheckFailure(`anchor.json unreadable: ${e.message}`); }
      if (!isObject(record)) throw new CheckFailure("anchor.json must be a JSON object");
      return { record, ...verifyOfflineAnchor(record) };
    });
  }

  /** When the capture (or upload) ended, from the manifest, as { date, text }. */
  captureEnded() {
    const value = this.pkg.manifest.capture.ended_at;
    if (typeof value !== "string") throw new CheckFailure("manifest capture.ended_at is missing");
    const m = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})?$/.exec(value);
    if (!m) throw new CheckFailure(`manifest capture.ended_at is not ISO 8601: ${JSON.stringify(value)}`);
    if (!m[4]) throw new CheckFailure("manifest capture.ended_at has no time zone");
    const ms = m[3] ? Number(m[3].slice(1).padEnd(6, "0")) / 1000 : 0;
    const date = new Date(`${m[1]}T${m[2]}${m[4] === "Z" ? "Z" : m[4]}`);
    if (Number.isNaN(date.getTime())) throw new CheckFailure(`manifest capture.ended_at is not ISO 8601: ${JSON.stringify(value)}`);
    return new Date(date.getTime() + ms);
  }
}

