"""Ember's graph mode: the C++ operator library (`graphruntime._C`), NetDefs, optimization
passes, and the runtime that runs them.

    >>> import numpy as np, graphruntime
    >>> graphruntime.run_op("add", [np.ones(3, np.float32), np.ones(3, np.float32)])[0]
    array([2., 2., 2.], dtype=float32)
"""
from graphruntime import errors
from graphruntime import _C
from graphruntime._C import cpu_features, get_num_threads, op_schemas, run_op, set_num_threads
from graphruntime.netdef import NetBuilder, check, load, save
from graphruntime.predictor import Predictor
from graphruntime.lower import lower
from graphruntime.passes import optimize

__all__ = [
    "errors",
    "NetBuilder",
    "Predictor",
    "check",
    "load",
    "lower",
    "optimize",
    "save",
    "cpu_features",
    "get_num_threads",
    "op_schemas",
    "run_op",
    "set_num_threads",
]
