"""Reads an HTML index report (as written, or as Chromium's --dump-dom) for tests."""

from __future__ import annotations

import dataclasses
import html
import html.parser
import json
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


# Elements without an end tag.
_VOID = ("br", "meta", "wbr")


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
        if tag not in _VOID:
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


# Appended to a copy of a page (the page itself has no script), it measures the
# laid-out page and writes the figures as JSON into a <pre id="eg-layout">,
# which Chromium's --dump-dom then prints. Overlaps are pairs of text boxes (or
# a text box and a bar) of different elements whose rectangles intersect by more
# than a pixel both ways; clipped are scroll boxes whose content is wider than
# the box.
LAYOUT_PROBE = """
<script>
(() => {
  const root = document.querySelector('.eg-report');
  const boxes = [];
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (!node.data.trim() || node.parentElement.closest('style')) continue;
    // The content of a closed <details> is laid out but not shown.
    if (!node.parentElement.checkVisibility()) continue;
    const range = document.createRange();
    range.selectNodeContents(node);
    for (const rect of range.getClientRects()) {
      if (rect.width > 0 && rect.height > 0) boxes.push({owner: node, rect, text: node.data.trim()});
    }
  }
  for (const track of root.querySelectorAll('.eg-track')) {
    boxes.push({owner: track, rect: track.getBoundingClientRect(), text: '[bar]'});
  }
  const overlaps = [];
  for (let i = 0; i < boxes.length; i++) {
    for (let j = i + 1; j < boxes.length; j++) {
      const a = boxes[i], b = boxes[j];
      if (a.owner === b.owner) continue;
      const dx = Math.min(a.rect.right, b.rect.right) - Math.max(a.rect.left, b.rect.left);
      const dy = Math.min(a.rect.bottom, b.rect.bottom) - Math.max(a.rect.top, b.rect.top);
      if (dx > 1 && dy > 1) overlaps.push(a.text.slice(0, 40) + ' | ' + b.text.slice(0, 40));
    }
  }
  const clipped = [...root.querySelectorAll('.eg-scroll')]
    .filter((box) => box.scrollWidth > box.clientWidth + 1)
    .map((box) => box.firstElementChild.className + ' ' + box.scrollWidth + '>' + box.clientWidth);
  const limit = document.documentElement.clientWidth;
  const wide = [...root.querySelectorAll('*')]
    .filter((e) => e.getBoundingClientRect().right > limit + 1 && !e.closest('.eg-scroll'))
    .map((e) => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right));
  const marks = {};
  for (const element of root.querySelectorAll('[data-layout]')) {
    marks[element.dataset.layout] = element.getBoundingClientRect().bottom + window.scrollY;
  }
  const pre = document.createElement('pre');
  pre.id = 'eg-layout';
  pre.textContent = JSON.stringify({
    viewport: [window.innerWidth, window.innerHeight],
    page: [document.documentElement.scrollWidth, document.documentElement.scrollHeight],
    overlaps: overlaps.slice(0, 20),
    clipped,
    wide: wide.slice(0, 20),
    marks,
  });
  document.body.appendChild(pre);
})();
</script>
"""


@dataclasses.dataclass(frozen=True)
class Layout:
    """The page as Chromium laid it out (see LAYOUT_PROBE).

    Attributes:
      viewport: (width, height) of the window.
      page: (width, height) of the whole document.
      overlaps: Text boxes (or bars) that overlap, as "text | text".
      clipped: Scroll boxes whose table is wider than the box.
      wide: Elements outside a scroll box that reach past the window's right edge.
      marks: data-layout name -> the bottom of that element, in page pixels.
    """

    viewport: tuple
    page: tuple
    overlaps: list
    clipped: list
    wide: list
    marks: dict


def with_layout_probe(document: str) -> str:
    """The page with LAYOUT_PROBE run after it loads."""
    return document.replace("</body>", LAYOUT_PROBE + "</body>")


def layout(dumped_dom: str) -> Layout:
    """The figures LAYOUT_PROBE wrote into the dumped DOM."""
    match = re.search(r"<pre id=\"eg-layout\">(.*?)</pre>", dumped_dom, re.S)
    assert match, "the layout probe did not run"
    figures = json.loads(html.unescape(match.group(1)))
    return Layout(
        tuple(figures["viewport"]),
        tuple(figures["page"]),
        figures["overlaps"],
        figures["clipped"],
        figures["wide"],
        figures["marks"],
    )
