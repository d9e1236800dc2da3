"""Who may call what. Staff (owner, admin) see the whole tenant; affiliates only their own
rows (the views scope querysets); API keys only what their scopes allow."""

from __future__ import annotations

import functools

from rest_framework.permissions import BasePermission

from affiliates.models import ApiKey
from affiliates.services import is_staff


def _key(request) -> ApiKey | None:
    return request.auth if isinstance(request.auth, ApiKey) else None


def is_affiliate(request) -> bool:
    user = request.user
    return bool(user and user.is_authenticated and getattr(user, "role", None) == "affiliate")


class IsStaff(BasePermission):
    message = "Only the business's staff can do this."

    def has_permission(self, request, view) -> bool:
        return _key(request) is None and is_staff(request.user)


@functools.cache
def scoped(scope: str, *, staff: bool = True, affiliates: bool = False) -> type[BasePermission]:
    """A permission class: an API key holding `scope`, or (optionally) staff, or (optionally)
    a signed-in affiliate, whose queryset the view narrows to its own rows."""

    class Scoped(BasePermission):
        message = f"This needs staff access or an API key with the '{scope}' scope."

        def has_permission(self, request, view) -> bool:
            key = _key(request)
            if key is not None:
                return scope in key.scopes
            if staff and is_staff(request.user):
                return True
            return affiliates and is_affiliate(request)

    Scoped.__name__ = f"Scoped_{scope.replace(':', '_')}"
    return Scoped


class IsAffiliate(BasePermission):
    message = "Only affiliates can do this."

    def has_permission(self, request, view) -> bool:
        return _key(request) is None and is_affiliate(request)


class StaffOrAffiliate(BasePermission):
    """People only (no API key): staff for anyone, an affiliate for itself (the view checks)."""

    message = "Sign in as staff or as an affiliate."

    def has_permission(self, request, view) -> bool:
        return _key(request) is None and (is_staff(request.user) or is_affiliate(request))
