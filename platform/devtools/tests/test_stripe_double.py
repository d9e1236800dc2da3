"""The local Stripe double, driven through stripe-python itself so it cannot drift into a private
dialect: every answer must parse into the class stripe-python gives Stripe's answer, and every error
must raise the exception stripe-python raises for Stripe's. No database needed."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
import stripe

from devtools.stripe_double import RunningDouble, running
from devtools.stripe_double import __main__ as main_module
from devtools.stripe_double import errors as double_errors
from devtools.stripe_double import state as state_module
from devtools.stripe_double.forms import decode
from devtools.stripe_double.idempotency import IdempotencyStore, StoredResponse
from devtools.stripe_double.webhooks import signature_header

API_KEY = "sk_test_double"
WEBHOOK_SECRET = "whsec_double_test"
PROJECT_ROOT = Path(__file__).resolve().parents[3]


# -- fixtures and helpers -----------------------------------------------------------------------------


class Receiver:
    """A webhook endpoint: records every POST; answers 500 to the first `fail_first` of them."""

    def __init__(self, fail_first: int = 0) -> None:
        self.fail_first = fail_first
        self.received: list[tuple[bytes, dict[str, str]]] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver._lock:
                    receiver.received.append((body, dict(self.headers)))
                    failing = len(receiver.received) <= receiver.fail_first
                self.send_response(500 if failing else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/stripe/webhook/"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def events(self, event_type: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            events = [json.loads(body) for body, _ in self.received]
        return [event for event in events if event_type is None or event["type"] == event_type]

    def deliveries_of(self, event_id: str) -> list[tuple[bytes, dict[str, str]]]:
        with self._lock:
            return [(body, headers) for body, headers in self.received if json.loads(body)["id"] == event_id]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    endpoint = Receiver()
    yield endpoint
    endpoint.close()


@pytest.fixture
def double(receiver: Receiver) -> Iterator[RunningDouble]:
    with running(webhook_url=receiver.url, webhook_secret=WEBHOOK_SECRET, webhook_retry_delays=(0.05, 0.1)) as d:
        yield d


def make_client(double: RunningDouble, *, api_key: str = API_KEY, **options: Any) -> stripe.StripeClient:
    url = double.url
    return stripe.StripeClient(api_key, base_addresses={"api": url, "connect": url, "files": url}, **options)


@pytest.fixture
def client(double: RunningDouble) -> stripe.StripeClient:
    return make_client(double, max_network_retries=0)


def control(double: RunningDouble, path: str, payload: dict[str, Any] | None = None) -> requests.Response:
    return requests.post(f"{double.url}{path}", json=payload or {}, timeout=5)


def express_account(client: stripe.StripeClient, **extra: Any) -> stripe.Account:
    return client.v1.accounts.create(
        params={
            "type": "express",
            "country": "US",
            "email": "affiliate@example.com",
            "capabilities": {"transfers": {"requested": True}},
            "tos_acceptance": {"service_agreement": "recipient"},
            "metadata": {"tenant": "acme", "affiliate_id": "42"},
            **extra,
        }
    )


def onboarded_account(client: stripe.StripeClient, double: RunningDouble) -> stripe.Account:
    account = express_account(client)
    assert control(double, f"/_double/accounts/{account.id}/complete").status_code == 200
    return client.v1.accounts.retrieve(account.id)


def transfer_count(double: RunningDouble) -> int:
    return double.state.summary()["counts"]["transfers"]


def platform_available(double: RunningDouble, currency: str = "usd") -> int:
    return double.state.summary()["balances"]["platform"][currency]["available"]


def wait_until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


# -- form decoding and the idempotency store ------------------------------------------------------------


def test_decode_reads_stripe_python_form_encoding():
    encoded = (
        "amount=100&metadata[tenant]=acme&capabilities[transfers][requested]=true&expand[0]=destination"
        "&expand[1]=balance_transaction&line_items[0][price_data][unit_amount]=500&line_items[0][quantity]=2"
        "&types[]=a.b&types[]=c.d&description="
    )

    assert decode(encoded) == {
        "amount": "100",
        "metadata": {"tenant": "acme"},
        "capabilities": {"transfers": {"requested": "true"}},
        "expand": ["destination", "balance_transaction"],
        "line_items": [{"price_data": {"unit_amount": "500"}, "quantity": "2"}],
        "types": ["a.b", "c.d"],
        "description": "",
    }


def test_decode_refuses_a_key_sent_both_as_value_and_as_hash():
    with pytest.raises(double_errors.StripeError) as caught:
        decode("metadata=x&metadata[a]=b")

    assert caught.value.status == 400


def test_idempotency_key_in_use_while_the_first_request_runs_is_a_409():
    store = IdempotencyStore()
    scope = IdempotencyStore.scope(API_KEY, None)
    assert store.begin(scope=scope, key="k", endpoint="POST /v1/transfers", params={"amount": "1"}) is None

    with pytest.raises(double_errors.StripeError) as caught:
        store.begin(scope=scope, key="k", endpoint="POST /v1/transfers", params={"amount": "1"})

    assert (caught.value.status, caught.value.code) == (409, "idempotency_key_in_use")
    store.finish(scope=scope, key="k", response=StoredResponse(200, b"{}", {}, "req_1"))
    assert store.begin(scope=scope, key="k", endpoint="POST /v1/transfers", params={"amount": "1"}) == StoredResponse(
        200, b"{}", {}, "req_1"
    )


def test_idempotency_key_reused_on_another_endpoint_is_an_idempotency_error():
    store = IdempotencyStore()
    scope = IdempotencyStore.scope(API_KEY, None)
    store.begin(scope=scope, key="k", endpoint="POST /v1/transfers", params={})
    store.finish(scope=scope, key="k", response=StoredResponse(200, b"{}", {}, "req_1"))

    with pytest.raises(double_errors.StripeError) as caught:
        store.begin(scope=scope, key="k", endpoint="POST /v1/accounts", params={})

    assert (caught.value.status, caught.value.type) == (400, "idempotency_error")


# -- authentication and unknown things ----------------------------------------------------------------------


def test_a_key_that_is_not_a_test_key_is_refused_with_stripes_401(double: RunningDouble):
    live_client = make_client(double, api_key="sk_live_abcdefgh1234")

    with pytest.raises(stripe.AuthenticationError) as caught:
        live_client.v1.accounts.create(params={"type": "express"})

    assert caught.value.http_status == 401
    assert caught.value.user_message == "Invalid API Key provided: sk_live_********1234"
    assert double.state.summary()["counts"]["accounts"] == 0


def test_a_request_without_a_key_is_refused(double: RunningDouble):
    answer = requests.get(f"{double.url}/v1/balance", timeout=5)

    assert answer.status_code == 401
    assert answer.json()["error"]["type"] == "invalid_request_error"
    assert answer.headers["WWW-Authenticate"] == 'Basic realm="Stripe"'


def test_an_unknown_endpoint_gets_stripes_unrecognized_url_404(double: RunningDouble):
    answer = requests.get(f"{double.url}/v1/customers", headers={"Authorization": f"Bearer {API_KEY}"}, timeout=5)

    assert answer.status_code == 404
    assert answer.json()["error"]["message"].startswith("Unrecognized request URL (GET: /v1/customers).")
    assert answer.headers["Request-Id"].startswith("req_")


def test_an_unknown_connected_account_in_stripe_account_is_a_permission_error(client: stripe.StripeClient):
    with pytest.raises(stripe.PermissionError) as caught:
        client.v1.balance.retrieve(options={"stripe_account": "acct_doesnotexist"})

    # stripe-python passes no code to PermissionError; it is on the parsed error object.
    assert (caught.value.http_status, caught.value.error.code) == (403, "account_invalid")


def test_a_missing_required_parameter_is_parameter_missing(client: stripe.StripeClient, double: RunningDouble):
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.transfers.create(params={"currency": "usd", "destination": "acct_x"})

    assert (caught.value.code, caught.value.param, caught.value.http_status) == ("parameter_missing", "amount", 400)
    assert transfer_count(double) == 0


# -- accounts, account links, onboarding ------------------------------------------------------------------


def test_express_account_create_answers_an_account_with_nothing_enabled(client: stripe.StripeClient):
    account = express_account(client)

    assert isinstance(account, stripe.Account)
    assert account.id.startswith("acct_")
    assert account.type == "express"
    assert account.controller.stripe_dashboard.type == "express"
    assert account.email == "affiliate@example.com"
    assert account.country == "US"
    assert account.default_currency == "usd"
    assert account.capabilities.to_dict() == {"transfers": "inactive"}
    assert account.tos_acceptance.service_agreement == "recipient"
    assert account.metadata.to_dict() == {"tenant": "acme", "affiliate_id": "42"}
    assert (account.charges_enabled, account.payouts_enabled, account.details_submitted) == (False, False, False)
    assert account.requirements.disabled_reason == "requirements.past_due"
    assert "external_account" in account.requirements.currently_due


def test_controller_properties_of_an_express_account_give_type_express(client: stripe.StripeClient):
    account = client.v1.accounts.create(
        params={
            "country": "DE",
            "controller": {
                "fees": {"payer": "application"},
                "losses": {"payments": "application"},
                "requirement_collection": "stripe",
                "stripe_dashboard": {"type": "express"},
            },
        }
    )

    assert account.type == "express"
    assert account.default_currency == "eur"
    assert account.controller.fees.payer == "application"


def test_account_update_merges_metadata_and_emits_account_updated(
    client: stripe.StripeClient, double: RunningDouble, receiver: Receiver
):
    account = express_account(client)

    updated = client.v1.accounts.update(
        account.id,
        params={"metadata": {"affiliate_id": "", "program": "p1"}, "business_profile": {"url": "https://aff.example"}},
    )

    assert updated.metadata.to_dict() == {"tenant": "acme", "program": "p1"}
    assert updated.business_profile.url == "https://aff.example"
    assert client.v1.accounts.retrieve(account.id).metadata.to_dict() == {"tenant": "acme", "program": "p1"}
    assert double.wait_for_webhooks()
    [event] = receiver.events("account.updated")
    assert event["account"] == account.id
    assert event["data"]["previous_attributes"]["metadata"] == {"tenant": "acme", "affiliate_id": "42"}
    assert event["data"]["previous_attributes"]["business_profile"]["url"] is None


def test_retrieving_an_unknown_account_is_resource_missing(client: stripe.StripeClient):
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.accounts.retrieve("acct_unknown")

    assert (caught.value.http_status, caught.value.code) == (404, "resource_missing")


def test_onboarding_link_page_completes_the_account_once(
    client: stripe.StripeClient, double: RunningDouble, receiver: Receiver
):
    account = express_account(client)
    link = client.v1.account_links.create(
        params={
            "account": account.id,
            "refresh_url": "https://acme.example/refresh",
            "return_url": "https://acme.example/return",
            "type": "account_onboarding",
        }
    )
    assert isinstance(link, stripe.AccountLink)
    assert link.expires_at == link.created + 300
    assert link.url.startswith(f"{double.url}/_double/onboarding/{account.id}?link=")

    page = requests.get(link.url, timeout=5)
    assert page.status_code == 200
    assert "Complete onboarding" in page.text
    token = link.url.split("link=")[1]
    submitted = requests.post(
        f"{double.url}/_double/onboarding/{account.id}", data={"link": token}, allow_redirects=False, timeout=5
    )

    assert submitted.status_code == 302
    assert submitted.headers["Location"] == "https://acme.example/return"
    onboarded = client.v1.accounts.retrieve(account.id)
    assert (onboarded.details_submitted, onboarded.payouts_enabled) == (True, True)
    # A recipient account (transfers only) never has charges enabled, as on Stripe.
    assert onboarded.charges_enabled is False
    assert onboarded.capabilities.to_dict() == {"transfers": "active"}
    assert onboarded.requirements.currently_due == []
    assert onboarded.requirements.disabled_reason is None
    assert double.wait_for_webhooks()
    [event] = receiver.events("account.updated")
    assert (event["account"], event["data"]["object"]["payouts_enabled"]) == (account.id, True)
    assert event["data"]["previous_attributes"]["capabilities"] == {"transfers": "inactive"}
    reused = requests.get(link.url, allow_redirects=False, timeout=5)
    assert (reused.status_code, reused.headers["Location"]) == (302, "https://acme.example/refresh")
    resubmitted = requests.post(
        f"{double.url}/_double/onboarding/{account.id}", data={"link": token}, allow_redirects=False, timeout=5
    )
    assert resubmitted.headers["Location"] == "https://acme.example/refresh"
    assert len(receiver.events("account.updated")) == 1


def test_an_expired_onboarding_link_redirects_to_refresh_url():
    with running(link_ttl_seconds=0) as double:
        client = make_client(double)
        account = express_account(client)
        link = client.v1.account_links.create(
            params={
                "account": account.id,
                "refresh_url": "https://acme.example/refresh",
                "return_url": "https://acme.example/return",
                "type": "account_onboarding",
            }
        )

        visited = requests.get(link.url, allow_redirects=False, timeout=5)

        assert (visited.status_code, visited.headers["Location"]) == (302, "https://acme.example/refresh")
        assert client.v1.accounts.retrieve(account.id).details_submitted is False


def test_login_link_points_at_the_doubles_dashboard_for_express_accounts_only(
    client: stripe.StripeClient, double: RunningDouble
):
    account = onboarded_account(client, double)
    standard = client.v1.accounts.create(params={"type": "standard"})

    login = client.v1.accounts.login_links.create(account.id)

    assert isinstance(login, stripe.LoginLink)
    assert login.url == f"{double.url}/_double/dashboard/{account.id}"
    assert "payouts enabled" in requests.get(login.url, timeout=5).text
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.accounts.login_links.create(standard.id)


# -- transfers, reversals, balance ---------------------------------------------------------------------------


def test_transfer_create_debits_the_balance_and_emits_transfer_created(
    client: stripe.StripeClient, double: RunningDouble, receiver: Receiver
):
    account = onboarded_account(client, double)
    before = platform_available(double)

    transfer = client.v1.transfers.create(
        params={
            "amount": 1234,
            "currency": "usd",
            "destination": account.id,
            "transfer_group": "batch_7",
            "description": "Commissions March",
            "metadata": {"payout_item": "99"},
        },
        options={"idempotency_key": "payout-item-99"},
    )

    assert isinstance(transfer, stripe.Transfer)
    assert transfer.id.startswith("tr_")
    assert (transfer.amount, transfer.currency, transfer.destination) == (1234, "usd", account.id)
    assert (transfer.transfer_group, transfer.description) == ("batch_7", "Commissions March")
    assert transfer.metadata.to_dict() == {"payout_item": "99"}
    assert (transfer.amount_reversed, transfer.reversed, transfer.livemode) == (0, False, False)
    assert isinstance(transfer.reversals, stripe.ListObject)
    assert platform_available(double) == before - 1234
    connected = client.v1.balance.retrieve(options={"stripe_account": account.id})
    assert isinstance(connected, stripe.Balance)
    assert [(funds.amount, funds.currency) for funds in connected.available] == [(1234, "usd")]
    assert double.wait_for_webhooks()
    [event] = receiver.events("transfer.created")
    assert event["data"]["object"]["id"] == transfer.id
    assert event["request"]["idempotency_key"] == "payout-item-99"
    assert event["request"]["id"] == transfer.last_response.request_id
    assert "account" not in event


def test_same_idempotency_key_and_params_replays_the_first_answer_byte_for_byte(
    client: stripe.StripeClient, double: RunningDouble
):
    account = onboarded_account(client, double)
    params = {"amount": 500, "currency": "usd", "destination": account.id, "metadata": {"item": "1"}}

    first = client.v1.transfers.create(params=params, options={"idempotency_key": "item-1"})
    second = client.v1.transfers.create(params=params, options={"idempotency_key": "item-1"})

    assert second.id == first.id
    assert second.last_response.body == first.last_response.body
    assert second.last_response.headers["Idempotent-Replayed"] == "true"
    assert second.last_response.headers["Original-Request"] == first.last_response.request_id
    assert "Idempotent-Replayed" not in first.last_response.headers
    assert transfer_count(double) == 1


def test_same_idempotency_key_with_other_params_is_an_idempotency_error(
    client: stripe.StripeClient, double: RunningDouble
):
    account = onboarded_account(client, double)
    client.v1.transfers.create(
        params={"amount": 500, "currency": "usd", "destination": account.id}, options={"idempotency_key": "item-1"}
    )

    with pytest.raises(stripe.IdempotencyError) as caught:
        client.v1.transfers.create(
            params={"amount": 501, "currency": "usd", "destination": account.id}, options={"idempotency_key": "item-1"}
        )

    assert caught.value.http_status == 400
    assert caught.value.json_body["error"]["type"] == "idempotency_error"
    assert transfer_count(double) == 1


def test_idempotency_keys_are_scoped_per_api_key(client: stripe.StripeClient, double: RunningDouble):
    account = onboarded_account(client, double)
    other_client = make_client(double, api_key="sk_test_other_platform")

    first = client.v1.transfers.create(
        params={"amount": 500, "currency": "usd", "destination": account.id}, options={"idempotency_key": "shared"}
    )
    second = other_client.v1.transfers.create(
        params={"amount": 700, "currency": "usd", "destination": account.id}, options={"idempotency_key": "shared"}
    )

    assert second.id != first.id
    assert transfer_count(double) == 2


def test_balance_insufficient_refuses_the_transfer_and_moves_nothing(
    client: stripe.StripeClient, double: RunningDouble
):
    account = onboarded_account(client, double)
    assert control(double, "/_double/balance", {"currency": "usd", "available": 999}).status_code == 200

    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.transfers.create(
            params={"amount": 1000, "currency": "usd", "destination": account.id}, options={"idempotency_key": "k"}
        )

    assert (caught.value.http_status, caught.value.code) == (400, "balance_insufficient")
    assert transfer_count(double) == 0
    assert platform_available(double) == 999
    balance = client.v1.balance.retrieve()
    assert [(funds.amount, funds.currency) for funds in balance.available if funds.currency == "usd"] == [(999, "usd")]
    # Stripe saves an answer once the endpoint ran, errors included: a retry with the key replays it.
    control(double, "/_double/balance", {"currency": "usd", "available": 5000})
    with pytest.raises(stripe.InvalidRequestError) as replayed:
        client.v1.transfers.create(
            params={"amount": 1000, "currency": "usd", "destination": account.id}, options={"idempotency_key": "k"}
        )
    assert replayed.value.code == "balance_insufficient"
    assert replayed.value.headers["Idempotent-Replayed"] == "true"
    assert transfer_count(double) == 0


def test_destination_without_active_transfers_capability_is_refused(client: stripe.StripeClient, double: RunningDouble):
    not_onboarded = express_account(client)

    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.transfers.create(params={"amount": 100, "currency": "usd", "destination": not_onboarded.id})

    assert (caught.value.code, caught.value.param) == ("insufficient_capabilities_for_transfer", "destination")
    assert transfer_count(double) == 0


def test_unknown_destination_is_refused(client: stripe.StripeClient, double: RunningDouble):
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.transfers.create(params={"amount": 100, "currency": "usd", "destination": "acct_gone"})

    assert (caught.value.http_status, caught.value.code, caught.value.param) == (400, "resource_missing", "destination")
    assert transfer_count(double) == 0


def test_concurrent_transfers_never_overdraw_the_balance(client: stripe.StripeClient, double: RunningDouble):
    account = onboarded_account(client, double)
    control(double, "/_double/balance", {"currency": "usd", "available": 30})

    def send(n: int) -> str:
        try:
            client.v1.transfers.create(params={"amount": 1, "currency": "usd", "destination": account.id})
        except stripe.InvalidRequestError as exc:
            return exc.code or ""
        return "ok"

    with ThreadPoolExecutor(max_workers=10) as pool:
        outcomes = list(pool.map(send, range(50)))

    assert outcomes.count("ok") == 30
    assert outcomes.count("balance_insufficient") == 20
    assert platform_available(double) == 0
    assert transfer_count(double) == 30


def test_reversals_update_the_transfer_credit_the_balance_and_emit_transfer_reversed(
    client: stripe.StripeClient, double: RunningDouble, receiver: Receiver
):
    account = onboarded_account(client, double)
    transfer = client.v1.transfers.create(params={"amount": 1000, "currency": "usd", "destination": account.id})
    after_transfer = platform_available(double)

    partial = client.v1.transfers.reversals.create(transfer.id, params={"amount": 300, "metadata": {"why": "fraud"}})
    with pytest.raises(stripe.InvalidRequestError) as too_much:
        client.v1.transfers.reversals.create(transfer.id, params={"amount": 701})
    rest = client.v1.transfers.reversals.create(transfer.id)

    assert isinstance(partial, stripe.Reversal)
    assert (partial.amount, partial.transfer, partial.currency) == (300, transfer.id, "usd")
    assert partial.metadata.to_dict() == {"why": "fraud"}
    assert too_much.value.param == "amount"
    assert rest.amount == 700
    reversed_transfer = client.v1.transfers.retrieve(transfer.id)
    assert (reversed_transfer.amount_reversed, reversed_transfer.reversed) == (1000, True)
    assert [r.id for r in reversed_transfer.reversals.data] == [rest.id, partial.id]
    assert platform_available(double) == after_transfer + 1000
    listed = client.v1.transfers.reversals.list(transfer.id)
    assert [r.id for r in listed.data] == [rest.id, partial.id]
    assert client.v1.transfers.reversals.retrieve(transfer.id, partial.id).amount == 300
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.transfers.reversals.create(transfer.id, params={"amount": 1})
    assert double.wait_for_webhooks()
    reversed_events = receiver.events("transfer.reversed")
    assert [e["data"]["object"]["amount_reversed"] for e in reversed_events] == [300, 1000]


def test_transfer_list_pages_newest_first_with_filters(client: stripe.StripeClient, double: RunningDouble):
    first_account = onboarded_account(client, double)
    second_account = onboarded_account(client, double)
    created = [
        client.v1.transfers.create(
            params={"amount": 100 + n, "currency": "usd", "destination": first_account.id, "transfer_group": "b1"}
        ).id
        for n in range(5)
    ]
    other = client.v1.transfers.create(
        params={"amount": 1, "currency": "usd", "destination": second_account.id, "transfer_group": "b2"}
    )

    page = client.v1.transfers.list(params={"transfer_group": "b1", "limit": 2})
    next_page = client.v1.transfers.list(
        params={"transfer_group": "b1", "limit": 2, "starting_after": page.data[-1].id}
    )
    everything = [t.id for t in client.v1.transfers.list(params={"limit": 2}).auto_paging_iter()]

    assert isinstance(page, stripe.ListObject)
    assert page.url == "/v1/transfers"
    assert all(isinstance(t, stripe.Transfer) for t in page.data)
    assert [t.id for t in page.data] == [created[4], created[3]]
    assert page.has_more is True
    assert [t.id for t in next_page.data] == [created[2], created[1]]
    assert everything == [other.id, *reversed(created)]
    only_second = client.v1.transfers.list(params={"destination": second_account.id})
    assert ([t.id for t in only_second.data], only_second.has_more) == ([other.id], False)
    before = client.v1.transfers.list(params={"transfer_group": "b1", "limit": 2, "ending_before": created[1]})
    assert [t.id for t in before.data] == [created[3], created[2]]
    assert before.has_more is True
    future = client.v1.transfers.list(params={"created": {"gt": int(time.time()) + 60}})
    assert (future.data, future.has_more) == ([], False)
    expanded = client.v1.transfers.list(params={"limit": 1, "expand": ["data.destination"]})
    assert isinstance(expanded.data[0].destination, stripe.Account)
    assert expanded.data[0].destination.id == second_account.id


# -- faults ------------------------------------------------------------------------------------------------


def test_rate_limit_429_raises_rate_limit_error_and_stripe_python_does_not_retry_it(double: RunningDouble):
    account = onboarded_account(make_client(double), double)
    retrying = make_client(double, max_network_retries=2)
    double.faults(
        {"method": "POST", "path": "/v1/transfers", "mode": "error", "status": 429, "retry_after": 2, "times": 1}
    )

    with pytest.raises(stripe.RateLimitError) as caught:
        retrying.v1.transfers.create(params={"amount": 1, "currency": "usd", "destination": account.id})

    # Stripe's plain rate-limit answer carries no Stripe-Should-Retry, so the SDK gives up at once:
    # backing off on 429 is the gateway's job.
    assert (caught.value.http_status, caught.value.error.code) == (429, "rate_limit")
    assert caught.value.headers["Retry-After"] == "2"
    assert "Stripe-Should-Retry" not in caught.value.headers
    assert transfer_count(double) == 0
    assert retrying.v1.transfers.create(params={"amount": 1, "currency": "usd", "destination": account.id})


def test_lock_timeout_429_is_retried_by_stripe_python_and_succeeds(double: RunningDouble):
    account = onboarded_account(make_client(double), double)
    retrying = make_client(double, max_network_retries=2)
    double.faults(
        {"method": "POST", "path": "/v1/transfers", "mode": "error", "status": 429, "code": "lock_timeout", "times": 1}
    )

    transfer = retrying.v1.transfers.create(params={"amount": 1, "currency": "usd", "destination": account.id})

    assert isinstance(transfer, stripe.Transfer)
    assert transfer_count(double) == 1


def test_500_raises_api_error_and_a_retry_with_the_same_key_runs_once(double: RunningDouble):
    account = onboarded_account(make_client(double), double)
    double.faults({"method": "POST", "path": "/v1/transfers", "mode": "error", "status": 500, "times": 1})
    params = {"amount": 1, "currency": "usd", "destination": account.id}

    with pytest.raises(stripe.APIError) as caught:
        make_client(double, max_network_retries=0).v1.transfers.create(params=params)
    double.faults({"method": "POST", "path": "/v1/transfers", "mode": "error", "status": 500, "times": 1})
    retried = make_client(double, max_network_retries=1).v1.transfers.create(params=params)

    assert caught.value.http_status == 500
    assert caught.value.json_body["error"]["type"] == "api_error"
    assert isinstance(retried, stripe.Transfer)
    assert transfer_count(double) == 1


def test_timeout_raises_api_connection_error_and_runs_nothing(double: RunningDouble):
    account = onboarded_account(make_client(double), double)
    impatient = make_client(double, max_network_retries=0, http_client=stripe.RequestsClient(timeout=0.3))
    double.faults({"path": "/v1/transfers", "mode": "timeout", "hold_ms": 2000, "times": 1})

    started = time.monotonic()
    with pytest.raises(stripe.APIConnectionError):
        impatient.v1.transfers.create(params={"amount": 1, "currency": "usd", "destination": account.id})

    assert time.monotonic() - started < 1.5
    assert transfer_count(double) == 0


def test_dropped_response_is_retried_with_the_same_key_and_replayed(double: RunningDouble):
    account = onboarded_account(make_client(double), double)
    retrying = make_client(double, max_network_retries=2)
    double.faults({"method": "POST", "path": "/v1/transfers", "mode": "drop_response", "times": 1})

    transfer = retrying.v1.transfers.create(params={"amount": 1, "currency": "usd", "destination": account.id})

    assert transfer_count(double) == 1
    assert double.state.summary()["transfers"][0]["id"] == transfer.id
    assert transfer.last_response.headers["Idempotent-Replayed"] == "true"


def test_dropped_response_without_retries_leaves_the_transfer_made(double: RunningDouble):
    account = onboarded_account(make_client(double), double)
    client = make_client(double, max_network_retries=0)
    double.faults({"method": "POST", "path": "/v1/transfers", "mode": "drop_response", "times": 1})
    params = {"amount": 1, "currency": "usd", "destination": account.id}

    with pytest.raises(stripe.APIConnectionError):
        client.v1.transfers.create(params=params, options={"idempotency_key": "item-9"})
    again = client.v1.transfers.create(params=params, options={"idempotency_key": "item-9"})

    assert transfer_count(double) == 1
    assert again.id == double.state.summary()["transfers"][0]["id"]


def test_latency_is_added_per_call_without_serialising_concurrent_calls(double: RunningDouble):
    client = make_client(double)
    double.faults(latency_ms=200)

    started = time.monotonic()
    client.v1.balance.retrieve()
    single = time.monotonic() - started
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=20) as pool:
        list(pool.map(lambda _: client.v1.balance.retrieve(), range(20)))
    twenty = time.monotonic() - started

    assert single >= 0.2
    # Twenty calls one after the other would take 4 s.
    assert twenty < 1.5


def test_latency_rule_applies_only_to_its_path(double: RunningDouble):
    client = make_client(double)
    double.faults({"path": "/v1/transfers*", "mode": "latency", "latency_ms": 300})

    started = time.monotonic()
    client.v1.balance.retrieve()
    unaffected = time.monotonic() - started
    started = time.monotonic()
    client.v1.transfers.list()
    affected = time.monotonic() - started

    assert unaffected < 0.2
    assert affected >= 0.3


def test_faults_control_endpoint_validates_rules(double: RunningDouble):
    refused = control(double, "/_double/faults", {"rules": [{"mode": "explode"}]})
    accepted = control(double, "/_double/faults", {"rules": [{"mode": "error", "status": 503, "times": 2}]})

    assert refused.status_code == 400
    assert accepted.status_code == 200
    assert accepted.json()["rules"][0]["times"] == 2


# -- webhooks ----------------------------------------------------------------------------------------------


def test_webhooks_are_signed_as_stripe_signs_them(
    client: stripe.StripeClient, double: RunningDouble, receiver: Receiver
):
    account = onboarded_account(client, double)
    transfer = client.v1.transfers.create(params={"amount": 10, "currency": "usd", "destination": account.id})
    assert double.wait_for_webhooks()

    [(body, headers)] = [
        (body, headers) for body, headers in receiver.received if json.loads(body)["type"] == "transfer.created"
    ]
    event = stripe.Webhook.construct_event(body.decode(), headers["Stripe-Signature"], WEBHOOK_SECRET)

    assert isinstance(event, stripe.Event)
    assert event.type == "transfer.created"
    assert isinstance(event.data.object, stripe.Transfer)
    assert event.data.object.id == transfer.id
    assert event.api_version == stripe.api_version
    assert (event.livemode, event.pending_webhooks) == (False, 1)
    assert headers["Content-Type"] == "application/json; charset=utf-8"
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(body.decode(), headers["Stripe-Signature"], "whsec_wrong")


def test_signature_header_matches_stripes_own_verification():
    payload = b'{"id": "evt_1"}'
    header = signature_header(payload, WEBHOOK_SECRET, int(time.time()))

    assert stripe.WebhookSignature.verify_header(payload.decode(), header, WEBHOOK_SECRET, tolerance=300)


def test_failed_deliveries_are_retried_until_the_endpoint_accepts():
    flaky = Receiver(fail_first=2)
    try:
        with running(
            webhook_url=flaky.url, webhook_secret=WEBHOOK_SECRET, webhook_retry_delays=(0.05, 0.05, 0.05)
        ) as d:
            client = make_client(d)
            account = express_account(client)
            completed = control(d, f"/_double/accounts/{account.id}/complete").json()
            assert completed["payouts_enabled"] is True
            assert d.wait_for_webhooks()

            [event_id] = [delivery.event_id for delivery in d.deliveries() if delivery.status == 200]
            statuses = [(delivery.attempt, delivery.status) for delivery in d.deliveries()]
            event = client.v1.events.retrieve(event_id, options={"stripe_account": account.id})
    finally:
        flaky.close()

    assert statuses == [(1, 500), (2, 500), (3, 200)]
    assert len(flaky.deliveries_of(event_id)) == 3
    assert event.pending_webhooks == 0


def test_replay_delivers_the_same_event_again(client: stripe.StripeClient, double: RunningDouble, receiver: Receiver):
    account = onboarded_account(client, double)
    client.v1.transfers.create(params={"amount": 10, "currency": "usd", "destination": account.id})
    assert double.wait_for_webhooks()
    [event] = receiver.events("transfer.created")

    replayed = control(double, f"/_double/webhooks/replay/{event['id']}")
    assert double.wait_for_webhooks()

    assert replayed.status_code == 202
    bodies = [json.loads(body) for body, _ in receiver.deliveries_of(event["id"])]
    assert len(bodies) == 2
    assert bodies[1]["data"] == bodies[0]["data"]
    assert control(double, "/_double/webhooks/replay/evt_unknown").status_code == 404


# -- checkout ----------------------------------------------------------------------------------------------


def test_checkout_page_payment_credits_the_balance_and_emits_checkout_session_completed(
    client: stripe.StripeClient, double: RunningDouble, receiver: Receiver
):
    before = platform_available(double)
    session = client.v1.checkout.sessions.create(
        params={
            "mode": "payment",
            "line_items": [
                {
                    "price_data": {"currency": "usd", "unit_amount": 2500, "product_data": {"name": "Top-up"}},
                    "quantity": 2,
                }
            ],
            "success_url": "https://acme.example/paid?session={CHECKOUT_SESSION_ID}",
            "cancel_url": "https://acme.example/cancelled",
            "client_reference_id": "tenant-acme",
            "metadata": {"purpose": "payout_funding"},
        }
    )
    assert isinstance(session, stripe.checkout.Session)
    assert (session.status, session.payment_status, session.amount_total) == ("open", "unpaid", 5000)
    assert session.url == f"{double.url}/_double/checkout/{session.id}"
    assert "Pay" in requests.get(session.url, timeout=5).text

    paid = requests.post(session.url, allow_redirects=False, timeout=5)

    assert (paid.status_code, paid.headers["Location"]) == (302, f"https://acme.example/paid?session={session.id}")
    completed = client.v1.checkout.sessions.retrieve(session.id)
    assert (completed.status, completed.payment_status) == ("complete", "paid")
    intent = client.v1.payment_intents.retrieve(completed.payment_intent)
    assert isinstance(intent, stripe.PaymentIntent)
    assert (intent.status, intent.amount_received) == ("succeeded", 5000)
    assert platform_available(double) == before + 5000
    assert double.wait_for_webhooks()
    [event] = receiver.events("checkout.session.completed")
    assert event["data"]["object"]["id"] == session.id
    assert event["data"]["object"]["client_reference_id"] == "tenant-acme"
    assert event["data"]["object"]["metadata"] == {"purpose": "payout_funding"}
    assert requests.post(session.url, allow_redirects=False, timeout=5).status_code == 409
    assert platform_available(double) == before + 5000


# -- connected-account payouts and events ---------------------------------------------------------------


def test_connected_account_payout_emits_connect_events(
    client: stripe.StripeClient, double: RunningDouble, receiver: Receiver
):
    account = onboarded_account(client, double)
    client.v1.transfers.create(params={"amount": 800, "currency": "usd", "destination": account.id})

    answer = control(
        double, f"/_double/accounts/{account.id}/payouts", {"status": "failed", "failure_code": "no_account"}
    )

    assert answer.status_code == 200
    payout = client.v1.payouts.retrieve(answer.json()["id"], options={"stripe_account": account.id})
    assert isinstance(payout, stripe.Payout)
    assert (payout.amount, payout.status, payout.failure_code) == (800, "failed", "no_account")
    assert double.wait_for_webhooks()
    [created] = receiver.events("payout.created")
    [failed] = receiver.events("payout.failed")
    assert (created["account"], created["data"]["object"]["status"]) == (account.id, "in_transit")
    assert (failed["account"], failed["data"]["object"]["id"]) == (account.id, payout.id)
    # The failed payout's money is back in the connected account's balance.
    balance = client.v1.balance.retrieve(options={"stripe_account": account.id})
    assert [funds.amount for funds in balance.available] == [800]
    connect_event = client.v1.events.retrieve(failed["id"], options={"stripe_account": account.id})
    assert isinstance(connect_event, stripe.Event)
    assert connect_event.account == account.id
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.events.retrieve(failed["id"])
    payouts = client.v1.payouts.list(options={"stripe_account": account.id})
    assert [p.id for p in payouts.data] == [payout.id]
    events = client.v1.events.list(params={"type": "payout.*"}, options={"stripe_account": account.id})
    assert [e.type for e in events.data] == ["payout.failed", "payout.created"]


def test_paid_payout_empties_the_connected_balance(client: stripe.StripeClient, double: RunningDouble):
    account = onboarded_account(client, double)
    client.v1.transfers.create(params={"amount": 300, "currency": "usd", "destination": account.id})

    too_much = control(double, f"/_double/accounts/{account.id}/payouts", {"status": "paid", "amount": 301})
    paid = control(double, f"/_double/accounts/{account.id}/payouts", {"status": "paid"})
    nothing_left = control(double, f"/_double/accounts/{account.id}/payouts", {"status": "paid"})

    assert too_much.status_code == 400
    assert (paid.json()["amount"], paid.json()["status"]) == (300, "paid")
    assert nothing_left.status_code == 400
    balance = client.v1.balance.retrieve(options={"stripe_account": account.id})
    assert [funds.amount for funds in balance.available] == [0]


def test_platform_events_list_and_retrieve(client: stripe.StripeClient, double: RunningDouble):
    account = onboarded_account(client, double)
    transfer = client.v1.transfers.create(params={"amount": 5, "currency": "usd", "destination": account.id})

    events = client.v1.events.list(params={"types": ["transfer.created"]})

    assert isinstance(events, stripe.ListObject)
    [event] = events.data
    assert isinstance(event, stripe.Event)
    assert event.data.object.id == transfer.id
    assert client.v1.events.retrieve(event.id).type == "transfer.created"


# -- control API, persistence, command line --------------------------------------------------------------


def test_state_and_reset(client: stripe.StripeClient, double: RunningDouble):
    account = onboarded_account(client, double)
    transfer = client.v1.transfers.create(params={"amount": 5, "currency": "usd", "destination": account.id})

    state = requests.get(f"{double.url}/_double/state", timeout=5).json()
    reset = control(double, "/_double/reset")

    assert state["counts"]["transfers"] == 1
    assert [t["id"] for t in state["transfers"]] == [transfer.id]
    assert reset.status_code == 200
    onboarded_account(client, double)
    double.reset()
    assert double.state.summary()["counts"] == {
        "accounts": 0,
        "transfers": 0,
        "reversals": 0,
        "checkout_sessions": 0,
        "payment_intents": 0,
        "payouts": 0,
        "events": 0,
        "idempotency_keys": 0,
    }


def test_state_file_keeps_objects_and_idempotent_answers_across_restarts(tmp_path: Path):
    state_file = tmp_path / "double.json"
    with running(state_file=str(state_file)) as first:
        client = make_client(first)
        account = onboarded_account(client, first)
        params = {"amount": 42, "currency": "usd", "destination": account.id}
        transfer = client.v1.transfers.create(params=params, options={"idempotency_key": "persisted"})

    with running(state_file=str(state_file)) as second:
        client = make_client(second)
        kept = client.v1.transfers.retrieve(transfer.id)
        replayed = client.v1.transfers.create(params=params, options={"idempotency_key": "persisted"})
        count = transfer_count(second)

    assert kept.amount == 42
    assert replayed.id == transfer.id
    assert count == 1


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_command_line_serves_until_terminated_and_writes_its_state(tmp_path: Path):
    port = _free_port()
    state_file = tmp_path / "state.json"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "devtools.stripe_double",
            "--port",
            str(port),
            "--state-file",
            str(state_file),
            "--balance",
            "usd=777",
        ],
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        stderr=subprocess.PIPE,
    )
    try:
        wait_until(lambda: _answers(f"http://127.0.0.1:{port}/_double/health"))
        client = stripe.StripeClient(API_KEY, base_addresses={"api": f"http://127.0.0.1:{port}"})
        balance = client.v1.balance.retrieve()
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)

    assert [(funds.amount, funds.currency) for funds in balance.available] == [(777, "usd")]
    assert process.returncode == 0
    assert json.loads(state_file.read_text())["version"] == 1


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.ConnectionError:
        return False


def test_transfer_update_changes_metadata_and_emits_transfer_updated(
    client: stripe.StripeClient, double: RunningDouble, receiver: Receiver
):
    account = onboarded_account(client, double)
    transfer = client.v1.transfers.create(
        params={"amount": 5, "currency": "usd", "destination": account.id, "metadata": {"batch": "1"}}
    )

    updated = client.v1.transfers.update(transfer.id, params={"description": "March", "metadata": {"note": "x"}})

    assert (updated.description, updated.metadata.to_dict()) == ("March", {"batch": "1", "note": "x"})
    assert double.wait_for_webhooks()
    [event] = receiver.events("transfer.updated")
    assert event["data"]["previous_attributes"] == {"metadata": {"batch": "1"}, "description": None}


def test_an_error_before_execution_is_not_saved_under_the_key(client: stripe.StripeClient, double: RunningDouble):
    account = onboarded_account(client, double)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.transfers.create(
            params={"currency": "usd", "destination": account.id}, options={"idempotency_key": "fix-and-retry"}
        )

    transfer = client.v1.transfers.create(
        params={"amount": 5, "currency": "usd", "destination": account.id}, options={"idempotency_key": "fix-and-retry"}
    )

    assert transfer.amount == 5
    assert transfer_count(double) == 1


def test_an_error_rule_without_times_fires_on_every_call(double: RunningDouble):
    client = make_client(double, max_network_retries=0)
    double.faults({"path": "/v1/balance", "mode": "error", "status": 503})

    for _ in range(3):
        with pytest.raises(stripe.APIError):
            client.v1.balance.retrieve()
    double.faults()

    assert isinstance(client.v1.balance.retrieve(), stripe.Balance)


def test_basic_auth_with_the_key_as_user_name_is_accepted(double: RunningDouble):
    answer = requests.get(f"{double.url}/v1/balance", auth=(API_KEY, ""), timeout=5)

    assert answer.status_code == 200
    assert answer.json()["object"] == "balance"
    assert answer.headers["Stripe-Version"] == double.state.api_version


def test_platform_account_accounts_list_and_connected_account_view(client: stripe.StripeClient, double: RunningDouble):
    first = express_account(client)
    second = express_account(client)

    platform = client.v1.accounts.retrieve_current()
    as_connected = client.v1.accounts.retrieve_current(options={"stripe_account": first.id})
    listed = client.v1.accounts.list()

    assert isinstance(platform, stripe.Account)
    assert platform.id == double.state.summary()["platform_account"]
    assert (platform.charges_enabled, platform.payouts_enabled) == (True, True)
    assert as_connected.id == first.id
    assert [a.id for a in listed.data] == [second.id, first.id]


def test_a_platform_only_endpoint_with_stripe_account_is_refused_plainly(
    client: stripe.StripeClient, double: RunningDouble
):
    account = express_account(client)

    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.transfers.list(options={"stripe_account": account.id})

    assert "does not support GET /v1/transfers with a Stripe-Account header" in caught.value.user_message


def test_account_link_for_an_unknown_account_or_of_an_unknown_type_is_refused(client: stripe.StripeClient):
    account = express_account(client)
    urls = {"refresh_url": "https://a.example/r", "return_url": "https://a.example/x"}

    with pytest.raises(stripe.InvalidRequestError) as unknown:
        client.v1.account_links.create(params={"account": "acct_nope", "type": "account_onboarding", **urls})
    with pytest.raises(stripe.InvalidRequestError) as wrong_type:
        client.v1.account_links.create(params={"account": account.id, "type": "onboarding", **urls})

    assert (unknown.value.code, unknown.value.param) == ("resource_missing", "account")
    assert wrong_type.value.param == "type"


def test_public_url_is_the_base_of_the_links_handed_out():
    with running(public_url="http://stripe-double.local:12111/") as double:
        client = make_client(double)
        account = express_account(client)

        link = client.v1.account_links.create(
            params={
                "account": account.id,
                "refresh_url": "https://a.example/r",
                "return_url": "https://a.example/x",
                "type": "account_onboarding",
            }
        )

    assert link.url.startswith(f"http://stripe-double.local:12111/_double/onboarding/{account.id}?link=")


def test_webhook_endpoint_set_through_the_control_api(receiver: Receiver):
    with running(webhook_retry_delays=(0.05,)) as double:
        client = make_client(double)
        express_account(client)
        assert double.state.summary()["counts"]["events"] == 0
        refused = control(double, "/_double/webhooks", {"url": receiver.url})
        configured = control(double, "/_double/webhooks", {"url": receiver.url, "secret": WEBHOOK_SECRET})
        account = onboarded_account(client, double)
        assert double.wait_for_webhooks()
        log = requests.get(f"{double.url}/_double/webhooks", timeout=5).json()

    assert refused.status_code == 400
    assert configured.status_code == 200
    [event] = receiver.events()
    assert (event["type"], event["account"]) == ("account.updated", account.id)
    assert [(d["event_id"], d["attempt"], d["status"]) for d in log["deliveries"]] == [(event["id"], 1, 200)]


def test_checkout_session_expire_and_expiry_at_expires_at(
    client: stripe.StripeClient, double: RunningDouble, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
):
    line_items = [{"price_data": {"currency": "usd", "unit_amount": 100, "product_data": {"name": "x"}}, "quantity": 1}]
    params = {"mode": "payment", "line_items": line_items, "success_url": "https://a.example/ok"}
    expired_now = client.v1.checkout.sessions.create(params=params)
    left_open = client.v1.checkout.sessions.create(params=params)

    expired = client.v1.checkout.sessions.expire(expired_now.id)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.checkout.sessions.expire(expired_now.id)
    monkeypatch.setattr(state_module, "_now", lambda: left_open.expires_at)
    too_late = requests.post(f"{double.url}/_double/checkout/{left_open.id}", allow_redirects=False, timeout=5)

    assert (expired.status, expired.url) == ("expired", None)
    assert too_late.status_code == 409
    assert client.v1.checkout.sessions.retrieve(left_open.id).status == "expired"
    assert double.wait_for_webhooks()
    assert sorted(e["data"]["object"]["id"] for e in receiver.events("checkout.session.expired")) == sorted(
        [expired_now.id, left_open.id]
    )


def test_checkout_modes_and_prices_the_double_does_not_model_are_refused_plainly(client: stripe.StripeClient):
    with pytest.raises(stripe.InvalidRequestError) as subscription:
        client.v1.checkout.sessions.create(params={"mode": "subscription", "line_items": [{"price": "price_1"}]})
    with pytest.raises(stripe.InvalidRequestError) as price_id:
        client.v1.checkout.sessions.create(params={"mode": "payment", "line_items": [{"price": "price_1"}]})

    assert "does not support Checkout Sessions in mode 'subscription'" in subscription.value.user_message
    assert "does not support line_items with a Price id" in price_id.value.user_message


def test_command_line_options():
    argv = [
        "--port",
        "0",
        "--latency-ms",
        "50",
        "--balance",
        "usd=5",
        "--balance",
        "EUR=7",
        "--webhook-url",
        "http://127.0.0.1:8000/stripe/webhook/",
        "--webhook-secret",
        "whsec_x",
    ]

    options = main_module.parse(argv)

    assert (options.port, options.latency_ms, dict(options.balance or {})) == (0, 50, {"usd": 5, "eur": 7})
    assert (options.webhook_url, options.webhook_secret) == ("http://127.0.0.1:8000/stripe/webhook/", "whsec_x")
    with pytest.raises(SystemExit):
        main_module.parse(["--webhook-url", "http://127.0.0.1:8000/"])


def test_global_latency_option_applies_to_every_api_call_and_survives_reset():
    with running(latency_ms=150) as double:
        client = make_client(double)
        double.reset()

        started = time.monotonic()
        client.v1.balance.retrieve()
        elapsed = time.monotonic() - started

    assert elapsed >= 0.15
