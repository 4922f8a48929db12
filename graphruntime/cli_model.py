"""`ember inspect | run | bench`: look at, run and time a model from the command line.

    ember inspect model.pb                 # ops with shapes, parameter counts and FLOPs
    ember run model.pb --input x=x.npy     # prints (or --output-dir saves) the outputs
    ember bench model.pb --threads 2       # median latency over repeated runs

`register(subparsers)` adds the three subcommands to the `ember` parser (graphruntime.cli).
Models are NetDefs (`.pb`/`.pbtxt`) or runtime model files (`.ember`); `inspect` needs a NetDef.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

from graphruntime import errors
from graphruntime.netdef import check, initializers, load, numpy_dtype, op_attrs


def _numel(shape):
    # A dynamic dim (-1) counts as 1, as the summary line says.
    return int(np.prod([1 if d < 0 else d for d in shape], dtype=np.int64)) if shape else 1


def op_flops(op, types) -> int:
    """Floating-point operations of one op (a multiply-add counts 2), from inferred shapes."""
    def shape(name):
        return types[name][1] if name else []
    out = shape(op.output[0]) if op.output else []
    attrs = op_attrs(op)
    if op.type == "conv2d":
        w = shape(op.input[1])  # [O, C/groups, kH, kW]
        return 2 * _numel(out) * _numel(w[1:])
    if op.type == "linear":
        return 2 * _numel(out) * shape(op.input[1])[-1]
    if op.type == "matmul":
        a = shape(op.input[0])
        return 2 * _numel(out) * (a[-1] if a else 1)
    if op.type in ("max_pool2d", "avg_pool2d"):
        k = attrs.get("kernel_size", [1, 1])
        return _numel(out) * _numel(k)
    return _numel(out)


def inspect_net(net, input_shapes=None) -> str:
    """A table of the net's ops: type, name, input and output shapes, parameters, FLOPs."""
    types = check(net, input_shapes)
    weights = initializers(net)
    counted: set[str] = set()
    rows = [("op", "name", "inputs", "outputs", "params", "FLOPs")]
    total_params = total_flops = 0
    for op in net.op:
        params = 0
        for i in op.input:
            if i in weights and i not in counted:
                counted.add(i)
                params += weights[i].size
        flops = op_flops(op, types)
        total_params += params
        total_flops += flops
        fmt = lambda n: f"{types[n][0]}{list(types[n][1])}" if n in types else "-"  # noqa: E731
        rows.append((op.type, op.name, ", ".join(fmt(i) for i in op.input if i not in weights),
                     ", ".join(fmt(o) for o in op.output), f"{params:,}", f"{flops:,}"))
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    ins = ", ".join(f"{vi.name}: {types[vi.name][0]}{types[vi.name][1]}" for vi in net.input)
    outs = ", ".join(f"{vi.name}: {types[vi.name][0]}{types[vi.name][1]}" for vi in net.output)
    lines.append("")
    lines.append(f"net '{net.name}': {len(net.op)} ops, inputs ({ins}), outputs ({outs})")
    lines.append(f"parameters: {total_params:,} ({sum(w.nbytes for w in weights.values()):,} bytes); "
                 f"FLOPs: {total_flops:,} (dynamic dims counted as 1)")
    return "\n".join(lines)


def _parse_feed(items, predictor):
    feed = {}
    for item in items or []:
        name, sep, path = item.partition("=")
        if not sep:
            raise errors.InvalidArgumentError(f"--input expects NAME=file.npy, got '{item}'")
        try:
            feed[name] = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise errors.InvalidArgumentError(f"input '{name}': cannot read '{path}' ({e})") from None
    return feed


def _random_feed(predictor, batch):
    rng = np.random.default_rng(0)
    feed = {}
    for name, (dtype, shape) in predictor.input_info.items():
        shape = [batch if d == -1 else d for d in shape]
        dt = numpy_dtype(dtype)
        feed[name] = (rng.standard_normal(shape).astype(dt) if dt.kind == "f"
                      else np.zeros(shape, dt))
    return feed


def cmd_inspect(args) -> int:
    """ember inspect: prints the op table of a NetDef."""
    shapes = {}
    for item in args.shape or []:
        name, sep, dims = item.partition("=")
        try:
            shapes[name] = [int(d) for d in dims.split(",")]
        except ValueError:
            sep = ""
        if not sep:
            raise errors.InvalidArgumentError(f"--shape expects NAME=D0,D1,..., got '{item}'")
    print(inspect_net(load(args.model), shapes or None))
    return 0


