"""The HTTP layer: a ThreadingHTTPServer speaking Stripe's v1 wire protocol.

For each /v1 request, in this order (the order Stripe's own front does these things in):
read the body, apply injected latency (never under the state lock), apply an injected error or
timeout, authenticate (`Authorization: Bearer sk_test_...`, or Basic with the key as user name),
check the Stripe-Account header, resolve the route (unknown URLs get Stripe's 404), claim or
replay the Idempotency-Key (POST only: Stripe ignores keys on GET), run the operation, save the
answer under the key, answer (or, for `drop_response`, close the connection without answering).
"""

from __future__ import annotations

import base64
import binascii
import json
import sys
import threading
import time
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from . import api, control, errors, forms, objects, persistence
from .faults import FaultPlan, FaultRule
from .idempotency import IdempotencyStore, StoredResponse
from .state import DEFAULT_API_VERSION, DoubleState, RequestInfo
from .webhooks import DEFAULT_RETRY_DELAYS, WebhookDispatcher


@dataclass
class DoubleOptions:
    """How to run a double. `public_url` is the base for the links it hands out (onboarding,
    checkout, dashboard); by default the Host the client called it by."""

    host: str = "127.0.0.1"
    port: int = 0
    webhook_url: str | None = None
    webhook_secret: str | None = None
    state_file: str | None = None
    latency_ms: int = 0
    balance: Mapping[str, int] | None = None
    api_version: str = DEFAULT_API_VERSION
    link_ttl_seconds: int = 300
    webhook_retry_delays: Sequence[float] = field(default_factory=lambda: DEFAULT_RETRY_DELAYS)
    public_url: str | None = None
    log_requests: bool = False


