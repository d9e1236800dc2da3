from django.urls import path

from accounts.api import views

urlpatterns = [
    path("me", views.me, name="me"),
    path("auth/csrf", views.csrf, name="auth-csrf"),
    path("auth/login", views.sign_in, name="auth-login"),
    path("auth/logout", views.sign_out, name="auth-logout"),
]
