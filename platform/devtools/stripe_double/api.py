"""The /v1 endpoints the double answers, mapped to state operations.

Anything else under /v1 gets Stripe's own "Unrecognized request URL" 404, so a platform call the
double does not know fails loudly instead of getting an invented answer.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import errors, forms
from .state import PLATFORM, DoubleState, RequestInfo

Obj = dict[str, Any]


@dataclass(frozen=True)
class Call:
    """One authenticated API request. `account` is the Stripe-Account header (a connected account)."""

    method: str
    path: str
    params: dict[str, Any]
    account: str | None
    request: RequestInfo


Handler = Callable[[DoubleState, Call, dict[str, str]], Obj]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    # Whether the endpoint answers for a connected account (Stripe-Account header); the others are
    # the platform's own calls and the double refuses them with the header rather than guess.
    connect: bool = False


_ID = r"(?P<{}>[A-Za-z0-9_]+)"


def _route(method: str, template: str, handler: Handler, *, connect: bool = False) -> Route:
    pattern = re.sub(r"\{(\w+)\}", lambda m: _ID.format(m.group(1)), template)
    return Route(method, re.compile(f"^{pattern}$"), handler, connect)


ROUTES: tuple[Route, ...] = (
    _route("POST", "/v1/accounts", lambda s, c, a: s.account_create(c.params, c.request)),
    _route("GET", "/v1/accounts", lambda s, c, a: s.account_list(c.params)),
    _route("GET", "/v1/accounts/{account}", lambda s, c, a: s.account_get(a["account"])),
    _route("POST", "/v1/accounts/{account}", lambda s, c, a: s.account_update(a["account"], c.params, c.request)),
    _route("POST", "/v1/accounts/{account}/login_links", lambda s, c, a: s.login_link_create(a["account"], c.request)),
    _route(
        "GET",
        "/v1/account",
        lambda s, c, a: s.account_get(c.account) if c.account else s.platform_account(),
        connect=True,
    ),
    _route("POST", "/v1/account_links", lambda s, c, a: s.account_link_create(c.params, c.request)),
    _route("POST", "/v1/transfers", lambda s, c, a: s.transfer_create(c.params, c.request)),
    _route("GET", "/v1/transfers", lambda s, c, a: s.transfer_list(c.params)),
    _route("GET", "/v1/transfers/{transfer}", lambda s, c, a: s.transfer_get(a["transfer"])),
    _route("POST", "/v1/transfers/{transfer}", lambda s, c, a: s.transfer_update(a["transfer"], c.params, c.request)),
    _route(
        "POST",
        "/v1/transfers/{transfer}/reversals",
        lambda s, c, a: s.reversal_create(a["transfer"], c.params, c.request),
    ),
    _route("GET", "/v1/transfers/{transfer}/reversals", lambda s, c, a: s.reversal_list(a["transfer"], c.params)),
    _route(
        "GET",
        "/v1/transfers/{transfer}/reversals/{reversal}",
        lambda s, c, a: s.reversal_get(a["transfer"], a["reversal"]),
    ),
    _route("GET", "/v1/balance", lambda s, c, a: s.balance_get(c.account or PLATFORM), connect=True),
    _route("POST", "/v1/checkout/sessions", lambda s, c, a: s.checkout_session_create(c.params, c.request)),
    _route("GET", "/v1/checkout/sessions/{session}", lambda s, c, a: s.checkout_session_get(a["session"])),
    _route(
        "POST",
        "/v1/checkout/sessions/{session}/expire",
        lambda s, c, a: s.checkout_session_expire(a["session"], c.request),
    ),
    _route("GET", "/v1/payment_intents/{intent}", lambda s, c, a: s.payment_intent_get(a["intent"])),
    _route("GET", "/v1/payouts", lambda s, c, a: s.payout_list(c.account or PLATFORM, c.params), connect=True),
    _route(
        "GET", "/v1/payouts/{payout}", lambda s, c, a: s.payout_get(c.account or PLATFORM, a["payout"]), connect=True
    ),
    _route("GET", "/v1/events", lambda s, c, a: s.event_list(c.params, account=c.account), connect=True),
    _route("GET", "/v1/events/{event}", lambda s, c, a: s.event_get(a["event"], account=c.account), connect=True),
)


def resolve(method: str, path: str) -> tuple[Route, dict[str, str]]:
    """The route for a request and its path arguments; Stripe's 404 when there is none."""
    for route in ROUTES:
        if route.method == method:
            match = route.pattern.match(path)
            if match is not None:
                return route, match.groupdict()
    raise errors.unrecognized_url(method, path)


def run(state: DoubleState, route: Route, arguments: dict[str, str], call: Call) -> Obj:
    """Run a resolved request: the operation, then `expand[]` over its answer."""
    if call.account is not None and not route.connect:
        raise errors.unsupported_by_double(f"{call.method} {call.path} with a Stripe-Account header")
    answer = route.handler(state, call, arguments)
    paths = forms.expand_paths(call.params)
    return state.expand(answer, paths) if paths else answer
