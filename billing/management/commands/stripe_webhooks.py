import json
import urllib.request

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from billing import webhooks


class Command(BaseCommand):
    help = (
        "Make (or update) dj-stripe's webhook endpoints from STRIPE_WEBHOOK_SECRET and "
        "STRIPE_CONNECT_WEBHOOK_SECRET and print their URLs and events, to create in Stripe's dashboard. "
        "Safe to run on every deploy: an endpoint keeps its URL."
    )

    def add_arguments(self, parser):
        parser.add_argument("--url", choices=sorted(webhooks.ENDPOINT_IDS), help="Print only this endpoint's URL.")
        parser.add_argument(
            "--double",
            action="store_true",
            help="Also tell the local Stripe double (at STRIPE_API_BASE) to deliver to the platform endpoint.",
        )

    def handle(self, *args, url=None, double=False, **options):
        endpoints = webhooks.webhook_endpoints_ensure()
        if double:
            self._configure_double(endpoints["platform"].url)
        if url:
            self.stdout.write(endpoints[url].url)
            return
        secrets = {"platform": settings.STRIPE_WEBHOOK_SECRET, "connect": settings.STRIPE_CONNECT_WEBHOOK_SECRET}
        for purpose, endpoint in endpoints.items():
            state = "secret set" if secrets[purpose] else "NO SECRET: every delivery is refused"
            self.stdout.write(f"{purpose}: {endpoint.url} ({state})")
            self.stdout.write(f"  events: {', '.join(endpoint.enabled_events)}")

    def _configure_double(self, url: str) -> None:
        if not settings.STRIPE_SECRET_KEY.startswith(settings.STRIPE_DOUBLE_KEY_PREFIX):
            raise CommandError("--double: STRIPE_SECRET_KEY is not the double's; configure Stripe's dashboard instead.")
        body = json.dumps({"url": url, "secret": settings.STRIPE_WEBHOOK_SECRET}).encode()
        request = urllib.request.Request(  # noqa: S310 - the double's address from settings
            f"{settings.STRIPE_API_BASE}/_double/webhooks",
            data=body,
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
                response.read()
        except OSError as exc:
            raise CommandError(f"--double: the double at {settings.STRIPE_API_BASE} did not answer: {exc}") from exc
        self.stdout.write(f"double: delivering to {url}")
