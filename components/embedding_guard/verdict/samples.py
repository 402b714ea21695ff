"""The text of sample values: cut short, so that huge values stay small in every report.

Pure Python; the counting core (`core`) keys its float, bytes and raw samples by
these texts, and `offenders` locates them by the same keys.
"""

from __future__ import annotations

# Longest text kept of a float, bytes or raw sample value: twelve 2 MB values must
# not become 20 MB of terminal output and report files.
SAMPLE_VALUE_MAX_CHARS = 200


def sample_text(value: object) -> str:
    """Text of a bytes or str sample value, cut to SAMPLE_VALUE_MAX_CHARS and marked.

    Bytes are cut before they are decoded, so a 2 MB value costs 200 bytes of work.
    The mark names the full length, so values that share a prefix but not a
    length stay apart.
    """
    if isinstance(value, bytes):
        text = value[:SAMPLE_VALUE_MAX_CHARS].decode("utf-8", errors="backslashreplace")
        if len(value) > SAMPLE_VALUE_MAX_CHARS:
            text += f"... [truncated, {len(value)} bytes]"
        return text
    text = str(value)
    if len(text) > SAMPLE_VALUE_MAX_CHARS:
        text = text[:SAMPLE_VALUE_MAX_CHARS] + f"... [truncated, {len(text)} chars]"
    return text


def raw_text(value: object) -> str:
    """The sample key of a raw value (raw mode's OOV samples)."""
    return sample_text(value if isinstance(value, bytes) else str(value))


def raw_keys(values: list) -> list[str]:
    """The sample keys of raw values."""
    return [raw_text(value) for value in values]


def non_integer_text(values: list) -> list[str]:
    """The sample keys of float or bytes values of an integer feature."""
    return [sample_text(value if isinstance(value, bytes) else repr(value)) for value in values]


_TRUNCATION_MARK = "... [truncated]"


def truncate_sample(value: int | str) -> int | str:
    """Shortens a sample text longer than SAMPLE_VALUE_MAX_CHARS, marking it as truncated."""
    if isinstance(value, str) and len(value) > SAMPLE_VALUE_MAX_CHARS + len(_TRUNCATION_MARK):
        return value[:SAMPLE_VALUE_MAX_CHARS] + _TRUNCATION_MARK
    return value
