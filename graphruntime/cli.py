"""The `ember` command line.

    $ ember ops              # every operator schema
    $ ember ops conv2d       # one operator
    $ ember ops --json       # machine-readable

Subcommands live in their own modules, listed in `SUBCOMMANDS` as (name, module, help). A module
is imported only when one of its subcommands runs (or asks for `--help`), so `ember ops` never
pays for gRPC or ONNX imports. A module either defines `register(subparsers)`, which adds its
subcommands (it may add several; list each here) with `parser.set_defaults(func=handler)`,
`handler(args) -> int`; or it is a single-command module with `add_arguments(parser)` and
`run(args) -> int`. Adding a subcommand is one line:

    ("export", "mobile.cli", "Write a quantized model as a .ember file."),

Errors from the library (graphruntime.errors.EmberError) are printed without a traceback and
give exit code 1.
"""
import argparse
import importlib
import json
import math
import os
import sys

# (subcommand, module defining register(subparsers), one-line help), sorted by name.
SUBCOMMANDS = [
    ("bench", "graphruntime.cli_model", "Median latency of a model."),
    # NOTE: strings, imported only by `ember export|quantize`: graphruntime never imports mobile.
    ("export", "mobile.cli", "Write a NetDef as an .ember runtime model."),
    ("inspect", "graphruntime.cli_model", "Ops, shapes, parameter counts and FLOPs of a NetDef."),
    ("ops", "graphruntime.cli", "Print operator schemas: inputs, outputs, attributes, kernels."),
    ("quantize", "mobile.cli", "Post-training int8 quantization of a NetDef (calibrated)."),
    ("run", "graphruntime.cli_model", "Run a model on .npy inputs."),
    # NOTE: a string, imported only by `ember serve`: graphruntime itself never imports serving.
    ("serve", "serving.cli", "Serve models over gRPC (KServe v2 / Triton-compatible)."),
]


def build_parser(selected=None):
    """The `ember` parser. Only the module that owns `selected` is imported; the other
    subcommands appear in the help from the table.

    >>> "ops" in build_parser().format_help()
    True
    """
    parser = argparse.ArgumentParser(
        prog="ember", description="Ember: eager research front end, graph-mode production runtime."
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    owner = next(((module, h) for name, module, h in SUBCOMMANDS if name == selected), None)
    if owner is not None:
        module = importlib.import_module(owner[0])
        if hasattr(module, "register"):
            module.register(subparsers)
        else:  # a single-command module
            sub = subparsers.add_parser(selected, help=owner[1], description=owner[1])
            module.add_arguments(sub)
            sub.set_defaults(func=module.run)
    for name, _, help_text in SUBCOMMANDS:
        if name not in subparsers.choices:
            subparsers.add_parser(name, help=help_text, description=help_text)
    return parser


def main(argv=None):
    """Entry point of the `ember` console script; returns the exit code.

    >>> main(["ops", "--names"])  # doctest: +ELLIPSIS
    abs
    ...
    0
    """
    from graphruntime import errors

    argv = list(sys.argv[1:] if argv is None else argv)
    selected = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(selected)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 1
    try:
        return int(args.func(args) or 0)
    except errors.EmberError as e:
        print(f"ember {args.command}: {e}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader went away (`ember ops | head`): not an error. Silence the final flush.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


# ---------------------------------------------------------------- ember ops


def register(subparsers):
    """Adds `ember ops` to the `ember` parser."""
    help_text = next(h for name, _, h in SUBCOMMANDS if name == "ops")
    parser = subparsers.add_parser("ops", help=help_text, description=help_text)
    parser.add_argument("names", nargs="*", metavar="NAME", help="ops to show (default: all)")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print the schemas as JSON")
    output.add_argument("--names", dest="names_only", action="store_true", help="print op names only")
    parser.set_defaults(func=run_ops)


def _format_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_format_value(v) for v in value) + "]"
    return str(value)


def _format_arg(arg):
    name = arg["name"] + ("..." if arg["variadic"] else "") + ("?" if arg["optional"] else "")
    dtypes = ", ".join(arg["dtypes"]) if arg["dtypes"] else "any dtype"
    return name, dtypes


def format_schema(schema):
    """A schema as text, as `ember ops` prints it.

    >>> from graphruntime import _C
    >>> print(format_schema(_C.op_schema("leaky_relu")))  # doctest: +ELLIPSIS
    leaky_relu(x) -> y
      x if x > 0 else negative_slope * x, element-wise.
      inputs:
        x                 float32, float64
      outputs:
        y
      attributes:
        negative_slope: float = 0.01   slope for x < 0
      kernels: leaky_relu_any_reference (dtype any, reference)
    """
    inputs = [_format_arg(a) for a in schema["inputs"]]
    outputs = [_format_arg(a)[0] for a in schema["outputs"]]
    lines = [f"{schema['name']}({', '.join(n for n, _ in inputs)}) -> {', '.join(outputs)}"]
    lines.append(f"  {schema['doc']}")
    lines.append("  inputs:")
    for (name, dtypes), arg in zip(inputs, schema["inputs"]):
        doc = f"   {arg['doc']}" if arg["doc"] else ""
        lines.append(f"    {name:<17} {dtypes}{doc}")
    lines.append("  outputs:")
    for name, arg in zip(outputs, schema["outputs"]):
        lines.append(f"    {name}" + (f"   {arg['doc']}" if arg["doc"] else ""))
    if schema["attrs"]:
        lines.append("  attributes:")
        for attr in schema["attrs"]:
            spec = f"{attr['name']}: {attr['type']}"
            spec += " (required)" if attr["required"] else f" = {_format_value(attr['default'])}"
            lines.append(f"    {spec}" + (f"   {attr['doc']}" if attr["doc"] else ""))
    kernels = ", ".join(f"{k['name']} (dtype {k['dtype']}, {k['isa']})" for k in schema["kernels"])
    lines.append(f"  kernels: {kernels or 'none'}")
    return "\n".join(lines)


def run_ops(args):
    """Prints the requested schemas; exit code 1 when a name is not a registered op."""
    from graphruntime import _C

    schemas = [_C.op_schema(n) for n in args.names] if args.names else list(_C.op_schemas())
    if args.json:
        print(json.dumps(schemas, indent=2, default=str))
    elif args.names_only:
        print("\n".join(s["name"] for s in schemas))
    else:
        print("\n\n".join(format_schema(s) for s in schemas))
    return 0


if __name__ == "__main__":
    sys.exit(main())
