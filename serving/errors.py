"""Errors of the serving daemon, each tied to the gRPC status code it is answered with.

    >>> raise NotFoundError("unknown model 'mnist'")
    Traceback (most recent call last):
    ...
    serving.errors.NotFoundError: unknown model 'mnist'
"""


class ServingError(Exception):
    """Base class; `status` names the grpc.StatusCode the request is answered with."""

    status = "INTERNAL"


class NotFoundError(ServingError):
    """Unknown model, or a version of it that is not loaded."""

    status = "NOT_FOUND"


class InvalidRequestError(ServingError):
    """The request does not fit the model: missing/unknown tensor, datatype, shape, byte size."""

    status = "INVALID_ARGUMENT"


class QueueFullError(ServingError):
    """The model's request queue is full; the client should back off and retry."""

    status = "RESOURCE_EXHAUSTED"


class DeadlineExceededError(ServingError):
    """The request's deadline passed before it could run; it was dropped, not run."""

    status = "DEADLINE_EXCEEDED"


class UnavailableError(ServingError):
    """The model exists in the repository but is not loaded (unloaded, or failed to load)."""

    status = "UNAVAILABLE"


class ModelConfigError(ServingError):
    """A model's config.json, or its files, cannot be served; the message says what to fix."""

    status = "INVALID_ARGUMENT"


class InternalError(ServingError):
    """The model failed while running a valid request."""

    status = "INTERNAL"


__all__ = [
    "ServingError", "NotFoundError", "InvalidRequestError", "QueueFullError",
    "DeadlineExceededError", "UnavailableError", "ModelConfigError", "InternalError",
]
