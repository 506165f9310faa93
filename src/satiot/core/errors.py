"""Domain errors: each carries a stable problem type, an HTTP status and a human message.

The API turns them into RFC 9457 problem+json and the CLI into a one-line message; the domain
code never knows which.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base class; subclasses pin ``slug`` (the stable problem type) and ``status``."""

    slug = "domain-error"
    title = "Request cannot be processed"
    status = 422

    def __init__(self, detail: str, **extensions: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extensions = extensions


class NotFound(DomainError):
    slug = "not-found"
    title = "Not found"
    status = 404


class Conflict(DomainError):
    slug = "conflict"
    title = "Conflict with the current state"
    status = 409


class InvalidInput(DomainError):
    slug = "invalid-input"
    title = "Invalid input"
    status = 422


class IllegalTransition(Conflict):
    slug = "illegal-transition"
    title = "Lifecycle transition not allowed"


class AuthenticationFailed(DomainError):
    slug = "unauthenticated"
    title = "Authentication required"
    status = 401


class PermissionDenied(DomainError):
    slug = "forbidden"
    title = "Not allowed"
    status = 403


class TenantViolation(PermissionDenied):
    slug = "tenant-violation"
    title = "Outside the caller's tenant"
