"""Which port serves which RPC, who may call it, and the interceptor that enforces both.

The interceptor wraps every handler, so each call (also one to an RPC this version does not
implement) passes, in order: the port table, the trust check (management port), then the
handler, with errors mapped once and a request id on every answer.
"""

from __future__ import annotations

import enum
import hashlib
import inspect
import logging
import re
import ssl
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from google.protobuf import descriptor_pool

import satbridge.api.v1.firewall_pb2
import satbridge.api.v1.logs_pb2
import satbridge.api.v1.pairing_pb2
import satbridge.api.v1.system_pb2
import satbridge.api.v1.update_pb2
import satbridge.api.v1.xcc_pb2  # noqa: F401  (all six register their services in the pool)
from satbridge.errors import SatbridgeError
from satbridge.server.errors import STATUS
from satbridge.server.priority import PRIORITY

log = logging.getLogger(__name__)


class Port(enum.Enum):
    MANAGEMENT = "management"
    PAIRING = "pairing"


HEALTH = ("/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch")
REFLECTION = ("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",)  # what grpcurl speaks
_PAIRING_ONLY = {"/satbridge.v1.Pairing/Pair"}
_BOTH = {"/satbridge.v1.Pairing/GetIdentity", *HEALTH}


def contract_methods() -> dict[str, tuple[bool, bool]]:
    """Every RPC of the satbridge.v1 contract: full name -> (client streaming, server streaming)."""
    pool = descriptor_pool.Default()
    methods: dict[str, tuple[bool, bool]] = {}
    for service in ("Pairing", "System", "Xcc", "Update", "Logs", "Firewall"):
        for m in pool.FindServiceByName(f"satbridge.v1.{service}").methods:
            methods[f"/satbridge.v1.{service}/{m.name}"] = (m.client_streaming, m.server_streaming)
    return methods


def _table() -> dict[str, frozenset[Port]]:
    table: dict[str, frozenset[Port]] = {}
    for method in [*contract_methods(), *HEALTH, *REFLECTION]:
        if method in _PAIRING_ONLY:
            table[method] = frozenset({Port.PAIRING})
        elif method in _BOTH:
            table[method] = frozenset({Port.MANAGEMENT, Port.PAIRING})
        else:
            table[method] = frozenset({Port.MANAGEMENT})
    return table


SERVED = _table()
"""The one table: RPC full name -> the ports it is served on."""

_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def peer_fingerprint(context: grpc.aio.ServicerContext) -> str | None:
    """SHA-256 (hex) of the client certificate TLS verified, or None."""
    pems = context.auth_context().get("x509_pem_cert") or []
    if not pems:
        return None
    pem = pems[0].decode() if isinstance(pems[0], bytes) else pems[0]
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest()


def _request_id(context: grpc.aio.ServicerContext) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == "x-request-id" and isinstance(value, str) and _REQUEST_ID.fullmatch(value):
            return value
    return uuid.uuid4().hex[:16]


class Denied(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


Behavior = Callable[[Any, grpc.aio.ServicerContext], Any]


class GuardInterceptor(grpc.aio.ServerInterceptor):
    """Port table + trust check + request id + error mapping, for one listener."""

    def __init__(self, port: Port, is_trusted: Callable[[str], bool]) -> None:
        self.port = port
        self.is_trusted = is_trusted

    def check(self, method: str, context: grpc.aio.ServicerContext) -> None:
        """Authenticate first (management), so an unpaired caller learns nothing of the table."""
        if self.port is Port.MANAGEMENT:
            fp = peer_fingerprint(context)
            if fp is None or not self.is_trusted(fp):
                raise Denied(
                    grpc.StatusCode.UNAUTHENTICATED,
                    "this client certificate is not (or no longer) paired with this satellite",
                )
        ports = SERVED.get(method)
        if ports is not None and self.port not in ports:
            other = "pairing" if Port.PAIRING in ports else "management (mutual TLS)"
            raise Denied(grpc.StatusCode.PERMISSION_DENIED, f"{method} is served only on the {other} port")
        if ports is None and self.port is Port.PAIRING:
            raise Denied(grpc.StatusCode.PERMISSION_DENIED, f"{method} is not served on the pairing port")

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler | None]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        method: str = details.method
        handler = await continuation(details)
        if handler is None:
            return grpc.stream_stream_rpc_method_handler(self._unimplemented(method))
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(method, handler.unary_unary, control=True),
                handler.request_deserializer,
                handler.response_serializer,
            )
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(
                self._unary(method, handler.stream_unary), handler.request_deserializer, handler.response_serializer
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                self._streaming(method, handler.unary_stream), handler.request_deserializer, handler.response_serializer
            )
        return grpc.stream_stream_rpc_method_handler(
            self._streaming(method, handler.stream_stream), handler.request_deserializer, handler.response_serializer
        )

    async def _fail(self, context: grpc.aio.ServicerContext, method: str, rid: str, exc: BaseException) -> None:
        trailer = (("x-request-id", rid),)
        if isinstance(exc, Denied):
            log.warning("%s %s: %s (peer %s)", rid, method, exc.message, context.peer())
            await context.abort(exc.code, exc.message, trailer)
        if isinstance(exc, SatbridgeError):
            log.info("%s %s: %s", rid, method, exc)
            await context.abort(STATUS[exc.kind], str(exc), trailer)
        log.error("%s %s: unexpected error", rid, method, exc_info=exc)
        await context.abort(grpc.StatusCode.INTERNAL, f"internal error (request id {rid})", trailer)

    def _unary(self, method: str, behavior: Behavior, control: bool = False) -> Behavior:
        """`control`: a unary-unary call, which makes bulk streams yield (server/priority.py), but
        only once it passed the guard on the management port: a stranger's calls on the pairing
        port, or a refused caller's, must not slow the paired server's uploads."""
        marks = control and self.port is Port.MANAGEMENT

        async def guarded(request: Any, context: grpc.aio.ServicerContext) -> Any:
            rid = _request_id(context)
            context.set_trailing_metadata((("x-request-id", rid),))
            try:
                self.check(method, context)
                if marks:
                    PRIORITY.control()
                return await behavior(request, context)
            except grpc.aio.AbortError:
                raise
            except Exception as exc:  # noqa: BLE001 - the one place errors become statuses
                await self._fail(context, method, rid, exc)

        return guarded

    def _streaming(self, method: str, behavior: Behavior) -> Callable[..., AsyncIterator[Any]]:
        async def guarded(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            rid = _request_id(context)
            context.set_trailing_metadata((("x-request-id", rid),))
            try:
                self.check(method, context)
                result = behavior(request, context)
                if inspect.isasyncgen(result):
                    async for item in result:
                        yield item
                else:
                    await result  # a handler that streams with context.write() (e.g. Health.Watch)
            except grpc.aio.AbortError:
                raise
            except Exception as exc:  # noqa: BLE001
                await self._fail(context, method, rid, exc)

        return guarded

    def _unimplemented(self, method: str) -> Callable[..., AsyncIterator[Any]]:
        async def guarded(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            rid = _request_id(context)
            try:
                self.check(method, context)
            except Denied as exc:
                await self._fail(context, method, rid, exc)
            await context.abort(
                grpc.StatusCode.UNIMPLEMENTED,
                f"{method} is not implemented by this bridge version",
                (("x-request-id", rid),),
            )
            yield  # pragma: no cover - makes this an async generator; abort always raises

        return guarded
