"""Screenshots of the HTML report's first screen on TFX's own taxi data, for the docs.

Usage (from the repository root; needs /usr/bin/chromium, `make browser-deps`):

    .venv/bin/python scripts/report_screenshots.py            # writes docs/img/report-*.png

Both runs check TFX's shipped TF1 taxi outputs (inside the tfx wheel:
tfx/components/testdata/transform/{transform_graph,transformed_examples}):

- clean: zero configuration, as `embedding-guard check --transform-graph ...
  --examples ...` runs it;
- blocked: `--embedding-dim company_xf=53`, the Trainer's table sized to the
  53-entry vocabulary alone, without its 10 OOV buckets, so every value in an
  OOV bucket is past the table.

Each page is rendered by headless Chromium at 1280x800, the first screen only.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

import tfx

import embedding_guard
from embedding_guard.reports import html_report

TAXI = os.path.join(os.path.dirname(tfx.__file__), "components", "testdata", "transform")
RUNS = {
    "clean": {},
    "blocked": {"embedding_input_dims": {"company_xf": 53}},
}
CHROMIUM = "/usr/bin/chromium"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run")


def page(options: dict) -> str:
    """The report page of one check of TFX's taxi outputs."""
    result = embedding_guard.check(
        os.path.join(TAXI, "transformed_examples"),
        os.path.join(TAXI, "transform_graph"),
        **options,
    )
    return html_report.render_document(
        result.reports,
        "embedding-guard: TFX taxi transformed_examples",
        [("transform graph", "tfx/components/testdata/transform/transform_graph")],
    )


def screenshot(html_path: str, png_path: str, width: int, height: int, scratch: str) -> None:
    """Renders html_path headless into png_path, width x height pixels."""
    # The argument list is built here, from this script's own paths.
    subprocess.run(  # noqa: S603
        [
            CHROMIUM,
            *FLAGS,
            f"--user-data-dir={os.path.join(scratch, 'profile')}",
            f"--window-size={width},{height}",
            f"--screenshot={png_path}",
            "file://" + os.path.abspath(html_path),
        ],
        check=True,
        capture_output=True,
        timeout=180,
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/img", help="folder of the PNGs")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=800)
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="report-screenshots-") as scratch:
        for name, options in RUNS.items():
            html_path = os.path.join(scratch, f"{name}.html")
            with open(html_path, "w", encoding="utf-8") as f:
                f.write(page(options))
            png_path = os.path.join(args.out, f"report-{name}.png")
            screenshot(html_path, png_path, args.width, args.height, scratch)
            print(png_path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
