"""Turns a ModelInferRequest into a validated feed for a model version, and outputs back into a
ModelInferResponse. Works on the protocol messages by field name, so it never imports them.

Every mismatch between a request and the model raises InvalidRequestError with a message naming
the model, the tensor and what was expected; nothing reaches the predictor unchecked.
"""
import math
import time

import numpy as np

from serving import datatypes
from serving.errors import InternalError, InvalidRequestError

# Parameters that name Triton features Ember does not implement; refused rather than ignored.
_UNSUPPORTED_PARAMETERS = ("shared_memory_region", "classification")
# Longer than any real request may wait: treated as "no deadline".
_NO_DEADLINE_SECONDS = 365 * 24 * 3600.0
# Field number of ModelInferRequest.raw_input_contents (repeated bytes).
_RAW_INPUT_CONTENTS_FIELD = 7


class InferRequest:
    """A ModelInferRequest whose raw_input_contents are memoryviews into the received bytes.

    `parse_infer_request` builds it; the other fields are those of the protobuf message parsed
    without the (large) raw contents, so decoding an input costs no copy of its data.
    """

    __slots__ = ("model_name", "model_version", "id", "parameters", "inputs", "outputs",
                 "raw_input_contents")

    def __init__(self, message, raw_input_contents):
        self.model_name = message.model_name
        self.model_version = message.model_version
        self.id = message.id
        self.parameters = message.parameters
        self.inputs = message.inputs
        self.outputs = message.outputs
        self.raw_input_contents = raw_input_contents


def _read_varint(data, pos):
    result = shift = 0
    while shift < 64:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
    raise ValueError("varint longer than 10 bytes")


def parse_infer_request(data, message_class):
    """Parses serialized ModelInferRequest `data` (bytes) without copying raw_input_contents:
    those become memoryviews into `data`, the other fields are parsed by `message_class`
    (the generated ModelInferRequest). Returns an InferRequest, or `message_class.FromString(data)`
    for input this scanner does not handle (which raises DecodeError if `data` is malformed)."""
    raw, rest, pos, end = [], [], 0, len(data)
    view = memoryview(data)
    try:
        while pos < end:
            start = pos
            key = data[pos]
            pos += 1
            if key & 0x80:
                key, pos = _read_varint(data, start)
            wire_type = key & 7
            if wire_type == 2:
                length = data[pos]
                pos += 1
                if length & 0x80:
                    length, pos = _read_varint(data, pos - 1)
                if pos + length > end:
                    raise ValueError("truncated field")
                if key >> 3 == _RAW_INPUT_CONTENTS_FIELD:
                    raw.append(view[pos:pos + length])
                    pos += length
                    continue
                pos += length
            elif wire_type == 0:
                _, pos = _read_varint(data, pos)
            elif wire_type in (1, 5):
                pos += 8 if wire_type == 1 else 4
            else:  # groups (deprecated) and invalid wire types
                raise ValueError(f"wire type {wire_type}")
            if pos > end:
                raise ValueError("truncated field")
            if rest and rest[-1][1] == start:  # adjacent to the previous kept field: extend it
                rest[-1][1] = pos
            else:
                rest.append([start, pos])
    except (ValueError, IndexError):
        return message_class.FromString(data)
    if len(rest) == 1 and rest[0] == [0, end]:
        kept = data
    else:
        kept = b"".join([view[a:b] for a, b in rest])
    return InferRequest(message_class.FromString(kept), raw)


def _model(version):
    return f"model '{version.name}' version {version.version}"


# numpy dtype -> the dtype of its raw bytes on the wire (little-endian)
_WIRE_DTYPES = {}


def _wire_dtype(dtype):
    wire = _WIRE_DTYPES.get(dtype)
    if wire is None:
        wire = _WIRE_DTYPES[dtype] = dtype.newbyteorder("<") if dtype.itemsize > 1 else dtype
    return wire


