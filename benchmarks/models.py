"""Model latency and memory: Ember's Predictor vs PyTorch eager, PyTorch jit.trace+freeze and ONNX
Runtime, with identical weights, 2 threads, median latency side by side.

    python benchmarks/models.py            # the full table (ResNet-18, MobileNetV2, Transformer)
    python benchmarks/models.py --quick    # smaller inputs, a smoke run

The models are built with `frontend.models`; PyTorch twins with the same state_dict keys get the
same weights (ONNX Runtime runs the PyTorch model exported to ONNX). Ember runs the trace
(batch 1, dynamic batch axis) optimized at level 2, from a memory-mapped runtime model file.
The last section measures the peak resident memory that loading ResNet-18 and running it once
adds to a fresh process.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from frontend.torch_twins import copy_weights  # noqa: E402  (PyTorch twins of frontend.models)
from timing import interleaved_medians  # noqa: E402

THREADS = 2


def randomize_batch_norm(model, seed=0):
    rng = np.random.default_rng(seed)
    for name, buf in model.named_buffers():
        if name.endswith("running_mean"):
            buf._data[...] = rng.uniform(-0.1, 0.1, buf._data.shape)
        elif name.endswith("running_var"):
            buf._data[...] = rng.uniform(0.5, 1.5, buf._data.shape)


# ---------------------------------------------------------------- timing


def build_cases(quick):
    import frontend
    from frontend import models
    from frontend import torch_twins

    size = 64 if quick else 224
    seq, d, layers = (32, 64, 2) if quick else (128, 256, 4)
    frontend.manual_seed(0)
    resnet = models.resnet18()
    randomize_batch_norm(resnet)
    mobilenet = models.mobilenet_v2()
    randomize_batch_norm(mobilenet, 1)
    encoder = models.transformer_encoder(d_model=d, nhead=4, num_layers=layers, dim_feedforward=4 * d)
    cases = []
    for name, em, tm, shape in [
        ("ResNet-18", resnet, torch_twins.resnet18(), (3, size, size)),
        ("MobileNetV2", mobilenet, torch_twins.mobilenet_v2(), (3, size, size)),
        (f"Transformer {layers}x d{d} h4 seq{seq}", encoder, torch_twins.transformer_encoder(d, 4, layers, 4 * d), (seq, d)),
    ]:
        em.eval()
        copy_weights(em, tm)
        cases.append((name, em, tm, shape))
    return cases


def ember_model_file(ember_model, shape, directory):
    import frontend
    import graphruntime
    from frontend import jit
    from graphruntime.lower import save_model
    example = frontend.from_numpy(np.random.default_rng(0).standard_normal((1,) + shape).astype(np.float32))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = jit.trace(ember_model, example, dynamic_axes=[0], check_trace=False)
    net = graphruntime.optimize(traced.net, 2)
    path = os.path.join(directory, f"{abs(hash(id(ember_model)))}.ember")
    save_model(net, path)
    return path, traced.net.input[0].name


def onnx_file(torch_model, shape, directory):
    import torch
    path = os.path.join(directory, f"{abs(hash(id(torch_model)))}.onnx")
    example = torch.randn((1,) + shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(torch_model, (example,), path, input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}}, dynamo=False)
    return path


def run_table(quick):
    import torch
    import onnxruntime as ort
    import graphruntime
    torch.set_num_threads(THREADS)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, em, tm, shape in build_cases(quick):
            path, input_name = ember_model_file(em, shape, tmp)
            predictor = graphruntime.Predictor(path, num_threads=THREADS)
            onnx_path = onnx_file(tm, shape, tmp)
            options = ort.SessionOptions()
            options.intra_op_num_threads = THREADS
            options.inter_op_num_threads = 1
            session = ort.InferenceSession(onnx_path, options, providers=["CPUExecutionProvider"])
            for batch in (1, 8):
                x = np.random.default_rng(batch).standard_normal((batch,) + shape).astype(np.float32)
                xt = torch.from_numpy(x)
                with torch.inference_mode():
                    reference = tm(xt).numpy()
                    frozen = torch.jit.freeze(torch.jit.trace(tm, xt))
                    frozen(xt)
                got = predictor.run({input_name: x})["output"]
                err = float(np.max(np.abs(got - reference)) / (np.max(np.abs(reference)) + 1e-12))
                row = {"model": name, "batch": batch, "max_rel_err": err}
                with torch.inference_mode():
                    # settle 0.1 s: ONNX Runtime's workers spin for tens of ms after a run.
                    row.update(interleaved_medians(settle_s=0.1, budget_s=30.0, max_rounds=30, warmup=2, fns={
                        "ember": lambda: predictor.run({input_name: x}),
                        "torch": lambda: tm(xt),
                        "torch_jit": lambda: frozen(xt),
                        "ort": lambda: session.run(None, {"input": x}),
                    }))
                rows.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
    return rows


# ---------------------------------------------------------------- memory

_RSS_SCRIPT = r"""
import sys, json, numpy as np
def hwm():
    for line in open('/proc/self/status'):
        if line.startswith('VmHWM:'):
            return int(line.split()[1]) * 1024