class StripeDouble:
    """One running double: its state, faults, webhook dispatcher, snapshots and HTTP server."""

    def __init__(self, options: DoubleOptions) -> None:
        self.options = options
        self.fault_plan = FaultPlan(latency_ms=options.latency_ms)
        self.stopping = threading.Event()
        self.state = DoubleState(
            balance=options.balance, api_version=options.api_version, link_ttl_seconds=options.link_ttl_seconds
        )
        self.webhooks = WebhookDispatcher(
            url=options.webhook_url,
            secret=options.webhook_secret,
            on_delivered=self.state.event_delivered,
            retry_delays=options.webhook_retry_delays,
        )
        self.state.sink = self.webhooks
        self._snapshots: persistence.SnapshotWriter | None = None
        if options.state_file:
            path = Path(options.state_file)
            snapshot = persistence.read(path)
            if snapshot is not None:
                self.state.load(snapshot)
            self._snapshots = persistence.SnapshotWriter(path, self.state.dump)
            self.state.on_change = self._snapshots.mark_dirty
        self.httpd = _Server((options.host, options.port), _Handler, self)
        self._stop_lock = threading.Lock()
        self._stopped = False

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def serve_forever(self) -> None:
        self.httpd.serve_forever(poll_interval=0.1)

    def reset(self) -> None:
        """Forget everything: state, saved idempotent answers, fault rules, delivery log."""
        self.state.reset()
        self.fault_plan.reset()
        self.webhooks.clear_log()

    def stop(self) -> None:
        """Stop serving, end held (timeout) requests and webhook workers, write the last snapshot."""
        with self._stop_lock:
            if self._stopped:
                return
            self._stopped = True
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.webhooks.close()
        if self._snapshots is not None:
            self._snapshots.close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    # A payout run opens many connections at once; the default backlog of 5 would refuse some.
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], double: StripeDouble) -> None:
        self.double = double
        super().__init__(address, handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle's algorithm on, the client's delayed ACK
    # would add ~40 ms to every keep-alive request.
    disable_nagle_algorithm = True
    server: _Server

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def log_message(self, format: str, *args: object) -> None:
        if self.server.double.options.log_requests:
            super().log_message(format, *args)

    @property
    def double(self) -> StripeDouble:
        return self.server.double

    def _handle(self, method: str) -> None:
        try:
            body = self._read_body()
            target = urlsplit(self.path)
            if target.path.startswith("/v1/"):
                self._api(method, target.path, target.query, body)
                return
            request = control.Request(method, target.path, target.query, body, self.headers.get("Content-Type", ""))
            self._reply(control.handle(self.double, request))
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        except Exception:
            traceback.print_exc(file=sys.stderr)
            self._send_error(errors.api_error(), objects.new_id("req_", 14))

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _api(self, method: str, path: str, query: str, body: bytes) -> None:
        request_id = objects.new_id("req_", 14)
        decision = self.double.fault_plan.decide(method, path)
        if decision.latency_ms:
            time.sleep(decision.latency_ms / 1000)
        rule = decision.rule
        if rule is not None and rule.mode == "timeout":
            self.double.stopping.wait(rule.hold_ms / 1000)
            self._drop()
            return
        if rule is not None and rule.mode == "error":
            self._send_error(rule.error(), request_id)
            return
        try:
            response = self._api_answer(method, path, query, body, request_id)
        except errors.StripeError as exc:
            self._send_error(exc, request_id)
            return
        if rule is not None and rule.mode == "drop_response":
            self._drop()
            return
        self._send_stored(response, request_id)

    def _api_answer(self, method: str, path: str, query: str, body: bytes, request_id: str) -> StoredResponse:
        """The answer to an API request, replayed or made (and saved under its Idempotency-Key)."""
        api_key = self._api_key()
        account = self.headers.get("Stripe-Account") or None
        if account is not None and not self.double.state.account_exists(account):
            raise errors.account_invalid(api_key, account)
        params = forms.decode(query if method == "GET" else body.decode())
        route, arguments = api.resolve(method, path)
        key = self.headers.get("Idempotency-Key") if method == "POST" else None
        scope = IdempotencyStore.scope(api_key, account)
        store = self.double.state.idempotency
        if key:
            replayed = store.begin(scope=scope, key=key, endpoint=f"{method} {path}", params=params)
            if replayed is not None:
                return _as_replay(replayed)
        call = api.Call(method, path, params, account, RequestInfo(request_id, key, self._base_url()))
        try:
            status, payload, extra = 200, api.run(self.double.state, route, arguments, call), {}
        except errors.StripeError as exc:
            if key and not exc.saved:
                store.abandon(scope=scope, key=key)
            if not exc.saved:
                raise
            status, payload, extra = exc.status, exc.body(), exc.headers
        except BaseException:
            if key:
                store.abandon(scope=scope, key=key)
            raise
        response = StoredResponse(status, _json(payload), {**self._api_headers(), **extra}, request_id)
        if key:
            store.finish(scope=scope, key=key, response=response)
        return response

    def _api_key(self) -> str:
        header = self.headers.get("Authorization", "").strip()
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() == "bearer":
            api_key = credentials.strip()
        elif scheme.lower() == "basic":
            try:
                api_key = base64.b64decode(credentials.strip()).decode().partition(":")[0]
            except (binascii.Error, UnicodeDecodeError):
                api_key = ""
        else:
            api_key = ""
        if not api_key:
            raise errors.api_key_missing()
        if not api_key.startswith("sk_test_"):
            # Live keys included: the double must never look like it accepted one.
            raise errors.api_key_invalid(api_key)
        return api_key

    def _api_headers(self) -> dict[str, str]:
        headers = {
            "Content-Type": "application/json",
            "Stripe-Version": self.headers.get("Stripe-Version") or self.double.state.api_version,
        }
        key = self.headers.get("Idempotency-Key")
        if key:
            headers["Idempotency-Key"] = key
        return headers

    def _base_url(self) -> str:
        if self.double.options.public_url:
            return self.double.options.public_url.rstrip("/")
        host = self.headers.get("Host")
        return f"http://{host}" if host else self.double.url

    def _send_error(self, error: errors.StripeError, request_id: str) -> None:
        headers = {**self._api_headers(), **error.headers}
        self._send_stored(StoredResponse(error.status, _json(error.body()), headers, request_id), request_id)

    def _send_stored(self, response: StoredResponse, request_id: str) -> None:
        self._reply(
            control.Reply(
                response.status,
                response.body,
                content_type=response.headers.get("Content-Type", "application/json"),
                headers={**response.headers, "Request-Id": request_id},
            )
        )

    def _reply(self, reply: control.Reply) -> None:
        self.send_response(reply.status)
        headers = {"Content-Type": reply.content_type, **reply.headers, "Content-Length": str(len(reply.body))}
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(reply.body)

    def _drop(self) -> None:
        # Nothing is written: the client sees the connection close without an answer.
        self.close_connection = True


def _as_replay(stored: StoredResponse) -> StoredResponse:
    headers = {**stored.headers, "Idempotent-Replayed": "true", "Original-Request": stored.request_id}
    return StoredResponse(stored.status, stored.body, headers, stored.request_id)


def _json(payload: object) -> bytes:
    # Stripe answers pretty-printed with two spaces.
    return json.dumps(payload, indent=2).encode()


def start_in_background(options: DoubleOptions) -> tuple[StripeDouble, threading.Thread]:
    """Start a double serving on a daemon thread; the caller stops it with `double.stop()`."""
    double = StripeDouble(options)
    thread = threading.Thread(target=double.serve_forever, name="stripe-double", daemon=True)
    thread.start()
    return double, thread


__all__ = ["DoubleOptions", "FaultRule", "StripeDouble", "start_in_background"]
