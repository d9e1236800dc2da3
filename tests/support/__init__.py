"""Helpers the tests import (fixtures stay in the conftest.py files, which pytest loads itself):
`tenants` (unique names, the owner password, a tenant's host), `caches` (Django's caches on another
Redis), `workers` (a real Celery worker process) and `race` (callables at the same moment on real
threads against the real database)."""
