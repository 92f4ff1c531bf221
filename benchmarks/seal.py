"""Sealing throughput: one TSA round trip and one anchor transaction per batch per chain, whatever its size.

For batches of 1k, 100k and 1M random fingerprints, on a fresh SQLite store each, against the real
development TSA over HTTP and ``--chains`` real anvil devnets (default 2, different chain ids, each
anchoring every batch), it measures:

* accept: committing the pending rows (bulk, as an ingest path would);
* seal: close the batch (Merkle tree, assignments), time-stamp, anchor and confirm, compute every
  inclusion proof and mark every item sealed;
* items sealed per second, gas per item on each chain, and proof bytes per item;
* transactions sent on each chain (the operator's nonce before and after): one per batch.

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
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

from cryptography import x509
from sqlalchemy import insert
from sqlmodel import Session

from anchor.anchors import anchor_rows
from anchor.devnet import DEV_OPERATOR_ADDRESS, DEV_OPERATOR_KEY, Devnet, rpc_call
from anchor.ethereum import verifiable_part
from anchor.sealer import ChainEndpoint, Sealer, SealerConfig, TSAEndpoint
from anchor.store import SealBatch, SealItem, make_engine, sqlite_url
from anchor.tsa_server import DevTSA
from evidence.operator_key import load_or_create
from evidence.upload import build_upload
from verifier.canonical import canonical_json
from verifier.package import Requester
from verifier.proof import InclusionProof

SIZES = (1_000, 100_000, 1_000_000)


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


def bench_batch(n: int, folder: Path, tsa: DevTSA, tsa_url: str, chains: tuple[ChainEndpoint, ...]) -> dict[str, Any]:
    engine = make_engine(sqlite_url(folder / f"seal-{n}.db"))
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
            "token_bytes": token_bytes, "inclusion_proof_json_bytes": proof_json_bytes}


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
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    with tempfile.TemporaryDirectory(prefix="tiezheng-bench-") as workdir, contextlib.ExitStack() as stack:
        folder = Path(workdir)
        tsa = DevTSA(folder)
        server = stack.enter_context(tsa.serve())
        devnets = [Devnet(folder, die_with_parent=True), Devnet.second(folder, die_with_parent=True)][:args.chains]
        chains = tuple(ChainEndpoint(stack.enter_context(d).rpc_url, d.chain_id, DEV_OPERATOR_KEY) for d in devnets)
        batches = [bench_batch(n, folder, tsa, server.url, chains) for n in sizes]
        packages = bench_packages(args.packages, folder, tsa, server.url, chains) if args.packages else {}

    print(f"Sealing benchmark on Python {platform.python_version()}, {os.cpu_count()} CPUs "
          f"(dev TSA over HTTP, {len(chains)} anvil devnet(s), SQLite)\n")
    print(f"{'batch size':>12} {'accept s':>9} {'seal s':>8} {'items/s':>10} {'proof.json B':>13}  "
          "per chain: txs, gas/item")
    for b in batches:
        per_chain = "  ".join(f"{cid}: {c['txs']} tx, {c['gas_per_item']:.4f}" for cid, c in b["chains"].items())
        print(f"{b['n']:>12,} {b['accept_s']:>9.2f} {b['seal_s']:>8.2f} {b['items_per_s']:>10,} "
              f"{b['inclusion_proof_json_bytes']:>13,}  {per_chain}")
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
