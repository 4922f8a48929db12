"""Ember's gRPC serving daemon: the KServe v2 / Open Inference Protocol (wire-compatible with
Triton's `inference.GRPCInferenceService`), grpc.health.v1, reflection, a model repository with
hot reload, dynamic batching and Prometheus metrics.

    $ ember serve --model-repository models          # or: python -m serving ...

    >>> from serving import create_server            # doctest: +SKIP
    >>> server, port = create_server("models", "127.0.0.1", 0)  # doctest: +SKIP
    >>> server.start()  # doctest: +SKIP

The gRPC modules load on first use of `create_server` / `serve`, so the scheduler and repository
can be imported (and tested) without them.
"""

__all__ = ["create_server", "serve"]


def __getattr__(name):
    if name in __all__:
        from serving import server  # noqa: PLC0415
        return getattr(server, name)
    raise AttributeError(f"module 'serving' has no attribute '{name}'")
