"""Webhook delivery: events POSTed as JSON with a `Stripe-Signature` header made as Stripe makes it.

The header is `t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<payload>" keyed with the whsec secret>`,
so `stripe.Webhook.construct_event(payload, header, secret)` verifies it. Deliveries run on a few
background threads; a non-2xx answer or a connection error is retried after the configured delays,
each attempt signed afresh (as Stripe does), and never blocks the API request that made the event.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import queue
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

DEFAULT_RETRY_DELAYS: tuple[float, ...] = (0.5, 2.0, 5.0)
_USER_AGENT = "Stripe/1.0 (+https://stripe.com/docs/webhooks)"
# Direct connections only: a proxy from the environment must not see (or swallow) local deliveries.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def signature_header(payload: bytes, secret: str, timestamp: int) -> str:
    signed = f"{timestamp}.".encode() + payload
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def payload_of(event: dict[str, Any]) -> bytes:
    # Stripe sends events pretty-printed with two spaces.
    return json.dumps(event, indent=2).encode()


@dataclass(frozen=True)
class Delivery:
    """One attempt: `status` is the receiver's HTTP status, None when the connection failed."""

    event_id: str
    event_type: str
    attempt: int
    status: int | None
    error: str | None
    at: float


class WebhookDispatcher:
    """Queue of events to deliver to one endpoint; thread-safe."""

    def __init__(
        self,
        *,
        url: str | None,
        secret: str | None,
        on_delivered: Callable[[str], None],
        retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS,
        timeout_s: float = 10.0,
        workers: int = 4,
    ) -> None:
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._url = url
        self._secret = secret
        self._on_delivered = on_delivered
        self._retry_delays = tuple(retry_delays)
        self._timeout_s = timeout_s
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._unfinished = 0
        self._log: deque[Delivery] = deque(maxlen=10_000)
        self._stopping = threading.Event()
        self._threads = [
            threading.Thread(target=self._work, name=f"stripe-double-webhooks-{n}", daemon=True) for n in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    @property
    def enabled(self) -> bool:
        with self._lock:
            return bool(self._url and self._secret)

    def configure(self, *, url: str | None, secret: str | None) -> None:
        with self._lock:
            self._url = url
            self._secret = secret

    def enqueue(self, event: dict[str, Any]) -> None:
        """Deliver `event` (a snapshot; the caller keeps no reference it changes later)."""
        with self._lock:
            if not (self._url and self._secret):
                return
            self._unfinished += 1
        self._queue.put(event)

    def wait_idle(self, timeout_s: float = 10.0) -> bool:
        """Block until every queued delivery finished (delivered or out of attempts)."""
        deadline = time.monotonic() + timeout_s
        with self._idle:
            while self._unfinished:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(remaining)
            return True

    def deliveries(self) -> list[Delivery]:
        with self._lock:
            return list(self._log)

    def clear_log(self) -> None:
        with self._lock:
            self._log.clear()

    def close(self) -> None:
        self._stopping.set()
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join(timeout=2)

    def _work(self) -> None:
        while True:
            event = self._queue.get()
            if event is None:
                return
            try:
                self._deliver(event)
            finally:
                with self._idle:
                    self._unfinished -= 1
                    self._idle.notify_all()

    def _deliver(self, event: dict[str, Any]) -> None:
        payload = payload_of(event)
        for attempt, delay in enumerate((*self._retry_delays, None), start=1):
            with self._lock:
                url, secret = self._url, self._secret
            if not (url and secret) or self._stopping.is_set():
                return
            status, error = self._post(url, secret, payload)
            with self._lock:
                self._log.append(Delivery(event["id"], event["type"], attempt, status, error, time.time()))
            if status is not None and 200 <= status < 300:
                self._on_delivered(event["id"])
                return
            if delay is None or self._stopping.wait(delay):
                return

    def _post(self, url: str, secret: str, payload: bytes) -> tuple[int | None, str | None]:
        request = urllib.request.Request(  # noqa: S310 - the URL is the configured webhook endpoint
            url,
            data=payload,
            method="POST",
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "User-Agent": _USER_AGENT,
                "Stripe-Signature": signature_header(payload, secret, int(time.time())),
            },
        )
        try:
            with _OPENER.open(request, timeout=self._timeout_s) as response:
                return response.status, None
        except urllib.error.HTTPError as exc:
            return exc.code, None
        except (OSError, ValueError) as exc:
            return None, f"{type(exc).__name__}: {exc}"
