"""Lowering: NetDef -> the runtime model flatbuffer (csrc/schema/model.fbs).

The flatbuffer is the only format the C++ runtime loads. Every tensor becomes a `Value` referred
to by index; initializers' bytes go into one `data` vector, each at a 64-byte aligned offset, so
the runtime uses them in place from a memory-mapped file.

    >>> from graphruntime.netdef import NetBuilder
    >>> b = NetBuilder("tiny"); x = b.input("x", "float32", [2]); b.output(b.op("relu", [x]))
    >>> data = lower(b.build())
    >>> data[4:8]
    b'EMBR'
"""
from __future__ import annotations

import os

import flatbuffers
import numpy as np

from graphruntime import model_fb as fb
from graphruntime.netdef import check, op_attrs
from graphruntime.proto import net_pb2

FORMAT_VERSION = 1
ALIGNMENT = 64

# AttrType codes of csrc/core/attrs.h (same numbers as net.proto's Argument.Type).
_ATTR_TYPES = {net_pb2.Argument.INT: 1, net_pb2.Argument.FLOAT: 2, net_pb2.Argument.STRING: 3,
               net_pb2.Argument.INTS: 4, net_pb2.Argument.FLOATS: 5, net_pb2.Argument.STRINGS: 6,
               net_pb2.Argument.BOOL: 7}


def _aligned_byte_vector(builder: flatbuffers.Builder, data: bytes | bytearray) -> int:
    """A [ubyte] vector whose first byte is ALIGNMENT-aligned in the finished buffer."""
    builder.assertNotNested()
    builder.nested = True
    n = len(data)
    builder.Prep(flatbuffers.number_types.UOffsetTFlags.bytewidth, n)
    builder.Prep(ALIGNMENT, n)
    builder.head = builder.head - n
    builder.Bytes[builder.head:builder.head + n] = data
    builder.vectorNumElems = n
    return builder.EndVector()


def _vector(builder, start_fn, prepend, items):
    start_fn(builder, len(items))
    for item in reversed(items):
        prepend(item)
    return builder.EndVector()


def _strings(builder, items):
    offsets = [builder.CreateString(s) for s in items]
    return _vector(builder, lambda b, n: b.StartVector(4, n, 4), builder.PrependUOffsetTRelative, offsets)


