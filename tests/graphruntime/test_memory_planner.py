"""The memory planner: an independent overlap check on random lifetimes (hypothesis), known
answers, and random DAG nets run through the runtime against a numpy interpreter."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import graphruntime
from graphruntime import _C, errors
from graphruntime.netdef import NetBuilder


def align(n):
    return (n + 63) // 64 * 64


def assert_sound(sizes, firsts, lasts, offsets, arena):
    """Independent of the C++ validator: live buffers never share a byte, all fit the arena."""
    for i in range(len(sizes)):
        assert offsets[i] % 64 == 0
        if sizes[i]:
            assert offsets[i] + align(sizes[i]) <= arena
        for j in range(i + 1, len(sizes)):
            if not sizes[i] or not sizes[j]:
                continue
            live_together = firsts[i] <= lasts[j] and firsts[j] <= lasts[i]
            apart = offsets[i] + sizes[i] <= offsets[j] or offsets[j] + sizes[j] <= offsets[i]
            assert not live_together or apart, f"buffers {i} and {j} overlap"


lifetimes = st.lists(
    st.tuples(st.integers(0, 5000), st.integers(0, 30), st.integers(0, 10)), min_size=0, max_size=40)


@settings(max_examples=300, deadline=None)
@given(lifetimes)
def test_plan_is_sound_and_between_bounds(items):
    sizes = [s for s, _, _ in items]
    firsts = [f for _, f, _ in items]
    lasts = [f + d for _, f, d in items]
    offsets, arena, lower = _C.plan_memory(sizes, firsts, lasts)
    assert_sound(sizes, firsts, lasts, offsets, arena)
    _C.validate_memory_plan(sizes, firsts, lasts, offsets, arena)
    naive = sum(align(s) for s in sizes)
    assert lower <= arena <= naive
    # The lower bound is the largest total alive at one step, recomputed here.
    steps = range(max(lasts, default=-1) + 1)
    expected_lower = max((sum(align(s) for s, f, l in zip(sizes, firsts, lasts) if f <= t <= l)
                          for t in steps), default=0)
    assert lower == expected_lower


def test_known_answers():
    # Three same-size buffers in a chain: 0 and 2 never live together, so they share offset 0.
    offsets, arena, lower = _C.plan_memory([64, 64, 64], [0, 1, 2], [1, 2, 3])
    assert arena == 128 and lower == 128 and offsets[0] == offsets[2]
    # Best fit: the small buffer goes into the small hole, not the big one.
    sizes = [1024, 128, 512, 128, 64]
    firsts = [0, 0, 0, 0, 1]
    lasts = [0, 2, 0, 2, 2]
    offsets, arena, _ = _C.plan_memory(sizes, firsts, lasts)
    assert_sound(sizes, firsts, lasts, offsets, arena)
    naive_offsets, naive_arena, _ = _C.plan_memory(sizes, firsts, lasts, naive=True)
    assert naive_arena == sum(align(s) for s in sizes) and naive_offsets[1] == 1024


def test_validator_catches_overlap():
    with pytest.raises(errors.EmberError, match="overlap"):
        _C.validate_memory_plan([128, 128], [0, 1], [2, 3], [0, 64], 256)
    _C.validate_memory_plan([128, 128], [0, 3], [2, 4], [0, 0], 128)  # disjoint in time: fine


# ---------------------------------------------------------------- random DAG nets

BINARY = {"add": np.add, "mul": np.multiply, "sub": np.subtract, "maximum": np.maximum}


def random_dag(seed, num_ops):
    rng = np.random.default_rng(seed)
    b = NetBuilder(f"dag{seed}")
    shape = [int(rng.integers(1, 5)), int(rng.integers(1, 70))]
    names = [b.input("x", "float32", [-1, shape[1]]), b.input("y", "float32", [-1, shape[1]])]
    consts = {}
    for k in range(int(rng.integers(0, 3))):
        arr = rng.uniform(-1, 1, size=shape[1:]).astype(np.float32)
        consts[b.initializer(f"c{k}", arr)] = arr
        names.append(list(consts)[-1])
    program = []
    for k in range(num_ops):
        op = str(rng.choice(list(BINARY) + ["where"]))
        # Prefer recent values so that lifetimes vary.
        pick = lambda: names[int(max(0, len(names) - 1 - rng.geometric(0.3) + 1))]  # noqa: E731
        if op == "where":
            a, c = pick(), pick()
            cond = b.op("gt", [a, c])
            out = b.op("where", [cond, pick(), pick()])
            program.append(("gt", [a, c], cond))
            program.append(("where", [cond] + b.net.op[-1].input[1:], out))
        else:
            ins = [pick(), pick()]
            out = b.op(op, ins)
            program.append((op, ins, out))
        names.append(out)
    outs = sorted(set(rng.choice(names[2:] if len(names) > 2 else names, size=2)))
    for o in outs:
        b.output(o)
    return b.build(), consts, program, outs, shape


def interpret(consts, program, feed):
    env = dict(feed)
    env.update(consts)
    for op, ins, out in program:
        vals = [env[i] for i in ins]
        env[out] = np.greater(*vals) if op == "gt" else np.where(*vals) if op == "where" else BINARY[op](*vals)
    return env


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 25), st.integers(1, 6))
def test_random_dags_run_correctly_with_validated_plans(seed, num_ops, batch):
    net, consts, program, outs, shape = random_dag(seed, num_ops)
    p = graphruntime.Predictor(net, num_threads=1)
    rng = np.random.default_rng(seed + 1)
    feed = {n: rng.uniform(-1, 1, size=(batch, shape[1])).astype(np.float32) for n in ["x", "y"]}
    result = p.run(feed)  # every plan passes the C++ overlap validation before it is used
    env = interpret(consts, program, feed)
    for o in outs:
        expected = np.asarray(env[o])
        if expected.shape != result[o].shape:  # constants-only outputs keep their own shape
            expected = np.broadcast_to(expected, result[o].shape)
        np.testing.assert_array_equal(result[o], expected)
    stats = p.memory_stats()
    assert stats["lower_bound_bytes"] <= stats["arena_bytes"] <= stats["naive_bytes"]
