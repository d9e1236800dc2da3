"""The `demo` tenant that `make run` opens on: an owner, a program, an approved affiliate, a 20 %
rule and an API key, made if the tenant has no program yet. Development only; it lives here rather
than in `tenants` because it seeds the affiliate domain, which tenancy must not know.

    python -m devtools.demo_tenant [--slug demo] [--email ...] [--password ...] [--key-file ...]

`devenv run` runs it after `platform_setup`; the end-to-end test calls `demo_tenant_ensure`.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tenants.models import Tenant

ROOT = Path(__file__).resolve().parents[2]
# The demo affiliate's email and password (the portal's sign-in).
AFFILIATE_SIGN_IN = ("affiliate@demo.example", "demo-affiliate-password")


@dataclass(frozen=True)
class DemoTenant:
    tenant: Tenant
    created: bool  # False when the tenant was there already
    api_key: str | None  # the key made this time (also written to the key file); None if the program existed


def demo_tenant_ensure(*, slug: str, email: str, password: str, key_file: Path) -> DemoTenant:
    """Provision the tenant unless it exists, then seed its program unless it has one."""
    from django_tenants.utils import tenant_context

    from tenants import services
    from tenants.models import Tenant

    tenant = Tenant.objects.filter(slug=slug).first()
    created = tenant is None
    if tenant is None:
        services.tenant_provision(name="Demo Company", subdomain=slug, owner_email=email, owner_password=password)
        tenant = Tenant.objects.get(slug=slug)
    with tenant_context(tenant):
        key = _program_seed(owner_email=email, key_file=key_file)
    return DemoTenant(tenant=tenant, created=created, api_key=key)


def _program_seed(*, owner_email: str, key_file: Path) -> str | None:
    from django.conf import settings

    from accounts.models import User
    from affiliates import services as affiliates
    from affiliates.models import Affiliate, CommissionRule, Program

    if Program.objects.exists():
        return None
    site = (
        f"http://{settings.PLATFORM_DOMAIN}:{settings.PLATFORM_PORT}/"
        if settings.PLATFORM_PORT
        else (f"https://{settings.PLATFORM_DOMAIN}/")
    )
    program = affiliates.program_create(
        name="Demo program", slug="main", allowed_domains=[settings.PLATFORM_DOMAIN], default_destination=site
    )
    affiliates.rule_save(rule=CommissionRule(program=program, name="20 % of every sale", percent=20))
    user = User.objects.create_user(*AFFILIATE_SIGN_IN, name="Demo Affiliate")
    affiliate = affiliates.affiliate_apply(program=program, user=user, code="demo")
    owner = User.objects.get(email=owner_email)
    affiliates.affiliate_set_status(affiliate=affiliate, status=Affiliate.Status.APPROVED, by=owner)
    issued = affiliates.api_key_create(name="demo", scopes=["read", "conversions:write", "track"], by=owner)
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key_file.write_text(issued.secret + "\n")
    return issued.secret


def describe(demo: DemoTenant, *, email: str, password: str, key_file: Path) -> str:
    """How to reach the tenant, as `make run` prints it."""
    from tenants import selectors

    tenant = demo.tenant
    return (
        f"Demo tenant ({'created' if demo.created else 'exists'}): {selectors.tenant_url(tenant=tenant)}  "
        f"owner: {email} / {password}  admin: {selectors.tenant_url(tenant=tenant, path='/admin/')}\n"
        f"  referral link: {selectors.tenant_url(tenant=tenant, path='/r/demo')}  "
        f"affiliate: {AFFILIATE_SIGN_IN[0]} / {AFFILIATE_SIGN_IN[1]}"
        + (f"\n  API key (all scopes, also in {key_file}): {demo.api_key}" if demo.api_key else "")
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.demo_tenant", description=__doc__.split("\n\n")[0])
    parser.add_argument("--slug", default="demo")
    parser.add_argument("--email", default="owner@demo.example")
    parser.add_argument("--password", default="demo-owner-password")
    parser.add_argument("--key-file", type=Path, default=ROOT / ".data" / "demo-api-key")
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    demo = demo_tenant_ensure(slug=args.slug, email=args.email, password=args.password, key_file=args.key_file)
    print(describe(demo, email=args.email, password=args.password, key_file=args.key_file))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
