"""Tenant routes live in the shared per-process cache (config.localcache), keyed by host."""

from config.localcache import local_cache as routes

__all__ = ["routes"]
