"""Unit tests of the schedulers with a numpy stand-in predictor (the daemon tests use the real
graphruntime.Predictor); the oracle is the same numpy formula applied to each request alone."""
import threading
import time

import numpy as np
import pytest

from serving.errors import (DeadlineExceededError, InternalError, InvalidRequestError,
                            QueueFullError)
from serving.scheduler import DirectScheduler, DynamicBatcher

WEIGHT = np.linspace(-1.0, 1.0, 12, dtype=np.float32).reshape(3, 4)


def oracle(x):
    return np.maximum(x @ WEIGHT.T, 0.0)


class RecordingPredictor:
    """y = relu(x @ W^T); records the batch size of every run; `gate` (if set) holds each run
    until released, so tests can pile requests up behind a busy instance."""

    def __init__(self, gate=None, fail_with=None):
        self.batch_sizes = []
        self.gate = gate
        self.started = threading.Event()
        self.fail_with = fail_with

    def run(self, feed):
        self.started.set()
        if self.gate is not None:
            self.gate.wait(10)
        if self.fail_with is not None:
            raise self.fail_with
        self.batch_sizes.append(feed["x"].shape[0])
        return {"y": oracle(feed["x"])}


def submit_in_threads(scheduler, requests, deadline=None, started=None):
    """Submits each request from its own thread; returns (threads, results, errors) in request
    order. With `started` (an Event the predictor sets), the first request is running before
    the others are submitted."""
    results, errors = [None] * len(requests), [None] * len(requests)

    def call(i):
        try:
            results[i] = scheduler.submit({"x": requests[i]}, deadline)
        except Exception as e:  # noqa: BLE001 - collected for the assertions
            errors[i] = e

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(requests))]
    for i, t in enumerate(threads):
        t.start()
        if i == 0 and started is not None:
            assert started.wait(10), "the first request never started"
        time.sleep(0.002)  # keep submission order deterministic
    return threads, results, errors


def wait_queued(scheduler, depth, timeout=5.0):
    end = time.monotonic() + timeout
    while scheduler.queue_depth() < depth:
        assert time.monotonic() < end, f"queue never reached {depth}"
        time.sleep(0.001)


def test_queued_requests_run_as_one_batch_and_split_back():
    gate = threading.Event()
    predictor = RecordingPredictor(gate)
    batcher = DynamicBatcher([predictor], max_batch_size=16)
    rng = np.random.default_rng(0)
    requests = [rng.standard_normal((rows, 4)).astype(np.float32) for rows in (1, 2, 3, 1, 4, 2)]
    threads, results, errors = submit_in_threads(batcher, requests, started=predictor.started)
    wait_queued(batcher, len(requests) - 1)
    gate.set()
    for t in threads:
        t.join(10)
    batcher.close(5)
    assert errors == [None] * len(requests)
    # First request ran alone (the instance was free), the other five were merged into one run.
    assert predictor.batch_sizes == [1, 2 + 3 + 1 + 4 + 2]
    for x, result in zip(requests, results):
        np.testing.assert_allclose(result.outputs["y"], oracle(x), rtol=1e-5, atol=1e-5)
        assert result.outputs["y"].shape == (x.shape[0], 3)
    assert results[1].batch_size == 12


def test_batches_never_exceed_max_batch_size():
    gate = threading.Event()
    predictor = RecordingPredictor(gate)
    batcher = DynamicBatcher([predictor], max_batch_size=4)
    requests = [np.full((1 + i % 3, 4), i, np.float32) for i in range(10)]
    threads, results, errors = submit_in_threads(batcher, requests, started=predictor.started)
    wait_queued(batcher, len(requests) - 1)
    gate.set()
    for t in threads:
        t.join(10)
    batcher.close(5)
    assert errors == [None] * len(requests)
    assert max(predictor.batch_sizes) <= 4
    assert sum(predictor.batch_sizes) == sum(x.shape[0] for x in requests)
    for x, result in zip(requests, results):
        np.testing.assert_allclose(result.outputs["y"], oracle(x), rtol=1e-5, atol=1e-5)


def test_lone_request_waits_for_the_delay_and_preferred_size_runs_at_once():
    predictor = RecordingPredictor()
    batcher = DynamicBatcher([predictor], max_batch_size=8, max_queue_delay_us=80_000,
                             preferred_batch_sizes=(2,))
    x = np.ones((1, 4), np.float32)
    started = time.monotonic()
    result = batcher.submit({"x": x})
    assert time.monotonic() - started >= 0.075
    assert result.queue_ns >= 75_000_000
    started = time.monotonic()
    result = batcher.submit({"x": np.ones((2, 4), np.float32)})  # reaches the preferred size
    assert time.monotonic() - started < 0.06
    batcher.close(5)
    assert predictor.batch_sizes == [1, 2]


