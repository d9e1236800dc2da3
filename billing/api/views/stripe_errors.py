"""Stripe errors never come out as a 500: `StripeErrors` answers them as 503 `stripe_unavailable`
(Stripe unreachable, overloaded or rate limiting: try again), 422 `stripe_refused` (Stripe
refused this request's content), 409 `stripe_busy` (the same request is still in flight at
Stripe) or 502 `stripe_error` (the platform's own Stripe setup is at fault: logged)."""

from __future__ import annotations

import logging

from drf_spectacular.utils import OpenApiResponse
from rest_framework.response import Response

from billing import gateway
from billing.errors import BillingError
from core.api.errors import ErrorSerializer

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 30


def billing_error_from(exc: gateway.GatewayError) -> BillingError:
    """What the caller is told when a Stripe call failed (see the module's docstring)."""
    if exc.code == "not_configured":
        return BillingError("payouts_not_configured", "Payouts are not set up on this platform.", status=503)
    if exc.transient:
        return BillingError(
            "stripe_unavailable", "Stripe could not be reached or is busy; try again in a minute.", status=503
        )
    if exc.code == "idempotency_key_in_use":
        return BillingError("stripe_busy", "Stripe is still working on the same request; try again.", status=409)
    if exc.refused_request:
        return BillingError("stripe_refused", f"Stripe refused the request ({exc.code}).", status=422)
    logger.error("Stripe refused the platform's request: %s (HTTP %s): %s", exc.code, exc.http_status, exc.message)
    return BillingError("stripe_error", "Stripe refused the platform's request; the operators are told.", status=502)


class StripeErrors:
    """For views that call Stripe (through the services): a GatewayError becomes a BillingError,
    which the API's exception handler answers with its status and code."""

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, gateway.GatewayError):
            exc = billing_error_from(exc)
        response = super().handle_exception(exc)  # type: ignore[misc]
        if response.status_code == 503:  # Stripe unavailable (also as the services say it)
            response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response


ERROR = ErrorSerializer
STRIPE_RESPONSES = {
    422: OpenApiResponse(ERROR, description="Stripe refused the request (`stripe_refused`)."),
    502: OpenApiResponse(ERROR, description="The platform's Stripe setup is at fault (`stripe_error`)."),
    503: OpenApiResponse(
        ERROR, description="Stripe unreachable or busy (`stripe_unavailable`; retry after `Retry-After` seconds)."
    ),
}
