"""A stateful local Stripe double: an HTTP server that answers the Stripe API calls the payouts
feature makes (Connect accounts and onboarding links, transfers and reversals, balance, Checkout,
events, signed webhooks) with objects shaped exactly like Stripe's, so stripe-python and dj-stripe
parse them as they parse Stripe's. It exists for tests (including fault injection: latency, 429s,
5xx, timeouts, lost responses) and for running the platform offline (`make run` without Stripe keys).

It must never be used in production. It accepts only `sk_test_` keys, keeps everything in memory
(or a local JSON file), moves no money, and its control API (`/_double/...`) has no authentication.
The switch between it and real Stripe lives in the billing gateway, not here.

Pure standard library and no Django imports, so it runs without Django settings:

    python -m devtools.stripe_double --port 12111 --webhook-url http://127.0.0.1:8000/stripe/webhook/ \
        --webhook-secret whsec_local --state-file .data/stripe-double.json

    with devtools.stripe_double.running(webhook_url=..., webhook_secret=...) as double:
        client = stripe.StripeClient("sk_test_x", base_addresses={"api": double.url, ...})
"""

from .harness import RunningDouble, running
from .server import DoubleOptions, StripeDouble
from .state import DEFAULT_API_VERSION, DoubleState

__all__ = ["DEFAULT_API_VERSION", "DoubleOptions", "DoubleState", "RunningDouble", "StripeDouble", "running"]
