"""Fast fp32 kernels side by side with numpy (OpenBLAS) and PyTorch, at 1 and 2 threads.

    python benchmarks/kernels.py            # everything
    python benchmarks/kernels.py --quick    # fewer repetitions

At one thread, prints median times of interleaved rounds (each round runs every contender once,
so a change in machine load hits all of them alike); at two, each library runs in its own
process (see main). GFLOP/s and ratios for sgemm shapes, and per-layer times for
every distinct conv layer of ResNet-18 and MobileNetV2 (batch 1, 224x224) with the geometric-mean
time ratio against torch.nn.functional.conv2d and the worst layer.
"""
import argparse
import json
import math
import os
import statistics
import subprocess
import sys

# OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE may be set on this machine to work around old OpenBLAS
# builds; they make a current numpy pick a slow kernel. Unset for this process only, before
# numpy loads, so the comparison is against OpenBLAS at its best.
for _var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
    os.environ.pop(_var, None)

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from graphruntime import _C, errors  # noqa: E402
from timing import interleaved_medians  # noqa: E402

try:
    import torch
    import torch.nn.functional as F
except Exception:  # pragma: no cover - torch is optional
    torch = None

try:
    from threadpoolctl import threadpool_info, threadpool_limits
except Exception:  # pragma: no cover
    threadpool_info = threadpool_limits = None


def has_op(name):
    """True when the op is registered in this build."""
    try:
        _C.op_schema(name)
        return True
    except Exception:
        return False


def medians_seconds(fns, min_rounds, min_seconds):
    """Median seconds of each callable of the list, timed side by side (benchmarks/timing.py)."""
    # No settle pause: at one thread no library has workers to spin, and at more each library
    # runs in its own process; a pause would only let the cores go idle, which makes the next
    # multi-threaded call pay to wake them (a 100 us GEMM took 200 us after a 2 ms sleep).
    med = interleaved_medians(dict(enumerate(fns)), min_rounds=min_rounds, max_rounds=2000,
                              budget_s=min_seconds)
    return [med[i] / 1e3 for i in range(len(fns))]


def set_threads(n):
    _C.set_num_threads(n)
    if torch is not None:
        torch.set_num_threads(n)


def numpy_limit(n):
    return threadpool_limits(n) if threadpool_limits else _NullContext()


class _NullContext:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


GEMM_SHAPES = [  # (M, N, K)
    (1024, 1024, 1024),
    (512, 512, 512),
    (256, 256, 256),
    (64, 3136, 576),
    (1, 1000, 512),
    (8, 2048, 512),
]


def sgemm_times(threads, args, engines):
    """{shape: {engine: median seconds}} for GEMM_SHAPES; engines among "ember", "ember_packed",
    "numpy", "torch"."""
    rng = np.random.default_rng(0)
    use_op = has_op("matmul")
    out = {}
    for M, N, K in GEMM_SHAPES:
        a = rng.standard_normal((M, K), dtype=np.float32)
        b = rng.standard_normal((K, N), dtype=np.float32)
        fns = {}
        if "ember" in engines:
            fns["ember"] = ((lambda: _C.run_op("matmul", [a, b], {})) if use_op
                            else (lambda: _C.sgemm(a, b)))
            packed = _C.SgemmPackedB(b)
            fns["ember_packed"] = lambda: packed.run(a)
        if "numpy" in engines:
            fns["numpy"] = lambda: a @ b
        if "torch" in engines and torch is not None:
            ta, tb = torch.from_numpy(a), torch.from_numpy(b)
            fns["torch"] = lambda: torch.matmul(ta, tb)
        with numpy_limit(threads):
            times = medians_seconds(list(fns.values()), args.rounds, args.seconds)
        out[f"{M}x{N}x{K}"] = dict(zip(fns, times))
    return out


