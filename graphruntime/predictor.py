"""`Predictor`: runs a net in the C++ runtime.

    >>> import numpy as np
    >>> from graphruntime.netdef import NetBuilder
    >>> b = NetBuilder("double"); x = b.input("x", "float32", [-1]); b.output(b.op("add", [x, x]), "y")
    >>> p = Predictor(b.build(), num_threads=1)
    >>> p.run({"x": np.arange(3, dtype=np.float32)})["y"]
    array([0., 2., 4.], dtype=float32)
"""
from __future__ import annotations

import os
from typing import Mapping

import numpy as np

from graphruntime import _C, errors
from graphruntime.netdef import numpy_dtype
from graphruntime.proto import net_pb2

_MODEL_IDENTIFIER = b"EMBR"


def _thread_count(num_threads) -> int:
    """The pool size to ask the runtime for: 0 means "the hardware threads" (num_threads=None)."""
    if num_threads is None:
        return 0
    if isinstance(num_threads, bool) or not isinstance(num_threads, (int, np.integer)) or num_threads < 1:
        raise errors.InvalidArgumentError(f"num_threads must be a positive int or None, got {num_threads!r}")
    return int(num_threads)


class Predictor:
    """A model loaded into the C++ runtime, ready to run.

    `net_or_path` is a NetDef, a path to a NetDef (`.pb`/`.pbtxt`) or to a runtime model file
    (memory-mapped, weights used in place), or runtime model bytes. `num_threads` (default: the
    hardware threads) sets the size of this predictor's thread pool. `run` releases the GIL, so
    several Python threads can run one predictor at the same time.

    A batch whose memory plan exceeds a cache-sized budget (16 MiB, or the `EMBER_BATCH_SPLIT_BYTES`
    environment variable read at load; 0 never splits) runs as consecutive sub-batches when every
    op of the model keeps batch rows apart (convolutions, linear, pooling, element-wise ops, ...):
    the activations then stay in cache between layers. The kernels give a row the same bits in
    any batch, so the outputs equal those of the whole batch at once.
    """

    def __init__(self, net_or_path, num_threads: int | None = None):
        threads = _thread_count(num_threads)
        if isinstance(net_or_path, net_pb2.NetDef):
            from graphruntime.lower import lower
            self._impl = _C.Predictor.from_bytes(lower(net_or_path), threads)
        elif isinstance(net_or_path, (bytes, bytearray, memoryview)):
            self._impl = _C.Predictor.from_bytes(net_or_path, threads)
        elif isinstance(net_or_path, (str, os.PathLike)):
            path = os.fspath(net_or_path)
            from graphruntime.netdef import load
            if not os.path.isfile(path):
                load(path)  # raises the error for a missing file or a directory
            with open(path, "rb") as f:
                head = f.read(8)
            if head[4:8] == _MODEL_IDENTIFIER:
                self._impl = _C.Predictor.from_file(path, threads)
            else:
                from graphruntime.lower import lower
                self._impl = _C.Predictor.from_bytes(lower(load(path)), threads)
        else:
            raise errors.InvalidArgumentError(
                f"Predictor takes a NetDef, a path or model bytes, not {type(net_or_path).__name__}")
        self._inputs = [(name, dtype, list(shape)) for name, dtype, shape in self._impl.inputs]
        self._outputs = [(name, dtype, list(shape)) for name, dtype, shape in self._impl.outputs]

    @property
    def input_names(self) -> list[str]:
        """Names of the graph inputs, in order."""
        return [name for name, _, _ in self._inputs]

    @property
    def output_names(self) -> list[str]:
        """Names of the graph outputs, in order."""
        return [name for name, _, _ in self._outputs]

    @property
    def input_info(self) -> dict[str, tuple[str, list[int]]]:
        """name -> (dtype, shape) of each input; -1 marks a dynamic dimension."""
        return {name: (dtype, list(shape)) for name, dtype, shape in self._inputs}

    @property
    def output_info(self) -> dict[str, tuple[str, list[int]]]:
        """name -> (dtype, shape) of each output as declared at load (-1 = depends on inputs)."""
        return {name: (dtype, list(shape)) for name, dtype, shape in self._outputs}

    @property
    def num_threads(self) -> int:
        """Threads of this predictor's pool."""
        return self._impl.num_threads

    def run(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Runs the model on `feed` (input name -> array) and returns output name -> array.

        Every input must be given with the declared dtype and a shape matching the declared one
        (-1 dims are free); anything else raises InvalidArgumentError naming the input.
        """
        return dict(zip(self.output_names, self._impl.run(self._feed_list(feed))))

    __call__ = run

    def profile(self, feed: Mapping[str, np.ndarray]) -> list[tuple[str, str, float]]:
        """Runs once and returns ("<op> '<node>'", kernel name, seconds) for every node, in order."""
        _, seconds = self._impl.run_profiled(self._feed_list(feed))
        nodes = [k.split(": ")[0] for k in self._impl.kernel_names()]
        kernels = [k.split(": ", 1)[1] for k in self._impl.kernel_names()]
        return [(node, kernel, t) for node, kernel, t in zip(nodes, kernels, seconds)]

    def _check_input_names(self, given, what: str) -> None:
        """`given` must be a mapping with exactly the model's input names."""
        if not isinstance(given, Mapping):
            raise errors.InvalidArgumentError(f"{what} takes a dict keyed by input name")
        unknown = [k for k in given if k not in self.input_info]
        if unknown:
            raise errors.InvalidArgumentError(
                f"unknown input '{unknown[0]}' (the model's inputs are: {', '.join(self.input_names)})")
        missing = [n for n in self.input_names if n not in given]
        if missing:
            raise errors.InvalidArgumentError(f"missing input '{missing[0]}'")

    def _feed_list(self, feed):
        self._check_input_names(feed, "run() (input name -> array)")
        arrays = []
        for name in self.input_names:
            value = feed[name]
            if not isinstance(value, np.ndarray):
                # A list or a Python number has no dtype of its own: it takes the declared one.
                declared = self.input_info[name][0]
                try:
                    value = np.asarray(value, dtype=numpy_dtype(declared))
                except (TypeError, ValueError) as e:
                    raise errors.InvalidArgumentError(
                        f"input '{name}': cannot convert {type(value).__name__} to {declared} ({e})") from None
            if not value.dtype.isnative:
                # NOTE: the runtime reads the bytes as they lie; a big-endian array must be
                # converted, or it would run on byte-swapped numbers.
                value = value.astype(value.dtype.newbyteorder("="))
            arrays.append(value)
        return arrays

    def memory_stats(self) -> dict[str, int]:
        """Bytes of the last plan: arena, naive sum of intermediates, lower bound; and weights."""
        return dict(self._impl.memory_stats())

    def plan(self, input_shapes: Mapping[str, list[int]]) -> dict[str, int]:
        """Plans memory for the given input shapes without running; returns memory_stats()."""
        self._check_input_names(input_shapes, "plan() (input name -> shape)")
        shapes = []
        for name in self.input_names:
            shape = input_shapes[name]
            if isinstance(shape, (str, bytes)) or not all(
                    isinstance(d, (int, np.integer)) and not isinstance(d, bool) for d in shape):
                raise errors.InvalidArgumentError(f"input '{name}': a shape is a list of ints, got {shape!r}")
            shapes.append([int(d) for d in shape])
        return dict(self._impl.plan(shapes))

    def kernel_names(self) -> list[str]:
        """The kernel chosen for each node, as "<op> '<node>': <kernel>"."""
        return list(self._impl.kernel_names())


__all__ = ["Predictor"]
