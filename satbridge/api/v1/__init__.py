"""Generated gRPC/protobuf code for satbridge.v1 (see build/gen_proto.py)."""
