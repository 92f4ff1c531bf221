"""Per-tenant append-only event logs: ingest, the sequencer, checkpoints, tiles and exports.

1. **Ingest** (``append``) parses NDJSON, salts and commits to each event (``verifier.event_log``),
   and assigns leaf indexes under a lock on the log's row, so indexes are dense and committed in
   order whatever the number of API processes. Receipts are returned only after that commit.
2. **The sequencer** (``integrate``, one at a time per log under a lease) appends the committed
   events to the tree: it rewrites only the right-edge tiles (C2SP tlog-tiles, bytes in the blob
   store), checks that the new tree still holds the previous checkpoint's root, signs a C2SP
   checkpoint with the operator key and queues its hash as a sealing leaf, all in one commit. A
   crash before that commit leaves only unreferenced blobs; the next run redoes the work.
3. **Exports** (``export``) disclose the chosen events and fields against one checkpoint, with the
   consistency proof to an anchored (sealed) checkpoint and that checkpoint's proofs.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
import socket
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Column, Index, Text, UniqueConstraint, insert, update
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, col, select

from api.service.blobs import BlobBackend
from api.service.errors import ApiError
from api.service.models import ApiTable, utcnow
from verifier import merkle
from verifier.canonical import sha256
from verifier.errors import InvalidInput, TiezhengError
from verifier.event_log import SALT_BYTES, aggregates_document, commit_event, disclose
from verifier.signed_note import format_note, signature_line
from verifier.tlog_checkpoint import Checkpoint
from verifier.tlog_tiles import (
    TILE_WIDTH,
    decode_bundle,
    encode_bundle,
    extend_tiles,
    parse_tile_path,
    root_from_tiles,
    split_tile,
)

#: The fields every event of a log carries unless its schema says otherwise (issue 16).
DEFAULT_FIELDS = ("event_time", "type", "actor", "device_id", "ip", "session", "payload")
LOG_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")
#: Fields a log's declared schema may require.
MAX_REQUIRED_FIELDS = 50
#: Level of the entry bundles in the tile table (hash tiles have levels 0-5).
ENTRIES_LEVEL = -1
SEQUENCER_LEASE_TTL = timedelta(seconds=120)
#: Events per ingest request; bigger bodies are split by the client.
MAX_EVENTS_PER_REQUEST = 100_000
MAX_EVENT_BYTES = 60_000


class LogError(ApiError):
    """A log request the service refuses (unknown log, malformed event, inconsistent tree)."""

    def __init__(self, message: str, *, status: int = 422, code: str = "log_invalid") -> None:
        super().__init__(status, code, message)


# -- tables ----------------------------------------------------------------------------------------

class EventLog(ApiTable, table=True):
    __tablename__ = "event_log"
    __table_args__ = (UniqueConstraint("tenant", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(max_length=200)
    name: str = Field(max_length=64)
    origin: str = Field(max_length=300)
    #: JSON list of the fields every event must carry; others are allowed.
    required_fields: str = Field(sa_column=Column(Text, nullable=False))
    #: The next leaf index ingest hands out; events below it are committed.
    next_index: int = 0
    #: Leaves integrated into the tree (the latest checkpoint's size).
    size: int = 0
    created_at: datetime = Field(default_factory=utcnow)


class LogEvent(ApiTable, table=True):
    __tablename__ = "log_event"
    __table_args__ = (UniqueConstraint("log_id", "leaf_index"), Index("ix_log_event_time", "log_id", "event_time"))

    id: int | None = Field(default=None, primary_key=True)
    #: Indexed by the unique (log_id, leaf_index) constraint: a second index would be written per event.
    log_id: int
    leaf_index: int
    salt: str = Field(max_length=32)
    #: The event as received (one JSON object); the leaf commits to its parsed values.
    body: str = Field(sa_column=Column(Text, nullable=False))
    #: The log entry (the salted commitments, ``verifier.event_log.commit_event``) and its leaf hash,
    #: made once at ingest: the sequencer only cuts them into tiles and bundles.
    entry: str = Field(sa_column=Column(Text, nullable=False))
    leaf: str = Field(max_length=64)
    #: The event's own time, when it states one: an export's time range is selected by the index.
    event_time: datetime | None = None
    received_at: datetime = Field(default_factory=utcnow)


class LogCheckpoint(ApiTable, table=True):
    __tablename__ = "log_checkpoint"
    __table_args__ = (UniqueConstraint("log_id", "size"),)

    id: int | None = Field(default=None, primary_key=True)
    log_id: int = Field(index=True)
    size: int
    root: str = Field(max_length=64)
    note: str = Field(sa_column=Column(Text, nullable=False))
    published_at: datetime = Field(default_factory=utcnow)
    #: The sealing-store item of this checkpoint: its leaf is the note's sha256, and once sealed its
    #: proof files are objects in the blob store (``anchor.attach.proof_addresses``), for any host.
    evidence_id: str = Field(max_length=100)


class LogTile(ApiTable, table=True):
    __tablename__ = "log_tile"
    __table_args__ = (UniqueConstraint("log_id", "level", "tile_index"),)

    id: int | None = Field(default=None, primary_key=True)
    log_id: int = Field(index=True)
    level: int
    tile_index: int
    #: Hashes (or entries) the stored tile holds; partial tiles grow until 256.
    width: int
    address: str = Field(max_length=64)


# -- logs ------------------------------------------------------------------------------------------

def origin_of(tenant: str, name: str) -> str:
    """The checkpoint origin (and note key name): unique per log, no spaces."""
    return f"tiezheng/{re.sub(r'[^A-Za-z0-9._-]', '-', tenant)}/{name}"


def create_log(session: Session, tenant: str, name: str, required: Sequence[str] = DEFAULT_FIELDS) -> EventLog:
    """Create the log ``name`` of ``tenant`` (committed). Raises LogError for a bad or taken name."""
    if not LOG_NAME.fullmatch(name):
        raise LogError("a log name is 1-63 lowercase letters, digits, '.', '_' or '-'", status=422,
                       code="log_name_invalid")
    if len(required) > MAX_REQUIRED_FIELDS or not all(isinstance(f, str) and 0 < len(f) <= 100 for f in required):
        raise LogError(f"a log's schema names at most {MAX_REQUIRED_FIELDS} fields of 1-100 characters",
                       code="log_schema_invalid")
    if find_log(session, tenant, name) is not None:
        raise LogError(f"log {name!r} exists", status=409, code="log_exists")
    log = EventLog(tenant=tenant, name=name, origin=origin_of(tenant, name), required_fields=json.dumps(list(required)))
    session.add(log)
    session.commit()
    session.refresh(log)
    return log


def find_log(session: Session, tenant: str, name: str) -> EventLog | None:
    return session.exec(select(EventLog).where(EventLog.tenant == tenant, EventLog.name == name)).first()


def get_log(session: Session, tenant: str, name: str) -> EventLog:
    log = find_log(session, tenant, name)
    if log is None:
        raise LogError(f"no log {name!r}", status=404, code="log_not_found")
    return log


# -- ingest ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Receipt:
    seq: int
    leaf_index: int
    leaf: str
    #: The event is in every checkpoint of at least this size (the next one published).
    checkpoint_size_at_least: int

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "leaf_index": self.leaf_index, "leaf": self.leaf,
                "checkpoint_size_at_least": self.checkpoint_size_at_least}


def _parse_event(text: str, number: int, required: Sequence[str]) -> dict[str, Any]:
    try:
        event = json.loads(text)
    except (ValueError, RecursionError):
        raise LogError(f"line {number}: not JSON", status=422, code="event_invalid") from None
    if type(event) is not dict:
        raise LogError(f"line {number}: an event is a JSON object", status=422, code="event_invalid")
    for name in required:
        if name not in event:
            missing = [name for name in required if name not in event]
            raise LogError(f"line {number}: missing {', '.join(missing)}", status=422, code="event_invalid")
    return event


def _event_time(event: dict[str, Any], number: int) -> datetime | None:
    """The event's ``event_time`` in UTC (None when it has none). Raises LogError when malformed."""
    when = event.get("event_time")
    if when is None:
        return None
    try:
        parsed = datetime.fromisoformat(when) if isinstance(when, str) else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise LogError(f"line {number}: event_time is ISO 8601 with a time zone", code="event_invalid")
    return parsed.astimezone(UTC)


