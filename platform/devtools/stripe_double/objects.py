"""Stripe objects built from Stripe's own example fixtures, with the fields a request sets filled in.

Starting from the fixture keeps every field a real answer has (stripe-python and dj-stripe read
some of them without checking they exist); the builders overwrite the fields whose fixture values
are placeholders (`"message"`, random amounts, links to stripe.me) with what Stripe would answer for
an object the double made. Builders are pure: they neither read nor change the double's state.
"""

from __future__ import annotations

import copy
import json
import secrets
import string
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from . import errors, forms

Obj = dict[str, Any]

_FIXTURES: dict[str, Obj] = json.loads(Path(__file__).with_name("fixtures.json").read_text())["resources"]
_ALPHABET = string.ascii_letters + string.digits

# A fresh connected account has to give these before Stripe activates its capabilities; the real
# list depends on country and capabilities, but only "something is due" matters to the platform.
_ONBOARDING_DUE = ["business_type", "external_account", "tos_acceptance.date", "tos_acceptance.ip"]
_COUNTRY_CURRENCY = {
    "US": "usd",
    "GB": "gbp",
    "CA": "cad",
    "AU": "aud",
    "NZ": "nzd",
    "CH": "chf",
    "SE": "sek",
    "NO": "nok",
    "DK": "dkk",
    "PL": "pln",
    "CZ": "czk",
    "JP": "jpy",
    "SG": "sgd",
    "HK": "hkd",
    "MX": "mxn",
    "BR": "brl",
}
_EURO_COUNTRIES = frozenset(
    "AT BE CY DE EE ES FI FR GR HR IE IT LT LU LV MT NL PT SI SK".split()  # noqa: SIM905 - a readable list
)


def fixture(resource: str) -> Obj:
    """A private copy of Stripe's example object for `resource` (e.g. "transfer", "checkout.session")."""
    return copy.deepcopy(_FIXTURES[resource])


def new_id(prefix: str, length: int = 24) -> str:
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def list_object(url: str, data: list[Obj], *, has_more: bool) -> Obj:
    return {"object": "list", "data": data, "has_more": has_more, "url": url}


def empty_requirements() -> Obj:
    return {
        "alternatives": [],
        "current_deadline": None,
        "currently_due": [],
        "disabled_reason": None,
        "errors": [],
        "eventually_due": [],
        "past_due": [],
        "pending_verification": [],
    }


def account_new(*, params: Mapping[str, Any], now: int) -> Obj:
    """A connected account as `POST /v1/accounts` answers: nothing enabled, onboarding due."""
    account = fixture("account")
    account_id = new_id("acct_", 16)
    country = (forms.optional_str(params, "country") or "US").upper()
    account_type, controller = _account_type(params)
    account.update(
        id=account_id,
        created=now,
        country=country,
        default_currency=_currency_of(country),
        email=forms.optional_str(params, "email"),
        business_type=forms.optional_str(params, "business_type"),
        metadata=forms.metadata(params),
        type=account_type,
        controller=controller,
        charges_enabled=False,
        payouts_enabled=False,
        details_submitted=False,
        capabilities={name: "inactive" for name in _requested_capabilities(params)},
        future_requirements=empty_requirements(),
        tos_acceptance={"date": None, "ip": None, "user_agent": None},
    )
    account["external_accounts"]["url"] = f"/v1/accounts/{account_id}/external_accounts"
    account["requirements"] = {
        **empty_requirements(),
        "currently_due": list(_ONBOARDING_DUE),
        "eventually_due": list(_ONBOARDING_DUE),
        "past_due": list(_ONBOARDING_DUE),
        "disabled_reason": "requirements.past_due",
    }
    agreement = _nested(params, "tos_acceptance").get("service_agreement")
    if agreement:
        account["tos_acceptance"]["service_agreement"] = agreement
    business_profile_merge(account, params)
    return account


def account_platform(*, now: int) -> Obj:
    """The platform's own account (`GET /v1/account`), fully enabled."""
    account = fixture("account")
    account_id = new_id("acct_", 16)
    account.update(
        id=account_id,
        created=now,
        email="platform@example.com",
        type="standard",
        charges_enabled=True,
        payouts_enabled=True,
        details_submitted=True,
        requirements=empty_requirements(),
        future_requirements=empty_requirements(),
    )
    account["external_accounts"]["url"] = f"/v1/accounts/{account_id}/external_accounts"
    return account


_ONBOARDING_FIELDS = (
    "details_submitted",
    "payouts_enabled",
    "charges_enabled",
    "capabilities",
    "requirements",
    "future_requirements",
    "business_type",
    "tos_acceptance",
)


