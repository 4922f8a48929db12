"""Prometheus metrics of the serving daemon, per model and version.

    ember_inference_requests_total{model,version}            requests answered successfully
    ember_inference_failures_total{model,version,code}       requests answered with an error
    ember_inference_count_total{model,version}               batch items inferred
    ember_inference_executions_total{model,version}          model runs (one per batch)
    ember_inference_queue_seconds{model,version}             time queued (histogram)
    ember_inference_compute_seconds{model,version}           time in the model (histogram)
    ember_inference_batch_size{model,version}                rows per model run (histogram)
    ember_model_queue_depth{model,version}                   requests waiting right now

    >>> metrics = ServingMetrics()
    >>> metrics.for_version("m", "1").record_failure("NOT_FOUND")
"""
import threading

import prometheus_client

_LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                    0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class ServingMetrics:
    """The daemon's metric families, in their own registry (so several servers can coexist)."""

    def __init__(self, registry=None):
        self.registry = registry or prometheus_client.CollectorRegistry()
        self.lock = threading.Lock()
        self.depth_owners = {}  # (model, version) -> the _VersionSeries whose queue is reported
        labels = ("model", "version")
        self.requests = prometheus_client.Counter(
            "ember_inference_requests", "Inference requests answered successfully.", labels,
            registry=self.registry)
        self.failures = prometheus_client.Counter(
            "ember_inference_failures", "Inference requests answered with an error, by gRPC code.",
            labels + ("code",), registry=self.registry)
        self.inferences = prometheus_client.Counter(
            "ember_inference_count", "Batch items inferred.", labels, registry=self.registry)
        self.executions = prometheus_client.Counter(
            "ember_inference_executions", "Model runs (one per batch).", labels,
            registry=self.registry)
        self.queue_seconds = prometheus_client.Histogram(
            "ember_inference_queue_seconds", "Time a request waited before its model run.", labels,
            buckets=_LATENCY_BUCKETS, registry=self.registry)
        self.compute_seconds = prometheus_client.Histogram(
            "ember_inference_compute_seconds", "Time of the model run a request was part of.",
            labels, buckets=_LATENCY_BUCKETS, registry=self.registry)
        self.batch_size = prometheus_client.Histogram(
            "ember_inference_batch_size", "Rows per model run.", labels, buckets=_BATCH_BUCKETS,
            registry=self.registry)
        self.queue_depth = prometheus_client.Gauge(
            "ember_model_queue_depth", "Requests waiting for a model run.", labels,
            registry=self.registry)

    def for_version(self, model, version):
        """The metric series of one model version, looked up once (labels() is not free)."""
        return _VersionSeries(self, model, version)

    def record_failure(self, model, version, code):
        """Counts one request answered with gRPC status `code` (a name such as "NOT_FOUND")."""
        self.failures.labels(model, version, code).inc()

    def start_http_server(self, port, host="127.0.0.1"):
        """Serves /metrics on host:port; returns (http_server, thread)."""
        return prometheus_client.start_http_server(port, addr=host, registry=self.registry)


class _VersionSeries:
    """Pre-resolved series of one (model, version); what a ModelVersion records into."""

    def __init__(self, metrics, model, version):
        self._metrics, self._labels = metrics, (model, version)
        self._requests = metrics.requests.labels(model, version)
        self._inferences = metrics.inferences.labels(model, version)
        self._executions = metrics.executions.labels(model, version)
        self._queue = metrics.queue_seconds.labels(model, version)
        self._compute = metrics.compute_seconds.labels(model, version)
        self._batch = metrics.batch_size.labels(model, version)

    def record_success(self, result, rows):
        """Counts one answered request that carried `rows` batch items."""
        self._requests.inc()
        self._inferences.inc(rows)
        self._queue.observe(result.queue_ns / 1e9)
        self._compute.observe(
            (result.compute_input_ns + result.compute_infer_ns + result.compute_output_ns) / 1e9)

    def record_execution(self, batch_rows):
        """Counts one model run of `batch_rows` rows."""
        self._executions.inc()
        self._batch.observe(batch_rows)

    def record_failure(self, code):
        """Counts one request answered with gRPC status `code` (a name such as "NOT_FOUND")."""
        self._metrics.failures.labels(*self._labels, code).inc()

    def track_queue_depth(self, depth_function):
        """Reports `depth_function()` as this version's queue depth."""
        with self._metrics.lock:
            self._metrics.depth_owners[self._labels] = self
            self._metrics.queue_depth.labels(*self._labels).set_function(depth_function)

    def forget(self):
        """Drops the queue-depth series unless a reloaded build of the same version took it
        over (counters keep their history)."""
        with self._metrics.lock:
            if self._metrics.depth_owners.get(self._labels) is self:
                del self._metrics.depth_owners[self._labels]
                self._metrics.queue_depth.remove(*self._labels)
