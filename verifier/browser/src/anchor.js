// The offline anchor proof (DESIGN §4): keccak(header_rlp) is the block hash; the header's
// transactionsRoot holds raw_tx at rlp(tx_index); keccak(raw_tx) is the tx hash; the transaction is
// for the record's chain and carries "TZ01" || root || tree_size. This proves the transaction is in
// the block with that hash, not that the block is canonical: that needs a node (H5 online).

import { fromHex, toHex, equal } from "./bytes.js";
import { CheckFailure } from "./errors.js";
import { keccak256, rlpDecode, rlpEncodeUint, trieGet } from "./ethereum.js";
import { formatTime } from "./courttime.js";

export const ANCHOR_FORMAT = "tiezheng-anchor/1";
const ANCHOR_FIELDS = new Set(["format", "chain_id", "tx_hash", "raw_tx", "to", "nonce", "block_number", "block_hash",
  "block_time", "block_time_utc", "tx_index", "header_rlp", "tx_proof", "transactions_root"]);
const MAGIC = [0x54, 0x5a, 0x30, 0x31]; // "TZ01"
const CALLDATA_BYTES = 4 + 32 + 8;
const HEADER_FIELD_COUNT = { min: 15, max: 21 };
const TX_ROOT_AT = 4, NUMBER_AT = 8, TIMESTAMP_AT = 11;
const MAX_HEADER_BYTES = 4096;
const MAX_RAW_TX_BYTES = 128 * 1024;
const MAX_PROOF_NODES = 16;
const MAX_PROOF_NODE_BYTES = MAX_RAW_TX_BYTES + 1024;
const MAX_TX_INDEX = 1 << 20;
// Typed transactions: [field count, position of `to`, position of `data`] by type byte.
const TYPED_LAYOUT = { 1: [11, 4, 6], 2: [12, 5, 7], 3: [14, 5, 7], 4: [13, 5, 7] };

const fail = (why) => { throw new CheckFailure(why); };

function hexField(value, what, { size, limit } = {}) {
  if (typeof value !== "string" || !value.startsWith("0x")) fail(`${what} must be a 0x-prefixed hex string`);
  if (limit !== undefined && value.length > 2 + 2 * limit) fail(`${what} exceeds ${limit} bytes`);
  let data;
  try { data = fromHex(value.slice(2)); } catch { fail(`${what} is not hex`); }
  if (size !== undefined && data.length !== size) fail(`${what} must be ${size} bytes, got ${data.length}`);
  return data;
}

function recordHex(anchor, key, options) {
  if (!(key in anchor)) fail(`anchor record lacks ${key}`);
  return hexField(anchor[key], key, options);
}

function recordInt(anchor, key) {
  const value = anchor[key];
  if (!Number.isSafeInteger(value) || value < 0) fail(`anchor record field ${key} must be a non-negative integer, got ${JSON.stringify(value)}`);
  return value;
}

function bytesItem(value, what) {
  if (!(value instanceof Uint8Array)) fail(`${what} must be an RLP byte string`);
  return value;
}

function intItem(value, what) {
  const raw = bytesItem(value, what);
  if (raw.length && raw[0] === 0) fail(`${what} is not a canonical RLP integer (leading zero)`);
  let n = 0n;
  for (const b of raw) n = n * 256n + BigInt(b);
  return n;
}

function rlpList(data, what) {
  const item = rlpDecode(data);
  if (!Array.isArray(item)) fail(`${what} is not an RLP list`);
  return item;
}

function toField(value) {
  const raw = bytesItem(value, "to");
  if (raw.length === 0) return null;
  if (raw.length !== 20) fail(`a transaction's to is 20 bytes, got ${raw.length}`);
  return raw;
}

/** Decode a signed transaction (legacy or typed); returns { chainId: bigint|null, nonce, to, data }. */
export function decodeTransaction(raw) {
  if (raw.length === 0) fail("empty raw transaction");
  if (raw[0] >= 0xc0) {
    const f = rlpList(raw, "legacy transaction");
    if (f.length !== 9) fail(`a legacy transaction has 9 fields, got ${f.length}`);
    const v = intItem(f[6], "v");
    return { chainId: v >= 35n ? (v - 35n) / 2n : null, nonce: intItem(f[0], "nonce"), to: toField(f[3]),
      data: bytesItem(f[5], "data") };
  }
  const layout = TYPED_LAYOUT[raw[0]];
  const type = `0x${raw[0].toString(16).padStart(2, "0")}`;
  if (!layout) fail(`unsupported transaction type ${type}`);
  const [count, toAt, dataAt] = layout;
  const f = rlpList(raw.subarray(1), `type ${type} transaction`);
  if (f.length !== count) fail(`a type ${type} transaction has ${count} fields, got ${f.length}`);
  return { chainId: intItem(f[0], "chainId"), nonce: intItem(f[1], "nonce"), to: toField(f[toAt]),
    data: bytesItem(f[dataAt], "data") };
}

/** Return { root, treeSize } from anchor calldata; throws CheckFailure if it is not one. */
export function parseCalldata(data) {
  if (data.length !== CALLDATA_BYTES) fail(`anchor calldata is ${CALLDATA_BYTES} bytes, got ${data.length}`);
  if (!MAGIC.every((b, i) => data[i] === b)) fail("anchor calldata must start with TZ01");
  let size = 0n;
  for (const b of data.subarray(36)) size = size * 256n + BigInt(b);
  if (size < 1n) fail("anchor calldata names an empty tree");
  return { root: data.slice(4, 36), treeSize: size };
}

