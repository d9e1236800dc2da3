import time

from django.core import signing

from tests.support.tenants import host_of


def _path(login_url: str) -> str:
    return login_url.split(":8000", 1)[1]


def test_handover_token_logs_the_owner_in_once(make_tenant, client_at):
    provisioned = make_tenant()
    client = client_at(host_of(provisioned))

    first = client.get(_path(provisioned.login_url))
    assert first.status_code == 302
    assert client.get("/api/v1/me").json()["email"] == provisioned.owner.email

    replayer = client_at(host_of(provisioned))
    replay = replayer.get(_path(provisioned.login_url))
    assert replay.status_code == 400
    assert replayer.get("/api/v1/me").status_code == 401


def test_expired_handover_token_logs_no_one_in(make_tenant, client_at, monkeypatch, settings):
    provisioned = make_tenant()
    client = client_at(host_of(provisioned))
    real_time = time.time
    monkeypatch.setattr(signing.time, "time", lambda: real_time() + settings.LOGIN_TOKEN_MAX_AGE + 1)

    response = client.get(_path(provisioned.login_url))
    assert response.status_code == 400
    assert client.get("/api/v1/me").status_code == 401


def test_handover_token_of_one_tenant_is_refused_on_another(make_tenant, client_at):
    a, b = make_tenant(), make_tenant()
    client = client_at(host_of(b))
    response = client.get(_path(a.login_url))
    assert response.status_code == 400
    assert client.get("/api/v1/me").status_code == 401
    # ...and it was not spent: it still works where it belongs.
    assert client_at(host_of(a)).get(_path(a.login_url)).status_code == 302


def test_tampered_or_missing_handover_token_is_refused(make_tenant, client_at):
    provisioned = make_tenant()
    client = client_at(host_of(provisioned))
    token = provisioned.login_url.split("token=", 1)[1]
    assert client.get(f"/auth/handover?token={token[:-2]}xx").status_code == 400
    assert client.get("/auth/handover").status_code == 400
    assert client.get("/auth/handover?token=%00%ff").status_code == 400
    assert client.get("/api/v1/me").status_code == 401
