"""The protocol files: the schema agrees on the wire with Triton's
own descriptors (shipped inside tritonclient) for every message and RPC Ember declares. (That the
generated code is fresh is checked with every other generated file in tests/graphruntime/test_netdef.py.)

The serving modules are compiled to a FileDescriptorSet here rather than imported: they share
the protobuf package `inference` with tritonclient, and one process can hold only one of them.
"""
import os
import tempfile

import pytest
from google.protobuf import descriptor_pb2

from serving.proto import generate


def ember_descriptors():
    from grpc_tools import protoc

    with tempfile.TemporaryDirectory() as out:
        path = os.path.join(out, "set.pb")
        status = protoc.main(["protoc", f"-I{generate.SOURCE_ROOT}", f"--descriptor_set_out={path}",
                              *generate.PROTO_FILES])
        assert status == 0
        with open(path, "rb") as f:
            return descriptor_pb2.FileDescriptorSet.FromString(f.read())


def messages_of(files):
    """Full message/enum name -> descriptor proto, nested types included."""
    found = {}

    def walk(prefix, message):
        name = f"{prefix}.{message.name}"
        found[name] = message
        for nested in message.nested_type:
            walk(name, nested)
        for enum in message.enum_type:
            found[f"{name}.{enum.name}"] = enum

    for file in files:
        for message in file.message_type:
            walk("." + file.package, message)
        for enum in file.enum_type:
            found[f".{file.package}.{enum.name}"] = enum
    return found


@pytest.fixture(scope="module")
def triton_and_ember():
    triton_grpc = pytest.importorskip("tritonclient.grpc")
    triton_files = []
    for module in (triton_grpc.model_config_pb2, triton_grpc.service_pb2):
        proto = descriptor_pb2.FileDescriptorProto()
        module.DESCRIPTOR.CopyToProto(proto)
        triton_files.append(proto)
    return triton_files, list(ember_descriptors().file)


def test_every_field_matches_triton_on_the_wire(triton_and_ember):
    triton_files, ember_files = triton_and_ember
    triton, ember = messages_of(triton_files), messages_of(ember_files)
    assert len(ember) > 40
    for name, ours in ember.items():
        assert name in triton, f"{name} is not a Triton message/enum"
        theirs = triton[name]
        if isinstance(ours, descriptor_pb2.EnumDescriptorProto):
            assert {(v.name, v.number) for v in ours.value} <= \
                {(v.name, v.number) for v in theirs.value}, name
            continue
        their_fields = {f.name: f for f in theirs.field}
        for field in ours.field:
            assert field.name in their_fields, f"{name}.{field.name} is not in Triton's schema"
            expected = their_fields[field.name]
            assert (field.number, field.type, field.label, field.type_name) == \
                (expected.number, expected.type, expected.label, expected.type_name), \
                f"{name}.{field.name} differs from Triton's"
        if ours.options.map_entry:
            assert theirs.options.map_entry, name


def test_service_rpcs_match_triton(triton_and_ember):
    triton_files, ember_files = triton_and_ember
    (theirs,) = [s for f in triton_files for s in f.service]
    (ours,) = [s for f in ember_files for s in f.service]
    assert ours.name == theirs.name == "GRPCInferenceService"
    their_methods = {m.name: m for m in theirs.method}
    required = {"ServerLive", "ServerReady", "ModelReady", "ServerMetadata", "ModelMetadata",
                "ModelInfer", "ModelStreamInfer", "ModelConfig", "ModelStatistics",
                "RepositoryIndex", "RepositoryModelLoad", "RepositoryModelUnload"}
    assert {m.name for m in ours.method} == required
    for method in ours.method:
        expected = their_methods[method.name]
        assert (method.input_type, method.output_type, method.client_streaming,
                method.server_streaming) == (expected.input_type, expected.output_type,
                                             expected.client_streaming, expected.server_streaming)
