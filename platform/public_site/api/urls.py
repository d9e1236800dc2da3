from django.urls import path

from public_site.api import views

urlpatterns = [path("signup", views.signup, name="signup")]
