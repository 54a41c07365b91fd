"""Validation of names that travel in certificates and files."""

from __future__ import annotations

import re

from satbridge.errors import InvalidArgument

TLS_SERVER_NAME = "satbridge"
"""The DNS name in the identity's SAN; clients set it as grpc.ssl_target_name_override."""

_PEER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._@:-]{0,63}")


def check_peer_name(name: str, *, field: str) -> str:
    """A server's name as it goes into its certificate's CN: 1..64 plain printable chars."""
    if not _PEER_NAME.fullmatch(name):
        raise InvalidArgument(
            "must be 1..64 characters of letters, digits, space and ._@:- starting with a letter or digit",
            field=field,
        )
    return name
