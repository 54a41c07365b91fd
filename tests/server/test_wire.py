"""The Upload deserializer that slices the data out of the received bytes (issue 21) reads
every message exactly as protobuf does, and refuses what protobuf refuses."""

from __future__ import annotations

import pytest
from google.protobuf.message import DecodeError
from hypothesis import given
from hypothesis import strategies as st

from satbridge.api.v1 import update_pb2
from satbridge.server.wire import _fast, upload_chunk


def _same(raw: bytes) -> None:
    try:
        want = update_pb2.UploadChunk.FromString(raw)
    except DecodeError:
        with pytest.raises(DecodeError):
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