#: The columns ``_insert_events`` writes, in the order of its rows.
_EVENT_COLUMNS = ("log_id", "leaf_index", "salt", "body", "entry", "leaf", "event_time", "received_at")
_COPY_EVENTS = "COPY log_event (log_id, leaf_index, salt, body, entry, leaf, event_time, received_at) FROM STDIN"
_INSERT_EVENTS = ("INSERT INTO log_event (log_id, leaf_index, salt, body, entry, leaf, event_time, received_at) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
#: How SQLAlchemy stores a UTC datetime in SQLite (``UTCDateTime`` reads it back).
_SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"


def _insert_events(session: Session, rows: list[tuple[Any, ...]]) -> None:
    """Insert ``rows`` (``_EVENT_COLUMNS``, times in UTC, one ``received_at``) in the session's
    transaction, by the driver: COPY on PostgreSQL, one executemany on SQLite. The ORM's per-row
    work (bind processing, one parameter dict per row) was a third of ingest's time."""
    connection = session.connection()
    dialect = connection.dialect.name
    if dialect == "postgresql":
        raw = connection.connection.driver_connection
        with raw.cursor() as cursor, cursor.copy(_COPY_EVENTS) as copy:  # type: ignore[union-attr]
            for row in rows:
                copy.write_row(row)
    elif dialect == "sqlite":
        received = rows[0][7].strftime(_SQLITE_TIME)
        stamped = [(*row[:6], row[6] and row[6].strftime(_SQLITE_TIME), received) for row in rows]
        connection.exec_driver_sql(_INSERT_EVENTS, stamped)
    else:
        session.execute(insert(LogEvent), [dict(zip(_EVENT_COLUMNS, row, strict=True)) for row in rows])


def append(session: Session, log_id: int, lines: Iterable[bytes]) -> list[Receipt]:
    """Commit the events of ``lines`` (NDJSON) to log ``log_id``; return their receipts after the commit.

    All or nothing: one malformed event refuses the request (LogError) and commits nothing.
    """
    log = session.get(EventLog, log_id)
    if log is None:
        raise LogError("no such log", status=404, code="log_not_found")
    required = json.loads(log.required_fields)
    # End the read: on SQLite a transaction that read before it writes fails when another writer
    # committed meanwhile; one that starts with its write waits its turn instead.
    session.rollback()
    # Per event: one parse, one pass writing the entry (verifier.event_log.commit_event), one hash.
    # Rows are plain tuples; their leaf indexes are filled in once the indexes are taken.
    prepared: list[tuple[str, str, str, str, datetime | None]] = []
    events = [raw for raw in lines if raw.strip()]
    if len(events) > MAX_EVENTS_PER_REQUEST:
        raise LogError(f"at most {MAX_EVENTS_PER_REQUEST} events a request", status=413, code="too_many_events")
    salts = os.urandom(SALT_BYTES * len(events))  # one call for the request's salts
    leaf_of = merkle.leaf_hash
    for number, line in enumerate(events, 1):
        if len(line) > MAX_EVENT_BYTES:
            raise LogError(f"line {number}: an event is at most {MAX_EVENT_BYTES} bytes", status=413,
                           code="event_too_large")
        salt = salts[(number - 1) * SALT_BYTES:number * SALT_BYTES]
        try:
            body = line.decode("utf-8").strip()
            event = _parse_event(body, number, required)
            entry = commit_event(event, salt, unescaped=b"\\" not in line)
        except (TiezhengError, ValueError, RecursionError) as exc:  # not UTF-8, NaN, a lone surrogate, too deep
            if isinstance(exc, LogError):
                raise
            raise LogError(f"line {number}: not an event RFC 8785 JSON can hold (UTF-8, no NaN or lone "
                           "surrogates)", code="event_invalid") from None
        prepared.append((salt.hex(), body, entry.decode(), leaf_of(entry).hex(), _event_time(event, number)))
    if not prepared:
        raise LogError("no events in the request", status=422, code="event_invalid")
    # Taking the indexes is the transaction's first statement, and its row lock (PostgreSQL) or write
    # lock (SQLite) is held to the commit: concurrent requests get dense indexes, committed in order.
    taken = session.execute(update(EventLog).where(col(EventLog.id) == log_id)
                            .values(next_index=col(EventLog.next_index) + len(prepared))
                            .returning(col(EventLog.next_index))).scalar_one()
    first = taken - len(prepared)
    now = utcnow()
    _insert_events(session, [(log_id, first + offset, salt, body, entry, leaf, when, now)
                             for offset, (salt, body, entry, leaf, when) in enumerate(prepared)])
    session.commit()
    return [Receipt(seq=first + offset, leaf_index=first + offset, leaf=row[3],
                    checkpoint_size_at_least=first + offset + 1) for offset, row in enumerate(prepared)]


# -- tiles -----------------------------------------------------------------------------------------

class TileReader:
    """The current tiles of one log, read through the blob store (cached for one integration)."""

    def __init__(self, session: Session, blobs: BlobBackend, log_id: int) -> None:
        self.session, self.blobs, self.log_id = session, blobs, log_id
        self.cache: dict[tuple[int, int], list[bytes]] = {}

    def row(self, level: int, index: int) -> LogTile | None:
        return self.session.exec(select(LogTile).where(LogTile.log_id == self.log_id, LogTile.level == level,
                                                       LogTile.tile_index == index)).first()

    def raw(self, level: int, index: int) -> bytes:
        row = self.row(level, index)
        if row is None:
            raise LogError(f"no tile {level}/{index}", status=404, code="tile_not_found")
        with self.blobs.open(row.address) as stream:
            return stream.read()

    def __call__(self, level: int, index: int) -> list[bytes]:
        key = (level, index)
        if key not in self.cache:
            self.cache[key] = split_tile(self.raw(level, index))
        return self.cache[key]


def _store_tile(session: Session, blobs: BlobBackend, log_id: int, level: int, index: int, width: int,
                data: bytes) -> None:
    address = blobs.put_bytes(data)
    row = session.exec(select(LogTile).where(LogTile.log_id == log_id, LogTile.level == level,
                                             LogTile.tile_index == index)).first()
    if row is None:
        row = LogTile(log_id=log_id, level=level, tile_index=index, width=width, address=address)
    row.width, row.address = width, address
    session.add(row)


def read_tile(session: Session, blobs: BlobBackend, log: EventLog, path: str) -> bytes:
    """The bytes of ``tile/...`` (hash tile or entry bundle) of ``log``, as tlog-tiles serves them.

    A partial tile is served at any width the log has reached (the first W hashes or entries).
    Raises LogError 404 for a tile the log does not have (yet).
    """
    try:
        level, index, width = parse_tile_path(path)
    except InvalidInput as exc:
        raise LogError(str(exc), status=404, code="tile_not_found") from None
    stored_level = ENTRIES_LEVEL if level == "entries" else int(level)
    reader = TileReader(session, blobs, int(log.id or 0))
    row = reader.row(stored_level, index)
    if row is None or row.width < width:
        raise LogError(f"no tile {path}", status=404, code="tile_not_found")
    data = reader.raw(stored_level, index)
    if level != "entries":
        return data[:width * merkle.HASH_SIZE]
    if row.width == width:
        return data
    return encode_bundle(decode_bundle(data)[:width])


# -- the sequencer ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class CheckpointPolicy:
    """Publish when this many events wait, or the oldest has waited this long."""

    every_events: int = 1000
    every_seconds: float = 10.0


def _due(session: Session, log: EventLog, policy: CheckpointPolicy, now: datetime) -> bool:
    pending = log.next_index - log.size
    if pending <= 0:
        return False
    if pending >= policy.every_events:
        return True
    oldest = session.exec(select(LogEvent.received_at).where(LogEvent.log_id == log.id,
                                                            LogEvent.leaf_index == log.size)).first()
    if oldest is None:
        return True
    if oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=UTC)
    return (now - oldest).total_seconds() >= policy.every_seconds


