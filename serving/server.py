"""The gRPC server: the KServe v2 `inference.GRPCInferenceService`, grpc.health.v1 and reflection.

    >>> server, port = create_server("models", "127.0.0.1", 0)   # doctest: +SKIP
    >>> server.start()                                            # doctest: +SKIP
    >>> server.stop(grace=10)                                     # doctest: +SKIP

`serve()` (behind `ember serve` and `python -m serving`) adds the Prometheus endpoint, repository
polling and signal handling: SIGTERM or SIGINT stops accepting requests, lets in-flight ones
finish (bounded by the drain timeout) and returns 0.
"""
import concurrent.futures
import gc
import logging
import queue
import signal
import threading
import time

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from serving import codec
from serving.datatypes import config_data_type
from serving.errors import InvalidRequestError, ServingError
from serving.metrics import ServingMetrics
from serving.proto import grpc_service_pb2 as pb
from serving.proto import grpc_service_pb2_grpc as pb_grpc
from serving.proto import model_config_pb2 as config_pb
from serving.repository import ModelRepository

log = logging.getLogger("serving")

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"].full_name
SERVER_NAME = "ember"
# "statistics" makes perf_analyzer read ModelStatistics; ours satisfy its checks (decimal
# versions, growing queue counts, equal compute counts).
EXTENSIONS = ("model_repository", "model_configuration", "statistics")
DEFAULT_MAX_MESSAGE_BYTES = 256 * 1024 * 1024
# Requests of one ModelStreamInfer stream running at once.
STREAM_IN_FLIGHT = 16


def _server_version():
    try:
        from importlib.metadata import version  # noqa: PLC0415
        return version("ember")
    except Exception:  # noqa: BLE001 - not installed as a distribution (source checkout)
        return "0.1.0"


def _stream_error(request, message):
    return pb.ModelStreamInferResponse(
        error_message=message,
        infer_response=pb.ModelInferResponse(model_name=request.model_name,
                                             model_version=request.model_version, id=request.id))


class _StreamAnswer:
    """A ModelStreamInferResponse holding a codec.EncodedResponse, serialized without a copy of
    the response in between."""

    __slots__ = ("_response",)

    def __init__(self, response):
        self._response = response

    def SerializeToString(self):  # noqa: N802 - the protobuf method name
        return self._response.serialize_as_stream_response()


def _serialize(message):
    """Response serializer for protobuf messages and the encoded stand-ins above."""
    return message.SerializeToString()


def _abort(context, error):
    context.abort(getattr(grpc.StatusCode, error.status), str(error))


