"""A TLS-terminating man in the middle: its own certificate towards the client, a fresh TLS
connection to the real bridge behind it, bytes copied both ways (it can read everything)."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from pathlib import Path

from satbridge.tls.certs import KeyPair


class TlsMitm:
    def __init__(self, upstream_port: int, cert: KeyPair, workdir: Path) -> None:
        self.upstream_port = upstream_port
        (workdir / "mitm.key").write_bytes(cert.key_pem)
        (workdir / "mitm.crt").write_bytes(cert.cert_pem)
        self.server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.server_ctx.load_cert_chain(workdir / "mitm.crt", workdir / "mitm.key")
        self.server_ctx.set_alpn_protocols(["h2"])
        self.client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.client_ctx.check_hostname = False
        self.client_ctx.verify_mode = ssl.CERT_NONE
        self.client_ctx.set_alpn_protocols(["h2"])
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=self.server_ctx)
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        up_reader, up_writer = await asyncio.open_connection(
            "127.0.0.1", self.upstream_port, ssl=self.client_ctx, server_hostname="satbridge"
        )

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, ssl.SSLError, asyncio.CancelledError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        tasks = [asyncio.ensure_future(pipe(reader, up_writer)), asyncio.ensure_future(pipe(up_reader, writer))]
        self._tasks.update(tasks)
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.difference_update(tasks)
