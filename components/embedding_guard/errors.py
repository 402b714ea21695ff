"""The error every bad-input problem raises, so callers can tell it from a bug."""

import re

# TensorFlow wraps eager errors in "{{function_node ...}} ... [Op:...]"; only the
# middle is meant for people.
_OP_ERROR_NOISE = re.compile(r"^\{\{[^}]*\}\}\s*|\s*\[Op:[^\]]*\].*$")


class InputError(ValueError):
    """An input artifact, file or parameter cannot be used; the message says which and why."""


def first_line(error: BaseException) -> str:
    """The first line of an error's message, for a one-line message that names the input.

    Library messages run on over lines of paths and data; TensorFlow's OpError
    keeps its text in `.message`, decorated with function-node and op names.
    """
    message = getattr(error, "message", None) or str(error)
    lines = message.strip().splitlines() or [type(error).__name__]
    return _OP_ERROR_NOISE.sub("", lines[0]) or lines[0]
