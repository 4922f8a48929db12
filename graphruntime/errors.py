"""Exceptions raised by Ember's C++ library and graph runtime.

Every error the C++ side reports arrives as one of these; messages name the op (type and node
name) and the offending input, attribute or tensor.

    >>> from graphruntime import _C, errors
    >>> try:
    ...     _C.run_op("no_such_op", [])
    ... except errors.UnsupportedError as e:
    ...     print(e)
    unknown op 'no_such_op'
"""


class EmberError(Exception):
    """Base class of every Ember error."""


class InvalidArgumentError(EmberError, ValueError):
    """A caller passed something wrong: a shape, dtype, attribute value or feed."""


class InvalidModelError(EmberError):
    """A model file or NetDef is malformed, corrupt, or inconsistent with the op schemas."""


class UnsupportedError(EmberError, NotImplementedError):
    """Well-formed but not implemented: an unknown op, or a dtype no kernel handles."""


__all__ = ["EmberError", "InvalidArgumentError", "InvalidModelError", "UnsupportedError"]
