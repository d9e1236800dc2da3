"""The kernel's base views (core.api.viewsets) on their own: with a policy of the test's making
and rows of Django's own (content types and their permissions), no app's models."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.db.models import QuerySet
from rest_framework import mixins
from rest_framework.authentication import BasicAuthentication
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import ModelSerializer
from rest_framework.test import APIRequestFactory, force_authenticate

from core.api.viewsets import Rule, ScopedAPIView, ScopedViewSet, scope_to_affiliates


@dataclass
class Person:
    role: str  # "staff", "affiliate" or anything else
    affiliate_ids: list[int] = field(default_factory=list)
    is_authenticated: bool = True


class Policy:
    """Staff and affiliates by the role of a `Person`; an API key is a frozenset of scopes."""

    def __init__(self) -> None:
        self.affiliate_lookups = 0

    def key_scopes(self, request: Request) -> frozenset[str] | None:
        return request.auth if isinstance(request.auth, frozenset) else None

    def is_staff(self, request: Request) -> bool:
        return getattr(request.user, "role", None) == "staff"

    def is_affiliate(self, request: Request) -> bool:
        return getattr(request.user, "role", None) == "affiliate"

    def affiliate_ids(self, request: Request) -> list[int]:
        self.affiliate_lookups += 1
        return request.user.affiliate_ids


STAFF = Person("staff")
OTHER_ROLE = Person("nobody")
READ_KEY = frozenset({"read"})
WRITE_KEY = frozenset({"write"})


class ContentTypeSerializer(ModelSerializer):
    class Meta:
        model = ContentType
        fields = ["id", "model"]


class Base(ScopedViewSet):
    access_policy = Policy()
    authentication_classes = [BasicAuthentication]  # nothing of the apps' (settings name an API key's)
    serializer_class = ContentTypeSerializer
    queryset = ContentType.objects.order_by("id")


class Types(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, Base):
    scopes = {"list": "read", "retrieve": "read", "create": "write", "touch": None, "hello": None}
    staff_only = {"create", "touch"}
    public = {"hello"}
    affiliate_field = "id"

    @action(detail=True, methods=["post"])
    def touch(self, request: Request, pk: str) -> Response:
        return Response({"touched": self.get_object().id})

    @action(detail=False, methods=["get"])
    def hello(self, request: Request) -> Response:
        return Response({"hello": "anyone"})

    def create(self, request: Request) -> Response:
        return Response({"created": True}, status=201)

    def not_an_action(self, request: Request) -> Response:
        return Response({"ran": True})


def call(
    view: type[ScopedViewSet] | type[ScopedAPIView],
    actions: dict[str, str] | None,
    method: str = "get",
    who: Person | frozenset[str] | None = None,
    **kwargs: Any,
) -> Response:
    request = getattr(APIRequestFactory(), method)("/x")
    if isinstance(who, Person):
        force_authenticate(request, user=who)
    elif who is not None:
        force_authenticate(request, user=Person("api_key"), token=who)
    callback: Callable[..., Response] = view.as_view(actions) if actions is not None else view.as_view()
    return callback(request, **kwargs)


def ids(response: Response) -> list[int]:
    return [row["id"] for row in response.data]


def all_ids() -> list[int]:
    return list(ContentType.objects.order_by("id").values_list("id", flat=True))


# --- what a class may declare ------------------------------------------------------------------


def test_a_subclass_that_overrides_get_queryset_is_refused():
    with pytest.raises(TypeError, match="overrides get_queryset"):

        class Unscoped(mixins.ListModelMixin, Base):
            scopes = {"list": "read"}
            staff_only = {"list"}

            def get_queryset(self) -> QuerySet[ContentType]:
                return ContentType.objects.all()


@pytest.mark.parametrize("name", ["get_permissions", "permission_classes"])
def test_a_subclass_that_sets_its_own_permissions_is_refused(name):
    with pytest.raises(TypeError, match=f"overrides {name}"):
        type("OwnPermissions", (mixins.ListModelMixin, Base), {"scopes": {"list": "read"}, name: []})


def test_a_served_action_missing_from_the_declarations_is_refused_at_class_creation():
    with pytest.raises(TypeError, match=r"declares no access for: \['touch'\]"):

        class Forgot(mixins.ListModelMixin, Base):
            scopes = {"list": "read"}
            affiliate_field = "id"

            @action(detail=True, methods=["post"])
            def touch(self, request: Request, pk: str) -> Response:
                return Response()


def test_declarations_naming_an_unknown_action_are_refused():
    with pytest.raises(TypeError, match=r"staff_only names actions missing from its scopes: \['lst'\]"):
        type("Typo", (mixins.ListModelMixin, Base), {"scopes": {"list": "read"}, "staff_only": {"lst"}})


def test_affiliates_reading_rows_need_an_affiliate_field():
    with pytest.raises(TypeError, match="names no affiliate_field"):
        type("NoField", (mixins.ListModelMixin, Base), {"scopes": {"list": "read"}})
    with pytest.raises(TypeError, match="is not a lookup of ContentType"):
        type("BadField", (mixins.ListModelMixin, Base), {"scopes": {"list": "read"}, "affiliate_field": "nope"})


# --- who may call what -------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("who", "list_status", "create_status", "touch_status", "hello_status"),
    [
        (None, 401, 401, 401, 200),
        (STAFF, 200, 201, 200, 200),
        (Person("affiliate"), 200, 403, 403, 200),
        (OTHER_ROLE, 403, 403, 403, 200),
        (READ_KEY, 200, 403, 403, 200),
        (WRITE_KEY, 403, 201, 403, 200),
    ],
)
def test_each_action_admits_whom_it_declares(who, list_status, create_status, touch_status, hello_status):
    pk = all_ids()[0]
    got = (
        call(Types, {"get": "list"}, who=who).status_code,
        call(Types, {"post": "create"}, "post", who=who).status_code,
        call(Types, {"post": "touch"}, "post", who=who, pk=pk).status_code,
        call(Types, {"get": "hello"}, who=who).status_code,
    )
    assert got == (list_status, create_status, touch_status, hello_status)


@pytest.mark.django_db
def test_an_action_missing_from_the_declarations_is_refused_on_a_request_and_never_runs():
    # A method routed by hand, which no router (and so no class-creation check) knows of.
    response = call(Types, {"get": "not_an_action"}, who=STAFF)
    assert response.status_code == 403
    assert "ran" not in response.data


@pytest.mark.django_db
def test_a_refusal_says_what_the_action_needs():
    response = call(Types, {"post": "create"}, "post", who=Person("affiliate"))
    assert response.data == {
        "error": {
            "code": "permission_denied",
            "message": "This needs staff access or an API key with the 'write' scope.",
            "fields": {},
        }
    }


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("who", "expected"),
    # DELETE is served by no action: 405 to whom every action admits (here: staff), refused to others.
    [(STAFF, 405), (Person("affiliate"), 403), (READ_KEY, 403), (None, 401)],
)
def test_a_method_no_action_serves_is_405_only_for_whom_every_action_admits(who, expected):
    assert call(Types, {"get": "list", "post": "create"}, "delete", who=who).status_code == expected


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (
            Rule(frozenset({"read"}), staff=True, affiliates=True),
            "This needs staff access or an API key with the 'read' scope.",
        ),
        (Rule(staff=True), "Only the business's staff can do this."),
        (Rule(affiliates=True), "Only affiliates can do this."),
        (Rule(staff=True, affiliates=True), "Sign in as staff or as an affiliate."),
    ],
)
def test_each_kind_of_rule_tells_a_refused_caller_what_it_needs(rule, message):
    assert rule.message == message


def test_the_rule_for_every_action_at_once_admits_only_whom_each_admits():
    read = Rule(frozenset({"read"}), staff=True, affiliates=True)
    staff = Rule(staff=True)
    anyone = Rule(anyone=True)
    assert read & staff == Rule(staff=True)
    assert read & anyone == read
    assert read & Rule(frozenset({"write"}), staff=True) == Rule(frozenset({"read", "write"}), staff=True)


# --- whose rows --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_affiliate_sees_only_its_own_rows_and_others_see_them_all():
    first, second, *_ = all_ids()
    mine = Person("affiliate", affiliate_ids=[second])

    assert ids(call(Types, {"get": "list"}, who=mine)) == [second]
    assert call(Types, {"get": "retrieve"}, who=mine, pk=first).status_code == 404
    assert call(Types, {"get": "retrieve"}, who=mine, pk=second).status_code == 200
    assert call(Types, {"post": "touch"}, "post", who=STAFF, pk=first).data == {"touched": first}
    assert ids(call(Types, {"get": "list"}, who=STAFF)) == all_ids()
    assert ids(call(Types, {"get": "list"}, who=READ_KEY)) == all_ids()


@pytest.mark.django_db
def test_the_affiliate_ids_are_asked_of_the_policy_once_per_request():
    policy = Policy()
    counted = type("Counted", (Types,), {"access_policy": policy})
    call(counted, {"get": "list"}, who=Person("affiliate", affiliate_ids=[1]))
    call(counted, {"get": "list"}, who=STAFF)
    assert policy.affiliate_lookups == 1


@pytest.mark.django_db
def test_rows_reached_through_a_to_many_relation_appear_once():
    content_type = ContentType.objects.get_for_model(Permission)
    permission_ids = list(Permission.objects.filter(content_type=content_type).values_list("id", flat=True))
    assert len(permission_ids) > 1  # add, change, delete, view

    scoped = scope_to_affiliates(ContentType.objects.all(), "permission__id", permission_ids)

    assert list(scoped) == [content_type]


@pytest.mark.django_db
def test_without_an_affiliate_field_an_affiliate_sees_no_rows_and_other_roles_none_either():
    # Staff-only actions declare no field; the scoping still closes on whoever reaches the rows.
    class StaffTypes(Types):
        affiliate_field = None
        staff_only = {"list", "retrieve", "create", "touch"}

    request = APIRequestFactory().get("/x")
    view = StaffTypes(request=Request(request), format_kwarg=None)
    for person in (Person("affiliate", affiliate_ids=all_ids()), OTHER_ROLE):
        view.request.auth = None
        view.request.user = person
        assert list(view.get_queryset()) == []


@pytest.mark.django_db
def test_dangerously_get_queryset_is_used_as_it_is():
    class Everyone(Types):
        def dangerously_get_queryset(self) -> QuerySet[ContentType]:
            return ContentType.objects.order_by("id")

    assert ids(call(Everyone, {"get": "list"}, who=Person("affiliate", affiliate_ids=[]))) == all_ids()


# --- the APIView counterpart -------------------------------------------------------------------


class Ping(ScopedAPIView):
    access_policy = Policy()
    authentication_classes = [BasicAuthentication]
    scopes = {"get": "read", "post": None}
    staff_only = {"post"}

    def get(self, request: Request) -> Response:
        return Response({"pong": True})

    def post(self, request: Request) -> Response:
        return Response({"posted": True})


@pytest.mark.parametrize(
    ("method", "who", "expected"),
    [
        ("get", Person("affiliate"), 200),
        ("head", READ_KEY, 200),  # HEAD is answered by `get`, and declared with it
        ("post", Person("affiliate"), 403),
        ("post", STAFF, 200),
        ("put", STAFF, 405),
        ("put", READ_KEY, 403),
    ],
)
def test_an_apiview_declares_its_http_methods(method, who, expected):
    assert call(Ping, None, method, who=who).status_code == expected


def test_an_apiview_serving_an_undeclared_method_is_refused_at_class_creation():
    with pytest.raises(TypeError, match=r"declares no access for: \['delete'\]"):
        type("Forgot", (Ping,), {"delete": lambda self, request: Response()})
