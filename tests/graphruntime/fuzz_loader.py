"""Fuzz loop for the runtime model loader, run in a subprocess by test_loader_fuzz.py so that a
crash fails the test instead of killing pytest.

    python fuzz_loader.py MODEL_FILE ITERATIONS SEED

Every mutated model must either load (and then run, or fail to run, with an Ember error) or be
rejected with an Ember error. Any other exception prints and exits 1; a crash exits by signal.
"""
import random
import sys

import numpy as np

from graphruntime import _C, errors


def mutate(data: bytes, rng: random.Random) -> bytes:
    buf = bytearray(data)
    kind = rng.randrange(6)
    if kind == 0:  # truncate
        return bytes(buf[: rng.randrange(len(buf))])
    if kind == 1:  # flip bits
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(len(buf))
            buf[i] ^= 1 << rng.randrange(8)
    elif kind == 2:  # overwrite bytes with interesting values
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(buf))
            buf[i] = rng.choice([0, 1, 0x7F, 0x80, 0xFF, rng.randrange(256)])
    elif kind == 3:  # overwrite a 32-bit word (offsets, lengths, indices)
        i = rng.randrange(max(1, len(buf) - 4)) & ~3
        value = rng.choice([0, 1, -1, 0x7FFFFFFF, -0x80000000, rng.randrange(-1000, 1000)])
        buf[i:i + 4] = int(value).to_bytes(4, "little", signed=True)
    elif kind == 4:  # overwrite a 64-bit word (dims, data offsets, attribute values)
        i = rng.randrange(max(1, len(buf) - 8)) & ~7
        value = rng.choice([0, -1, -2, 1 << 40, 1 << 62, rng.randrange(-100, 100)])
        buf[i:i + 8] = int(value).to_bytes(8, "little", signed=True)
    else:  # splice a chunk of the file elsewhere
        a, b = sorted(rng.randrange(len(buf)) for _ in range(2))
        j = rng.randrange(len(buf))
        chunk = buf[a:b][:64]
        buf[j:j + len(chunk)] = chunk
    return bytes(buf)


def limit_memory(max_bytes=3 << 30):
    """A mutated shape may ask for a huge tensor: the runtime must then fail cleanly, and the
    fuzzer must not take the machine's memory while it checks that."""
    try:
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (max_bytes, max_bytes))
    except (ImportError, ValueError, OSError):
        pass


def main():
    path, iterations, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    limit_memory()
    data = open(path, "rb").read()
    rng = random.Random(seed)
    counts = {"loaded": 0, "ran": 0, "rejected": 0}
    for it in range(iterations):
        mutated = mutate(data, rng)
        try:
            p = _C.Predictor.from_bytes(mutated, 1)
        except errors.EmberError:
            counts["rejected"] += 1
            continue
        except Exception as e:  # noqa: BLE001 - anything else is a bug
            print(f"iteration {it}: loader raised {type(e).__name__}: {e}", flush=True)
            return 1
        counts["loaded"] += 1
        feeds = []
        for _, dtype, shape in p.inputs:
            shape = [2 if d == -1 else d for d in shape]
            if np.prod(shape, dtype=np.float64) > 1e6:
                feeds = None
                break
            feeds.append(np.ones(shape, dtype=np.dtype(dtype if dtype != "bool" else np.bool_)))
        if feeds is None:
            continue
        try:
            p.run(feeds)
            counts["ran"] += 1
        except (errors.EmberError, MemoryError):
            pass  # MemoryError: numpy could not allocate an output under the fuzzer's limit
        except Exception as e:  # noqa: BLE001
            print(f"iteration {it}: run raised {type(e).__name__}: {e}", flush=True)
            return 1
    print(counts, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