def decode_request(request, version):
    """Returns (feed, output_names) for `request` against ModelVersion `version`: feed maps input
    name -> array of the model's dtype and the request's shape; output_names lists the outputs to
    return, in the model's order when the request names none."""
    raw = request.raw_input_contents
    inputs = request.inputs
    if raw and len(raw) != len(inputs):
        raise InvalidRequestError(
            f"{_model(version)}: request has {len(raw)} raw_input_contents entries for "
            f"{len(inputs)} inputs; send one per input, or none and typed contents")
    feed = {}
    input_by_name = version.input_by_name
    max_batch_size = version.settings.max_batch_size
    for index, tensor in enumerate(inputs):
        name = tensor.name
        spec = input_by_name.get(name)
        if spec is None:
            raise InvalidRequestError(
                f"{_model(version)}: unknown input '{name}'; the model's inputs are "
                f"{[s.name for s in version.inputs]}")
        if name in feed:
            raise InvalidRequestError(f"{_model(version)}: input '{name}' is given twice")
        if tensor.parameters:
            for key in tensor.parameters:
                if key in _UNSUPPORTED_PARAMETERS:
                    raise InvalidRequestError(f"{_model(version)}: input '{name}': parameter "
                                              f"'{key}' is not supported")
        feed[name] = _decode_tensor(version, tensor, spec, raw[index] if raw else None,
                                    max_batch_size)
    if len(feed) != len(version.inputs):
        missing = [spec.name for spec in version.inputs if spec.name not in feed]
        raise InvalidRequestError(
            f"{_model(version)}: missing input{'s' if len(missing) > 1 else ''} "
            f"{', '.join(repr(m) for m in missing)}; the model's inputs are "
            f"{[s.name for s in version.inputs]}")
    if max_batch_size > 0 and len(feed) > 1:
        batch_sizes = {name: int(a.shape[0]) for name, a in feed.items()}
        if len(set(batch_sizes.values())) > 1:
            raise InvalidRequestError(
                f"{_model(version)}: inputs disagree on the batch size (dimension 0): "
                f"{batch_sizes}")
    requested_outputs = request.outputs
    if not requested_outputs:
        return feed, [spec.name for spec in version.outputs]
    names = []
    for requested in requested_outputs:
        if requested.name not in version.output_by_name:
            raise InvalidRequestError(
                f"{_model(version)}: unknown output '{requested.name}'; the model's outputs are "
                f"{[s.name for s in version.outputs]}")
        for key in requested.parameters:
            if key in _UNSUPPORTED_PARAMETERS:
                raise InvalidRequestError(f"{_model(version)}: output '{requested.name}': "
                                          f"parameter '{key}' is not supported")
        if requested.name not in names:
            names.append(requested.name)
    return feed, names


def _decode_tensor(version, tensor, spec, raw, max_batch_size):
    if tensor.datatype != spec.datatype:
        known = datatypes.is_known_datatype(tensor.datatype)
        raise InvalidRequestError(
            f"{_model(version)}: input '{tensor.name}': datatype "
            f"{tensor.datatype if known else repr(tensor.datatype)} does not match the model's "
            f"{spec.datatype}")
    shape = [int(d) for d in tensor.shape]
    if len(shape) != len(spec.shape) or any(
            d < 0 or (s != -1 and d != s) for d, s in zip(shape, spec.shape)):
        raise InvalidRequestError(
            f"{_model(version)}: input '{tensor.name}': shape {shape} does not match the model's "
            f"{list(spec.shape)} (-1 = any size)")
    if max_batch_size > 0 and not 1 <= shape[0] <= max_batch_size:
        raise InvalidRequestError(
            f"{_model(version)}: input '{tensor.name}': batch size {shape[0]} is outside "
            f"[1, max_batch_size={max_batch_size}]")
    count = math.prod(shape)
    dtype = _wire_dtype(spec.dtype)
    if raw is not None:
        expected = count * dtype.itemsize
        if len(raw) != expected:
            raise InvalidRequestError(
                f"{_model(version)}: input '{tensor.name}': raw data has {len(raw)} bytes, but "
                f"shape {shape} of {spec.datatype} needs {expected}")
        array = np.frombuffer(raw, dtype=dtype)
        if not array.flags.aligned:
            # A view into the request lands wherever the wire put it; the runtime gets
            # dtype-aligned data, as from any numpy allocation.
            array = array.copy()
    else:
        field = datatypes.contents_field(spec.datatype)
        values = getattr(tensor.contents, field)
        if len(values) != count:
            raise InvalidRequestError(
                f"{_model(version)}: input '{tensor.name}': contents.{field} has {len(values)} "
                f"values, but shape {shape} needs {count}")
        try:
            array = np.asarray(values, dtype=spec.dtype)
        except (OverflowError, ValueError) as e:
            raise InvalidRequestError(
                f"{_model(version)}: input '{tensor.name}': contents.{field}: {e}") from None
    array = array.reshape(shape)
    return array if array.dtype == spec.dtype else array.astype(spec.dtype)


