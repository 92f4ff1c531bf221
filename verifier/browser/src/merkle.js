// RFC 9162 §2.1 Merkle inclusion proofs: leaf hash sha256(0x00 || data), node hash
// sha256(0x01 || left || right), verified with the §2.1.3.2 algorithm; consistency with §2.1.4.2.
// Failures are worded as verifier/merkle.py words them, so both verifiers give one reason.

import { sha256 } from "@noble/hashes/sha2.js";
import { concat, equal, toHex } from "./bytes.js";
import { CheckFailure } from "./errors.js";

export const MAX_PROOF_LEN = 64;

// Synchronous SHA-256 (@noble/hashes): a log export's proofs are thousands of 65-byte hashes, where an
// awaited WebCrypto digest per node costs more than the hashing itself. leafHash stays a promise for callers.
export const leafHash = async (data) => sha256(concat(Uint8Array.of(0), data));
const nodeHash = (left, right) => sha256(concat(Uint8Array.of(1), left, right));

/** Return the root an inclusion proof leads to; throws CheckFailure when the proof's shape is wrong. */
export async function rootFromInclusion(leaf, index, size, path) {
  if (!(Number.isSafeInteger(index) && Number.isSafeInteger(size) && index >= 0 && index < size)) {
    throw new CheckFailure(`leaf index ${index} outside a tree of size ${size}`);
  }
  if (path.length > MAX_PROOF_LEN) throw new CheckFailure(`proof of ${path.length} hashes is longer than ${MAX_PROOF_LEN}`);
  // Numbers above 2^32 lose bit operations in JS; BigInt keeps the arithmetic exact.
  let fn = BigInt(index), sn = BigInt(size - 1);
  let r = leaf;
  for (const p of path) {
    if (sn === 0n) throw new CheckFailure(`proof has ${path.length} hashes, more than a tree of size ${size} needs`);
    if ((fn & 1n) === 1n || fn === sn) {
      r = nodeHash(p, r);
      if ((fn & 1n) === 0n) while ((fn & 1n) === 0n && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
    } else {
      r = nodeHash(r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n) throw new CheckFailure(`proof has ${path.length} hashes, fewer than a tree of size ${size} needs`);
  return r;
}

/** Throw CheckFailure unless `path` takes `leaf` (an RFC 9162 leaf hash) to `root`. */
export async function verifyInclusion(leaf, index, size, path, root) {
  for (const [what, hash] of [["leaf hash", leaf], ["root", root], ...path.map((h, i) => [`proof[${i}]`, h])]) {
    if (hash.length !== 32) throw new CheckFailure(`${what} is ${hash.length} bytes, expected 32`);
  }
  const calculated = await rootFromInclusion(leaf, index, size, path);
  if (!equal(calculated, root)) {
    throw new CheckFailure(`Merkle root mismatch: expected ${toHex(root)}, calculated ${toHex(calculated)}`);
  }
}

/**
 * Throw CheckFailure unless `proof` shows that the tree of `size2` leaves (root `root2`) extends the
 * tree of `size1` leaves (root `root1`): the RFC 9162 §2.1.4.2 algorithm. A tree of size 0 proves nothing.
 */
export async function verifyConsistency(size1, size2, proof, root1, root2) {
  proof.forEach((h, i) => { if (h.length !== 32) throw new CheckFailure(`proof[${i}] is ${h.length} bytes, expected 32`); });
  if (!(Number.isSafeInteger(size1) && Number.isSafeInteger(size2))) throw new CheckFailure("tree sizes are too large");
  if (size1 <= 0) throw new CheckFailure("consistency with an empty tree proves nothing");
  if (size2 < size1) throw new CheckFailure(`size2 ${size2} is smaller than size1 ${size1}`);
  const mismatch = (expected, calculated) =>
    new CheckFailure(`Merkle root mismatch: expected ${toHex(expected) || "(empty)"}, calculated ${toHex(calculated) || "(empty)"}`);
  if (size1 === size2) {
    if (proof.length) throw new CheckFailure("equal sizes need an empty proof");
    if (!equal(root1, root2)) throw mismatch(root1, root2);
    return;
  }
  if (!proof.length) throw new CheckFailure("empty consistency proof for different sizes");
  if (proof.length > MAX_PROOF_LEN) throw new CheckFailure(`proof of ${proof.length} hashes is longer than ${MAX_PROOF_LEN}`);
  const path = [...proof];
  const s1 = BigInt(size1);
  if ((s1 & (s1 - 1n)) === 0n) path.unshift(root1);
  let fn = s1 - 1n, sn = BigInt(size2) - 1n;
  while ((fn & 1n) === 1n) { fn >>= 1n; sn >>= 1n; }
  let fr = path[0], sr = path[0];
  for (const element of path.slice(1)) {
    if (sn === 0n) throw new CheckFailure("consistency proof is longer than the trees need");
    if ((fn & 1n) === 1n || fn === sn) {
      fr = nodeHash(element, fr);
      sr = nodeHash(element, sr);
      if ((fn & 1n) === 0n) while ((fn & 1n) === 0n && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
    } else {
      sr = nodeHash(sr, element);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n) throw new CheckFailure("consistency proof is shorter than the trees need");
  if (!equal(fr, root1)) throw mismatch(root1, fr);
  if (!equal(sr, root2)) throw mismatch(root2, sr);
}
