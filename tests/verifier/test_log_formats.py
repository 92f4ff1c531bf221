"""The event-log formats of the verifier: signed notes, checkpoints, tiles, salted leaves, aggregates."""

from __future__ import annotations

import base64
import json
import os
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from verifier import merkle
from verifier.errors import InvalidInput, VerificationError
from verifier.event_log import aggregate, commit_event, disclose, read_disclosed
from verifier.signed_note import format_note, parse_note, signature_line, verifier_key, verify_note
from verifier.tlog_checkpoint import Checkpoint, parse_checkpoint
from verifier.tlog_tiles import (
    complete_levels,
    decode_bundle,
    encode_bundle,
    extend_tiles,
    index_path,
    parse_tile_path,
    root_from_tiles,
    tile_bytes,
    tile_path,
    tiles_of,
)

# The example of golang.org/x/mod/sumdb/note, whose format C2SP signed-note specifies.
GO_VERIFIER_KEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_NOTE = ("If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n\n"
           "\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6Ryy"
           "BwJnAM=\n").encode()


def _key() -> tuple[Ed25519PrivateKey, bytes]:
    private = Ed25519PrivateKey.generate()
    return private, private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def _signed(checkpoint: Checkpoint, private: Ed25519PrivateKey, public: bytes, name: str) -> bytes:
    text = checkpoint.text
    return format_note(text, [signature_line(name, public, private.sign(text.encode()))])


def test_go_note_vector_verifies_and_its_key_string_round_trips() -> None:
    name, _, encoded = GO_VERIFIER_KEY.split("+")
    public = base64.b64decode(encoded)[1:]
    assert verifier_key(name, public) == GO_VERIFIER_KEY
    verify_note(parse_note(GO_NOTE), name, public)
    with pytest.raises(VerificationError):
        verify_note(parse_note(GO_NOTE.replace(b"answer", b"ANSWER")), name, public)


def test_checkpoint_round_trip_and_foreign_cosignature_is_ignored() -> None:
    private, public = _key()
    witness, witness_public = _key()
    checkpoint = Checkpoint("example.test/log", 7, os.urandom(32))
    data = _signed(checkpoint, private, public, "example.test/log")
    cosigned = data + signature_line("witness.test", witness_public, witness.sign(checkpoint.text.encode())).encode() \
        + b"\n"
    parsed, note = parse_checkpoint(cosigned)
    assert parsed == checkpoint
    verify_note(note, "example.test/log", public)
    verify_note(note, "witness.test", witness_public)
    with pytest.raises(VerificationError, match="not signed by key"):
        verify_note(note, "other.test", public)


@pytest.mark.parametrize("text", [b"origin\n01\nAAAA\n\n\xe2\x80\x94 a AAAAAAAA\n",
                                  b"origin\n3\n\n\xe2\x80\x94 a AAAAAAAA\n", b"no signatures\n"])
def test_malformed_checkpoints_are_refused(text: bytes) -> None:
    with pytest.raises(VerificationError):
        parse_checkpoint(text)


def test_tile_paths_follow_the_spec_examples() -> None:
    assert index_path(1234067) == "x001/x234/067"
    assert index_path(5) == "005"
    assert tile_path(0, 1234067) == "tile/0/x001/x234/067"
    assert tile_path("entries", 2, 7) == "tile/entries/002.p/7"
    assert parse_tile_path("tile/1/x001/x234/067.p/12") == (1, 1234067, 12)
    assert parse_tile_path("tile/entries/000") == ("entries", 0, 256)
    for bad in ("tile/0/1234", "tile/0/x1/234", "tile/6/000", "tile/0/000.p/256", "tile/0/000.p/007"):
        with pytest.raises(InvalidInput):
            parse_tile_path(bad)


def test_tiles_hold_the_complete_subtrees_that_rebuild_the_root() -> None:
    leaves = merkle.leaf_hashes([i.to_bytes(4, "big") for i in range(70_000)])
    levels = complete_levels(leaves)
    tiles = list(tiles_of(len(leaves)))
    assert (0, 273, 112) in tiles and (1, 0, 256) in tiles and (1, 1, 17) in tiles and (2, 0, 1) in tiles
    # A level-1 tile's hashes are the roots of 256-leaf subtrees.
    first = tile_bytes(levels, 1, 0, 256)[:32]
    assert first == merkle.root(leaves[:256])


def test_entry_bundles_round_trip() -> None:
    entries = [b"", b"a", os.urandom(2000)]
    assert decode_bundle(encode_bundle(entries)) == entries
    with pytest.raises(InvalidInput):
        decode_bundle(encode_bundle(entries)[:-1])


EVENT = {"event_time": "2026-12-01T10:15:00Z", "type": "like", "actor": "u1", "device_id": "d1",
         "ip": "203.0.113.7", "session": "s1", "payload": {"post": 42}}


def test_withheld_fields_keep_the_leaf_and_a_changed_value_breaks_it() -> None:
    salt = os.urandom(16)
    entry = commit_event(EVENT, salt)
    record = disclose(EVENT, salt, 3, ["event_time", "type", "device_id"])
    assert set(record["withheld"]) == {"actor", "ip", "session", "payload"}
    assert "203.0.113.7" not in str(record)
    assert read_disclosed(record, "test").entry == entry
    record["disclosed"]["device_id"]["value"] = "d2"
    assert read_disclosed(record, "test").entry != entry


