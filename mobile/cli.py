"""`ember quantize` and `ember export`.

    ember quantize model.pb --calibration calib.npz -o model.int8.pb --method percentile --report
    ember export model.int8.pb -o model.ember

Calibration data is an .npz file whose arrays are named after the model inputs, with the batch
along dim 0 (split into --batch-size feeds); without it, --random-batches N makes random normal
feeds of the inputs' declared shapes (dynamic dims = 1).
"""
from __future__ import annotations

import argparse
import os

import numpy as np


def _calibration_feeds(net, args):
    from graphruntime.netdef import check, numpy_dtype
    types = check(net)
    if args.calibration:
        data = np.load(args.calibration)
        names = [vi.name for vi in net.input]
        missing = [n for n in names if n not in data.files]
        if missing:
            from graphruntime import errors
            raise errors.InvalidArgumentError(f"calibration file '{args.calibration}' has no array for input(s) {missing}")
        total = data[names[0]].shape[0]
        return [{n: np.ascontiguousarray(data[n][i:i + args.batch_size]) for n in names}
                for i in range(0, total, args.batch_size)]
    rng = np.random.default_rng(0)
    feeds = []
    for _ in range(args.random_batches):
        feed = {}
        for vi in net.input:
            dtype, shape = types[vi.name]
            shape = [args.batch_size if i == 0 and d == -1 else (1 if d == -1 else d) for i, d in enumerate(shape)]
            feed[vi.name] = rng.standard_normal(shape).astype(numpy_dtype(dtype))
        feeds.append(feed)
    return feeds


def _quantize(args) -> int:
    import mobile
    from graphruntime.netdef import load, save
    net = load(args.model)
    feeds = _calibration_feeds(net, args)
    qnet = mobile.quantize(net, feeds, per_channel=not args.per_tensor, method=args.method,
                           bias_correction=not args.no_bias_correction)
    save(qnet, args.output)
    print(f"wrote {args.output} ({os.path.getsize(args.output)} bytes)")
    if args.report:
        print(mobile.format_report(mobile.sqnr_report(net, qnet, feeds[: args.report_batches])))
    return 0


def _export(args) -> int:
    import mobile
    from graphruntime.netdef import load
    size = mobile.export(load(args.model), args.output)
    print(f"wrote {args.output} ({size} bytes)")
    return 0


def register(subparsers) -> None:
    """Adds `quantize` and `export` to the `ember` parser."""
    q = subparsers.add_parser("quantize", help="Post-training int8 quantization of a NetDef.",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    q.add_argument("model", help="float NetDef (.pb / .pbtxt)")
    q.add_argument("-o", "--output", required=True, help="quantized NetDef to write")
    q.add_argument("--calibration", help=".npz with one array per model input (batch along dim 0)")
    q.add_argument("--batch-size", type=int, default=1)
    q.add_argument("--random-batches", type=int, default=32, help="random feeds when no --calibration")
    q.add_argument("--method", choices=["minmax", "percentile", "entropy"], default="minmax")
    q.add_argument("--per-tensor", action="store_true", help="one weight scale per tensor")
    q.add_argument("--no-bias-correction", action="store_true",
                   help="keep the float biases (no correction for the rounded weights' mean shift)")
    q.add_argument("--report", action="store_true", help="print the per-layer SQNR report")
    q.add_argument("--report-batches", type=int, default=4)
    q.set_defaults(func=_quantize)
    e = subparsers.add_parser("export", help="Write a NetDef as an .ember runtime model.")
    e.add_argument("model", help="NetDef (.pb / .pbtxt), e.g. from `ember quantize`")
    e.add_argument("-o", "--output", required=True, help=".ember file to write")
    e.set_defaults(func=_export)
