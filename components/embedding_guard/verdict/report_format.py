"""The error for a report document that cannot be read, shared by every part of the report model."""

from embedding_guard.errors import InputError


class ReportFormatError(InputError):
    """A report document cannot be read; the message names the file and the field."""
