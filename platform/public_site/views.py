from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from public_site.forms import SignupForm
from public_site.throttles import SignupThrottle
from tenants.errors import TenantError
from tenants.services import tenant_provision


@require_http_methods(["GET", "POST"])
def landing(request: HttpRequest) -> HttpResponse:
    form = SignupForm(request.POST or None)
    throttle = SignupThrottle()
    if request.method == "POST" and form.is_valid() and not throttle.allow_request(request, None):
        wait = int(throttle.wait() or 60)
        form.add_error(None, f"Too many signups from your address; please try again in {wait} seconds.")
        return render(
            request, "public_site/landing.html", {"form": form, "domain": settings.PLATFORM_DOMAIN}, status=429
        )
    if request.method == "POST" and form.is_valid():
        try:
            provisioned = tenant_provision(
                name=form.cleaned_data["name"],
                subdomain=form.cleaned_data["subdomain"],
                owner_email=form.cleaned_data["owner_email"],
                owner_password=form.cleaned_data["password"],
            )
        except TenantError as exc:
            form.add_error(exc.field, exc.message)
        else:
            return HttpResponseRedirect(provisioned.login_url)
    status = 400 if request.method == "POST" else 200
    return render(
        request, "public_site/landing.html", {"form": form, "domain": settings.PLATFORM_DOMAIN}, status=status
    )
