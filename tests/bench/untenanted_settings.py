"""The routing and clicks benchmarks' baseline: the same project with no tenant routing
(plain PostgreSQL backend, no routing middleware). Never used outside `make bench`."""

from config.settings import *  # noqa: F403
from config.settings import DATABASES, INSTALLED_APPS, MIDDLEWARE

INSTALLED_APPS = [app for app in INSTALLED_APPS if app != "django_tenants"]

MIDDLEWARE = [m for m in MIDDLEWARE if m != "tenants.middleware.TenantRoutingMiddleware"]
DATABASES["default"]["ENGINE"] = "django.db.backends.postgresql"
DATABASE_ROUTERS: list[str] = []
ROOT_URLCONF = "untenanted_urls"
