"""Structured fuzzing of NetDefs (wrong input names, attribute types and values, dims,
dtypes, op types, op order, extra outputs), run in a subprocess by test_loader_fuzz.py.

    python fuzz_netdef.py ITERATIONS SEED

Every mutated net must load and run, or fail with an Ember error
anything else exits 1.
"""
import random
import sys
import traceback
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import graphruntime  # noqa: E402
from graphruntime import errors  # noqa: E402
from graphruntime.proto import net_pb2  # noqa: E402
from fuzz_loader import limit_memory  # noqa: E402
from test_loader_fuzz import MODELS  # noqa: E402


def mutate_net(net, rng):
    """A copy of `net` with one to three structural corruptions."""
    net2 = net_pb2.NetDef()
    net2.CopyFrom(net)
    for _ in range(rng.randint(1, 3)):
        k = rng.randrange(9)
        if k == 0 and net2.op:
            op = rng.choice(net2.op)
            names = ["", "nope"] + [o for x in net2.op for o in x.output] + [t.name for t in net2.initializer]
            if op.input:
                op.input[rng.randrange(len(op.input))] = rng.choice(names)
        elif k == 1 and net2.op:
            op = rng.choice(net2.op)
            if op.arg:
                a = rng.choice(op.arg)
                a.type = rng.randrange(0, 11)
                a.i = rng.choice([0, -1, 1 << 40, -(1 << 62), 3])
                del a.ints[:]
                a.ints.extend(rng.choice([[], [0, 0], [-5, 2], [1 << 40, 1], [1, 1, 1, 1, 1]]))
                a.f = rng.choice([0.0, float('nan'), float('inf'), -1.0])
        elif k == 2 and net2.initializer:
            t = rng.choice(net2.initializer)
            t.dims[:] = rng.choice([[], [0], [-1], [1 << 40], [3, 3], list(t.dims)[::-1]])
        elif k == 3 and net2.initializer:
            t = rng.choice(net2.initializer)
            t.data_type = rng.randrange(0, 10)
        elif k == 4 and net2.input:
            vi = rng.choice(net2.input)
            vi.dims[:] = rng.choice([[], [-1], [-2], [1 << 40, 2], [2, 2, 2, 2, 2]])
        elif k == 5 and net2.input:
            vi = rng.choice(net2.input)
            vi.data_type = rng.randrange(0, 10)
        elif k == 6 and net2.op:
            op = rng.choice(net2.op)
            op.type = rng.choice(['add', 'conv2d', 'split', 'concat', 'reshape', 'where', 'bogus', 'embedding', 'expand'])
        elif k == 7 and net2.op:
            i = rng.randrange(len(net2.op))
            j = rng.randrange(len(net2.op))
            a, b = net_pb2.OperatorDef(), net_pb2.OperatorDef()
            a.CopyFrom(net2.op[i])
            b.CopyFrom(net2.op[j])
            net2.op[i].CopyFrom(b)
            net2.op[j].CopyFrom(a)
        elif k == 8 and net2.op:
            op = rng.choice(net2.op)
            op.output.append('extra')
    return net2


def main():
    iterations, seed = int(sys.argv[1]), int(sys.argv[2])
    limit_memory()
    for name, make, _ in MODELS:
        net = make()
        rng = random.Random(seed)
        counts = {}
        for it in range(iterations):
            mutated = mutate_net(net, rng)
            try:
                p = graphruntime.Predictor(mutated, num_threads=1)
                feeds = {n: np.ones([2 if d == -1 else d for d in s], dtype=np.dtype(dt if dt != "bool" else np.bool_))
                         for n, (dt, s) in p.input_info.items()}
                if all(np.prod(f.shape) < 1e6 for f in feeds.values()):
                    p.run(feeds)
                counts["ok"] = counts.get("ok", 0) + 1
            except (errors.EmberError, MemoryError) as e:
                counts[type(e).__name__] = counts.get(type(e).__name__, 0) + 1
            except Exception as e:  # noqa: BLE001 - anything else is a bug
                print(f"{name} iteration {it}: {type(e).__name__}: {e}", flush=True)
                traceback.print_exc()
                return 1
        print(name, counts, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