def request_deadline(request, grpc_time_remaining):
    """time.monotonic() deadline of a request from the gRPC deadline (seconds remaining or None)
    and the protocol's `timeout` parameter (microseconds), whichever is earlier; None if neither."""
    now = time.monotonic()
    # NOTE: gRPC reports a call without a deadline as an enormous time remaining.
    deadline = None
    if grpc_time_remaining is not None and grpc_time_remaining < _NO_DEADLINE_SECONDS:
        deadline = now + grpc_time_remaining
    if "timeout" in request.parameters:
        parameter = request.parameters["timeout"]
        timeout_us = getattr(parameter, parameter.WhichOneof("parameter_choice") or "int64_param")
        if isinstance(timeout_us, (int, float)) and not isinstance(timeout_us, bool) and timeout_us > 0:
            candidate = now + timeout_us / 1e6
            deadline = candidate if deadline is None else min(deadline, candidate)
    return deadline


# Keys (field number << 3 | wire type 2) of ModelInferResponse.raw_output_contents (field 6)
# and of ModelStreamInferResponse.infer_response (field 2).
_RAW_OUTPUT_CONTENTS_KEY = b"\x32"
_STREAM_INFER_RESPONSE_KEY = b"\x12"


def _varint_bytes(value):
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


class EncodedResponse:
    """A ModelInferResponse ready to send, as pieces: the message without its raw output contents
    (serialized), then each output's raw_output_contents field with the data as a view of the
    output array. `SerializeToString()` joins them, copying the output data once; the bytes are
    those the full message serializes to (raw_output_contents has the highest field number)."""

    __slots__ = ("_parts", "_size")

    def __init__(self, parts, size):
        self._parts, self._size = parts, size

    def SerializeToString(self):  # noqa: N802 - the protobuf method name, for gRPC's serializer
        """The serialized ModelInferResponse."""
        return b"".join(self._parts)

    def serialize_as_stream_response(self):
        """The serialized ModelStreamInferResponse carrying this response as `infer_response`."""
        return b"".join([_STREAM_INFER_RESPONSE_KEY, _varint_bytes(self._size), *self._parts])


def _output_arrays(version, outputs, names):
    """(name, datatype, shape, contiguous little-endian array) of each output in `names`."""
    for name in names:
        value = outputs.get(name)
        if value is None:
            raise InternalError(f"model '{version.name}' produced no output '{name}'")
        value = np.asarray(value)
        try:
            datatype = datatypes.to_wire_datatype(value.dtype)
        except ValueError as e:
            raise InternalError(f"model '{version.name}' output '{name}': {e}") from None
        shape = value.shape
        little = _wire_dtype(value.dtype)
        if value.dtype != little or not value.flags.c_contiguous:
            value = np.ascontiguousarray(value, dtype=little)
        yield name, datatype, shape, value


def encode_response(response, version, outputs, names, request_id):
    """Fills `response` (a ModelInferResponse) with `names` from `outputs` as raw contents."""
    response.model_name = version.name
    response.model_version = version.version_str
    response.id = request_id
    for name, datatype, shape, value in _output_arrays(version, outputs, names):
        tensor = response.outputs.add()
        tensor.name = name
        tensor.datatype = datatype
        tensor.shape.extend(shape)
        response.raw_output_contents.append(value.tobytes())
    return response


def encode_response_parts(header, version, outputs, names, request_id):
    """Like encode_response, but returns an EncodedResponse: `header` (an empty
    ModelInferResponse) gets everything but the raw contents, which stay views of the outputs
    until gRPC serializes the answer."""
    header.model_name = version.name
    header.model_version = version.version_str
    header.id = request_id
    arrays = []
    for name, datatype, shape, value in _output_arrays(version, outputs, names):
        tensor = header.outputs.add()
        tensor.name = name
        tensor.datatype = datatype
        tensor.shape.extend(shape)
        arrays.append(value)
    head = header.SerializeToString()
    parts, size = [head], len(head)
    for value in arrays:
        prefix = _RAW_OUTPUT_CONTENTS_KEY + _varint_bytes(value.nbytes)
        parts.append(prefix)
        parts.append(value if value.ndim else value.reshape(1))
        size += len(prefix) + value.nbytes
    return EncodedResponse(parts, size)
