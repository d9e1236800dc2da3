from __future__ import annotations


class TenantError(Exception):
    """A tenant operation refused, with a stable code the API returns and a message for people."""

    def __init__(self, code: str, message: str, *, field: str | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.status = status
