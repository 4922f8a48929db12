"""Bad calls raise the right graphruntime.errors class, with the op name in the message, and
never crash; run_op reads numpy inputs in place and handles non-contiguous ones."""
import tracemalloc

import numpy as np
import pytest

from graphruntime import _C, errors
from oracle import assert_close, run

# Ops whose failure modes this file exercises on purpose (the value tests live elsewhere).
TESTED_OPS = {"add", "relu", "reshape", "flatten", "exp", "embedding", "gather", "transpose", "sum", "concat"}

F32 = np.zeros((2, 3), np.float32)


def test_unknown_op_is_unsupported():
    for call in (
        lambda: _C.run_op("no_such_op", [F32]),
        lambda: _C.op_schema("no_such_op"),
        lambda: _C.infer_types("no_such_op", [("float32", [2])]),
        lambda: _C.resolve_attrs("no_such_op", {}),
    ):
        with pytest.raises(errors.UnsupportedError, match="unknown op 'no_such_op'"):
            call()
    assert issubclass(errors.UnsupportedError, errors.EmberError)


def test_missing_required_attribute():
    with pytest.raises(errors.InvalidArgumentError, match=r"^reshape: missing required attribute 'shape' \(int\[\]\)"):
        run("reshape", [F32])


@pytest.mark.parametrize(
    "op,attrs,message",
    [
        ("flatten", {"start_dim": "a"}, "attribute 'start_dim' must be int, got string"),
        ("flatten", {"start_dim": 1.5}, "attribute 'start_dim' must be int, got float"),
        ("flatten", {"start_dim": [1]}, r"attribute 'start_dim' must be int, got int\[\] \[1\]"),
        ("reshape", {"shape": 6}, r"attribute 'shape' must be int\[\], got int 6"),
        ("reshape", {"shape": [2.5, 2]}, r"attribute 'shape' must be int\[\], got float\[\] \[2.5, 2\]"),
        ("sum", {"keepdim": "yes"}, "attribute 'keepdim' must be bool, got string"),
        ("sum", {"keepdim": 2}, "attribute 'keepdim' must be bool, got int"),
        ("leaky_relu", {"negative_slope": "x"}, "attribute 'negative_slope' must be float, got string"),
        ("gelu", {"approximate": 1}, "attribute 'approximate' must be string, got int"),
    ],
)
def test_ill_typed_attribute(op, attrs, message):
    with pytest.raises(errors.InvalidArgumentError, match=f"^{op}: {message}"):
        run(op, [F32], attrs)


def test_attribute_value_python_cannot_express():
    with pytest.raises(errors.InvalidArgumentError, match="^relu: attribute 'foo' has an unsupported value"):
        run("relu", [F32], {"foo": object()})
    with pytest.raises(errors.InvalidArgumentError, match="^reshape: attribute 'shape' has an unsupported value"):
        run("reshape", [F32], {"shape": [1, "a"]})


def test_lossless_attribute_conversions_are_accepted():
    (y,) = run("leaky_relu", [np.array([-2.0], np.float32)], {"negative_slope": 1})  # int -> float
    assert y[0] == -2.0
    (y,) = run("sum", [np.ones((2, 3), np.float32)], {"dim": [1], "keepdim": 1})  # 0/1 -> bool
    assert y.shape == (2, 1)


def test_unknown_attribute():
    with pytest.raises(errors.InvalidArgumentError, match=r"^relu: unknown attribute 'foo' \(known: none\)"):
        run("relu", [F32], {"foo": 1})
    with pytest.raises(errors.InvalidArgumentError, match=r"^flatten: unknown attribute 'start' \(known: start_dim, end_dim\)"):
        run("flatten", [F32], {"start": 1})


@pytest.mark.parametrize("inputs,message", [([F32], "expected 2 inputs, got 1"), ([F32] * 3, "expected 2 inputs, got 3"), ([], "expected 2 inputs, got 0")])
def test_wrong_input_count(inputs, message):
    with pytest.raises(errors.InvalidArgumentError, match=f"^add: {message}"):
        run("add", inputs)


def test_missing_required_input_given_as_none():
    with pytest.raises(errors.InvalidArgumentError, match="^add: input 'b' is required but missing"):
        run("add", [F32, None])
    with pytest.raises(errors.InvalidArgumentError, match="^concat: expected at least 1 inputs, got 0"):
        run("concat", [])


def test_wrong_dtype():
    with pytest.raises(errors.InvalidArgumentError, match="^exp: input 'x' has dtype int32, expected one of float32, float64"):
        run("exp", [np.zeros(3, np.int32)])
    with pytest.raises(errors.InvalidArgumentError, match="^embedding: input 'indices' has dtype float32"):
        run("embedding", [F32, np.zeros(2, np.float32)])


def test_unsupported_numpy_dtype():
    with pytest.raises(errors.InvalidArgumentError, match="^add: input 'a' has unsupported dtype float16"):
        run("add", [np.zeros(2, np.float16), np.zeros(2, np.float16)])
    with pytest.raises(errors.InvalidArgumentError, match="^relu: input 'x' has unsupported dtype complex64"):
        run("relu", [np.zeros(2, np.complex64)])


