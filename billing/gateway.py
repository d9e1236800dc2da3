"""The one module that talks to Stripe. Nothing else imports `stripe`.

The API base comes from settings (`STRIPE_API_BASE`), so the same calls reach Stripe itself
(a real `sk_test_` or live key) or the local Stripe double (`devtools.stripe_double`, a key
starting `sk_test_double`). Every call has a timeout; stripe-python retries network errors,
409s, 5xx and the 429s Stripe marks retryable itself (`STRIPE_MAX_NETWORK_RETRIES`) with the
idempotency key the caller supplied, so a retry can never create a second object. What is still
failing after that comes out as `GatewayError`: `transient` (retry later with the same key; a
plain 429 among them) or not, and `refused_request` when Stripe refused the request itself.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import TypeVar

import stripe
from django.conf import settings

T = TypeVar("T")


class GatewayError(Exception):
    """A Stripe call that failed. `code` is Stripe's error code when it gave one
    (`balance_insufficient`, `account_invalid`, `rate_limit`...), else the kind of failure."""

    def __init__(
        self, *, code: str, message: str, transient: bool, http_status: int | None = None, refused_request: bool = False
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.transient = transient
        self.http_status = http_status
        # Stripe refused this request itself (an invalid destination, say): sending it again
        # cannot succeed. Not so for the platform's own problems (its key, its permissions, its
        # Stripe balance), which are neither transient nor the request's fault.
        self.refused_request = refused_request


@functools.cache
def _client(api_key: str, api_base: str, timeout: float, retries: int) -> stripe.StripeClient:
    return stripe.StripeClient(
        api_key,
        base_addresses={"api": api_base, "connect": api_base, "files": api_base},
        max_network_retries=retries,
        http_client=stripe.RequestsClient(timeout=timeout),
    )


def client() -> stripe.StripeClient:
    if not settings.STRIPE_SECRET_KEY:
        raise GatewayError(code="not_configured", message="Set STRIPE_SECRET_KEY to use payouts.", transient=False)
    return _client(
        settings.STRIPE_SECRET_KEY,
        settings.STRIPE_API_BASE,
        settings.STRIPE_TIMEOUT_SECONDS,
        settings.STRIPE_MAX_NETWORK_RETRIES,
    )


def _code(exc: stripe.StripeError, fallback: str) -> str:
    # RateLimitError and PermissionError leave `.code` empty; the error body still has it.
    return exc.code or (exc.error.code if exc.error is not None and exc.error.code else None) or fallback


def _call(fn: Callable[[], T]) -> T:
    try:
        return fn()
    except (stripe.RateLimitError, stripe.APIConnectionError, stripe.APIError) as exc:
        # stripe-python already retried what Stripe marks retryable; a plain 429 it never
        # retries. All of these may succeed later with the same idempotency key.
        fallback = {stripe.RateLimitError: "rate_limit", stripe.APIConnectionError: "connection"}.get(
            type(exc), "api_error"
        )
        raise GatewayError(
            code=_code(exc, fallback),
            message=str(exc.user_message or exc),
            transient=True,
            http_status=exc.http_status,
        ) from exc
    except stripe.StripeError as exc:
        # Invalid requests, authentication, permission, idempotency conflicts: retrying the same
        # request as it is cannot succeed.
        code = _code(exc, type(exc).__name__)
        refused = isinstance(exc, stripe.InvalidRequestError) and code not in _PLATFORM_PROBLEMS
        raise GatewayError(
            code=code,
            message=str(exc.user_message or exc),
            transient=False,
            http_status=exc.http_status,
            refused_request=refused,
        ) from exc


# Refusals that are about the platform's Stripe account, not the request's content.
_PLATFORM_PROBLEMS = {"balance_insufficient", "idempotency_key_in_use", "IdempotencyError"}


def _options(idempotency_key: str | None = None, account: str | None = None) -> stripe.RequestOptions:
    options: stripe.RequestOptions = {}
    if idempotency_key:
        options["idempotency_key"] = idempotency_key
    if account:
        options["stripe_account"] = account
    return options


# --- Connect accounts -------------------------------------------------------------------------


def account_create(*, email: str, country: str, metadata: dict[str, str], idempotency_key: str) -> stripe.Account:
    """An Express connected account: Stripe-hosted onboarding and dashboard; the platform carries
    fees and losses. Outside the US the recipient service agreement (transfers only)."""
    params: stripe.params.AccountCreateParams = {
        "type": "express",
        "email": email,
        "country": country,
        "capabilities": {"transfers": {"requested": True}},
        "metadata": metadata,
    }
    if country != "US":
        params["tos_acceptance"] = {"service_agreement": "recipient"}
    return _call(lambda: client().v1.accounts.create(params=params, options=_options(idempotency_key)))


def account_retrieve(account_id: str) -> stripe.Account:
    return _call(lambda: client().v1.accounts.retrieve(account_id))


def account_link_create(*, account_id: str, refresh_url: str, return_url: str) -> stripe.AccountLink:
    params: stripe.params.AccountLinkCreateParams = {
        "account": account_id,
        "refresh_url": refresh_url,
        "return_url": return_url,
        "type": "account_onboarding",
    }
    return _call(lambda: client().v1.account_links.create(params=params))


def login_link_create(*, account_id: str) -> stripe.LoginLink:
    return _call(lambda: client().v1.accounts.login_links.create(account_id))


# --- money ------------------------------------------------------------------------------------


def transfer_create(
    *,
    amount_minor: int,
    currency: str,
    destination: str,
    transfer_group: str,
    metadata: dict[str, str],
    idempotency_key: str,
) -> stripe.Transfer:
    params: stripe.params.TransferCreateParams = {
        "amount": amount_minor,
        "currency": currency.lower(),
        "destination": destination,
        "transfer_group": transfer_group,
        "metadata": metadata,
    }
    return _call(lambda: client().v1.transfers.create(params=params, options=_options(idempotency_key)))


def transfer_reversal_create(
    *, transfer_id: str, amount_minor: int | None, metadata: dict[str, str], idempotency_key: str
) -> stripe.Reversal:
    params: stripe.params.TransferReversalCreateParams = {"metadata": metadata}
    if amount_minor is not None:
        params["amount"] = amount_minor
    return _call(
        lambda: client().v1.transfers.reversals.create(transfer_id, params=params, options=_options(idempotency_key))
    )


def transfer_retrieve(transfer_id: str) -> stripe.Transfer:
    return _call(lambda: client().v1.transfers.retrieve(transfer_id))


def transfer_reversals_list(transfer_id: str) -> Iterator[stripe.Reversal]:
    """Every reversal of a transfer, page by page (a transfer embeds only its first ten)."""
    params: stripe.params.TransferReversalListParams = {"limit": 100}
    while True:
        page = _call(functools.partial(client().v1.transfers.reversals.list, transfer_id, params=params))
        yield from page.data
        if not page.has_more or not page.data:
            return
        params = {**params, "starting_after": page.data[-1].id}


def transfers_list(*, transfer_group: str | None = None) -> Iterator[stripe.Transfer]:
    """Every transfer (of one group), page by page, each page through the error mapping: what
    a payout retry and the reconciliation compare with."""
    params: stripe.params.TransferListParams = {"limit": 100}
    if transfer_group:
        params["transfer_group"] = transfer_group
    while True:
        page = _call(functools.partial(client().v1.transfers.list, params=params))
        yield from page.data
        if not page.has_more or not page.data:
            return
        params = {**params, "starting_after": page.data[-1].id}


def balance_retrieve() -> stripe.Balance:
    return _call(lambda: client().v1.balance.retrieve())


def checkout_session_create(
    *,
    amount_minor: int,
    currency: str,
    product_name: str,
    success_url: str,
    cancel_url: str,
    metadata: dict[str, str],
    idempotency_key: str,
) -> stripe.checkout.Session:
    """A Checkout session that charges the business `amount_minor` to fund its payouts."""
    params: stripe.params.checkout.SessionCreateParams = {
        "mode": "payment",
        "line_items": [
            {
                "quantity": 1,
                "price_data": {
                    "currency": currency.lower(),
                    "unit_amount": amount_minor,
                    "product_data": {"name": product_name},
                },
            }
        ],
        "success_url": success_url,
        "cancel_url": cancel_url,
        "metadata": metadata,
        "payment_intent_data": {"metadata": metadata},
    }
    return _call(lambda: client().v1.checkout.sessions.create(params=params, options=_options(idempotency_key)))


def checkout_session_retrieve(session_id: str) -> stripe.checkout.Session:
    return _call(lambda: client().v1.checkout.sessions.retrieve(session_id))
