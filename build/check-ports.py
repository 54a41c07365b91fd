"""Before `make run` opens a pairing window: are the ports free? A window opened for a bridge that
then cannot listen would print a code and a satctl line that reach another bridge, or nothing.

    python build/check-ports.py HOST:PORT...      exit 0, or 1 with a one-line message
"""

from __future__ import annotations

import socket
import sys

from satbridge.core.addresses import parse_listen
from satbridge.errors import SatbridgeError


def main(argv: list[str]) -> int:
    for text in argv:
        try:
            listen = parse_listen(text, field=text)
        except SatbridgeError as exc:
            print(f"make run: {exc}", file=sys.stderr)
            return 1
        if not listen.port:
            continue  # the kernel picks a free one
        family = socket.AF_INET6 if ":" in listen.host or not listen.host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((listen.host or "::", listen.port))
            except OSError as exc:
                print(
                    f"make run: cannot listen on {listen}: {exc.strerror} (is another bridge running?)", file=sys.stderr
                )
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
