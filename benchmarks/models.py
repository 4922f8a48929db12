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
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

THREADS = 2

# ---------------------------------------------------------------- PyTorch twins


def torch_models():
    import torch
    from torch import nn

    class BasicBlock(nn.Module):
        def __init__(self, inplanes, planes, stride=1, downsample=None):
            super().__init__()
            self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(planes)
            self.relu = nn.ReLU(inplace=True)
            self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.downsample = downsample

        def forward(self, x):
            identity = x if self.downsample is None else self.downsample(x)
            out = self.relu(self.bn1(self.conv1(x)))
            return self.relu(self.bn2(self.conv2(out)) + identity)

    class ResNet18(nn.Module):
        def __init__(self, num_classes=1000):
            super().__init__()
            self.inplanes = 64
            self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            self.layer1 = self._make_layer(64, 2)
            self.layer2 = self._make_layer(128, 2, 2)
            self.layer3 = self._make_layer(256, 2, 2)
            self.layer4 = self._make_layer(512, 2, 2)
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.fc = nn.Linear(512, num_classes)

        def _make_layer(self, planes, blocks, stride=1):
            down = None
            if stride != 1 or self.inplanes != planes:
                down = nn.Sequential(nn.Conv2d(self.inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))
            layers = [BasicBlock(self.inplanes, planes, stride, down)]
            self.inplanes = planes
            layers += [BasicBlock(planes, planes) for _ in range(1, blocks)]
            return nn.Sequential(*layers)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(torch.flatten(self.avgpool(x), 1))

    def make_divisible(v, divisor=8):
        new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
        return new_v + divisor if new_v < 0.9 * v else new_v

    class ConvBNAct(nn.Sequential):
        def __init__(self, i, o, k=3, s=1, groups=1, act=True):
            layers = [nn.Conv2d(i, o, k, s, (k - 1) // 2, groups=groups, bias=False), nn.BatchNorm2d(o)]
            if act:
                layers.append(nn.ReLU6(inplace=True))
            super().__init__(*layers)

    class InvertedResidual(nn.Module):
        def __init__(self, inp, oup, stride, t):
            super().__init__()
            hidden = int(round(inp * t))
            self.use_res = stride == 1 and inp == oup
            layers = [ConvBNAct(inp, hidden, 1)] if t != 1 else []
            layers += [ConvBNAct(hidden, hidden, s=stride, groups=hidden), nn.Conv2d(hidden, oup, 1, 1, 0, bias=False),
                       nn.BatchNorm2d(oup)]
            self.conv = nn.Sequential(*layers)

        def forward(self, x):
            return x + self.conv(x) if self.use_res else self.conv(x)

    class MobileNetV2(nn.Module):
        def __init__(self, num_classes=1000):
            super().__init__()
            setting = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1],
                       [6, 160, 3, 2], [6, 320, 1, 1]]
            c_in = make_divisible(32)
            last = make_divisible(1280)
            features = [ConvBNAct(3, c_in, s=2)]
            for t, c, n, s in setting:
                c_out = make_divisible(c)
                for i in range(n):
                    features.append(InvertedResidual(c_in, c_out, s if i == 0 else 1, t))
                    c_in = c_out
            features.append(ConvBNAct(c_in, last, 1))
            self.features = nn.Sequential(*features)
            self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(last, num_classes))

        def forward(self, x):
            x = nn.functional.adaptive_avg_pool2d(self.features(x), (1, 1))
            return self.classifier(torch.flatten(x, 1))

    def transformer(d_model, nhead, num_layers, dim_feedforward):
        layer = nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward, 0.1, batch_first=True)
        return nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)

    return ResNet18, MobileNetV2, transformer


def copy_weights(ember_model, torch_model):
    """Loads the frontend model's state_dict into its PyTorch twin (keys must match exactly)."""
    import torch
    state = {k: torch.from_numpy(np.array(v._data)) for k, v in ember_model.state_dict().items()}
    missing, unexpected = torch_model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise RuntimeError(f"state_dict mismatch: missing {missing[:5]}, unexpected {unexpected[:5]}")
    return torch_model.eval()


def randomize_batch_norm(model, seed=0):
    rng = np.random.default_rng(seed)
    for name, buf in model.named_buffers():
        if name.endswith("running_mean"):
            buf._data[...] = rng.uniform(-0.1, 0.1, buf._data.shape)
        elif name.endswith("running_var"):
            buf._data[...] = rng.uniform(0.5, 1.5, buf._data.shape)


# ---------------------------------------------------------------- timing


def interleaved_medians(fns: dict, budget_s=20.0, max_rounds=30, min_rounds=5, warmup=2) -> dict:
    """Median milliseconds of each callable, timed round-robin (one call of each per round) so
    that load from other processes on a shared machine hits every engine alike."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times = {name: [] for name in fns}
    start = time.perf_counter()
    rounds = 0
    while rounds < max_rounds and (rounds < min_rounds or time.perf_counter() - start < budget_s):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
        rounds += 1
    return {name: statistics.median(ts) * 1e3 for name, ts in times.items()}


def build_cases(quick):
    import frontend
    from frontend import models
    ResNet18, MobileNetV2, transformer = torch_models()
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
        ("ResNet-18", resnet, ResNet18(), (3, size, size)),
        ("MobileNetV2", mobilenet, MobileNetV2(), (3, size, size)),
        (f"Transformer {layers}x d{d} h4 seq{seq}", encoder, transformer(d, 4, layers, 4 * d), (seq, d)),
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
                    row.update(interleaved_medians({
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
    ResNet18, _, _ = torch_models()
    frontend.manual_seed(0)
    em = models.resnet18().eval()
    tm = copy_weights(em, ResNet18())
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
        print(f"  (Ember with EMBER_ISA=portable, whose kernels pack each weight at its own size: "
              f"{m['ember_portable_added'] / 2**20:.1f} MiB = {m['ember_portable_added'] / w:.2f}x weights; the "
              "AVX2/AVX-512 Winograd kernels keep 3x3 weights as 6x6 transformed tiles)")
        print(f"Ember arena {s['arena_bytes'] / 2**20:.2f} MiB = {s['arena_bytes'] / s['lower_bound_bytes']:.3f}x "
              f"lower bound, {s['arena_bytes'] / s['naive_bytes']:.3f}x naive sum")


if __name__ == "__main__":
    main()
