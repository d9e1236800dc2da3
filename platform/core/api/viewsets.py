"""The base classes every API view stands on: each view declares who may call each of its actions,
and the base class enforces it and narrows an affiliate's rows; nothing is left for a view to remember.

A view declares, per action (a viewset's `list`, `create`, `approve`...; an APIView's `get`, `post`):

    scopes = {"list": "read", "create": "conversions:write", "approve": None}
    staff_only = {"approve"}          # affiliates may not call these
    affiliate_only = set()            # staff may not call these (an affiliate's own payout account)
    public = set()                    # anyone, signed in or not (applying to a program)
    affiliate_field = "affiliate_id"  # the lookup that ties a row of `queryset` to an affiliate

`scopes` names every action the view serves, with the API-key scope that lets a key call it (None: no
key may). Staff may call every action that is not `affiliate_only`; an affiliate every action that is
not `staff_only`, and then sees only the rows whose `affiliate_field` is one of its affiliates.

Failing closed:
- an action missing from `scopes` is refused (checked when the class is made, for the actions a router
  can reach, and again on every request);
- a method the view does not serve (DELETE on a view without `destroy`, OPTIONS) is answered 405 only
  to a caller who may call every action of the view, and refused to the others;
- the base class scopes the queryset itself, and refuses (at class creation) a subclass that
  overrides `get_queryset`. A view refines its queryset in `safely_get_queryset`, which the scoping is
  applied after, so that it cannot undo it. A view whose rows are scoped another way says so by
  defining `dangerously_get_queryset`, whose queryset is used as it is (PostHog's escape hatch);
- a view whose affiliates may read rows must name the `affiliate_field`; an affiliate calling a view
  without one sees no rows, and so does any caller who is neither staff, an affiliate nor an API key.

Who the caller is (staff, an affiliate and its affiliate ids, an API key and its scopes) is a matter of
the apps, which the kernel does not import: an `AccessPolicy` answers it, named by the setting
`API_ACCESS_POLICY` (a dotted path to a class, as DRF's settings name authentication classes), or set on
a view as `access_policy` (the kernel's own tests do). One policy per process: who is staff does not
depend on the resource.

The classes here carry no docstrings on purpose: drf-spectacular publishes the first docstring of a
view's own classes as the description of each of its operations.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

from django.conf import settings
from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured
from django.core.signals import setting_changed
from django.db.models import Model, QuerySet
from django.dispatch import receiver
from django.utils.module_loading import import_string
from rest_framework import viewsets
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView


@runtime_checkable
class AccessPolicy(Protocol):
    """What the kernel needs to know about a caller. The first three are cheap (the request's user and
    credentials); `affiliate_ids` may query, and is asked only for an affiliate, once per request."""

    def key_scopes(self, request: Request) -> frozenset[str] | None:
        """The scopes of the API key the request is made with; None when it is made without one."""

    def is_staff(self, request: Request) -> bool: ...

    def is_affiliate(self, request: Request) -> bool: ...

    def affiliate_ids(self, request: Request) -> list[int]:
        """The ids of the affiliates the caller (an affiliate) is, one per program it joined."""


@functools.cache
def configured_policy() -> AccessPolicy:
    path = getattr(settings, "API_ACCESS_POLICY", None)
    if not path:
        raise ImproperlyConfigured("API_ACCESS_POLICY names no access policy (a dotted path to a class).")
    policy = import_string(path)()
    if not isinstance(policy, AccessPolicy):
        raise ImproperlyConfigured(f"{path} is not an access policy (see core.api.viewsets.AccessPolicy).")
    return policy


@receiver(setting_changed)
def _policy_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == "API_ACCESS_POLICY":
        configured_policy.cache_clear()


@dataclass(frozen=True)
class Rule:
    """Who may call one action: an API key holding every one of `key_scopes` (none: no key), staff,
    affiliates, or anyone at all."""

    key_scopes: frozenset[str] = frozenset()
    staff: bool = False
    affiliates: bool = False
    anyone: bool = False

    def admits(self, policy: AccessPolicy, request: Request) -> bool:
        if self.anyone:
            return True
        held = policy.key_scopes(request)
        if held is not None:  # a key speaks for a server, never for a person
            return bool(self.key_scopes) and self.key_scopes <= held
        if policy.is_staff(request):
            return self.staff
        if policy.is_affiliate(request):
            return self.affiliates
        return False

    def __and__(self, other: Rule) -> Rule:
        """The callers both rules admit."""
        if self.anyone:
            return other
        if other.anyone:
            return self
        keys = self.key_scopes | other.key_scopes if self.key_scopes and other.key_scopes else frozenset()
        return Rule(keys, self.staff and other.staff, self.affiliates and other.affiliates)

    @property
    def message(self) -> str:
        """What a refused caller is told."""
        if self.key_scopes:
            names = ", ".join(f"'{scope}'" for scope in sorted(self.key_scopes))
            scope = f"the {names} scope" if len(self.key_scopes) == 1 else f"the {names} scopes"
            return f"This needs staff access or an API key with {scope}." if self.staff else f"This needs {scope}."
        if self.staff and self.affiliates:
            return "Sign in as staff or as an affiliate."
        if self.staff:
            return "Only the business's staff can do this."
        if self.affiliates:
            return "Only affiliates can do this."
        return "No one may do this here."


NOBODY = Rule()
UNDECLARED = "This operation declares no access; it is refused."

# The actions a router makes of a viewset's own methods, and the HTTP method of each.
_VIEWSET_ACTIONS = {
    "list": "get",
    "create": "post",
    "retrieve": "get",
    "update": "put",
    "partial_update": "patch",
    "destroy": "delete",
}
_HANDLERS = ("get", "post", "put", "patch", "delete")


def scope_to_affiliates(queryset: QuerySet[Any], field: str, affiliate_ids: list[int]) -> QuerySet[Any]:
    """The rows whose `field` is one of `affiliate_ids`. Through a to-many relation (a conversion
    credited to several affiliates), the rows are matched in a subquery, so that each appears once
    without a DISTINCT over the whole list."""
    lookup = {f"{field}__in": affiliate_ids}
    if _spans_many(queryset.model, field):
        return queryset.filter(pk__in=queryset.filter(**lookup).values("pk"))
    return queryset.filter(**lookup)


def _spans_many(model: type[Model], lookup: str) -> bool:
    for name in lookup.split("__"):
        field = model._meta.get_field(name)
        if field.many_to_many or field.one_to_many:
            return True
        if field.related_model is None:
            return False
        model = field.related_model  # type: ignore[assignment]
    return False


def _rules(cls: type[ScopedView]) -> dict[str | None, Rule]:
    declared = set(cls.scopes)
    for name in ("staff_only", "affiliate_only", "public"):
        unknown = set(getattr(cls, name)) - declared
        if unknown:
            raise TypeError(f"{cls.__qualname__}.{name} names actions missing from its scopes: {sorted(unknown)}.")
    both = set(cls.staff_only) & set(cls.affiliate_only)
    if both:
        raise TypeError(f"{cls.__qualname__}: actions both staff_only and affiliate_only: {sorted(both)}.")
    rules: dict[str | None, Rule] = {
        action: Rule(
            key_scopes=frozenset({scope}) if scope else frozenset(),
            staff=action not in cls.affiliate_only,
            affiliates=action not in cls.staff_only,
            anyone=action in cls.public,
        )
        for action, scope in cls.scopes.items()
    }
    unserved = NOBODY
    if rules:
        unserved = functools.reduce(Rule.__and__, rules.values())
    rules[None] = unserved
    return rules


def _served_actions(cls: type[ScopedView]) -> set[str]:
    allowed: Collection[str] = getattr(cls, "http_method_names", ())
    if issubclass(cls, viewsets.ViewSetMixin):
        served = {action for action, method in _VIEWSET_ACTIONS.items() if hasattr(cls, action) and method in allowed}
        for extra in cls.get_extra_actions():
            served.update(name for method, name in extra.mapping.items() if method in allowed)
        return served
    return {method for method in _HANDLERS if method in allowed and hasattr(cls, method)}


def _check_affiliate_field(cls: type[ScopedView]) -> None:
    queryset = getattr(cls, "queryset", None)
    if queryset is None or hasattr(cls, "dangerously_get_queryset"):
        return
    if cls.affiliate_field is None:
        # (Public actions are not about rows: applying to a program reads none.)
        open_to_affiliates = sorted(
            a for a, rule in cls.access_rules.items() if a is not None and rule.affiliates and not rule.anyone
        )
        if open_to_affiliates:
            raise TypeError(
                f"{cls.__qualname__} lets affiliates call {open_to_affiliates} but names no affiliate_field: "
                "declare the lookup that ties a row to an affiliate, or make the actions staff_only."
            )
        return
    try:
        _spans_many(queryset.model, cls.affiliate_field)
    except FieldDoesNotExist:
        raise TypeError(
            f"{cls.__qualname__}.affiliate_field {cls.affiliate_field!r} is not a lookup of {queryset.model.__name__}."
        ) from None


class DeclaredAccess(BasePermission):
    # The one permission of every view on the base classes: the view's declarations decide.

    message = UNDECLARED

    def has_permission(self, request: Request, view: APIView) -> bool:
        if not isinstance(view, ScopedView):
            return False
        rule = view.access_rule()
        self.message = rule.message if rule is not None else UNDECLARED
        return rule is not None and rule.admits(view.get_access_policy(), request)


class ScopedView:
    # The declarations and their enforcement, shared by ScopedViewSet and ScopedAPIView (see the
    # module's docstring; no docstring here, as drf-spectacular would publish it).

    scopes: ClassVar[Mapping[str, str | None]] = {}
    staff_only: ClassVar[Collection[str]] = frozenset()
    affiliate_only: ClassVar[Collection[str]] = frozenset()
    public: ClassVar[Collection[str]] = frozenset()
    affiliate_field: ClassVar[str | None] = None
    access_policy: ClassVar[AccessPolicy | None] = None

    # Made from the declarations when the class is: action -> rule; None -> the rule of a method the
    # view does not serve (every action's rule at once).
    access_rules: ClassVar[dict[str | None, Rule]] = {}

    request: Request
    http_method_names: list[str]
    _own_affiliate_ids: list[int] | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in ("get_queryset", "get_permissions", "permission_classes"):
            if name in cls.__dict__ and cls.__module__ != __name__:  # the base classes below define them
                raise TypeError(
                    f"{cls.__qualname__} overrides {name}: the base class scopes querysets and checks access "
                    "from the declarations. Refine the queryset in safely_get_queryset, or, for rows scoped "
                    "another way, define dangerously_get_queryset."
                )
        cls.access_rules = _rules(cls)
        undeclared = _served_actions(cls) - set(cls.scopes)
        if undeclared:
            raise TypeError(f"{cls.__qualname__} serves actions it declares no access for: {sorted(undeclared)}.")
        _check_affiliate_field(cls)

    def get_permissions(self) -> list[BasePermission]:
        rule = self.access_rule()
        # AllowAny for a public action: what it means, and what drf-spectacular reads to document
        # the action as callable without credentials.
        return [AllowAny()] if rule is not None and rule.anyone else [DeclaredAccess()]

    def get_access_policy(self) -> AccessPolicy:
        return type(self).access_policy or configured_policy()

    def current_action(self) -> str | None:
        """The action the request calls; None for a method the view does not serve (or OPTIONS)."""
        method = self.request.method.lower() if self.request.method else ""
        if isinstance(self, viewsets.ViewSetMixin):
            action: str | None = self.action
            # DRF names OPTIONS 'metadata', and maps a method to an action that may still be refused
            # by http_method_names (PUT on a viewset that has `update` but serves only PATCH).
            if action == "metadata" or method not in self.http_method_names:
                return None
            return action
        if method == "head":
            method = "get"  # Django answers HEAD with the GET handler
        handler = getattr(type(self), method, None) if method in self.http_method_names else None
        if handler is None or handler is APIView.options:
            return None
        return method

    def access_rule(self) -> Rule | None:
        """The rule for this request's action; None when the action is not declared."""
        return self.access_rules.get(self.current_action())

    def own_affiliate_ids(self) -> list[int]:
        """The caller's affiliate ids (for an affiliate caller), asked of the policy once per request."""
        if self._own_affiliate_ids is None:
            self._own_affiliate_ids = self.get_access_policy().affiliate_ids(self.request)
        return self._own_affiliate_ids

    def caller_is_affiliate(self) -> bool:
        policy = self.get_access_policy()
        return policy.key_scopes(self.request) is None and policy.is_affiliate(self.request)


class ScopedViewSet(ScopedView, viewsets.GenericViewSet):
    # A viewset whose querysets the base class scopes; see the module's docstring.

    def get_queryset(self) -> QuerySet[Any]:
        dangerously = getattr(self, "dangerously_get_queryset", None)
        if dangerously is not None:
            return dangerously()
        return self.scope_queryset(self.safely_get_queryset(super().get_queryset()))

    def safely_get_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        """The declared queryset refined for the action (joins, prefetches); scoped afterwards."""
        return queryset

    def scope_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        policy = self.get_access_policy()
        if policy.key_scopes(self.request) is not None or policy.is_staff(self.request):
            return queryset  # the whole tenant
        if not policy.is_affiliate(self.request) or self.affiliate_field is None:
            return queryset.none()
        return scope_to_affiliates(queryset, self.affiliate_field, self.own_affiliate_ids())


class ScopedAPIView(ScopedView, APIView):
    # An endpoint that is not a set of rows (stats, a tracking call): its actions are its HTTP methods.
    pass
