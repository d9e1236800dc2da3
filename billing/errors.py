from __future__ import annotations

from core.errors import DomainError


class BillingError(DomainError):
    """A payout, funding or ledger operation refused (not enough funds, an account that cannot
    receive transfers, a state that does not allow the change)."""