def cmd_run(args) -> int:
    """ember run: runs a model on .npy inputs and prints or saves its outputs."""
    from graphruntime import Predictor
    predictor = Predictor(args.model, num_threads=args.threads)
    feed = _parse_feed(args.input, predictor)
    outputs = predictor.run(feed)
    for name, value in outputs.items():
        if args.output_dir:
            os.makedirs(args.output_dir, exist_ok=True)
            path = os.path.join(args.output_dir, f"{name.replace('/', '_')}.npy")
            np.save(path, value)
            print(f"{name}: {value.dtype}{list(value.shape)} -> {path}")
        else:
            print(f"{name}: {value.dtype}{list(value.shape)}")
            print(np.array2string(value, threshold=50))
    return 0


def cmd_bench(args) -> int:
    """ember bench: median latency of a model on random (or given) inputs."""
    from graphruntime import Predictor
    predictor = Predictor(args.model, num_threads=args.threads)
    feed = _parse_feed(args.input, predictor) if args.input else _random_feed(predictor, args.batch)
    for _ in range(args.warmup):
        predictor.run(feed)
    times = []
    for _ in range(args.runs):
        start = time.perf_counter()
        predictor.run(feed)
        times.append(time.perf_counter() - start)
    if args.profile:
        totals: dict[str, list] = {}
        for _ in range(max(1, min(args.runs, 10))):
            for node, kernel, seconds in predictor.profile(feed):
                entry = totals.setdefault(kernel, [0.0, 0])
                entry[0] += seconds
                entry[1] += 1
        grand = sum(t for t, _ in totals.values()) or 1.0
        print(f"{'kernel':<44} {'calls':>6} {'share':>7}")
        for kernel, (t, calls) in sorted(totals.items(), key=lambda kv: -kv[1][0]):
            print(f"{kernel:<44} {calls:>6} {100 * t / grand:>6.1f}%")
    stats = predictor.memory_stats()
    print(f"{args.model}: median {statistics.median(times) * 1e3:.3f} ms, min {min(times) * 1e3:.3f} ms "
          f"over {args.runs} runs ({predictor.num_threads} threads)")
    print(f"memory: arena {stats['arena_bytes']:,} B, naive {stats['naive_bytes']:,} B, lower bound "
          f"{stats['lower_bound_bytes']:,} B, weights {stats['weight_bytes']:,} B")
    return 0


def _count(minimum: int):
    """An argparse type: an int >= minimum (argparse reports anything else as a usage error)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got '{text}'")
        return value
    return parse


def register(subparsers) -> None:
    """Adds `inspect`, `run` and `bench` to an argparse subparsers object."""
    p = subparsers.add_parser("inspect", help="ops, shapes, parameter counts and FLOPs of a NetDef")
    p.add_argument("model")
    p.add_argument("--shape", action="append", metavar="NAME=D0,D1,...",
                   help="concrete input shape for dynamic dims")
    p.set_defaults(func=cmd_inspect)
    p = subparsers.add_parser("run", help="run a model on .npy inputs")
    p.add_argument("model")
    p.add_argument("--input", action="append", metavar="NAME=file.npy")
    p.add_argument("--output-dir")
    p.add_argument("--threads", type=_count(1), default=None)
    p.set_defaults(func=cmd_run)
    p = subparsers.add_parser("bench", help="median latency of a model")
    p.add_argument("model")
    p.add_argument("--input", action="append", metavar="NAME=file.npy")
    p.add_argument("--batch", type=_count(1), default=1, help="size of dynamic dims for random inputs")
    p.add_argument("--threads", type=_count(1), default=None)
    p.add_argument("--runs", type=_count(1), default=50)
    p.add_argument("--warmup", type=_count(0), default=5)
    p.add_argument("--profile", action="store_true", help="time per kernel (share of the run)")
    p.set_defaults(func=cmd_bench)


COMMANDS = ("inspect", "run", "bench")


def main(argv=None) -> int:
    """Standalone entry point (`python -m graphruntime.cli_model inspect model.pb`)."""
    parser = argparse.ArgumentParser(prog="ember")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except errors.EmberError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