class InconsistentCheckpoint(LogError):
    """The tree no longer holds the last published checkpoint: nothing is published."""


@dataclass
class Sequencer:
    """Integrates one log's committed events and publishes its checkpoints; run one per log."""

    engine: Engine
    blobs: BlobBackend
    sign: Any  # Callable[[bytes], bytes]: Ed25519 over the note text, by the operator key
    public_key: bytes
    policy: CheckpointPolicy = CheckpointPolicy()
    #: ``host:pid:random``, so that a restart on this host takes over a crashed holder's lease at once.
    owner: str = dataclasses.field(
        default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}")
    #: Events integrated per checkpoint at most: bounds memory and the work a crash loses.
    chunk: int = 100_000
    #: Called with the name of each step of an integration before its commit ("tiles", "signed"):
    #: a fault-injection point for crash tests.
    on_step: Any = None

    def run_once(self, log_id: int, *, force: bool = False) -> LogCheckpoint | None:
        """Integrate what is due and publish a checkpoint; None when nothing was due or the lease is held."""
        from anchor.store import acquire_lease, crashed_here, release_lease

        lease = f"log-sequencer:{log_id}"
        if not acquire_lease(self.engine, lease, self.owner, SEQUENCER_LEASE_TTL, is_dead=crashed_here):
            return None
        try:
            with Session(self.engine) as session:
                log = session.get(EventLog, log_id)
                if log is None:
                    raise LogError("no such log", status=404, code="log_not_found")
                if not (force and log.next_index > log.size) and not _due(session, log, self.policy, utcnow()):
                    return None
                return self._integrate(session, log)
        finally:
            release_lease(self.engine, lease, self.owner)

    def _integrate(self, session: Session, log: EventLog) -> LogCheckpoint:
        from anchor.store import pending_item

        old_size, log_id = log.size, int(log.id or 0)
        target = min(log.next_index, old_size + self.chunk)
        rows = session.exec(select(LogEvent.leaf_index, LogEvent.leaf, LogEvent.entry)
                            .where(LogEvent.log_id == log_id, col(LogEvent.leaf_index) >= old_size,
                                   col(LogEvent.leaf_index) < target)
                            .order_by(col(LogEvent.leaf_index))).all()
        if [r[0] for r in rows] != list(range(old_size, target)):
            raise LogError(f"log {log.name}: events {old_size}..{target - 1} are not all committed", status=500,
                           code="log_gap")
        leaves = [bytes.fromhex(r[1]) for r in rows]
        reader = TileReader(session, self.blobs, log_id)
        changed = extend_tiles(reader, old_size, leaves)
        for (level, index), hashes in changed.items():
            _store_tile(session, self.blobs, log_id, level, index, len(hashes), b"".join(hashes))
            reader.cache[(level, index)] = hashes
        self._store_bundles(session, log_id, old_size, [r[2].encode() for r in rows])
        self._step("tiles")
        root = root_from_tiles(target, reader)
        previous = session.exec(select(LogCheckpoint).where(LogCheckpoint.log_id == log_id)
                                .order_by(col(LogCheckpoint.size).desc())).first()
        if previous is not None and root_from_tiles(previous.size, reader).hex() != previous.root:
            session.rollback()
            raise InconsistentCheckpoint(f"log {log.name}: the tree no longer holds checkpoint {previous.size}; "
                                         "refusing to publish", status=500, code="log_inconsistent")
        checkpoint = Checkpoint(log.origin, target, root)
        text = checkpoint.text
        note = format_note(text, [signature_line(log.origin, self.public_key, self.sign(text.encode()))])
        published = utcnow()
        evidence_id = f"logcp-{log_id}-{target}"
        row = LogCheckpoint(log_id=log_id, size=target, root=root.hex(), note=note.decode(), published_at=published,
                            evidence_id=evidence_id)
        log.size = target
        session.add(log)
        session.add(row)
        # The checkpoint's hash is a leaf of the next sealing batch, like a package's fingerprint; no
        # package file: its proofs become objects in the blob store.
        session.add(pending_item(evidence_id, sha256(note)))
        self._step("signed")
        session.commit()
        session.refresh(row)
        return row

    def _step(self, name: str) -> None:
        if self.on_step is not None:
            self.on_step(name)

    def run_all(self) -> list[LogCheckpoint]:
        """One pass over every log: publish each checkpoint that is due (the service's loop)."""
        with Session(self.engine) as session:
            ids = session.exec(select(EventLog.id).where(col(EventLog.next_index) > col(EventLog.size))).all()
        published = [self.run_once(int(log_id)) for log_id in ids if log_id is not None]
        return [c for c in published if c is not None]

    def _store_bundles(self, session: Session, log_id: int, old_size: int, entries: list[bytes]) -> None:
        """Entry bundles: the salted commitments (never the raw events, which stay private)."""
        index = old_size // TILE_WIDTH
        start = index * TILE_WIDTH
        kept: list[bytes] = []
        if old_size % TILE_WIDTH:
            kept = decode_bundle(TileReader(session, self.blobs, log_id).raw(ENTRIES_LEVEL, index))[:old_size - start]
        row = kept + entries
        for offset in range(0, len(row), TILE_WIDTH):
            chunk = row[offset:offset + TILE_WIDTH]
            _store_tile(session, self.blobs, log_id, ENTRIES_LEVEL, index + offset // TILE_WIDTH, len(chunk),
                        encode_bundle(chunk))


