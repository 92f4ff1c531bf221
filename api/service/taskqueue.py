"""Scale-out: captures through Dramatiq on Redis, run by `tiezheng worker capture` processes.

Why Dramatiq: it acknowledges a message only after its actor returns (late acks are its default,
not a setting to forget), retries with backoff, and its Redis broker requeues the unacknowledged
messages of a worker that died once that worker's heartbeat lapses. The actor only calls the same
job function the embedded pool runs (``api.service.jobs.capture_job``). Messages are sent by the API's
outbox relay (api/service/outbox.py), at least once; the capture's lease (api/service/leases.py) lets exactly one
delivery run it, and a delivery that finds the lease held or the capture done is acked and dropped.

The broker is configured from ``TIEZHENG_REDIS_URL`` when this module is imported, which is how
the ``dramatiq`` worker command loads actors.
"""

from __future__ import annotations

import os

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from api.service import jobs

CAPTURE_QUEUE = "tiezheng-capture"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
#: A dead worker's messages go back to the queue this long after its last heartbeat.
HEARTBEAT_TIMEOUT_MS = 15_000
#: Per million broker commands, how many also run maintenance (which requeues a dead worker's
#: messages). Dramatiq's default, 1,000, can leave them waiting minutes on a quiet queue.
MAINTENANCE_CHANCE = 50_000
#: A capture has its own timeouts; this only stops a wedged one from holding a worker forever.
CAPTURE_TIME_LIMIT_MS = 10 * 60 * 1000

broker = RedisBroker(url=os.environ.get("TIEZHENG_REDIS_URL", DEFAULT_REDIS_URL),  # type: ignore[no-untyped-call]
                     heartbeat_timeout=HEARTBEAT_TIMEOUT_MS, maintenance_chance=MAINTENANCE_CHANCE,
                     namespace="tiezheng")
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name=CAPTURE_QUEUE, max_retries=3, min_backoff=2_000, max_backoff=60_000,
                time_limit=CAPTURE_TIME_LIMIT_MS)
def capture(row_id: str) -> None:
    """Run one accepted capture (api.service.jobs.capture_job) in a worker process."""
    jobs.capture_job(row_id)


def enqueue_capture(row_id: str) -> None:
    """Hand an accepted capture to the queue (the outbox relay's sender; its row is committed already)."""
    capture.send(row_id)
