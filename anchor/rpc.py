"""JSON-RPC to an EVM node, with retry and backoff, and the errors of anchoring.

Everything anchoring asks a node goes through ``RpcClient``: transport failures and 5xx/429 answers
are retried with backoff, anything else becomes a clear ``ChainUnavailable`` or ``RpcError``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import requests
from web3 import Web3
from web3.types import RPCEndpoint

from verifier.errors import TiezhengError

log = logging.getLogger(__name__)

RPC_TIMEOUT_SECONDS = 10.0
RPC_ATTEMPTS = 4
#: Backoff before RPC retry n (0-based) is ``backoff * 2**n``, capped.
RPC_BACKOFF_SECONDS = 0.5
RPC_BACKOFF_MAX_SECONDS = 8.0
RETRYABLE_HTTP_STATUS = frozenset({429, 500, 502, 503, 504})


class AnchorError(TiezhengError):
    """Base of the errors raised while anchoring."""


class ChainUnavailable(AnchorError):
    """The RPC endpoint could not be reached, or kept failing, after every retry."""


class AnchorFailed(AnchorError):
    """The node refused the anchor, the transaction failed, or the nonce went to another transaction."""


class AnchorTimeout(AnchorError):
    """Neither the transaction nor its replacement(s) were mined in time. They may still be."""

    def __init__(self, message: str, tx_hashes: list[str]) -> None:
        super().__init__(message)
        self.tx_hashes = tx_hashes


class AnchorReorged(AnchorError):
    """The anchor block left the canonical chain before it was confirmed.

    The same signed transaction may be mined again in another block: ``resume_anchor`` with it
    finds out; if its nonce went elsewhere, anchor the batch again.
    """

    def __init__(self, tx_hash: str, block_number: int, expected: str, found: str | None) -> None:
        super().__init__(
            f"anchor {tx_hash} was in block {block_number} ({expected}); that height now holds "
            f"{found or 'nothing'}: the chain reorganised, anchor again"
        )
        self.tx_hash = tx_hash
        self.block_number = block_number
        self.expected_block_hash = expected
        self.found_block_hash = found


class RpcError(AnchorError):
    """The node answered a JSON-RPC call with an error object."""

    def __init__(self, method: str, error: Any) -> None:
        message = error.get("message", error) if isinstance(error, dict) else error
        super().__init__(f"{method}: {message}")
        self.method = method
        self.message = str(message)


def connect(rpc_url: str) -> Web3:
    """Return a Web3 for ``rpc_url`` whose provider does not retry by itself (we do, with backoff)."""
    provider = Web3.HTTPProvider(
        rpc_url, request_kwargs={"timeout": RPC_TIMEOUT_SECONDS}, exception_retry_configuration=None
    )
    return Web3(provider)


class RpcClient:
    """JSON-RPC calls with retry and backoff on transport failures."""

    def __init__(self, w3_or_rpc_url: Web3 | str, *, attempts: int, backoff: float) -> None:
        self.w3 = connect(w3_or_rpc_url) if isinstance(w3_or_rpc_url, str) else w3_or_rpc_url
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self.endpoint = str(getattr(self.w3.provider, "endpoint_uri", None) or self.w3.provider)

    def __call__(self, method: str, params: list[Any]) -> Any:
        response = self._retrying(method, lambda: self.w3.provider.make_request(RPCEndpoint(method), params))
        if "error" in response and response["error"] is not None:
            raise RpcError(method, response["error"])
        return response.get("result")

    def many(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        """Results of several calls, as one JSON-RPC batch when the provider and node allow it."""
        batch = getattr(self.w3.provider, "make_batch_request", None)
        if batch is not None:
            requests_ = [(RPCEndpoint(method), params) for method, params in calls]
            try:
                responses = self._retrying("batch", lambda: batch(requests_))
            except ChainUnavailable:
                raise
            except Exception as exc:  # some nodes and proxies reject batches; fall back below
                log.debug("JSON-RPC batch refused (%s); calling one by one", exc)
            else:
                complete = isinstance(responses, list) and len(responses) == len(calls)
                if complete and all(r.get("error") is None for r in responses):
                    return [r.get("result") for r in responses]
        return [self(method, params) for method, params in calls]

    def _retrying(self, method: str, call: Callable[[], Any]) -> Any:
        problem = "no attempt made"
        for attempt in range(self.attempts):
            if attempt:
                delay = min(self.backoff * 2 ** (attempt - 1), RPC_BACKOFF_MAX_SECONDS)
                log.info("RPC %s %s: %s; retrying in %.2f s", self.endpoint, method, problem, delay)
                time.sleep(delay)
            try:
                return call()
            except requests.HTTPError as exc:
                status = exc.response.status_code if exc.response is not None else None
                if status not in RETRYABLE_HTTP_STATUS:
                    raise ChainUnavailable(f"RPC {self.endpoint} refused {method}: HTTP {status}") from exc
                problem = f"HTTP {status}"
            except (requests.ConnectionError, requests.Timeout, OSError) as exc:
                problem = f"{type(exc).__name__}: {exc}"
            except ValueError as exc:
                # The endpoint answered, but not with JSON-RPC (a web page, a proxy's error page).
                raise ChainUnavailable(f"RPC {self.endpoint} did not answer {method} with JSON-RPC: {exc}") from exc
        raise ChainUnavailable(f"RPC {self.endpoint} unavailable after {self.attempts} attempt(s): {problem}")
