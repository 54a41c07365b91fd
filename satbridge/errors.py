"""One error tree for the whole bridge.

Every layer raises SatbridgeError subclasses; each carries a kind, and the edges map the
kind exactly once (gRPC status in server/errors.py, exit code in cli.py). No grpc or
dbus imports here, on purpose.
"""

from __future__ import annotations

import enum


class Kind(enum.Enum):
    """What went wrong, in the vocabulary of gRPC status codes."""

    INVALID_ARGUMENT = "invalid argument"
    FAILED_PRECONDITION = "failed precondition"
    NOT_FOUND = "not found"
    ALREADY_EXISTS = "already exists"
    PERMISSION_DENIED = "permission denied"
    UNAUTHENTICATED = "unauthenticated"
    ABORTED = "aborted"
    RESOURCE_EXHAUSTED = "resource exhausted"
    UNAVAILABLE = "unavailable"
    DEADLINE_EXCEEDED = "deadline exceeded"
    INTERNAL = "internal"


class SatbridgeError(Exception):
    """Base of every error the bridge reports on purpose."""

    kind: Kind = Kind.INTERNAL

    def __init__(self, message: str, *, field: str | None = None) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}" if field else message)


class InvalidArgument(SatbridgeError):
    kind = Kind.INVALID_ARGUMENT


class ConfigError(InvalidArgument):
    """A bad config file or value; `field` is the dotted key, e.g. `server.listen`."""


class FailedPrecondition(SatbridgeError):
    kind = Kind.FAILED_PRECONDITION


class NotFound(SatbridgeError):
    kind = Kind.NOT_FOUND


class PermissionDenied(SatbridgeError):
    kind = Kind.PERMISSION_DENIED


class Unauthenticated(SatbridgeError):
    kind = Kind.UNAUTHENTICATED


class Aborted(SatbridgeError):
    kind = Kind.ABORTED


class ResourceExhausted(SatbridgeError):
    kind = Kind.RESOURCE_EXHAUSTED


class Unavailable(SatbridgeError):
    kind = Kind.UNAVAILABLE


class DeadlineExceeded(SatbridgeError):
    kind = Kind.DEADLINE_EXCEEDED


class Internal(SatbridgeError):
    kind = Kind.INTERNAL


EXIT_CODES = {
    Kind.INVALID_ARGUMENT: 2,
    Kind.FAILED_PRECONDITION: 3,
    Kind.UNAVAILABLE: 4,
    Kind.PERMISSION_DENIED: 5,
    Kind.UNAUTHENTICATED: 5,
    Kind.NOT_FOUND: 6,
    Kind.ALREADY_EXISTS: 6,
    Kind.RESOURCE_EXHAUSTED: 7,
    Kind.ABORTED: 8,
    Kind.DEADLINE_EXCEEDED: 9,
    Kind.INTERNAL: 1,
}
"""Exit codes of both CLIs (satbridge, satctl), documented in the README."""
