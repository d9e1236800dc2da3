from __future__ import annotations

from core.errors import DomainError


class AffiliateError(DomainError):
    """An affiliate-program operation refused (bad input the serializers cannot see, a state
    that does not allow the change, a conflict)."""
