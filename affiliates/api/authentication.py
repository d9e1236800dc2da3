"""API keys for merchants' servers: `Authorization: Bearer ak_<prefix>_<secret>`.

Keys live in the tenant's schema, so a key is only ever found on its own tenant's host. Each
process keeps the keys it has seen in `core.localcache`; revoking one drops it everywhere
(pub/sub) before the revocation's response is sent."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from affiliates.models import ApiKey
from affiliates.services import api_key_cache_key, api_key_digest
from core.localcache import cacheable, local_cache

# last_used_at is for people ("used 3 minutes ago"); writing it on every call would turn each
# API read into a write.
_LAST_USED_RESOLUTION = timedelta(minutes=1)


class ApiKeyPrincipal:
    """The caller behind an API key: authenticated, but never a user with a role."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    role = "api_key"
    pk = None
    id = None

    def __init__(self, api_key: ApiKey) -> None:
        self.api_key = api_key

    def __str__(self) -> str:
        return f"API key {self.api_key.prefix}"


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Send the key as: Authorization: Bearer <key>.")
        try:
            secret = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid API key.") from None
        digest = api_key_digest(secret)
        cache_key = api_key_cache_key(digest)
        key = local_cache.get(cache_key)
        if key is None:
            generation = local_cache.generation()
            key = ApiKey.objects.filter(key_hash=digest, revoked_at__isnull=True).first()
            if key is None:
                raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
            if cacheable():
                local_cache.put(cache_key, key, generation=generation)
        now = timezone.now()
        if key.last_used_at is None or now - key.last_used_at > _LAST_USED_RESOLUTION:
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
            key.last_used_at = now
        return ApiKeyPrincipal(key), key

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "affiliates.api.authentication.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A tenant API key (`ak_...`) with the scopes the operation names.",
        }
