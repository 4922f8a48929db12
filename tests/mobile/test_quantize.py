"""mobile.quantize / export / Interpreter / CLI on hand-built nets, against the float net."""
import os
import subprocess

import numpy as np
import pytest

import mobile
from mobile.demo import find_ember_run
from graphruntime import Predictor, errors
from graphruntime.cli import main as ember_main
from graphruntime.netdef import NetBuilder, save


def conv_net(seed=0, size=12):
    """conv-bn-relu, max-pool, depthwise conv + relu6, residual add + relu, pointwise conv,
    global average pool, flatten, linear: every rewrite rule once."""
    rng = np.random.default_rng(seed)
    b = NetBuilder("small")
    x = b.input("x", "float32", [-1, 3, size, size])

    def w(*shape, scale=None):
        fan_in = np.prod(shape[1:]) if len(shape) > 1 else 1
        return (rng.standard_normal(shape) * (scale or np.sqrt(2.0 / fan_in))).astype(np.float32)

    h = b.op("conv2d", [x, b.initializer("c1.w", w(8, 3, 3, 3)), b.initializer("c1.b", w(8, scale=0.1))],
             {"padding": [1, 1]}, name="c1")
    h = b.op("batch_norm", [h, b.initializer("bn.mean", w(8, scale=0.1)),
                            b.initializer("bn.var", np.abs(w(8, scale=0.5)) + 0.5),
                            b.initializer("bn.w", 1 + w(8, scale=0.1)), b.initializer("bn.b", w(8, scale=0.1))], name="bn")
    h = b.op("relu", [h], name="r1")
    h = b.op("max_pool2d", [h], {"kernel_size": [2, 2]}, name="pool")
    d = b.op("conv2d", [h, b.initializer("dw.w", w(8, 1, 3, 3)), b.initializer("dw.b", w(8, scale=0.1))],
             {"padding": [1, 1], "groups": 8}, name="dw")
    d = b.op("relu6", [d], name="r6")
    p = b.op("conv2d", [d, b.initializer("pw.w", w(8, 8, 1, 1)), None], name="pw")
    h = b.op("add", [h, p], name="res")
    h = b.op("relu", [h], name="r2")
    h = b.op("adaptive_avg_pool2d", [h], {"output_size": [1, 1]}, name="gap")
    h = b.op("flatten", [h], {"start_dim": 1}, name="flat")
    y = b.op("linear", [h, b.initializer("fc.w", w(10, 8)), b.initializer("fc.b", w(10, scale=0.1))], name="fc")
    b.output(y, "y")
    return b.build()


def feeds(n, batch=4, size=12, seed=1):
    rng = np.random.default_rng(seed)
    return [{"x": rng.standard_normal((batch, 3, size, size)).astype(np.float32)} for _ in range(n)]


@pytest.fixture(scope="module")
def float_net():
    return conv_net()


@pytest.fixture(scope="module")
def qnet(float_net):
    return mobile.quantize(float_net, feeds(16), method="minmax", progress=False)


def test_rewrite_uses_int8_ops(qnet):
    types = [op.type for op in qnet.op]
    assert types.count("quantized_conv2d") == 3
    assert "quantized_max_pool2d" in types and "quantized_adaptive_avg_pool2d" in types
    add = next(op for op in qnet.op if op.type == "quantized_add")
    assert any(a.name == "activation" and a.s in ("relu", b"relu") for a in add.arg)  # add + relu fused
    # One quantize at the input; the classifier, whose output leaves the net, returns float
    # itself (no dequantize); no float conv/linear left.
    assert [op.type for op in qnet.op if "y" in op.output] == ["quantized_linear_float"]
    assert types.count("quantize") == 1 and types.count("dequantize") == 0
    assert not {"conv2d", "linear", "batch_norm", "add"} & set(types)
    assert all(t.data_type != 1 or t.name.endswith(".scale") for t in qnet.initializer)  # no float weights


def test_quantized_outputs_track_float(float_net, qnet):
    fp, qp = Predictor(float_net, num_threads=1), Predictor(qnet, num_threads=1)
    test = feeds(8, seed=7)
    ref = np.concatenate([fp.run(f)["y"] for f in test])
    got = np.concatenate([qp.run(f)["y"] for f in test])
    assert got.dtype == np.float32 and got.shape == ref.shape
    assert mobile.output_sqnr(ref, got) >= 20.0
    assert np.mean(ref.argmax(1) == got.argmax(1)) >= 0.9


