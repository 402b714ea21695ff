"""The error every bad-input problem raises, so callers can tell it from a bug."""


class InputError(ValueError):
    """An input artifact, file or parameter cannot be used; the message says which and why."""
