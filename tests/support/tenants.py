"""Names and addresses of the tenants tests make."""

from __future__ import annotations

import itertools
import uuid

from django.conf import settings

from tenants.services import ProvisionedTenant

# Apart per test session, so that schemas, slugs and queues of two sessions sharing a database
# server or Redis (parallel workers, `make run` beside `make test`) never meet.
SESSION = uuid.uuid4().hex[:6]
OWNER_PASSWORD = "correct horse battery staple"

_counter = itertools.count(1)


def unique_slug(prefix: str = "t") -> str:
    return f"{prefix}-{SESSION}-{next(_counter)}"


def host_of(provisioned: ProvisionedTenant) -> str:
    return f"{provisioned.tenant.slug}.{settings.PLATFORM_DOMAIN}"
