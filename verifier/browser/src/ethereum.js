// Ethereum encodings for the offline anchor proof, written here, small and strict: canonical RLP
// decoding, Merkle-Patricia proof lookup, and keccak-256 (from @noble/hashes). A non-minimal length,
// trailing bytes or a node missing from the proof is an error, never a guess.

import { keccak_256 } from "@noble/hashes/sha3.js";
import { toHex } from "./bytes.js";
import { CheckFailure } from "./errors.js";

export const MAX_RLP_BYTES = 1 << 20;
const MAX_RLP_DEPTH = 16;
const MAX_TRIE_DEPTH = 64;

export const keccak256 = (data) => keccak_256(data);

function rlpError(why) { return new CheckFailure(`invalid RLP: ${why}`); }

function longLength(data, at, count) {
  if (at + count > data.length) throw rlpError("length runs past the end");
  if (data[at] === 0) throw rlpError("length has a leading zero");
  let value = 0;
  for (let i = 0; i < count; i++) value = value * 256 + data[at + i];
  if (value < 56) throw rlpError("long form used for a short length");
  return value;
}

function slice(data, start, size) {
  if (start + size > data.length) throw rlpError("string runs past the end");
  return data.subarray(start, start + size);
}

function decodeAt(data, at, depth) {
  if (depth > MAX_RLP_DEPTH) throw rlpError("nested too deeply");
  if (at >= data.length) throw rlpError("item runs past the end");
  const prefix = data[at];
  if (prefix < 0x80) return [data.subarray(at, at + 1), at + 1];
  if (prefix <= 0xb7) {
    const size = prefix - 0x80, start = at + 1;
    if (size === 1 && start < data.length && data[start] < 0x80) throw rlpError("single byte below 0x80 must encode itself");
    return [slice(data, start, size), start + size];
  }
  if (prefix <= 0xbf) {
    const count = prefix - 0xb7, size = longLength(data, at + 1, count), start = at + 1 + count;
    return [slice(data, start, size), start + size];
  }
  let size, start;
  if (prefix <= 0xf7) { size = prefix - 0xc0; start = at + 1; } else {
    const count = prefix - 0xf7;
    size = longLength(data, at + 1, count);
    start = at + 1 + count;
  }
  const end = start + size;
  if (end > data.length) throw rlpError("list runs past the end");
  const items = [];
  let position = start;
  while (position < end) {
    const [item, next] = decodeAt(data, position, depth + 1);
    items.push(item);
    position = next;
  }
  if (position !== end) throw rlpError("list items overrun the list");
  return [items, end];
}

/** Decode one canonical RLP item spanning all of `data`: Uint8Array or nested arrays. */
export function rlpDecode(data) {
  if (data.length > MAX_RLP_BYTES) throw rlpError(`input over ${MAX_RLP_BYTES} bytes`);
  const [item, end] = decodeAt(data, 0, 0);
  if (end !== data.length) throw rlpError("trailing bytes after the item");
  return item;
}

/** RLP of a non-negative integer, as a transaction trie keys index `value`. */
export function rlpEncodeUint(value) {
  const raw = [];
  for (let v = value; v > 0; v = Math.floor(v / 256)) raw.unshift(v % 256);
  if (raw.length === 1 && raw[0] < 0x80) return Uint8Array.from(raw);
  return Uint8Array.from([0x80 + raw.length, ...raw]);
}

const nibbles = (key) => [...key].flatMap((b) => [b >> 4, b & 0x0f]);

function hexPrefix(encoded) {
  if (!(encoded instanceof Uint8Array) || encoded.length === 0) throw new CheckFailure("trie proof: empty path");
  const n = nibbles(encoded);
  const flag = n[0];
  if (flag > 3 || ((flag === 0 || flag === 2) && n[1] !== 0)) throw new CheckFailure("trie proof: malformed path prefix");
  return [flag & 1 ? n.slice(1) : n.slice(2), flag >= 2];
}

const sameNibbles = (a, b) => a.length === b.length && a.every((v, i) => v === b[i]);

/** Return the value under `key` in the trie with hash `root`, from the proof nodes. Throws CheckFailure. */
export function trieGet(root, key, proof) {
  const nodes = new Map(proof.map((node) => [toHex(keccak256(node)), node]));
  let path = nibbles(key);
  let reference = root;
  for (let depth = 0; depth < MAX_TRIE_DEPTH; depth++) {
    let node;
    if (reference instanceof Uint8Array) {
      const found = reference.length === 32 ? nodes.get(toHex(reference)) : undefined;
      if (!found) throw new CheckFailure("trie proof is missing a node");
      node = rlpDecode(found);
    } else node = reference;
    if (!Array.isArray(node)) throw new CheckFailure("trie node is not a list");
    if (node.length === 17) {
      if (path.length === 0) {
        const value = node[16];
        if (!(value instanceof Uint8Array) || value.length === 0) throw new CheckFailure("key not in the trie");
        return value;
      }
      reference = node[path[0]];
      path = path.slice(1);
      if (reference instanceof Uint8Array && reference.length === 0) throw new CheckFailure("key not in the trie");
    } else if (node.length === 2 && node[0] instanceof Uint8Array) {
      const [segment, isLeaf] = hexPrefix(node[0]);
      if (isLeaf) {
        if (!sameNibbles(segment, path) || !(node[1] instanceof Uint8Array)) throw new CheckFailure("key not in the trie");
        return node[1];
      }
      if (!sameNibbles(path.slice(0, segment.length), segment)) throw new CheckFailure("key not in the trie");
      reference = node[1];
      path = path.slice(segment.length);
    } else throw new CheckFailure("trie node has the wrong shape");
  }
  throw new CheckFailure(`trie deeper than ${MAX_TRIE_DEPTH} levels`);
}