def print_sgemm(threads, times, peak_gflops, isolated):
    print(f"\n### sgemm, {threads} thread(s): GFLOP/s (median), ratio = Ember / peer")
    print("ember matmul = the `matmul` op (B packed per call); ember packed = B pre-packed once "
          "(a constant weight, as linear / the graph runtime run it)")
    if isolated:
        print("(each library timed in its own process: with every core busy, one library's "
              "spinning worker threads would slow the next one down; median of 3 alternating "
              "rounds of processes unless --quick)")
    hdr = f"{'M x N x K':>16} | {'ember matmul':>12} | {'ember packed':>12} | {'numpy':>8} | {'torch':>8} | {'/numpy':>7} | {'/torch':>7} | {'packed/numpy':>12} | {'packed/torch':>12}"
    print(hdr)
    print("-" * len(hdr))
    nan = float("nan")
    first = None
    for shape, t in times.items():
        M, N, K = (int(v) for v in shape.split("x"))
        flops = 2.0 * M * N * K
        te, tp, tn, tt = (t.get(k, nan) for k in ("ember", "ember_packed", "numpy", "torch"))
        gf = [flops / v / 1e9 for v in (te, tp, tn, tt)]
        first = first or gf
        print(f"{shape:>16} | {gf[0]:12.1f} | {gf[1]:12.1f} | {gf[2]:8.1f} | {gf[3]:8.1f} | "
              f"{tn / te:7.2f} | {tt / te:7.2f} | {tn / tp:12.2f} | {tt / tp:12.2f}")
    peak = peak_gflops * threads
    print(f"1024^3: ember matmul {first[0]:.1f} GFLOP/s = {100 * first[0] / peak:.0f}% of the "
          f"{peak:.0f} GFLOP/s fp32 peak at {threads} thread(s) (numpy {100 * first[2] / peak:.0f}%)")


def resnet18_convs():
    """Distinct conv layers of ResNet-18 at 224x224: (name, C, O, k, stride, pad, groups, H)."""
    return [
        ("resnet18.conv1", 3, 64, 7, 2, 3, 1, 224),
        ("resnet18.layer1.conv3x3", 64, 64, 3, 1, 1, 1, 56),
        ("resnet18.layer2.0.conv1", 64, 128, 3, 2, 1, 1, 56),
        ("resnet18.layer2.0.downsample", 64, 128, 1, 2, 0, 1, 56),
        ("resnet18.layer2.conv3x3", 128, 128, 3, 1, 1, 1, 28),
        ("resnet18.layer3.0.conv1", 128, 256, 3, 2, 1, 1, 28),
        ("resnet18.layer3.0.downsample", 128, 256, 1, 2, 0, 1, 28),
        ("resnet18.layer3.conv3x3", 256, 256, 3, 1, 1, 1, 14),
        ("resnet18.layer4.0.conv1", 256, 512, 3, 2, 1, 1, 14),
        ("resnet18.layer4.0.downsample", 256, 512, 1, 2, 0, 1, 14),
        ("resnet18.layer4.conv3x3", 512, 512, 3, 1, 1, 1, 7),
    ]


def mobilenet_v2_convs():
    """Distinct conv layers of MobileNetV2 (width 1.0) at 224x224."""
    layers = [("mobilenet_v2.features.0", 3, 32, 3, 2, 1, 1, 224)]
    c_in, h = 32, 112
    settings = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                (6, 160, 3, 2), (6, 320, 1, 1)]
    index = 1
    for t, c, n, s in settings:
        for i in range(n):
            stride = s if i == 0 else 1
            hidden = c_in * t
            name = f"mobilenet_v2.features.{index}"
            if t != 1:
                layers.append((f"{name}.expand", c_in, hidden, 1, 1, 0, 1, h))
            layers.append((f"{name}.dw", hidden, hidden, 3, stride, 1, hidden, h))
            h = (h + 2 - 3) // stride + 1
            layers.append((f"{name}.project", hidden, c, 1, 1, 0, 1, h))
            c_in = c
            index += 1
    layers.append(("mobilenet_v2.features.18", 320, 1280, 1, 1, 0, 1, 7))
    seen, out = set(), []
    for layer in layers:
        key = layer[1:]
        if key not in seen:
            seen.add(key)
            out.append(layer)
    return out


