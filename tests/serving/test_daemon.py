"""The serving daemon end to end: a real `python -m serving` subprocess serving real
graphruntime.Predictor models (NetBuilder nets), driven by Triton's own client.

Oracle: graphruntime.Predictor run in this process on the same model file and input.
"""
import asyncio
import os
import signal
import shutil
import time
import urllib.request

import numpy as np
import pytest

graphruntime = pytest.importorskip("graphruntime")
if not hasattr(graphruntime, "Predictor"):
    pytest.skip("graphruntime.Predictor is not available", allow_module_level=True)
tritonclient_grpc = pytest.importorskip("tritonclient.grpc")
import grpc  # noqa: E402
import tritonclient.grpc.aio as triton_aio  # noqa: E402
from grpc_health.v1 import health_pb2, health_pb2_grpc  # noqa: E402
from tritonclient.grpc import service_pb2, service_pb2_grpc  # noqa: E402
from tritonclient.utils import InferenceServerException  # noqa: E402

from daemon_util import (Daemon, linear_net, pair_net, slow_net, wait_until,  # noqa: E402
                         write_config, write_version)

MAX_MESSAGE_BYTES = 4 * 1024 * 1024
SLOW_ROWS = 32
SLOW_WIDTH = 1024


def calibrated_slow_net(min_seconds=0.1):
    """A slow_net that takes at least `min_seconds` per run of SLOW_ROWS rows on this machine."""
    width, layers = SLOW_WIDTH, 4
    x = np.ones((SLOW_ROWS, width), np.float32)
    while True:
        net = slow_net(width, layers)
        predictor = graphruntime.Predictor(net, num_threads=1)
        predictor.run({"x": x})
        started = time.perf_counter()
        predictor.run({"x": x})
        elapsed = time.perf_counter() - started
        if elapsed >= min_seconds or layers >= 8192:
            return net
        layers = min(8192, max(layers * 2, int(layers * min_seconds / max(elapsed, 1e-6)) + 1))


@pytest.fixture(scope="module")
def repository(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("serving") / "models")
    os.makedirs(root)
    batching = {"max_batch_size": 16, "instance_count": 2,
                "dynamic_batching": {"max_queue_delay_microseconds": 2000}}
    write_version(root, "linear", 1, linear_net(16, 8, seed=1))
    write_config(root, "linear", batching)
    write_version(root, "hot", 1, linear_net(16, 8, seed=11))
    write_config(root, "hot", batching)
    write_version(root, "pair", 1, pair_net())
    write_version(root, "slow", 1, calibrated_slow_net())
    write_config(root, "slow", {"max_queue_size": 2, "instance_count": 1, "num_threads": 1})
    # Models that cannot be served: they are reported, and do not stop the others.
    write_version(root, "misconfigured", 1, pair_net())
    with open(os.path.join(root, "misconfigured", "config.json"), "w") as f:
        f.write('{"max_batch": 4}')
    os.makedirs(os.path.join(root, "corrupt", "1"))
    with open(os.path.join(root, "corrupt", "1", "model.pb"), "wb") as f:
        f.write(b"\x08\x96\x01 this is not a NetDef \xff\xff")
    write_version(root, "unbatchable", 1, slow_net(4, 1, batch=2))
    write_config(root, "unbatchable", {"max_batch_size": 4})
    # int8 .ember models: one quantized and exported, one corrupted (truncated, bits flipped).
    mobile = pytest.importorskip("mobile")
    calibration = [{"x": np.random.default_rng(i).standard_normal((8, 16)).astype(np.float32)}
                   for i in range(4)]
    os.makedirs(os.path.join(root, "int8", "1"))
    ember_path = os.path.join(root, "int8", "1", "model.ember")
    mobile.export(mobile.quantize(linear_net(16, 8, seed=21), calibration, progress=False), ember_path)
    with open(ember_path, "rb") as f:
        damaged = bytearray(f.read())
    for i in range(64, len(damaged), 97):
        damaged[i] ^= 0x5A
    os.makedirs(os.path.join(root, "corrupt_int8", "1"))
    with open(os.path.join(root, "corrupt_int8", "1", "model.ember"), "wb") as f:
        f.write(bytes(damaged[: len(damaged) * 2 // 3]))
    return root


@pytest.fixture(scope="module")
def daemon(repository):
    server = Daemon(repository, "--poll-interval", "0.5", "--max-message-bytes",
                    str(MAX_MESSAGE_BYTES))
    yield server
    code = server.terminate()
    assert code == 0, server.log()


@pytest.fixture(scope="module")
def client(daemon):
    return tritonclient_grpc.InferenceServerClient(daemon.url)


def predictor_for(repository, model, version):
    return graphruntime.Predictor(os.path.join(repository, model, str(version), "model.pb"))


def infer_input(name, array):
    from tritonclient.utils import np_to_triton_dtype

    tensor = tritonclient_grpc.InferInput(name, list(array.shape), np_to_triton_dtype(array.dtype))
    tensor.set_data_from_numpy(array)
    return tensor


def assert_status(info, code, *fragments):
    assert info.value.status() == f"StatusCode.{code}", info.value
    for fragment in fragments:
        assert fragment in info.value.message(), info.value.message()


def test_health_reports_serving_and_reflection_lists_services(daemon):
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    with grpc.insecure_channel(daemon.url) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "inference.GRPCInferenceService"):
            response = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert response.status == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.RpcError) as info:
            health.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=5)
        assert info.value.code() == grpc.StatusCode.NOT_FOUND
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        (answer,) = list(stub.ServerReflectionInfo(iter([request]), timeout=5))
        names = {s.name for s in answer.list_services_response.service}
        assert {"inference.GRPCInferenceService", "grpc.health.v1.Health"} <= names


