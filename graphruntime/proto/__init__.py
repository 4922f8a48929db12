"""Ember's protobuf net definition (`net.proto`) and its generated Python module `net_pb2`."""
from graphruntime.proto import net_pb2

__all__ = ["net_pb2"]
