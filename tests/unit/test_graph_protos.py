"""The graph protos read without TensorFlow are TensorFlow's, value for value.

`graph_protos` parses saved_model.pb with TensorBoard's compiled MetaGraphDef,
decodes TensorProtos with numpy and looks op definitions up in the graph's own
op list. TensorFlow is the reference: its saved_model_pb2 parse, its
`tf.make_ndarray` and its op registry.
"""

from __future__ import annotations

import pathlib

import numpy as np
import pytest
import tensorflow as tf
import tfx
from hypothesis import given, settings
from hypothesis import strategies as st
from tensorboard.compat.proto import tensor_pb2 as tensorboard_tensor_pb2
from tensorflow.core.framework import tensor_pb2, types_pb2
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow.python.framework import op_def_registry

from embedding_guard.bounds import graph_analysis, graph_protos, graph_refs

TESTDATA = pathlib.Path(__file__).parents[1] / "component" / "testdata"
TAXI_GRAPH = (
    pathlib.Path(tfx.__file__).parent / "components" / "testdata" / "transform" / "transform_graph"
)
TRANSFORM_FNS = {
    "testdata": TESTDATA / "transform_graph" / "transform_fn",
    "tfx_taxi_tf1": TAXI_GRAPH / "transform_fn",
}
PROPERTIES = settings(max_examples=400, deadline=None, database=None)


def _tensorflow_saved_model(transform_fn: pathlib.Path) -> saved_model_pb2.SavedModel:
    return saved_model_pb2.SavedModel.FromString((transform_fn / "saved_model.pb").read_bytes())


@pytest.mark.parametrize("name", sorted(TRANSFORM_FNS))
def test_saved_model_parses_byte_identically_to_tensorflow(name):
    transform_fn = TRANSFORM_FNS[name]
    ours = graph_analysis.read_saved_model(str(transform_fn))
    reference = _tensorflow_saved_model(transform_fn)

    assert type(ours).DESCRIPTOR.full_name == "embedding_guard.bounds.SavedModel"
    assert ours.saved_model_schema_version == reference.saved_model_schema_version
    assert len(ours.meta_graphs) == len(reference.meta_graphs) >= 1
    for mine, theirs in zip(ours.meta_graphs, reference.meta_graphs, strict=True):
        assert type(mine).DESCRIPTOR.full_name == "tensorboard.MetaGraphDef"
        assert mine.SerializeToString(deterministic=True) == theirs.SerializeToString(
            deterministic=True
        )
        # No field TensorFlow knows is unknown to TensorBoard's copy.
        assert not mine.UnknownFields()
    assert ours.SerializeToString(deterministic=True) == reference.SerializeToString(
        deterministic=True
    )


def test_a_file_that_is_no_saved_model_is_an_analysis_error(tmp_path):
    (tmp_path / "saved_model.pb").write_bytes(b"\xff\xff\xff\xff garbage")

    with pytest.raises(graph_analysis.GraphAnalysisError, match="is not a SavedModel"):
        graph_analysis.read_saved_model(str(tmp_path))


@pytest.mark.parametrize("name", sorted(TRANSFORM_FNS))
def test_op_output_args_are_the_registry_s(name):
    meta_graph = graph_analysis.read_saved_model(str(TRANSFORM_FNS[name])).meta_graphs[0]
    ops = [op.name for op in meta_graph.meta_info_def.stripped_op_list.op]

    assert ops
    for op in ops:
        expected = [arg.name for arg in op_def_registry.get(op).output_arg]
        assert graph_protos.op_output_args(meta_graph, op) == expected, op


def test_an_op_missing_from_the_graph_s_list_falls_back_to_tensorflow():
    meta_graph = graph_protos.MetaGraphDef()

    assert graph_protos.op_output_args(meta_graph, "LookupTableFindV2") == ["values"]
    assert graph_protos.op_output_args(meta_graph, "NoSuchOpAnywhere") is None


@pytest.mark.parametrize("name", sorted(TRANSFORM_FNS))
def test_every_constant_of_the_graphs_decodes_as_tensorflow_decodes_it(name):
    meta_graph = graph_analysis.read_saved_model(str(TRANSFORM_FNS[name])).meta_graphs[0]
    nodes = list(meta_graph.graph_def.node)
    for function in meta_graph.graph_def.library.function:
        nodes.extend(function.node_def)
    constants = [node for node in nodes if node.op == "Const"]

    assert constants
    for node in constants:
        tensor = node.attr["value"].tensor
        reference = tf.make_ndarray(tensor_pb2.TensorProto.FromString(tensor.SerializeToString()))
        _assert_same_array(graph_protos.tensor_ndarray(tensor), reference)