def test_requests_with_different_shapes_are_not_merged():
    gate = threading.Event()
    predictor = RecordingPredictor(gate)

    class AnyWidth(RecordingPredictor):
        def run(self, feed):
            self.started.set()
            gate.wait(10)
            self.batch_sizes.append(feed["x"].shape)
            return {"y": feed["x"] * 2}

    predictor = AnyWidth()
    batcher = DynamicBatcher([predictor], max_batch_size=8)
    requests = [np.ones((1, 4), np.float32), np.ones((1, 5), np.float32),
                np.ones((1, 4), np.float32), np.ones((1, 5), np.float32)]
    threads, results, errors = submit_in_threads(batcher, requests, started=predictor.started)
    wait_queued(batcher, 3)
    gate.set()
    for t in threads:
        t.join(10)
    batcher.close(5)
    assert errors == [None] * 4
    # Behind the first run: the oldest (width 5) takes the other width-5 request, not width 4.
    assert predictor.batch_sizes == [(1, 4), (2, 5), (1, 4)]
    for x, result in zip(requests, results):
        np.testing.assert_array_equal(result.outputs["y"], x * 2)


def test_full_queue_answers_queue_full():
    gate = threading.Event()
    predictor = RecordingPredictor(gate)
    batcher = DynamicBatcher([predictor], max_batch_size=1, max_queue_size=2)
    threads, _, errors = submit_in_threads(batcher, [np.ones((1, 4), np.float32)] * 3,
                                         started=predictor.started)
    wait_queued(batcher, 2)
    with pytest.raises(QueueFullError, match=r"queue is full \(2 waiting\)"):
        batcher.submit({"x": np.ones((1, 4), np.float32)})
    gate.set()
    for t in threads:
        t.join(10)
    batcher.close(5)
    assert errors == [None] * 3


def test_expired_requests_are_dropped_not_run():
    gate = threading.Event()
    predictor = RecordingPredictor(gate)
    batcher = DynamicBatcher([predictor], max_batch_size=8)
    first = threading.Thread(target=batcher.submit, args=({"x": np.ones((1, 4), np.float32)},))
    first.start()
    predictor.started.wait(5)
    with pytest.raises(DeadlineExceededError, match="not run"):
        batcher.submit({"x": np.full((3, 4), 7, np.float32)}, deadline=time.monotonic() + 0.05)
    gate.set()
    first.join(10)
    batcher.close(5)
    assert predictor.batch_sizes == [1]  # the 3-row request never reached the model


def test_model_errors_reach_every_request_of_the_batch():
    batcher = DynamicBatcher([RecordingPredictor(fail_with=RuntimeError("arena exhausted"))], 4)
    with pytest.raises(InternalError, match="model failed: RuntimeError: arena exhausted"):
        batcher.submit({"x": np.ones((1, 4), np.float32)})
    batcher.close(5)
    batcher = DynamicBatcher([RecordingPredictor(fail_with=ValueError("linear: bad shape"))], 4)
    with pytest.raises(InvalidRequestError, match="model rejected the input: linear: bad shape"):
        batcher.submit({"x": np.ones((1, 4), np.float32)})
    batcher.close(5)


def test_request_larger_than_max_batch_size_is_refused():
    batcher = DynamicBatcher([RecordingPredictor()], max_batch_size=2)
    with pytest.raises(InvalidRequestError, match=r"batch size 3 is outside \[1, max_batch_size=2\]"):
        batcher.submit({"x": np.ones((3, 4), np.float32)})
    batcher.close(5)


def test_close_runs_what_is_queued():
    gate = threading.Event()
    predictor = RecordingPredictor(gate)
    batcher = DynamicBatcher([predictor], max_batch_size=1)
    threads, results, errors = submit_in_threads(batcher, [np.ones((1, 4), np.float32)] * 3,
                                                 started=predictor.started)
    wait_queued(batcher, 2)
    closer = threading.Thread(target=batcher.close, args=(10,))
    closer.start()
    gate.set()
    for t in threads + [closer]:
        t.join(10)
    assert errors == [None] * 3 and all(r is not None for r in results)
    assert predictor.batch_sizes == [1, 1, 1]


def test_instances_run_in_parallel():
    # Two instances each blocking on a barrier can only both finish if they run concurrently.
    barrier = threading.Barrier(2, timeout=5)

    class Meeting(RecordingPredictor):
        def run(self, feed):
            barrier.wait()
            return {"y": oracle(feed["x"])}

    for scheduler in (DynamicBatcher([Meeting(), Meeting()], max_batch_size=1),
                      DirectScheduler([Meeting(), Meeting()])):
        threads, results, errors = submit_in_threads(scheduler, [np.ones((1, 4), np.float32)] * 2)
        for t in threads:
            t.join(10)
        assert errors == [None, None], errors
        scheduler.close(5)


