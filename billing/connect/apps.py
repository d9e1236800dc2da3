from django.apps import AppConfig


class ConnectConfig(AppConfig):
    """The public-schema side of payouts: which tenant and affiliate each Stripe connected
    account belongs to. A shared app, because Stripe's webhooks name an account, not a tenant."""

    name = "billing.connect"
    label = "billing_connect"
    default_auto_field = "django.db.models.BigAutoField"
