from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django_tenants.admin import TenantAdminMixin

from tenants import selectors, services
from tenants.errors import TenantError
from tenants.models import Domain, Tenant


class DomainInline(admin.TabularInline):
    model = Domain
    extra = 0


@admin.register(Tenant)
class TenantAdmin(TenantAdminMixin, admin.ModelAdmin):
    list_display = ["name", "slug", "status", "kind", "created_at", "primary_domain"]
    list_filter = ["status", "kind"]
    search_fields = ["name", "slug", "domains__domain"]
    readonly_fields = ["schema_name", "kind", "created_at", "suspended_at", "welcome_email_sent_at"]
    fields = [
        "name",
        "slug",
        "schema_name",
        "kind",
        "status",
        "suspension_reason",
        "created_at",
        "suspended_at",
        "welcome_email_sent_at",
    ]
    inlines = [DomainInline]
    actions = ["suspend", "reactivate"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Tenants come from signup, which clones the schema and creates the owner in one go.
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Tenant | None = None) -> bool:
        # Deleting a tenant drops its schema and every row in it; suspension is the admin's tool.
        return False

    def get_readonly_fields(self, request, obj=None):
        # Status changes go through the actions, which also drop cached routes.
        return [*self.readonly_fields, "slug", "status"] if obj else self.readonly_fields

    @admin.display(description="Domain")
    def primary_domain(self, obj: Tenant) -> str:
        domain = obj.get_primary_domain()
        return domain.domain if domain else "—"

    def save_related(self, request, form, formsets, change):
        before = set(selectors.tenant_hosts(tenant=form.instance))
        super().save_related(request, form, formsets, change)
        after = set(selectors.tenant_hosts(tenant=form.instance))
        selectors.tenant_routes_forget(hosts=sorted(before | after))

    def _apply(self, request: HttpRequest, queryset: QuerySet[Tenant], action, verb: str) -> None:
        done = 0
        for tenant in queryset:
            try:
                action(tenant=tenant)
                done += 1
            except TenantError as exc:
                self.message_user(request, f"{tenant}: {exc.message}", level=messages.ERROR)
        self.message_user(request, f"{verb} {done} tenant(s).")

    @admin.action(description="Suspend selected tenants")
    def suspend(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        self._apply(request, queryset, services.tenant_suspend, "Suspended")

    @admin.action(description="Reactivate selected tenants")
    def reactivate(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        self._apply(request, queryset, services.tenant_reactivate, "Reactivated")
