"""gRPC status codes -> SatbridgeError kinds, on the client side (for satctl's exit codes)."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

import grpc

from satbridge.errors import (
    Aborted,
    DeadlineExceeded,
    FailedPrecondition,
    Internal,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    SatbridgeError,
    Unauthenticated,
    Unavailable,
)

_KINDS: dict[grpc.StatusCode, type[SatbridgeError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.ABORTED: Aborted,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
}


T = TypeVar("T")


def from_rpc_error(exc: grpc.aio.AioRpcError, what: str) -> SatbridgeError:
    kind = _KINDS.get(exc.code(), Internal)
    return kind(f"{what}: {exc.code().name}: {exc.details()}")


async def call(rpc: Awaitable[T], what: str) -> T:
    """Await a unary call; a gRPC error becomes the SatbridgeError of its status code."""
    try:
        return await rpc
    except grpc.aio.AioRpcError as exc:
        raise from_rpc_error(exc, what) from None
