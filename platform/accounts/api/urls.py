from django.urls import path

from accounts.api import views

urlpatterns = [path("me", views.me, name="me")]
