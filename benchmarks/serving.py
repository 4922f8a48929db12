"""Serving benchmark: MobileNetV2 behind the gRPC daemon, driven by Triton's async client.

Measures, in one run on one machine (client and server share the CPUs, loopback only):
  * in-process `graphruntime.Predictor` latency on one [1, 3, H, W] image (the floor);
  * the daemon at concurrency 1, 4 and 16, without and with dynamic batching: p50/p99 latency
    and throughput; the p50 overhead over in-process at concurrency 1.

    python benchmarks/serving.py                      # MobileNetV2 at 224x224
    python benchmarks/serving.py --image-size 96 --requests 100

The model is the front end's MobileNetV2 traced with frontend.jit.trace when those exist,
otherwise the same architecture built with graphruntime.netdef.NetBuilder (random weights; the
numbers measure speed, not accuracy).
"""
import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np

SOURCE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, SOURCE_ROOT)

# MobileNetV2 inverted-residual settings: expansion t, channels c, repeats n, first stride s.
INVERTED_RESIDUALS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                      (6, 160, 3, 2), (6, 320, 1, 1))


def mobilenet_v2_netdef(num_classes=1000, seed=0):
    """MobileNetV2 (width 1.0, batch norm folded into the convolutions) as a NetDef."""
    from graphruntime.netdef import NetBuilder

    rng = np.random.default_rng(seed)
    b = NetBuilder("mobilenet_v2")

    def conv(x, cin, cout, kernel, stride, groups, activation, name):
        fan_in = cin // groups * kernel * kernel
        w = b.initializer(f"{name}.weight", (rng.standard_normal((cout, cin // groups, kernel, kernel))
                                             * np.sqrt(2.0 / fan_in)).astype(np.float32))
        bias = b.initializer(f"{name}.bias", np.zeros(cout, np.float32))
        pad = kernel // 2
        return b.op("conv2d", [x, w, bias], {"stride": [stride, stride], "padding": [pad, pad],
                                              "groups": groups, "activation": activation}, name=name)

    x = b.input("input", "float32", [-1, 3, -1, -1])
    h = conv(x, 3, 32, 3, 2, 1, "relu6", "features.0")
    channels, index = 32, 1
    for t, c, n, s in INVERTED_RESIDUALS:
        for i in range(n):
            stride, hidden, block = (s if i == 0 else 1), channels * t, f"features.{index}"
            y = h
            if t != 1:
                y = conv(y, channels, hidden, 1, 1, 1, "relu6", f"{block}.expand")
            y = conv(y, hidden, hidden, 3, stride, hidden, "relu6", f"{block}.depthwise")
            y = conv(y, hidden, c, 1, 1, 1, "none", f"{block}.project")
            h = b.op("add", [h, y], name=f"{block}.residual") if stride == 1 and channels == c else y
            channels, index = c, index + 1
    h = conv(h, channels, 1280, 1, 1, 1, "relu6", f"features.{index}")
    h = b.op("adaptive_avg_pool2d", [h], {"output_size": [1, 1]}, name="pool")
    h = b.op("flatten", [h], {"start_dim": 1}, name="flatten")
    w = b.initializer("classifier.weight",
                      (rng.standard_normal((num_classes, 1280)) * 0.01).astype(np.float32))
    bias = b.initializer("classifier.bias", np.zeros(num_classes, np.float32))
    b.output(b.op("linear", [h, w, bias], name="classifier"), "logits")
    return b.build()


def tiny_netdef():
    """An almost free model (relu(x * w + b) on [N, 3, H, W]): measures the serving overhead."""
    from graphruntime.netdef import NetBuilder

    b = NetBuilder("tiny")
    x = b.input("input", "float32", [-1, 3, -1, -1])
    w = b.initializer("w", np.full((1, 3, 1, 1), 0.5, np.float32))
    bias = b.initializer("b", np.full((1, 3, 1, 1), 0.1, np.float32))
    b.output(b.op("maximum", [b.op("add", [b.op("mul", [x, w]), bias]),
                              b.initializer("zero", np.zeros(1, np.float32))]), "logits")
    return b.build()


def traced_mobilenet_v2(image_size):
    """frontend.models.mobilenet_v2 traced to a NetDef (batch axis dynamic), or None if the
    front end is not available."""
    try:
        import frontend
        from frontend import jit, models
    except ImportError:
        return None
    model = models.mobilenet_v2().eval()
    example = frontend.randn(1, 3, image_size, image_size)
    return jit.trace(model, example, dynamic_axes=[0]).net


def percentiles(seconds):
    ms = np.asarray(seconds) * 1000.0
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def in_process_latency(model_path, feed, requests, warmup, max_seconds, num_threads):
    """p50/p99 of Predictor.run on `feed` in this process, and its outputs."""
    import graphruntime

    predictor = graphruntime.Predictor(model_path, num_threads=num_threads)
    for _ in range(warmup):
        predictor.run(feed)
    times = []
    deadline = time.perf_counter() + max_seconds
    while len(times) < requests and time.perf_counter() < deadline:
        started = time.perf_counter()
        predictor.run(feed)
        times.append(time.perf_counter() - started)
    return percentiles(times), predictor.run(feed)


def in_process_batch_ms_per_image(model_path, name, image, batch, num_threads, runs=3):
    """Best time per image of Predictor.run on `batch` copies of `image`: what merging requests
    can gain at most on this machine."""
    import graphruntime

    predictor = graphruntime.Predictor(model_path, num_threads=num_threads)
    feed = {name: np.repeat(image, batch, axis=0)}
    predictor.run(feed)
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        predictor.run(feed)
        best = min(best, time.perf_counter() - started)
    return best * 1000.0 / batch


async def _run_counts(client, model):
    """(inference_count, execution_count) of `model` from the server's ModelStatistics."""
    stats = (await client.get_inference_statistics(model)).model_stats[0]
    return stats.inference_count, stats.execution_count


async def drive(url, model, name, output, image, concurrency, requests, max_seconds, expected):
    """`concurrency` workers send `requests` requests in total (or stop after max_seconds).
    Returns p50 and p99 latency, throughput, the request count and the mean rows per model run."""
    import tritonclient.grpc.aio as triton_aio
    from tritonclient.grpc import InferInput

    latencies = []
    async with triton_aio.InferenceServerClient(url) as client:
        def make_input():
            tensor = InferInput(name, list(image.shape), "FP32")
            tensor.set_data_from_numpy(image)
            return [tensor]

        result = await client.infer(model, make_input())  # warm-up, and a correctness check
        np.testing.assert_allclose(result.as_numpy(output), expected, rtol=1e-3, atol=1e-3)
        for _ in range(2 * concurrency):
            await client.infer(model, make_input())
        remaining = [requests]
        deadline = time.perf_counter() + max_seconds

        async def worker():
            while remaining[0] > 0 and time.perf_counter() < deadline:
                remaining[0] -= 1
                inputs = make_input()
                started = time.perf_counter()
                await client.infer(model, inputs)
                latencies.append(time.perf_counter() - started)

        items, runs = await _run_counts(client, model)
        started = time.perf_counter()
        await asyncio.gather(*[worker() for _ in range(concurrency)])
        elapsed = time.perf_counter() - started
        items_after, runs_after = await _run_counts(client, model)
    p50, p99 = percentiles(latencies)
    mean_batch = (items_after - items) / max(1, runs_after - runs)
    return p50, p99, len(latencies) / elapsed, len(latencies), mean_batch


async def paired_overhead(url, model, name, image, model_path, pairs, num_threads):
    """Alternates one in-process Predictor run with served requests `pairs` times, so all see the
    same machine load. Served three ways: through Triton's async client (what users run); as the
    same request pre-serialized once and sent with a bare grpc.aio stub (no client-side request
    building or response parsing: what the server and transport cost); and a trivial ServerLive
    RPC (the floor of one Python gRPC round trip here, after the server sat idle during the
    in-process run; also measured back to back, without that idle time). Returns a dict of p50s
    and of medians of the per-pair differences served - in-process, in ms."""
    import graphruntime
    import grpc
    import tritonclient.grpc.aio as triton_aio
    from tritonclient.grpc import InferInput, service_pb2

    predictor = graphruntime.Predictor(model_path, num_threads=num_threads)
    feed = {name: image}
    request = service_pb2.ModelInferRequest(model_name=model)
    request.inputs.add(name=name, datatype="FP32", shape=list(image.shape))
    request.raw_input_contents.append(image.tobytes())
    serialized = request.SerializeToString()
    times = {"local": [], "triton": [], "bare": [], "trivial": []}
    identity = lambda data: data  # noqa: E731
    async with triton_aio.InferenceServerClient(url) as client, \
            grpc.aio.insecure_channel(url) as channel:
        bare = channel.unary_unary("/inference.GRPCInferenceService/ModelInfer",
                                   request_serializer=identity, response_deserializer=identity)
        trivial = channel.unary_unary("/inference.GRPCInferenceService/ServerLive",
                                      request_serializer=identity,
                                      response_deserializer=identity)

        async def triton_call():
            tensor = InferInput(name, list(image.shape), "FP32")
            tensor.set_data_from_numpy(image)
            await client.infer(model, [tensor])

        calls = {"triton": triton_call, "bare": lambda: bare(serialized),
                 "trivial": lambda: trivial(b"")}
        before = (await client.get_inference_statistics(model)).model_stats[0].inference_stats
        for i in range(pairs + 3):
            started = time.perf_counter()
            predictor.run(feed)
            elapsed = {"local": time.perf_counter() - started}
            for key, call in calls.items():
                started = time.perf_counter()
                await call()
                elapsed[key] = time.perf_counter() - started
            if i >= 3:  # warm-up rounds are not counted
                for key, seconds in elapsed.items():
                    times[key].append(seconds)
        after = (await client.get_inference_statistics(model)).model_stats[0].inference_stats
        # NOTE: read before the back-to-back calls below, which are no inference requests.
        server_means = {}
        for field in ("success", "compute_infer"):
            count = getattr(after, field).count - getattr(before, field).count
            ns = getattr(after, field).ns - getattr(before, field).ns
            server_means[field] = ns / max(1, count) / 1e6
        # The same trivial RPC back to back: no idle time before it on either side.
        back_to_back = []
        for _ in range(pairs):
            started = time.perf_counter()
            await trivial(b"")
            back_to_back.append(time.perf_counter() - started)
    result = {f"{key}_p50_ms": percentiles(values)[0] for key, values in times.items()}
    result["trivial_back_to_back_p50_ms"] = percentiles(back_to_back)[0]
    # Where a served request's time goes, as means: the model run in the server against the
    # same run in process, and the time the server's scheduler held it (model run included).
    result["local_mean_ms"] = float(np.mean(times["local"])) * 1000.0
    result["server_compute_mean_ms"] = server_means["compute_infer"]
    result["server_infer_mean_ms"] = server_means["success"]
    for key in ("triton", "bare"):
        result[f"{key}_overhead_ms"] = float(np.median(np.subtract(times[key], times["local"]))) * 1000.0
    return result


def start_daemon(repository):
    env = dict(os.environ, PYTHONPATH=SOURCE_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    process = subprocess.Popen(
        [sys.executable, "-m", "serving", "--model-repository", repository, "--port", "0",
         "--metrics-port", "-1", "--poll-interval", "0", "--log-level", "WARNING"],
        stdout=subprocess.PIPE, text=True, env=env)
    line = process.stdout.readline()
    match = re.search(r"listening on (\S+:\d+)", line)
    if not match:
        process.kill()
        raise RuntimeError(f"daemon did not start: {line!r}")
    return process, match.group(1)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=("mobilenet_v2", "tiny"), default="mobilenet_v2",
                        help="tiny: a near-free element-wise model that isolates serving overhead")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--requests", type=int, default=200, help="requests per configuration")
    parser.add_argument("--max-seconds", type=float, default=20.0,
                        help="time cap per configuration")
    parser.add_argument("--concurrency", default="1,4,16")
    parser.add_argument("--max-batch-size", type=int, default=16)
    parser.add_argument("--batch-delay-us", type=int, default=0,
                        help="dynamic batching max_queue_delay_microseconds")
    parser.add_argument("--num-threads", type=int, default=1,
                        help="threads per predictor, in the server and in process (0 = runtime "
                             "default); client and server share the machine's cores")
    parser.add_argument("--batching-rounds", type=int, default=2,
                        help="extra alternating unbatched / dynamic batching runs at the top "
                             "concurrency for the batching ratio (0 = the table's runs only)")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    concurrencies = [int(c) for c in args.concurrency.split(",")]

    import graphruntime

    if args.model == "tiny":
        net, source = tiny_netdef(), "tiny element-wise model"
    else:
        net = traced_mobilenet_v2(args.image_size)
        source = "frontend.jit.trace(frontend.models.mobilenet_v2())"
    if net is None:
        net = mobilenet_v2_netdef()
        source = "NetBuilder MobileNetV2 (random weights, BN folded)"
    input_name, output_name = net.input[0].name, net.output[0].name
    image = np.random.default_rng(0).standard_normal(
        (1, 3, args.image_size, args.image_size)).astype(np.float32)
    results = {"model": source, "image_size": args.image_size, "rows": []}
    with tempfile.TemporaryDirectory() as root:
        threads = {"num_threads": args.num_threads} if args.num_threads > 0 else {}
        configs = {
            "unbatched": {"max_batch_size": args.max_batch_size, **threads},
            "dynamic_batching": {"max_batch_size": args.max_batch_size, **threads,
                                 "dynamic_batching": {
                                     "max_queue_delay_microseconds": args.batch_delay_us}},
        }
        for model, config in configs.items():
            os.makedirs(os.path.join(root, model, "1"))
            graphruntime.save(net, os.path.join(root, model, "1", "model.pb"))
            with open(os.path.join(root, model, "config.json"), "w") as f:
                json.dump(config, f)
        model_path = os.path.join(root, "unbatched", "1", "model.pb")
        (local_p50, local_p99), expected = in_process_latency(
            model_path, {input_name: image}, min(args.requests, 100), 5, args.max_seconds,
            args.num_threads or None)
        expected = expected[output_name]
        top = max(concurrencies)
        per_image = {batch: in_process_batch_ms_per_image(model_path, input_name, image, batch,
                                                          args.num_threads or None)
                     for batch in sorted({1, 2, 4, 8, 16, min(top, args.max_batch_size)})
                     if batch <= min(top, args.max_batch_size)}
        print(f"model: {source}, input [1, 3, {args.image_size}, {args.image_size}], "
              f"{args.num_threads or 'default'} thread(s) per predictor, {os.cpu_count()} CPUs")
        print(f"in-process Predictor: p50 {local_p50:.2f} ms  p99 {local_p99:.2f} ms; best ms per "
              "image: " + ", ".join(f"batch {b}: {ms:.2f}" for b, ms in per_image.items()))
        results["in_process"] = {"p50_ms": local_p50, "p99_ms": local_p99,
                                 "ms_per_image_by_batch": per_image}
        process, url = start_daemon(root)
        try:
            header = (f"{'scheduler':<17} {'conc':>4} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8} "
                      f"{'n':>5} {'batch':>6}")
            print(header)
            print("-" * len(header))
            for model in configs:
                for concurrency in concurrencies:
                    p50, p99, throughput, count, batch = asyncio.run(drive(
                        url, model, input_name, output_name, image, concurrency, args.requests,
                        args.max_seconds, expected))
                    print(f"{model:<17} {concurrency:>4} {p50:>8.2f} {p99:>8.2f} {throughput:>8.1f} "
                          f"{count:>5} {batch:>6.1f}", flush=True)
                    results["rows"].append({"scheduler": model, "concurrency": concurrency,
                                            "p50_ms": p50, "p99_ms": p99,
                                            "throughput": throughput, "requests": count,
                                            "mean_batch": batch})
            if len(configs) == 2 and args.batching_rounds > 0:
                # Throughput at the top concurrency measured alternately, so that both schedulers
                # see the same machine load: the ratio of one pair of runs is noisy when the
                # machine is shared.
                ratios, batches = [], []
                for _ in range(args.batching_rounds):
                    unbatched, batched = [asyncio.run(drive(
                        url, config_name, input_name, output_name, image, top, args.requests,
                        args.max_seconds, expected)) for config_name in configs]
                    ratios.append(batched[2] / unbatched[2])
                    batches.append(batched[4])
                results["batching_rounds"] = {"ratios": ratios, "mean_batches": batches}
            if 1 in concurrencies:
                pairs = max(10, min(args.requests, 100))
                paired = asyncio.run(paired_overhead(
                    url, "unbatched", input_name, image, model_path, pairs, args.num_threads or None))
                print(f"interleaved rounds (n={pairs}, concurrency 1, unbatched): in-process p50 "
                      f"{paired['local_p50_ms']:.2f} ms; served p50 {paired['triton_p50_ms']:.2f} ms "
                      f"(Triton client), {paired['bare_p50_ms']:.2f} ms (pre-serialized request, "
                      f"bare gRPC stub); trivial ServerLive RPC p50 {paired['trivial_p50_ms']:.2f} ms")
                print(f"median per-round overhead over in-process: {paired['triton_overhead_ms']:.2f} "
                      f"ms (Triton client), {paired['bare_overhead_ms']:.2f} ms (bare stub); the "
                      f"trivial RPC back to back: p50 {paired['trivial_back_to_back_p50_ms']:.2f} ms")
                print(f"server side (ModelStatistics, means over those rounds): model run "
                      f"{paired['server_compute_mean_ms']:.2f} ms, scheduler to result "
                      f"{paired['server_infer_mean_ms']:.2f} ms; in-process mean "
                      f"{paired['local_mean_ms']:.2f} ms; the rest of the overhead is the RPC "
                      "(client, gRPC, transport, decoding)")
                results["paired"] = {"pairs": pairs, **paired}
        finally:
            process.terminate()
            process.wait(60)
    rows = {(r["scheduler"], r["concurrency"]): r for r in results["rows"]}
    if "paired" in results:
        print(f"p50 overhead over in-process at concurrency 1: "
              f"{results['paired']['triton_overhead_ms']:.2f} ms (Triton client; "
              f"{results['paired']['bare_overhead_ms']:.2f} ms with the bare stub; a trivial RPC "
              f"costs {results['paired']['trivial_p50_ms']:.2f} ms; target <= 0.5)")
    if ("unbatched", top) in rows and ("dynamic_batching", top) in rows:
        speedup = rows[("dynamic_batching", top)]["throughput"] / rows[("unbatched", top)]["throughput"]
        batch = rows[("dynamic_batching", top)]["mean_batch"]
        if "batching_rounds" in results:
            speedup = float(np.median(results["batching_rounds"]["ratios"] + [speedup]))
            batch = float(np.median(results["batching_rounds"]["mean_batches"] + [batch]))
            rounds = f"median of {len(results['batching_rounds']['ratios']) + 1} runs each"
        else:
            rounds = "one run each"
        # What the runtime allows: its cost per image at about that batch size against batch 1.
        nearest = min(per_image, key=lambda b: abs(b - batch))
        bound = per_image[1] / per_image[nearest]
        print(f"dynamic batching throughput at concurrency {top}: {speedup:.2f}x unbatched "
              f"({rounds}; mean batch {batch:.1f} rows; target >= 1.5); in process, batch "
              f"{nearest} costs {per_image[nearest]:.2f} ms per image against {per_image[1]:.2f} at "
              f"batch 1, so merging can give at most ~{bound:.2f}x when the model is the bottleneck")
        results["batching_speedup"] = speedup
        results["batching_runtime_bound"] = bound
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