def test_linear_feeding_a_float_op_stays_uint8_then_dequantizes():
    rng = np.random.default_rng(3)
    b = NetBuilder("head")
    x = b.input("x", "float32", [-1, 16])
    h = b.op("linear", [x, b.initializer("fc.w", rng.standard_normal((10, 16)).astype(np.float32)), None], name="fc")
    b.output(b.op("softmax", [h], {"dim": 1}, name="softmax"), "p")
    net = b.build()
    calib = [{"x": rng.standard_normal((4, 16)).astype(np.float32)} for _ in range(4)]
    types = [op.type for op in mobile.quantize(net, calib, progress=False).op]
    assert types == ["quantize", "quantized_linear", "dequantize", "softmax"], types


@pytest.mark.parametrize("method", ["percentile", "entropy"])
def test_histogram_methods(float_net, method):
    q = mobile.quantize(float_net, feeds(8), method=method, progress=False)
    test = feeds(4, seed=9)
    ref = np.concatenate([Predictor(float_net).run(f)["y"] for f in test])
    got = np.concatenate([Predictor(q).run(f)["y"] for f in test])
    # About 39 dB, as minmax (a KL search that ignored the clipped mass gave 24 dB).
    assert mobile.output_sqnr(ref, got) >= 30.0


def test_per_tensor_weights(float_net):
    q = mobile.quantize(float_net, feeds(8), per_channel=False, progress=False)
    scales = [t for t in q.initializer if t.name.endswith(".scale")]
    assert scales and all(list(t.dims) == [1] for t in scales)


def test_quantize_weight_is_symmetric_per_channel():
    w = np.random.default_rng(3).standard_normal((4, 2, 3, 3)).astype(np.float32)
    q, s = mobile.quantize_weight(w)
    assert q.dtype == np.int8 and s.shape == (4,) and np.abs(q).max() == 127
    assert np.all(np.abs(q.astype(np.float64) * s[:, None, None, None] - w) <= s[:, None, None, None] / 2 + 1e-7)


def test_sqnr_report_names_every_quantized_tensor(float_net, qnet):
    rows = mobile.sqnr_report(float_net, qnet, feeds(2, seed=5))
    names = [r["name"] for r in rows]
    assert names[0] == "x" and names[-1] == "y" and len(rows) >= 8
    assert all(r["sqnr_db"] > 10 for r in rows), mobile.format_report(rows)
    text = mobile.format_report(rows)
    assert "SQNR" in text and "quantized_conv2d" in text


def test_calibration_needs_batches(float_net):
    with pytest.raises(errors.InvalidArgumentError, match="calibration_batches is empty"):
        mobile.quantize(float_net, [], progress=False)
    with pytest.raises(ValueError, match="calibration method must be one of"):
        mobile.quantize(float_net, feeds(1), method="magic", progress=False)


def test_export_and_interpreter_match_predictor(tmp_path, qnet):
    path = tmp_path / "small.ember"
    size = mobile.export(qnet, path)
    assert size == os.path.getsize(path)
    interp = mobile.Interpreter(path, num_threads=1)
    assert interp.input_names == ["x"] and interp.output_names == ["y"]
    f = feeds(1, seed=11)[0]
    np.testing.assert_array_equal(interp.run(f)["y"], Predictor(qnet, num_threads=1).run(f)["y"])


