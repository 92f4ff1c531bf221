"""The chains the sealer anchors on: the embedded anvil devnets, or the configured real chains."""

from __future__ import annotations

from typing import Any

from anchor.devnet import Devnet, rpc_call
from api.service.errors import ServiceError
from api.service.settings import Settings


def devnet(settings: Settings, *, second: bool = False) -> Devnet:
    """The data dir's devnet (chain 31337), or its second one (31338, state in DIR/chain2)."""
    return Devnet.second(settings.root) if second else Devnet(settings.root)


def chain_status(settings: Settings, *, second: bool = False) -> dict[str, Any]:
    """``{"rpc_url", "chain_id", "block"}`` of the first chain (or the second); rpc_url None: devnet down.

    Raises ServiceError when the second chain is asked for and only one is configured.
    """
    if settings.uses_devnet:
        state = devnet(settings, second=second).status()
        return {"rpc_url": state.rpc_url, "chain_id": state.chain_id, "block": state.block}
    chains = settings.anchor_chains()
    if second and len(chains) < 2:
        raise ServiceError("only one chain is configured")
    url = chains[1 if second else 0].rpc_url
    return {"rpc_url": url, "chain_id": int(rpc_call(url, "eth_chainId"), 16),
            "block": int(rpc_call(url, "eth_blockNumber"), 16)}
