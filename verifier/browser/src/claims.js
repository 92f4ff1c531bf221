// Offline, an anchor's block number and time are the maker's claims: anyone can build a header that
// hashes to its block_hash. These checks cannot make a claim true, but they catch a claim that
// contradicts the trusted timestamp, the clock or the rules of the chain it names, so a careless
// fabrication fails and a careful one is still reported as not checked offline.

import { keccak256 } from "./ethereum.js";
import { equal } from "./bytes.js";
import { formatDuration, formatTime } from "./courttime.js";

const MAINNET = 1;
const MERGE_BLOCK = 15_537_394;
const MERGE_TIME = Date.UTC(2022, 8, 15, 6, 42, 59);
const SHANGHAI_TIME = Date.UTC(2023, 3, 12, 22, 27, 35);
const CANCUN_TIME = Date.UTC(2024, 2, 13, 13, 55, 35);
const SLOT_MS = 12_000;
// Proposers miss a few percent of slots; allow far more before calling a block number implausible.
const MAX_MISSED_SLOT_SHARE = 0.25;
const MAX_MAINNET_EXTRA_DATA = 32;
const EMPTY_UNCLES = keccak256(Uint8Array.of(0xc0));
// Header positions (DESIGN §4 order).
const AT = { sha3Uncles: 1, difficulty: 7, gasLimit: 9, gasUsed: 10, extraData: 12, nonce: 14, withdrawalsRoot: 16,
  parentBeaconBlockRoot: 19 };

const int = (raw) => (raw instanceof Uint8Array ? raw.reduce((n, b) => n * 256n + BigInt(b), 0n) : -1n);

function mainnetRules(header, number, when) {
  const problems = [];
  if (when >= MERGE_TIME) {
    const slots = Math.floor((when - MERGE_TIME) / SLOT_MS);
    if (!(MERGE_BLOCK + slots * (1 - MAX_MISSED_SLOT_SHARE) <= number && number <= MERGE_BLOCK + slots)) {
      problems.push(`block ${number} cannot be a mainnet block at ${formatTime(new Date(when))} (about ${MERGE_BLOCK + slots} blocks existed then)`);
    }
    const nonce = header[AT.nonce];
    if (int(header[AT.difficulty]) !== 0n || !(nonce instanceof Uint8Array && nonce.length === 8 && nonce.every((b) => b === 0))) {
      problems.push("a mainnet block after The Merge has difficulty 0 and a zero nonce");
    }
    if (!(header[AT.sha3Uncles] instanceof Uint8Array && equal(header[AT.sha3Uncles], EMPTY_UNCLES))) problems.push("a mainnet block after The Merge has no uncles");
  }
  if ((header[AT.extraData]?.length ?? 0) > MAX_MAINNET_EXTRA_DATA) problems.push(`mainnet extraData is at most ${MAX_MAINNET_EXTRA_DATA} bytes`);
  if (when >= SHANGHAI_TIME && header.length <= AT.withdrawalsRoot) problems.push("a mainnet block after Shanghai carries withdrawalsRoot");
  if (when >= CANCUN_TIME && header.length <= AT.parentBeaconBlockRoot) problems.push("a mainnet block after Cancun carries parentBeaconBlockRoot");
  return problems;
}

/** Every way the anchor's claimed block contradicts the trusted time, the clock or its chain; [] if plausible. */
export function implausibleClaims(anchor, { stamped, slackMs, windowMs, now = Date.now() }) {
  const claimed = anchor.blockTime.getTime();
  const problems = [];
  if (claimed > now + slackMs) problems.push(`the block time ${formatTime(anchor.blockTime)} is in the future`);
  if (claimed > stamped.getTime() + windowMs) {
    problems.push(`the block time ${formatTime(anchor.blockTime)} is more than ${formatDuration(windowMs / 1000)} after the TSA time ${formatTime(stamped)}; a batch is anchored right after it is stamped`);
  }
  if (int(anchor.header[AT.gasUsed]) > int(anchor.header[AT.gasLimit])) problems.push("the header's gasUsed exceeds its gasLimit");
  if (anchor.blockNumber === 0) problems.push("block 0 is the genesis block, which carries no transactions");
  if (anchor.chainId === MAINNET) problems.push(...mainnetRules(anchor.header, anchor.blockNumber, claimed));
  return problems;
}
