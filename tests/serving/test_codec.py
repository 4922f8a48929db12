"""serving.codec.parse_infer_request against the protobuf parser (the oracle), and decode_request
on what it returns.

Triton's generated ModelInferRequest stands in for ours: the wire format is the same, and this
process may not import serving.proto next to tritonclient (both define package `inference`).
"""
import numpy as np
import pytest
from google.protobuf.message import DecodeError

from serving import codec
from serving.errors import InternalError, InvalidRequestError
from serving.model import TensorSpec

service_pb2 = pytest.importorskip("tritonclient.grpc.service_pb2")
Request = service_pb2.ModelInferRequest


def full_request():
    request = Request(model_name="m", model_version="2", id="req-7")
    request.parameters["timeout"].int64_param = 1500
    request.parameters["note"].string_param = "hello"
    a = request.inputs.add(name="a", datatype="FP32", shape=[2, 3])
    a.parameters["binary_data_size"].int64_param = 24
    request.inputs.add(name="b", datatype="INT64", shape=[2])
    request.outputs.add(name="y")
    request.raw_input_contents.append(np.arange(6, dtype="<f4").tobytes())
    request.raw_input_contents.append(np.array([5, -9], dtype="<i8").tobytes())
    return request


def assert_same(parsed, message):
    for field in ("model_name", "model_version", "id"):
        assert getattr(parsed, field) == getattr(message, field)
    assert dict(parsed.parameters) == dict(message.parameters)
    assert list(parsed.inputs) == list(message.inputs)
    assert list(parsed.outputs) == list(message.outputs)
    assert [bytes(r) for r in parsed.raw_input_contents] == list(message.raw_input_contents)


def test_parse_matches_protobuf_and_does_not_copy_raw_contents():
    data = full_request().SerializeToString()
    parsed = codec.parse_infer_request(data, Request)
    assert isinstance(parsed, codec.InferRequest)
    assert_same(parsed, Request.FromString(data))
    # The raw contents are views of the received bytes, not copies.
    array = np.frombuffer(parsed.raw_input_contents[0], dtype="<f4")
    assert np.shares_memory(array, np.frombuffer(data, dtype=np.uint8))
    np.testing.assert_array_equal(array, np.arange(6, dtype=np.float32))


def test_parse_handles_any_field_order_empty_raw_and_unknown_fields():
    message = full_request()
    records = [Request(raw_input_contents=[r]).SerializeToString() for r in message.raw_input_contents]
    header = Request(model_name=message.model_name, id=message.id).SerializeToString()
    tail = Request(inputs=message.inputs, outputs=message.outputs,
                   parameters=message.parameters).SerializeToString()
    empty_raw = Request(raw_input_contents=[b""]).SerializeToString()
    # Unknown fields of every wire type the scanner skips: varint (field 8), fixed64 (9),
    # length-delimited (10), fixed32 (11), and one whose key needs two varint bytes (20).
    unknown = (bytes([8 << 3 | 0]) + b"\x96\x01" + bytes([9 << 3 | 1]) + b"\x01" * 8
               + bytes([10 << 3 | 2, 3]) + b"abc" + bytes([11 << 3 | 5]) + b"\x02" * 4
               + bytes([(20 << 3 | 0) & 0x7F | 0x80, (20 << 3) >> 7, 7]))
    data = records[1] + header + unknown + records[0] + empty_raw + tail
    parsed = codec.parse_infer_request(data, Request)
    expected = Request.FromString(data)
    assert_same(parsed, expected)
    assert [bytes(r) for r in parsed.raw_input_contents] == [
        message.raw_input_contents[1], message.raw_input_contents[0], b""]


def test_parse_of_a_typed_request_without_raw_contents():
    request = Request(model_name="m")
    request.inputs.add(name="a", datatype="FP32", shape=[1, 2]).contents.fp32_contents.extend([1, 2])
    data = request.SerializeToString()
    parsed = codec.parse_infer_request(data, Request)
    assert_same(parsed, request)
    assert parsed.raw_input_contents == []


@pytest.mark.parametrize("cut", [1, 5, 20, -3])
def test_truncated_or_malformed_data_raises_decode_error(cut):
    data = full_request().SerializeToString()
    with pytest.raises(DecodeError):
        codec.parse_infer_request(data[:cut], Request)
    with pytest.raises(DecodeError):
        codec.parse_infer_request(b"\xff" * 11, Request)  # a varint longer than 10 bytes


def test_group_wire_type_falls_back_to_the_protobuf_parser():
    data = full_request().SerializeToString() + bytes([12 << 3 | 3, 12 << 3 | 4])  # empty group
    parsed = codec.parse_infer_request(data, Request)
    assert_same(parsed, Request.FromString(data))


class _Settings:
    max_batch_size = 4


class _Version:
    name, version, settings = "m", 2, _Settings()
    inputs = [TensorSpec("a", "FP32", np.dtype(np.float32), (-1, 3)),
              TensorSpec("b", "INT64", np.dtype(np.int64), (-1,))]
    outputs = [TensorSpec("y", "FP32", np.dtype(np.float32), (-1, 3))]
    input_by_name = {s.name: s for s in inputs}
    output_by_name = {s.name: s for s in outputs}