# DataType -> hypothesis strategy of one value in its TensorProto field, and that field.
_INTS = {
    types_pb2.DT_INT8: np.int8,
    types_pb2.DT_INT16: np.int16,
    types_pb2.DT_INT32: np.int32,
    types_pb2.DT_UINT8: np.uint8,
    types_pb2.DT_UINT16: np.uint16,
    types_pb2.DT_INT64: np.int64,
    types_pb2.DT_UINT32: np.uint32,
    types_pb2.DT_UINT64: np.uint64,
}
_FIELD = {
    types_pb2.DT_INT8: "int_val",
    types_pb2.DT_INT16: "int_val",
    types_pb2.DT_INT32: "int_val",
    types_pb2.DT_UINT8: "int_val",
    types_pb2.DT_UINT16: "int_val",
    types_pb2.DT_INT64: "int64_val",
    types_pb2.DT_UINT32: "uint32_val",
    types_pb2.DT_UINT64: "uint64_val",
    types_pb2.DT_FLOAT: "float_val",
    types_pb2.DT_DOUBLE: "double_val",
    types_pb2.DT_HALF: "half_val",
    types_pb2.DT_BFLOAT16: "half_val",
    types_pb2.DT_BOOL: "bool_val",
    types_pb2.DT_STRING: "string_val",
    types_pb2.DT_COMPLEX64: "scomplex_val",
}
_NUMPY = {
    **_INTS,
    types_pb2.DT_FLOAT: np.float32,
    types_pb2.DT_DOUBLE: np.float64,
    types_pb2.DT_HALF: np.float16,
    types_pb2.DT_BOOL: np.bool_,
    types_pb2.DT_COMPLEX64: np.complex64,
}


def _values(dtype: int) -> st.SearchStrategy:
    if dtype in _INTS:
        info = np.iinfo(_INTS[dtype])
        return st.integers(int(info.min), int(info.max))
    if dtype == types_pb2.DT_FLOAT:
        return st.floats(width=32)
    if dtype == types_pb2.DT_DOUBLE:
        return st.floats()
    if dtype == types_pb2.DT_COMPLEX64:
        return st.floats(width=32)
    if dtype in (types_pb2.DT_HALF, types_pb2.DT_BFLOAT16):
        return st.integers(0, 2**16 - 1)  # the value's bits
    if dtype == types_pb2.DT_BOOL:
        return st.booleans()
    return st.binary(max_size=6)


@st.composite
def tensor_protos(draw: st.DrawFn) -> tensor_pb2.TensorProto:
    """TensorProtos as TensorFlow writes them and some it does not (fewer values than the shape)."""
    dtype = draw(st.sampled_from(sorted(_FIELD)))
    shape = draw(st.lists(st.integers(0, 4), max_size=3))
    size = int(np.prod(shape, dtype=np.int64))
    tensor = tensor_pb2.TensorProto(dtype=dtype)
    for dim in shape:
        tensor.tensor_shape.dim.add(size=dim)
    if dtype in _NUMPY and draw(st.booleans()):
        # tensor_content: the values' raw bytes (sometimes a wrong count, which must fail alike).
        count = draw(st.sampled_from([size, size, max(size - 1, 0), size + 1]))
        raw = draw(st.binary(min_size=count * 8, max_size=count * 8))
        tensor.tensor_content = raw[: count * np.dtype(_NUMPY[dtype]).itemsize]
        return tensor
    # One value broadcast, all values, none, or fewer than the shape holds.
    count = draw(st.sampled_from([1, size, 0, max(size - 1, 0), size + 1]))
    values = draw(st.lists(_values(dtype), min_size=count, max_size=count))
    if dtype == types_pb2.DT_COMPLEX64:
        values = values * 2
    getattr(tensor, _FIELD[dtype]).extend(values)
    return tensor


def _outcome(decode, tensor):
    try:
        return decode(tensor)
    except (ValueError, TypeError) as error:
        return type(error)


def _assert_same_array(ours, reference):
    if isinstance(reference, type):
        assert ours is reference
        return
    assert isinstance(ours, np.ndarray)
    assert ours.dtype == reference.dtype
    assert ours.shape == reference.shape
    if reference.dtype == np.object_:
        assert ours.tolist() == reference.tolist()
    else:
        assert ours.tobytes() == reference.tobytes()


@PROPERTIES
@given(tensor=tensor_protos())
def test_tensor_values_are_make_ndarray_s(tensor):
    reference = _outcome(tf.make_ndarray, tensor)
    # TensorBoard's TensorProto, as read_saved_model gives it, and TensorFlow's own.
    as_read = tensorboard_tensor_pb2.TensorProto.FromString(tensor.SerializeToString())

    _assert_same_array(_outcome(graph_protos.tensor_ndarray, as_read), reference)
    _assert_same_array(_outcome(graph_protos.tensor_ndarray, tensor), reference)


def test_tensor_values_flatten_to_python_values():
    tensor = tf.make_tensor_proto([[3, 4], [5, 6]], dtype=tf.int64)
    strings = tf.make_tensor_proto([b"a", b"b"])

    assert graph_refs.tensor_values(tensor) == [3, 4, 5, 6]
    assert graph_refs.tensor_values(strings) == [b"a", b"b"]
    assert graph_refs.tensor_values(tf.make_tensor_proto(7, shape=[3])) == [7, 7, 7]


def test_a_tf1_graph_s_asset_collection_unpacks_as_tensorflow_unpacks_it():
    from tensorflow.core.protobuf import meta_graph_pb2

    meta_graph = graph_analysis.read_saved_model(str(TRANSFORM_FNS["tfx_taxi_tf1"])).meta_graphs[0]
    packed = list(meta_graph.collection_def["saved_model_assets"].any_list.value)

    assert packed
    for any_proto in packed:
        reference = meta_graph_pb2.AssetFileDef()
        # google.protobuf's Any: its Unpack checks the type URL against TensorFlow's class.
        assert any_proto.Unpack(reference)
        ours = graph_protos.unpack_asset_file_def(any_proto)
        assert ours.SerializeToString() == reference.SerializeToString()
        assert ours.filename.startswith("vocab_")