def test_server_and_model_description_rpcs(client):
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("linear") and client.is_model_ready("linear", "1")
    assert not client.is_model_ready("linear", "7") and not client.is_model_ready("nope")
    metadata = client.get_server_metadata()
    assert metadata.name == "ember" and "statistics" in metadata.extensions
    model = client.get_model_metadata("linear")
    assert (model.name, list(model.versions)) == ("linear", ["1"])
    assert [(t.name, t.datatype, list(t.shape)) for t in model.inputs] == [("x", "FP32", [-1, 16])]
    assert [(t.name, t.datatype, list(t.shape)) for t in model.outputs] == [("y", "FP32", [-1, 8])]
    config = client.get_model_config("linear").config
    assert config.max_batch_size == 16
    assert [(i.name, i.data_type, list(i.dims)) for i in config.input] == [("x", 11, [16])]  # TYPE_FP32
    assert [(o.name, list(o.dims)) for o in config.output] == [("y", [8])]
    assert config.dynamic_batching.max_queue_delay_microseconds == 2000
    assert config.instance_group[0].count == 2
    pair = client.get_model_config("pair").config
    assert pair.max_batch_size == 0 and not pair.HasField("dynamic_batching")
    assert [list(i.dims) for i in pair.input] == [[-1, 4], [-1, 4]]
    index = {(m.name, m.version): m.state for m in client.get_model_repository_index().models}
    assert index[("linear", "1")] == "READY" and index[("slow", "1")] == "READY"


def test_models_that_cannot_load_are_reported_and_do_not_stop_the_others(client):
    index = {(m.name, m.version): (m.state, m.reason) for m in client.get_model_repository_index().models}
    state, reason = index[("misconfigured", "")]
    assert state == "UNAVAILABLE" and "unknown key(s) ['max_batch']" in reason
    state, reason = index[("corrupt", "1")]
    assert state == "UNAVAILABLE" and reason
    assert not client.is_model_ready("corrupt") and not client.is_model_ready("misconfigured")
    with pytest.raises(InferenceServerException) as info:
        client.infer("corrupt", [infer_input("x", np.ones((1, 4), np.float32))])
    assert_status(info, "UNAVAILABLE", "model 'corrupt' is not ready")
    # The net has a fixed first dimension (-1 is required for a batch dimension).
    state, reason = index[("unbatchable", "1")]
    assert state == "UNAVAILABLE" and "max_batch_size=4 needs a variable batch dimension" in reason
    assert client.is_model_ready("linear")