def test_decode_request_gives_the_same_feed_from_parsed_and_protobuf_requests():
    data = full_request().SerializeToString()
    feed, names = codec.decode_request(codec.parse_infer_request(data, Request), _Version())
    oracle_feed, oracle_names = codec.decode_request(Request.FromString(data), _Version())
    assert names == oracle_names == ["y"]
    for name in ("a", "b"):
        assert feed[name].dtype == oracle_feed[name].dtype
        np.testing.assert_array_equal(feed[name], oracle_feed[name])
    np.testing.assert_array_equal(feed["a"], np.arange(6, dtype=np.float32).reshape(2, 3))
    np.testing.assert_array_equal(feed["b"], [5, -9])


def test_decode_request_checks_byte_size_of_parsed_raw_contents():
    request = full_request()
    request.raw_input_contents[0] = request.raw_input_contents[0][:-4]
    parsed = codec.parse_infer_request(request.SerializeToString(), Request)
    with pytest.raises(InvalidRequestError, match=r"input 'a': raw data has 20 bytes, but shape "
                                                  r"\[2, 3\] of FP32 needs 24"):
        codec.decode_request(parsed, _Version())


def test_decoded_inputs_are_aligned_wherever_the_raw_contents_start():
    values = np.arange(6, dtype=np.float32)
    for pad in range(4):  # shifts the raw contents by 0..3 bytes within the message
        request = Request(model_name="m" * (1 + pad), id="i")
        request.inputs.add(name="a", datatype="FP32", shape=[2, 3])
        request.inputs.add(name="b", datatype="INT64", shape=[2])
        request.raw_input_contents.append(values.tobytes())
        request.raw_input_contents.append(np.array([3, 4], "<i8").tobytes())
        feed, _ = codec.decode_request(
            codec.parse_infer_request(request.SerializeToString(), Request), _Version())
        assert feed["a"].flags.aligned and feed["b"].flags.aligned
        np.testing.assert_array_equal(feed["a"], values.reshape(2, 3))
        np.testing.assert_array_equal(feed["b"], [3, 4])


class _OutputVersion:
    name, version, version_str = "m", 2, "2"


def test_encoded_response_serializes_like_the_full_message():
    Response = service_pb2.ModelInferResponse
    Stream = service_pb2.ModelStreamInferResponse
    small = np.arange(6, dtype=np.float32).reshape(2, 3)
    strided = np.arange(12, dtype=np.int64).reshape(3, 4)[:, ::2]  # made contiguous
    outputs = {"y": np.linspace(0, 1, 40000, dtype=np.float32).reshape(2, 20000), "small": small,
               "strided": strided, "scalar": np.float64(2.5), "flags": np.array([True, False]),
               "empty": np.zeros((0, 3), np.float32)}
    names = ["y", "small", "strided", "scalar", "flags", "empty"]
    for request_id in ("", "req-9"):
        oracle = codec.encode_response(Response(), _OutputVersion(), outputs, names, request_id)
        encoded = codec.encode_response_parts(Response(), _OutputVersion(), outputs, names,
                                              request_id)
        assert encoded.SerializeToString() == oracle.SerializeToString()
        assert encoded.serialize_as_stream_response() == \
            Stream(infer_response=oracle).SerializeToString()
    parsed = Response.FromString(encoded.SerializeToString())
    assert [o.name for o in parsed.outputs] == names
    assert list(parsed.outputs[3].shape) == [] and list(parsed.outputs[5].shape) == [0, 3]
    np.testing.assert_array_equal(
        np.frombuffer(parsed.raw_output_contents[1], np.float32).reshape(2, 3), small)
    np.testing.assert_array_equal(
        np.frombuffer(parsed.raw_output_contents[2], "<i8").reshape(3, 2), strided)


def test_encode_reports_missing_and_unsupported_outputs():
    for outputs, message in (({}, "produced no output 'y'"),
                             ({"y": np.zeros(2, np.complex64)}, "output 'y'")):
        with pytest.raises(InternalError, match=message):
            codec.encode_response_parts(service_pb2.ModelInferResponse(), _OutputVersion(),
                                        outputs, ["y"], "")


def test_decode_refuses_unsupported_tensor_parameters():
    request = full_request()
    request.inputs[1].parameters["shared_memory_region"].string_param = "region"
    with pytest.raises(InvalidRequestError, match="input 'b': parameter 'shared_memory_region' "
                                                  "is not supported"):
        codec.decode_request(codec.parse_infer_request(request.SerializeToString(), Request),
                             _Version())
    request = full_request()
    request.outputs[0].parameters["classification"].int64_param = 3
    with pytest.raises(InvalidRequestError, match="output 'y': parameter 'classification' is "
                                                  "not supported"):
        codec.decode_request(codec.parse_infer_request(request.SerializeToString(), Request),
                             _Version())
