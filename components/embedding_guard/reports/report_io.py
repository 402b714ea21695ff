"""Writes and reads the per-split report files of an anomalies artifact.

Each split folder gets `SchemaDiff.pb`, the standard `Anomalies` proto that
ExampleValidator writes and TFDV displays, `index_report.json` with every count,
and `index_report.html`, the same report as a self-contained page. All I/O goes
through `read.storage` (TFX's filesystem plugins), so GCS and S3 URIs work too.
"""

from __future__ import annotations

import json
import os
import re
import stat
import uuid

from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2

from embedding_guard.errors import InputError
from embedding_guard.read import files, storage
from embedding_guard.reports import html_report
from embedding_guard.reports.text import printable
from embedding_guard.verdict.reasons import REASONS, Severity
from embedding_guard.verdict.report_model import (
    Finding,
    ReportFormatError,
    SplitReport,
)

SCHEMA_DIFF_FILE = "SchemaDiff.pb"
REPORT_JSON_FILE = "index_report.json"
REPORT_HTML_FILE = "index_report.html"

# From the reasons registry; the proto code below looks reasons up in these.
_ANOMALY_TYPES = {
    reason: anomalies_pb2.AnomalyInfo.Type.Value(entry.anomaly_type)
    for reason, entry in REASONS.items()
}
_SHORT_DESCRIPTIONS = {reason: entry.short_description for reason, entry in REASONS.items()}
_PROTO_SEVERITY = {
    Severity.ERROR: anomalies_pb2.AnomalyInfo.ERROR,
    Severity.WARNING: anomalies_pb2.AnomalyInfo.WARNING,
}
# A path step TFDV's Path::Serialize() writes as it is: "(...)" with no parenthesis
# inside, or text with no parenthesis, dot or single quote.
_STANDARD_PATH_STEP = re.compile(r"(\([^()]*\))|([^().']+)")


def serialized_path(steps: list[str] | tuple[str, ...]) -> str:
    """Returns the anomaly_info key TFDV writes for a feature path (`Path::Serialize()`).

    Steps are joined with "."; a step that is not standard is put in single quotes,
    with its own single quotes doubled, so `a.b` becomes `'a.b'`.
    """
    return ".".join(
        step if _STANDARD_PATH_STEP.fullmatch(step) else "'" + step.replace("'", "''") + "'"
        for step in steps
    )


def _reason_proto(finding: Finding) -> anomalies_pb2.AnomalyInfo.Reason:
    return anomalies_pb2.AnomalyInfo.Reason(
        type=_ANOMALY_TYPES[finding.reason],
        short_description=_SHORT_DESCRIPTIONS[finding.reason],
        description=f"[{finding.reason.value}] {finding.description}",
    )


def _anomaly_info(findings: list[Finding], feature: str | None) -> anomalies_pb2.AnomalyInfo:
    info = anomalies_pb2.AnomalyInfo(
        severity=(
            anomalies_pb2.AnomalyInfo.ERROR
            if any(f.severity is Severity.ERROR for f in findings)
            else anomalies_pb2.AnomalyInfo.WARNING
        ),
    )
    if feature:
        info.path.step.append(feature)
    info.reason.extend(_reason_proto(f) for f in findings)
    # TFDV's own convention for several reasons on one feature.
    if len(findings) == 1:
        info.short_description = info.reason[0].short_description
        info.description = info.reason[0].description
    else:
        info.short_description = "Multiple errors"
        info.description = " ".join(r.description for r in info.reason)
    return info


def anomalies_proto(
    report: SplitReport, baseline: schema_pb2.Schema | None = None
) -> anomalies_pb2.Anomalies:
    """Builds the standard Anomalies proto of one split, as TFDV's validation writes it.

    Only ERROR and WARNING findings become anomalies; INFO stays in the JSON report.
    Split-level findings go to dataset_anomaly_info.

    Args:
      report: The split's report.
      baseline: The schema the split was checked against, shown by TFDV.

    Returns:
      One anomaly_info per feature with findings, keyed by its serialized path
      (anomaly_name_format SERIALIZED_PATH), as TFDV keys its own.
    """
    anomalies = anomalies_pb2.Anomalies(anomaly_name_format=anomalies_pb2.Anomalies.SERIALIZED_PATH)
    if baseline is not None:
        anomalies.baseline.CopyFrom(baseline)
    by_feature: dict[str, list[Finding]] = {}
    for finding in report.findings:
        if finding.severity in _PROTO_SEVERITY:
            by_feature.setdefault(finding.feature, []).append(finding)
    for feature in sorted(by_feature):
        info = _anomaly_info(by_feature[feature], feature)
        if feature:
            anomalies.anomaly_info[serialized_path([feature])].CopyFrom(info)
        else:
            anomalies.dataset_anomaly_info.CopyFrom(info)
    return anomalies


def report_json(report: SplitReport) -> str:
    """Serialises a split report deterministically (sorted keys, no timestamps)."""
    return json.dumps(report.to_json(), sort_keys=True, indent=2, ensure_ascii=True) + "\n"


def write_atomically(path: str, data: bytes | str) -> None:
    """Writes a file under a temporary name, then renames it into place.

    A crash mid-write leaves at most a hidden temporary file, never a partial
    file under the final name. A local path that already is something other
    than a regular file (/dev/stdout, /dev/null, a FIFO, a symbolic link) is
    written through instead: a rename would replace the device or the link
    itself with a file.
    """
    mode = "wb" if isinstance(data, bytes) else "w"
    if _is_special_path(path):
        with open(path, mode) as f:
            f.write(data)
        return
    directory, name = storage.split(path)
    storage.makedirs(directory)
    temporary = os.path.join(directory, f".{name}.tmp-{uuid.uuid4().hex}")
    try:
        with storage.open_file(temporary, mode) as f:
            f.write(data)
        storage.rename(temporary, path, overwrite=True)
    finally:
        if storage.exists(temporary):
            storage.remove(temporary)


