"""Who calls a tenant's API, as the kernel's base views ask it (`core.api.viewsets.AccessPolicy`;
the setting `API_ACCESS_POLICY` names this class). Staff (owner, admin) see the whole tenant;
affiliates only their own rows; API keys only what their scopes allow, and never act as a person."""

from __future__ import annotations

from rest_framework.request import Request

from accounts.models import User
from affiliates.models import ApiKey
from affiliates.selectors import affiliate_ids_of
from affiliates.services import is_staff


class TenantAccess:
    def key_scopes(self, request: Request) -> frozenset[str] | None:
        key = request.auth
        return frozenset(key.scopes) if isinstance(key, ApiKey) else None

    def is_staff(self, request: Request) -> bool:
        return is_staff(request.user)

    def is_affiliate(self, request: Request) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and getattr(user, "role", None) == User.Role.AFFILIATE)

    def affiliate_ids(self, request: Request) -> list[int]:
        user = request.user
        return affiliate_ids_of(user) if isinstance(user, User) else []
