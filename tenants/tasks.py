from __future__ import annotations

import smtplib

from celery import shared_task
from django.conf import settings
from django.core.mail import send_mail
from django.db import connection
from django.utils import timezone

from accounts.models import User
from tenants.models import Tenant
from tenants.selectors import tenant_url


@shared_task(
    bind=True,
    autoretry_for=(smtplib.SMTPException, ConnectionError, TimeoutError),
    retry_backoff=True,
    max_retries=5,
)
def welcome_email_send(self, owner_id: int) -> bool:
    """Runs in the new tenant's schema (tenant-schemas-celery switches it from the task's
    header): the owner is looked up in that schema, so the wrong schema means the wrong person.
    Idempotent: the tenant row is claimed before sending and released if sending fails."""
    tenant = connection.tenant
    claimed = Tenant.objects.filter(pk=tenant.pk, welcome_email_sent_at__isnull=True).update(
        welcome_email_sent_at=timezone.now()
    )
    if not claimed:
        return False
    try:
        owner = User.objects.get(pk=owner_id)
        url = tenant_url(tenant=tenant)
        send_mail(
            subject=f"Welcome to your affiliate program, {tenant.name}",
            message=(
                f"Hello,\n\nYour affiliate program for {tenant.name} is ready at {url}\nSign in with {owner.email}.\n"
            ),
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=[owner.email],
        )
    except BaseException:
        Tenant.objects.filter(pk=tenant.pk).update(welcome_email_sent_at=None)
        raise
    return True