def test_infer_equals_predictor_and_echoes_the_id(client, repository):
    predictor = predictor_for(repository, "linear", 1)
    rng = np.random.default_rng(5)
    for rows in (1, 3, 16):
        x = rng.standard_normal((rows, 16)).astype(np.float32)
        result = client.infer("linear", [infer_input("x", x)], request_id=f"req-{rows}")
        response = result.get_response()
        assert (response.id, response.model_name, response.model_version) == (f"req-{rows}", "linear", "1")
        np.testing.assert_array_equal(result.as_numpy("y"), predictor.run({"x": x})["y"])
    pair = predictor_for(repository, "pair", 1)
    a, b = rng.standard_normal((2, 3, 4)).astype(np.float32)
    expected = pair.run({"a": a, "b": b})
    result = client.infer("pair", [infer_input("a", a), infer_input("b", b)],
                          outputs=[tritonclient_grpc.InferRequestedOutput("product")])
    assert [o.name for o in result.get_response().outputs] == ["product"]
    np.testing.assert_array_equal(result.as_numpy("product"), expected["product"])
    result = client.infer("pair", [infer_input("a", a), infer_input("b", b)], model_version="1")
    np.testing.assert_array_equal(result.as_numpy("sum"), expected["sum"])


def test_typed_contents_and_streaming(daemon, client, repository):
    predictor = predictor_for(repository, "linear", 1)
    x = np.random.default_rng(6).standard_normal((2, 16)).astype(np.float32)
    request = service_pb2.ModelInferRequest(model_name="linear", id="typed")
    tensor = request.inputs.add(name="x", datatype="FP32", shape=[2, 16])
    tensor.contents.fp32_contents.extend(x.ravel().tolist())
    with grpc.insecure_channel(daemon.url) as channel:
        response = service_pb2_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=10)
    assert response.id == "typed" and list(response.outputs[0].shape) == [2, 8]
    y = np.frombuffer(response.raw_output_contents[0], np.float32).reshape(2, 8)
    np.testing.assert_array_equal(y, predictor.run({"x": x})["y"])

    results = []
    before = client.get_inference_statistics("linear", "1").model_stats[0].execution_count
    client.start_stream(callback=lambda result, error: results.append((result, error)))
    inputs = [np.full((1, 16), i, np.float32) for i in range(24)]
    for i, x in enumerate(inputs):
        client.async_stream_infer("linear", [infer_input("x", x)], request_id=str(i))
    client.async_stream_infer("linear", [infer_input("x", np.ones((1, 3), np.float32))], request_id="bad")
    assert wait_until(lambda: len(results) == 25)
    client.stop_stream()
    executions = client.get_inference_statistics("linear", "1").model_stats[0].execution_count - before
    assert executions < 24, "stream requests were run one by one, never batched"
    by_id = {}
    for result, error in results:
        if error is None:
            by_id[result.get_response().id] = result.as_numpy("y")
        else:
            by_id["bad"] = error
    for i, x in enumerate(inputs):  # batched with others: equal up to summation order
        np.testing.assert_allclose(by_id[str(i)], predictor.run({"x": x})["y"], rtol=1e-5, atol=1e-5)
    assert "INVALID_ARGUMENT" in str(by_id["bad"]) and "shape [1, 3]" in str(by_id["bad"])


def test_64_concurrent_async_requests_are_batched_and_correct(daemon, client, repository):
    predictor = predictor_for(repository, "linear", 1)
    rng = np.random.default_rng(7)
    inputs = [rng.standard_normal((int(rng.integers(1, 5)), 16)).astype(np.float32) for _ in range(64)]
    before = client.get_inference_statistics("linear", "1").model_stats[0]

    async def run_all():
        async with triton_aio.InferenceServerClient(daemon.url) as aio_client:
            return await asyncio.gather(*[
                aio_client.infer("linear", [infer_input("x", x)], request_id=str(i))
                for i, x in enumerate(inputs)])

    results = asyncio.run(run_all())
    for i, (x, result) in enumerate(zip(inputs, results)):
        assert result.get_response().id == str(i)
        np.testing.assert_allclose(result.as_numpy("y"), predictor.run({"x": x})["y"],
                                   rtol=1e-5, atol=1e-5)
    after = client.get_inference_statistics("linear", "1").model_stats[0]
    assert after.inference_stats.success.count - before.inference_stats.success.count == 64
    assert after.inference_count - before.inference_count == sum(x.shape[0] for x in inputs)
    executions = after.execution_count - before.execution_count
    assert 1 <= executions < 64, "concurrent requests were never merged into a batch"
    stats = after.inference_stats
    assert stats.compute_input.count == stats.compute_infer.count == stats.compute_output.count