class InferenceServicer(pb_grpc.GRPCInferenceServiceServicer):
    """Answers the protocol's RPCs from a ModelRepository; the logic lives in the repository,
    the schedulers and serving.codec."""

    def __init__(self, repository, readiness, stream_workers=64):
        self._repository = repository
        self._readiness = readiness  # callable: True while the server takes inference requests
        self._version = _server_version()
        self._stream_pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=stream_workers, thread_name_prefix="stream")

    # -- health-style ----------------------------------------------------------------------------

    def ServerLive(self, request, context):
        """Always live while the process answers."""
        return pb.ServerLiveResponse(live=True)

    def ServerReady(self, request, context):
        """Ready once the repository is loaded, until SIGTERM."""
        return pb.ServerReadyResponse(ready=self._readiness())

    def ModelReady(self, request, context):
        """Whether a model (version) can take requests now; unknown models are not ready."""
        return pb.ModelReadyResponse(
            ready=self._readiness() and self._repository.is_ready(request.name, request.version))

    def ServerMetadata(self, request, context):
        """Server name, version and protocol extensions."""
        return pb.ServerMetadataResponse(name=SERVER_NAME, version=self._version,
                                         extensions=EXTENSIONS)

    # -- model description -----------------------------------------------------------------------

    def ModelMetadata(self, request, context):
        """Loaded versions, platform and tensor names/datatypes/shapes (batch dim included)."""
        try:
            version = self._repository.get(request.name, request.version)
            versions = self._repository.ready_versions(request.name)
        except ServingError as e:
            _abort(context, e)
        response = pb.ModelMetadataResponse(name=version.name, platform=version.settings.platform,
                                            versions=[str(v) for v in versions])
        for specs, field in ((version.inputs, response.inputs), (version.outputs, response.outputs)):
            for spec in specs:
                field.add(name=spec.name, datatype=spec.datatype, shape=spec.shape)
        return response

    def ModelConfig(self, request, context):
        """Triton's ModelConfig for the model (see model_config)."""
        try:
            version = self._repository.get(request.name, request.version)
        except ServingError as e:
            _abort(context, e)
        return pb.ModelConfigResponse(config=model_config(version))

    def ModelStatistics(self, request, context):
        """Per-version request counts and durations (Triton's semantics)."""
        try:
            if request.name:
                self._repository.ready_versions(request.name)  # NOT_FOUND for unknown names
                if request.version:
                    versions = [self._repository.get(request.name, request.version)]
                else:
                    versions = self._repository.all_versions(request.name)
            else:
                versions = self._repository.all_versions()
        except ServingError as e:
            _abort(context, e)
        response = pb.ModelStatisticsResponse()
        for version in versions:
            snapshot = version.statistics.snapshot()
            stats = response.model_stats.add(
                name=version.name, version=version.version_str,
                last_inference=snapshot["last_inference_ms"],
                inference_count=snapshot["inference_count"],
                execution_count=snapshot["execution_count"])
            for field, (count, ns) in snapshot["durations"].items():
                getattr(stats.inference_stats, field).count = count
                getattr(stats.inference_stats, field).ns = ns
        return response

    # -- inference -------------------------------------------------------------------------------

    def _infer(self, request, time_remaining):
        """Runs `request`; returns a codec.EncodedResponse."""
        version = self._repository.enter(request.model_name, request.model_version)
        try:
            try:
                feed, output_names = codec.decode_request(request, version)
            except InvalidRequestError as e:
                version.record_failure(e.status)
                raise
            deadline = codec.request_deadline(request, time_remaining)
            result = version.infer(feed, deadline)
            return codec.encode_response_parts(pb.ModelInferResponse(), version, result.outputs,
                                               output_names, request.id)
        finally:
            version.leave()

    def ModelInfer(self, request, context):
        """Runs one inference request."""
        try:
            return self._infer(request, context.time_remaining())
        except ServingError as e:
            _abort(context, e)

    def ModelStreamInfer(self, request_iterator, context):
        """Runs the stream's requests concurrently (up to STREAM_IN_FLIGHT at a time, so they
        can share batches) and streams each answer as it completes, matched by request id;
        errors go in error_message."""
        answers = queue.Queue()
        slots = threading.Semaphore(STREAM_IN_FLIGHT)

        def answer(request):
            try:
                response = _StreamAnswer(self._infer(request, context.time_remaining()))
            except ServingError as e:
                response = _stream_error(request, f"{e.status}: {e}")
            except Exception as e:  # noqa: BLE001 - one bad request must not end the stream
                log.exception("stream request failed")
                response = _stream_error(request, f"INTERNAL: {type(e).__name__}: {e}")
            answers.put(response)
            slots.release()

        def read():
            try:
                for request in request_iterator:
                    slots.acquire()
                    self._stream_pool.submit(answer, request)
            except Exception:  # noqa: BLE001 - the client went away: finish what was accepted
                pass
            finally:
                for _ in range(STREAM_IN_FLIGHT):
                    slots.acquire()
                answers.put(None)

        threading.Thread(target=read, name="stream-reader", daemon=True).start()
        while (response := answers.get()) is not None:
            yield response

    # -- repository ------------------------------------------------------------------------------

    def RepositoryIndex(self, request, context):
        """Every model and version with its state and, if unavailable, why."""
        response = pb.RepositoryIndexResponse()
        for name, version, state, reason in self._repository.index(ready_only=request.ready):
            response.models.add(name=name, version=version, state=state, reason=reason)
        return response

    def RepositoryModelLoad(self, request, context):
        """Loads or reloads a model (parameter 'config' overrides config.json)."""
        override = None
        for key, parameter in request.parameters.items():
            if key == "config":
                if parameter.WhichOneof("parameter_choice") != "string_param":
                    _abort(context, InvalidRequestError("parameter 'config' must be a string "
                                                        "holding the config.json content"))
                override = parameter.string_param
            elif key.startswith("file:"):
                _abort(context, InvalidRequestError(
                    f"parameter '{key}': uploading model files is not supported; place them in "
                    "the model repository"))
        try:
            self._repository.load_model(request.model_name, config_override=override)
        except ServingError as e:
            _abort(context, e)
        return pb.RepositoryModelLoadResponse()

    def RepositoryModelUnload(self, request, context):
        """Stops serving a model; accepted requests still complete."""
        try:
            self._repository.unload_model(request.model_name)
        except ServingError as e:
            _abort(context, e)
        return pb.RepositoryModelUnloadResponse()


