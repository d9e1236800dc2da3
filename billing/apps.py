from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"

    def ready(self) -> None:
        from django.core.checks.registry import registry
        from djstripe import checks as djstripe_checks

        # billing.webhooks takes over dj-stripe's processing through DJSTRIPE_WEBHOOK_EVENT_CALLBACK,
        # which dj-stripe (pinned <2.12) still calls but flags as deprecated in favour of signals.
        # Signals cannot stop its own processing, which retrieves each event's object from Stripe
        # (api.stripe.com through the `stripe` module's globals, never the double) to mirror it
        # in tables we do not use. Its warning has no id to silence, so the check goes; the
        # callback's signature is exercised by billing/tests/test_webhooks.py. Revisit on upgrade.
        registry.registered_checks.discard(djstripe_checks.check_webhook_event_callback_accepts_api_key)
