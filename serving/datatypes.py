"""Tensor datatypes of the KServe v2 protocol and their numpy / Triton ModelConfig equivalents.

    >>> to_wire_datatype(np.dtype(np.float32))
    'FP32'
    >>> from_wire_datatype("INT64")
    dtype('int64')
"""
import numpy as np

# Wire datatype string -> (numpy dtype, Triton ModelConfig DataType number, typed contents field).
# Ember's runtime dtypes are a subset (float32, float64, int64, int32, uint8, int8, bool); the other
# numeric types are listed so a request for them is recognized and refused as the wrong datatype
# rather than as an unknown one.
_WIRE_TYPES = {
    "BOOL": (np.dtype(np.bool_), 1, "bool_contents"),
    "UINT8": (np.dtype(np.uint8), 2, "uint_contents"),
    "UINT16": (np.dtype(np.uint16), 3, "uint_contents"),
    "UINT32": (np.dtype(np.uint32), 4, "uint_contents"),
    "UINT64": (np.dtype(np.uint64), 5, "uint64_contents"),
    "INT8": (np.dtype(np.int8), 6, "int_contents"),
    "INT16": (np.dtype(np.int16), 7, "int_contents"),
    "INT32": (np.dtype(np.int32), 8, "int_contents"),
    "INT64": (np.dtype(np.int64), 9, "int64_contents"),
    "FP16": (np.dtype(np.float16), 10, None),
    "FP32": (np.dtype(np.float32), 11, "fp32_contents"),
    "FP64": (np.dtype(np.float64), 12, "fp64_contents"),
}
_BY_NUMPY = {np_dtype: wire for wire, (np_dtype, _, _) in _WIRE_TYPES.items()}
# Datatypes that exist on the wire but have no numpy equivalent here.
NON_NUMERIC_WIRE_TYPES = ("BYTES", "BF16")


def to_wire_datatype(dtype):
    """The protocol datatype string ("FP32", ...) of a numpy dtype or dtype name."""
    dtype = np.dtype(dtype)
    try:
        return _BY_NUMPY[dtype]
    except KeyError:
        raise ValueError(f"numpy dtype {dtype} has no KServe v2 datatype") from None


def from_wire_datatype(datatype):
    """The numpy dtype of a protocol datatype string; ValueError if it has none."""
    try:
        return _WIRE_TYPES[datatype][0]
    except KeyError:
        raise ValueError(f"datatype '{datatype}' is not a numeric KServe v2 datatype") from None


def config_data_type(datatype):
    """Triton ModelConfig `DataType` enum number of a protocol datatype string."""
    if datatype == "BYTES":
        return 13
    if datatype == "BF16":
        return 14
    return _WIRE_TYPES[datatype][1]


def contents_field(datatype):
    """Name of the InferTensorContents field that carries `datatype` in typed form, or None."""
    if datatype == "BYTES":
        return "bytes_contents"
    entry = _WIRE_TYPES.get(datatype)
    return entry[2] if entry else None


def is_known_datatype(datatype):
    """True for every datatype string the protocol defines."""
    return datatype in _WIRE_TYPES or datatype in NON_NUMERIC_WIRE_TYPES
