"""One error tree, mapped to HTTP statuses and CLI exit codes in exactly one place.

Every error carries a machine-readable ``code`` and an optional ``param`` so the gateway can
render OpenAI's error shape (``{"error": {"message", "type", "code", "param"}}``) and the CLI
can print a one-line message with a distinct exit code.
"""

from __future__ import annotations

from typing import Any, ClassVar


class ParamstackError(Exception):
    """Base of every error paramstack raises on purpose."""

    http_status: ClassVar[int] = 500
    error_type: ClassVar[str] = "server_error"
    exit_code: ClassVar[int] = 1
    default_code: ClassVar[str] = "internal_error"

    def __init__(self, message: str, *, code: str | None = None, param: str | None = None):
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.param = param

    def to_openai(self) -> dict[str, Any]:
        """OpenAI's error body; the message never echoes user input verbatim."""
        return {
            "error": {
                "message": self.message,
                "type": self.error_type,
                "code": self.code,
                "param": self.param,
            }
        }


class InvalidInput(ParamstackError):
    """The caller sent something we cannot use (bad image, wrong shape, bad option)."""

    http_status = 400
    error_type = "invalid_request_error"
    exit_code = 2
    default_code = "invalid_input"


class NotFound(ParamstackError):
    http_status = 404
    error_type = "not_found_error"
    exit_code = 3
    default_code = "not_found"


class Conflict(ParamstackError):
    """The request is well-formed but clashes with current state (duplicate, bad transition)."""

    http_status = 409
    error_type = "invalid_request_error"
    exit_code = 4
    default_code = "conflict"


class PayloadTooLarge(InvalidInput):
    http_status = 413
    default_code = "payload_too_large"


class UnsupportedMediaType(InvalidInput):
    http_status = 415
    default_code = "unsupported_media_type"


class Forbidden(ParamstackError):
    http_status = 403
    error_type = "permission_error"
    exit_code = 5
    default_code = "forbidden"


class LimitExceeded(ParamstackError):
    http_status = 429
    error_type = "rate_limit_error"
    exit_code = 6
    default_code = "rate_limit_exceeded"


class UpstreamError(ParamstackError):
    http_status = 502
    error_type = "upstream_error"
    exit_code = 7
    default_code = "upstream_error"


class Unavailable(ParamstackError):
    """A dependency (model session, database) is not ready yet; retrying later may work."""

    http_status = 503
    error_type = "server_error"
    exit_code = 8
    default_code = "unavailable"


class GuardBlocked(Forbidden):
    """A guard rule stopped the request; names the rule, never echoes the offending text."""

    default_code = "guard_blocked"

    def __init__(self, *, check: str, rule: str, direction: str, policy_version: str):
        super().__init__(
            f"blocked by guard policy {policy_version!r}: rule {rule!r} ({check} on {direction})",
            param=direction,
        )
        self.check = check
        self.rule = rule
        self.direction = direction
        self.policy_version = policy_version
