"""Shows an anomalies artifact's index report inline in a Jupyter notebook.

    import embedding_guard
    embedding_guard.display(validator.outputs["anomalies"].get()[0])
    embedding_guard.display("gs://bucket/root/EmbeddingIndexValidator/anomalies/12")

The page is the one the executor writes as `Split-<name>/index_report.html`,
with every split in one view. The artifact's `SchemaDiff.pb` files are standard
TFDV Anomalies protos, so TFDV shows them too:

    from tensorflow_data_validation.utils.anomalies_util import load_anomalies_binary
    tfdv.display_anomalies(load_anomalies_binary(f"{uri}/Split-eval/SchemaDiff.pb"))
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from embedding_guard.reports import html_report, report_io


def _uri_and_splits(anomalies: Any) -> tuple[str, list[str] | None, list[tuple[str, object]]]:
    if isinstance(anomalies, (str, os.PathLike)):
        return os.fspath(anomalies), None, [("anomalies", os.fspath(anomalies))]
    if isinstance(anomalies, Sequence) and len(anomalies) == 1:
        anomalies = anomalies[0]
    if hasattr(anomalies, "uri") and hasattr(anomalies, "split_names"):
        from tfx.types import artifact_utils

        from embedding_guard import spec

        info: list[tuple[str, object]] = [("anomalies", anomalies.uri)]
        if anomalies.has_custom_property(spec.BLESSED_PROPERTY):
            info.append(("blessed", anomalies.get_int_custom_property(spec.BLESSED_PROPERTY)))
        splits = (
            artifact_utils.decode_split_names(anomalies.split_names)
            if anomalies.split_names
            else None
        )
        return anomalies.uri, splits, info
    raise TypeError(
        "display() takes an ExampleAnomalies artifact of EmbeddingIndexValidator (or a "
        f"one-element list of it) or its URI, got {type(anomalies).__name__} {anomalies!r}."
    )


def report_html(anomalies: Any) -> Any:
    """Builds the inline report of an anomalies artifact.

    Args:
      anomalies: A TFX ExampleAnomalies artifact written by EmbeddingIndexValidator,
        a one-element list of it, or its URI.

    Returns:
      An `IPython.display.HTML` object with every split's report.

    Raises:
      TypeError: anomalies is neither an artifact nor a URI.
      report_io.ReportNotFoundError: A split's index_report.json is missing.
      report_model.ReportFormatError: A report is truncated, damaged or of an
        unknown format_version; the message names the file.
    """
    from IPython.display import HTML

    uri, split_names, run_info = _uri_and_splits(anomalies)
    reports = report_io.read_split_reports(uri, split_names)
    return HTML(html_report.render_fragment(reports, "embedding-guard index report", run_info))


def display(anomalies: Any) -> None:
    """Displays an anomalies artifact's index report in the running notebook.

    Args:
      anomalies: A TFX ExampleAnomalies artifact written by EmbeddingIndexValidator,
        a one-element list of it, or its URI.

    Raises:
      TypeError: anomalies is neither an artifact nor a URI.
      report_io.ReportNotFoundError: A split's index_report.json is missing.
      report_model.ReportFormatError: A report is truncated, damaged or of an
        unknown format_version.
    """
    from IPython import display as ipython_display

    ipython_display.display(report_html(anomalies))
