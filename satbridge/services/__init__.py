"""Use cases over ports; shared by the gRPC servicers, the CLI and the menu."""
