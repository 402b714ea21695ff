# The compiled framer's and example parser's interface (_tfrecord_framing.c).
from typing import Any

def find_records(data: bytes, record_limit: int, /) -> tuple[bytes, int, int, int | None]: ...
def parse_int64_features(
    buffer: Any, starts: Any, lengths: Any, names: tuple[bytes, ...], /
) -> tuple[list[tuple[bytearray, bytearray]] | None, tuple[int, int, int] | None]: ...
