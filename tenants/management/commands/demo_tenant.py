from django.core.management.base import BaseCommand

from tenants import selectors, services
from tenants.models import Tenant


class Command(BaseCommand):
    help = "Create the `demo` tenant with an owner account if it does not exist, and print how to reach it."

    def add_arguments(self, parser):
        parser.add_argument("--slug", default="demo")
        parser.add_argument("--email", default="owner@demo.example")
        parser.add_argument("--password", default="demo-owner-password")

    def handle(self, *args, slug, email, password, **options):
        tenant = Tenant.objects.filter(slug=slug).first()
        if tenant is None:
            services.tenant_provision(name="Demo Company", subdomain=slug, owner_email=email, owner_password=password)
            tenant = Tenant.objects.get(slug=slug)
            state = "created"
        else:
            state = "exists"
        self.stdout.write(
            f"Demo tenant ({state}): {selectors.tenant_url(tenant=tenant)}  "
            f"owner: {email} / {password}  admin: {selectors.tenant_url(tenant=tenant, path='/admin/')}"
        )