def test_wrong_rank():
    with pytest.raises(errors.InvalidArgumentError, match=r"^embedding: input 'weight' must be 2-D .* got shape \[2, 3, 1\]"):
        run("embedding", [np.zeros((2, 3, 1), np.float32), np.zeros(2, np.int64)])
    with pytest.raises(errors.InvalidArgumentError, match="^gather: input 'index' has rank 1, input 'x' has rank 2"):
        run("gather", [F32, np.zeros(3, np.int64)], {"dim": 0})
    with pytest.raises(errors.InvalidArgumentError, match="^transpose: attribute 'perm' has 3 entries, input 'x' has rank 2"):
        run("transpose", [F32], {"perm": [0, 1, 2]})
    with pytest.raises(errors.InvalidArgumentError, match="^sum: attribute 'dim' = 2 is out of range for a tensor of rank 2"):
        run("sum", [F32], {"dim": [2]})


def test_incompatible_broadcast():
    with pytest.raises(errors.InvalidArgumentError, match=r"^add: shapes \[2, 3\] and \[2\] cannot be broadcast"):
        run("add", [F32, np.zeros(2, np.float32)])
    assert issubclass(errors.InvalidArgumentError, ValueError)


def test_infer_types_names_the_node():
    with pytest.raises(errors.InvalidArgumentError, match=r"^add 'block1\.add': shapes \[2\] and \[3\]"):
        _C.infer_types("add", [("float32", [2]), ("float32", [3])], {}, -1, "block1.add")


# ---------------------------------------------------------------- nothing crashes


def garbage_inputs(rng):
    """A handful of inputs of assorted ranks and dtypes, including empty and scalar ones."""
    dtypes = [np.float32, np.float64, np.int64, np.int32, np.uint8, np.int8, np.bool_]
    out = []
    for _ in range(int(rng.integers(0, 5))):
        shape = tuple(int(s) for s in rng.integers(0, 4, size=int(rng.integers(0, 4))))
        dtype = dtypes[int(rng.integers(0, len(dtypes)))]
        out.append(np.zeros(shape, dtype) if rng.random() < 0.5 else np.ones(shape, dtype))
    return out


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
GARBAGE_VALUES = [
    0, 1, -1, 3, -7, 2**40, INT64_MIN, INT64_MAX, 0.5, float("nan"), "none", "tanh", "float32",
    [], [0], [-1], [1, 0], [0, 0], [2, -1, 3], [2**40, 2**40], [INT64_MIN, INT64_MAX], [INT64_MAX, 1],
    [1.5],
]


def garbage_attrs(schema, rng):
    attrs = {}
    for a in schema["attrs"]:
        if a["required"] or rng.random() < 0.5:
            attrs[a["name"]] = GARBAGE_VALUES[int(rng.integers(0, len(GARBAGE_VALUES)))]
    return attrs


def test_random_bad_calls_never_crash():
    """Every registered op, called with random inputs and attributes: each call either works or
    raises an EmberError (or MemoryError, when attributes ask for an absurdly large output);
    anything else (a crash, a bare RuntimeError) fails the test."""
    rng = np.random.default_rng(1234)
    outcomes = {"ok": 0, "error": 0}
    for schema in _C.op_schemas():
        for _ in range(60):
            inputs, attrs = garbage_inputs(rng), garbage_attrs(schema, rng)
            try:
                run(schema["name"], inputs, attrs)
                outcomes["ok"] += 1
            except errors.EmberError as e:
                assert schema["name"] in str(e), f"message does not name the op: {e}"
                outcomes["error"] += 1
            except MemoryError:
                outcomes["error"] += 1
    assert outcomes["ok"] > 0 and outcomes["error"] > 0, outcomes


# ---------------------------------------------------------------- inputs are used in place


def test_contiguous_inputs_are_not_copied():
    x = np.arange(4 * 1024 * 1024, dtype=np.float32)  # 16 MB
    tracemalloc.start()
    try:
        (total,) = run("sum", [x])
        _, peak_in_place = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        run("sum", [x[::2]])  # non-contiguous: the binding copies it once
        _, peak_strided = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak_in_place < 1 << 20, peak_in_place  # far below the 16 MB a copy would cost
    assert peak_strided >= x[::2].nbytes  # the measurement does see a copy when there is one
    assert total == x.astype(np.float64).sum()


def test_kernel_reads_the_callers_buffer():
    x = np.arange(12, dtype=np.int32)
    (y,) = run("reshape", [x], {"shape": [3, 4]})
    np.testing.assert_array_equal(y, x.reshape(3, 4))
    x[5] = 100  # the output is a fresh array, not a view of the input
    assert y[1, 1] == 5
    assert not np.shares_memory(x, y)


@pytest.mark.parametrize("make_view", [lambda a: a.T, lambda a: a[:, ::2], lambda a: a[::-1], lambda a: np.asfortranarray(a)])
def test_non_contiguous_inputs(make_view):
    rng = np.random.default_rng(3)
    base = rng.normal(size=(6, 8)).astype(np.float32)
    v = make_view(base)
    assert_close(run("relu", [v])[0], np.maximum(v, 0))
    assert_close(run("add", [v, v])[0], v + v)
    assert_close(run("transpose", [v], {"perm": [1, 0]})[0], v.T)
    assert_close(run("reshape", [v], {"shape": [-1]})[0], v.reshape(-1))
    assert_close(run("sum", [v], {"dim": [0]})[0], v.sum(axis=0), 1e-5, 1e-5)


def test_scalars_and_lists_are_accepted_as_inputs():
    (y,) = run("add", [np.float64(1.5), 2.0])
    assert y == 3.5 and y.dtype == np.float64
    (y,) = run("relu", [[[-1.0, 2.0]]])
    np.testing.assert_array_equal(y, [[0.0, 2.0]])