class _HandlerRecorder:
    """Stands in for a grpc.Server to capture the method handlers the generated code registers."""

    def __init__(self):
        self.service, self.handlers = None, None

    def add_generic_rpc_handlers(self, handlers):
        """Ignored: the handlers are registered from add_registered_method_handlers' dict."""

    def add_registered_method_handlers(self, service, handlers):
        """Keeps the service name and its method -> handler dict."""
        self.service, self.handlers = service, dict(handlers)


def _parse_model_infer_request(data):
    return codec.parse_infer_request(data, pb.ModelInferRequest)


def _add_inference_service(servicer, grpc_server):
    """Registers `servicer` like the generated add_GRPCInferenceServiceServicer_to_server, except
    that ModelInfer requests are parsed without copying their raw input contents and inference
    answers are serialized from codec.EncodedResponse (output data copied once)."""
    recorder = _HandlerRecorder()
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(servicer, recorder)
    handlers = recorder.handlers
    handlers["ModelInfer"] = handlers["ModelInfer"]._replace(
        request_deserializer=_parse_model_infer_request, response_serializer=_serialize)
    handlers["ModelStreamInfer"] = handlers["ModelStreamInfer"]._replace(
        response_serializer=_serialize)
    grpc_server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(recorder.service, handlers),))
    grpc_server.add_registered_method_handlers(recorder.service, handlers)


def model_config(version):
    """Triton's ModelConfig for a ModelVersion (batch dimension left out of dims when
    max_batch_size > 0, as Triton does)."""
    settings = version.settings
    config = config_pb.ModelConfig(name=version.name, platform=settings.platform, backend="ember",
                                   max_batch_size=settings.max_batch_size)
    skip = 1 if settings.max_batch_size > 0 else 0
    for spec in version.inputs:
        config.input.add(name=spec.name, data_type=config_data_type(spec.datatype), dims=spec.shape[skip:])
    for spec in version.outputs:
        config.output.add(name=spec.name, data_type=config_data_type(spec.datatype), dims=spec.shape[skip:])
    if settings.dynamic_batching is not None:
        config.dynamic_batching.max_queue_delay_microseconds = \
            settings.dynamic_batching.max_queue_delay_microseconds
        config.dynamic_batching.preferred_batch_size.extend(settings.dynamic_batching.preferred_batch_size)
    config.instance_group.add(name=f"{version.name}_cpu", kind=config_pb.ModelInstanceGroup.KIND_CPU,
                              count=settings.instance_count)
    return config


class InferenceServer:
    """A gRPC server serving one model repository. Build it with `create_server`."""

    def __init__(self, grpc_server, repository, health_servicer, address):
        self.grpc_server = grpc_server
        self.repository = repository
        self.health = health_servicer
        self.address = address
        self._serving = False
        self._draining = False

    def ready(self):
        """True while the server takes inference requests."""
        return self._serving and not self._draining

    def start(self, serving=True):
        """Starts answering RPCs. With `serving` False, health checks and ServerReady report
        not serving until `set_serving()` (e.g. while the repository loads)."""
        self.grpc_server.start()
        if serving:
            self.set_serving()
        else:
            for service in ("", SERVICE_NAME):
                self.health.set(service, health_pb2.HealthCheckResponse.NOT_SERVING)

    def set_serving(self):
        """Reports SERVING to health checks and ready to ServerReady."""
        self._serving = True
        for service in ("", SERVICE_NAME):
            self.health.set(service, health_pb2.HealthCheckResponse.SERVING)

    def stop(self, grace=30.0):
        """Reports NOT_SERVING, refuses new RPCs, waits up to `grace` seconds for in-flight ones,
        then closes every model version. Returns True if everything finished in time."""
        started = time.monotonic()
        self._draining = True
        self.health.enter_graceful_shutdown()
        finished = self.grpc_server.stop(grace).wait(grace + 1.0)
        remaining = max(0.0, grace - (time.monotonic() - started))
        self.repository.close(remaining)
        return finished

    def wait_for_termination(self, timeout=None):
        """Blocks until the server stops (or `timeout` seconds pass)."""
        return self.grpc_server.wait_for_termination(timeout)


