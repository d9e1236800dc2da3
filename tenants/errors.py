from __future__ import annotations

from core.errors import DomainError


class TenantError(DomainError):
    """A tenant operation refused."""
