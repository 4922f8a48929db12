"""Schedulers: how requests for one model version reach its predictor instances.

`DynamicBatcher` queues requests, merges compatible ones along dimension 0 (the batch axis) up to
`max_batch_size`, runs the merged batch once on a free instance and splits the outputs back.
`DirectScheduler` runs each request on its own, on the first free instance. Both bound the
number of waiting requests (`QueueFullError` beyond it) and drop requests whose deadline passed
before they ran (`DeadlineExceededError`).

A predictor is anything with `.run(feed: dict[str, ndarray]) -> dict[str, ndarray]`; the graph
runtime's `Predictor` releases the GIL inside `run`, so instances run in parallel.

    >>> class Double:
    ...     def run(self, feed):
    ...         return {"y": feed["x"] * 2}
    >>> batcher = DynamicBatcher([Double()], max_batch_size=8)
    >>> batcher.submit({"x": np.ones((2, 3), np.float32)}).outputs["y"].shape
    (2, 3)
    >>> batcher.close()
"""
import collections
import dataclasses
import threading
import time

import numpy as np

from serving.errors import (DeadlineExceededError, InternalError, InvalidRequestError,
                            QueueFullError, ServingError, UnavailableError)


@dataclasses.dataclass
class InferResult:
    """Outputs of one request plus where its time went (nanoseconds) and the batch it ran in."""

    outputs: dict
    queue_ns: int = 0
    compute_input_ns: int = 0
    compute_infer_ns: int = 0
    compute_output_ns: int = 0
    batch_size: int = 1


def _run_predictor(predictor, feed):
    """Runs one predictor call, mapping runtime errors to serving errors."""
    try:
        return predictor.run(feed)
    except ServingError:
        raise
    except ValueError as e:  # graphruntime.errors.InvalidArgumentError is a ValueError
        raise InvalidRequestError(f"model rejected the input: {e}") from None
    except Exception as e:  # noqa: BLE001 - any runtime failure becomes an INTERNAL answer
        raise InternalError(f"model failed: {type(e).__name__}: {e}") from None


def _check_deadline(deadline, what):
    if deadline is not None and time.monotonic() >= deadline:
        raise DeadlineExceededError(f"deadline exceeded while {what}; the request was not run")


class DirectScheduler:
    """Runs every request alone on the first free instance, in the calling thread."""

    def __init__(self, predictors, max_queue_size=128, on_execution=None):
        if not predictors:
            raise ValueError("DirectScheduler needs at least one predictor")
        self._on_execution = on_execution
        self._free = list(predictors)
        self._max_queue_size = max_queue_size
        self._waiting = 0
        self._closed = False
        self._cond = threading.Condition()

    def queue_depth(self):
        """Requests waiting for an instance."""
        return self._waiting

    def submit(self, inputs, deadline=None):
        """Runs `inputs` and returns an InferResult; blocks until done. `deadline` is a
        time.monotonic() value or None."""
        enqueued = time.monotonic_ns()
        with self._cond:
            if self._closed:
                raise UnavailableError("model version is shutting down")
            if not self._free:
                if self._waiting >= self._max_queue_size:
                    raise QueueFullError(
                        f"request queue is full ({self._max_queue_size} waiting); retry later")
                self._waiting += 1
                try:
                    while not self._free:
                        timeout = None if deadline is None else deadline - time.monotonic()
                        if timeout is not None and timeout <= 0:
                            raise DeadlineExceededError(
                                "deadline exceeded while queued; the request was not run")
                        self._cond.wait(timeout)
                finally:
                    self._waiting -= 1
            predictor = self._free.pop()
        try:
            started = time.monotonic_ns()
            outputs = _run_predictor(predictor, inputs)
            finished = time.monotonic_ns()
        finally:
            with self._cond:
                self._free.append(predictor)
                self._cond.notify()
        if self._on_execution is not None:
            first = next(iter(inputs.values()), None)
            self._on_execution(int(first.shape[0]) if first is not None and first.ndim else 1)
        return InferResult(outputs, queue_ns=started - enqueued, compute_infer_ns=finished - started)

    def close(self, timeout=None):
        """Refuses new requests; requests already waiting still run."""
        with self._cond:
            self._closed = True


class _Pending:
    """One queued request of a DynamicBatcher."""

    __slots__ = ("inputs", "rows", "signature", "enqueued", "deadline", "done", "result", "error")

    def __init__(self, inputs, deadline):
        self.inputs = inputs
        first = next(iter(inputs.values()))
        self.rows = int(first.shape[0])
        # Requests merge only when every input agrees on everything but dimension 0.
        self.signature = tuple((name, a.dtype.str, a.shape[1:]) for name, a in sorted(inputs.items()))
        self.enqueued = time.monotonic_ns()
        self.deadline = deadline
        self.done = threading.Event()
        self.result = None
        self.error = None


