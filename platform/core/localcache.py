"""A per-process cache of hot, rarely changed lookups, invalidated at once through Redis pub/sub.

Tenant routing runs on every request, and even one Redis round trip costs about as much as the
rest of a trivial request on a small machine; an API key or a program's settings are read by
every tracking call. So each process keeps them in memory, and trusts them only while its
subscription to the invalidation channel is live:

- a background thread subscribes; while it is not subscribed (start-up, Redis down,
  reconnecting) nothing is served from or stored in memory, and the local cache is emptied;
- every invalidation bumps a generation counter; a lookup stores its answer only if no
  invalidation arrived while it was reading, so a route read just before a suspension
  committed cannot outlive the suspension;
- entries also expire after LOCAL_TTL seconds, as a bound should a message ever be lost.

Keys are strings without commas. Tenant routes are keyed by host; other users prefix their keys
with "#<kind>:" (a host never contains "#"), so that one listener serves them all.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from typing import Any

import redis
from django.conf import settings
from django.db import connection, transaction

logger = logging.getLogger(__name__)

LOCAL_TTL = 60.0


def _channel() -> str:
    return f"{settings.CACHES['routing']['KEY_PREFIX']}:routing-invalidations"


class LocalCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, Any]] = {}
        self._generation = 0
        self._subscribed = threading.Event()
        self._pid: int | None = None
        self._thread: threading.Thread | None = None

    # -- the listener -------------------------------------------------------------------------

    def _ensure_listener(self) -> None:
        # After a fork (gunicorn workers) the parent's thread does not exist in the child.
        if self._pid == os.getpid() and self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._pid == os.getpid() and self._thread is not None and self._thread.is_alive():
                return
            self._pid = os.getpid()
            self._subscribed.clear()
            self._entries.clear()
            self._thread = threading.Thread(target=self._listen, name="local-cache-invalidations", daemon=True)
            self._thread.start()

    def _listen(self) -> None:
        backoff = 0.1
        while True:
            pubsub = None
            try:
                client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, health_check_interval=10)
                pubsub = client.pubsub()
                pubsub.subscribe(_channel())
                while True:
                    message = pubsub.get_message(timeout=5.0)
                    if message is None:
                        pubsub.ping()
                        continue
                    if message["type"] == "subscribe":
                        self._subscribed.set()
                        backoff = 0.1
                    elif message["type"] == "message":
                        self._apply(message["data"].decode())
            except Exception:  # any failure: stop trusting memory until subscribed again
                logger.warning("local cache invalidation listener lost; retrying", exc_info=True)
            finally:
                self._subscribed.clear()
                self._drop_all()
                if pubsub is not None:
                    with contextlib.suppress(Exception):  # already failing; the loop reconnects
                        pubsub.close()
            time.sleep(backoff)
            backoff = min(backoff * 2, 5.0)

    def _apply(self, payload: str) -> None:
        with self._lock:
            self._generation += 1
            for key in payload.split(","):
                self._entries.pop(key, None)

    def _drop_all(self) -> None:
        with self._lock:
            self._generation += 1
            self._entries.clear()

    # -- the cache ----------------------------------------------------------------------------

    def generation(self) -> int:
        self._ensure_listener()
        return self._generation

    def get(self, key: str) -> Any | None:
        if not self._subscribed.is_set():
            self._ensure_listener()
            return None
        entry = self._entries.get(key)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, key: str, value: Any, *, generation: int) -> None:
        with self._lock:
            if self._subscribed.is_set() and generation == self._generation:
                self._entries[key] = (time.monotonic() + LOCAL_TTL, value)

    def wait_until_subscribed(self, timeout: float) -> bool:
        self._ensure_listener()
        return self._subscribed.wait(timeout)

    def forget(self, keys: list[str]) -> None:
        """Drop `keys` here and, through the channel, in every other process."""
        self._apply(",".join(keys))
        client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
        try:
            client.publish(_channel(), ",".join(keys))
        finally:
            client.close()


local_cache = LocalCache()


def forget_after_commit(keys: list[str]) -> None:
    """Drop `keys` from this process now and, once the current transaction commits, everywhere
    (other processes must not re-read the old rows before the new ones are visible)."""
    local_cache._apply(",".join(keys))
    transaction.on_commit(lambda: local_cache.forget(keys))


def cacheable() -> bool:
    """Whether what was just read may be cached: not inside a transaction, whose uncommitted
    writes this connection sees but a rollback would take back."""
    return not connection.in_atomic_block
