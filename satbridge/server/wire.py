"""Upload chunks read straight from the wire, without copying their data (issue 21).

gRPC hands the servicer each 1 MiB UploadChunk as bytes on the event loop; protobuf's parse
copied the data once more, and reading `chunk.data` a third time (py-spy, three uploads at
once: a third of the loop's time, which GetStatus callers waited behind). An UploadChunk as
every client writes it is three fields in order (upload_id = 1, offset = 2, data = 3, each at
most once, defaults left out), so its data is a slice of the bytes gRPC already made. Anything
else (unknown fields, another order, a repeated field, a malformed varint, bad UTF-8) goes to
protobuf's own parser, which accepts or refuses it exactly as before.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from google.protobuf.message import DecodeError

from satbridge.api.v1 import update_pb2
from satbridge.errors import InvalidArgument


class RawChunk(NamedTuple):
    """An UploadChunk's fields; `data` is a view into the received message, not a copy."""

    upload_id: str
    offset: int
    data: memoryview | bytes


def _varint(raw: bytes, at: int) -> tuple[int, int]:
    """(value, next position); ValueError for a varint over 10 bytes, past the end, or >= 2**64."""
    value = shift = 0
    for i in range(at, min(at + 10, len(raw))):
        byte = raw[i]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            if value >> 64:
                raise ValueError("varint over 64 bits")
            return value, i + 1
        shift += 7
    raise ValueError("varint runs past the message or over 10 bytes")


def _fast(raw: bytes) -> RawChunk:
    """The three fields in order, or ValueError for any other layout."""
    view = memoryview(raw)
    upload_id, offset, data = "", 0, view[0:0]
    at, last = 0, 0
    while at < len(raw):
        start = at
        tag, at = _varint(raw, at)
        if at - start > 5:  # protobuf refuses a tag padded past 5 bytes (red team 21)
            raise ValueError("a tag over 5 bytes")
        field, kind = tag >> 3, tag & 7
        if field <= last:
            raise ValueError("fields out of order or repeated")
        last = field
        if field == 2 and kind == 0:
            offset, at = _varint(raw, at)
        elif field in (1, 3) and kind == 2:
            size, at = _varint(raw, at)
            if at + size > len(raw):
                raise ValueError("length past the message")
            if field == 1:
                upload_id = raw[at : at + size].decode("utf-8")  # UnicodeDecodeError is a ValueError
            else:
                data = view[at : at + size]
            at += size
        else:
            raise ValueError("a field UploadChunk does not have")
    return RawChunk(upload_id, offset, data)


def upload_chunk(raw: bytes) -> RawChunk:
    """The Upload RPC's request deserializer: the fast path, else protobuf's parse. Bytes
    protobuf refuses are InvalidArgument naming the chunk: the servicer reads each chunk as it
    iterates the stream, so protobuf's DecodeError reached the caller as INTERNAL (red team 21)."""
    try:
        return _fast(raw)
    except ValueError:
        pass
    try:
        message = update_pb2.UploadChunk.FromString(raw)
    except DecodeError as exc:
        raise InvalidArgument(f"not an UploadChunk protobuf refuses to parse ({exc})", field="chunk") from None
    return RawChunk(message.upload_id, message.offset, message.data)


class _Captured:
    """Stands in for the server while the generated code registers the Update service."""

    def __init__(self) -> None:
        self.handlers: dict[str, Any] = {}

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        return None

    def add_registered_method_handlers(self, service: str, handlers: dict[str, Any]) -> None:
        self.handlers = dict(handlers)


def add_update_servicer(servicer: Any, server: Any) -> None:
    """update_pb2_grpc.add_UpdateServicer_to_server, with upload_chunk() as Upload's request
    deserializer: the generated table is taken as it is (the other methods untouched)."""
    import grpc

    from satbridge.api.v1 import update_pb2_grpc

    captured = _Captured()
    update_pb2_grpc.add_UpdateServicer_to_server(servicer, captured)
    handlers = captured.handlers
    handlers["Upload"] = handlers["Upload"]._replace(request_deserializer=upload_chunk)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    server.add_registered_method_handlers(SERVICE, handlers)


SERVICE = "satbridge.v1.Update"
