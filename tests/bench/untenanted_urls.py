from django.http import HttpResponseRedirect
from django.urls import path

from config import views


def bare_302(request):
    """The clicks benchmark's baseline: a redirect with no database or Redis work, so the
    difference to `/r/<code>` is what click tracking costs on top of Django and gunicorn."""
    response = HttpResponseRedirect("https://shop.example.com/?ac_click=0190c5c5-0000-7000-8000-000000000000")
    response["Cache-Control"] = "no-store"
    return response


urlpatterns = [path("api/v1/ping", views.ping), path("bare302", bare_302)]
