"""Reads an HTML index report (as written, or as Chromium's --dump-dom) for tests."""

from __future__ import annotations

import dataclasses
import html.parser
import re


@dataclasses.dataclass
class ReportPage:
    """What a reader of the page sees.

    Attributes:
      text: All text, whitespace collapsed.
      verdict: Text of the verdict box at the top.
      counts: split -> feature -> chart row key (e.g. "negative") -> shown count.
      tags: Every element name in the page.
    """

    text: str = ""
    verdict: str = ""
    counts: dict = dataclasses.field(default_factory=dict)
    tags: set = dataclasses.field(default_factory=set)


class _Reader(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.page = ReportPage()
        self._text: list[str] = []
        self._verdict: list[str] = []
        self._verdict_depth = 0
        self._depth = 0
        self._split = self._feature = self._count_key = None
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.page.tags.add(tag)
        classes = (attrs.get("class") or "").split()
        self._in_style = tag == "style"
        if tag == "br":
            # A line break reads as a space, as in the browser's innerText.
            self.handle_data(" ")
        if tag not in ("br", "meta"):
            self._depth += 1
        if "eg-verdict" in classes:
            self._verdict_depth = self._depth
        if "data-split" in attrs:
            self._split = attrs["data-split"]
        if "data-feature" in attrs:
            self._feature = attrs["data-feature"]
        if "data-count" in attrs:
            self._count_key = attrs["data-count"]

    def handle_endtag(self, tag):
        self._in_style = False
        if self._verdict_depth and self._depth == self._verdict_depth:
            self._verdict_depth = 0
        self._depth -= 1
        if tag == "td":
            self._count_key = None

    def handle_data(self, data):
        if self._in_style:
            return
        self._text.append(data)
        if self._verdict_depth:
            self._verdict.append(data)
        if self._count_key:
            feature_counts = self.page.counts.setdefault(self._split, {}).setdefault(
                self._feature, {}
            )
            feature_counts[self._count_key] = data.strip()


def _collapse(parts: list[str]) -> str:
    return re.sub(r"\s+", " ", "".join(parts)).strip()


def read(document: str) -> ReportPage:
    """Parses a report page."""
    reader = _Reader()
    reader.feed(document)
    reader.close()
    reader.page.text = _collapse(reader._text)
    reader.page.verdict = _collapse(reader._verdict)
    return reader.page
