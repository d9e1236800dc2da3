from __future__ import annotations


class DomainError(Exception):
    """A refused operation, with a stable code the API returns and a message for people.
    Each app raises its own subclass; `core.api.errors.exception_handler` turns any of them into
    the shared error body."""

    def __init__(self, code: str, message: str, *, field: str | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.status = status
