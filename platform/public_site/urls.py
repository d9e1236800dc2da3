from django.urls import path

from public_site import views

urlpatterns = [path("", views.landing, name="landing")]
