"""_C.OpHandle (the eager dispatch fast path): same results as run_op, cache invalidation on new
attributes or input types, wrapping, errors, and concurrent use from threads."""
import threading

import numpy as np
import pytest

from graphruntime import _C, errors


def test_matches_run_op_and_revalidates_cache():
    h = _C.OpHandle("add")
    a, b = np.ones((2, 3), np.float32), np.arange(3, dtype=np.float32)
    assert np.array_equal(h([a, b])[0], _C.run_op("add", [a, b])[0])
    # New input types (shape, dtype) must re-infer, not reuse the cached kernel.
    c = np.arange(4, dtype=np.float64)
    assert np.array_equal(h.one([c, c]), c + c) and h.one([c, c]).dtype == np.float64
    with pytest.raises(errors.InvalidArgumentError, match=r"add: shapes \[2, 3\] and \[4\]"):
        h([a, np.ones(4, np.float32)])
    assert np.array_equal(h.one([a, b]), a + b)


def test_attribute_changes_are_seen():
    h = _C.OpHandle("sum")
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert h.one([x], {"dim": [0]}).tolist() == [3.0, 5.0, 7.0]
    dims = [1]
    assert h.one([x], {"dim": dims}).tolist() == [3.0, 12.0]
    dims[0] = 0  # mutating the caller's list must not leave a stale cache
    assert h.one([x], {"dim": dims}).tolist() == [3.0, 5.0, 7.0]
    assert h.one([x]).tolist() == 15.0
    with pytest.raises(errors.InvalidArgumentError, match="keepdim"):
        h.one([x], {"keepdim": "yes"})


def test_wrap_class_and_inputs_with_data():
    class Box:
        __slots__ = ("_data", "__dict__")
    h = _C.OpHandle("relu", Box)
    inp = Box()
    inp._data = np.array([-1.0, 2.0], np.float32)
    out = h.one([inp])
    assert isinstance(out, Box) and out._data.tolist() == [0.0, 2.0]
    # Non-contiguous arrays are copied; unsupported dtypes are reported.
    x = np.arange(8, dtype=np.float32).reshape(2, 4)[:, ::2]
    assert np.array_equal(_C.OpHandle("neg").one([x]), -x)
    with pytest.raises(errors.InvalidArgumentError, match="unsupported dtype"):
        _C.OpHandle("neg").one([np.ones(2, np.float16)])
    with pytest.raises(errors.UnsupportedError, match="unknown op 'no_such_op'"):
        _C.OpHandle("no_such_op")


def test_concurrent_calls_from_threads():
    h = _C.OpHandle("mul")
    rng = np.random.default_rng(0)
    big = [rng.standard_normal((256, 256)).astype(np.float32) for _ in range(4)]  # released GIL
    small = [rng.standard_normal((3,)).astype(np.float32) for _ in range(4)]
    failures = []

    def work(k):
        for i in range(30):
            a = big[k] if i % 2 else small[k]
            if not np.array_equal(h.one([a, a]), a * a):
                failures.append((k, i))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures


def test_large_outputs_reuse_freed_buffers_without_aliasing_live_ones():
    h = _C.OpHandle("add")
    a = np.random.default_rng(0).standard_normal((256, 256)).astype(np.float32)  # 256 KiB outputs
    first = h.one([a, a])
    address = first.ctypes.data
    del first
    second = h.one([a, a])  # the freed buffer comes back...
    assert second.ctypes.data == address
    third = h.one([a, -a])  # ...but never while its array is alive
    assert third.ctypes.data != second.ctypes.data
    assert np.array_equal(second, a + a) and np.array_equal(third, np.zeros_like(a))
    view = second[1:]
    del second
    fourth = h.one([a, a])
    assert fourth.ctypes.data != view.ctypes.data - 256 * 4  # a live view keeps its buffer
    assert np.array_equal(view, (a + a)[1:])


def test_cached_kernel_follows_the_isa_cap():
    """Eager ops cache their kernel; changing the ISA cap must choose the kernel again."""
    import numpy as np

    import frontend
    from frontend.nn import functional as F
    from graphruntime import _C

    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 16, 12, 12)).astype(np.float32)
    w = rng.standard_normal((16, 16, 3, 3)).astype(np.float32)
    saved = _C.get_max_isa()
    try:
        results = {}
        for isa in ("reference", saved, "reference"):
            _C.set_max_isa(isa)
            got = F.conv2d(frontend.from_numpy(x), frontend.from_numpy(w), padding=1).numpy()
            want = _C.run_op("conv2d", [x, w, None], {"padding": [1, 1]})[0]
            np.testing.assert_array_equal(got, want)
            results[isa] = got
    finally:
        _C.set_max_isa(saved)
