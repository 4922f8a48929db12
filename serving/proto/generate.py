"""Regenerates the Python protobuf and gRPC modules of `serving/proto` from its .proto files.

    python -m serving.proto.generate            # rewrite *_pb2.py / *_pb2_grpc.py in place
    python -m serving.proto.generate --out DIR  # write them under DIR/serving/proto instead

The one command that produces the generated code (grpc_tools.protoc); the test suite regenerates
into a temporary directory and fails if the checked-in files differ.
"""
import argparse
import os
import sys

PROTO_DIR = os.path.dirname(os.path.abspath(__file__))
SOURCE_ROOT = os.path.dirname(os.path.dirname(PROTO_DIR))
PROTO_FILES = ("serving/proto/model_config.proto", "serving/proto/grpc_service.proto")


def generate(out_root=SOURCE_ROOT):
    """Runs protoc on PROTO_FILES, writing the modules under `out_root`/serving/proto."""
    from grpc_tools import protoc

    os.makedirs(os.path.join(out_root, "serving", "proto"), exist_ok=True)
    args = ["grpc_tools.protoc", f"-I{SOURCE_ROOT}", f"--python_out={out_root}",
            f"--grpc_python_out={out_root}", *PROTO_FILES]
    status = protoc.main(args)
    if status != 0:
        raise RuntimeError(f"protoc failed with status {status} on {', '.join(PROTO_FILES)}")
    return [os.path.join(out_root, "serving", "proto", name) for name in generated_names()]


def generated_names():
    """File names (in serving/proto) that `generate` writes."""
    names = []
    for proto in PROTO_FILES:
        stem = os.path.splitext(os.path.basename(proto))[0]
        names.append(f"{stem}_pb2.py")
        names.append(f"{stem}_pb2_grpc.py")
    return names


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=SOURCE_ROOT, help="root directory to write under")
    args = parser.parse_args(argv)
    for path in generate(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
