"""A connection's identity is its socket inode (red team finding 6): a new connection from the
same source port is another connection."""

from __future__ import annotations

import ipaddress
import socket

from satbridge.system import sockets


def test_peer_strings():
    assert sockets.peer_key("ipv4:192.0.2.7:4711") == (ipaddress.ip_address("192.0.2.7"), 4711)
    assert sockets.peer_key("ipv6:%5B2001:db8::1%5D:443") == (ipaddress.ip_address("2001:db8::1"), 443)
    assert sockets.peer_key("ipv6:[::ffff:192.0.2.7]:1") == (ipaddress.ip_address("192.0.2.7"), 1)
    assert sockets.peer_key("unix:/run/x") is None


def test_a_reconnection_from_the_same_source_port_is_another_connection():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        client = socket.socket()
        client.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        client.bind(("127.0.0.1", 0))
        source = client.getsockname()[1]
        client.connect(("127.0.0.1", port))
        first, _ = server.accept()
        key = (ipaddress.ip_address("127.0.0.1"), source)
        inode = sockets.connections(port)[key]
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        client.close()
        first.close()
        again = socket.socket()
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        again.bind(("127.0.0.1", source))
        again.connect(("127.0.0.1", port))
        second, _ = server.accept()
        try:
            assert sockets.connections(port)[key] != inode
        finally:
            again.close()
            second.close()