def lower(net: net_pb2.NetDef, check_net: bool = True) -> bytes:
    """Serializes a NetDef into runtime model bytes (checked against the op schemas first)."""
    types = check(net) if check_net else {}
    index: dict[str, int] = {}
    values: list[tuple[str, int, list[int], net_pb2.TensorProto | None, object]] = []

    def add_value(name, dtype_code, dims, tensor=None, quant=None):
        index[name] = len(values)
        values.append((name, dtype_code, list(dims), tensor, quant))

    for vi in net.input:
        add_value(vi.name, vi.data_type, vi.dims)
    for t in net.initializer:
        add_value(t.name, t.data_type, t.dims, t, t.quantization if t.HasField("quantization") else None)
    for op in net.op:
        for name in op.output:
            if name not in index:
                dtype, shape = types.get(name, ("undefined", []))
                code = 0 if dtype == "undefined" else net_pb2.DataType.Value(dtype.upper())
                add_value(name, code, shape)

    # Weight blob: each initializer at an aligned offset.
    offsets = {}
    total = 0
    for t in net.initializer:
        offsets[t.name] = total
        total += (len(t.raw_data) + ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT
    blob = bytearray(total)
    for t in net.initializer:
        blob[offsets[t.name]:offsets[t.name] + len(t.raw_data)] = t.raw_data

    builder = flatbuffers.Builder(total + 64 * 1024 + 512 * len(values))
    data_vec = _aligned_byte_vector(builder, blob)
    del blob

    value_offsets = []
    for name, code, dims, tensor, quant in values:
        name_off = builder.CreateString(name)
        shape_off = builder.CreateNumpyVector(np.asarray(dims, dtype=np.int64))
        quant_off = None
        if quant is not None:
            scales_off = builder.CreateNumpyVector(np.asarray(quant.scales, dtype=np.float32)) if quant.scales else None
            zps_off = builder.CreateNumpyVector(np.asarray(quant.zero_points, dtype=np.int64)) if quant.zero_points else None
            fb.QuantizationStart(builder)
            fb.QuantizationAddScale(builder, quant.scale)
            fb.QuantizationAddZeroPoint(builder, quant.zero_point)
            if scales_off is not None:
                fb.QuantizationAddScales(builder, scales_off)
            if zps_off is not None:
                fb.QuantizationAddZeroPoints(builder, zps_off)
            fb.QuantizationAddAxis(builder, quant.axis)
            quant_off = fb.QuantizationEnd(builder)
        fb.ValueStart(builder)
        fb.ValueAddName(builder, name_off)
        fb.ValueAddDtype(builder, code)
        fb.ValueAddShape(builder, shape_off)
        if tensor is not None:
            fb.ValueAddDataOffset(builder, offsets[name])
            fb.ValueAddDataSize(builder, len(tensor.raw_data))
        if quant_off is not None:
            fb.ValueAddQuantization(builder, quant_off)
        value_offsets.append(fb.ValueEnd(builder))

    node_offsets = []
    for op in net.op:
        attr_offsets = []
        op_attrs(op)  # validates the argument types
        for arg in op.arg:
            code = _ATTR_TYPES[arg.type]
            name_off = builder.CreateString(arg.name)
            s_off = builder.CreateString(arg.s) if arg.type == net_pb2.Argument.STRING else None
            ints_off = builder.CreateNumpyVector(np.asarray(arg.ints, dtype=np.int64)) if arg.type == net_pb2.Argument.INTS else None
            floats_off = builder.CreateNumpyVector(np.asarray(arg.floats, dtype=np.float64)) if arg.type == net_pb2.Argument.FLOATS else None
            strings_off = _strings(builder, list(arg.strings)) if arg.type == net_pb2.Argument.STRINGS else None
            fb.AttributeStart(builder)
            fb.AttributeAddName(builder, name_off)
            fb.AttributeAddType(builder, code)
            fb.AttributeAddI(builder, arg.i)
            fb.AttributeAddF(builder, arg.f)
            for off, add in ((s_off, fb.AttributeAddS), (ints_off, fb.AttributeAddInts),
                             (floats_off, fb.AttributeAddFloats), (strings_off, fb.AttributeAddStrings)):
                if off is not None:
                    add(builder, off)
            attr_offsets.append(fb.AttributeEnd(builder))
        type_off = builder.CreateString(op.type)
        name_off = builder.CreateString(op.name)
        ins = builder.CreateNumpyVector(np.asarray([index[i] if i else -1 for i in op.input], dtype=np.int32))
        outs = builder.CreateNumpyVector(np.asarray([index[o] for o in op.output], dtype=np.int32))
        attrs_vec = _vector(builder, fb.NodeStartAttributesVector, builder.PrependUOffsetTRelative, attr_offsets)
        fb.NodeStart(builder)
        fb.NodeAddType(builder, type_off)
        fb.NodeAddName(builder, name_off)
        fb.NodeAddInputs(builder, ins)
        fb.NodeAddOutputs(builder, outs)
        fb.NodeAddAttributes(builder, attrs_vec)
        node_offsets.append(fb.NodeEnd(builder))

    meta_offsets = []
    for entry in net.metadata:
        k, v = builder.CreateString(entry.key), builder.CreateString(entry.value)
        fb.MetadataEntryStart(builder)
        fb.MetadataEntryAddKey(builder, k)
        fb.MetadataEntryAddValue(builder, v)
        meta_offsets.append(fb.MetadataEntryEnd(builder))

    name_off = builder.CreateString(net.name)
    values_vec = _vector(builder, fb.ModelStartValuesVector, builder.PrependUOffsetTRelative, value_offsets)
    nodes_vec = _vector(builder, fb.ModelStartNodesVector, builder.PrependUOffsetTRelative, node_offsets)
    meta_vec = _vector(builder, fb.ModelStartMetadataVector, builder.PrependUOffsetTRelative, meta_offsets)
    inputs_vec = builder.CreateNumpyVector(np.asarray([index[v.name] for v in net.input], dtype=np.int32))
    outputs_vec = builder.CreateNumpyVector(np.asarray([index[v.name] for v in net.output], dtype=np.int32))
    fb.ModelStart(builder)
    fb.ModelAddFormatVersion(builder, FORMAT_VERSION)
    fb.ModelAddName(builder, name_off)
    fb.ModelAddValues(builder, values_vec)
    fb.ModelAddInputs(builder, inputs_vec)
    fb.ModelAddOutputs(builder, outputs_vec)
    fb.ModelAddNodes(builder, nodes_vec)
    fb.ModelAddMetadata(builder, meta_vec)
    fb.ModelAddData(builder, data_vec)
    builder.Finish(fb.ModelEnd(builder), file_identifier=b"EMBR")
    return builder.Output()


def save_model(net: net_pb2.NetDef, path: str | os.PathLike) -> None:
    """Lowers a NetDef and writes the runtime model file (load it with Predictor(path))."""
    data = lower(net)
    with open(os.fspath(path), "wb") as f:
        f.write(data)


__all__ = ["lower", "save_model", "FORMAT_VERSION", "ALIGNMENT"]
