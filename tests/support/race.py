"""Races against the real database with real threads: the one harness every concurrency test uses."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from django.db import connection, connections

from tenants.models import Tenant

T = TypeVar("T")


@dataclass(frozen=True)
class Race(Generic[T]):
    """What each thread ended with, by index: what `work` returned, or the exception it raised
    (a TimeoutError for a thread still running when the race gave up waiting)."""

    outcomes: list[T | BaseException]

    @property
    def values(self) -> list[T]:
        return [outcome for outcome in self.outcomes if not isinstance(outcome, BaseException)]

    @property
    def errors(self) -> list[BaseException]:
        return [outcome for outcome in self.outcomes if isinstance(outcome, BaseException)]


def race(work: Callable[[int], T], *, times: int, tenant: Tenant | None = None, timeout_s: float = 60.0) -> Race[T]:
    """Call `work(0)` ... `work(times - 1)` at the same moment, each on a thread of its own: the
    threads wait at a barrier until all have started. Each thread first sets `tenant` on its
    database connection (if given) and closes its connections when done; a thread's connections
    are its own, and one left open would keep the test database from being flushed or dropped."""
    barrier = threading.Barrier(times)
    outcomes: list[T | BaseException] = [TimeoutError(f"still running after {timeout_s} s")] * times

    def run(index: int) -> None:
        try:
            if tenant is not None:
                connection.set_tenant(tenant)
            barrier.wait(timeout=10)
            outcomes[index] = work(index)
        except BaseException as exc:  # pytest.fail() and the like derive from BaseException
            outcomes[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(index,), name=f"race-{index}") for index in range(times)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout_s
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    return Race(outcomes=list(outcomes))
