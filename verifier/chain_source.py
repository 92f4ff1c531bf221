"""Where H5 gets chain facts: a small protocol with an RPC and an offline implementation.

Online verification asks one question of any node: which block hash is canonical at a height, and
how high is the head. Everything else comes from the package's offline proof.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from verifier.errors import TiezhengError

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
