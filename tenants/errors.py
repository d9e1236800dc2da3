from __future__ import annotations

from config.errors import DomainError


class TenantError(DomainError):
    """A tenant operation refused."""
