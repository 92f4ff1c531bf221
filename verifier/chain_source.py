"""Where H5 gets chain facts: a small protocol with an RPC and an offline implementation.

Online verification asks one question of any node: which block hash is canonical at a height, and
how high is the head. Everything else comes from the package's offline proof. A package anchored on
several chains needs one node per chain: ``ChainSources`` says which node answers for which chain.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from typing import Any, Protocol

from verifier.errors import InvalidInput, TiezhengError

RPC_TIMEOUT_SECONDS = 15.0
MAX_RPC_RESPONSE_BYTES = 1 << 20


class ChainUnreachable(TiezhengError):
    """The RPC node could not be asked."""


class ChainSource(Protocol):
    def chain_id(self) -> int: ...

    def head(self) -> int: ...

    def block_hash(self, number: int) -> str | None: ...


class RpcChainSource:
    """Chain facts from any Ethereum JSON-RPC endpoint (stdlib HTTP only)."""

    def __init__(self, url: str, *, timeout: float = RPC_TIMEOUT_SECONDS) -> None:
        if not url.startswith(("http://", "https://")):
            raise ChainUnreachable(f"RPC URL must be http(s): {url}")
        self.url = url
        self.timeout = timeout

    def _call(self, method: str, params: list[Any]) -> Any:
        import urllib.error  # here, not above: offline runs, the default, need no HTTP stack
        import urllib.request

        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
        request = urllib.request.Request(  # noqa: S310 - the scheme was checked in __init__
            self.url, data=body, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:  # noqa: S310 - scheme checked
                payload = json.loads(answer.read(MAX_RPC_RESPONSE_BYTES))
        except (OSError, urllib.error.URLError, ValueError) as exc:
            raise ChainUnreachable(f"RPC {self.url} did not answer {method}: {exc}") from exc
        if not isinstance(payload, dict) or "error" in payload:
            problem = payload.get("error") if isinstance(payload, dict) else payload
            raise ChainUnreachable(f"RPC {self.url} refused {method}: {problem}")
        return payload.get("result")

    def chain_id(self) -> int:
        return int(self._call("eth_chainId", []), 16)

    def head(self) -> int:
        return int(self._call("eth_blockNumber", []), 16)

    def block_hash(self, number: int) -> str | None:
        block = self._call("eth_getBlockByNumber", [hex(number), False])
        return str(block["hash"]).lower() if isinstance(block, dict) and block.get("hash") else None


class ChainSources:
    """The node to ask about each chain: one per chain id, and at most one for whatever it serves.

    ``tiezheng-verify --rpc 31337=URL --rpc 11155111=URL`` names a node per chain; a bare ``--rpc URL``
    (the one-chain form) answers for the chain it serves. An anchor on a chain no node answers for
    is left to its offline proof.
    """

    def __init__(self, by_chain: Mapping[int, ChainSource] | None = None, default: ChainSource | None = None) -> None:
        self.by_chain = dict(by_chain or {})
        self.default = default
        self._default_serves: int | None = None

    @classmethod
    def parse(cls, values: Sequence[str]) -> ChainSources:
        """Build from ``URL`` or ``CHAIN_ID=URL`` strings. Raises InvalidInput when they clash."""
        by_chain: dict[int, ChainSource] = {}
        default: ChainSource | None = None
        for value in values:
            prefix, equals, url = value.partition("=")
            if equals and prefix.strip().isdigit():
                chain_id = int(prefix)
                if chain_id in by_chain:
                    raise InvalidInput(f"--rpc names chain {chain_id} twice")
                by_chain[chain_id] = _rpc(url.strip())
            elif default is None:
                default = _rpc(value.strip())
            else:
                raise InvalidInput("give at most one bare --rpc URL; name the others as CHAIN_ID=URL")
        return cls(by_chain, default)

    def for_chain(self, chain_id: int, anchored: Collection[int]) -> ChainSource | None:
        """The node for an anchor on ``chain_id`` of a package anchored on ``anchored`` chains, or None.

        A bare node answers for the chain it serves. When it serves none of the package's chains it
        is returned anyway, so the check says which chain it serves instead of passing in silence.
        """
        if chain_id in self.by_chain:
            return self.by_chain[chain_id]
        if self.default is None:
            return None
        if self._default_serves is None:
            try:
                self._default_serves = self.default.chain_id()
            except TiezhengError:
                return self.default  # the check reports the node's failure
        served = self._default_serves
        if served == chain_id or served not in anchored:
            return self.default
        return None


def _rpc(url: str) -> RpcChainSource:
    try:
        return RpcChainSource(url)
    except ChainUnreachable as exc:
        raise InvalidInput(str(exc)) from exc
