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

    __slots__ = ("inputs", "rows", "signature", "enqueued", "deadline", "done", "wake", "lead",
                 "result", "error")

    def __init__(self, inputs, deadline):
        self.inputs = inputs
        first = next(iter(inputs.values()))
        self.rows = int(first.shape[0])
        # Requests merge only when every input agrees on everything but dimension 0.
        self.signature = tuple((name, a.dtype.str, a.shape[1:]) for name, a in sorted(inputs.items()))
        self.enqueued = time.monotonic_ns()
        self.deadline = deadline
        self.done = threading.Event()   # result or error is set
        self.wake = threading.Event()   # done, or `lead` was handed a predictor
        self.lead = None                # predictor handed to this request's thread to run batches
        self.result = None
        self.error = None

    def finish(self, result=None, error=None):
        self.result, self.error = result, error
        self.done.set()
        self.wake.set()


class DynamicBatcher:
    """Merges queued requests along dimension 0 and runs them as one batch.

    There are no worker threads: the threads of the waiting requests run the batches
    (leader/follower). A request that finds an instance free takes it and leads: it gathers the
    queued requests whose non-batch shapes match the oldest one, runs them together when the batch
    reaches the largest preferred size (or `max_batch_size`) or the oldest has waited
    `max_queue_delay_us`, and hands every request its slice of the outputs. When its own request
    is answered it hands the instance to the oldest request still queued, whose thread leads
    next. At low load a request therefore runs in its own thread with no hand-off at all.
    Every input of a request must have the same size in dimension 0 (its batch size), between 1
    and `max_batch_size`.
    """

    def __init__(self, predictors, max_batch_size, max_queue_delay_us=0, preferred_batch_sizes=(),
                 max_queue_size=128, name="model", on_execution=None):
        if not predictors:
            raise ValueError("DynamicBatcher needs at least one predictor")
        if max_batch_size < 1:
            raise ValueError(f"DynamicBatcher needs max_batch_size >= 1, got {max_batch_size}")
        self.name = name
        self.max_batch_size = max_batch_size
        self._on_execution = on_execution
        self._delay_ns = int(max_queue_delay_us) * 1000
        self._target = min(max(preferred_batch_sizes, default=max_batch_size), max_batch_size)
        self._max_queue_size = max_queue_size
        self._queue = collections.deque()
        self._free = list(predictors)
        self._instances = len(predictors)
        self._cond = threading.Condition()
        self._closed = False

    def queue_depth(self):
        """Requests waiting to be batched."""
        return len(self._queue)

    def submit(self, inputs, deadline=None):
        """Queues `inputs` (name -> array with the batch in dimension 0), waits for its batch to run
        (possibly running it, and others, in this thread) and returns this request's InferResult.
        `deadline` is a time.monotonic() value or None."""
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
            if self._free:
                pending.lead = self._free.pop()
        while not pending.done.is_set() or pending.lead is not None:
            with self._cond:
                predictor, pending.lead = pending.lead, None
                if predictor is None:
                    # NOTE: cleared before `done` is looked at again below, so an answer that
                    # lands in between sets `wake` after the clear and is not missed.
                    pending.wake.clear()
            if predictor is not None:
                self._lead(predictor, pending)
                continue
            if pending.done.is_set():
                continue
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            if pending.wake.wait(timeout) or pending.done.is_set():
                continue
            with self._cond:
                if pending.lead is None and pending in self._queue:  # not picked up: drop it
                    self._queue.remove(pending)
                    self._cond.notify_all()
                    raise DeadlineExceededError(
                        "deadline exceeded while queued; the request was not run")
            deadline = None  # running already (or about to lead): wait for the answer
        if pending.error is not None:
            raise pending.error
        return pending.result

    def close(self, timeout=None):
        """Refuses new requests and waits (bounded) until what is queued has run."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            self._closed = True
            while self._queue or len(self._free) < self._instances:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    break
                self._cond.wait(remaining)

    # -- leader side ---------------------------------------------------------------------------

    def _lead(self, predictor, me):
        """Runs batches on `predictor` until `me` has left the queue, then hands it on."""
        while True:
            batch = self._take_batch()
            if batch:
                self._run_batch(predictor, batch)
            with self._cond:
                if me.done.is_set() or me not in self._queue:
                    self._hand_off(predictor)
                    return

    def _hand_off(self, predictor):
        """Gives `predictor` to the oldest queued request without one, else frees it (lock held)."""
        for pending in self._queue:
            if pending.lead is None and not pending.done.is_set():
                pending.lead = predictor
                pending.wake.set()
                break
        else:
            self._free.append(predictor)
        self._cond.notify_all()

    def _take_batch(self):
        """Removes and returns the next batch once it is due; [] if the queue is empty."""
        with self._cond:
            while True:
                self._drop_expired()
                if not self._queue:
                    return []
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
                    self._cond.notify_all()
                    return batch
                self._cond.wait(wait_ns / 1e9)

    def _drop_expired(self):
        now = time.monotonic()
        for pending in [p for p in self._queue if p.deadline is not None and p.deadline <= now]:
            self._queue.remove(pending)
            pending.finish(error=DeadlineExceededError(
                "deadline exceeded while queued; the request was not run"))

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
                pending.finish(error=e)
            return
        if self._on_execution is not None:
            self._on_execution(rows)
        for pending, part in zip(batch, results):
            pending.finish(InferResult(
                part, queue_ns=started - pending.enqueued, compute_input_ns=inferred - started,
                compute_infer_ns=computed - inferred, compute_output_ns=finished - computed,
                batch_size=rows))
