"""Writes a bench result whole or not at all: a killed run leaves no half JSON to misread."""

from __future__ import annotations

import json
import os
from typing import Any


def write_text(path: str, text: str) -> None:
    """Writes text to a temporary name beside path, then renames it into place."""
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def write_json(path: str, document: Any, **dump_options: Any) -> None:
    """Writes document as JSON (json.dumps' options) atomically."""
    write_text(path, json.dumps(document, **dump_options))
