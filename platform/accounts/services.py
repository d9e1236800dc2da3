"""Writes for users and login handover tokens. Run inside the tenant's schema."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import LoginToken, User

_SALT = "accounts.login-handover"


def _digest(nonce: str) -> str:
    return hashlib.sha256(nonce.encode()).hexdigest()


def login_token_issue(*, user: User) -> str:
    """Mint a signed, single-use token that logs `user` into the current tenant's host.

    The signature binds the token to the schema it was minted in; the nonce row makes it
    single-use; the timestamp bounds its life to LOGIN_TOKEN_MAX_AGE seconds."""
    nonce = secrets.token_urlsafe(32)
    LoginToken.objects.create(user=user, nonce_hash=_digest(nonce))
    return signing.TimestampSigner(salt=_SALT).sign_object({"s": connection.schema_name, "n": nonce})


def login_token_redeem(*, token: str) -> User | None:
    """Return the token's user if it is genuine, fresh, minted for this schema and unused;
    mark it used in the same statement so that two racing redemptions cannot both win."""
    max_age = settings.LOGIN_TOKEN_MAX_AGE
    try:
        payload = signing.TimestampSigner(salt=_SALT).unsign_object(token, max_age=max_age)
    except (signing.BadSignature, ValueError, TypeError):
        return None
    if not isinstance(payload, dict) or payload.get("s") != connection.schema_name:
        return None
    nonce = payload.get("n")
    if not isinstance(nonce, str):
        return None
    now = timezone.now()
    with transaction.atomic():
        token_row = (
            LoginToken.objects.select_for_update()
            .select_related("user")
            .filter(nonce_hash=_digest(nonce), used_at__isnull=True, created_at__gte=now - timedelta(seconds=max_age))
            .first()
        )
        if token_row is None or not token_row.user.is_active:
            return None
        token_row.used_at = now
        token_row.save(update_fields=["used_at"])
    return token_row.user


def login_tokens_purge(*, older_than: timedelta = timedelta(hours=1)) -> int:
    deleted, _ = LoginToken.objects.filter(created_at__lt=timezone.now() - older_than).delete()
    return deleted
