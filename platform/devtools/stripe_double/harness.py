"""`running(...)`: a double on a free loopback port for the length of a `with` block (tests)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .faults import FaultRule
from .server import DoubleOptions, StripeDouble, start_in_background
from .state import DoubleState
from .webhooks import Delivery


class RunningDouble:
    """Handle on a double serving in a background thread. Safe to use from several threads."""

    def __init__(self, double: StripeDouble, thread: threading.Thread) -> None:
        self._double = double
        self._thread = thread

    @property
    def url(self) -> str:
        """Base address for stripe-python's `base_addresses` ("api", "connect" and "files")."""
        return self._double.url

    @property
    def state(self) -> DoubleState:
        return self._double.state

    def faults(self, *rules: dict[str, Any], latency_ms: int | None = None, append: bool = False) -> None:
        """Replace (or extend) the fault rules; see `faults.FaultRule` for the fields."""
        parsed = [FaultRule.from_json(rule) for rule in rules]
        if latency_ms is not None:
            self._double.fault_plan.set_latency(latency_ms)
        self._double.fault_plan.set_rules(parsed, append=append)

    def webhooks(self, url: str | None, secret: str | None) -> None:
        self._double.webhooks.configure(url=url, secret=secret)

    def wait_for_webhooks(self, timeout_s: float = 10.0) -> bool:
        """Wait until every queued webhook delivery is done; False if `timeout_s` passed first."""
        return self._double.webhooks.wait_idle(timeout_s)

    def deliveries(self) -> list[Delivery]:
        return self._double.webhooks.deliveries()

    def reset(self) -> None:
        self._double.reset()

    def stop(self) -> None:
        self._double.stop()
        self._thread.join(timeout=5)


@contextmanager
def running(**options: Any) -> Iterator[RunningDouble]:
    """Run a double for the block; `options` are `DoubleOptions` fields (port defaults to a free one)."""
    double, thread = start_in_background(DoubleOptions(**options))
    handle = RunningDouble(double, thread)
    try:
        yield handle
    finally:
        handle.stop()
