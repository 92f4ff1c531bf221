// RFC 9162 §2.1 Merkle inclusion proofs: leaf hash sha256(0x00 || data), node hash
// sha256(0x01 || left || right), verified with the §2.1.3.2 algorithm.

import { concat, equal, sha256, toHex } from "./bytes.js";
import { CheckFailure } from "./errors.js";
import { plural } from "./courttime.js";

export const MAX_PROOF_LEN = 64;

export const leafHash = (data) => sha256(concat(Uint8Array.of(0), data));
const nodeHash = (left, right) => sha256(concat(Uint8Array.of(1), left, right));

/** Return the root an inclusion proof leads to; throws CheckFailure when the proof's shape is wrong. */
export async function rootFromInclusion(leaf, index, size, path) {
  if (!(Number.isSafeInteger(index) && Number.isSafeInteger(size) && index >= 0 && index < size)) {
    throw new CheckFailure(`leaf index ${index} is outside a tree of size ${size}`);
  }
  if (path.length > MAX_PROOF_LEN) throw new CheckFailure(`inclusion proof longer than ${MAX_PROOF_LEN} hashes`);
  // Numbers above 2^32 lose bit operations in JS; BigInt keeps the arithmetic exact.
  let fn = BigInt(index), sn = BigInt(size - 1);
  let r = leaf;
  for (const p of path) {
    if (sn === 0n) throw new CheckFailure(`inclusion proof has ${plural(path.length, "hash", "hashes")}, too many for leaf ${index + 1} of ${size}`);
    if ((fn & 1n) === 1n || fn === sn) {
      r = await nodeHash(p, r);
      if ((fn & 1n) === 0n) while ((fn & 1n) === 0n && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
    } else {
      r = await nodeHash(r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n) throw new CheckFailure(`inclusion proof has ${plural(path.length, "hash", "hashes")}, too few for leaf ${index + 1} of ${size}`);
  return r;
}

/** Throw CheckFailure unless `path` takes `leaf` (an RFC 9162 leaf hash) to `root`. */
export async function verifyInclusion(leaf, index, size, path, root) {
  for (const [what, hash] of [["leaf hash", leaf], ["root", root], ...path.map((h, i) => [`proof[${i}]`, h])]) {
    if (hash.length !== 32) throw new CheckFailure(`${what} is ${hash.length} bytes, not 32`);
  }
  const calculated = await rootFromInclusion(leaf, index, size, path);
  if (!equal(calculated, root)) {
    throw new CheckFailure(`root mismatch: expected ${toHex(root)}, calculated ${toHex(calculated)}`);
  }
}
