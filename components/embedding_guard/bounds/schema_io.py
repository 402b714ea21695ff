"""Reads a user-given Schema proto file, text or binary, with one-line errors."""

from __future__ import annotations

from typing import Any

from embedding_guard.errors import InputError


def read_schema(path: str, parameter: str) -> Any:
    """Reads a Schema proto from a text (schema.pbtxt) or binary file.

    Args:
      path: The file, local or on any filesystem TensorFlow reads.
      parameter: How the caller names the path in messages (`--schema`).

    Returns:
      The schema_pb2.Schema.

    Raises:
      InputError: The path is missing, a folder, a FIFO or device, or not a
        Schema proto.
    """
    from google.protobuf import message, text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    from embedding_guard.read import files, storage

    files.check_regular_file(path, parameter, "schema.pbtxt file")
    try:
        with storage.open_file(path, "rb") as f:
            data = f.read()
    except Exception as error:  # noqa: BLE001 - an unknown filesystem, a missing plugin, I/O
        raise InputError(
            f"{parameter} {path!r} cannot be read ({storage.error_text(error)}); pass a "
            "schema.pbtxt on a filesystem TensorFlow reads."
        ) from None
    if not data.strip():
        raise InputError(
            f"{parameter} {path!r} is empty; pass a schema.pbtxt such as SchemaGen writes."
        )
    schema = schema_pb2.Schema()
    try:
        text_format.Parse(data.decode("utf-8"), schema)
    except UnicodeDecodeError:
        try:
            schema.ParseFromString(data)
        except message.DecodeError:
            raise InputError(
                f"{parameter} {path!r} is neither a text Schema proto (it is not UTF-8) nor a "
                "binary one; pass a schema.pbtxt such as SchemaGen writes."
            ) from None
    except text_format.ParseError as error:
        raise InputError(
            f"{parameter} {path!r} is not a text Schema proto ({error}); pass a schema.pbtxt such "
            "as SchemaGen writes."
        ) from None
    return schema
