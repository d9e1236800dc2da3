"""The double's stand-ins for Stripe-hosted pages: onboarding, the Express dashboard and Checkout.

Deliberately bare (one form each) so that a person running `make run` offline, an end-to-end test
driving a browser, or a test posting the form directly can all go through them.
"""

from __future__ import annotations

from html import escape
from typing import Any

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem}"
    ".note{color:#666;font-size:.85rem}button{font-size:1rem;padding:.5rem 1.25rem}"
)


def _page(title: str, body: str) -> bytes:
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{escape(title)}</h1>{body}"
        "<p class='note'>Local Stripe double: nothing here reaches Stripe.</p></body></html>"
    ).encode()


def onboarding(account: dict[str, Any], *, token: str) -> bytes:
    due = ", ".join(account["requirements"]["currently_due"]) or "nothing"
    return _page(
        "Connect onboarding",
        f"<p>Account <code>{escape(account['id'])}</code> ({escape(account.get('email') or 'no email')}).</p>"
        f"<p>Currently due: {escape(due)}.</p>"
        f"<form method='post' action='/_double/onboarding/{escape(account['id'])}'>"
        f"<input type='hidden' name='link' value='{escape(token)}'>"
        "<button type='submit' id='complete-onboarding'>Complete onboarding</button></form>",
    )


def dashboard(account: dict[str, Any]) -> bytes:
    return _page(
        "Express dashboard",
        f"<p>Account <code>{escape(account['id'])}</code>: payouts "
        f"{'enabled' if account['payouts_enabled'] else 'not enabled'}.</p>",
    )


def checkout(session: dict[str, Any]) -> bytes:
    amount = f"{session['amount_total'] / 100:.2f} {session['currency'].upper()}"
    if session["status"] != "open":
        return _page("Checkout", f"<p>This checkout session is {escape(session['status'])}.</p>")
    cancel = session.get("cancel_url")
    cancel_link = f" <a href='{escape(cancel)}' id='cancel'>Cancel</a>" if cancel else ""
    return _page(
        "Checkout",
        f"<p>Pay <strong>{escape(amount)}</strong>.</p>"
        f"<form method='post' action='/_double/checkout/{escape(session['id'])}'>"
        f"<button type='submit' id='pay'>Pay</button>{cancel_link}</form>",
    )


def message(title: str, text: str) -> bytes:
    return _page(title, f"<p>{escape(text)}</p>")