def account_onboarded(account: Obj, *, now: int) -> Obj:
    """Apply what finishing Stripe-hosted onboarding does; returns the previous values of what changed."""
    before = {key: copy.deepcopy(account[key]) for key in _ONBOARDING_FIELDS}
    account["details_submitted"] = True
    account["payouts_enabled"] = True
    # Recipient accounts (transfers only) never get charges enabled; accounts that asked for card
    # payments do once onboarded.
    account["charges_enabled"] = "card_payments" in account["capabilities"]
    account["capabilities"] = {name: "active" for name in account["capabilities"]}
    account["requirements"] = empty_requirements()
    account["future_requirements"] = empty_requirements()
    account["business_type"] = account["business_type"] or "individual"
    account["tos_acceptance"] = {**account["tos_acceptance"], "date": now, "ip": "127.0.0.1", "user_agent": None}
    return {key: value for key, value in before.items() if account[key] != value}


def account_link_new(*, url: str, now: int, expires_at: int) -> Obj:
    link = fixture("account_link")
    link.update(created=now, expires_at=expires_at, url=url)
    return link


def login_link_new(*, url: str, now: int) -> Obj:
    link = fixture("login_link")
    link.update(created=now, url=url)
    return link


def transfer_new(*, amount: int, currency: str, destination: str, params: Mapping[str, Any], now: int) -> Obj:
    transfer = fixture("transfer")
    transfer_id = new_id("tr_")
    transfer.update(
        id=transfer_id,
        amount=amount,
        amount_reversed=0,
        balance_transaction=new_id("txn_"),
        created=now,
        currency=currency,
        description=forms.optional_str(params, "description"),
        destination=destination,
        destination_payment=new_id("py_", 14),
        metadata=forms.metadata(params),
        reversed=False,
        source_transaction=forms.optional_str(params, "source_transaction"),
        transfer_group=forms.optional_str(params, "transfer_group"),
    )
    transfer["reversals"] = list_object(f"/v1/transfers/{transfer_id}/reversals", [], has_more=False)
    return transfer


def reversal_new(*, transfer: Obj, amount: int, params: Mapping[str, Any], now: int) -> Obj:
    reversal = fixture("transfer_reversal")
    reversal.update(
        id=new_id("trr_"),
        amount=amount,
        balance_transaction=new_id("txn_"),
        created=now,
        currency=transfer["currency"],
        destination_payment_refund=new_id("pyr_"),
        metadata=forms.metadata(params),
        source_refund=None,
        transfer=transfer["id"],
    )
    return reversal


def balance_object(balances: Mapping[str, Mapping[str, int]], *, platform: bool) -> Obj:
    """`balances` maps currency to {"available": cents, "pending": cents}."""
    balance = fixture("balance")
    currencies = sorted(balances)
    balance["available"] = [_funds(balances[c]["available"], c) for c in currencies]
    balance["pending"] = [_funds(balances[c]["pending"], c) for c in currencies]
    if platform:
        balance["connect_reserved"] = [{"amount": 0, "currency": c} for c in currencies]
    else:
        balance.pop("connect_reserved", None)
    return balance


def _funds(amount: int, currency: str) -> Obj:
    return {"amount": amount, "currency": currency, "source_types": {"card": amount}}


def checkout_session_new(*, params: Mapping[str, Any], now: int, url_base: str) -> Obj:
    """A payment-mode Checkout Session, open and unpaid, whose `url` is the double's own Pay page."""
    mode = forms.required_str(params, "mode")
    if mode != "payment":
        raise errors.unsupported_by_double(f"Checkout Sessions in mode '{mode}' (only 'payment')")
    currency, amount = _checkout_amount(params)
    session = fixture("checkout.session")
    session_id = "cs_test_" + new_id("a1", 56)
    payment_intent_data = _nested(params, "payment_intent_data")
    session.update(
        id=session_id,
        created=now,
        expires_at=now + 24 * 3600,
        mode=mode,
        currency=currency,
        amount_subtotal=amount,
        amount_total=amount,
        success_url=forms.optional_str(params, "success_url"),
        cancel_url=forms.optional_str(params, "cancel_url"),
        client_reference_id=forms.optional_str(params, "client_reference_id"),
        customer_email=forms.optional_str(params, "customer_email"),
        metadata=forms.metadata(params),
        url=f"{url_base}/_double/checkout/{session_id}",
        status="open",
        payment_status="unpaid",
        payment_intent=None,
        customer_details=None,
        collected_information=None,
        after_expiration=None,
        consent=None,
        consent_collection=None,
        currency_conversion=None,
        shipping_address_collection=None,
        shipping_cost=None,
        payment_method_configuration_details=None,
        total_details={"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        custom_text={
            "after_submit": None,
            "shipping_address": None,
            "submit": None,
            "terms_of_service_acceptance": None,
        },
        automatic_tax={"enabled": False, "liability": None, "status": None, "provider": None},
        invoice_creation={"enabled": False, "invoice_data": session["invoice_creation"]["invoice_data"]},
        adaptive_pricing={"enabled": False},
        managed_payments={"enabled": False},
    )
    # Kept off the public object: what the payment intent gets once the customer pays.
    session["_payment_intent_data"] = {
        "metadata": forms.metadata(payment_intent_data),
        "transfer_group": forms.optional_str(payment_intent_data, "transfer_group"),
        "description": forms.optional_str(payment_intent_data, "description"),
    }
    return session


