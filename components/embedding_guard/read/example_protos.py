"""tf.Example's protos without TensorFlow: the same messages, in a descriptor pool of their own.

`tf.train.SequenceExample` and `tf.train.FeatureLists` come from importing
TensorFlow, 3-5 s. The reader needs them only to look at a split's first
record and at the rare record that is more than one Features field. The
classes here are built by the installed protobuf runtime from the same schema
as tensorflow/core/example/{feature,example}.proto (field numbers, types, map
entries, proto3), so they accept, refuse and read every record exactly as
TensorFlow's do: the same parser runs on the same schema
(tests/component/test_example_protos.py checks it on arbitrary bytes). A pool of
their own keeps them clear of TensorFlow's, which registers the same names in
the default pool when it is imported.
"""

from __future__ import annotations

import functools
import warnings
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_PACKAGE = "tensorflow"
_Field = descriptor_pb2.FieldDescriptorProto


def _field(
    name: str,
    number: int,
    field_type: int,
    *,
    repeated: bool = False,
    type_name: str | None = None,
    oneof_index: int | None = None,
    packed: bool = False,
) -> dict[str, Any]:
    field: dict[str, Any] = {
        "name": name,
        "number": number,
        "type": field_type,
        "label": _Field.LABEL_REPEATED if repeated else _Field.LABEL_OPTIONAL,
    }
    if type_name is not None:
        field["type_name"] = f".{_PACKAGE}.{type_name}"
    if oneof_index is not None:
        field["oneof_index"] = oneof_index
    if packed:
        field["options"] = {"packed": True}
    return field


def _map_entry(name: str, value_type: str) -> dict[str, Any]:
    """A map<string, value_type> field's entry message, as protoc writes it."""
    return {
        "name": name,
        "field": [
            _field("key", 1, _Field.TYPE_STRING),
            _field("value", 2, _Field.TYPE_MESSAGE, type_name=value_type),
        ],
        "options": {"map_entry": True},
    }


def _list_message(name: str, value_type: int, packed: bool) -> dict[str, Any]:
    return {"name": name, "field": [_field("value", 1, value_type, repeated=True, packed=packed)]}


# tensorflow/core/example/feature.proto and example.proto, field for field.
_FEATURE_PROTO = {
    "name": "embedding_guard/tensorflow/core/example/feature.proto",
    "package": _PACKAGE,
    "syntax": "proto3",
    "message_type": [
        _list_message("BytesList", _Field.TYPE_BYTES, packed=False),
        _list_message("FloatList", _Field.TYPE_FLOAT, packed=True),
        _list_message("Int64List", _Field.TYPE_INT64, packed=True),
        {
            "name": "Feature",
            "field": [
                _field("bytes_list", 1, _Field.TYPE_MESSAGE, type_name="BytesList", oneof_index=0),
                _field("float_list", 2, _Field.TYPE_MESSAGE, type_name="FloatList", oneof_index=0),
                _field("int64_list", 3, _Field.TYPE_MESSAGE, type_name="Int64List", oneof_index=0),
            ],
            "oneof_decl": [{"name": "kind"}],
        },
        {
            "name": "Features",
            "field": [
                _field(
                    "feature",
                    1,
                    _Field.TYPE_MESSAGE,
                    repeated=True,
                    type_name="Features.FeatureEntry",
                )
            ],
            "nested_type": [_map_entry("FeatureEntry", "Feature")],
        },
        {
            "name": "FeatureList",
            "field": [
                _field("feature", 1, _Field.TYPE_MESSAGE, repeated=True, type_name="Feature")
            ],
        },
        {
            "name": "FeatureLists",
            "field": [
                _field(
                    "feature_list",
                    1,
                    _Field.TYPE_MESSAGE,
                    repeated=True,
                    type_name="FeatureLists.FeatureListEntry",
                )
            ],
            "nested_type": [_map_entry("FeatureListEntry", "FeatureList")],
        },
    ],
}
_EXAMPLE_PROTO = {
    "name": "embedding_guard/tensorflow/core/example/example.proto",
    "package": _PACKAGE,
    "syntax": "proto3",
    "dependency": [_FEATURE_PROTO["name"]],
    "message_type": [
        {
            "name": "Example",
            "field": [_field("features", 1, _Field.TYPE_MESSAGE, type_name="Features")],
        },
        {
            "name": "SequenceExample",
            "field": [
                _field("context", 1, _Field.TYPE_MESSAGE, type_name="Features"),
                _field("feature_lists", 2, _Field.TYPE_MESSAGE, type_name="FeatureLists"),
            ],
        },
    ],
}


@functools.cache
def message_class(name: str) -> Any:
    """The message class of tensorflow.<name> (e.g. "SequenceExample"), built on first use.

    Args:
      name: A message of feature.proto or example.proto: "Example",
        "SequenceExample", "Features", "FeatureLists", "Feature", ...

    Returns:
      A protobuf message class; `FromString` raises
      google.protobuf.message.DecodeError where TensorFlow's raises it.
    """
    descriptor = _pool().FindMessageTypeByName(f"{_PACKAGE}.{name}")
    # protobuf 4.21 added GetMessageClass and later removed GetPrototype.
    get_class = getattr(message_factory, "GetMessageClass", None)
    if get_class is not None:
        return get_class(descriptor)
    return message_factory.MessageFactory(descriptor.file.pool).GetPrototype(descriptor)


def parse(name: str, data: bytes) -> Any:
    """data parsed as tensorflow.<name>, without protobuf's warnings on stderr.

    protobuf warns ("Unexpected end-group tag") on some bytes it then reads or
    refuses; a refusal raises google.protobuf.message.DecodeError, and the
    caller's message names the shard once.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return message_class(name).FromString(data)


@functools.cache
def _pool() -> descriptor_pool.DescriptorPool:
    pool = descriptor_pool.DescriptorPool()
    for proto in (_FEATURE_PROTO, _EXAMPLE_PROTO):
        file_proto = descriptor_pb2.FileDescriptorProto()
        _fill(file_proto, proto)
        pool.Add(file_proto)
    return pool


def _fill(target: Any, fields: dict[str, Any]) -> None:
    """Sets a descriptor proto's fields from a dict of values, lists and nested dicts."""
    for key, value in fields.items():
        if isinstance(value, dict):
            _fill(getattr(target, key), value)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, dict):
                    _fill(getattr(target, key).add(), item)
                else:
                    getattr(target, key).append(item)
        else:
            setattr(target, key, value)