def sealed_proof_files(session: Session, blobs: BlobBackend, checkpoint: LogCheckpoint) -> dict[str, bytes]:
    """The ``proof/`` files of a sealed checkpoint, from the blob store. Raises LogError when unsealed."""
    from anchor.attach import proof_addresses

    addresses = proof_addresses(session, checkpoint.evidence_id)
    if addresses is None:
        raise LogError(f"checkpoint {checkpoint.size} has no stored proofs yet", status=409, code="log_not_anchored")
    return {name: blobs.get_bytes(address) for name, address in addresses}


def latest_checkpoint(session: Session, log: EventLog) -> LogCheckpoint | None:
    return session.exec(select(LogCheckpoint).where(LogCheckpoint.log_id == log.id)
                        .order_by(col(LogCheckpoint.size).desc())).first()


# -- exports ---------------------------------------------------------------------------------------

_CLAUSE_EQ = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.+?)\s*")
_CLAUSE_IN = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s+in\s+\[\s*([^,\]]+?)\s*,\s*([^,)]+?)\s*\)\s*")


@dataclass(frozen=True)
class EventFilter:
    """``type=like AND event_time in [A,B)``: equalities and half-open ranges, all of which must hold."""

    text: str
    equal: tuple[tuple[str, str], ...]
    ranges: tuple[tuple[str, str, str], ...]

    @functools.cached_property
    def time_ranges(self) -> tuple[tuple[datetime, datetime], ...]:
        return tuple((_time(low), _time(high)) for name, low, high in self.ranges if name == "event_time")

    def matches(self, event: dict[str, Any]) -> bool:
        for name, value in self.equal:
            if name not in event or str(event[name]) != value:
                return False
        for name, low, high in self.ranges:
            if name not in event:
                return False
            if name != "event_time" and not low <= str(event[name]) < high:
                return False
        if self.time_ranges:
            try:
                moment = _time(str(event["event_time"]))
            except ValueError:
                return False
            return all(low <= moment < high for low, high in self.time_ranges)
        return True