class DynamicBatcher:
    """Merges queued requests along dimension 0 and runs them as one batch.

    One worker thread per predictor instance takes the oldest request, gathers the queued requests
    whose non-batch shapes match it, and runs them together when the batch reaches the largest
    preferred size (or `max_batch_size`), or when the oldest has waited `max_queue_delay_us`.
    Every input of a request must have the same size in dimension 0 (its batch size), between 1 and
    `max_batch_size`; the caller validates that.
    """

    def __init__(self, predictors, max_batch_size, max_queue_delay_us=0, preferred_batch_sizes=(),
                 max_queue_size=128, name="model", on_execution=None):
        if not predictors:
            raise ValueError("DynamicBatcher needs at least one predictor")
        if max_batch_size < 1:
            raise ValueError(f"DynamicBatcher needs max_batch_size >= 1, got {max_batch_size}")
        self.max_batch_size = max_batch_size
        self._on_execution = on_execution
        self._delay_ns = int(max_queue_delay_us) * 1000
        self._target = min(max(preferred_batch_sizes, default=max_batch_size), max_batch_size)
        self._max_queue_size = max_queue_size
        self._queue = collections.deque()
        self._cond = threading.Condition()
        self._closed = False
        self._workers = [
            threading.Thread(target=self._work, args=(p,), name=f"batcher-{name}-{i}", daemon=True)
            for i, p in enumerate(predictors)]
        for worker in self._workers:
            worker.start()

    def queue_depth(self):
        """Requests waiting to be batched."""
        return len(self._queue)

    def submit(self, inputs, deadline=None):
        """Queues `inputs` (name -> array with the batch in dimension 0), waits for its batch to run
        and returns this request's InferResult. `deadline` is a time.monotonic() value or None."""
        pending = _Pending(inputs, deadline)
        if pending.rows < 1 or pending.rows > self.max_batch_size:
            raise InvalidRequestError(
                f"batch size {pending.rows} is outside [1, max_batch_size={self.max_batch_size}]")
        with self._cond:
            if self._closed:
                raise UnavailableError("model version is shutting down")
            if len(self._queue) >= self._max_queue_size:
                raise QueueFullError(
                    f"request queue is full ({self._max_queue_size} waiting); retry later")
            self._queue.append(pending)
            self._cond.notify()
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        if not pending.done.wait(timeout):
            with self._cond:
                if pending in self._queue:  # not picked up yet: drop it here
                    self._queue.remove(pending)
                    raise DeadlineExceededError(
                        "deadline exceeded while queued; the request was not run")
            pending.done.wait()  # already running: its result arrives shortly
        if pending.error is not None:
            raise pending.error
        return pending.result

    def close(self, timeout=None):
        """Refuses new requests, runs what is queued, then stops the workers (bounded wait)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        deadline = None if timeout is None else time.monotonic() + timeout
        for worker in self._workers:
            worker.join(None if deadline is None else max(0.0, deadline - time.monotonic()))

    # -- worker side ---------------------------------------------------------------------------

    def _take_batch(self):
        """Blocks until a batch is due; removes and returns it ([] once closed and empty)."""
        with self._cond:
            while True:
                self._drop_expired()
                if not self._queue:
                    if self._closed:
                        return []
                    self._cond.wait()
                    continue
                oldest = self._queue[0]
                batch, rows = [], 0
                for pending in self._queue:
                    if pending.signature == oldest.signature and rows + pending.rows <= self.max_batch_size:
                        batch.append(pending)
                        rows += pending.rows
                        if rows >= self._target:
                            break
                wait_ns = oldest.enqueued + self._delay_ns - time.monotonic_ns()
                if rows >= self._target or wait_ns <= 0 or self._closed:
                    for pending in batch:
                        self._queue.remove(pending)
                    return batch
                self._cond.wait(wait_ns / 1e9)

    def _drop_expired(self):
        now = time.monotonic()
        expired = [p for p in self._queue if p.deadline is not None and p.deadline <= now]
        for pending in expired:
            self._queue.remove(pending)
            pending.error = DeadlineExceededError(
                "deadline exceeded while queued; the request was not run")
            pending.done.set()

    def _work(self, predictor):
        while True:
            batch = self._take_batch()
            if not batch:
                return
            self._run_batch(predictor, batch)

    def _run_batch(self, predictor, batch):
        started = time.monotonic_ns()
        try:
            if len(batch) == 1:
                feed = batch[0].inputs
            else:
                feed = {name: np.concatenate([p.inputs[name] for p in batch], axis=0)
                        for name in batch[0].inputs}
            inferred = time.monotonic_ns()
            outputs = _run_predictor(predictor, feed)
            computed = time.monotonic_ns()
            rows = sum(p.rows for p in batch)
            for name, value in outputs.items():
                if value.ndim == 0 or value.shape[0] != rows:
                    raise InternalError(
                        f"output '{name}' has shape {list(value.shape)}, expected the batch "
                        f"dimension {rows} first; the model cannot be batched")
            offset = 0
            results = []
            for pending in batch:
                part = {name: value[offset:offset + pending.rows] for name, value in outputs.items()}
                offset += pending.rows
                results.append(part)
            finished = time.monotonic_ns()
        except ServingError as e:
            for pending in batch:
                pending.error = e
                pending.done.set()
            return
        if self._on_execution is not None:
            self._on_execution(rows)
        for pending, part in zip(batch, results):
            pending.result = InferResult(
                part, queue_ns=started - pending.enqueued, compute_input_ns=inferred - started,
                compute_infer_ns=computed - inferred, compute_output_ns=finished - computed,
                batch_size=rows)
            pending.done.set()
