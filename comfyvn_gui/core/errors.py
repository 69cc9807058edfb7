"""Domain errors. Each says what went wrong, where, and how to fix it.

``InputError`` (exit code 2, HTTP 4xx) means the request itself is wrong and changing it
fixes it; ``OperationError`` (exit code 1) means the request was fine but the operation
could not be carried out (keyring locked, disk full ...). Messages never hold secret values.
"""

from __future__ import annotations


class ComfyVNError(Exception):
    """Base of every error the application reports to a user."""

    code = "error"

    def __init__(self, message: str, *, fields: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields: list[str] = list(fields or [])


class InputError(ComfyVNError):
    """The request is malformed or refers to something that does not exist."""

    code = "invalid_input"


class NotFoundError(InputError):
    code = "not_found"


class ConflictError(InputError):
    code = "conflict"


class ForbiddenError(InputError):
    """Understood, but not allowed: the built-in local provider, a secret export from another
    machine."""

    code = "forbidden"


class OperationError(ComfyVNError):
    """The request was valid but could not be carried out."""

    code = "operation_failed"
