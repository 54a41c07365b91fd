"""Imported before grpc by satctl: gRPC's C core logs to stderr by itself (e.g.
`ssl_transport_security.cc ... Handshake failed`), next to satctl's own one-line error that
already says what happened. GRPC_VERBOSITY is read when grpc loads, so it is set here, unless
the operator set it (GRPC_VERBOSITY=debug still shows everything)."""

import os

if not os.environ.get("GRPC_VERBOSITY", "").strip():  # unset or empty: quiet
    os.environ["GRPC_VERBOSITY"] = "NONE"
