"""Streaming compressors for log downloads (owns `zstandard`)."""

from __future__ import annotations

import zlib
from typing import Protocol


class Compressor(Protocol):
    def compress(self, data: bytes) -> bytes: ...

    def flush(self) -> bytes: ...


class _Identity:
    def compress(self, data: bytes) -> bytes:
        return data

    def flush(self) -> bytes:
        return b""


class _Zstd:
    def __init__(self) -> None:
        import zstandard

        self._obj = zstandard.ZstdCompressor(level=3).compressobj()

    def compress(self, data: bytes) -> bytes:
        return bytes(self._obj.compress(data))

    def flush(self) -> bytes:
        return bytes(self._obj.flush())


def compressor(kind: str) -> Compressor:
    """ "" (none), "gzip" or "zstd"."""
    if kind == "gzip":
        return zlib.compressobj(6, zlib.DEFLATED, 31)
    if kind == "zstd":
        return _Zstd()
    return _Identity()


class _ZstdReader:
    def __init__(self) -> None:
        import zstandard

        self._obj = zstandard.ZstdDecompressor().decompressobj()

    def decompress(self, data: bytes) -> bytes:
        return bytes(self._obj.decompress(data))


class Decompressor(Protocol):
    def decompress(self, data: bytes) -> bytes: ...


class _IdentityReader:
    def decompress(self, data: bytes) -> bytes:
        return data


def decompressor(kind: str) -> Decompressor:
    if kind == "gzip":
        return zlib.decompressobj(31)
    if kind == "zstd":
        return _ZstdReader()
    return _IdentityReader()