def test_aggregates_count_per_hour_and_need_their_fields_disclosed() -> None:
    events = [dict(EVENT), dict(EVENT, event_time="2026-12-01T10:59:59+00:00"), dict(EVENT, device_id="d2")]
    assert aggregate(events, ["device_id"], "hour") == [
        {"device_id": "d1", "events": 2, "hour": "2026-12-01T10Z"},
        {"device_id": "d2", "events": 1, "hour": "2026-12-01T10Z"}]
    with pytest.raises(VerificationError, match="does not disclose ip"):
        aggregate([{"event_time": "2026-12-01T10:00:00Z"}], ["ip"], "hour")


@pytest.mark.parametrize("sizes", [(0, 1), (1, 300), (255, 257), (256, 70_000), (65_535, 65_537), (5, 5_000)])
def test_tiles_extended_in_steps_give_the_rfc9162_roots(sizes: tuple[int, int]) -> None:
    first, second = sizes
    leaves = merkle.leaf_hashes([i.to_bytes(4, "big") for i in range(second)])
    store: dict[tuple[int, int], list[bytes]] = {}

    def read(level: int, index: int) -> list[bytes]:
        return store[(level, index)]

    store.update(extend_tiles(read, 0, leaves[:first]))
    store.update(extend_tiles(read, first, leaves[first:]))
    assert root_from_tiles(second, read) == merkle.root(leaves)
    assert root_from_tiles(first, read) == merkle.root(leaves[:first])
    assert merkle.inclusion_proofs(leaves, [0, second - 1]) == [merkle.inclusion_proof(leaves, 0),
                                                                  merkle.inclusion_proof(leaves, second - 1)]


_ALPHABET = ["a", "Z", "0", " ", '"', "\\", "/", "\n", "\t", "\x00", "\x1f", "\x7f", "é", "中", "\u2028",
             "\ue000", "\uffff", "😀", "\U0010ffff"]


def _random_json(rng: Any, depth: int = 0) -> Any:
    """A JSON value of the awkward kinds: escapes, non-BMP text, floats, edge integers, nesting."""
    def text() -> str:
        return "".join(rng.choice(_ALPHABET) for _ in range(rng.randrange(0, 6)))

    kind = rng.randrange(8 if depth < 3 else 5)
    if kind in (0, 4):
        return text()
    if kind == 1:
        return rng.choice([0, -1, 7, 2**53 - 1, -(2**53) + 1, 10**6, 2**53, -(2**60)])
    if kind == 2:
        return rng.choice([True, False, None])
    if kind == 3:
        return rng.choice([0.5, 1.0, -0.0, 1e21, 3.14159])
    if kind in (5, 6):
        return {text(): _random_json(rng, depth + 1) for _ in range(rng.randrange(0, 5))}
    return [_random_json(rng, depth + 1) for _ in range(rng.randrange(0, 4))]


def test_the_fast_canonical_form_is_rfc8785_byte_for_byte() -> None:
    import random

    from verifier.canonical import canonical_json
    from verifier.errors import TiezhengError
    from verifier.event_log import canonical

    rng = random.Random(16)
    for _ in range(3000):
        sample = _random_json(rng)
        try:
            expected = canonical_json(sample)
        except (TiezhengError, ValueError):  # an integer past 2**53: both refuse it
            with pytest.raises((TiezhengError, ValueError)):
                canonical(sample)
            continue
        assert canonical(sample) == expected, sample


def test_the_ingest_entry_is_the_definition_byte_for_byte() -> None:
    """commit_event writes the entry in one pass; it must equal the format's definition, computed
    here with the RFC 8785 implementation alone: canonical({"fields": {k: sha256(salt_k || canonical(v))}})."""
    import hashlib
    import random

    from verifier.canonical import canonical_json
    from verifier.errors import TiezhengError

    rng = random.Random(1616)
    unescaped_lines = 0
    for round_ in range(2000):
        event = {key: _random_json(rng) for key in
                 (["event_time", "type", "ip", "payload", "b", "a_b", "A", "\u007f\"k"] if round_ % 2 else
                  [rng.choice(_ALPHABET) * rng.randrange(1, 3) for _ in range(rng.randrange(0, 6))])}
        salt = rng.randbytes(16)
        try:
            expected = canonical_json({"fields": {
                name: hashlib.sha256(hashlib.sha256(salt + name.encode()).digest()[:16]
                                     + canonical_json(value)).hexdigest() for name, value in event.items()}})
        except (TiezhengError, ValueError):  # a lone surrogate or an integer past 2**53: refused either way
            with pytest.raises((TiezhengError, ValueError)):
                commit_event(event, salt)
            continue
        assert commit_event(event, salt) == expected, event
        # Ingest's path: parsed from NDJSON, strings only quoted when the line has no backslash.
        line = json.dumps(event, ensure_ascii=False)
        assert commit_event(json.loads(line), salt, unescaped="\\" not in line) == expected, line
        unescaped_lines += "\\" not in line
    assert unescaped_lines > 100