def _checkout_amount(params: Mapping[str, Any]) -> tuple[str, int]:
    items = params.get("line_items")
    if not isinstance(items, list) or not items:
        raise errors.parameter_missing("line_items")
    currencies: set[str] = set()
    total = 0
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise errors.parameter_invalid(f"line_items[{index}]", "Invalid hash")
        if "price" in item:
            raise errors.unsupported_by_double("line_items with a Price id (use price_data)")
        price_data = _nested(item, "price_data")
        if not price_data:
            raise errors.parameter_missing(f"line_items[{index}][price_data]")
        currencies.add(forms.required_str(price_data, "currency").lower())
        unit_amount = forms.integer(price_data, "unit_amount", required=True, minimum=0) or 0
        quantity = forms.integer(item, "quantity", required=False, minimum=1) or 1
        total += unit_amount * quantity
    if len(currencies) != 1:
        raise errors.parameter_invalid("line_items", "All line items must use the same currency.")
    currency = currencies.pop()
    asked = forms.optional_str(params, "currency")
    if asked is not None and asked.lower() != currency:
        raise errors.parameter_invalid("currency", "currency must match the currency of the line items.")
    return currency, total


def public(obj: Obj) -> Obj:
    """The object as the API shows it: without the double's private `_` fields."""
    return {key: value for key, value in obj.items() if not key.startswith("_")}


def payment_intent_succeeded(*, session: Obj, now: int) -> Obj:
    intent = fixture("payment_intent")
    intent_id = new_id("pi_")
    extra = session["_payment_intent_data"]
    intent.update(
        id=intent_id,
        amount=session["amount_total"],
        amount_received=session["amount_total"],
        currency=session["currency"],
        created=now,
        canceled_at=None,
        client_secret=f"{intent_id}_secret_{new_id('', 25)}",
        description=extra["description"],
        last_payment_error=None,
        latest_charge=new_id("ch_"),
        metadata=extra["metadata"],
        next_action=None,
        payment_method=new_id("pm_"),
        payment_method_configuration_details=None,
        processing=None,
        shipping=None,
        status="succeeded",
        transfer_data=None,
        transfer_group=extra["transfer_group"],
        managed_payments={"enabled": False},
    )
    return intent


def customer_details(email: str | None) -> Obj:
    return {
        "address": {"city": None, "country": "US", "line1": None, "line2": None, "postal_code": "42424", "state": None},
        "email": email or "customer@example.com",
        "name": "Test Customer",
        "phone": None,
        "tax_exempt": "none",
        "tax_ids": [],
        "business_name": None,
        "individual_name": None,
    }


def payout_new(*, amount: int, currency: str, status: str, failure_code: str | None, now: int) -> Obj:
    payout = fixture("payout")
    failed = status == "failed"
    payout.update(
        id=new_id("po_"),
        amount=amount,
        currency=currency,
        created=now,
        arrival_date=now,
        automatic=True,
        balance_transaction=new_id("txn_"),
        destination=new_id("ba_"),
        status=status,
        failure_code=failure_code if failed else None,
        failure_message=_PAYOUT_FAILURES.get(failure_code or "", "The payout failed.") if failed else None,
        failure_balance_transaction=new_id("txn_") if failed else None,
        trace_id={"status": "unsupported" if failed else "pending", "value": None},
    )
    return payout


_PAYOUT_FAILURES = {
    "account_closed": "The bank account has been closed.",
    "no_account": "The bank account details on file are probably incorrect. No bank account could be located "
    "with those details.",
    "insufficient_funds": "Your Stripe account has insufficient funds to cover the payout.",
    "invalid_account_number": "The bank account number or routing number is invalid.",
}


