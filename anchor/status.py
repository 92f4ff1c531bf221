"""Batches and items as the CLI and the API show them: states, timestamps and every chain's anchor."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from anchor.anchors import anchor_rows
from anchor.store import SealBatch, SealItem


def batch_status(engine: Engine, batch_id: str) -> dict[str, Any] | None:
    """A batch as the CLI and API show it."""
    with Session(engine) as session:
        batch = session.get(SealBatch, batch_id)
    if batch is None:
        return None
    anchor = json.loads(batch.anchor_record) if batch.anchor_record else None
    anchors = []
    for row in anchor_rows(engine, batch_id):
        record = json.loads(row.anchor_record) if row.anchor_record else {}
        anchors.append({"chain_id": row.chain_id, "state": row.state, "tx_hash": record.get("tx_hash"),
                        "block_number": record.get("block_number"), "block_time_utc": record.get("block_time_utc"),
                        "confirmations": record.get("node_reported", {}).get("confirmations"),
                        "attempts": row.attempts, "last_error": row.last_error})
    return {"id": batch.id, "state": batch.state, "tree_size": batch.tree_size, "root": batch.root,
            "timestamps": [{"tsa": t["tsa"], "gen_time": t["gen_time"]} for t in json.loads(batch.timestamps or "[]")],
            "anchor": None if anchor is None else {
                **{k: anchor[k] for k in ("chain_id", "tx_hash", "block_number", "block_time_utc")},
                "confirmations": anchor.get("node_reported", {}).get("confirmations")},
            "anchors": anchors,
            "attempts": batch.attempts, "last_error": batch.last_error}


def items_in(engine: Engine, states: Sequence[str]) -> int:
    with Session(engine) as session:
        return int(session.exec(select(func.count()).select_from(SealItem)
                                .where(col(SealItem.state).in_(states))).one())
