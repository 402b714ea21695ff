"""Terminal rendering of reports; shared by `check`, `report` and the HTML page.

Every data-derived string (feature, split and raw values) goes through
`printable`, so a value holding an ANSI escape cannot drive the terminal.
"""

from __future__ import annotations


def printable(text: object) -> str:
    """Renders data-derived text for a terminal with control characters escaped.

    Vocabulary entries and raw values come from user data; an ANSI escape in one
    must not be able to rewrite the terminal.
    """
    text = str(text)
    if text.isprintable():
        return text
    return "".join(
        char if char.isprintable() else char.encode("unicode_escape").decode("ascii")
        for char in text
    )


def report_table(reports: dict) -> str:
    """Formats index reports (split -> index_report.json content) as terminal tables."""
    columns = [
        ("feature", None),
        ("range", None),
        ("emb_dim", None),
        ("values", "num_values"),
        ("missing", "missing"),
        ("negative", "negative"),
        ("in_vocab", "in_vocab"),
        ("oov_bkt", "oov_bucket"),
        ("out_rng", "out_of_range"),
        ("over_dim", "over_embedding_dim"),
        ("non_int", "non_integer"),
        ("min", "min"),
        ("max", "max"),
        ("oov%", None),
        ("drift", None),
        ("unused_vocab", None),
        ("verdict", None),
    ]
    lines = []
    for split in sorted(reports):
        report = reports[split]
        verdict = "ok" if report["blessed"] else "BLOCKED"
        lines.append(
            f"split {printable(split)!s}: {report['num_examples']} examples, "
            f"{report['num_errors']} error(s), {report['num_warnings']} warning(s) -> {verdict}"
        )
        rows = [[name for name, _ in columns]]
        for feature in report["features"]:
            counts, bounds = feature["counts"], feature["bounds"]
            severities = {f["severity"] for f in feature["findings"]}
            row = [printable(feature["feature"]), f"[0,{bounds['upper_bound']})"]
            row.append(str(bounds["embedding_input_dim"]))
            row += ["-" if counts[key] is None else str(counts[key]) for _, key in columns[3:-4]]
            has_vocab = bounds["vocab_size"] is not None
            drift = feature["oov_drift"]
            row.append(f"{counts['oov_rate']:.2%}" if has_vocab else "-")
            row.append(f"{drift['difference']:+.2%}" if drift else "-")
            unused = counts["vocab_entries_unseen"]
            row.append("-" if unused is None else f"{unused}/{bounds['vocab_size']}")
            row.append(
                "ERROR" if "ERROR" in severities else "warn" if "WARNING" in severities else "ok"
            )
            rows.append(row)
        widths = [max(len(row[i]) for row in rows) for i in range(len(columns))]
        for row in rows:
            lines.append(
                "  " + "  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True))
            )
        findings = list(report.get("split_findings", []))
        for feature in report["features"]:
            findings += feature["findings"]
        for finding in findings:
            lines.append(
                f"  {finding['severity']} {finding['reason']}: {printable(finding['description'])}"
            )
    return "\n".join(lines)
