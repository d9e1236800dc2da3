"""URL root of every tenant schema: <slug>.<PLATFORM_DOMAIN>."""

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView

from accounts import views as account_views
from affiliates import views as tracking_views
from config import views
from core.admin_sites import tenant_admin_site

urlpatterns = [
    path("", account_views.tenant_home, name="tenant-home"),
    path("auth/handover", account_views.handover, name="handover"),
    path("admin/", tenant_admin_site.urls),
    path("r/<str:code>", tracking_views.referral_redirect, name="referral-redirect"),
    path("r/<str:code>/<str:slug>", tracking_views.referral_redirect, name="referral-redirect-link"),
    path("t.js", tracking_views.tracking_script, name="tracking-script"),
    path("api/v1/ping", views.ping, name="ping"),
    path("api/v1/", include("accounts.api.urls")),
    path("api/v1/", include("affiliates.api.urls")),
    path("api/v1/", include("billing.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(urlconf="config.urls_tenant"), name="schema"),
    path("api/docs/", SpectacularRedocView.as_view(url_name="schema"), name="docs"),
    # Last: any other path under the API gets its JSON 404 (see views.api_not_found).
    re_path(r"^api/v1/", views.api_not_found),
]

handler400 = "config.views.handler400"
handler404 = "config.views.handler404"
handler500 = "config.views.handler500"