def _is_special_path(path: str) -> bool:
    if not storage.is_local(path):
        return False
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def write_named_file(parameter: str, path: str, data: bytes | str) -> None:
    """write_atomically for a file the user named, where a failed write is bad input.

    Raises:
      InputError: The file cannot be written (no space, no permission, a folder
        in the way); the message names the parameter and the OS's reason.
    """
    try:
        write_atomically(path, data)
    except OSError as error:
        raise InputError(
            f"{parameter} {path!r} cannot be written ({printable(storage.error_text(error))}); "
            "free space or fix its permissions, or pass another path."
        ) from error


def discard_report(split_dir: str) -> None:
    """Removes a split's index_report.json, the marker of a complete report, if present.

    write_split_report writes the marker last, so a folder without it holds no
    complete report, whatever other files an interrupted run left there.
    """
    path = os.path.join(split_dir, REPORT_JSON_FILE)
    if storage.exists(path):
        storage.remove(path)


def write_split_report(
    split_dir: str, report: SplitReport, baseline: schema_pb2.Schema | None = None
) -> dict[str, str]:
    """Writes a split's SchemaDiff.pb, index_report.html and index_report.json.

    Args:
      split_dir: The `Split-<name>` folder of the anomalies output.
      report: The split's report.
      baseline: The schema the split was checked against.

    Returns:
      Kind ("schema_diff", "html", "json") -> path written.
    """
    paths = {
        "schema_diff": os.path.join(split_dir, SCHEMA_DIFF_FILE),
        "html": os.path.join(split_dir, REPORT_HTML_FILE),
        "json": os.path.join(split_dir, REPORT_JSON_FILE),
    }
    discard_report(split_dir)
    write_atomically(
        paths["schema_diff"],
        anomalies_proto(report, baseline).SerializeToString(deterministic=True),
    )
    write_atomically(
        paths["html"],
        html_report.render_document(
            {report.split: report}, f"embedding-guard: split {report.split}"
        ),
    )
    write_atomically(paths["json"], report_json(report))
    return paths


def read_report_json(split_dir: str) -> dict:
    """Reads a split's index_report.json as a plain document (the JSON as written).

    Raises:
      ReportNotFoundError: The file is missing.
      report_model.ReportFormatError: The file is not complete JSON.
    """
    path = os.path.join(split_dir, REPORT_JSON_FILE)
    if not storage.exists(path):
        raise ReportNotFoundError(
            f"{path!r} does not exist, so the folder holds no complete report: it was "
            "deleted, or not written by EmbeddingIndexValidator."
        )
    if storage.isdir(path):
        raise ReportFormatError(f"{path!r} is a folder, not an index_report.json file.")
    try:
        with storage.open_file(path, "rb") as f:
            data = f.read()
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ReportFormatError(
            f"{path!r} is not complete JSON ({printable(error)}): the file is truncated or "
            "damaged; re-run the validator to rewrite it."
        ) from None
    except OSError as error:
        raise ReportFormatError(
            f"{path!r} cannot be read: {printable(storage.error_text(error))}"
        ) from None


def read_split_report(split_dir: str) -> SplitReport:
    """Reads and checks a split's index_report.json.

    Raises:
      ReportNotFoundError: The file is missing.
      report_model.ReportFormatError: The file is truncated, has an unknown
        format_version or lacks a field; the message names the file.
    """
    path = os.path.join(split_dir, REPORT_JSON_FILE)
    return SplitReport.from_json(read_report_json(split_dir), repr(path))


class ReportNotFoundError(InputError):
    """An anomalies folder lacks a split's index_report.json; the message names it."""


def read_split_reports(uri: str, split_names: list[str] | None = None) -> dict[str, SplitReport]:
    """Reads the index_report.json of every split of an anomalies artifact.

    Args:
      uri: The anomalies artifact's folder.
      split_names: The splits to read; default: every `Split-<name>` folder.

    Returns:
      Split name -> the split's report.

    Raises:
      ReportNotFoundError: A split's report is missing (e.g. the artifact was
        deleted, or it was not written by EmbeddingIndexValidator).
      report_model.ReportFormatError: A report is truncated, damaged or of an
        unknown format_version.
    """
    if split_names is None:
        if not storage.isdir(uri):
            raise ReportNotFoundError(
                f"Anomalies folder {uri!r} does not exist; pass the URI of an "
                "EmbeddingIndexValidator `anomalies` artifact."
            )
        split_names = sorted(
            name[len(files.SPLIT_DIR_PREFIX) :]
            for name in storage.listdir(uri)
            if name.startswith(files.SPLIT_DIR_PREFIX)
        )
    reports = {}
    for split in split_names:
        split_dir = os.path.join(uri, f"{files.SPLIT_DIR_PREFIX}{split}")
        path = os.path.join(split_dir, REPORT_JSON_FILE)
        if not storage.exists(path):
            raise ReportNotFoundError(
                f"{path!r} does not exist, so the artifact holds no report for split "
                f"{split!r}: it was deleted, or not written by EmbeddingIndexValidator."
            )
        reports[split] = read_split_report(split_dir)
    return reports
