"""Stripe's error answers: the body shape, HTTP status and the codes and messages Stripe uses.

stripe-python picks its exception class from the HTTP status and `error.type` (see
`_api_requestor.specific_v1_api_error`), so both have to be right for the platform's error handling
to be tested against the double.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_DOC_BASE = "https://stripe.com/docs/error-codes/"


class StripeError(Exception):
    """An error the double answers with, shaped like Stripe's `{"error": {...}}` body.

    `saved` tells the idempotency layer whether Stripe would store this answer under the request's
    Idempotency-Key: Stripe saves results only once an endpoint began executing, not for requests
    that failed parameter validation, were rate limited or conflicted with a concurrent request.
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        saved: bool = True,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.saved = saved
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        """The JSON body; like Stripe, absent fields are left out rather than sent as null."""
        error: dict[str, Any] = {}
        if self.code:
            error["code"] = self.code
            error["doc_url"] = _DOC_BASE + self.code.replace("_", "-")
        error["message"] = self.message
        if self.param:
            error["param"] = self.param
        error["type"] = self.type
        return {"error": error}


def parameter_missing(param: str) -> StripeError:
    return StripeError(400, f"Missing required param: {param}.", code="parameter_missing", param=param, saved=False)


def parameter_invalid_integer(param: str, value: object) -> StripeError:
    return StripeError(400, f"Invalid integer: {value}", code="parameter_invalid_integer", param=param, saved=False)


def parameter_invalid(param: str, message: str) -> StripeError:
    return StripeError(400, message, param=param, saved=False)


def resource_missing(kind: str, object_id: str, *, param: str = "id") -> StripeError:
    return StripeError(404, f"No such {kind}: '{object_id}'", code="resource_missing", param=param)


def unrecognized_url(method: str, path: str) -> StripeError:
    return StripeError(
        404,
        f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs "
        "or we can help at https://support.stripe.com/.",
        saved=False,
    )


def api_key_missing() -> StripeError:
    return StripeError(
        401,
        "You did not provide an API key. You need to provide your API key in the Authorization header, "
        "using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). "
        "See https://stripe.com/docs/api#authentication for details, or we can help at https://support.stripe.com/.",
        saved=False,
        headers={"WWW-Authenticate": 'Basic realm="Stripe"'},
    )


def api_key_invalid(api_key: str) -> StripeError:
    return StripeError(
        401,
        f"Invalid API Key provided: {mask_key(api_key)}",
        saved=False,
        headers={"WWW-Authenticate": 'Basic realm="Stripe"'},
    )


def account_invalid(api_key: str, account_id: str) -> StripeError:
    return StripeError(
        403,
        f"The provided key '{mask_key(api_key)}' does not have access to account '{account_id}' "
        "(or that account does not exist). Application access may have been revoked.",
        code="account_invalid",
        saved=False,
    )


def balance_insufficient() -> StripeError:
    return StripeError(
        400,
        "You have insufficient available funds in your Stripe account. Try adding funds directly to your "
        "available balance by creating Charges using the 4000000000000077 test card. "
        "See: https://stripe.com/docs/testing#available-balance",
        code="balance_insufficient",
    )


def insufficient_capabilities_for_transfer() -> StripeError:
    return StripeError(
        400,
        "Your destination account needs to have at least one of the following capabilities enabled: "
        "transfers, crypto_transfers, legacy_payments",
        code="insufficient_capabilities_for_transfer",
        param="destination",
    )


def idempotency_params_mismatch(key: str) -> StripeError:
    return StripeError(
        400,
        "Keys for idempotent requests can only be used with the same parameters they were first used with. "
        f"Try using a key other than '{key}' if you meant to execute a different request.",
        type="idempotency_error",
        saved=False,
    )


def idempotency_endpoint_mismatch(key: str, first: str, now: str) -> StripeError:
    return StripeError(
        400,
        f"Keys for idempotent requests can only be used for the same endpoint they were first used for "
        f"('{first}' vs '{now}'). Try using a key other than '{key}' if you meant to execute a different request.",
        type="idempotency_error",
        saved=False,
    )


def idempotency_key_in_use() -> StripeError:
    # 409: stripe-python retries conflicts, so a retry racing the first attempt waits for its result.
    return StripeError(
        409,
        "There is currently another in-progress request using this Idempotent Key (that probably means you "
        "submitted twice, and the other request is still going through): please try again later.",
        code="idempotency_key_in_use",
        saved=False,
    )


def rate_limit(*, retry_after: int | None = None, should_retry: bool | None = None) -> StripeError:
    return StripeError(
        429,
        "Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits.",
        code="rate_limit",
        saved=False,
        headers=_retry_headers(retry_after, should_retry),
    )


def lock_timeout(*, retry_after: int | None = None, should_retry: bool | None = True) -> StripeError:
    return StripeError(
        429,
        "This object cannot be accessed right now because another API request or Stripe process is currently "
        "accessing it. If you see this error intermittently, retry the request. If you see this error frequently "
        "and are making multiple concurrent requests to a single object, make your requests serially or at a "
        "lower rate.",
        code="lock_timeout",
        saved=False,
        headers=_retry_headers(retry_after, should_retry),
    )


def api_error(status: int = 500) -> StripeError:
    return StripeError(
        status,
        "Sorry, something went wrong. We've already been notified of the problem, but if you need any help, "
        "you can reach us at https://support.stripe.com/contact.",
        type="api_error",
        saved=False,
    )


def unsupported_by_double(what: str) -> StripeError:
    """Something real Stripe does that this double does not: said plainly rather than half-imitated."""
    return StripeError(400, f"The local Stripe double does not support {what}.", saved=False)


def mask_key(api_key: str) -> str:
    """Stripe shows a key's prefix and last four characters, nothing in between."""
    prefix, _, rest = api_key.rpartition("_")
    if not prefix:
        return "*" * max(len(api_key) - 4, 0) + api_key[-4:]
    return f"{prefix}_{'*' * max(len(rest) - 4, 0)}{rest[-4:]}"


def _retry_headers(retry_after: int | None, should_retry: bool | None) -> dict[str, str]:
    headers: dict[str, str] = {}
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    if should_retry is not None:
        headers["Stripe-Should-Retry"] = "true" if should_retry else "false"
    return headers
