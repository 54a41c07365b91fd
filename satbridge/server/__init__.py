"""The grpc.aio server: listeners, interceptors, servicers."""
