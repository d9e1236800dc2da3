"""Stripe webhooks: verified by dj-stripe, applied by us, once, never backwards.

How an event gets here. Stripe POSTs to dj-stripe's endpoint on the public host,
`/stripe/webhook/<uuid>/` (config/urls_public.py). dj-stripe finds the WebhookEndpoint row of
that uuid, stores the request (a WebhookEventTrigger row in the public schema, kept even when
the signature is wrong: that is dj-stripe's log of attempts), verifies `Stripe-Signature` with
the row's secret (400 when it does not verify) and, because DJSTRIPE_WEBHOOK_EVENT_CALLBACK
names `trigger_process`, hands the verified event to us instead of syncing it itself.

Why the callback rather than dj-stripe's own processing: dj-stripe would mirror the objects into
its tables and fetch related ones from Stripe with the `stripe` module's global key and API base
(api.stripe.com), which tests and the offline run must never reach, and which gives us nothing:
our state is the payout ledger, items, accounts and fundings. So no dj-stripe Event rows are
made and nothing here calls Stripe, except listing a transfer's reversals past the ten it
embeds (through billing.gateway, like every other call).

Rows of WebhookEndpoint come from settings (`webhook_endpoints_ensure`, run by `manage.py
stripe_webhooks`): one for the platform account's events (STRIPE_WEBHOOK_SECRET) and one for
its connected accounts' events (STRIPE_CONNECT_WEBHOOK_SECRET), because Stripe signs those two
kinds with two endpoint secrets. The uuid is random, made once and kept in the row: the URL is
not guessable, so strangers cannot make dj-stripe store their posts.

Applying (`event_apply`), in dj-stripe's transaction:
1. resolve: find the tenant the event is about, from our public mapping of connected accounts
   and the metadata we put on transfers and Checkout sessions; when they disagree (an account
   of tenant A whose metadata names tenant B, a transfer whose group, destination or item do not
   match), or the event is in the other mode (test/live), it is refused: logged, answered 200
   (a retry would not change the answer), nothing written. Types we do not use are ignored (200).
2. deduplicate: insert the event's id (AppliedEvent, unique); a second delivery, even one
   running at the same moment, finds it and applies nothing.
3. apply, in the tenant's schema, through the services that already guard their own states:
   accounts by `synced_at` (the event's `created`), items never leave paid or reversed, the
   ledger has one entry per reference, bank payouts by `created` and never back to an earlier
   status. So an older event arriving after a newer one moves nothing back.
An error that may pass (Stripe unreachable while listing reversals, the database) is a 500, and
Stripe delivers the event again later.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.datastructures import CaseInsensitiveMapping
from django_tenants.utils import tenant_context
from djstripe.enums import WebhookEndpointStatus, WebhookEndpointValidation
from djstripe.models import WebhookEndpoint

from billing import funding, payouts, reversals
from billing.connect.models import AppliedEvent, ConnectedAccount
from billing.connect.services import account_apply
from billing.errors import BillingError
from billing.models import BankPayout, Funding, PayoutItem
from tenants.models import Tenant

logger = logging.getLogger(__name__)

# What to tick when creating each endpoint in Stripe's dashboard.
PLATFORM_EVENTS = [
    "transfer.created",
    "transfer.updated",
    "transfer.reversed",
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
]
CONNECT_EVENTS = [
    "account.updated",
    "payout.created",
    "payout.updated",
    "payout.paid",
    "payout.failed",
    "payout.canceled",
]


class Refused(Exception):
    """An event we will not apply: it names something that is not ours, or our records and its
    metadata disagree about whose it is."""


@dataclass(frozen=True)
class Target:
    tenant: Tenant
    apply: Callable[[], object]
    in_schema: bool = True  # False: the change is to public tables (connected accounts)


def trigger_process(trigger: Any, api_key: str | None = None) -> None:
    """DJSTRIPE_WEBHOOK_EVENT_CALLBACK: dj-stripe calls it with a trigger whose signature it has
    verified, inside its transaction, and saves the trigger afterwards."""
    event = trigger.json_body
    if CaseInsensitiveMapping(trigger.headers).get("x-djstripe-webhook-secret"):
        # With DEBUG on, dj-stripe verifies against a secret the request itself names (for the
        # Stripe CLI): anyone could sign. Give the CLI's secret to STRIPE_WEBHOOK_SECRET instead.
        logger.error("Stripe event %s refused: it named its own secret", event.get("id"))
        trigger.processed = True
        return
    outcome = event_apply(event=event)
    logger.info("Stripe event %s (%s): %s", event.get("id"), event.get("type"), outcome)
    trigger.processed = True


def event_apply(*, event: Mapping[str, Any]) -> str:
    """Apply one verified event. Returns `applied`, `duplicate`, `ignored` or `refused`."""
    resolve = _RESOLVERS.get(str(event.get("type")))
    if resolve is None:
        return "ignored"
    try:
        if bool(event.get("livemode")) != _live():
            raise Refused("the event is from the other mode (test/live) than our key")
        target = resolve(event)
        if target is None:
            return "ignored"
        with transaction.atomic():
            try:
                with transaction.atomic():
                    AppliedEvent.objects.create(
                        event_id=event["id"], type=event["type"], created=int(event["created"]), tenant=target.tenant
                    )
            except IntegrityError:
                return "duplicate"
            if target.in_schema:
                with tenant_context(target.tenant):
                    target.apply()
            else:
                target.apply()
    except (Refused, BillingError) as exc:
        # Rolled back (the dedup row too); a retry would be refused again, so Stripe gets a 200.
        logger.error("Stripe event %s (%s) refused: %s", event.get("id"), event.get("type"), exc)
        return "refused"
    return "applied"


def _live() -> bool:
    return "_live_" in settings.STRIPE_SECRET_KEY


def _tenant(schema: Any) -> Tenant:
    tenant = Tenant.objects.filter(schema_name=str(schema or ""), kind=Tenant.Kind.BUSINESS).first()
    if tenant is None:
        raise Refused(f"no tenant {schema!r}")
    return tenant


def _object(event: Mapping[str, Any]) -> Mapping[str, Any]:
    return event["data"]["object"]


# --- connected accounts -----------------------------------------------------------------------


def _account_event(event: Mapping[str, Any]) -> Target | None:
    account = _object(event)
    if event.get("account") not in (None, account["id"]):
        raise Refused(f"an event of {event.get('account')} about account {account['id']}")
    mapping = ConnectedAccount.objects.select_related("tenant").filter(stripe_id=account["id"]).first()
    if mapping is None:
        return None  # not an affiliate's account (or not ours)
    metadata = account.get("metadata") or {}
    if metadata.get("tenant") != mapping.tenant.schema_name or metadata.get("affiliate_id") != str(
        mapping.affiliate_id
    ):
        raise Refused(f"account {account['id']} is mapped to another tenant or affiliate than its metadata names")
    as_of = int(event["created"])
    return Target(mapping.tenant, lambda: account_apply(stripe_account=account, as_of=as_of), in_schema=False)


# --- transfers --------------------------------------------------------------------------------


def _transfer_event(event: Mapping[str, Any]) -> Target | None:
    """transfer.created / updated / reversed: each carries the whole transfer, so all three
    bring the item up to what Stripe says: paid if it was still sending (its worker died after
    Stripe answered), and any reversal recorded."""
    transfer = _object(event)
    metadata = transfer.get("metadata") or {}
    if not (metadata.get("tenant") and metadata.get("run") and metadata.get("item")):
        return None  # not a payout transfer
    tenant = _tenant(metadata["tenant"])
    if transfer.get("transfer_group") != f"{tenant.schema_name}-payout-run-{metadata['run']}":
        raise Refused(f"transfer {transfer['id']}: its group does not name its metadata's tenant and run")
    mapping = ConnectedAccount.objects.filter(stripe_id=transfer.get("destination")).first()
    if mapping is None or mapping.tenant_id != tenant.pk:
        raise Refused(f"transfer {transfer['id']} goes to an account that is not {tenant.schema_name}'s")
    with tenant_context(tenant):
        item = PayoutItem.objects.filter(pk=_int(metadata["item"]), run_id=_int(metadata["run"])).first()
        if item is None or (item.destination, item.affiliate_id, item.amount_minor, item.currency.lower()) != (
            transfer.get("destination"),
            mapping.affiliate_id,
            transfer.get("amount"),
            transfer.get("currency"),
        ):
            raise Refused(f"transfer {transfer['id']} does not match payout item {metadata['item']}")
    return Target(tenant, lambda: _transfer_apply(item.pk, transfer))


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise Refused(f"not an id: {value!r}") from None


def _transfer_apply(item_id: int, transfer: Mapping[str, Any]) -> None:
    item = PayoutItem.objects.get(pk=item_id)
    if item.status == PayoutItem.Status.SENDING:
        # Its worker may still be running: it gets this same transfer back for the item's key
        # and its own record finds the item paid already (both lock the item first).
        item = payouts.item_record_transfer(item_id=item_id, transfer_id=transfer["id"])
    if item.status not in (PayoutItem.Status.PAID, PayoutItem.Status.REVERSED):
        raise Refused(f"transfer {transfer['id']} for payout item {item_id}, which is {item.status}")
    if item.stripe_transfer_id != transfer["id"]:
        raise Refused(f"payout item {item_id} was paid by {item.stripe_transfer_id}, not {transfer['id']}")
    if transfer.get("amount_reversed"):
        reversals.reversal_record(item_id=item_id, transfer=reversals.TransferState.of(transfer))


# --- funding ----------------------------------------------------------------------------------


def _checkout_event(event: Mapping[str, Any]) -> Target | None:
    session = _object(event)
    metadata = session.get("metadata") or {}
    if metadata.get("purpose") != "payout_funding":
        return None
    tenant = _tenant(metadata.get("tenant"))
    with tenant_context(tenant):
        if not Funding.objects.filter(session_id=session["id"]).exists():
            raise Refused(f"checkout session {session['id']} is not a funding of {tenant.schema_name}")
    return Target(tenant, lambda: funding.funding_complete(session=session))


# --- bank payouts of connected accounts -------------------------------------------------------


def _payout_event(event: Mapping[str, Any]) -> Target | None:
    account_id = event.get("account")
    if not account_id:
        return None  # the platform's own payouts
    mapping = ConnectedAccount.objects.select_related("tenant").filter(stripe_id=account_id).first()
    if mapping is None:
        return None
    payout, as_of = _object(event), int(event["created"])
    return Target(
        mapping.tenant,
        lambda: bank_payout_apply(affiliate_id=mapping.affiliate_id, account=account_id, payout=payout, as_of=as_of),
    )


# Statuses in the order a payout goes through them; failed can follow paid (the bank returned
# it), nothing follows failed or canceled.
_PAYOUT_ORDER = {"pending": 0, "in_transit": 1, "paid": 2, "failed": 3, "canceled": 3}


def bank_payout_apply(*, affiliate_id: int, account: str, payout: Mapping[str, Any], as_of: int) -> BankPayout:
    """Record Stripe's view of a payout of the affiliate's balance as of Unix time `as_of` (the
    event's `created`): an older view, or one that would move the status back, changes nothing.
    Run in the affiliate's tenant schema."""
    status = str(payout.get("status"))
    if status not in _PAYOUT_ORDER:
        raise Refused(f"payout {payout.get('id')}: unknown status {status!r}")
    arrival = payout.get("arrival_date")
    fields = {
        "status": status,
        "amount_minor": int(payout["amount"]),
        "currency": str(payout["currency"]).upper(),
        "arrival_date": datetime.fromtimestamp(int(arrival), tz=UTC).date() if arrival else None,
        "failure_code": str(payout.get("failure_code") or "")[:64],
        "failure_message": str(payout.get("failure_message") or "")[:500],
        "event_created": as_of,
        "updated_at": timezone.now(),
    }
    with transaction.atomic():
        row, created = BankPayout.objects.select_for_update().get_or_create(
            stripe_id=payout["id"], defaults={"affiliate_id": affiliate_id, "account": account, **fields}
        )
        if created:
            return row
        if row.affiliate_id != affiliate_id or row.account != account:
            raise Refused(f"payout {payout['id']} is recorded for another affiliate")
        old = row.status
        if as_of < row.event_created or _PAYOUT_ORDER[status] < _PAYOUT_ORDER[old]:
            return row
        if old != status and old in ("failed", "canceled"):
            return row
        for name, value in fields.items():
            setattr(row, name, value)
        row.save()
    return row


_RESOLVERS: dict[str, Callable[[Mapping[str, Any]], Target | None]] = {
    "account.updated": _account_event,
    "transfer.created": _transfer_event,
    "transfer.updated": _transfer_event,
    "transfer.reversed": _transfer_event,
    "checkout.session.completed": _checkout_event,
    "checkout.session.async_payment_succeeded": _checkout_event,
    **{name: _payout_event for name in CONNECT_EVENTS if name.startswith("payout.")},
}


# --- endpoints --------------------------------------------------------------------------------

ENDPOINT_IDS = {"platform": "we_configured_platform", "connect": "we_configured_connect"}


def webhook_endpoints_ensure() -> dict[str, WebhookEndpoint]:
    """dj-stripe's WebhookEndpoint rows, from settings: `platform` (STRIPE_WEBHOOK_SECRET) and
    `connect` (STRIPE_CONNECT_WEBHOOK_SECRET). Each keeps the uuid it was made with (its URL);
    its secret follows the setting. Without a secret set, a random one nobody knows takes its
    place, so that deliveries are refused (400) rather than failing."""
    configured = {"platform": settings.STRIPE_WEBHOOK_SECRET, "connect": settings.STRIPE_CONNECT_WEBHOOK_SECRET}
    events = {"platform": PLATFORM_EVENTS, "connect": CONNECT_EVENTS}
    endpoints = {}
    with transaction.atomic():
        for purpose, secret in configured.items():
            endpoint, _ = WebhookEndpoint.objects.select_for_update().get_or_create(
                id=ENDPOINT_IDS[purpose],
                defaults={"enabled_events": events[purpose], "status": WebhookEndpointStatus.enabled, "url": ""},
            )
            endpoint.secret = secret or f"whsec_unset_{secrets.token_hex(24)}"
            endpoint.enabled_events = events[purpose]
            endpoint.livemode = _live()
            endpoint.status = WebhookEndpointStatus.enabled if secret else WebhookEndpointStatus.disabled
            # Verify the signature locally; dj-stripe's other method fetches the event from Stripe.
            endpoint.djstripe_validation_method = WebhookEndpointValidation.verify_signature
            endpoint.url = webhook_url(endpoint)
            endpoint.save()
            endpoints[purpose] = endpoint
    return endpoints


def webhook_url(endpoint: WebhookEndpoint) -> str:
    path = reverse(
        "djstripe:djstripe_webhook_by_uuid",
        kwargs={"uuid": endpoint.djstripe_uuid},
        urlconf=settings.PUBLIC_SCHEMA_URLCONF,
    )
    port = f":{settings.PLATFORM_PORT}" if settings.PLATFORM_PORT else ""
    return f"{settings.PLATFORM_SCHEME}://{settings.PLATFORM_DOMAIN}{port}{path}"