def create_server(repository, host="127.0.0.1", port=8001, *, max_workers=128,
                  max_message_bytes=DEFAULT_MAX_MESSAGE_BYTES, predictor_factory=None,
                  metrics=None, drain_timeout=30.0, load=True, grpc_options=()):
    """Builds (not starts) a server for `repository` (a directory path or a ModelRepository)
    bound to host:port; port 0 picks a free port. Returns (InferenceServer, bound port).

    `max_message_bytes` caps request and response sizes (larger requests are answered
    RESOURCE_EXHAUSTED); `max_workers` bounds concurrently handled RPCs. With `load`, every model
    in the repository is loaded before returning. `grpc_options` are extra (key, value) channel
    arguments for the gRPC server.
    """
    if not isinstance(repository, ModelRepository):
        repository = ModelRepository(repository, predictor_factory=predictor_factory,
                                     metrics=metrics, drain_timeout=drain_timeout)
    if load:
        repository.load_all()
    options = [("grpc.max_receive_message_length", max_message_bytes),
               ("grpc.max_send_message_length", max_message_bytes),
               ("grpc.so_reuseport", 0), *grpc_options]
    grpc_server = grpc.server(
        concurrent.futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="rpc"),
        options=options)
    health_servicer = health.HealthServicer(experimental_non_blocking=True)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, grpc_server)
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    server = InferenceServer(grpc_server, repository, health_servicer, address)
    _add_inference_service(InferenceServicer(repository, server.ready), grpc_server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), grpc_server)
    try:
        bound = grpc_server.add_insecure_port(address)
    except RuntimeError as e:
        raise OSError(f"cannot listen on {address}: {e}") from None
    if not bound:
        raise OSError(f"cannot listen on {address}")
    server.address = f"[{host}]:{bound}" if ":" in host else f"{host}:{bound}"
    return server, bound


def serve(model_repository, host="127.0.0.1", port=8001, metrics_port=8002, poll_interval=5.0,
          drain_timeout=30.0, max_message_bytes=DEFAULT_MAX_MESSAGE_BYTES, max_workers=128,
          ready_message=print):
    """Runs the daemon until SIGTERM/SIGINT, then drains and returns 0.

    `metrics_port` None disables the Prometheus endpoint (0 picks a free port);
    `poll_interval` 0 disables repository polling. `ready_message` receives one line naming the
    bound addresses once the server accepts requests.
    """
    stop = threading.Event()

    def request_stop(signum, frame):
        log.info("received %s; draining", signal.Signals(signum).name)
        stop.set()

    # Without the endpoint nobody can read the metrics: requests skip recording them.
    metrics = ServingMetrics() if metrics_port is not None else None
    server, bound = create_server(model_repository, host, port, max_workers=max_workers,
                                  max_message_bytes=max_message_bytes, metrics=metrics,
                                  drain_timeout=drain_timeout, load=False)
    # What is loaded so far (grpc, protobuf, numpy: tens of thousands of objects) lives as long as
    # the process. Frozen, the collector skips it: a full collection, which every request's
    # allocations eventually trigger on some request, takes ~0.2 ms instead of ~15 ms. Models
    # are loaded afterwards, so unloaded versions are still collected.
    gc.collect()
    gc.freeze()
    http_server = None
    previous = {}
    try:
        metrics_address = "off"
        if metrics_port is not None:
            http_server, _ = metrics.start_http_server(metrics_port, host)
            metrics_address = f"{host}:{http_server.server_port}"
        previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        # Listen first (health answers NOT_SERVING, ServerLive true), load, then report SERVING.
        server.start(serving=False)
        server.repository.load_all()
        server.set_serving()
        if poll_interval and poll_interval > 0:
            server.repository.start_polling(poll_interval)
        if ready_message is not None:
            ready_message(f"ember serve: listening on {server.address} (metrics {metrics_address}, "
                          f"repository {server.repository.root})")
        while not stop.wait(0.5):
            pass
    finally:
        drained = server.stop(drain_timeout)
        if http_server is not None:
            http_server.shutdown()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if drained:
        log.info("stopped after draining in-flight requests")
    else:
        log.warning("stopped: drain timeout (%.1f s) reached with requests still in flight",
                    drain_timeout)
    return 0
