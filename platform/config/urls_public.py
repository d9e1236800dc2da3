"""URL root of the public schema: the bare PLATFORM_DOMAIN (signup site, platform admin)."""

from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView

from config import views

urlpatterns = [
    path("", include("public_site.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/ping", views.ping, name="ping"),
    path("api/v1/", include("public_site.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(urlconf="config.urls_public"), name="schema"),
    path("api/docs/", SpectacularRedocView.as_view(url_name="schema"), name="docs"),
    # Stripe's webhooks (dj-stripe's endpoint: /stripe/webhook/<uuid>/; see billing/webhooks.py).
    path("stripe/", include("djstripe.urls", namespace="djstripe")),
    # Last: any other path under the API gets its JSON 404 (see views.api_not_found).
    re_path(r"^api/v1/", views.api_not_found),
]

handler400 = "config.views.handler400"
handler404 = "config.views.handler404"
handler500 = "config.views.handler500"
