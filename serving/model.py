"""One loaded version of a model: its predictor instances, scheduler, tensor specs and statistics.

    >>> from serving.repository import load_predictor                      # doctest: +SKIP
    >>> version = ModelVersion("linear", 1, "models/linear/1/model.pb", ModelSettings(),  # doctest: +SKIP
    ...                        load_predictor)
    >>> version.infer({"x": np.ones((1, 4), np.float32)}).outputs["y"]  # doctest: +SKIP
"""
import dataclasses
import threading
import time

import numpy as np

from serving import datatypes
from serving.errors import ModelConfigError, ServingError
from serving.scheduler import DirectScheduler, DynamicBatcher


@dataclasses.dataclass(frozen=True)
class TensorSpec:
    """A model input or output as the protocol describes it: name, datatype string, numpy dtype
    and full shape (-1 = variable; with max_batch_size > 0, shape[0] is the batch dimension)."""

    name: str
    datatype: str
    dtype: np.dtype
    shape: tuple


class VersionStatistics:
    """Counters behind ModelStatistics (Triton's semantics: one count per request for the
    durations, `inference_count` in batch items, `execution_count` in model runs)."""

    FIELDS = ("success", "fail", "queue", "compute_input", "compute_infer", "compute_output")

    def __init__(self):
        self._lock = threading.Lock()
        self.durations = {field: [0, 0] for field in self.FIELDS}  # field -> [count, ns]
        self.inference_count = 0
        self.execution_count = 0
        self.last_inference_ms = 0

    def record_success(self, result, rows, total_ns):
        """Counts one successful request of `rows` batch items that took `total_ns` in the server."""
        with self._lock:
            for field, ns in (("success", total_ns), ("queue", result.queue_ns),
                              ("compute_input", result.compute_input_ns),
                              ("compute_infer", result.compute_infer_ns),
                              ("compute_output", result.compute_output_ns)):
                self.durations[field][0] += 1
                self.durations[field][1] += ns
            self.inference_count += rows
            self.last_inference_ms = int(time.time() * 1000)

    def record_failure(self, total_ns):
        """Counts one failed request."""
        with self._lock:
            self.durations["fail"][0] += 1
            self.durations["fail"][1] += total_ns

    def record_execution(self):
        """Counts one model run."""
        with self._lock:
            self.execution_count += 1

    def snapshot(self):
        """A consistent copy: dict with the durations and the three counters."""
        with self._lock:
            return {"durations": {k: tuple(v) for k, v in self.durations.items()},
                    "inference_count": self.inference_count,
                    "execution_count": self.execution_count,
                    "last_inference_ms": self.last_inference_ms}


def _tensor_specs(info, kind, path):
    specs = []
    for name, (dtype_name, shape) in info.items():
        dtype = np.dtype(dtype_name)
        try:
            datatype = datatypes.to_wire_datatype(dtype)
        except ValueError:
            raise ModelConfigError(f"{path}: {kind} '{name}' has dtype {dtype}, which the protocol "
                                   "cannot carry") from None
        specs.append(TensorSpec(name, datatype, dtype, tuple(int(d) for d in shape)))
    return specs


class ModelVersion:
    """A servable model version: `instance_count` predictors behind a scheduler.

    Requests enter through `infer`; `in_flight` counts requests between `enter()` and `leave()`
    so that an unloaded version is closed only after its last request is answered.
    """

    def __init__(self, name, version, path, settings, predictor_factory, metrics=None):
        self.name = name
        self.version = int(version)
        self.version_str = str(version)
        self.path = path
        self.settings = settings
        self._metrics = metrics.for_version(name, str(version)) if metrics is not None else None
        self.statistics = VersionStatistics()
        self.predictors = [predictor_factory(path, settings.num_threads)
                           for _ in range(settings.instance_count)]
        first = self.predictors[0]
        self.inputs = _tensor_specs(_ordered_info(first, "input"), "input", path)
        self.outputs = _tensor_specs(_ordered_info(first, "output"), "output", path)
        self.input_by_name = {spec.name: spec for spec in self.inputs}
        self.output_by_name = {spec.name: spec for spec in self.outputs}
        if settings.max_batch_size > 0:
            if not self.inputs:
                raise ModelConfigError(f"{path}: config max_batch_size={settings.max_batch_size} "
                                       "needs a model with at least one input")
            for spec in self.inputs + self.outputs:
                if not spec.shape or spec.shape[0] not in (-1,):
                    raise ModelConfigError(
                        f"{path}: config max_batch_size={settings.max_batch_size} needs a variable "
                        f"batch dimension (-1) first in every input and output, but '{spec.name}' "
                        f"has shape {list(spec.shape)}")
        self._in_flight = 0
        self._idle = threading.Condition()
        batching = settings.dynamic_batching
        if batching is not None:
            self.scheduler = DynamicBatcher(
                self.predictors, settings.max_batch_size, batching.max_queue_delay_microseconds,
                batching.preferred_batch_size, settings.max_queue_size,
                name=f"{name}-{version}", on_execution=self._record_execution)
        else:
            self.scheduler = DirectScheduler(self.predictors, settings.max_queue_size,
                                             on_execution=self._record_execution)
        if self._metrics is not None:
            self._metrics.track_queue_depth(self.scheduler.queue_depth)

    def _record_execution(self, rows):
        self.statistics.record_execution()
        if self._metrics is not None:
            self._metrics.record_execution(rows if self.settings.max_batch_size > 0 else 1)

    def infer(self, inputs, deadline=None):
        """Runs a validated request (name -> array) and returns its InferResult."""
        started = time.monotonic_ns()
        try:
            result = self.scheduler.submit(inputs, deadline)
        except ServingError as e:
            self.record_failure(e.status, time.monotonic_ns() - started)
            raise
        rows = 1
        if self.settings.max_batch_size > 0 and inputs:
            rows = int(next(iter(inputs.values())).shape[0])
        self.statistics.record_success(result, rows, time.monotonic_ns() - started)
        if self._metrics is not None:
            self._metrics.record_success(result, rows)
        return result

    def record_failure(self, code, total_ns=0):
        """Counts a request of this version answered with gRPC status `code`."""
        self.statistics.record_failure(total_ns)
        if self._metrics is not None:
            self._metrics.record_failure(code)

    def enter(self):
        """Marks a request as in flight (called with the repository lock held)."""
        with self._idle:
            self._in_flight += 1

    def leave(self):
        """Marks a request as answered."""
        with self._idle:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.notify_all()

    def close(self, timeout=None):
        """Waits (bounded) for in-flight requests, then stops the scheduler and drops the
        predictors. Returns True if every request finished in time."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._idle:
            while self._in_flight:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    break
                self._idle.wait(remaining)
            drained = self._in_flight == 0
        self.scheduler.close(None if deadline is None else max(0.0, deadline - time.monotonic()))
        if self._metrics is not None:
            self._metrics.forget()
        self.predictors = []
        return drained


def _ordered_info(predictor, kind):
    """input_info / output_info in the predictor's declared order."""
    info = getattr(predictor, f"{kind}_info")
    names = getattr(predictor, f"{kind}_names", None) or list(info)
    return {name: info[name] for name in names}
