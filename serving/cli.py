"""Command line of the serving daemon: `ember serve ...` and `python -m serving ...`.

    ember serve --model-repository models --port 8001 --metrics-port 8002
"""
import argparse
import logging
import sys


def add_arguments(parser):
    """Adds the daemon's options to an argparse parser (used by `ember serve` too)."""
    parser.add_argument("--model-repository", required=True, metavar="DIR",
                        help="directory holding <model>/<version>/model.pb and <model>/config.json")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default 127.0.0.1; 0.0.0.0 exposes the server)")
    parser.add_argument("--port", type=int, default=8001, help="gRPC port (0 = any free port)")
    parser.add_argument("--metrics-port", type=int, default=8002,
                        help="Prometheus /metrics port (0 = any free port, -1 = disabled)")
    parser.add_argument("--poll-interval", type=float, default=5.0, metavar="SECONDS",
                        help="rescan the repository for new/changed/removed versions this often "
                             "(0 = only on RepositoryModelLoad)")
    parser.add_argument("--drain-timeout", type=float, default=30.0, metavar="SECONDS",
                        help="on SIGTERM, how long in-flight requests may take to finish")
    parser.add_argument("--max-message-bytes", type=int, default=256 * 1024 * 1024,
                        help="largest request or response message accepted")
    parser.add_argument("--max-workers", type=int, default=128,
                        help="RPCs handled concurrently (requests beyond wait in gRPC)")
    parser.add_argument("--log-level", default="INFO",
                        choices=("DEBUG", "INFO", "WARNING", "ERROR"), help="logging verbosity")
    return parser


def run(args):
    """Runs the daemon with parsed arguments; returns the process exit code."""
    from serving.errors import ServingError  # noqa: PLC0415
    from serving.server import serve  # noqa: PLC0415 - grpc and the protocol load on demand

    logging.basicConfig(level=getattr(logging, args.log_level),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return serve(args.model_repository, host=args.host, port=args.port,
                     metrics_port=None if args.metrics_port < 0 else args.metrics_port,
                     poll_interval=args.poll_interval, drain_timeout=args.drain_timeout,
                     max_message_bytes=args.max_message_bytes, max_workers=args.max_workers,
                     ready_message=lambda line: print(line, flush=True))
    except (ServingError, OSError) as e:
        print(f"ember serve: error: {e}", file=sys.stderr)
        return 2


def register(subparsers):
    """Adds `ember serve` to the `ember` command line (graphruntime.cli lists it lazily)."""
    description = "Serve a model repository over gRPC (KServe v2, Triton-compatible)."
    parser = subparsers.add_parser("serve", help=description, description=description)
    add_arguments(parser)
    parser.set_defaults(func=run)


def main(argv=None):
    """Entry point of `python -m serving`."""
    parser = argparse.ArgumentParser(
        prog="python -m serving",
        description="Serve Ember models over gRPC (KServe v2 / Triton-compatible).")
    add_arguments(parser)
    return run(parser.parse_args(argv))
