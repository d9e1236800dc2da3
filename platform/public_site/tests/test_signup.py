import json

import pytest
from django.conf import settings

from tenants.models import Domain, Tenant
from tests.support.tenants import OWNER_PASSWORD, unique_slug


def test_landing_page_shows_the_signup_form(public_client):
    response = public_client.get("/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "Start your program" in body
    for field in ("name", "subdomain", "owner_email", "password"):
        assert f'name="{field}"' in body


def test_form_signup_redirects_owner_to_their_subdomain_logged_in(public_client, client_at):
    slug = unique_slug("form")
    response = public_client.post(
        "/",
        {"name": "Form Co", "subdomain": slug, "owner_email": "me@form.test", "password": OWNER_PASSWORD},
    )
    assert response.status_code == 302
    target = response["Location"]
    assert target.startswith(f"http://{slug}.localhost:8000/auth/handover?token=")

    tenant_client = client_at(f"{slug}.{settings.PLATFORM_DOMAIN}")
    landed = tenant_client.get(target.split(":8000", 1)[1], follow=True)
    assert landed.status_code == 200
    assert landed.redirect_chain == [("/", 302)]
    assert "Signed in as <strong>me@form.test</strong>" in landed.content.decode()


def test_form_signup_with_a_reserved_subdomain_shows_the_reason_and_creates_nothing(public_client):
    before = Tenant.objects.count()
    response = public_client.post(
        "/", {"name": "Bad", "subdomain": "admin", "owner_email": "me@bad.test", "password": OWNER_PASSWORD}
    )
    assert response.status_code == 400
    assert "“admin” is reserved" in response.content.decode()
    assert Tenant.objects.count() == before


def test_api_signup_returns_the_tenant_url_and_login_link(public_client):
    slug = unique_slug("api")
    response = public_client.post(
        "/api/v1/signup",
        {"name": "Api Co", "subdomain": slug, "owner_email": "me@api.test", "password": OWNER_PASSWORD},
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["tenant"] == {"name": "Api Co", "subdomain": slug, "url": f"http://{slug}.localhost:8000/"}
    assert body["login_url"].startswith(f"http://{slug}.localhost:8000/auth/handover?token=")
    assert "password" not in json.dumps(body)
    assert Domain.objects.filter(domain=f"{slug}.localhost", tenant__slug=slug).exists()


@pytest.mark.parametrize(
    ("payload", "status", "code", "field"),
    [
        ({"subdomain": "www"}, 400, "subdomain_reserved", "subdomain"),
        ({"subdomain": "UPPER_case"}, 400, "subdomain_invalid_characters", "subdomain"),
        ({"subdomain": "x" * 64}, 400, "subdomain_too_long", "subdomain"),
        ({"owner_email": "nope"}, 400, "invalid", "owner_email"),
        ({"password": "abc"}, 400, "password_too_weak", "password"),
        ({"name": ""}, 400, "invalid", "name"),
        ({"name": 0}, 400, "invalid", "name"),
        ({"subdomain": 12345}, 400, "invalid", "subdomain"),
        ({"password": True}, 400, "invalid", "password"),
    ],
)
def test_api_signup_bad_fields_get_a_field_error_and_create_nothing(public_client, payload, status, code, field):
    data = {"name": "Co", "subdomain": unique_slug("bad"), "owner_email": "me@co.test", "password": OWNER_PASSWORD}
    data.update(payload)
    before = Tenant.objects.count()
    response = public_client.post("/api/v1/signup", data, content_type="application/json")
    assert response.status_code == status
    error = response.json()["error"]
    assert field in error["fields"]
    if code != "invalid":
        assert error["code"] == code
    assert error["fields"][field][0]["message"]
    assert Tenant.objects.count() == before


def test_api_signup_for_a_taken_subdomain_is_409(public_client, make_tenant):
    taken = make_tenant().tenant.slug
    response = public_client.post(
        "/api/v1/signup",
        {"name": "Late", "subdomain": taken, "owner_email": "late@co.test", "password": OWNER_PASSWORD},
        content_type="application/json",
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "subdomain_taken"
    assert Tenant.objects.filter(slug=taken).count() == 1


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        ("{not json", "application/json", 400, "parse_error"),
        ("name=x", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
        ("[]", "application/json", 400, "invalid"),
        (b"\xff\xfe\x00", "application/json", 400, "parse_error"),
    ],
)
def test_api_signup_malformed_bodies_get_a_clear_4xx(public_client, body, content_type, status, code):
    before = Tenant.objects.count()
    response = public_client.post("/api/v1/signup", body, content_type=content_type)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert Tenant.objects.count() == before


def test_signup_is_not_served_on_tenant_hosts(make_tenant, client_at):
    tenant = make_tenant()
    response = client_at(f"{tenant.tenant.slug}.localhost").post(
        "/api/v1/signup", {"name": "X"}, content_type="application/json"
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_signups_are_throttled_per_address_with_a_clear_429(platform_ready, client_at, settings):
    from django.test import Client

    settings.SIGNUP_RATE = "2/hour"
    address = f"10.{_octet()}.{_octet()}.{_octet()}"
    client = Client(HTTP_HOST="localhost", REMOTE_ADDR=address)

    def attempt(slug):
        return client.post(
            "/api/v1/signup",
            {"name": "T", "subdomain": slug, "owner_email": "t@t.test", "password": OWNER_PASSWORD},
            content_type="application/json",
        )

    assert attempt(unique_slug("thr")).status_code == 201
    assert attempt(unique_slug("thr")).status_code == 201
    blocked_slug = unique_slug("thr")
    blocked = attempt(blocked_slug)
    assert blocked.status_code == 429
    assert blocked.json()["error"]["code"] == "throttled"
    assert not Tenant.objects.filter(slug=blocked_slug).exists()
    # The form shares the budget.
    form = client.post(
        "/", {"name": "T", "subdomain": blocked_slug, "owner_email": "t@t.test", "password": OWNER_PASSWORD}
    )
    assert form.status_code == 429
    assert "Too many signups from your address" in form.content.decode()
    assert not Tenant.objects.filter(slug=blocked_slug).exists()
    # Another address is not affected, and X-Forwarded-For is not trusted by default.
    other = Client(HTTP_HOST="localhost", REMOTE_ADDR=f"10.{_octet()}.{_octet()}.{_octet()}")
    spoofed = client.post(
        "/api/v1/signup",
        {"name": "T", "subdomain": unique_slug("thr"), "owner_email": "t@t.test", "password": OWNER_PASSWORD},
        content_type="application/json",
        HTTP_X_FORWARDED_FOR="203.0.113.9",
    )
    assert spoofed.status_code == 429
    assert (
        other.post(
            "/api/v1/signup",
            {"name": "T", "subdomain": unique_slug("thr"), "owner_email": "t@t.test", "password": OWNER_PASSWORD},
            content_type="application/json",
        ).status_code
        == 201
    )


def _octet() -> int:
    import secrets

    return secrets.randbelow(250) + 1
