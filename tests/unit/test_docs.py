"""The docs agree with the code: the generated parameter page, and every relative link."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[2]
PARAMETERS_DOC = REPO / "docs" / "parameters.md"
GENERATOR = REPO / "scripts" / "gen_parameters_doc.py"
REGENERATE = ".venv/bin/python scripts/gen_parameters_doc.py > docs/parameters.md"

# [text](target) in Markdown, not images of remote sites nor code spans' brackets.
LINK = re.compile(r"\[[^\]\n]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def test_parameters_doc_is_current():
    done = subprocess.run(
        [sys.executable, str(GENERATOR)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert PARAMETERS_DOC.read_text(encoding="utf-8") == done.stdout, (
        f"docs/parameters.md is out of date; regenerate it with: {REGENERATE}"
    )


def _markdown_files() -> list[pathlib.Path]:
    return [
        REPO / "README.md",
        REPO / "bench" / "README.md",
        REPO / "bench" / "RESULTS.md",
    ] + sorted((REPO / "docs").glob("*.md"))


def _anchors(path: pathlib.Path) -> set[str]:
    """GitHub's anchors for the headings of a Markdown file."""
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    headings = re.findall(r"^#+ (.+)$", text, re.MULTILINE)
    return {
        re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-") for heading in headings
    }


def test_every_relative_link_in_the_docs_resolves():
    broken = []
    for path in _markdown_files():
        text = FENCE.sub("", path.read_text(encoding="utf-8"))
        for target in LINK.findall(text):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):
                continue  # a URL
            file_part, _, anchor = target.partition("#")
            linked = path.parent / file_part if file_part else path
            if not linked.exists():
                broken.append(f"{path.relative_to(REPO)}: {target}")
            elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
                broken.append(f"{path.relative_to(REPO)}: {target} (no such heading)")
    assert not broken, broken