def test_interpreter_rejects_bad_files(tmp_path, qnet):
    path = tmp_path / "m.ember"
    mobile.export(qnet, path)
    data = path.read_bytes()
    bad = tmp_path / "bad.ember"
    bad.write_bytes(data[: len(data) // 3])  # truncated
    with pytest.raises(errors.InvalidModelError):
        mobile.Interpreter(bad)
    bad.write_bytes(b"not a model at all")
    with pytest.raises(errors.InvalidModelError, match="not an .ember model"):
        mobile.Interpreter(bad)
    rng = np.random.default_rng(0)
    for _ in range(20):  # bit flips: an error or a model that still runs, never a crash
        corrupted = bytearray(data)
        for i in rng.integers(8, len(data), size=4):
            corrupted[i] ^= 1 << int(rng.integers(0, 8))
        bad.write_bytes(bytes(corrupted))
        try:
            mobile.Interpreter(bad, num_threads=1).run(feeds(1, batch=1)[0])
        except errors.EmberError:
            pass


def test_cli_quantize_report_and_export(tmp_path, float_net, capsys):
    src, qpath, epath = tmp_path / "f.pb", tmp_path / "q.pb", tmp_path / "q.ember"
    save(float_net, src)
    calib = tmp_path / "calib.npz"
    np.savez(calib, x=np.concatenate([f["x"] for f in feeds(4)]))
    assert ember_main(["quantize", str(src), "-o", str(qpath), "--calibration", str(calib),
                       "--batch-size", "4", "--report", "--method", "percentile"]) == 0
    out = capsys.readouterr().out
    assert "SQNR" in out and "quantized_conv2d" in out
    assert ember_main(["export", str(qpath), "-o", str(epath)]) == 0
    assert mobile.Interpreter(epath).run(feeds(1)[0])["y"].shape == (4, 10)
    # --no-bias-correction keeps the float biases: the net the API makes without correction.
    plain = tmp_path / "plain.pb"
    assert ember_main(["quantize", str(src), "-o", str(plain), "--calibration", str(calib),
                       "--batch-size", "4", "--no-bias-correction"]) == 0
    from graphruntime.netdef import initializers, load
    want = mobile.quantize(float_net, [{"x": f["x"]} for f in feeds(4)], progress=False, bias_correction=False)
    got = initializers(load(plain))
    assert set(got) == set(initializers(want))
    for name, array in initializers(want).items():
        np.testing.assert_array_equal(got[name], array, err_msg=name)
    corrected = initializers(mobile.quantize(float_net, [{"x": f["x"]} for f in feeds(4)], progress=False))
    assert any(not np.array_equal(got[n], corrected[n]) for n in got if n.endswith(".int32") and n in corrected)


@pytest.mark.skipif(find_ember_run() is None, reason="ember-run is not built")
def test_ember_run_matches_interpreter(tmp_path, qnet):
    model = tmp_path / "m.ember"
    mobile.export(qnet, model)
    f = feeds(1, batch=2, seed=3)[0]
    np.save(tmp_path / "x.npy", f["x"])
    out_dir = tmp_path / "out"
    done = subprocess.run([find_ember_run(), str(model), "-i", f"x={tmp_path / 'x.npy'}", "-o", str(out_dir),
                           "--threads", "1", "--bench", "5"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "median" in done.stdout and "peak memory" in done.stdout
    np.testing.assert_array_equal(np.load(out_dir / "y.npy"), mobile.Interpreter(model, 1).run(f)["y"])
    # Random inputs when none are given.
    assert subprocess.run([find_ember_run(), str(model)], capture_output=True, timeout=60).returncode == 0
    # Corrupt and truncated files: one-line error, exit status 1, no crash.
    data = model.read_bytes()
    for bad in [data[:100], data[:-50], b"EMBR" * 10, bytes(len(data))]:
        (tmp_path / "bad.ember").write_bytes(bad)
        done = subprocess.run([find_ember_run(), str(tmp_path / "bad.ember")], capture_output=True, text=True, timeout=60)
        assert done.returncode == 1 and done.stderr.startswith("ember-run: "), (done.returncode, done.stderr)
    done = subprocess.run([find_ember_run(), str(model), "-i", "nope=x.npy"], capture_output=True, text=True)
    assert done.returncode == 1 and "ember-run:" in done.stderr
    # Random bit flips: a clean error or a run, never a signal (crash).
    rng = np.random.default_rng(1)
    for _ in range(15):
        corrupted = bytearray(data)
        for i in rng.integers(0, len(data), size=3):
            corrupted[i] ^= 1 << int(rng.integers(0, 8))
        (tmp_path / "flip.ember").write_bytes(bytes(corrupted))
        done = subprocess.run([find_ember_run(), str(tmp_path / "flip.ember"), "--threads", "1"],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode in (0, 1), (done.returncode, done.stderr)


def test_rewrite_of_concat_pad_and_standalone_activations():
    """concat requantizes its inputs, pad pads with the zero point, standalone relu / relu6
    become uint8 maximum / minimum with the codes of 0 and 6, data movement stays uint8."""
    rng = np.random.default_rng(4)
    b = NetBuilder("branches")
    x = b.input("x", "float32", [-1, 3, 8, 8])
    w = lambda *s: (rng.standard_normal(s) * 0.4).astype(np.float32)  # noqa: E731
    c1 = b.op("conv2d", [x, b.initializer("a.w", w(4, 3, 3, 3)), None], {"padding": [1, 1]}, name="a")
    c2 = b.op("conv2d", [x, b.initializer("b.w", w(6, 3, 1, 1)), b.initializer("b.b", w(6))], name="b")
    h = b.op("concat", [c1, c2], {"dim": 1}, name="cat")
    h = b.op("relu", [h], name="relu")
    h = b.op("pad", [h], {"pads": [1, 1, 1, 1]}, name="pad")
    h = b.op("relu6", [h], name="relu6")
    h = b.op("transpose", [h], {"perm": [0, 2, 3, 1]}, name="nhwc")
    h = b.op("reshape", [h], {"shape": [-1, 100 * 10]}, name="flat")
    y = b.op("linear", [h, b.initializer("fc.w", w(5, 1000) * 0.1), None], name="fc")
    b.output(y, "y")
    net = b.build()
    calib = [{"x": rng.standard_normal((2, 3, 8, 8)).astype(np.float32)} for _ in range(8)]
    qnet = mobile.quantize(net, calib, progress=False)
    types = [op.type for op in qnet.op]
    for expected in ["quantized_concat", "maximum", "minimum", "pad", "transpose", "reshape", "quantized_linear_float"]:
        assert expected in types, types
    assert types.count("quantize") == 1 and types.count("dequantize") == 0, types
    pad = next(op for op in qnet.op if op.type == "pad")
    zero_point = mobile.quantization_table(qnet)[pad.input[0]][1]
    assert [a.f for a in pad.arg if a.name == "value"] == [float(zero_point)]
    test = [{"x": rng.standard_normal((2, 3, 8, 8)).astype(np.float32)} for _ in range(4)]
    ref = np.concatenate([Predictor(net).run(f)["y"] for f in test])
    got = np.concatenate([Predictor(qnet).run(f)["y"] for f in test])
    assert mobile.output_sqnr(ref, got) >= 20.0


@pytest.mark.parametrize("kind", ["linear", "conv2d"])
def test_bias_correction_removes_the_mean_shift_of_rounded_weights(kind):
    # Inputs with a large mean make each output's weight rounding error a systematic shift
    # (sum_k (Wq - W)[o, k] * E[x_k]); bias correction folds it into the bias (created when
    # the layer has none).
    rng = np.random.default_rng(3)
    b = NetBuilder("shift")
    if kind == "linear":
        x = b.input("x", "float32", [-1, 64])
        weight = rng.standard_normal((16, 64)).astype(np.float32)
        weight[:, 0] = 8.0  # a large weight per row: a coarse scale for the others
        y = b.op("linear", [x, b.initializer("w", weight), b.initializer("b", np.zeros(16, np.float32))])
        shape = (32, 64)
    else:
        x = b.input("x", "float32", [-1, 8, 6, 6])
        weight = rng.standard_normal((16, 8, 3, 3)).astype(np.float32)
        weight[:, 0, 0, 0] = 8.0
        y = b.op("conv2d", [x, b.initializer("w", weight), None])  # no padding: every tap sees the mean
        shape = (8, 8, 6, 6)
    b.output(y, "y")
    net = b.build()

    def batches(n, seed):
        r = np.random.default_rng(seed)
        return [{"x": (5.0 + r.standard_normal(shape)).astype(np.float32)} for _ in range(n)]

    test = batches(8, 7)
    ref = np.concatenate([Predictor(net).run(f)["y"] for f in test])
    channel_axis = 1
    errors_by_setting = {}
    for corrected in (False, True):
        q = mobile.quantize(net, batches(16, 1), progress=False, bias_correction=corrected)
        got = np.concatenate([Predictor(q).run(f)["y"] for f in test])
        diff = np.moveaxis(got - ref, channel_axis, -1).reshape(-1, 16)
        errors_by_setting[corrected] = np.abs(diff.mean(axis=0)).mean()
    assert errors_by_setting[True] < 0.3 * errors_by_setting[False], errors_by_setting
