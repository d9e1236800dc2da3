"""The double's in-memory Stripe: accounts, links, transfers, balances, checkout, payouts, events.

Every operation runs under one lock and returns deep copies, so callers serialise answers without
holding it (latency and network I/O never happen under the lock). Operations that Stripe would
answer with an error raise `errors.StripeError`; page flows (onboarding, checkout) raise
`LookupError` for unknown links and sessions and answer with a `Redirect` where Stripe redirects.
Events are stored and handed to the webhook sink as they are made.

One class on purpose, though longer than the usual 400 lines: every operation shares one lock and
one set of collections, and an operation often touches several resources at once (a transfer moves
two balances and makes an event); split by resource, the locking would be spread over files.
"""

from __future__ import annotations

import copy
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from fnmatch import fnmatchcase
from typing import Any, Protocol

from . import errors, forms, lists, objects
from .idempotency import IdempotencyStore

Obj = dict[str, Any]

# The version stripe-python 15.6.2 pins (stripe._api_version._ApiVersion.CURRENT); events carry it.
DEFAULT_API_VERSION = "2026-08-26.dahlia"
DEFAULT_BALANCE = {"usd": 10_000_000_000, "eur": 10_000_000_000, "gbp": 10_000_000_000}
PLATFORM = "platform"
_EMBEDDED_REVERSALS = 10


class EventSink(Protocol):
    @property
    def enabled(self) -> bool: ...

    def enqueue(self, event: Obj) -> None: ...


@dataclass(frozen=True)
class RequestInfo:
    """The API request behind an operation: for events' `request` field and the double's own URLs."""

    request_id: str | None = None
    idempotency_key: str | None = None
    base_url: str = ""


@dataclass(frozen=True)
class Redirect:
    location: str


@dataclass
class _Data:
    platform_account: Obj
    accounts: dict[str, Obj] = field(default_factory=dict)
    account_links: dict[str, Obj] = field(default_factory=dict)
    transfers: dict[str, Obj] = field(default_factory=dict)
    checkout_sessions: dict[str, Obj] = field(default_factory=dict)
    payment_intents: dict[str, Obj] = field(default_factory=dict)
    payouts: dict[str, dict[str, Obj]] = field(default_factory=dict)
    events: dict[str, Obj] = field(default_factory=dict)
    # owner ("platform" or a connected account id) -> currency -> {"available": cents, "pending": cents}
    balances: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)


