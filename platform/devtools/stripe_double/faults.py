"""Fault injection for /v1 calls: added latency, error answers, timeouts and lost responses.

A rule matches a request by method (or any) and path (an `fnmatch` pattern such as
`/v1/transfers` or `/v1/transfers/*`). Latency rules add up; of the other rules the first matching
one that has firings left decides the request's fate. `times` counts firings (None: forever).
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, replace
from fnmatch import fnmatchcase
from typing import Any, Literal

from . import errors

Mode = Literal["latency", "error", "timeout", "drop_response"]
_MODES: tuple[Mode, ...] = ("latency", "error", "timeout", "drop_response")


@dataclass(frozen=True)
class FaultRule:
    """One rule. `error` answers `status` with Stripe's body for it (429: `code` rate_limit or
    lock_timeout; 5xx: api_error; others: invalid_request_error with `code`/`message`);
    `timeout` holds the request `hold_ms` and closes the connection unanswered without running it;
    `drop_response` runs the request (state changes, Idempotency-Key saved) and closes the
    connection without answering."""

    mode: Mode
    path: str = "/v1/*"
    method: str | None = None
    times: int | None = None
    latency_ms: int = 0
    status: int = 500
    code: str | None = None
    message: str | None = None
    retry_after: int | None = None
    should_retry: bool | None = None
    hold_ms: int = 3000

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FaultRule:
        """Build a rule from the control API's JSON; raises ValueError on anything malformed."""
        if not isinstance(data, dict):
            raise ValueError("a rule must be a JSON object")
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown rule fields: {sorted(unknown)}")
        mode = data.get("mode")
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {list(_MODES)}")
        if data.get("method") is not None:
            data = {**data, "method": str(data["method"]).upper()}
        rule = cls(**data)
        rule._check()
        return rule

    def _check(self) -> None:
        if not isinstance(self.path, str) or not self.path.startswith("/"):
            raise ValueError("path must be a pattern starting with /")
        for name in ("latency_ms", "hold_ms"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                raise ValueError(f"{name} must be a non-negative integer")
        if self.times is not None and (not isinstance(self.times, int) or self.times < 0):
            raise ValueError("times must be null or a non-negative integer")
        if self.mode == "error" and not (isinstance(self.status, int) and 400 <= self.status <= 599):
            raise ValueError("status must be an HTTP error status (400-599)")
        if self.mode == "latency" and self.latency_ms == 0:
            raise ValueError("a latency rule needs latency_ms")

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and fnmatchcase(path, self.path)

    def error(self) -> errors.StripeError:
        """The answer an `error` rule gives."""
        if self.status == 429:
            if self.code == "lock_timeout":
                # Stripe marks lock timeouts retryable (Stripe-Should-Retry: true) unless the rule says otherwise.
                should_retry = True if self.should_retry is None else self.should_retry
                return errors.lock_timeout(retry_after=self.retry_after, should_retry=should_retry)
            return errors.rate_limit(retry_after=self.retry_after, should_retry=self.should_retry)
        if self.status >= 500:
            error = errors.api_error(self.status)
        else:
            error = errors.StripeError(
                self.status, self.message or "Injected error", code=self.code or None, saved=False
            )
        if self.should_retry is not None:
            error.headers["Stripe-Should-Retry"] = "true" if self.should_retry else "false"
        return error


@dataclass(frozen=True)
class Decision:
    """What the fault plan does to one request: sleep `latency_ms`, then apply `rule` (if any)."""

    latency_ms: int
    rule: FaultRule | None


class FaultPlan:
    """The current rules and the global latency; thread-safe."""

    def __init__(self, *, latency_ms: int = 0) -> None:
        self._lock = threading.Lock()
        self._initial_latency_ms = latency_ms
        self._latency_ms = latency_ms
        self._rules: list[FaultRule] = []

    def set_rules(self, rules: list[FaultRule], *, append: bool = False) -> None:
        with self._lock:
            self._rules = [*self._rules, *rules] if append else list(rules)

    def set_latency(self, latency_ms: int) -> None:
        if not isinstance(latency_ms, int) or latency_ms < 0:
            raise ValueError("latency_ms must be a non-negative integer")
        with self._lock:
            self._latency_ms = latency_ms

    def reset(self) -> None:
        with self._lock:
            self._rules = []
            self._latency_ms = self._initial_latency_ms

    def describe(self) -> dict[str, Any]:
        with self._lock:
            return {"latency_ms": self._latency_ms, "rules": [asdict(rule) for rule in self._rules]}

    def decide(self, method: str, path: str) -> Decision:
        """Match a request against the rules, using up one firing of every rule that applies."""
        with self._lock:
            latency = self._latency_ms
            chosen: FaultRule | None = None
            for index, rule in enumerate(self._rules):
                if not rule.matches(method, path) or rule.times == 0:
                    continue
                if rule.mode != "latency" and chosen is not None:
                    continue
                if rule.times is not None:
                    self._rules[index] = replace(rule, times=rule.times - 1)
                if rule.mode == "latency":
                    latency += rule.latency_ms
                else:
                    chosen = rule
                    latency += rule.latency_ms
            return Decision(latency_ms=latency, rule=chosen)
