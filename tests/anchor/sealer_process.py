"""A sealer in its own process, for crash tests: ``python -m tests.anchor.sealer_process DATA RPC [KILL_AT]``.

It serves the data dir's development TSA, seals everything pending once, and prints the sealed
batch ids as JSON. RPC is a URL of the devnet (chain 31337), or several ``CHAIN_ID=URL`` joined by
commas to anchor on each. With KILL_AT it SIGKILLs itself right after the sealer commits that state
(``batched``, ``timestamped``, ``anchoring``, ``confirmed``, or per chain ``signed:<id>``,
``confirmed:<id>``), after the first package is rewritten (``attaching``) or after the first slice
of items is committed attached (``marked``): a real kill, at a known point. The store is the data
dir's SQLite file, or the database ``$TIEZHENG_TEST_SEAL_DB`` names.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from cryptography import x509

import anchor.attach as attach_module
from anchor.devnet import DEV_OPERATOR_KEY, DEVNET_CHAIN_ID
from anchor.sealer import ChainEndpoint, Sealer, SealerConfig, TSAEndpoint
from anchor.store import make_engine, sqlite_url
from anchor.tsa_server import DevTSA


def chains(spec: str) -> tuple[ChainEndpoint, ...]:
    if "=" not in spec:
        return (ChainEndpoint(rpc_url=spec, chain_id=DEVNET_CHAIN_ID, private_key=DEV_OPERATOR_KEY),)
    endpoints = []
    for item in spec.split(","):
        chain_id, _, url = item.partition("=")
        endpoints.append(ChainEndpoint(rpc_url=url, chain_id=int(chain_id), private_key=DEV_OPERATOR_KEY))
    return tuple(endpoints)


def main(data_dir: Path, rpc_url: str, kill_at: str | None) -> None:
    def kill() -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    def on_transition(_batch: str, state: str) -> None:
        if state == kill_at:
            kill()

    if kill_at == "attaching":
        real_attach = attach_module.attach

        def attach_then_die(*args: Any, **kwargs: Any) -> bool:
            real_attach(*args, **kwargs)
            kill()
            return True

        attach_module.attach = attach_then_die  # type: ignore[assignment]
    if kill_at == "marked":
        real_mark = attach_module._mark_attached

        def mark_then_die(*args: Any, **kwargs: Any) -> None:
            real_mark(*args, **kwargs)
            kill()

        attach_module._mark_attached = mark_then_die

    tsa = DevTSA(data_dir)
    with tsa.serve() as server:
        config = SealerConfig(
            tsas=(TSAEndpoint(name="dev", url=server.url,
                              roots=tuple(x509.load_pem_x509_certificates(tsa.ca_certificate_pem())),
                              chain_pem=tsa.chain_pem()),),
            chains=chains(rpc_url))
        database = os.environ.get("TIEZHENG_TEST_SEAL_DB") or sqlite_url(data_dir / "tiezheng.db")
        sealer = Sealer(make_engine(database), config, on_transition=on_transition)
        print(json.dumps(sealer.run_once(force=True)))


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None)
