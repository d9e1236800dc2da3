from django.contrib.auth import login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from accounts.services import login_token_redeem


@never_cache
@require_GET
def handover(request: HttpRequest) -> HttpResponse:
    """Landing point of the signup redirect: a valid single-use token logs its user in here."""
    user = login_token_redeem(token=request.GET.get("token", ""))
    if user is None:
        return render(
            request,
            "accounts/handover_failed.html",
            {"message": "This sign-in link is invalid, expired or already used. Please sign in."},
            status=400,
        )
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    return redirect("tenant-home")


@never_cache
def tenant_home(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/tenant_home.html", {"tenant": request.tenant})
