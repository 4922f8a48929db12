"""Int8 mobile deployment, measured: Ember int8 vs Ember fp32 vs PyTorch int8 (FX post-training
quantization, x86 backend) vs ONNX Runtime int8 (static QDQ, uint8 activations, int8
per-channel weights), on ResNet-18 and MobileNetV2 at batch 1, 1 and 2 threads; plus `.ember` file
sizes, `ember-run` stripped size, model load time, and int8-vs-float agreement.

    python benchmarks/mobile.py                       # everything (a few minutes)
    python benchmarks/mobile.py --models mobilenet_v2 --runs 20 --agreement-inputs 64

All models have the same random weights (torchvision layouts; the Ember models come from
frontend.models and their state_dict is loaded into the PyTorch twins) and are calibrated on the
same 32 random batches. Latency is the median of --runs timed runs after warm-up.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from timing import interleaved_medians  # noqa: E402

import frontend  # noqa: E402
import mobile  # noqa: E402
from mobile.demo import find_ember_run  # noqa: E402
from frontend import jit, models  # noqa: E402
from graphruntime import Predictor  # noqa: E402
from graphruntime.lower import lower  # noqa: E402
from graphruntime.passes import optimize  # noqa: E402


def median_ms(fn, runs, warmup=3):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


# ---------------------------------------------------------------- builders

def ember_float_net(name, model):
    x = frontend.from_numpy(np.zeros((1, 3, 224, 224), np.float32))
    with frontend.no_grad():
        return jit.trace(model, x, check_trace=False).net


def torch_twin(name, model):
    """The PyTorch twin of `model` (frontend.torch_twins) holding the same weights, in eval mode."""
    from frontend import torch_twins
    factory = torch_twins.resnet18 if name == "resnet18" else torch_twins.mobilenet_v2
    return torch_twins.copy_weights(model, factory())


def realistic_batch_norm(model, name, rng):
    """Random weights with identity batch-norm statistics make activations vanish or explode
    layer by layer, which no trained net does. Re-estimate the running statistics on random
    inputs (in the PyTorch twin: fast) and copy them back, so every layer sees unit-scale data."""
    import torch
    twin = torch_twin(name, model)
    for m in twin.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # cumulative average
    twin.train()
    with torch.no_grad():
        for _ in range(4):
            twin(torch.from_numpy(rng.standard_normal((8, 3, 224, 224)).astype(np.float32)))
    own = model.state_dict()
    model.load_state_dict({k: v.numpy() for k, v in twin.state_dict().items() if k in own}, strict=False)


def float_sensitivity(fp, refs, input_db=40.0):
    """How much the float model itself amplifies small input noise: the float output's SQNR and
    top-1 agreement when Gaussian noise input_db below the input's power is added to the same
    inputs the agreement used. A model that turns 40 dB into ~15 dB cannot keep 95 % top-1
    agreement under any 8-bit quantizer (each quantized tensor adds noise at ~35-45 dB)."""
    rng = np.random.default_rng(7)
    got, agree = [], 0
    for i, ref in enumerate(refs):
        xi = np.random.default_rng(1000 + i).standard_normal((1, 3, 224, 224)).astype(np.float32)
        noise = rng.standard_normal(xi.shape).astype(np.float32) * np.sqrt(np.mean(xi ** 2) / 10 ** (input_db / 10))
        got.append(fp.run({"x": xi + noise})["output"])
        agree += int(got[-1].argmax() == ref.argmax())
    return (f"float model alone, inputs + noise at {input_db:.0f} dB SQNR: output SQNR "
            f"{mobile.output_sqnr(np.concatenate(refs), np.concatenate(got)):.1f} dB, top-1 agreement "
            f"{agree}/{len(refs)}")


def torch_int8(twin, calib):
    import torch
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx
    torch.backends.quantized.engine = "x86"
    example = (torch.from_numpy(calib[0]),)
    prepared = prepare_fx(twin, get_default_qconfig_mapping("x86"), example)
    with torch.no_grad():
        for batch in calib:
            prepared(torch.from_numpy(batch))
    return convert_fx(prepared)


def onnx_int8(twin, calib, workdir, name):
    import torch
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType, quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process
    fp32 = os.path.join(workdir, f"{name}.onnx")
    with torch.no_grad():
        torch.onnx.export(twin, (torch.from_numpy(calib[0]),), fp32, input_names=["x"], output_names=["y"],
                          opset_version=17, dynamo=False)
    pre = os.path.join(workdir, f"{name}.pre.onnx")
    quant_pre_process(fp32, pre, skip_symbolic_shape=True)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(calib)

        def get_next(self):
            batch = next(self.it, None)
            return None if batch is None else {"x": batch}

    out = os.path.join(workdir, f"{name}.int8.onnx")
    quantize_static(pre, out, Reader(), quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8, per_channel=True)
    return out


def ort_session(path, threads):
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def stripped_size(path):
    with tempfile.TemporaryDirectory() as d:
        copy = os.path.join(d, "ember-run")
        shutil.copy(path, copy)
        subprocess.run(["strip", copy], check=True)
        return os.path.getsize(copy)


# ---------------------------------------------------------------- main

def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["resnet18", "mobilenet_v2"])
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--calibration-batches", type=int, default=32)
    parser.add_argument("--agreement-inputs", type=int, default=256)
    parser.add_argument("--skip-peers", action="store_true", help="only Ember fp32 / int8")
    args = parser.parse_args(argv)

    import torch
    rng = np.random.default_rng(0)
    calib = [rng.standard_normal((1, 3, 224, 224)).astype(np.float32) for _ in range(args.calibration_batches)]
    x = rng.standard_normal((1, 3, 224, 224)).astype(np.float32)
    rows, notes = [], []
    workdir = tempfile.mkdtemp(prefix="ember-bench-")
    for name in args.models:
        frontend.manual_seed(0)
        model = getattr(models, name)().eval()
        realistic_batch_norm(model, name, np.random.default_rng(1))
        net = ember_float_net(name, model)
        t0 = time.perf_counter()
        qnet = mobile.quantize(net, [{"x": b} for b in calib], progress=False)
        quant_s = time.perf_counter() - t0
        float_path, int8_path = os.path.join(workdir, f"{name}.fp32.ember"), os.path.join(workdir, f"{name}.int8.ember")
        with open(float_path, "wb") as f:
            f.write(lower(optimize(net, 2)))
        mobile.export(qnet, int8_path)
        load_ms = median_ms(lambda: mobile.Interpreter(int8_path, num_threads=1), 10, warmup=2)
        notes.append(f"{name}: .ember fp32 {os.path.getsize(float_path) / 1e6:.2f} MB, int8 "
                     f"{os.path.getsize(int8_path) / 1e6:.2f} MB ({os.path.getsize(float_path) / os.path.getsize(int8_path):.2f}x "
                     f"smaller); int8 load {load_ms:.2f} ms; quantize (32 batches) {quant_s:.1f} s")
        # Agreement int8 vs float on random inputs.
        fp, qp = Predictor(optimize(net, 2), num_threads=2), mobile.Interpreter(int8_path, num_threads=2)
        agree, ref_all, got_all = 0, [], []
        for i in range(args.agreement_inputs):
            xi = np.random.default_rng(1000 + i).standard_normal((1, 3, 224, 224)).astype(np.float32)
            ref, got = fp.run({"x": xi})["output"], qp.run({"x": xi})["output"]
            agree += int(ref.argmax() == got.argmax())
            ref_all.append(ref)
            got_all.append(got)
        if args.agreement_inputs:
            notes.append(f"{name}: int8 vs fp32 top-1 agreement {agree}/{args.agreement_inputs} "
                         f"({100 * agree / args.agreement_inputs:.1f} %), output SQNR "
                         f"{mobile.output_sqnr(np.concatenate(ref_all), np.concatenate(got_all)):.1f} dB")
        if args.agreement_inputs:
            notes.append(f"{name}: {float_sensitivity(fp, ref_all[:16])}")
        peers = {}
        if not args.skip_peers:
            twin = torch_twin(name, model)
            with torch.no_grad():
                ref = twin(torch.from_numpy(x)).numpy()
            twin_err = np.abs(ref - fp.run({"x": x})["output"]).max()
            notes.append(f"{name}: PyTorch twin vs Ember fp32 max |diff| {twin_err:.2e}")
            tq = torch_int8(twin, calib)
            onnx_path = onnx_int8(twin, calib, workdir, name)
            peers = {"pytorch_fx_int8": tq, "onnxruntime_qdq_int8": onnx_path}
            # The peers' int8 agreement with the same float model on the same inputs: how much
            # of the loss is the (random-weight) model's, not the quantizer's.
            sess = ort_session(onnx_path, 2)
            n_peer = min(args.agreement_inputs, 64)
            for label, run_peer in [("PyTorch FX int8", lambda xi: tq(torch.from_numpy(xi)).numpy()),
                                    ("ONNX Runtime int8", lambda xi: sess.run(None, {"x": xi})[0])]:
                agree_p, got_p = 0, []
                with torch.no_grad():
                    for i in range(n_peer):
                        xi = np.random.default_rng(1000 + i).standard_normal((1, 3, 224, 224)).astype(np.float32)
                        out = run_peer(xi)
                        agree_p += int(out.argmax() == ref_all[i].argmax())
                        got_p.append(out)
                if n_peer:
                    notes.append(f"{name}: {label} vs fp32 top-1 agreement {agree_p}/{n_peer} "
                                 f"({100 * agree_p / n_peer:.1f} %), output SQNR "
                                 f"{mobile.output_sqnr(np.concatenate(ref_all[:n_peer]), np.concatenate(got_p)):.1f} dB")
        for threads in args.threads:
            fp_t = Predictor(optimize(net, 2), num_threads=threads)
            q_t = mobile.Interpreter(int8_path, num_threads=threads)
            runners = {"ember_fp32": lambda: fp_t.run({"x": x}), "ember_int8": lambda: q_t.run({"x": x})}
            if peers:
                torch.set_num_threads(threads)
                xt = torch.from_numpy(x)
                tq = peers["pytorch_fx_int8"]
                sess = ort_session(peers["onnxruntime_qdq_int8"], threads)

                def torch_run():
                    with torch.no_grad():
                        tq(xt)
                runners["pytorch_fx_int8"] = torch_run
                runners["onnxruntime_int8"] = lambda: sess.run(None, {"x": x})
            row = {"model": name, "threads": threads}
            # settle 0.1 s: after a run ONNX Runtime's worker keeps spinning for more than 20 ms
            # (Ember's 2-thread MobileNetV2 measured 10 ms right after an ORT run, 6 ms alone).
            row.update(interleaved_medians(runners, min_rounds=args.runs, max_rounds=args.runs, warmup=3,
                                           settle_s=0.1, cpu=True))
            rows.append(row)
            print({k: (round(v, 2) if isinstance(v, float) else v) for k, v in row.items()}, flush=True)
    binary = find_ember_run()
    if binary:
        # EMBER_MOBILE (the default build): inference-only kernels, -Os.
        notes.append(f"ember-run: {os.path.getsize(binary) / 1e6:.2f} MB, stripped {stripped_size(binary) / 1e6:.2f} MB")
        mb = os.path.join(workdir, "mobilenet_v2.int8.ember")
        if os.path.exists(mb):
            out = subprocess.run([binary, mb, "--bench", "20", "--threads", "1"], capture_output=True, text=True)
            notes.append("ember-run mobilenet_v2 int8: " + out.stdout.strip().splitlines()[-1])

    cols = ["ember_fp32", "ember_int8", "pytorch_fx_int8", "onnxruntime_int8"]
    for suffix, title in [("", "median wall-clock latency (ms)"), ("_cpu", "median CPU time per run (ms; with 1 thread: the latency on an idle core)")]:
        print(f"\n{title}, batch 1, 224x224")
        print(f"{'model':<14}{'thr':>4}" + "".join(f"{c:>18}" for c in cols) + f"{'fp32/int8':>11}{'int8/torch':>11}{'int8/ort':>10}")
        for r in rows:
            v = {c: r[c + suffix] for c in cols if c + suffix in r}
            cells = "".join(f"{v[c]:>18.2f}" if c in v else f"{'-':>18}" for c in cols)
            ratios = f"{v['ember_fp32'] / v['ember_int8']:>11.2f}"
            ratios += f"{v['ember_int8'] / v['pytorch_fx_int8']:>11.2f}" if "pytorch_fx_int8" in v else f"{'-':>11}"
            ratios += f"{v['ember_int8'] / v['onnxruntime_int8']:>10.2f}" if "onnxruntime_int8" in v else f"{'-':>10}"
            print(f"{r['model']:<14}{r['threads']:>4}{cells}{ratios}")
    print()
    for n in notes:
        print(n)
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
