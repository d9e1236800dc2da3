"""The referral redirect (`/r/<code>`) and the tracking script (`/t.js`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.db import connection
from django.test import Client

from affiliates.models import Click, Program
from affiliates.tests.api.support import World, world_build

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(reused_tenant) -> Iterator[World]:
    yield world_build(reused_tenant)
    connection.set_schema_to_public()


def test_redirect_records_the_click_sets_the_cookie_and_appends_the_click_id(world):
    from affiliates import tracking

    client = Client(HTTP_HOST=world.host, HTTP_USER_AGENT="Mozilla/5.0 (Macintosh) Safari/605.1")
    response = client.get(f"/r/{world.aff.code}?utm_source=news&sub1=abc", HTTP_REFERER="https://blog.example.net/p")
    assert response.status_code == 302
    assert response["Location"].startswith("https://shop.example.com/?ac_click=")
    cookie = response.cookies[tracking.VISITOR_COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and int(cookie["max-age"]) == 30 * 86400
    tracking.clicks_drain()
    click = Click.objects.get()
    assert str(click.id) == response["Location"].split("ac_click=")[1]
    assert (click.utm, click.sub_ids, click.referrer) == (
        {"utm_source": "news"},
        {"sub1": "abc"},
        "https://blog.example.net/p",
    )
    assert len(click.ip_hash) == 32 and "127.0.0.1" not in click.ip_hash

    # the same visitor again within the dedupe interval: redirected, not counted twice
    again = client.get(f"/r/{world.aff.code}")
    assert again.status_code == 302 and again["Location"] == response["Location"]
    tracking.clicks_drain()
    assert Click.objects.count() == 1


def test_bots_are_redirected_but_not_counted_and_unknown_codes_record_nothing(world):
    from affiliates import tracking

    bot = Client(HTTP_HOST=world.host, HTTP_USER_AGENT="Googlebot/2.1 (+http://www.google.com/bot.html)")
    assert bot.get(f"/r/{world.aff.code}").status_code == 302
    unknown = Client(HTTP_HOST=world.host, HTTP_USER_AGENT="Mozilla/5.0").get("/r/nosuchcode")
    assert unknown.status_code == 302 and unknown["Location"] == "https://shop.example.com/"
    tracking.clicks_drain()
    assert Click.objects.count() == 0


def test_tracking_script_is_served_small(world):
    response = Client(HTTP_HOST=world.host).get("/t.js")
    assert response.status_code == 200 and response["Content-Type"].startswith("application/javascript")
    assert len(response.content) < 6000 and b"AffiliateTracker" in response.content


def test_anonymous_redirects_take_the_short_path_and_a_signed_in_affiliate_is_a_self_click(world):
    from affiliates import tracking

    anonymous = Client(HTTP_HOST=world.host, HTTP_USER_AGENT="Mozilla/5.0 (X11) Firefox/120")
    response = anonymous.get(f"/r/{world.aff.code}")
    # the layers below the short path (here: clickjacking protection) never saw the request
    assert response.status_code == 302 and "X-Frame-Options" not in response
    own = world.clients["affiliate"].get(f"/r/{world.aff.code}", HTTP_USER_AGENT="Mozilla/5.0 (X11) Firefox/120")
    assert own.status_code == 302 and "X-Frame-Options" in own
    tracking.clicks_drain()
    assert sorted(Click.objects.values_list("is_self", flat=True)) == [False, True]


def test_unknown_code_without_a_default_destination_renders_the_not_found_page(world):
    Program.objects.update(default_destination="")
    from affiliates import tracking

    tracking.targets_forget()
    response = Client(HTTP_HOST=world.host, HTTP_USER_AGENT="Mozilla/5.0").get("/r/nosuchcode")
    assert response.status_code == 404 and b"<html" in response.content.lower()
