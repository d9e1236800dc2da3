from django.core.management import call_command
from django.core.management.base import BaseCommand

from tenants import provisioning, services


class Command(BaseCommand):
    help = "Migrate the public schema, ensure the public and template tenants, migrate every tenant schema."

    def handle(self, *args, **options):
        verbosity = options["verbosity"]
        # `migrate` renders every app's model state even with nothing to do (~10 s here).
        if provisioning.schema_pending_migrations(schema_name="public"):
            call_command("migrate_schemas", shared=True, interactive=False, verbosity=verbosity)
        migrated = services.platform_migrate(verbosity=verbosity)
        self.stdout.write(f"Platform ready; migrated schemas: {', '.join(migrated) or 'none (all up to date)'}")