def _time(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_filter(text: str) -> EventFilter:
    """Parse a filter. Raises LogError naming the clause it cannot read."""
    equal, ranges = [], []
    for clause in re.split(r"\s+AND\s+", text.strip()) if text.strip() else []:
        if match := _CLAUSE_IN.fullmatch(clause):
            name, low, high = match.groups()
            if name == "event_time":
                try:
                    _time(low), _time(high)
                except ValueError:
                    raise LogError(f"filter: {clause!r}: times are ISO 8601", code="filter_invalid") from None
            ranges.append((name, low, high))
        elif match := _CLAUSE_EQ.fullmatch(clause):
            equal.append((match.group(1), match.group(2)))
        else:
            raise LogError(f"filter: cannot read {clause!r} (use name=value or name in [A,B), joined by AND)",
                           status=422, code="filter_invalid")
    return EventFilter(text=text, equal=tuple(equal), ranges=tuple(ranges))


@dataclass(frozen=True)
class ExportPlan:
    """What an export discloses and proves, before it is packaged."""

    records: list[dict[str, Any]]
    checkpoint: LogCheckpoint
    anchored: LogCheckpoint
    consistency: list[bytes]
    aggregates: dict[str, Any] | None


def plan_export(session: Session, log: EventLog, event_filter: EventFilter, fields: Sequence[str] | None,
                *, anchored: set[str], with_aggregates: bool = False) -> ExportPlan:
    """Select events and build their proofs against the smallest checkpoint holding them all, and the
    consistency proof to the latest anchored checkpoint (``anchored``: evidence ids sealed)."""
    checkpoints = session.exec(select(LogCheckpoint).where(LogCheckpoint.log_id == log.id)
                               .order_by(col(LogCheckpoint.size))).all()
    sealed = [c for c in checkpoints if c.evidence_id in anchored]
    if not sealed:
        raise LogError(f"log {log.name} has no anchored checkpoint yet: run the sequencer and seal first",
                       status=409, code="log_not_anchored")
    last = sealed[-1]
    in_tree = (LogEvent.log_id == log.id, col(LogEvent.leaf_index) < last.size)
    leaves = [bytes.fromhex(leaf) for leaf in session.exec(
        select(LogEvent.leaf).where(*in_tree).order_by(col(LogEvent.leaf_index))).all()]
    # Bodies are streamed and only the matches kept: a log of millions is never all in memory.
    # A time range is selected by the index; every clause is then checked on the event itself.
    by_time = [clause for low, high in event_filter.time_ranges
               for clause in (col(LogEvent.event_time) >= low, col(LogEvent.event_time) < high)]
    chosen: list[tuple[int, dict[str, Any], bytes]] = []
    for index, body, salt_hex in session.exec(select(LogEvent.leaf_index, LogEvent.body, LogEvent.salt)
                                              .where(*in_tree, *by_time).order_by(col(LogEvent.leaf_index))
                                              .execution_options(yield_per=10_000)):
        event = json.loads(body)
        if event_filter.matches(event):
            chosen.append((index, event, bytes.fromhex(salt_hex)))
    if not chosen:
        raise LogError("no event of the anchored log matches the filter", status=404, code="no_events")
    highest = chosen[-1][0]
    checkpoint = next(c for c in checkpoints if c.size > highest)
    paths = merkle.inclusion_proofs(leaves[:checkpoint.size], [index for index, _, _ in chosen])
    consistency = [] if checkpoint.size == last.size else merkle.consistency_proof(leaves, checkpoint.size)
    records = []
    for (index, event, salt), path in zip(chosen, paths, strict=True):
        record = disclose(event, salt, index, fields)
        record["inclusion"] = [h.hex() for h in path]
        records.append(record)
    aggregates = None
    if with_aggregates:
        shown = [{k: v["value"] for k, v in r["disclosed"].items()} for r in records]
        # Counted only by what is disclosed: a table over a withheld field could not be recomputed.
        tables = [([name], "hour") for name in ("device_id", "ip")
                  if fields is None or (name in fields and "event_time" in fields)]
        if not tables:
            raise LogError("aggregates count per hour per device_id or ip: disclose event_time and one of them",
                           code="aggregates_undisclosed")
        aggregates = aggregates_document(shown, tables)
    return ExportPlan(records=records, checkpoint=checkpoint, anchored=last, consistency=consistency,
                      aggregates=aggregates)
