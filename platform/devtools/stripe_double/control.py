"""Everything under /_double/: the control API (JSON) for tests and fault injection, and the pages
that stand in for Stripe-hosted ones (onboarding, Express dashboard, Checkout).

Control API (JSON bodies, no authentication: the double listens on loopback):

    POST /_double/faults                {"rules": [...], "latency_ms": N?, "append": false}
    GET  /_double/faults
    POST /_double/reset
    GET  /_double/state                 counts, balances and all transfers
    GET  /_double/health
    POST /_double/balance               {"currency": "usd", "available": 100, "pending": 0?}
    POST /_double/accounts/{id}/complete
    POST /_double/accounts/{id}/payouts {"status": "paid"|"failed", "amount"?, "currency"?, "failure_code"?}
    POST /_double/webhooks              {"url": "...", "secret": "whsec_..."}   (null url: stop delivering)
    GET  /_double/webhooks              the endpoint and the delivery log
    POST /_double/webhooks/replay/{evt_id}
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from . import errors, pages
from .faults import FaultRule
from .state import Redirect

if TYPE_CHECKING:
    from .server import StripeDouble


@dataclass
class Reply:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


class ControlError(Exception):
    """A malformed control request: answered 400 (or `status`) with the message."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def json_reply(status: int, payload: Any) -> Reply:
    return Reply(status, json.dumps(payload, indent=2).encode())


def html_reply(status: int, body: bytes) -> Reply:
    return Reply(status, body, content_type="text/html; charset=utf-8")


def redirect(location: str) -> Reply:
    return Reply(302, b"", content_type="text/plain", headers={"Location": location})


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: str
    body: bytes
    content_type: str

    def json(self) -> dict[str, Any]:
        if not self.body.strip():
            return {}
        try:
            data = json.loads(self.body)
        except ValueError as exc:
            raise ControlError(f"body is not JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise ControlError("body must be a JSON object")
        return data

    def form_value(self, name: str) -> str | None:
        """A field from the query string or a form-encoded body (the pages' forms post these)."""
        values = parse_qs(self.query).get(name) or parse_qs(self.body.decode(errors="replace")).get(name)
        return values[0] if values else None


Action = Callable[["StripeDouble", Request, dict[str, str]], Reply]
_ROUTES: list[tuple[str, re.Pattern[str], Action]] = []


def _on(method: str, template: str) -> Callable[[Action], Action]:
    pattern = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[A-Za-z0-9_]+)", template) + "$")

    def register(action: Action) -> Action:
        _ROUTES.append((method, pattern, action))
        return action

    return register


def handle(double: StripeDouble, request: Request) -> Reply:
    for method, pattern, action in _ROUTES:
        match = pattern.match(request.path)
        if match is not None and method == request.method:
            try:
                return action(double, request, match.groupdict())
            except ControlError as exc:
                return json_reply(exc.status, _control_error(str(exc)))
            except errors.StripeError as exc:
                return json_reply(exc.status, exc.body())
    return json_reply(404, _control_error(f"Unknown control URL ({request.method}: {request.path})"))


def _control_error(message: str) -> dict[str, Any]:
    return {"error": {"type": "invalid_request_error", "message": message}}


# -- control API ------------------------------------------------------------------------------------


@_on("GET", "/_double/health")
def _health(double: StripeDouble, request: Request, args: dict[str, str]) -> Reply:
    return json_reply(200, {"ok": True, "url": double.url})


@_on("POST", "/_double/faults")
def _faults_set(double: StripeDouble, request: Request, args: dict[str, str]) -> Reply:
    data = request.json()
    try:
        rules = [FaultRule.from_json(rule) for rule in data.get("rules", [])]
        if "latency_ms" in data:
            double.fault_plan.set_latency(data["latency_ms"])
    except (TypeError, ValueError) as exc:
        raise ControlError(str(exc)) from exc
    double.fault_plan.set_rules(rules, append=bool(data.get("append", False)))
    return json_reply(200, double.fault_plan.describe())


@_on("GET", "/_double/faults")
def _faults_get(double: StripeDouble, request: Request, args: dict[str, str]) -> Reply:
    return json_reply(200, double.fault_plan.describe())


@_on("POST", "/_double/reset")
def _reset(double: StripeDouble, request: Request, args: dict[str, str]) -> Reply:
    double.reset()
    return json_reply(200, {"reset": True})


@_on("GET", "/_double/state")
def _state(double: StripeDouble, request: Request, args: dict[str, str]) -> Reply:
    return json_reply(200, double.state.summary())


