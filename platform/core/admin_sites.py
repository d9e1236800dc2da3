"""Two admin sites. The default `admin.site` is the platform staff's, on the public host; it
collects every app's registrations (tenants, dj-stripe, ...). Tenant hosts get a site of their
own with explicit registrations only: a tenant's search_path includes the public schema, so
auto-registered platform models would otherwise show one tenant every tenant's rows."""

from django.contrib.admin import AdminSite


class TenantAdminSite(AdminSite):
    site_header = "Affiliate program administration"
    site_title = "Affiliate program admin"
    index_title = "Your program"


tenant_admin_site = TenantAdminSite(name="tenant_admin")
