"""Idempotency-Key semantics as Stripe has them.

- A key is scoped to the API key and the account the request acts for (the Stripe-Account header).
- The first request with a key that reaches an endpoint's execution has its answer saved, errors
  included; a later request with the same key and the same endpoint and parameters gets that answer
  again, byte for byte, with `Idempotent-Replayed: true`.
- The same key with other parameters, or on another endpoint, is a 400 `idempotency_error`.
- While the first request is still running, another one with its key gets a 409 (stripe-python
  retries 409s, so its retry picks up the saved answer).
- Answers that never began executing (parameter validation, rate limits, injected 5xx) are not
  saved, so a retry runs for real. Keys are forgotten after 24 hours.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from . import errors

TTL_SECONDS = 24 * 3600


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: bytes
    headers: dict[str, str]
    request_id: str


@dataclass
class _Record:
    endpoint: str
    fingerprint: str
    created: float
    response: StoredResponse | None


class IdempotencyStore:
    """Saved answers by (scope, key); thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: OrderedDict[str, _Record] = OrderedDict()

    @staticmethod
    def scope(api_key: str, account: str | None) -> str:
        # The API key is hashed so that snapshots written with --state-file hold no keys.
        digest = hashlib.sha256(api_key.encode()).hexdigest()[:16]
        return f"{digest}/{account or '-'}"

    def begin(self, *, scope: str, key: str, endpoint: str, params: dict[str, Any]) -> StoredResponse | None:
        """Claim `key` for a request, or return the answer to replay.

        None means the caller runs the request and then calls `finish` (answer to save) or
        `abandon` (nothing to save). Raises StripeError for a key reused differently or in use.
        """
        fingerprint = json.dumps(params, sort_keys=True)
        name = f"{scope}:{key}"
        now = time.time()
        with self._lock:
            self._expire(now)
            record = self._records.get(name)
            if record is None:
                self._records[name] = _Record(endpoint=endpoint, fingerprint=fingerprint, created=now, response=None)
                return None
            if record.endpoint != endpoint:
                raise errors.idempotency_endpoint_mismatch(key, record.endpoint, endpoint)
            if record.fingerprint != fingerprint:
                raise errors.idempotency_params_mismatch(key)
            if record.response is None:
                raise errors.idempotency_key_in_use()
            return record.response

    def finish(self, *, scope: str, key: str, response: StoredResponse) -> None:
        with self._lock:
            record = self._records.get(f"{scope}:{key}")
            if record is not None:
                record.response = response

    def abandon(self, *, scope: str, key: str) -> None:
        with self._lock:
            record = self._records.get(f"{scope}:{key}")
            if record is not None and record.response is None:
                del self._records[f"{scope}:{key}"]

    def count(self) -> int:
        with self._lock:
            return len(self._records)

    def clear(self) -> None:
        with self._lock:
            self._records.clear()

    def dump(self) -> list[dict[str, Any]]:
        """Saved answers for a snapshot (claims still running are left out: they die with the process)."""
        with self._lock:
            return [
                {
                    "name": name,
                    "endpoint": record.endpoint,
                    "fingerprint": record.fingerprint,
                    "created": record.created,
                    "status": record.response.status,
                    "body": record.response.body.decode(),
                    "headers": record.response.headers,
                    "request_id": record.response.request_id,
                }
                for name, record in self._records.items()
                if record.response is not None
            ]

    def load(self, rows: list[dict[str, Any]]) -> None:
        with self._lock:
            self._records = OrderedDict(
                (
                    row["name"],
                    _Record(
                        endpoint=row["endpoint"],
                        fingerprint=row["fingerprint"],
                        created=row["created"],
                        response=StoredResponse(
                            status=row["status"],
                            body=row["body"].encode(),
                            headers=row["headers"],
                            request_id=row["request_id"],
                        ),
                    ),
                )
                for row in rows
            )

    def _expire(self, now: float) -> None:
        # Records are kept in the order they were made, so expired ones are at the front.
        while self._records:
            name, record = next(iter(self._records.items()))
            if now - record.created < TTL_SECONDS:
                return
            del self._records[name]
