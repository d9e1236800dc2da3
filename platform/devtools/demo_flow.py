"""The payout flow of the demo tenant, driven over HTTP the way a business and an affiliate would
drive it from the console, the portal and a browser: fund the ledger on the Checkout page, onboard
the affiliate on the onboarding page, record a sale, approve its commission, run a payout, confirm
it and watch it paid. With `make run` up (the local Stripe double included):

    .venv/bin/python -m devtools.demo_flow            # http://demo.localhost:8000, the demo's users

It talks to the platform at --address with the tenant's Host header (no DNS for *.localhost
needed), follows no link into the tenant's pages, and "clicks" the double's buttons by posting
their forms. The end-to-end test runs the same function against a live server.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from html import unescape
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

_FORM = re.compile(r"<form method='post' action='([^']+)'>(.*?)</form>", re.S)
_HIDDEN = re.compile(r"<input type='hidden' name='([^']+)' value='([^']*)'>")


@dataclass(frozen=True)
class Tenant:
    address: str  # http://127.0.0.1:8000: where the platform listens
    host: str  # demo.localhost:8000: the tenant's Host header


class ApiError(RuntimeError):
    pass


class Client:
    """A signed-in session on the tenant's API (CSRF included), or an API key."""

    def __init__(self, tenant: Tenant, *, key: str | None = None) -> None:
        self.tenant, self.http = tenant, requests.Session()
        self.http.headers["Host"] = tenant.host
        if key:
            self.http.headers["Authorization"] = f"Bearer {key}"

    def sign_in(self, email: str, password: str) -> Client:
        self.call("GET", "/api/v1/auth/csrf")
        self.http.headers["X-CSRFToken"] = self.http.cookies.get("csrftoken", "")
        self.call("POST", "/api/v1/auth/login", {"email": email, "password": password})
        self.http.headers["X-CSRFToken"] = self.http.cookies.get("csrftoken", "")
        return self

    def call(self, method: str, path: str, body: dict[str, Any] | None = None, expect: int | None = None) -> Any:
        response = self.http.request(method, self.tenant.address + path, json=body, timeout=30)
        if response.status_code >= 400 or (expect and response.status_code != expect):
            raise ApiError(f"{method} {path}: {response.status_code} {response.text[:500]}")
        return response.json() if response.content else None


def press_the_button(page_url: str) -> str:
    """What a person does on the double's hosted page: submit its one form. Returns where the
    double sends the browser next (the tenant's return URL)."""
    page = requests.get(page_url, timeout=30)
    page.raise_for_status()
    match = _FORM.search(page.text)
    if match is None:
        raise ApiError(f"no form on {page_url}")
    fields = {name: unescape(value) for name, value in _HIDDEN.findall(match.group(2))}
    done = requests.post(urljoin(page_url, unescape(match.group(1))), data=fields, allow_redirects=False, timeout=30)
    if done.status_code not in (302, 303):
        raise ApiError(f"{page_url}: the form answered {done.status_code}")
    return done.headers["Location"]


def wait_for(what: str, check: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise ApiError(f"gave up waiting for {what} after {timeout:.0f} s")
        time.sleep(0.5)


def run(
    tenant: Tenant,
    *,
    owner: tuple[str, str],
    affiliate: tuple[str, str],
    api_key: str,
    program: str = "main",
    say: Callable[[str], None] = print,
    timeout: float = 60,
) -> dict[str, Any]:
    """Fund, onboard, sell, approve, run, confirm; returns the paid payout as the affiliate sees it."""
    staff = Client(tenant).sign_in(*owner)
    portal = Client(tenant).sign_in(*affiliate)
    server = Client(tenant, key=api_key)
    me = portal.call("GET", "/api/v1/me")

    funding = staff.call("POST", "/api/v1/fundings", {"amount": "500.00", "currency": "USD"})
    say(f"1. funding {funding['id']}: the business pays on {funding['url']}")
    press_the_button(funding["url"])
    balance = wait_for(
        "the Checkout webhook to credit the ledger",
        lambda: next(
            (
                b
                for b in staff.call("GET", "/api/v1/ledger")["balances"]
                if b["currency"] == "USD" and b["balance"] != "0.00"
            ),
            None,
        ),
        timeout,
    )
    say(f"   ledger balance: {balance['balance']} {balance['currency']}")

    link = portal.call("POST", "/api/v1/payout-account/onboarding", {"country": "US"})
    say(f"2. the affiliate onboards on {link['url']}")
    press_the_button(link["url"])
    account = wait_for(
        "account.updated to enable payouts",
        lambda: (a := portal.call("GET", "/api/v1/payout-account")) and a.get("can_receive_transfers") and a,
        timeout,
    )
    say(f"   Stripe account {account['stripe_account']}: can receive transfers")

    code = me["affiliations"][0]["code"] if me.get("affiliations") else None
    sale = server.call(
        "POST",
        "/api/v1/conversions",
        {
            "program": program,
            "external_id": f"demo-{uuid.uuid4().hex[:12]}",
            "event_type": "purchase",
            "amount": "300.00",
            "currency": "USD",
            "code": code,
        },
    )
    say(f"3. a 300.00 sale through the affiliate's code: conversion {sale['id']}")
    for commission in staff.call("GET", f"/api/v1/commissions?conversion={sale['id']}")["results"]:
        staff.call("POST", f"/api/v1/commissions/{commission['id']}/approve", {})
        say(f"   commission {commission['id']} ({commission['amount']}) approved")

    program_id = next(p["id"] for p in staff.call("GET", "/api/v1/programs")["results"] if p["slug"] == program)
    run = staff.call("POST", "/api/v1/payout-runs", {"program": program_id, "confirm": True})
    say(f"4. payout run {run['id']}: {run['status']}, total {run['total']}")
    staff.call("POST", f"/api/v1/payout-runs/{run['id']}/confirm", {})
    done = wait_for(
        "the worker to send the run",
        lambda: (r := staff.call("GET", f"/api/v1/payout-runs/{run['id']}")) and r["status"] == "done" and r,
        timeout,
    )
    for item in done["items"]:
        say(f"   item {item['id']}: {item['amount']} {item['currency']} {item['status']}, {item['stripe_transfer_id']}")
    mine = portal.call("GET", "/api/v1/my/payouts")
    say(f"5. the affiliate sees {len(mine['results'])} payout(s); the latest is {mine['results'][0]['status']}")
    return mine["results"][0]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.demo_flow", description=__doc__.split("\n\n")[0])
    parser.add_argument("--address", default="http://127.0.0.1:8000", help="where the platform listens")
    parser.add_argument("--host", default=None, help="the tenant's host (default: demo.localhost:<port>)")
    parser.add_argument("--owner", default="owner@demo.example:demo-owner-password")
    parser.add_argument("--affiliate", default="affiliate@demo.example:demo-affiliate-password")
    parser.add_argument("--api-key-file", default=".data/demo-api-key")
    args = parser.parse_args(argv)
    port = urlsplit(args.address).port or 80
    tenant = Tenant(args.address.rstrip("/"), args.host or f"demo.localhost:{port}")
    with open(args.api_key_file) as f:
        key = f.read().strip()
    try:
        run(tenant, owner=tuple(args.owner.split(":", 1)), affiliate=tuple(args.affiliate.split(":", 1)), api_key=key)
    except (ApiError, requests.RequestException) as exc:
        print(f"failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