def test_bad_requests_get_clear_statuses_and_the_daemon_keeps_serving(daemon, client, repository):
    x = np.ones((2, 16), np.float32)
    with pytest.raises(InferenceServerException) as info:
        client.infer("nope", [infer_input("x", x)])
    assert_status(info, "NOT_FOUND", "unknown model 'nope'")
    with pytest.raises(InferenceServerException) as info:
        client.infer("linear", [infer_input("x", x)], model_version="9")
    assert_status(info, "NOT_FOUND", "no version 9")
    with pytest.raises(InferenceServerException) as info:
        client.infer("pair", [infer_input("a", np.ones((1, 4), np.float32))])
    assert_status(info, "INVALID_ARGUMENT", "missing input 'b'")
    with pytest.raises(InferenceServerException) as info:
        client.infer("linear", [infer_input("x", x.astype(np.float64))])
    assert_status(info, "INVALID_ARGUMENT", "input 'x'", "datatype FP64", "FP32")
    with pytest.raises(InferenceServerException) as info:
        client.infer("linear", [infer_input("x", np.ones((2, 15), np.float32))])
    assert_status(info, "INVALID_ARGUMENT", "input 'x'", "shape [2, 15]", "[-1, 16]")
    with pytest.raises(InferenceServerException) as info:
        client.infer("linear", [infer_input("x", np.ones((17, 16), np.float32))])
    assert_status(info, "INVALID_ARGUMENT", "batch size 17", "max_batch_size=16")
    with pytest.raises(InferenceServerException) as info:
        client.infer("linear", [infer_input("x", x), infer_input("z", x)])
    assert_status(info, "INVALID_ARGUMENT", "unknown input 'z'")
    with pytest.raises(InferenceServerException) as info:
        client.infer("linear", [infer_input("x", x)],
                     outputs=[tritonclient_grpc.InferRequestedOutput("nothing")])
    assert_status(info, "INVALID_ARGUMENT", "unknown output 'nothing'")
    # Byte size not matching the shape: Triton's client cannot produce that, so send it raw.
    request = service_pb2.ModelInferRequest(model_name="linear")
    request.inputs.add(name="x", datatype="FP32", shape=[2, 16])
    request.raw_input_contents.append(b"\0" * (2 * 16 * 4 - 4))
    with grpc.insecure_channel(daemon.url) as channel:
        with pytest.raises(grpc.RpcError) as rpc_info:
            service_pb2_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=10)
    assert rpc_info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "raw data has 124 bytes, but shape [2, 16] of FP32 needs 128" in rpc_info.value.details()
    # Over the message size limit.
    big = np.zeros((MAX_MESSAGE_BYTES // 64 + 16, 16), np.float32)
    with pytest.raises(InferenceServerException) as info:
        client.infer("linear", [infer_input("x", big)])
    assert_status(info, "RESOURCE_EXHAUSTED")
    # Still serving, with correct answers.
    result = client.infer("linear", [infer_input("x", x)])
    np.testing.assert_array_equal(result.as_numpy("y"), predictor_for(repository, "linear", 1).run({"x": x})["y"])
    assert client.is_server_ready()


def test_full_queue_answers_resource_exhausted(daemon, repository):
    predictor = predictor_for(repository, "slow", 1)
    x = np.random.default_rng(8).standard_normal((SLOW_ROWS, SLOW_WIDTH)).astype(np.float32)
    expected = predictor.run({"x": x})["y"]

    async def run_all():
        async with triton_aio.InferenceServerClient(daemon.url) as aio_client:
            return await asyncio.gather(*[aio_client.infer("slow", [infer_input("x", x)])
                                          for _ in range(16)], return_exceptions=True)

    results = asyncio.run(run_all())
    rejected = [r for r in results if isinstance(r, InferenceServerException)]
    answered = [r for r in results if not isinstance(r, Exception)]
    assert len(rejected) + len(answered) == 16, results
    assert rejected and answered
    for error in rejected:
        assert error.status() == "StatusCode.RESOURCE_EXHAUSTED" and "queue is full" in error.message()
    for result in answered:
        np.testing.assert_array_equal(result.as_numpy("y"), expected)


def queue_depth(daemon, model):
    return scrape(daemon).get(
        ("ember_model_queue_depth", frozenset({"model": model, "version": "1"}.items())), 0.0)


def test_expired_request_is_dropped_with_deadline_exceeded(daemon, client, repository):
    x = np.ones((SLOW_ROWS, SLOW_WIDTH), np.float32)
    before = client.get_inference_statistics("slow", "1").model_stats[0].execution_count

    async def run():
        async with triton_aio.InferenceServerClient(daemon.url) as aio_client:
            # One request runs, one waits: the instance is busy for a while.
            busy = [asyncio.ensure_future(aio_client.infer("slow", [infer_input("x", x)]))
                    for _ in range(2)]
            assert await asyncio.to_thread(wait_until, lambda: queue_depth(daemon, "slow") >= 1, 10.0, 0.005)
            # `timeout` is the protocol's per-request timeout parameter, in microseconds.
            late = aio_client.infer("slow", [infer_input("x", x)], timeout=2000)
            return await asyncio.gather(*busy, late, return_exceptions=True)

    *busy, late = asyncio.run(run())
    assert not any(isinstance(r, Exception) for r in busy), busy
    assert isinstance(late, InferenceServerException)
    assert late.status() == "StatusCode.DEADLINE_EXCEEDED" and "not run" in late.message()
    after = client.get_inference_statistics("slow", "1").model_stats[0].execution_count
    assert after - before == 2


def test_hot_load_of_a_new_version_under_load_fails_no_request(daemon, client, repository):
    predictors = {"1": predictor_for(repository, "hot", 1)}
    rng = np.random.default_rng(9)
    inputs = [rng.standard_normal((int(rng.integers(1, 4)), 16)).astype(np.float32) for _ in range(240)]

    async def load_generator(aio_client):
        results = []
        for start in range(0, len(inputs), 8):
            batch = inputs[start:start + 8]
            results += await asyncio.gather(*[aio_client.infer("hot", [infer_input("x", x)]) for x in batch])
            await asyncio.sleep(0.005)
        return results

    async def run():
        async with triton_aio.InferenceServerClient(daemon.url) as aio_client:
            load = asyncio.ensure_future(load_generator(aio_client))
            await asyncio.sleep(0.1)
            await asyncio.to_thread(write_version, repository, "hot", 2, linear_net(16, 8, seed=12))
            await aio_client.load_model("hot")
            return await load

    results = asyncio.run(run())  # any failed request raises here
    predictors["2"] = predictor_for(repository, "hot", 2)
    versions = [r.get_response().model_version for r in results]
    assert set(versions) == {"1", "2"}, "the load never overlapped the new version"
    assert versions.index("2") > 0 and "1" not in versions[versions.index("2") + 8:]
    for x, result in zip(inputs, results):
        expected = predictors[result.get_response().model_version].run({"x": x})["y"]
        np.testing.assert_allclose(result.as_numpy("y"), expected, rtol=1e-5, atol=1e-5)
    assert list(client.get_model_metadata("hot").versions) == ["1", "2"]
    x = inputs[0]
    np.testing.assert_allclose(client.infer("hot", [infer_input("x", x)], model_version="1").as_numpy("y"),
                               predictors["1"].run({"x": x})["y"], rtol=1e-5, atol=1e-5)
    # Polling picks up version 3 without an explicit load; removing version 1 unloads it.
    write_version(repository, "hot", 3, linear_net(16, 8, seed=13))
    shutil.rmtree(os.path.join(repository, "hot", "1"))
    assert wait_until(lambda: list(client.get_model_metadata("hot").versions) == ["2", "3"])
    result = client.infer("hot", [infer_input("x", x)])
    assert result.get_response().model_version == "3"
    np.testing.assert_allclose(result.as_numpy("y"), predictor_for(repository, "hot", 3).run({"x": x})["y"],
                               rtol=1e-5, atol=1e-5)


def test_unload_and_load_through_the_repository_api(client):
    x = np.ones((1, 4), np.float32)
    client.unload_model("pair")
    assert wait_until(lambda: not client.is_model_ready("pair"))
    with pytest.raises(InferenceServerException) as info:
        client.infer("pair", [infer_input("a", x), infer_input("b", x)])
    assert_status(info, "UNAVAILABLE", "model 'pair' is not ready: unloaded")
    index = {(m.name, m.version): (m.state, m.reason) for m in client.get_model_repository_index().models}
    assert index[("pair", "")] == ("UNAVAILABLE", "unloaded")
    time.sleep(0.7)  # a poll happens meanwhile and must not bring it back
    assert not client.is_model_ready("pair")
    client.load_model("pair")
    assert client.is_model_ready("pair")
    np.testing.assert_array_equal(
        client.infer("pair", [infer_input("a", x), infer_input("b", x)]).as_numpy("sum"), x + x)
    with pytest.raises(InferenceServerException) as info:
        client.load_model("nope")
    assert_status(info, "NOT_FOUND", "no model 'nope'")
    with pytest.raises(InferenceServerException) as info:
        client.load_model("pair", config='{"max_batch_size": "eight"}')
    assert_status(info, "INVALID_ARGUMENT", "'max_batch_size' must be an integer")
    assert client.is_model_ready("pair")


def scrape(daemon):
    """{(sample name, frozenset of label pairs): value} from the daemon's /metrics."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(daemon.metrics_url, timeout=5) as response:
        text = response.read().decode()
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def test_prometheus_metrics_count_requests_failures_and_batches(daemon, client):
    before = scrape(daemon)
    x = np.ones((3, 4), np.float32)
    for _ in range(3):
        client.infer("pair", [infer_input("a", x), infer_input("b", x)])
    with pytest.raises(InferenceServerException):
        client.infer("pair", [infer_input("a", x)])
    after = scrape(daemon)

    def grew(name, **labels):
        key = (name, frozenset(dict(model="pair", version="1", **labels).items()))
        assert key in after, f"{key} not in /metrics"
        return after[key] - before.get(key, 0.0)

    assert grew("ember_inference_requests_total") == 3
    assert grew("ember_inference_failures_total", code="INVALID_ARGUMENT") == 1
    assert grew("ember_inference_executions_total") == 3
    assert grew("ember_inference_count_total") == 3  # max_batch_size 0: one item per request
    assert grew("ember_inference_queue_seconds_count") == 3
    assert grew("ember_inference_compute_seconds_count") == 3
    assert grew("ember_inference_batch_size_bucket", le="1.0") == 3
    assert grew("ember_model_queue_depth") == 0


def test_sigterm_drains_in_flight_requests_and_exits_0(repository, tmp_path):
    # Started through the `ember serve` subcommand (the module fixture uses python -m serving).
    server = Daemon(repository, "--poll-interval", "0", log_path=str(tmp_path / "drain.log"),
                    entry="ember serve")
    try:
        x = np.ones((SLOW_ROWS, SLOW_WIDTH), np.float32)
        expected = predictor_for(repository, "slow", 1).run({"x": x})["y"]

        async def run():
            async with triton_aio.InferenceServerClient(server.url) as aio_client:
                in_flight = [asyncio.ensure_future(aio_client.infer("slow", [infer_input("x", x)]))
                             for _ in range(3)]  # one running, two queued (max_queue_size 2)
                assert await asyncio.to_thread(wait_until, lambda: queue_depth(server, "slow") >= 2, 10.0, 0.005)
                server.process.send_signal(signal.SIGTERM)
                return await asyncio.gather(*in_flight, return_exceptions=True)

        results = asyncio.run(run())
        for result in results:
            assert not isinstance(result, Exception), result
            np.testing.assert_array_equal(result.as_numpy("y"), expected)
        assert server.process.wait(30) == 0, server.log()
        assert "drain timeout" not in server.log()
    finally:
        server.kill()


def test_demo_helper_serves_queries_and_stops_cleanly():
    from serving.demo import serve_and_query

    from daemon_util import linear_net

    lines = []
    x = np.random.default_rng(10).standard_normal((3, 16)).astype(np.float32)
    net = linear_net(16, 8, seed=4)
    outputs = serve_and_query(net, {"x": x}, "digits", print_fn=lines.append)
    np.testing.assert_array_equal(outputs["y"], graphruntime.Predictor(net).run({"x": x})["y"])
    assert lines[-1].endswith("exit code 0") and "equal to the in-process Predictor" in lines[-2]


def test_ember_models_are_served_and_corrupt_ones_reported(client, repository):
    """A quantized .ember model answers like mobile.Interpreter; a damaged one is UNAVAILABLE with
    a reason, and the daemon keeps serving the rest."""
    mobile = pytest.importorskip("mobile")
    x = np.random.default_rng(3).standard_normal((3, 16)).astype(np.float32)
    expected = mobile.Interpreter(os.path.join(repository, "int8", "1", "model.ember")).run({"x": x})["y"]
    got = client.infer("int8", [infer_input("x", x)]).as_numpy("y")
    np.testing.assert_array_equal(got, expected)
    index = {(m.name, m.version): (m.state, m.reason) for m in client.get_model_repository_index().models}
    state, reason = index[("corrupt_int8", "1")]
    assert state == "UNAVAILABLE" and reason
    with pytest.raises(InferenceServerException) as info:
        client.infer("corrupt_int8", [infer_input("x", x)])
    assert_status(info, "UNAVAILABLE", "model 'corrupt_int8' is not ready")
    assert client.is_model_ready("linear")
