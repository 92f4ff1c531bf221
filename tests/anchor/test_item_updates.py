"""Set-based sealing writes (anchor/item_updates.py) on SQLite and PostgreSQL, against the real TSA and anvil.

Thousands of items go through several batches whose assignments and marks span several slices, and
every row's end state is checked: attached, in a batch, at the leaf its id order gives, with a proof
that verifies against its batch's root. A sealer that stops between two committed mark slices is
resumed by another one, which finishes the batch exactly once. A store made before loses its index on
state and gains the partial index of pending items. PostgreSQL cases skip when no server answers.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509
from sqlalchemy import insert, inspect, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

import anchor.attach as attach_module
import anchor.sealer as sealer_module
from anchor.devnet import DEV_OPERATOR_KEY, DEVNET_CHAIN_ID
from anchor.item_updates import assign_leaves, mark_attached
from anchor.sealer import ChainEndpoint, Sealer, SealerConfig, TSAEndpoint
from anchor.store import ITEM_FILLFACTOR, BatchState, ItemState, SealBatch, SealItem, make_engine, sqlite_url
from anchor.tsa_server import DevTSA, TSAServer
from tests.api.server import drop_postgres_database, postgres_database, postgres_where
from verifier import merkle

ITEMS = 2_500
BATCH_ITEMS = 1_000


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    url = sqlite_url(tmp_path / "seal.db") if request.param == "sqlite" else postgres_database()
    if url is None:
        pytest.skip(f"PostgreSQL is not reachable at {postgres_where()} (set TIEZHENG_TEST_POSTGRES)")
    made = make_engine(url)
    try:
        yield made
    finally:
        made.dispose()
        if request.param == "postgresql":
            drop_postgres_database(url)


def add_pending(engine: Engine, count: int, *, prefix: str = "item") -> None:
    rows = [{"evidence_id": f"{prefix}-{i}", "fingerprint": merkle.leaf_hash(f"{prefix} {i}".encode()).hex(),
             "package_path": "", "state": ItemState.PENDING.value} for i in range(count)]
    with Session(engine) as session:
        session.connection().execute(insert(SealItem), rows)
        session.commit()


def all_items(engine: Engine) -> list[SealItem]:
    with Session(engine) as session:
        return list(session.exec(select(SealItem).order_by(SealItem.id)).all())  # type: ignore[arg-type]


def make_sealer(engine: Engine, dev_tsa: DevTSA, tsa_server: TSAServer, rpc_url: str) -> Sealer:
    roots = tuple(x509.load_pem_x509_certificates(dev_tsa.ca_certificate_pem()))
    config = SealerConfig(
        tsas=(TSAEndpoint("dev TSA", tsa_server.url, roots, dev_tsa.chain_pem()),),
        chain=ChainEndpoint(rpc_url=rpc_url, chain_id=DEVNET_CHAIN_ID, private_key=DEV_OPERATOR_KEY),
        batch_max_items=BATCH_ITEMS, attach_packages=False, tsa_attempts=1, anchor_timeout=10)
    return Sealer(engine, config)


@pytest.fixture()
def small_slices(monkeypatch: pytest.MonkeyPatch) -> None:
    """Slices that do not divide the batch, so every batch spans several statements and commits."""
    monkeypatch.setattr(sealer_module, "ASSIGN_SLICE", 300)
    monkeypatch.setattr(attach_module, "MARK_COMMIT_EVERY", 350)


def assert_all_sealed(engine: Engine, expected_items: int) -> None:
    """Every row attached, once, at the leaf its id order gives, and proven against its batch root."""
    items = all_items(engine)
    assert len(items) == expected_items
    with Session(engine) as session:
        batches = {b.id: b for b in session.exec(select(SealBatch)).all()}
    assert {b.state for b in batches.values()} == {BatchState.ATTACHED}
    by_batch: dict[str, list[SealItem]] = {}
    for item in items:
        assert item.state == ItemState.ATTACHED, item
        assert item.batch_id in batches and item.leaf_index is not None and item.sealed_at is not None, item
        by_batch.setdefault(item.batch_id, []).append(item)
    assert sum(b.tree_size for b in batches.values()) == expected_items
    for batch_id, members in by_batch.items():
        batch = batches[batch_id]
        assert batch.tree_size == len(members) <= BATCH_ITEMS
        # Leaves follow id order and run 0..size-1 without a gap or a repeat.
        assert [m.leaf_index for m in members] == list(range(len(members)))
        leaves = merkle.leaf_hashes([bytes.fromhex(m.fingerprint) for m in members])
        root = merkle.root(leaves)
        assert root.hex() == batch.root
        for index, path in enumerate(merkle.all_inclusion_proofs(leaves)):
            merkle.verify_inclusion(leaves[index], index, len(leaves), path, root)


def test_every_row_ends_sealed_once(engine: Engine, dev_tsa: DevTSA, tsa_server: TSAServer, rpc_url: str,
                                    small_slices: None) -> None:
    add_pending(engine, ITEMS)
    sealer = make_sealer(engine, dev_tsa, tsa_server, rpc_url)
    done = sealer.run_once(force=True)
    assert len(done) == 3  # 1,000 + 1,000 + 500
    assert_all_sealed(engine, ITEMS)
    # Items accepted later go into a new batch of their own; the sealed ones are left as they are.
    before = {(i.id, i.batch_id, i.leaf_index, i.sealed_at) for i in all_items(engine)}
    add_pending(engine, 10, prefix="late")
    [late] = sealer.run_once(force=True)
    assert_all_sealed(engine, ITEMS + 10)
    after = all_items(engine)
    assert before <= {(i.id, i.batch_id, i.leaf_index, i.sealed_at) for i in after}
    assert sorted(i.leaf_index or 0 for i in after if i.batch_id == late) == list(range(10))


def test_a_sealer_stopped_between_mark_slices_is_finished_by_the_next(
        engine: Engine, dev_tsa: DevTSA, tsa_server: TSAServer, rpc_url: str, small_slices: None,
        monkeypatch: pytest.MonkeyPatch) -> None:
    add_pending(engine, BATCH_ITEMS)
    calls = []

    def mark_then_stop(*args: object, **kwargs: object) -> int:
        calls.append(1)
        if len(calls) == 2:  # the first slice is committed, the second never is
            raise KeyboardInterrupt("stopped mid-batch")
        return mark_attached(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(attach_module, "mark_attached", mark_then_stop)
    with pytest.raises(KeyboardInterrupt):
        make_sealer(engine, dev_tsa, tsa_server, rpc_url).run_once(force=True)
    states = [i.state for i in all_items(engine)]
    assert states.count(ItemState.ATTACHED) == 350 and states.count(ItemState.BATCHED) == BATCH_ITEMS - 350

    monkeypatch.setattr(attach_module, "mark_attached", mark_attached)
    [batch_id] = make_sealer(engine, dev_tsa, tsa_server, rpc_url).run_once(force=True)
    assert_all_sealed(engine, BATCH_ITEMS)
    with Session(engine) as session:
        batch = session.get(SealBatch, batch_id)
    assert batch is not None and len(json.loads(batch.anchor_txs or "[]")) == 1  # anchored once


def test_assign_leaves_skips_items_no_longer_pending(engine: Engine) -> None:
    add_pending(engine, 6)
    ids = [i.id for i in all_items(engine) if i.id is not None]
    with engine.begin() as connection:
        assert assign_leaves(connection, "b-first", ids[:2]) == 2
    with engine.begin() as connection:
        # Two of these were batched already: only the four pending ones move, at their own positions.
        assert assign_leaves(connection, "b-second", ids, first_leaf=10) == 4
        assert mark_attached(connection, ids[:2], datetime.now(UTC)) == 2
    rows = {i.id: i for i in all_items(engine)}
    assert [(rows[i].batch_id, rows[i].leaf_index, rows[i].state) for i in ids] == [
        ("b-first", 0, ItemState.ATTACHED), ("b-first", 1, ItemState.ATTACHED),
        ("b-second", 12, ItemState.BATCHED), ("b-second", 13, ItemState.BATCHED),
        ("b-second", 14, ItemState.BATCHED), ("b-second", 15, ItemState.BATCHED)]
    assert all(rows[i].sealed_at is not None for i in ids[:2])
    with engine.begin() as connection:
        assert assign_leaves(connection, "b-empty", []) == 0
        assert mark_attached(connection, [], datetime.now(UTC)) == 0


def test_a_store_made_before_gets_todays_indexes(engine: Engine) -> None:
    """An index on state would make every attached mark a full row version on PostgreSQL."""
    with engine.begin() as connection:
        connection.execute(text("DROP INDEX ix_seal_item_unbatched"))
        connection.execute(text("CREATE INDEX ix_seal_item_state ON seal_item (state)"))
        if engine.dialect.name == "postgresql":
            connection.execute(text("ALTER TABLE seal_item RESET (fillfactor)"))
    reopened = make_engine(engine.url.render_as_string(hide_password=False))
    try:
        names = {i["name"] for i in inspect(reopened).get_indexes("seal_item")}
        assert "ix_seal_item_unbatched" in names and "ix_seal_item_state" not in names
        if engine.dialect.name == "postgresql":
            with reopened.connect() as connection:
                options = connection.execute(text("SELECT reloptions FROM pg_class WHERE relname = 'seal_item'"))
                assert options.scalar_one() == [f"fillfactor={ITEM_FILLFACTOR}"]
    finally:
        reopened.dispose()
