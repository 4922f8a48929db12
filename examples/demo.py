"""Ember's end-to-end demo (run by `make demo`), on embedded defaults:

1. the operator library: schemas, CPU dispatch, a kernel call;
2. eager research: train a small CNN on scikit-learn's handwritten digits (>= 97 % test accuracy);
3. graph mode: trace it, optimize the NetDef, run it in the C++ runtime, check it agrees with eager;
4. mobile: quantize it to int8 with calibration, export a `.ember` file, run it with `ember-run`;
5. serving: serve the traced model with the gRPC daemon, query it through Triton's client, and
   shut the daemon down cleanly.
"""
import os
import sys
import time
import warnings

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "examples"))

from graphruntime import _C  # noqa: E402


def show_operator_library():
    schemas = _C.op_schemas()
    features = _C.cpu_features()
    print(f"== operator library: {len(schemas)} ops; CPU ISA {features['detected_isa']} "
          f"(usable: {', '.join(features['isas'])}); {_C.get_num_threads()} threads")
    rng = np.random.default_rng(0)
    a = rng.standard_normal((2, 3)).astype(np.float32)
    b = rng.standard_normal((3,)).astype(np.float32)
    (y,) = _C.run_op("add", [a, b])
    assert np.allclose(y, a + b)
    print(f"   add with broadcasting matches numpy; kernel {_C.kernel_name('add', [a, b])}")


def train_eager():
    import train_digits

    print("== eager: training a small CNN on the digits data set")
    x_train, y_train, x_test, y_test = train_digits.load_data()
    model = train_digits.build_model()
    start = time.perf_counter()
    history = train_digits.train(model, x_train, y_train, progress=sys.stderr.isatty())
    accuracy = train_digits.evaluate(model, x_test, y_test)
    print(f"   {len(history)} epochs in {time.perf_counter() - start:.1f} s, final loss "
          f"{history[-1]:.4f}, test accuracy {accuracy * 100:.2f} %")
    assert accuracy >= 0.97, f"test accuracy {accuracy:.4f} is below 97 %"
    return model, (x_train, y_train, x_test, y_test)


def main():
    show_operator_library()
    model, (x_train, y_train, x_test, y_test) = train_eager()

    import graph_mode

    optimized = graph_mode.show_graph_mode(model, x_test.numpy())

    from frontend import jit

    model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jit.TracerWarning)
        traced = jit.trace(model, x_test[:1], dynamic_axes=[0])

    from mobile.demo import quantize_export_and_run

    print("== mobile: int8 quantization, .ember export, ember-run")
    quantize_export_and_run(traced.net, x_train.numpy(), x_test.numpy(), y_test.numpy())

    from serving.demo import serve_and_query

    name = optimized.input[0].name
    serve_and_query(optimized, {name: x_test.numpy()[:4]}, model_name="digits")
    print("== demo finished")


if __name__ == "__main__":
    main()
