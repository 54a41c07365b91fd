"""Red team 21: Upload chunk bytes protobuf refuses, through real gRPC over TLS, are
INVALID_ARGUMENT naming the chunk (they were INTERNAL), and the server keeps answering."""

from __future__ import annotations

import grpc

from satbridge.client.session import connect
from tests.conftest import pair_with

MALFORMED = [
    b"\x1a\xff\xff\xff\xff\x0f",  # length past the end
    b"\x10" + b"\xff" * 11,  # varint over 10 bytes
    b"\x8a\x80\x80\x80\x80\x00\x03abc",  # a tag over 5 bytes
    b"\x0a\x02\xff\xfe",  # upload_id not UTF-8
    b"\x00\x01",  # field 0
    b"\x0f",  # end group without start
]


async def test_malformed_upload_chunks_are_invalid_argument_never_internal(running, inventory):
    sat = await pair_with(running, inventory)
    codes = {}
    async with connect(sat, inventory) as client:
        call = client.channel.stream_unary(
            "/satbridge.v1.Update/Upload", request_serializer=bytes, response_deserializer=bytes
        )
        for raw in MALFORMED:
            try:
                await call(iter([raw]), timeout=10)
                codes[raw] = "OK"
            except grpc.aio.AioRpcError as exc:
                codes[raw] = f"{exc.code().name}: {exc.details()}"
        assert (await client.status()).bridge_version
    assert all(code.startswith("INVALID_ARGUMENT: chunk: ") for code in codes.values()), codes