@_on("POST", "/_double/balance")
def _balance(double: StripeDouble, request: Request, args: dict[str, str]) -> Reply:
    data = request.json()
    currency, available, pending = data.get("currency"), data.get("available"), data.get("pending")
    if not isinstance(currency, str) or not isinstance(available, int):
        raise ControlError('expected {"currency": "usd", "available": <cents>, "pending": <cents>?}')
    if pending is not None and not isinstance(pending, int):
        raise ControlError("pending must be an integer")
    return json_reply(200, double.state.balance_set(currency=currency, available=available, pending=pending))


@_on("POST", "/_double/accounts/{account}/complete")
def _complete(double: StripeDouble, request: Request, args: dict[str, str]) -> Reply:
    return json_reply(200, double.state.account_complete(args["account"]))


@_on("POST", "/_double/accounts/{account}/payouts")
def _payout(double: StripeDouble, request: Request, args: dict[str, str]) -> Reply:
    data = request.json()
    unknown = set(data) - {"amount", "currency", "status", "failure_code"}
    if unknown:
        raise ControlError(f"unknown fields: {sorted(unknown)}")
    if data.get("amount") is not None and not isinstance(data["amount"], int):
        raise ControlError("amount must be an integer (cents)")
    try:
        payout = double.state.payout_emit(
            args["account"],
            amount=data.get("amount"),
            currency=data.get("currency"),
            status=data.get("status", "paid"),
            failure_code=data.get("failure_code"),
        )
    except ValueError as exc:
        raise ControlError(str(exc)) from exc
    return json_reply(200, payout)


@_on("POST", "/_double/webhooks")
def _webhooks_set(double: StripeDouble, request: Request, args: dict[str, str]) -> Reply:
    data = request.json()
    url, secret = data.get("url"), data.get("secret")
    if url is not None and (not isinstance(secret, str) or not secret.startswith("whsec_")):
        raise ControlError("a webhook endpoint needs a secret starting with whsec_")
    double.webhooks.configure(url=url, secret=secret)
    return json_reply(200, {"url": url})


@_on("GET", "/_double/webhooks")
def _webhooks_get(double: StripeDouble, request: Request, args: dict[str, str]) -> Reply:
    deliveries = [asdict(delivery) for delivery in double.webhooks.deliveries()]
    return json_reply(200, {"enabled": double.webhooks.enabled, "deliveries": deliveries})


@_on("POST", "/_double/webhooks/replay/{event}")
def _webhooks_replay(double: StripeDouble, request: Request, args: dict[str, str]) -> Reply:
    if not double.webhooks.enabled:
        raise ControlError("no webhook endpoint is configured", status=409)
    try:
        event = double.state.event_for_delivery(args["event"])
    except LookupError as exc:
        raise ControlError(str(exc), status=404) from exc
    double.webhooks.enqueue(event)
    return json_reply(202, {"queued": event["id"]})


# -- pages standing in for Stripe-hosted ones -----------------------------------------------------------


@_on("GET", "/_double/onboarding/{account}")
def _onboarding_page(double: StripeDouble, request: Request, args: dict[str, str]) -> Reply:
    token = request.form_value("link") or ""
    try:
        opened = double.state.onboarding_open(args["account"], token)
    except LookupError:
        return html_reply(404, pages.message("Unknown link", "This onboarding link does not exist."))
    if isinstance(opened, Redirect):
        return redirect(opened.location)
    return html_reply(200, pages.onboarding(opened, token=token))


@_on("POST", "/_double/onboarding/{account}")
def _onboarding_submit(double: StripeDouble, request: Request, args: dict[str, str]) -> Reply:
    try:
        done = double.state.onboarding_submit(args["account"], request.form_value("link") or "")
    except LookupError:
        return html_reply(404, pages.message("Unknown link", "This onboarding link does not exist."))
    return redirect(done.location)


@_on("GET", "/_double/dashboard/{account}")
def _dashboard(double: StripeDouble, request: Request, args: dict[str, str]) -> Reply:
    try:
        account = double.state.account_get(args["account"])
    except errors.StripeError:
        return html_reply(404, pages.message("Unknown account", "No such account."))
    return html_reply(200, pages.dashboard(account))


@_on("GET", "/_double/checkout/{session}")
def _checkout_page(double: StripeDouble, request: Request, args: dict[str, str]) -> Reply:
    try:
        session = double.state.checkout_page(args["session"])
    except LookupError:
        return html_reply(404, pages.message("Unknown session", "No such checkout session."))
    return html_reply(200, pages.checkout(session))


@_on("POST", "/_double/checkout/{session}")
def _checkout_pay(double: StripeDouble, request: Request, args: dict[str, str]) -> Reply:
    try:
        paid = double.state.checkout_pay(args["session"])
    except LookupError:
        return html_reply(404, pages.message("Unknown session", "No such checkout session."))
    except ValueError as exc:
        return html_reply(409, pages.message("Checkout closed", str(exc)))
    return redirect(paid.location)