export const isoUtc = (seconds) => new Date(seconds * 1000).toISOString().replace(".000Z", "Z");

/**
 * Check an anchor record's offline proof; returns { root, treeSize (bigint), chainId, blockNumber,
 * blockHash, blockTime (Date), txHash, header (the decoded RLP fields) }. Throws CheckFailure naming the first check that fails.
 */
export function verifyOfflineAnchor(anchor) {
  const unknown = Object.keys(anchor).filter((k) => !ANCHOR_FIELDS.has(k)).sort();
  if (unknown.length) fail(`anchor record has fields nothing verifies: ${unknown.join(", ")}`);
  if ("format" in anchor && anchor.format !== ANCHOR_FORMAT) fail(`anchor record format is not '${ANCHOR_FORMAT}'`);
  // 1. The header is the preimage of the block hash.
  const blockHash = recordHex(anchor, "block_hash", { size: 32 });
  const header = recordHex(anchor, "header_rlp", { limit: MAX_HEADER_BYTES });
  if (!equal(keccak256(header), blockHash)) {
    fail(`block hash (keccak of header_rlp) mismatch: expected ${toHex(blockHash)}, calculated ${toHex(keccak256(header))}`);
  }
  // 2. The header says what the record says.
  const fields = rlpList(header, "block header");
  if (fields.length < HEADER_FIELD_COUNT.min || fields.length > HEADER_FIELD_COUNT.max) {
    fail(`a block header has ${HEADER_FIELD_COUNT.min}..${HEADER_FIELD_COUNT.max} fields, got ${fields.length}`);
  }
  const txRoot = bytesItem(fields[TX_ROOT_AT], "transactionsRoot");
  if (txRoot.length !== 32) fail("the header's transactionsRoot is not 32 bytes");
  const number = intItem(fields[NUMBER_AT], "number");
  const timestamp = intItem(fields[TIMESTAMP_AT], "timestamp");
  if (number !== BigInt(recordInt(anchor, "block_number"))) fail(`header block number ${number} differs from the record's ${anchor.block_number}`);
  if (timestamp !== BigInt(recordInt(anchor, "block_time"))) fail(`header timestamp ${timestamp} differs from the record's block_time ${anchor.block_time}`);
  if (anchor.block_time_utc != null && anchor.block_time_utc !== isoUtc(Number(timestamp))) {
    fail(`block_time_utc ${JSON.stringify(anchor.block_time_utc)} is not ${JSON.stringify(isoUtc(Number(timestamp)))}, the block header's time ${formatTime(new Date(Number(timestamp) * 1000))}`);
  }
  if (anchor.transactions_root != null && !equal(recordHex(anchor, "transactions_root", { size: 32 }), txRoot)) {
    fail("transactions root mismatch");
  }
  // 3. The transaction trie under that root holds raw_tx at rlp(tx_index).
  const txIndex = recordInt(anchor, "tx_index");
  if (txIndex > MAX_TX_INDEX) fail(`tx_index ${txIndex} exceeds ${MAX_TX_INDEX}`);
  const rawTx = recordHex(anchor, "raw_tx", { limit: MAX_RAW_TX_BYTES });
  const proof = anchor.tx_proof;
  if (!Array.isArray(proof) || proof.length === 0) fail("tx_proof must be a non-empty list of 0x-hex RLP nodes");
  if (proof.length > MAX_PROOF_NODES) fail(`tx_proof has ${proof.length} nodes, more than ${MAX_PROOF_NODES}`);
  const nodes = proof.map((item, i) => {
    const node = hexField(item, `tx_proof[${i}]`, { limit: MAX_PROOF_NODE_BYTES });
    rlpDecode(node); // nodes are found by the keccak of these very bytes: they must be canonical too
    return node;
  });
  if (!equal(trieGet(txRoot, rlpEncodeUint(txIndex), nodes), rawTx)) {
    fail(`the transaction proof does not lead to raw_tx at index ${txIndex}`);
  }
  // 4. raw_tx is the transaction named by tx_hash.
  const txHash = recordHex(anchor, "tx_hash", { size: 32 });
  if (!equal(keccak256(rawTx), txHash)) fail(`transaction hash (keccak of raw_tx) mismatch: expected ${toHex(txHash)}`);
  // 5. An anchor transaction on the record's chain, sent where the record says.
  const tx = decodeTransaction(rawTx);
  const chainId = recordInt(anchor, "chain_id");
  if (tx.chainId === null) fail("the anchor transaction commits to no chain id (pre-EIP-155)");
  if (tx.chainId !== BigInt(chainId)) fail(`the transaction is for chain ${tx.chainId}, the record says ${chainId}`);
  if (tx.to === null) fail("the anchor transaction creates a contract instead of calling an address");
  if (anchor.nonce != null && BigInt(recordInt(anchor, "nonce")) !== tx.nonce) fail(`the transaction has nonce ${tx.nonce}, the record says ${anchor.nonce}`);
  if (anchor.to != null && !equal(recordHex(anchor, "to", { size: 20 }), tx.to)) {
    fail(`the transaction goes to 0x${toHex(tx.to)}, the record says ${anchor.to}`);
  }
  const { root, treeSize } = parseCalldata(tx.data);
  return { root, treeSize, chainId, blockNumber: anchor.block_number, blockHash: `0x${toHex(blockHash)}`,
    blockTime: new Date(anchor.block_time * 1000), txHash: anchor.tx_hash, header: fields };
}
