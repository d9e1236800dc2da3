"""Production settings refuse unsafe values, and `check --deploy` is clean with them."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env={**base, **env}, capture_output=True, text=True
    )


def _secret() -> str:
    return secrets.token_urlsafe(64)


def test_check_deploy_is_clean_with_production_settings():
    result = _manage(
        "check", "--deploy", "--fail-level", "WARNING",
        DJANGO_ENV="production", DJANGO_SECRET_KEY=_secret(), PLATFORM_DOMAIN="affiliates.example.com",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_refuses_to_start_with_debug_on():
    result = _manage("check", DJANGO_ENV="production", DJANGO_SECRET_KEY=_secret(), DJANGO_DEBUG="true")
    assert result.returncode != 0
    assert "DJANGO_DEBUG must be off" in result.stderr


def test_production_refuses_to_start_with_the_default_or_a_weak_secret_key():
    default = _manage("check", DJANGO_ENV="production")
    assert default.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in default.stderr
    weak = _manage("check", DJANGO_ENV="production", DJANGO_SECRET_KEY="short")
    assert weak.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in weak.stderr


def test_an_unknown_environment_name_is_refused():
    result = _manage("check", DJANGO_ENV="prod")
    assert result.returncode != 0
    assert "DJANGO_ENV must be" in result.stderr


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
