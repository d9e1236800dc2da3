from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand
from django_tenants.utils import tenant_context

from tenants import selectors, services
from tenants.models import Tenant


class Command(BaseCommand):
    help = (
        "Create the `demo` tenant (owner, a program, an approved affiliate, a 20 % rule and an API key) "
        "if it does not exist, and print how to reach it."
    )

    def add_arguments(self, parser):
        parser.add_argument("--slug", default="demo")
        parser.add_argument("--email", default="owner@demo.example")
        parser.add_argument("--password", default="demo-owner-password")
        parser.add_argument("--key-file", default=str(Path(settings.BASE_DIR) / ".data" / "demo-api-key"))

    def handle(self, *args, slug, email, password, key_file, **options):
        tenant = Tenant.objects.filter(slug=slug).first()
        if tenant is None:
            services.tenant_provision(name="Demo Company", subdomain=slug, owner_email=email, owner_password=password)
            tenant = Tenant.objects.get(slug=slug)
            state = "created"
        else:
            state = "exists"
        with tenant_context(tenant):
            key = self._program(owner_email=email, key_file=Path(key_file))
        self.stdout.write(
            f"Demo tenant ({state}): {selectors.tenant_url(tenant=tenant)}  "
            f"owner: {email} / {password}  admin: {selectors.tenant_url(tenant=tenant, path='/admin/')}\n"
            f"  referral link: {selectors.tenant_url(tenant=tenant, path='/r/demo')}  "
            f"affiliate: affiliate@demo.example / demo-affiliate-password"
            + (f"\n  API key (all scopes, also in {key_file}): {key}" if key else "")
        )

    def _program(self, *, owner_email: str, key_file: Path) -> str | None:
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
        user = User.objects.create_user("affiliate@demo.example", "demo-affiliate-password", name="Demo Affiliate")
        affiliate = affiliates.affiliate_apply(program=program, user=user, code="demo")
        owner = User.objects.get(email=owner_email)
        affiliates.affiliate_set_status(affiliate=affiliate, status=Affiliate.Status.APPROVED, by=owner)
        issued = affiliates.api_key_create(name="demo", scopes=["read", "conversions:write", "track"], by=owner)
        key_file.parent.mkdir(parents=True, exist_ok=True)
        key_file.write_text(issued.secret + "\n")
        return issued.secret