kind, path = sys.argv[1], sys.argv[2]
x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
if kind == 'ember':
    import graphruntime
    before = hwm()
    p = graphruntime.Predictor(path, num_threads=2)
    p.run({p.input_names[0]: x})
else:
    import onnxruntime as ort
    o = ort.SessionOptions(); o.intra_op_num_threads = 2; o.inter_op_num_threads = 1
    before = hwm()
    s = ort.InferenceSession(path, o, providers=['CPUExecutionProvider'])
    s.run(None, {'input': x})
print(json.dumps({'added': hwm() - before}))
"""


def rss_added(kind, path, isa=None):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    if isa:
        env["EMBER_ISA"] = isa
    out = subprocess.run([sys.executable, "-c", _RSS_SCRIPT, kind, path], capture_output=True, text=True,
                         env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["added"]


def memory_section():
    import frontend
    from frontend import models
    from frontend.torch_twins import resnet18
    frontend.manual_seed(0)
    em = models.resnet18().eval()
    tm = copy_weights(em, resnet18())
    weight_bytes = sum(v._data.nbytes for v in em.state_dict().values())
    with tempfile.TemporaryDirectory() as tmp:
        ember_path, _ = ember_model_file(em, (3, 224, 224), tmp)
        onnx_path = onnx_file(tm, (3, 224, 224), tmp)
        import graphruntime
        predictor = graphruntime.Predictor(ember_path, num_threads=THREADS)
        stats = predictor.plan({predictor.input_names[0]: [1, 3, 224, 224]})
        return {"weight_bytes": weight_bytes, "ember_added": rss_added("ember", ember_path),
                "ember_portable_added": rss_added("ember", ember_path, isa="portable"),
                "ort_added": rss_added("ort", onnx_path), "stats": stats}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small inputs (smoke run)")
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args(argv)
    import graphruntime
    print(f"threads: {THREADS}; Ember ISA: {graphruntime.cpu_features()['max_isa']}")
    rows = run_table(args.quick)
    header = f"{'model':<30} {'batch':>5} {'Ember ms':>10} {'torch ms':>10} {'torch.jit ms':>13} {'ORT ms':>9} " \
             f"{'Ember/ORT':>10} {'Ember/torch':>12} {'max rel err':>12}"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['model']:<30} {r['batch']:>5} {r['ember']:>10.2f} {r['torch']:>10.2f} {r['torch_jit']:>13.2f} "
              f"{r['ort']:>9.2f} {r['ember'] / r['ort']:>10.2f} {r['ember'] / r['torch']:>12.2f} "
              f"{r['max_rel_err']:>12.1e}")
    if not args.skip_memory:
        m = memory_section()
        w = m["weight_bytes"]
        s = m["stats"]
        print()
        print(f"ResNet-18 weights: {w / 2**20:.1f} MiB")
        print(f"peak RSS added by load + one run: Ember {m['ember_added'] / 2**20:.1f} MiB "
              f"({m['ember_added'] / w:.2f}x weights), ONNX Runtime {m['ort_added'] / 2**20:.1f} MiB "
              f"({m['ort_added'] / w:.2f}x weights)")
        print(f"  (Ember with EMBER_ISA=portable, no Winograd: "
              f"{m['ember_portable_added'] / 2**20:.1f} MiB = {m['ember_portable_added'] / w:.2f}x weights; every "
              "kernel packs its weight at its own size, Winograd builds its 6x6 transformed tiles per run)")
        print(f"Ember arena {s['arena_bytes'] / 2**20:.2f} MiB = {s['arena_bytes'] / s['lower_bound_bytes']:.3f}x "
              f"lower bound, {s['arena_bytes'] / s['naive_bytes']:.3f}x naive sum")


if __name__ == "__main__":
    main()
