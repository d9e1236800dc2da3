from django.urls import path

from config import api

urlpatterns = [path("api/v1/ping", api.ping)]