def event_new(
    *,
    event_type: str,
    obj: Obj,
    api_version: str,
    now: int,
    pending_webhooks: int,
    account: str | None = None,
    request_id: str | None = None,
    idempotency_key: str | None = None,
    previous_attributes: Obj | None = None,
) -> Obj:
    """An event holding a snapshot of `obj` as it is now; Connect events carry the account's id."""
    event = fixture("event")
    data: Obj = {"object": copy.deepcopy(public(obj))}
    if previous_attributes is not None:
        data["previous_attributes"] = copy.deepcopy(previous_attributes)
    event.update(
        id=new_id("evt_"),
        api_version=api_version,
        created=now,
        data=data,
        livemode=False,
        pending_webhooks=pending_webhooks,
        request={"id": request_id, "idempotency_key": idempotency_key},
        type=event_type,
    )
    if account is not None:
        event["account"] = account
    return event


def _account_type(params: Mapping[str, Any]) -> tuple[str, Obj]:
    """The account's `type` and `controller`, from `type=` or from `controller[...]` properties."""
    requested = forms.optional_str(params, "type")
    asked = _nested(params, "controller")
    if requested is None and not asked:
        raise errors.parameter_missing("type")
    if requested is not None:
        if requested not in _LEGACY_CONTROLLERS:
            raise errors.parameter_invalid("type", f"Invalid type: must be one of {', '.join(_LEGACY_CONTROLLERS)}")
        return requested, _controller(_LEGACY_CONTROLLERS[requested])
    controller = {
        "fees": {"payer": _nested(asked, "fees").get("payer", "account")},
        "losses": {"payments": _nested(asked, "losses").get("payments", "stripe")},
        "requirement_collection": asked.get("requirement_collection", "stripe"),
        "stripe_dashboard": {"type": _nested(asked, "stripe_dashboard").get("type", "full")},
    }
    account_type = "none"
    for legacy, properties in _LEGACY_CONTROLLERS.items():
        if _same_controller(properties, controller):
            account_type = legacy
    return account_type, _controller(controller)


def _controller(properties: Obj) -> Obj:
    return {"is_controller": True, "type": "application", **copy.deepcopy(properties)}


_LEGACY_CONTROLLERS: dict[str, Obj] = {
    "standard": {
        "fees": {"payer": "account"},
        "losses": {"payments": "stripe"},
        "requirement_collection": "stripe",
        "stripe_dashboard": {"type": "full"},
    },
    "express": {
        "fees": {"payer": "application_express"},
        "losses": {"payments": "application"},
        "requirement_collection": "stripe",
        "stripe_dashboard": {"type": "express"},
    },
    "custom": {
        "fees": {"payer": "application_custom"},
        "losses": {"payments": "application"},
        "requirement_collection": "application",
        "stripe_dashboard": {"type": "none"},
    },
}


def _same_controller(legacy: Obj, controller: Obj) -> bool:
    # Stripe reports the fee payer of controller-created Express/Custom-like accounts as plain
    # "application"; compare on that.
    fees = legacy["fees"]["payer"].split("_")[0]
    return (
        fees == controller["fees"]["payer"]
        and legacy["losses"] == controller["losses"]
        and legacy["requirement_collection"] == controller["requirement_collection"]
        and legacy["stripe_dashboard"] == controller["stripe_dashboard"]
    )


def _requested_capabilities(params: Mapping[str, Any]) -> list[str]:
    names = []
    for name, spec in _nested(params, "capabilities").items():
        if isinstance(spec, dict) and forms.boolean(spec.get("requested", "false"), f"capabilities[{name}][requested]"):
            names.append(name)
    return names


def business_profile_merge(account: Obj, params: Mapping[str, Any]) -> None:
    """Set the `business_profile[...]` strings a request sends (an empty string clears one)."""
    for key, value in _nested(params, "business_profile").items():
        if key in account["business_profile"] and isinstance(value, str):
            account["business_profile"][key] = value or None


def _currency_of(country: str) -> str:
    if country in _EURO_COUNTRIES:
        return "eur"
    return _COUNTRY_CURRENCY.get(country, "usd")


def _nested(params: Mapping[str, Any], name: str) -> Obj:
    value = params.get(name)
    if value is None or value == "":
        return {}
    if not isinstance(value, dict):
        raise errors.parameter_invalid(name, f"Invalid hash: {name} must be a hash")
    return value