def test_direct_scheduler_queue_bound_and_deadline():
    gate = threading.Event()
    predictor = RecordingPredictor(gate)
    scheduler = DirectScheduler([predictor], max_queue_size=1)
    threads, results, errors = submit_in_threads(scheduler, [np.ones((1, 4), np.float32)] * 2,
                                                 started=predictor.started)
    wait_queued(scheduler, 1)
    with pytest.raises(QueueFullError, match=r"queue is full \(1 waiting\)"):
        scheduler.submit({"x": np.ones((1, 4), np.float32)})
    gate.set()
    for t in threads:
        t.join(10)
    assert errors == [None, None]
    np.testing.assert_allclose(results[1].outputs["y"], oracle(np.ones((1, 4), np.float32)))
    gate.clear()
    holder = threading.Thread(target=scheduler.submit, args=({"x": np.ones((1, 4), np.float32)},))
    predictor.started.clear()
    holder.start()
    predictor.started.wait(5)
    with pytest.raises(DeadlineExceededError, match="while queued"):
        scheduler.submit({"x": np.ones((1, 4), np.float32)}, deadline=time.monotonic() + 0.05)
    gate.set()
    holder.join(10)


def test_a_lone_request_runs_in_its_own_thread():
    class WhereAmI(RecordingPredictor):
        def run(self, feed):
            self.thread = threading.current_thread()
            return super().run(feed)

    predictor = WhereAmI()
    batcher = DynamicBatcher([predictor], max_batch_size=4)
    batcher.submit({"x": np.ones((1, 4), np.float32)})
    batcher.close(5)
    assert predictor.thread is threading.current_thread()


def test_many_threads_two_instances_every_answer_correct():
    class Jittery(RecordingPredictor):
        def run(self, feed):
            time.sleep(0.0005 * (feed["x"].shape[0] % 3))
            return super().run(feed)

    predictors = [Jittery(), Jittery()]
    batcher = DynamicBatcher(predictors, max_batch_size=8, max_queue_delay_us=300,
                             max_queue_size=1000)
    rng = np.random.default_rng(1)
    requests = [rng.standard_normal((int(rng.integers(1, 5)), 4)).astype(np.float32)
                for _ in range(200)]
    results, errors = [None] * len(requests), [None] * len(requests)

    def call(i):
        deadline = time.monotonic() + 30 if i % 2 else None
        try:
            results[i] = batcher.submit({"x": requests[i]}, deadline)
        except Exception as e:  # noqa: BLE001 - collected for the assertions
            errors[i] = e

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(requests))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads), "a request never got its answer"
    batcher.close(5)
    assert errors == [None] * len(requests)
    for x, result in zip(requests, results):
        np.testing.assert_allclose(result.outputs["y"], oracle(x), rtol=1e-5, atol=1e-5)
    sizes = predictors[0].batch_sizes + predictors[1].batch_sizes
    assert sum(sizes) == sum(x.shape[0] for x in requests) and max(sizes) <= 8
    assert len(sizes) < len(requests), "200 concurrent requests were never merged"


def test_short_deadlines_under_load_drop_or_answer_and_never_leak_an_instance():
    class Slow(RecordingPredictor):
        def run(self, feed):
            time.sleep(0.002)
            return super().run(feed)

    batcher = DynamicBatcher([Slow()], max_batch_size=2, max_queue_size=1000)
    outcomes = [None] * 100

    def call(i):
        x = np.full((1, 4), i, np.float32)
        try:
            outcomes[i] = batcher.submit({"x": x}, time.monotonic() + 0.001 * (1 + i % 5))
        except DeadlineExceededError as e:
            outcomes[i] = e

    threads = [threading.Thread(target=call, args=(i,)) for i in range(100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads)
    dropped = [o for o in outcomes if isinstance(o, DeadlineExceededError)]
    assert dropped and len(dropped) < 100
    for i, outcome in enumerate(outcomes):
        if not isinstance(outcome, DeadlineExceededError):
            np.testing.assert_allclose(outcome.outputs["y"], oracle(np.full((1, 4), i, np.float32)),
                                       rtol=1e-5, atol=1e-5)
    # The instance came back: a new request is answered at once.
    started = time.monotonic()
    batcher.submit({"x": np.ones((1, 4), np.float32)}, time.monotonic() + 1.0)
    assert time.monotonic() - started < 0.5
    batcher.close(5)
