"""The Upload deserializer that slices the data out of the received bytes (issue 21) reads
every message exactly as protobuf does, and refuses what protobuf refuses."""

from __future__ import annotations

import pytest
from google.protobuf.message import DecodeError
from hypothesis import given
from hypothesis import strategies as st

from satbridge.api.v1 import update_pb2
from satbridge.errors import InvalidArgument
from satbridge.server.wire import _fast, upload_chunk


def _same(raw: bytes) -> None:
    try:
        want = update_pb2.UploadChunk.FromString(raw)
    except DecodeError:
        with pytest.raises(InvalidArgument, match=r"^chunk: "):
            upload_chunk(raw)
        return
    got = upload_chunk(raw)
    assert (got.upload_id, got.offset, bytes(got.data)) == (want.upload_id, want.offset, want.data)


@given(st.text(max_size=80), st.integers(0, 2**64 - 1), st.binary(max_size=4096))
def test_what_clients_send_is_read_without_copying_the_data(upload_id, offset, data):
    raw = update_pb2.UploadChunk(upload_id=upload_id, offset=offset, data=data).SerializeToString()
    fast = _fast(raw)  # the fast path takes it: no ValueError
    assert (fast.upload_id, fast.offset, bytes(fast.data)) == (upload_id, offset, data)
    if data:
        assert isinstance(fast.data, memoryview)
        assert fast.data.obj is raw, "a view into the received bytes"
    _same(raw)


@given(st.binary(max_size=200))
def test_any_bytes_read_as_protobuf_reads_them(raw):
    _same(raw)


@given(
    st.lists(
        st.sampled_from(
            [
                b"\x0a\x03abc",  # upload_id
                b"\x10\x05",  # offset
                b"\x1a\x02hi",  # data
                b"\x20\x01",  # an unknown field
                b"\x12\x01x",  # field 2 with the wrong wire type
                b"\x0a\x02\xff\xfe",  # upload_id that is no UTF-8
                b"\x10\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",  # a 10-byte varint
            ]
        ),
        max_size=6,
    )
)
def test_other_orders_repeats_and_unknown_fields_read_as_protobuf_reads_them(parts):
    _same(b"".join(parts))


def _long_varint(value: int, size: int) -> bytes:
    """`value` as a varint of exactly `size` bytes (padded with 0x80 continuation bytes)."""
    out = bytearray()
    for _ in range(size - 1):
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


@given(
    st.lists(
        st.tuples(st.sampled_from([(0x0A, b"\x03abc"), (0x10, b"\x05"), (0x1A, b"\x02hi")]), st.integers(1, 11)),
        max_size=3,
    ),
    st.integers(1, 11),
)
def test_tags_and_varints_padded_to_any_length_read_as_protobuf_reads_them(fields, value_size):
    """Red team 21: protobuf refuses a tag longer than 5 bytes; the fast path read
    `8a 80 80 80 80 00 03 abc` as upload_id "abc", a message protobuf calls malformed."""
    raw = b"".join(_long_varint(tag, size) + rest for (tag, rest), size in fields)
    _same(raw)
    _same(b"\x10" + _long_varint(5, value_size))
    _same(_long_varint(0x1A, 6) + b"\x01x")
