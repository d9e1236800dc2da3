from celery import shared_task

from accounts import services


@shared_task
def login_tokens_purge() -> int:
    """Beat sends this to every active tenant; it runs in that tenant's schema."""
    return services.login_tokens_purge()
