"""The one timing helper of the benchmarks: engines measured side by side in one process.

Engines are timed round-robin, each round starting with the next engine, so load from other
processes on a shared machine hits them alike and none always runs right after the same
neighbour. Each turn can first wait `settle_s` and make one untimed call: the engines share the
process, and the previous engine's worker threads keep spinning for a while after its call
(OpenMP in PyTorch, ONNX Runtime's and OpenBLAS's pools, Ember's pool), stealing the cores of
whichever engine is timed next -- which matters most at 2 threads on a 2-core machine.
"""
import statistics
import time


def interleaved_medians(fns: dict, *, min_rounds=5, max_rounds=1000, budget_s=10.0, warmup=1,
                        settle_s=0.0, cpu=False) -> dict:
    """Median milliseconds of each callable in `fns` (name -> callable); with `cpu`, also the
    median process CPU milliseconds under '<name>_cpu'. Runs at least `min_rounds` rounds and
    then until `budget_s` seconds have passed, at most `max_rounds`."""
    names = list(fns)
    for name in names:
        for _ in range(warmup):
            fns[name]()
    wall = {name: [] for name in names}
    cpu_times = {name: [] for name in names}
    start = time.perf_counter()
    rounds = 0
    while rounds < max_rounds and (rounds < min_rounds or time.perf_counter() - start < budget_s):
        for j in range(len(names)):
            name = names[(rounds + j) % len(names)]
            if settle_s:
                time.sleep(settle_s)
                fns[name]()
            c0, t0 = time.process_time(), time.perf_counter()
            fns[name]()
            wall[name].append((time.perf_counter() - t0) * 1e3)
            cpu_times[name].append((time.process_time() - c0) * 1e3)
        rounds += 1
    out = {name: statistics.median(v) for name, v in wall.items()}
    if cpu:
        out.update({name + "_cpu": statistics.median(v) for name, v in cpu_times.items()})
    return out