def conv_times(threads, args, engines):
    """{layer name: {"loaded"/"eager"/"torch": median seconds, "kernel": name}} for every
    distinct conv layer of ResNet-18 and MobileNetV2 at batch 1."""
    rng = np.random.default_rng(1)
    out = {}
    for name, c, o, k, s, p, g, h in resnet18_convs() + mobilenet_v2_convs():
        x = rng.standard_normal((1, c, h, h), dtype=np.float32)
        w = (rng.standard_normal((o, c // g, k, k), dtype=np.float32) * 0.1).astype(np.float32)
        bias = rng.standard_normal(o, dtype=np.float32)
        attrs = {"stride": [s, s], "padding": [p, p], "groups": g}
        fns, row = {}, {}
        if "ember" in engines:
            prepared = _C.PreparedOp("conv2d", [x, w, bias], attrs, constants=[1, 2])
            fns["loaded"] = lambda: prepared.run([x, None, None])
            fns["eager"] = lambda: _C.run_op("conv2d", [x, w, bias], attrs)
            row["kernel"] = prepared.kernel_name
        if "torch" in engines and torch is not None:
            tx, tw, tb = torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(bias)
            fns["torch"] = lambda: F.conv2d(tx, tw, tb, stride=s, padding=p, groups=g)
        if fns:
            row.update(zip(fns, medians_seconds(list(fns.values()), args.rounds, args.seconds / 3)))
        out[name] = row
    return out


def print_conv(threads, times, isolated):
    print(f"\n### conv2d, batch 1, {threads} thread(s): median ms; ratio = Ember time / torch time "
          "(< 1 is faster)")
    print("loaded = kernel created once with the weight constant (pre-packed / pre-transformed, as "
          "the graph runtime loads a model); eager = _C.run_op (weight packed per call)")
    if isolated:
        print("(Ember and torch timed in separate processes; median of 3 alternating rounds unless "
              "--quick)")
    hdr = (f"{'layer':>36} | {'C->O':>9} | {'k/s/g':>6} | {'HxW':>7} | {'kernel (loaded)':>42} | "
           f"{'loaded':>7} | {'eager':>7} | {'torch':>7} | {'loaded/torch':>12} | {'eager/torch':>11}")
    print(hdr)
    print("-" * len(hdr))
    nan = float("nan")
    loaded_ratios, eager_ratios = [], []
    for name, c, o, k, s, p, g, h in resnet18_convs() + mobilenet_v2_convs():
        t = times[name]
        tl, te, tt = t.get("loaded", nan), t.get("eager", nan), t.get("torch", nan)
        loaded_ratios.append((tl / tt, name))
        eager_ratios.append((te / tt, name))
        print(f"{name:>36} | {f'{c}->{o}':>9} | {f'{k}/{s}/{g}':>6} | {f'{h}x{h}':>7} | "
              f"{t.get('kernel', '?'):>42} | {tl * 1e3:7.3f} | {te * 1e3:7.3f} | {tt * 1e3:7.3f} | "
              f"{tl / tt:12.2f} | {te / tt:11.2f}")
    if torch is not None:
        for label, ratios in (("loaded", loaded_ratios), ("eager", eager_ratios)):
            geo = math.exp(sum(math.log(r) for r, _ in ratios) / len(ratios))
            worst = max(ratios)
            print(f"{label}: geometric-mean time ratio Ember/torch over {len(ratios)} layers "
                  f"{geo:.2f}; worst layer {worst[1]} ({worst[0]:.2f}x)")


def isolated_times(threads, args, part):
    """Runs `part` ("sgemm" or "conv") in a fresh process per library, `args.process_rounds`
    times with the libraries' order rotated each round, and merges the {row: {engine: seconds}}
    results as the median over the rounds. One process per library keeps each library's
    spinning workers off the others' cores; several alternating rounds keep a slow minute of a
    shared machine from landing on one library only (single rounds swung a ratio by 2x here)."""
    engines = ["ember", "numpy", "torch"] if part == "sgemm" else ["ember", "torch"]
    runs = {}  # (row, key) -> [values over rounds]
    for r in range(args.process_rounds):
        for engine in engines[r % len(engines):] + engines[:r % len(engines)]:
            cmd = [sys.executable, os.path.abspath(__file__), "--threads", str(threads), "--only",
                   part, "--engine", engine] + (["--quick"] if args.quick else [])
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            for row, values in json.loads(out.strip().splitlines()[-1]).items():
                for key, value in values.items():
                    runs.setdefault((row, key), []).append(value)
    merged = {}
    for (row, key), values in runs.items():
        merged.setdefault(row, {})[key] = (statistics.median(values) if isinstance(values[0], float)
                                           else values[0])
    return merged


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--threads", type=int, nargs="*", default=[1, 2])
    parser.add_argument("--only", choices=["sgemm", "conv"], default=None)
    parser.add_argument("--engine", choices=["ember", "numpy", "torch"], default=None,
                        help="(internal) time one library and print its times as JSON")
    args = parser.parse_args()
    args.rounds = 5 if args.quick else 15
    args.process_rounds = 1 if args.quick else 3  # alternating processes at 2+ threads
    args.seconds = 0.3 if args.quick else 1.0

    if args.engine:  # a child of isolated_times
        set_threads(args.threads[0])
        fn = sgemm_times if args.only == "sgemm" else conv_times
        print(json.dumps(fn(args.threads[0], args, {args.engine})))
        return

    ghz = max(_C.measure_cpu_ghz() for _ in range(3))
    feats = _C.cpu_features()
    # fp32 peak per core measured on independent FMAs at the widest vector width (not assumed
    # from the model: AMD Zen 4 splits 512-bit FMAs in two halves, Zen 5 server cores do not).
    try:
        peak = max(_C.measure_fp32_peak_gflops() for _ in range(3))
        how = "measured on independent FMAs"
    except errors.UnsupportedError:  # no FMA loop for this ISA: 2 FMA pipes x 4 lanes x 2
        peak, how = 16 * ghz, "assumed 16 FLOP/cycle"
    print(f"Ember kernels benchmark: ISA {feats['max_isa']}, sgemm microkernel "
          f"{_C.SgemmPackedB(np.zeros((1, 1), np.float32)).kernel_name}; measured busy clock "
          f"{ghz:.2f} GHz; fp32 peak {peak:.0f} GFLOP/s per core = {peak / ghz:.0f} FLOP/cycle "
          f"({how})")
    if threadpool_info:
        blas = [f"{i.get('internal_api')} {i.get('version')} ({i.get('architecture')})"
                for i in threadpool_info() if i.get("user_api") == "blas"]
        print(f"numpy {np.__version__} BLAS: {', '.join(blas) or 'unknown'}")
    print(f"torch: {torch.__version__ if torch is not None else 'not installed'}; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    all_engines = {"ember", "numpy", "torch"}
    for threads in args.threads:
        # One thread: side by side in this process (interleaved rounds). More: a process per
        # library, since with every core in use the libraries' idle-spinning workers (OpenBLAS,
        # OpenMP, Ember's pool) would steal the cores of whichever library runs next.
        isolated = threads > 1
        set_threads(threads)
        if args.only in (None, "sgemm"):
            times = isolated_times(threads, args, "sgemm") if isolated else sgemm_times(threads, args, all_engines)
            print_sgemm(threads, times, peak, isolated)
        if args.only in (None, "conv") and has_op("conv2d"):
            times = isolated_times(threads, args, "conv") if isolated else conv_times(threads, args, all_engines)
            print_conv(threads, times, isolated)


if __name__ == "__main__":
    main()
