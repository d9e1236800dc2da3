"""Tenant routes live in the shared per-process cache (core.localcache), keyed by host."""

from core.localcache import local_cache as routes

__all__ = ["routes"]