class DoubleState:
    """Thread-safe state of one double. `on_change` is called (under the lock) after every change."""

    def __init__(
        self,
        *,
        balance: Mapping[str, int] | None = None,
        api_version: str = DEFAULT_API_VERSION,
        link_ttl_seconds: int = 300,
        sink: EventSink | None = None,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self._lock = threading.RLock()
        self._initial_balance = dict(DEFAULT_BALANCE if balance is None else balance)
        self.api_version = api_version
        self.link_ttl_seconds = link_ttl_seconds
        self.sink = sink
        self.on_change = on_change
        self.idempotency = IdempotencyStore()
        self._data = self._fresh()

    # -- accounts ---------------------------------------------------------------------------------

    def account_create(self, params: Mapping[str, Any], request: RequestInfo) -> Obj:
        account = objects.account_new(params=params, now=_now())
        with self._lock:
            self._data.accounts[account["id"]] = account
            self._data.balances[account["id"]] = {}
            return self._changed(account)

    def account_get(self, account_id: str) -> Obj:
        with self._lock:
            if account_id == self._data.platform_account["id"]:
                return copy.deepcopy(self._data.platform_account)
            return copy.deepcopy(self._account(account_id))

    def account_exists(self, account_id: str) -> bool:
        with self._lock:
            return account_id in self._data.accounts

    def platform_account(self) -> Obj:
        with self._lock:
            return copy.deepcopy(self._data.platform_account)

    def account_update(self, account_id: str, params: Mapping[str, Any], request: RequestInfo) -> Obj:
        with self._lock:
            account = self._account(account_id)
            before = {key: copy.deepcopy(account[key]) for key in ("metadata", "email", "business_profile")}
            account["metadata"] = forms.metadata(params, current=account["metadata"])
            if "email" in params:
                account["email"] = forms.optional_str(params, "email")
            objects.business_profile_merge(account, params)
            previous = {key: value for key, value in before.items() if account[key] != value}
            if previous:
                self._emit("account.updated", account, account=account_id, request=request, previous=previous)
            return self._changed(account)

    def account_list(self, params: Mapping[str, Any]) -> Obj:
        with self._lock:
            return lists.page(_newest_first(self._data.accounts), params, url="/v1/accounts")

    def account_complete(self, account_id: str) -> Obj:
        """Finish onboarding as if the account holder went through Stripe's hosted flow."""
        with self._lock:
            account = self._account(account_id)
            self._onboard(account)
            return self._changed(account)

    def _onboard(self, account: Obj) -> None:
        previous = objects.account_onboarded(account, now=_now())
        if previous:
            self._emit("account.updated", account, account=account["id"], previous=previous)

    def _account(self, account_id: str) -> Obj:
        account = self._data.accounts.get(account_id)
        if account is None:
            raise errors.resource_missing("account", account_id)
        return account

    # -- account links, login links and the onboarding page ----------------------------------------

    def account_link_create(self, params: Mapping[str, Any], request: RequestInfo) -> Obj:
        account_id = forms.required_str(params, "account")
        link_type = forms.required_str(params, "type")
        if link_type not in ("account_onboarding", "account_update"):
            raise errors.parameter_invalid("type", "Invalid type: must be one of account_onboarding, account_update")
        refresh_url = forms.required_str(params, "refresh_url")
        return_url = forms.required_str(params, "return_url")
        now = _now()
        with self._lock:
            if account_id not in self._data.accounts:
                raise errors.StripeError(
                    400, f"No such account: '{account_id}'", code="resource_missing", param="account"
                )
            token = secrets.token_urlsafe(18)
            self._data.account_links[token] = {
                "account": account_id,
                "refresh_url": refresh_url,
                "return_url": return_url,
                "expires_at": now + self.link_ttl_seconds,
                "visited": False,
                "completed": False,
            }
            self._touch()
        url = f"{request.base_url}/_double/onboarding/{account_id}?link={token}"
        return objects.account_link_new(url=url, now=now, expires_at=now + self.link_ttl_seconds)

    def onboarding_open(self, account_id: str, token: str) -> Obj | Redirect:
        """Visit an onboarding link: the account to show, or a redirect to refresh_url when the
        link was already visited or has expired (Stripe's links are single use)."""
        with self._lock:
            link = self._link(account_id, token)
            if link["visited"] or link["completed"] or _now() >= link["expires_at"]:
                return Redirect(link["refresh_url"])
            link["visited"] = True
            self._touch()
            return copy.deepcopy(self._data.accounts[account_id])

    def onboarding_submit(self, account_id: str, token: str) -> Redirect:
        """Submit the onboarding form: complete the account and send the browser to return_url."""
        with self._lock:
            link = self._link(account_id, token)
            if link["completed"] or _now() >= link["expires_at"]:
                return Redirect(link["refresh_url"])
            link["completed"] = True
            self._onboard(self._data.accounts[account_id])
            self._touch()
            return Redirect(link["return_url"])

    def _link(self, account_id: str, token: str) -> Obj:
        link = self._data.account_links.get(token)
        if link is None or link["account"] != account_id:
            raise LookupError(f"no account link {token!r} for {account_id}")
        return link

    def login_link_create(self, account_id: str, request: RequestInfo) -> Obj:
        with self._lock:
            account = self._account(account_id)
            if account["controller"].get("stripe_dashboard", {}).get("type") != "express":
                raise errors.StripeError(
                    400,
                    "You can only create login links for accounts that use the Express Dashboard and are "
                    "connected to your platform.",
                    param="account",
                )
        return objects.login_link_new(url=f"{request.base_url}/_double/dashboard/{account_id}", now=_now())

    # -- transfers and reversals ------------------------------------------------------------------

    def transfer_create(self, params: Mapping[str, Any], request: RequestInfo) -> Obj:
        amount = forms.integer(params, "amount", required=True, minimum=1) or 0
        currency = forms.required_str(params, "currency").lower()
        destination = forms.required_str(params, "destination")
        with self._lock:
            account = self._data.accounts.get(destination)
            if account is None:
                raise errors.StripeError(
                    400, f"No such destination: '{destination}'", code="resource_missing", param="destination"
                )
            if account["capabilities"].get("transfers") != "active":
                raise errors.insufficient_capabilities_for_transfer()
            platform_funds = self._funds(PLATFORM, currency)
            if platform_funds["available"] < amount:
                raise errors.balance_insufficient()
            platform_funds["available"] -= amount
            self._funds(destination, currency)["available"] += amount
            transfer = objects.transfer_new(
                amount=amount, currency=currency, destination=destination, params=params, now=_now()
            )
            transfer["_reversals"] = []
            self._data.transfers[transfer["id"]] = transfer
            self._emit("transfer.created", transfer, request=request)
            return self._changed(transfer)

    def transfer_get(self, transfer_id: str) -> Obj:
        with self._lock:
            return self._view(self._transfer(transfer_id))

    def transfer_update(self, transfer_id: str, params: Mapping[str, Any], request: RequestInfo) -> Obj:
        with self._lock:
            transfer = self._transfer(transfer_id)
            before = {key: copy.deepcopy(transfer[key]) for key in ("metadata", "description")}
            transfer["metadata"] = forms.metadata(params, current=transfer["metadata"])
            if "description" in params:
                transfer["description"] = forms.optional_str(params, "description")
            previous = {key: value for key, value in before.items() if transfer[key] != value}
            if previous:
                self._emit("transfer.updated", transfer, request=request, previous=previous)
            return self._changed(transfer)

    def transfer_list(self, params: Mapping[str, Any]) -> Obj:
        destination = forms.optional_str(params, "destination")
        group = forms.optional_str(params, "transfer_group")
        with self._lock:
            chosen = [
                transfer
                for transfer in _newest_first(self._data.transfers)
                if (destination is None or transfer["destination"] == destination)
                and (group is None or transfer["transfer_group"] == group)
            ]
            return lists.page(chosen, params, url="/v1/transfers")

    def reversal_create(self, transfer_id: str, params: Mapping[str, Any], request: RequestInfo) -> Obj:
        asked = forms.integer(params, "amount", required=False, minimum=1)
        with self._lock:
            transfer = self._transfer(transfer_id)
            remaining = transfer["amount"] - transfer["amount_reversed"]
            if remaining == 0:
                raise errors.StripeError(
                    400, f"Transfer {transfer_id} has already been fully reversed.", param="amount"
                )
            amount = remaining if asked is None else asked
            if amount > remaining:
                raise errors.StripeError(
                    400,
                    f"Transfer reversal amount ({amount}) is greater than the amount of the transfer "
                    f"that has not been reversed yet ({remaining}).",
                    param="amount",
                )
            reversal = objects.reversal_new(transfer=transfer, amount=amount, params=params, now=_now())
            transfer["_reversals"].insert(0, reversal)
            transfer["amount_reversed"] += amount
            transfer["reversed"] = transfer["amount_reversed"] == transfer["amount"]
            transfer["reversals"]["data"] = copy.deepcopy(transfer["_reversals"][:_EMBEDDED_REVERSALS])
            transfer["reversals"]["has_more"] = len(transfer["_reversals"]) > _EMBEDDED_REVERSALS
            self._funds(PLATFORM, transfer["currency"])["available"] += amount
            self._funds(transfer["destination"], transfer["currency"])["available"] -= amount
            self._emit("transfer.reversed", transfer, request=request)
            return self._changed(reversal)

    def reversal_list(self, transfer_id: str, params: Mapping[str, Any]) -> Obj:
        with self._lock:
            transfer = self._transfer(transfer_id)
            return lists.page(transfer["_reversals"], params, url=f"/v1/transfers/{transfer_id}/reversals")

    def reversal_get(self, transfer_id: str, reversal_id: str) -> Obj:
        with self._lock:
            for reversal in self._transfer(transfer_id)["_reversals"]:
                if reversal["id"] == reversal_id:
                    return copy.deepcopy(reversal)
            raise errors.resource_missing("transfer_reversal", reversal_id)

    def _transfer(self, transfer_id: str) -> Obj:
        transfer = self._data.transfers.get(transfer_id)
        if transfer is None:
            raise errors.resource_missing("transfer", transfer_id)
        return transfer

    # -- balances ---------------------------------------------------------------------------------

    def balance_get(self, owner: str = PLATFORM) -> Obj:
        with self._lock:
            balances = self._data.balances.get(owner, {})
            if not balances and owner != PLATFORM:
                balances = {self._account(owner)["default_currency"]: {"available": 0, "pending": 0}}
            return objects.balance_object(copy.deepcopy(balances), platform=owner == PLATFORM)

    def balance_set(self, *, currency: str, available: int, pending: int | None = None) -> Obj:
        """Set the platform's balance in one currency (control API)."""
        with self._lock:
            funds = self._funds(PLATFORM, currency.lower())
            funds["available"] = available
            if pending is not None:
                funds["pending"] = pending
            self._touch()
            return objects.balance_object(copy.deepcopy(self._data.balances[PLATFORM]), platform=True)

    def _funds(self, owner: str, currency: str) -> dict[str, int]:
        return self._data.balances.setdefault(owner, {}).setdefault(currency, {"available": 0, "pending": 0})

    # -- checkout ---------------------------------------------------------------------------------

    def checkout_session_create(self, params: Mapping[str, Any], request: RequestInfo) -> Obj:
        session = objects.checkout_session_new(params=params, now=_now(), url_base=request.base_url)
        with self._lock:
            self._data.checkout_sessions[session["id"]] = session
            return self._changed(session)

    def checkout_session_get(self, session_id: str) -> Obj:
        with self._lock:
            return self._view(self._session(session_id))

    def checkout_session_expire(self, session_id: str, request: RequestInfo) -> Obj:
        """`POST /v1/checkout/sessions/{id}/expire`: only open sessions can be expired."""
        with self._lock:
            session = self._session(session_id)
            if session["status"] != "open":
                raise errors.StripeError(
                    400,
                    f'Only Checkout Sessions with a status in ["open"] can be expired. '
                    f'This Checkout Session has a status of "{session["status"]}".',
                )
            self._expire(session, request)
            return self._changed(session)

    def checkout_page(self, session_id: str) -> Obj:
        with self._lock:
            try:
                return self._view(self._session(session_id))
            except errors.StripeError as exc:
                raise LookupError(f"no checkout session {session_id}") from exc

    def checkout_pay(self, session_id: str) -> Redirect:
        """Pay an open session: a succeeded payment intent, the platform's balance credited with the
        amount, `payment_intent.succeeded` and `checkout.session.completed`, then success_url.

        Raises LookupError for an unknown session, ValueError for one that is no longer open.
        """
        with self._lock:
            try:
                session = self._session(session_id)
            except errors.StripeError as exc:
                raise LookupError(f"no checkout session {session_id}") from exc
            if session["status"] != "open":
                raise ValueError(f"checkout session {session_id} is {session['status']}")
            now = _now()
            intent = objects.payment_intent_succeeded(session=session, now=now)
            self._data.payment_intents[intent["id"]] = intent
            session.update(
                status="complete",
                payment_status="paid",
                payment_intent=intent["id"],
                customer_details=objects.customer_details(session["customer_email"]),
            )
            # Paid as with Stripe's 4000000000000077 test card: straight into the available balance.
            self._funds(PLATFORM, session["currency"])["available"] += session["amount_total"]
            self._emit("payment_intent.succeeded", intent)
            self._emit("checkout.session.completed", session)
            self._touch()
            success_url = session["success_url"] or ""
            return Redirect(success_url.replace("{CHECKOUT_SESSION_ID}", session_id))

    def _session(self, session_id: str) -> Obj:
        """The session, expired first if its time has come (Stripe expires sessions at `expires_at`)."""
        session = self._data.checkout_sessions.get(session_id)
        if session is None:
            raise errors.resource_missing("checkout.session", session_id)
        if session["status"] == "open" and _now() >= session["expires_at"]:
            self._expire(session, None)
        return session

    def _expire(self, session: Obj, request: RequestInfo | None) -> None:
        session.update(status="expired", url=None)
        self._emit("checkout.session.expired", session, request=request)
        self._touch()

    def payment_intent_get(self, intent_id: str) -> Obj:
        with self._lock:
            intent = self._data.payment_intents.get(intent_id)
            if intent is None:
                raise errors.resource_missing("payment_intent", intent_id)
            return copy.deepcopy(intent)

    # -- connected-account payouts ----------------------------------------------------------------

    def payout_emit(
        self,
        account_id: str,
        *,
        amount: int | None = None,
        currency: str | None = None,
        status: str = "paid",
        failure_code: str | None = None,
    ) -> Obj:
        """Pay out a connected account's balance to its bank, as Stripe's payout schedule does:
        `payout.created` then `payout.paid` or `payout.failed` (a failed payout returns the money
        to the account's balance). Raises ValueError when there is nothing to pay out."""
        if status not in ("paid", "failed"):
            raise ValueError("status must be 'paid' or 'failed'")
        with self._lock:
            account = self._account(account_id)
            currency = (currency or account["default_currency"]).lower()
            funds = self._funds(account_id, currency)
            amount = funds["available"] if amount is None else amount
            if amount <= 0 or amount > funds["available"]:
                raise ValueError(f"cannot pay out {amount}: {account_id} has {funds['available']} {currency} available")
            funds["available"] -= amount
            payout = objects.payout_new(
                amount=amount, currency=currency, status=status, failure_code=failure_code, now=_now()
            )
            if status == "failed":
                funds["available"] += amount
            self._data.payouts.setdefault(account_id, {})[payout["id"]] = payout
            in_transit = {
                **payout,
                "status": "in_transit",
                "failure_code": None,
                "failure_message": None,
                "failure_balance_transaction": None,
            }
            self._emit("payout.created", in_transit, account=account_id)
            self._emit(f"payout.{status}", payout, account=account_id)
            return self._changed(payout)

    def payout_get(self, account_id: str, payout_id: str) -> Obj:
        with self._lock:
            payout = self._data.payouts.get(account_id, {}).get(payout_id)
            if payout is None:
                raise errors.resource_missing("payout", payout_id)
            return copy.deepcopy(payout)

    def payout_list(self, account_id: str, params: Mapping[str, Any]) -> Obj:
        with self._lock:
            return lists.page(_newest_first(self._data.payouts.get(account_id, {})), params, url="/v1/payouts")

    # -- events -----------------------------------------------------------------------------------

    def event_get(self, event_id: str, *, account: str | None) -> Obj:
        """An event as the platform (account None) or a connected account sees it."""
        with self._lock:
            event = self._data.events.get(event_id)
            if event is None or event.get("account") != account:
                raise errors.resource_missing("event", event_id)
            return copy.deepcopy(event)

    def event_list(self, params: Mapping[str, Any], *, account: str | None) -> Obj:
        wanted = _event_types(params)
        with self._lock:
            chosen = [
                event
                for event in _newest_first(self._data.events)
                if event.get("account") == account
                and (not wanted or any(fnmatchcase(event["type"], pattern) for pattern in wanted))
            ]
            return lists.page(chosen, params, url="/v1/events")

    def event_for_delivery(self, event_id: str) -> Obj:
        """The stored event, whatever its account (for replaying a webhook); LookupError if unknown."""
        with self._lock:
            event = self._data.events.get(event_id)
            if event is None:
                raise LookupError(f"no event {event_id}")
            event["pending_webhooks"] += 1
            self._touch()
            return copy.deepcopy(event)

    def event_delivered(self, event_id: str) -> None:
        with self._lock:
            event = self._data.events.get(event_id)
            if event is not None and event["pending_webhooks"] > 0:
                event["pending_webhooks"] -= 1
                self._touch()

    def _emit(
        self,
        event_type: str,
        obj: Obj,
        *,
        account: str | None = None,
        request: RequestInfo | None = None,
        previous: Obj | None = None,
    ) -> None:
        delivering = self.sink is not None and self.sink.enabled
        event = objects.event_new(
            event_type=event_type,
            obj=obj,
            api_version=self.api_version,
            now=_now(),
            pending_webhooks=1 if delivering else 0,
            account=account,
            request_id=request.request_id if request else None,
            idempotency_key=request.idempotency_key if request else None,
            previous_attributes=previous,
        )
        self._data.events[event["id"]] = event
        if delivering and self.sink is not None:
            self.sink.enqueue(copy.deepcopy(event))

    # -- expansion, control and persistence -------------------------------------------------------

    def expand(self, obj: Obj, paths: list[str]) -> Obj:
        """Replace ids at the `expand[]` paths with the objects, where the double holds them."""
        with self._lock:
            for path in paths:
                self._expand(obj, path.split("."))
            return obj

    def _expand(self, node: Obj, parts: list[str]) -> None:
        if node.get("object") == "list" and parts[0] == "data":
            for item in node["data"]:
                self._expand(item, parts[1:])
            return
        if not parts or parts[0] not in node:
            return
        value = node[parts[0]]
        if isinstance(value, str):
            found = self._lookup(value)
            if found is not None:
                node[parts[0]] = value = found
        if len(parts) > 1 and isinstance(value, dict):
            self._expand(value, parts[1:])

    def _lookup(self, object_id: str) -> Obj | None:
        data = self._data
        if object_id == data.platform_account["id"]:
            return copy.deepcopy(data.platform_account)
        for collection in (data.accounts, data.transfers, data.payment_intents, data.checkout_sessions, data.events):
            if object_id in collection:
                return self._view(collection[object_id])
        for payouts in data.payouts.values():
            if object_id in payouts:
                return copy.deepcopy(payouts[object_id])
        return None

    def summary(self) -> Obj:
        """Counts, balances and every transfer (oldest first), for tests and reconciliation."""
        with self._lock:
            data = self._data
            return {
                "counts": {
                    "accounts": len(data.accounts),
                    "transfers": len(data.transfers),
                    "reversals": sum(len(t["_reversals"]) for t in data.transfers.values()),
                    "checkout_sessions": len(data.checkout_sessions),
                    "payment_intents": len(data.payment_intents),
                    "payouts": sum(len(p) for p in data.payouts.values()),
                    "events": len(data.events),
                    "idempotency_keys": self.idempotency.count(),
                },
                "platform_account": data.platform_account["id"],
                "balances": copy.deepcopy(data.balances),
                "transfers": [self._view(t) for t in data.transfers.values()],
            }

    def reset(self) -> None:
        with self._lock:
            self._data = self._fresh()
            self.idempotency.clear()
            self._touch()

    def dump(self) -> Obj:
        """Everything, as JSON-able data (for --state-file)."""
        with self._lock:
            data = asdict(self._data)
            return {"version": 1, "data": data, "idempotency": self.idempotency.dump()}

    def load(self, snapshot: Obj) -> None:
        if snapshot.get("version") != 1:
            raise ValueError("unknown snapshot version")
        with self._lock:
            self._data = _Data(**snapshot["data"])
            self.idempotency.load(snapshot["idempotency"])

    def _fresh(self) -> _Data:
        balances = {
            currency.lower(): {"available": amount, "pending": 0} for currency, amount in self._initial_balance.items()
        }
        return _Data(platform_account=objects.account_platform(now=_now()), balances={PLATFORM: balances})

    def _view(self, obj: Obj) -> Obj:
        return copy.deepcopy(objects.public(obj))

    def _changed(self, obj: Obj) -> Obj:
        self._touch()
        return self._view(obj)

    def _touch(self) -> None:
        if self.on_change is not None:
            self.on_change()


def _now() -> int:
    return int(time.time())


def _newest_first(collection: Mapping[str, Obj]) -> list[Obj]:
    # Dicts keep insertion order, which is creation order; Stripe lists newest first.
    return list(reversed(collection.values()))


def _event_types(params: Mapping[str, Any]) -> set[str]:
    """`type` (one name, `*` as a wildcard as in `transfer.*`) and `types[]` (exact names)."""
    wanted: set[str] = set()
    single = forms.optional_str(params, "type")
    if single:
        wanted.add(single)
    many = params.get("types")
    if many is not None:
        if not isinstance(many, list) or not all(isinstance(t, str) for t in many):
            raise errors.parameter_invalid("types", "Invalid array: types must be an array of strings")
        wanted.update(many)
    return wanted
