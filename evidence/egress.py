"""Capture through a chosen egress: an HTTP proxy the operator configured, named for its region.

Some platforms block data-centre addresses, so a capture may name an egress (``--egress NAME``). The
operator configures each one in the environment as ``TIEZHENG_EGRESS_<NAME>=http://[user:pass@]host:port``
(NAME upper-cased, ``-`` written ``_``). A requester can only choose among the configured names.

How the traffic goes through it, and why the evidence stays byte-exact
----------------------------------------------------------------------
Every connection of the capture to the target (the raw fetch's and the recorder's upstream ones) is
an HTTP ``CONNECT`` tunnel through the proxy to the *address the capture itself resolved and the SSRF
policy checked* (``CONNECT 203.0.113.5:443``), never to a host name the proxy would resolve. Inside
the tunnel the capture speaks to the origin as it would directly: its own TLS handshake, verified
against the host name, so the proxy relays bytes it cannot read or change, and the WARC keeps the
exchange exactly as the origin sent it. What the capture cannot see is the proxy's own outgoing
address, nor whether the proxy honoured the address asked for (the origin's TLS certificate, verified
for the host, is the check on that for HTTPS); the manifest says so.

The proxy's URL is recorded without its credentials; the credentials never reach a log or a package.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from evidence.capture_errors import CaptureError

ENV_PREFIX = "TIEZHENG_EGRESS_"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")
MAX_CONNECT_REPLY_BYTES = 16 << 10
CONNECT_TIMEOUT_SECONDS = 10.0


def env_name(name: str) -> str:
    """The environment variable that configures egress ``name``."""
    return ENV_PREFIX + name.upper().replace("-", "_")


@dataclass(frozen=True)
class EgressProxy:
    """One configured egress: its name, where the proxy listens, and its credentials (never recorded)."""

    name: str
    host: str
    port: int
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)

    @property
    def public_url(self) -> str:
        """The proxy's URL without credentials: what the manifest and logs show."""
        shown = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{shown}:{self.port}"

    def record(self) -> dict[str, Any]:
        return {"name": self.name, "url": self.public_url, "kind": "http-connect",
                "authenticated": self.username is not None,
                "how": "every connection to the target is a CONNECT tunnel through this proxy to the address the "
                       "capture resolved and checked; TLS runs end to end inside the tunnel",
                "not_seen": "the proxy's own outgoing address, and whether it connected to the address asked for "
                            "(for HTTPS the origin's verified certificate vouches for the host)"}

    def connect_request(self, ip: str, port: int) -> bytes:
        """The CONNECT request for ``ip:port``, with Proxy-Authorization when the proxy has credentials."""
        authority = f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"
        lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}"]
        if self.username is not None:
            token = base64.b64encode(f"{self.username}:{self.password or ''}".encode()).decode()
            lines.append(f"Proxy-Authorization: Basic {token}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def parse_proxy_url(name: str, url: str) -> EgressProxy:
    """An EgressProxy from ``http://[user:pass@]host:port``. Raises CaptureError (without the credentials)."""
    parts = urlsplit(url.strip())
    if parts.scheme != "http" or not parts.hostname or parts.path not in ("", "/") or parts.query:
        raise CaptureError(f"egress {name!r}: {env_name(name)} must be http://host:port")
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is None:
        raise CaptureError(f"egress {name!r}: {env_name(name)} must name the proxy's port (http://host:port)")
    username = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    return EgressProxy(name=name, host=parts.hostname, port=port, username=username, password=password)


def configured_egress(name: str, environ: Mapping[str, str] | None = None) -> EgressProxy:
    """The egress configured as ``name``. Raises CaptureError naming the variable when it is not configured."""
    if not NAME_PATTERN.match(name):
        raise CaptureError("an egress name is 1 to 40 letters, digits, '-' or '_'")
    env = os.environ if environ is None else environ
    url = env.get(env_name(name))
    if not url:
        raise CaptureError(f"no egress named {name!r} is configured (set {env_name(name)}=http://host:port)")
    return parse_proxy_url(name, url)


def configured_names(environ: Mapping[str, str] | None = None) -> list[str]:
    """The names of every configured egress, lower-case, sorted."""
    env = os.environ if environ is None else environ
    return sorted(k[len(ENV_PREFIX):].lower().replace("_", "-") for k, v in env.items()
                  if k.startswith(ENV_PREFIX) and len(k) > len(ENV_PREFIX) and v)


def connect_status(reply_head: bytes) -> tuple[int, str]:
    """The status code and status line of the proxy's answer to CONNECT. Raises CaptureError."""
    line = reply_head.split(b"\r\n", 1)[0].decode("latin-1", "replace")
    parts = line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise CaptureError(f"the egress proxy answered CONNECT with {line[:80]!r}")
    return int(parts[1]), line


async def open_tunnel(proxy: EgressProxy, ip: str, port: int, *,
                      limit: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A TCP tunnel through ``proxy`` to ``ip:port`` (asyncio streams with buffer ``limit``). Raises CaptureError."""
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT_SECONDS):
            reader, writer = await asyncio.open_connection(proxy.host, proxy.port,
                                                           limit=max(limit, MAX_CONNECT_REPLY_BYTES))
            writer.write(proxy.connect_request(ip, port))
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
    except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
        raise CaptureError(f"egress {proxy.name!r} ({proxy.public_url}) did not open a tunnel to {ip}:{port}: "
                           f"{getattr(exc, 'strerror', None) or type(exc).__name__}") from exc
    status, line = connect_status(head)
    if status != 200:
        writer.close()
        raise CaptureError(f"egress {proxy.name!r} ({proxy.public_url}) refused the tunnel to {ip}:{port}: "
                           f"{line[:120]}")
    return reader, writer
