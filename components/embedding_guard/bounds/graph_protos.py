"""The SavedModel protos the graph analysis reads, without importing TensorFlow.

TensorBoard ships TensorFlow's graph protos compiled (`tensorboard.compat.proto`,
package `tensorboard`, same field numbers), and importing them takes
milliseconds where `tensorflow.core` imports all of TensorFlow. It has no
SavedModel message, so this module declares that one (two fields, as
tensorflow/core/protobuf/saved_model.proto does) around TensorBoard's
MetaGraphDef. It also decodes a TensorProto's values as `tf.make_ndarray` does
and looks op definitions up in the graph's own stripped op list.

TensorFlow stays the fallback, imported when first needed: for a tensor dtype
not decoded here, and for an op the graph's op list lacks.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from tensorboard.compat.proto import meta_graph_pb2, types_pb2

_SAVED_MODEL_NAME = "embedding_guard.bounds.SavedModel"


def _saved_model_class() -> Any:
    """`message SavedModel {int64 saved_model_schema_version = 1; repeated MetaGraphDef meta_graphs = 2;}`."""
    pool = descriptor_pool.Default()
    try:
        descriptor = pool.FindMessageTypeByName(_SAVED_MODEL_NAME)
    except KeyError:
        file_proto = descriptor_pb2.FileDescriptorProto(
            name="embedding_guard/bounds/saved_model.proto",
            package="embedding_guard.bounds",
            syntax="proto3",
            dependency=[meta_graph_pb2.DESCRIPTOR.name],
        )
        message = file_proto.message_type.add(name="SavedModel")
        message.field.add(
            name="saved_model_schema_version",
            number=1,
            type=descriptor_pb2.FieldDescriptorProto.TYPE_INT64,
            label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
        )
        message.field.add(
            name="meta_graphs",
            number=2,
            type=descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE,
            label=descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED,
            type_name="." + meta_graph_pb2.MetaGraphDef.DESCRIPTOR.full_name,
        )
        pool.AddSerializedFile(file_proto.SerializeToString())
        descriptor = pool.FindMessageTypeByName(_SAVED_MODEL_NAME)
    get_class = getattr(message_factory, "GetMessageClass", None)
    if get_class is not None:  # protobuf >= 4.21
        return get_class(descriptor)
    return message_factory.MessageFactory(pool).GetPrototype(descriptor)


SavedModel = _saved_model_class()
MetaGraphDef = meta_graph_pb2.MetaGraphDef
AssetFileDef = meta_graph_pb2.AssetFileDef


def parse_saved_model(data: bytes) -> Any:
    """A SavedModel (TensorBoard's MetaGraphDef inside) from saved_model.pb's bytes.

    Raises:
      google.protobuf.message.DecodeError: The bytes are not a SavedModel.
    """
    saved_model = SavedModel()
    with warnings.catch_warnings():
        # protobuf warns ("Unexpected end-group tag") before it raises on some
        # damaged bytes; the caller's error names the file once.
        warnings.simplefilter("ignore", RuntimeWarning)
        saved_model.ParseFromString(data)
    return saved_model


def unpack_asset_file_def(packed: Any) -> Any:
    """The AssetFileDef in a `google.protobuf.Any` of a saved_model_assets collection.

    `Any.Unpack` checks the type URL's package, which names `tensorflow.`, not
    TensorBoard's copy; the bytes are the same message, so they are parsed
    directly. Another type gives an empty AssetFileDef, as a failed Unpack leaves it.
    """
    if packed.type_url.rsplit("/", 1)[-1] != "tensorflow.AssetFileDef":
        return AssetFileDef()
    return AssetFileDef.FromString(packed.value)


def op_output_args(meta_graph: Any, op: str) -> list[str] | None:
    """The output argument names of op, from the graph's stripped op list, else TensorFlow's.

    A SavedModel lists every op its graph and functions use; TensorFlow's
    registry, imported only then, answers for one it lacks.
    """
    for op_def in meta_graph.meta_info_def.stripped_op_list.op:
        if op_def.name == op:
            return [arg.name for arg in op_def.output_arg]
    from tensorflow.python.framework import op_def_registry  # noqa: PLC0415

    registered = op_def_registry.get(op)
    if registered is None:
        return None
    return [arg.name for arg in registered.output_arg]


# DataType -> (numpy dtype, the TensorProto field holding its values).
_DECODED = {
    types_pb2.DT_FLOAT: (np.float32, "float_val"),
    types_pb2.DT_DOUBLE: (np.float64, "double_val"),
    types_pb2.DT_INT8: (np.int8, "int_val"),
    types_pb2.DT_INT16: (np.int16, "int_val"),
    types_pb2.DT_INT32: (np.int32, "int_val"),
    types_pb2.DT_UINT8: (np.uint8, "int_val"),
    types_pb2.DT_UINT16: (np.uint16, "int_val"),
    types_pb2.DT_INT64: (np.int64, "int64_val"),
    types_pb2.DT_UINT32: (np.uint32, "uint32_val"),
    types_pb2.DT_UINT64: (np.uint64, "uint64_val"),
    types_pb2.DT_BOOL: (np.bool_, "bool_val"),
    # half_val holds each float16's bits.
    types_pb2.DT_HALF: (np.float16, "half_val"),
    types_pb2.DT_STRING: (np.object_, "string_val"),
}


def tensor_ndarray(tensor: Any) -> np.ndarray:
    """A TensorProto's values as the numpy array `tf.make_ndarray` returns.

    Values come from tensor_content, else from the dtype's repeated field, the
    last one repeated up to the shape's size (a constant stores one value for a
    uniform tensor); no values at all make zeros. Dtypes without a numpy twin
    here (bfloat16, complex, quantized, resource, variant) go to TensorFlow.
    """
    if tensor.dtype not in _DECODED:
        return _tensorflow_ndarray(tensor)
    dtype, field = _DECODED[tensor.dtype]
    shape = [dim.size for dim in tensor.tensor_shape.dim]
    num_elements = np.prod(shape, dtype=np.int64)
    if tensor.tensor_content:
        return np.frombuffer(tensor.tensor_content, dtype=dtype).copy().reshape(shape)
    if dtype is np.object_:
        # np.pad cannot pad object arrays.
        strings = list(tensor.string_val)
        padding = num_elements - len(strings)
        if padding > 0:
            strings.extend([strings[-1] if strings else ""] * padding)
        return np.array(strings, dtype=dtype).reshape(shape)
    values: np.ndarray
    if field == "half_val":
        values = np.fromiter(tensor.half_val, dtype=np.uint16).view(np.float16)
    else:
        values = np.fromiter(getattr(tensor, field), dtype=dtype)
    if values.size == 0:
        return np.zeros(shape, dtype)
    if values.size != num_elements:
        values = np.pad(values, (0, int(num_elements) - values.size), "edge")
    return values.reshape(shape)


def _tensorflow_ndarray(tensor: Any) -> np.ndarray:
    from tensorflow.core.framework import tensor_pb2  # noqa: PLC0415
    from tensorflow.python.framework import tensor_util  # noqa: PLC0415

    if not isinstance(tensor, tensor_pb2.TensorProto):
        tensor = tensor_pb2.TensorProto.FromString(tensor.SerializeToString())
    array: np.ndarray = tensor_util.MakeNdarray(tensor)
    return array
