"""Ember's end-to-end demo (run by `make demo`).

Runs each stage that exists, in order: the operator library, eager training, graph mode,
int8 mobile export, and serving.
"""
import numpy as np

from graphruntime import _C


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
    print("   add with broadcasting matches numpy:", y.shape)


def main():
    show_operator_library()


if __name__ == "__main__":
    main()
