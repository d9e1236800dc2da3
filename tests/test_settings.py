"""Production settings refuse unsafe values, and `check --deploy` is clean with them."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _secret() -> str:
    return secrets.token_urlsafe(64)


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env={**base, **env}, capture_output=True, text=True
    )


def test_check_deploy_is_clean_with_production_settings():
    result = _manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DJANGO_ENV="production",
        DJANGO_SECRET_KEY=_secret(),
        PLATFORM_DOMAIN="affiliates.example.com",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"DJANGO_ENV": "production", "DJANGO_SECRET_KEY": _secret(), "DJANGO_DEBUG": "true"},
            "DJANGO_DEBUG must be off",
        ),
        ({"DJANGO_ENV": "production"}, "DJANGO_SECRET_KEY must be set"),
        ({"DJANGO_ENV": "production", "DJANGO_SECRET_KEY": "short"}, "DJANGO_SECRET_KEY must be set"),
        ({"DJANGO_ENV": "prod"}, "DJANGO_ENV must be"),
        (
            {"DJANGO_ENV": "production", "DJANGO_SECRET_KEY": _secret(), "STRIPE_SECRET_KEY": "sk_test_double_x"},
            "the local Stripe double is for development and tests only",
        ),
        (
            {
                "DJANGO_ENV": "production",
                "DJANGO_SECRET_KEY": _secret(),
                "STRIPE_SECRET_KEY": "sk_test_real",
                "STRIPE_API_BASE": "http://127.0.0.1:12111",
            },
            "the local Stripe double is for development and tests only",
        ),
        (
            {
                "DJANGO_ENV": "production",
                "DJANGO_SECRET_KEY": _secret(),
                "STRIPE_SECRET_KEY": "sk_test_real",
                "STRIPE_API_BASE": "https://evil.example/x.stripe.com",
            },
            "the local Stripe double is for development and tests only",
        ),
        (
            {"DJANGO_ENV": "production", "DJANGO_SECRET_KEY": _secret(), "STRIPE_WEBHOOK_SECRET": "whsec_double_local"},
            "not the double's",
        ),
    ],
    ids=[
        "debug-on-in-production",
        "default-secret-key",
        "weak-secret-key",
        "unknown-environment",
        "stripe-double-key-in-production",
        "stripe-double-address-in-production",
        "not-stripe-in-production",
        "stripe-double-webhook-secret-in-production",
    ],
)
def test_unsafe_or_unknown_settings_refuse_to_start(env, message):
    result = _manage("check", **env)
    assert result.returncode != 0
    assert message in result.stderr


def test_env_example_lists_every_variable_the_settings_read():
    import re

    settings_src = (ROOT / "platform" / "config" / "settings.py").read_text()
    read = set(re.findall(r'env\.\w+\(\s*"([A-Z_]+)"', settings_src))
    listed = {
        line.split("=", 1)[0].lstrip("# ").strip()
        for line in (ROOT / ".env.example").read_text().splitlines()
        if "=" in line
    }
    assert read, "the settings read no variables?"
    assert read <= listed, f"missing from .env.example: {sorted(read - listed)}"
