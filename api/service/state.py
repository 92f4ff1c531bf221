"""What one running service holds: settings, the engine, the blob store, limiters, workers, trust."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import Engine

from api.service import jobs
from api.service.blobs import BlobBackend
from api.service.ratelimit import RateLimiter
from api.service.runtime import blob_store, local_trust, operator_for, trust_toml
from api.service.scratch import Sweeper, claim
from api.service.security import server_secret
from api.service.settings import Settings
from api.service.workers import WorkerPool
from evidence.operator_key import OperatorKey
from verifier.trust import Trust, default_trust, parse_trust

#: Trust is rebuilt this often: the devnet's RPC URL (part of it) changes when the devnet restarts.
TRUST_TTL_SECONDS = 60.0
#: Where the service publishes its trust (RFC 8615 well-known URI), and the name reports give it.
TRUST_PATH = "/.well-known/tiezheng/trust.toml"


@dataclass(frozen=True)
class PublishedTrust:
    """The trust file this service publishes, and the trust it verifies with: parsed from that very
    text, so the SHA-256 on /verify, in certificates and of the download are one and the same."""

    text: str
    sha256: str
    trust: Trust


@dataclass
class ServiceState:
    settings: Settings
    engine: Engine
    blobs: BlobBackend
    key_secret: bytes
    operator: OperatorKey
    limiter: RateLimiter
    #: Calls without a key (verify, failed logins) are limited per client address.
    anonymous_limiter: RateLimiter
    pool: WorkerPool
    #: Removes temp files of dead processes, at start and periodically; owns this process's temp folder.
    sweeper: Sweeper
    _trust: tuple[float, PublishedTrust] | None = field(default=None, repr=False)
    _trust_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def open(cls, settings: Settings, *, seal: bool = True) -> ServiceState:
        """Migrate the database and start the job threads, and the sealing loop when ``seal``."""
        engine = jobs.database(settings)
        sweeper = Sweeper(settings).start()
        pool = WorkerPool(settings, engine, seal=seal)
        state = cls(settings=settings, engine=engine, blobs=blob_store(settings),
                    key_secret=server_secret(settings), operator=operator_for(settings),
                    limiter=RateLimiter(settings.rate_per_second, settings.rate_burst),
                    anonymous_limiter=RateLimiter(settings.rate_per_second, settings.rate_burst), pool=pool,
                    sweeper=sweeper)
        pool.start()
        return state

    @property
    def scratch(self) -> Path:
        """This process's temp folder: request bodies go there, and go with it when the process dies."""
        return claim(self.settings)

    def published_trust(self) -> PublishedTrust:
        """This data dir's trust as `tiezheng trust export` writes it, and what the service verifies with."""
        now = time.monotonic()
        with self._trust_lock:
            if self._trust is None or now - self._trust[0] > TRUST_TTL_SECONDS:
                text = trust_toml(local_trust(self.settings))
                own = parse_trust(text, source=TRUST_PATH)
                self._trust = (now, PublishedTrust(text=text, sha256=own.digests[0][1],
                                                   trust=default_trust().merged(own)))
            return self._trust[1]

    def trust(self) -> Trust:
        """The verifier's default trust plus this data dir's own (development-flagged) published trust."""
        return self.published_trust().trust

    def close(self) -> None:
        self.pool.stop()
        self.sweeper.stop()
        jobs.forget_database(self.settings)
