"""Read a server's certificate from the TLS handshake, before any gRPC call.

This is how a client learns the satellite identity it then pins: no verification here, on
purpose; the pairing proofs (or a pinned fingerprint) authenticate it afterwards.
"""

from __future__ import annotations

import asyncio
import ssl

from satbridge.errors import Unavailable


async def fetch_server_certificate(host: str, port: int, *, timeout: float = 10.0) -> bytes:
    """Return the DER certificate the server at host:port presents (ALPN h2, like gRPC)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"])
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=ctx, server_hostname="satbridge"), timeout
        )
    except (OSError, TimeoutError, ssl.SSLError) as exc:
        raise Unavailable(f"cannot reach {host}:{port} over TLS: {exc}") from None
    try:
        sslobj = writer.get_extra_info("ssl_object")
        der = sslobj.getpeercert(binary_form=True) if sslobj else None
    finally:
        # Abort, not close: a graceful TLS close waits for the peer's close_notify, which a
        # gRPC server may never send (asyncio then waits its 30 s ssl_shutdown_timeout).
        writer.transport.abort()
    if not der:
        raise Unavailable(f"{host}:{port} presented no certificate")
    return bytes(der)
