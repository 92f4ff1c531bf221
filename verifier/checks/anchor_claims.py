"""Offline plausibility of an anchor's claims: what can be said about a block without a node.

Offline, the anchor proof shows that a transaction is in the block whose header hashes to
``block_hash``; anyone can make such a header. Its block number and time are the maker's claims.
These checks cannot make a claim true, but they catch a claim that contradicts the rest of the
package or the rules of the chain it names, so a careless fabrication fails and a careful one is
still reported as "not checked offline". Online, a node settles the block (H5).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from verifier.anchor_proof import HEADER_FIELDS, HEADER_INT_FIELDS, AnchorProofError
from verifier.checks.context import Anchor
from verifier.court_time import format_duration, format_time
from verifier.ethereum_trie import RLPError, rlp_decode
from verifier.keccak import keccak256

#: Ethereum mainnet facts every mainnet header after The Merge obeys (EIP-3675, EIP-4895, EIP-4844).
MAINNET_CHAIN_ID = 1
MERGE_BLOCK = 15_537_394
MERGE_TIME = datetime(2022, 9, 15, 6, 42, 59, tzinfo=UTC)
SLOT = timedelta(seconds=12)
#: Proposers miss a few percent of slots; allow far more before calling a block number implausible.
MAX_MISSED_SLOT_SHARE = 0.25
SHANGHAI_TIME = datetime(2023, 4, 12, 22, 27, 35, tzinfo=UTC)
CANCUN_TIME = datetime(2024, 3, 13, 13, 55, 35, tzinfo=UTC)
MAX_MAINNET_EXTRA_DATA = 32
EMPTY_UNCLES_HASH = keccak256(bytes([0xC0]))


def _header(anchor: Anchor) -> dict[str, Any]:
    """The anchor's header as named fields (integers decoded). The offline proof already parsed it."""
    try:
        fields = rlp_decode(bytes.fromhex(str(anchor.record["header_rlp"]).removeprefix("0x")))
    except (RLPError, ValueError) as exc:
        raise AnchorProofError(f"block header unreadable: {exc}") from exc
    if not isinstance(fields, list):
        raise AnchorProofError("block header is not an RLP list")
    return {name: (int.from_bytes(value, "big") if name in HEADER_INT_FIELDS and isinstance(value, bytes) else value)
            for name, value in zip(HEADER_FIELDS, fields, strict=False)}


def _mainnet_rules(header: dict[str, Any], number: int, when: datetime) -> list[str]:
    """Contradictions between a header that claims chain 1 and mainnet's rules at its time."""
    problems = []
    if when >= MERGE_TIME:
        slots = int((when - MERGE_TIME) / SLOT)
        if not MERGE_BLOCK + slots * (1 - MAX_MISSED_SLOT_SHARE) <= number <= MERGE_BLOCK + slots:
            problems.append(f"block {number} cannot be a mainnet block at {format_time(when)} "
                            f"(about {MERGE_BLOCK + slots} blocks existed then)")
        if header.get("difficulty") != 0 or header.get("nonce") != bytes(8):
            problems.append("a mainnet block after The Merge has difficulty 0 and a zero nonce")
        if header.get("sha3Uncles") != EMPTY_UNCLES_HASH:
            problems.append("a mainnet block after The Merge has no uncles")
    if len(header.get("extraData", b"")) > MAX_MAINNET_EXTRA_DATA:
        problems.append(f"mainnet extraData is at most {MAX_MAINNET_EXTRA_DATA} bytes")
    if when >= SHANGHAI_TIME and "withdrawalsRoot" not in header:
        problems.append("a mainnet block after Shanghai carries withdrawalsRoot")
    if when >= CANCUN_TIME and "parentBeaconBlockRoot" not in header:
        problems.append("a mainnet block after Cancun carries parentBeaconBlockRoot")
    return problems


def implausible_claims(anchor: Anchor, *, stamped: datetime, slack: timedelta, window: timedelta,
                       now: datetime) -> list[str]:
    """Every way the anchor's claimed block contradicts the trusted timestamp, the clock or its chain.

    ``stamped`` is the earliest valid TSA time; the sealer stamps a batch and then anchors it, so a
    genuine block comes after it (within ``slack``) and within ``window``. Returns [] when plausible.
    Raises AnchorProofError when the header cannot be read at all.
    """
    claimed = anchor.block_time
    problems = []
    if claimed > now + slack:
        problems.append(f"the block time {format_time(claimed)} is in the future")
    if claimed > stamped + window:
        problems.append(f"the block time {format_time(claimed)} is more than {format_duration(window)} "
                        f"after the TSA time {format_time(stamped)}; a batch is anchored right after it is stamped")
    header = _header(anchor)
    if header.get("gasUsed", 0) > header.get("gasLimit", 0):
        problems.append("the header's gasUsed exceeds its gasLimit")
    if anchor.block_number == 0:
        problems.append("block 0 is the genesis block, which carries no transactions")
    if anchor.chain_id == MAINNET_CHAIN_ID:
        problems += _mainnet_rules(header, anchor.block_number, claimed)
    return problems
