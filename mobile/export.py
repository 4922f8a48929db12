"""`.ember` files: the runtime model flatbuffer (csrc/schema/model.fbs) of a (quantized) net, and
the `Interpreter` that runs one.

    >>> export(qnet, "model.ember")                          # doctest: +SKIP
    >>> Interpreter("model.ember", num_threads=1).run({"x": x})  # doctest: +SKIP

The file is what `graphruntime.lower` produces: weights 64-byte aligned and used in place from
the memory-mapped file; no protobuf is needed to read it (ember-run links none).
"""
from __future__ import annotations

import os
from typing import Mapping

import numpy as np

from graphruntime import errors
from graphruntime.lower import lower
from graphruntime.predictor import Predictor
from graphruntime.proto import net_pb2

MODEL_IDENTIFIER = b"EMBR"


def export(net: net_pb2.NetDef, path: str | os.PathLike) -> int:
    """Writes `net` as a `.ember` file (checked against the op schemas first); returns its size
    in bytes."""
    data = lower(net)
    with open(os.fspath(path), "wb") as f:
        f.write(data)
    return len(data)


class Interpreter:
    """Runs a `.ember` file in the C++ runtime (memory-mapped; the GIL is released while running).

    `num_threads` sets the size of the interpreter's thread pool (default: hardware threads).
    Corrupt, truncated or foreign files raise graphruntime.errors.InvalidModelError.
    """

    def __init__(self, path: str | os.PathLike, num_threads: int | None = None):
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise errors.InvalidArgumentError(f"model file '{path}' does not exist")
        with open(path, "rb") as f:
            head = f.read(8)
        if len(head) < 8 or head[4:8] != MODEL_IDENTIFIER:
            raise errors.InvalidModelError(
                f"'{path}' is not an .ember model (file identifier {head[4:8]!r}, expected {MODEL_IDENTIFIER!r})")
        self.path = path
        self._predictor = Predictor(path, num_threads=num_threads)

    @property
    def input_names(self) -> list[str]:
        """Names of the model inputs, in order."""
        return self._predictor.input_names

    @property
    def output_names(self) -> list[str]:
        """Names of the model outputs, in order."""
        return self._predictor.output_names

    @property
    def input_info(self) -> dict:
        """name -> (dtype, shape with -1 for dynamic dims)."""
        return self._predictor.input_info

    @property
    def output_info(self) -> dict:
        """name -> (dtype, shape with -1 for dynamic dims)."""
        return self._predictor.output_info

    def run(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Runs the model on {input name: array}; returns {output name: array}."""
        return self._predictor.run(feed)

    def memory_stats(self) -> dict[str, int]:
        """Arena, naive and lower-bound intermediate bytes and weight bytes."""
        return self._predictor.memory_stats()
