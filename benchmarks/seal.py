"""Sealing throughput: one TSA round trip and one anchor transaction per batch per chain, whatever its size.

For batches of 1k, 100k and 1M random fingerprints, on a fresh store each (SQLite, and PostgreSQL in
a scratch database created and dropped by the run), against the real development TSA over HTTP and
``--chains`` real anvil devnets (default 2, different chain ids, each anchoring every batch), it
measures:

* accept: committing the pending rows (bulk, as an ingest path would);
* seal: close the batch (Merkle tree, assignments), time-stamp, anchor and confirm, compute every
  inclusion proof and mark every item sealed;
* items sealed per second, gas per item on each chain, and proof bytes per item;
* transactions sent on each chain (the operator's nonce before and after): one per batch;
* on PostgreSQL, the floor of the same batch in the same run: the Merkle root and every inclusion
  proof, plus one ``COPY`` of the rows the sealer writes (id, state, batch_id, leaf_index, sealed_at)
  into a table keyed by id. Sealing is reported as a multiple of it (target: at most 2.5x at 100k),
  and as a ratio to SQLite's items per second.

Rewriting package files is measured apart, on real upload packages, because it scales with disk
speed and not with the batch: ``--packages`` of them (default 200) are sealed with files attached.
Prints a table and, last, one line of JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import secrets
import tempfile
import time
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from sqlalchemy import insert
from sqlalchemy.engine import Engine
from sqlmodel import Session

from anchor.anchors import anchor_rows
from anchor.devnet import DEV_OPERATOR_ADDRESS, DEV_OPERATOR_KEY, Devnet, rpc_call
from anchor.ethereum import verifiable_part
from anchor.sealer import ChainEndpoint, Sealer, SealerConfig, TSAEndpoint
from anchor.store import ItemState, SealBatch, SealItem, make_engine, sqlite_url
from anchor.tsa_server import DevTSA
from evidence.operator_key import load_or_create
from evidence.upload import build_upload
from verifier import merkle
from verifier.canonical import canonical_json
from verifier.package import Requester
from verifier.proof import InclusionProof

SIZES = (1_000, 100_000, 1_000_000)
BACKENDS = ("sqlite", "postgresql")
#: Where the scratch databases are created (and dropped): a server the benchmark may write to.
POSTGRES_ADMIN_URL = os.environ.get("TIEZHENG_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
#: The target: a 100k batch seals on PostgreSQL within this multiple of its floor.
FLOOR_TARGET = 2.5


def _config(tsa: DevTSA, tsa_url: str, chains: tuple[ChainEndpoint, ...], *, attach: bool,
            max_items: int) -> SealerConfig:
    return SealerConfig(
        tsas=(TSAEndpoint("dev TSA", tsa_url, tuple(x509.load_pem_x509_certificates(tsa.ca_certificate_pem())),
                          tsa.chain_pem()),),
        chains=chains, min_chains=len(chains), batch_max_items=max_items, attach_packages=attach)


def sent(chains: tuple[ChainEndpoint, ...]) -> dict[int, int]:
    """Transactions the operator has sent on each chain (its nonce)."""
    return {c.chain_id: int(rpc_call(c.rpc_url, "eth_getTransactionCount", [DEV_OPERATOR_ADDRESS, "pending"]), 16)
            for c in chains}


@contextlib.contextmanager
def scratch_postgres(admin_url: str) -> Any:
    """A fresh PostgreSQL database for one batch: yields its SQLAlchemy URL, drops it afterwards."""
    import psycopg

    name = f"tz_bench_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1) + f"/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def postgres_reachable(admin_url: str) -> str | None:
    """None when the server answers, else why not (the PostgreSQL rows are then left out)."""
    import psycopg

    try:
        with psycopg.connect(admin_url, connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return str(exc).strip().splitlines()[0]


def postgres_floor(engine: Engine, n: int) -> dict[str, float]:
    """The least any sealer can do for n items: root and all proofs, and one COPY of the rows it writes."""
    fingerprints = [os.urandom(32) for _ in range(n)]
    sealed_at = datetime.now(UTC)
    pool_connection = engine.raw_connection()
    try:
        connection = pool_connection.driver_connection  # psycopg's own, for its COPY
        assert connection is not None
        with connection.cursor() as cursor:
            cursor.execute("CREATE TABLE seal_floor (id BIGINT PRIMARY KEY, state VARCHAR(16), "
                           "batch_id VARCHAR(40), leaf_index INTEGER, sealed_at TIMESTAMP)")
        connection.commit()
        started = time.perf_counter()
        leaves = merkle.leaf_hashes(fingerprints)
        merkle.root(leaves)
        merkle.all_inclusion_proofs(leaves)
        merkle_s = time.perf_counter() - started
        copy_started = time.perf_counter()
        with connection.cursor() as cursor, cursor.copy(
                "COPY seal_floor (id, state, batch_id, leaf_index, sealed_at) FROM STDIN") as copy:
            for index in range(n):
                copy.write_row((index + 1, ItemState.ATTACHED.value, "b-20260101T000000-00000000", index, sealed_at))
        connection.commit()
        copy_s = time.perf_counter() - copy_started
    finally:
        pool_connection.close()
    return {"merkle_s": round(merkle_s, 3), "copy_s": round(copy_s, 3), "floor_s": round(merkle_s + copy_s, 3)}


def bench_batch(n: int, url: str, tsa: DevTSA, tsa_url: str, chains: tuple[ChainEndpoint, ...]) -> dict[str, Any]:
    engine = make_engine(url)
    rows = [{"evidence_id": f"bench-{i}", "fingerprint": os.urandom(32).hex(), "package_path": "",
             "state": "pending"} for i in range(n)]
    started = time.perf_counter()
    with Session(engine) as session:
        session.connection().execute(insert(SealItem), rows)
        session.commit()
    accept_s = time.perf_counter() - started
    del rows
    sealer = Sealer(engine, _config(tsa, tsa_url, chains, attach=False, max_items=n))
    nonces = sent(chains)
    started = time.perf_counter()
    [batch_id] = sealer.run_once(force=True)
    seal_s = time.perf_counter() - started
    txs = {chain_id: count - nonces[chain_id] for chain_id, count in sent(chains).items()}
    records = {row.chain_id: json.loads(row.anchor_record) for row in anchor_rows(engine, batch_id)
               if row.anchor_record}
    with Session(engine) as session:
        batch = session.get(SealBatch, batch_id)
        assert batch is not None and batch.anchor_record and batch.timestamps
        anchor = json.loads(batch.anchor_record)
        token_bytes = sum(len(t["token"]) * 3 // 4 for t in json.loads(batch.timestamps))
    # proof.json is fixed-width hex: its size follows from the path length, ceil(log2 n) for the first leaf.
    sample = InclusionProof(batch_id=batch_id, leaf=bytes(32), leaf_index=0, tree_size=n,
                            inclusion_path=(bytes(32),) * (n - 1).bit_length(), root=bytes.fromhex(batch.root))
    proof_json_bytes = len(canonical_json(sample.to_json()))
    return {"n": n, "accept_s": round(accept_s, 3), "seal_s": round(seal_s, 3),
            "items_per_s": round(n / seal_s), "gas_used": anchor["node_reported"]["gas_used"],
            "gas_per_item": anchor["node_reported"]["gas_used"] / n,
            "chains": {str(chain_id): {"txs": txs[chain_id], "gas_used": r["node_reported"]["gas_used"],
                                       "gas_per_item": r["node_reported"]["gas_used"] / n}
                       for chain_id, r in sorted(records.items())},
            "anchor_json_bytes": len(canonical_json(verifiable_part(anchor))),
            "token_bytes": token_bytes, "inclusion_proof_json_bytes": proof_json_bytes,
            "backend": engine.dialect.name, "engine": engine}


def bench_backend(backend: str, n: int, folder: Path, tsa: DevTSA, tsa_url: str,
                  chains: tuple[ChainEndpoint, ...], admin_url: str, *, rounds: int = 1) -> dict[str, Any]:
    """The median of ``rounds`` batches, each on a fresh store (PostgreSQL: median seal/floor ratio)."""
    results = [bench_round(backend, n, folder / f"round-{r}", tsa, tsa_url, chains, admin_url)
               for r in range(rounds)]
    key = "seal_over_floor" if backend == "postgresql" else "seal_s"
    median = sorted(results, key=lambda r: float(r[key]))[len(results) // 2]
    return {**median, "rounds": rounds, f"{key}_per_round": [r[key] for r in results]}


def bench_round(backend: str, n: int, folder: Path, tsa: DevTSA, tsa_url: str,
                chains: tuple[ChainEndpoint, ...], admin_url: str) -> dict[str, Any]:
    """One batch on a fresh store of ``backend``; on PostgreSQL with its floor, measured right after."""
    if backend == "sqlite":
        result = bench_batch(n, sqlite_url(folder / f"seal-{n}.db"), tsa, tsa_url, chains)
        result.pop("engine").dispose()
        return result
    with scratch_postgres(admin_url) as url:
        result = bench_batch(n, url, tsa, tsa_url, chains)
        engine = result.pop("engine")
        try:
            result.update(postgres_floor(engine, n))
        finally:
            engine.dispose()
    result["seal_over_floor"] = round(result["seal_s"] / result["floor_s"], 2)
    return result


def bench_packages(count: int, folder: Path, tsa: DevTSA, tsa_url: str,
                   chains: tuple[ChainEndpoint, ...]) -> dict[str, Any]:
    operator = load_or_create(folder / "keys" / "operator.key")
    engine = make_engine(sqlite_url(folder / "packages.db"))
    sealer = Sealer(engine, _config(tsa, tsa_url, chains, attach=True, max_items=count))
    source = folder / "exhibit.txt"
    paths = []
    for i in range(count):
        source.write_bytes(f"exhibit {i}\n".encode() * 64)
        built = build_upload([source], packages_dir=folder / "packages", operator=operator,
                             requester=Requester("bench", "bench@example"))
        sealer.accept(built.evidence_id, built.fingerprint, built.path)
        paths.append(built.path)
    started = time.perf_counter()
    sealer.run_once(force=True)
    seal_s = time.perf_counter() - started
    with zipfile.ZipFile(paths[0]) as archive:
        proof_bytes = sum(i.file_size for i in archive.infolist() if i.filename.startswith("proof/"))
    return {"packages": count, "seal_with_attach_s": round(seal_s, 3), "packages_per_s": round(count / seal_s, 1),
            "proof_dir_bytes_per_package": proof_bytes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="comma-separated batch sizes")
    parser.add_argument("--packages", type=int, default=200, help="real packages to seal with files attached")
    parser.add_argument("--chains", type=int, choices=(1, 2), default=2,
                        help="devnets to anchor on (2: chain ids 31337 and 31338, both required)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="batches per size and backend, each on a fresh store; the median is reported")
    parser.add_argument("--backends", default=",".join(BACKENDS), help="comma-separated: sqlite, postgresql")
    parser.add_argument("--postgres", default=POSTGRES_ADMIN_URL,
                        help="PostgreSQL server URL whose user may create databases (scratch ones, dropped after)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    backends = [b for b in args.backends.split(",") if b]
    unknown = set(backends) - set(BACKENDS)
    if unknown:
        parser.error(f"unknown backend(s): {', '.join(sorted(unknown))}")
    notes = []
    if "postgresql" in backends and (why := postgres_reachable(args.postgres)) is not None:
        backends.remove("postgresql")
        notes.append(f"PostgreSQL left out: {args.postgres.rsplit('@', 1)[-1]} does not answer ({why})")
    with tempfile.TemporaryDirectory(prefix="tiezheng-bench-") as workdir, contextlib.ExitStack() as stack:
        folder = Path(workdir)
        tsa = DevTSA(folder)
        server = stack.enter_context(tsa.serve())
        devnets = [Devnet(folder, die_with_parent=True), Devnet.second(folder, die_with_parent=True)][:args.chains]
        chains = tuple(ChainEndpoint(stack.enter_context(d).rpc_url, d.chain_id, DEV_OPERATOR_KEY) for d in devnets)
        batches = [bench_backend(backend, n, folder, tsa, server.url, chains, args.postgres, rounds=args.rounds)
                   for n in sizes for backend in backends]
        packages = bench_packages(args.packages, folder, tsa, server.url, chains) if args.packages else {}

    print(f"Sealing benchmark on Python {platform.python_version()}, {os.cpu_count()} CPUs "
          f"(dev TSA over HTTP, {len(chains)} anvil devnet(s), {', '.join(backends)})\n")
    for note in notes:
        print(note)
    print(f"{'backend':>10} {'batch size':>12} {'accept s':>9} {'seal s':>8} {'items/s':>10} {'proof.json B':>13}  "
          "per chain: txs, gas/item")
    for b in batches:
        per_chain = "  ".join(f"{cid}: {c['txs']} tx, {c['gas_per_item']:.4f}" for cid, c in b["chains"].items())
        print(f"{b['backend']:>10} {b['n']:>12,} {b['accept_s']:>9.2f} {b['seal_s']:>8.2f} {b['items_per_s']:>10,} "
              f"{b['inclusion_proof_json_bytes']:>13,}  {per_chain}")
    sqlite_rate = {b["n"]: b["items_per_s"] for b in batches if b["backend"] == "sqlite"}
    floors = [b for b in batches if b["backend"] == "postgresql"]
    if floors:
        print(f"\nPostgreSQL against its floor (root + all proofs + one COPY of the rows written), same run, "
              f"median of {args.rounds} round(s); target at 100k: seal <= {FLOOR_TARGET}x floor")
        print(f"{'batch size':>12} {'merkle s':>9} {'COPY s':>8} {'floor s':>8} {'seal s':>8} {'seal/floor':>11} "
              f"{'PG/SQLite items/s':>18}")
        for b in floors:
            versus_sqlite = f"{b['items_per_s'] / sqlite_rate[b['n']]:.2f}" if b["n"] in sqlite_rate else "-"
            print(f"{b['n']:>12,} {b['merkle_s']:>9.3f} {b['copy_s']:>8.3f} {b['floor_s']:>8.3f} {b['seal_s']:>8.3f} "
                  f"{b['seal_over_floor']:>10.2f}x {versus_sqlite:>18}")
    if packages:
        print(f"\n{packages['packages']} real packages sealed with proof files attached: "
              f"{packages['seal_with_attach_s']} s ({packages['packages_per_s']} packages/s); "
              f"proof/ adds {packages['proof_dir_bytes_per_package']:,} bytes to each package")
    if batches:
        first = batches[0]
        print(f"one anchor tx per batch per chain: {first['gas_used']:,} gas, whatever the size; RFC 3161 token "
              f"{first['token_bytes']:,} bytes, anchor.json {first['anchor_json_bytes']:,} bytes, shared by the batch")
    print(json.dumps({"python": platform.python_version(), "cpus": os.cpu_count(), "batches": batches,
                      "packages": packages}))


if __name__ == "__main__":
    main()
