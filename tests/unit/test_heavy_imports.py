"""TensorFlow imported mid-run: the collector paused meanwhile, then as the caller had it."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from pathlib import Path

import pytest

from embedding_guard import heavy_imports

COMPONENTS = Path(__file__).resolve().parents[2] / "components"


@pytest.mark.parametrize("enabled", [True, False])
def test_the_collector_is_paused_in_the_block_and_restored_after_it(enabled):
    seen = []
    frozen = gc.get_freeze_count()
    gc.enable() if enabled else gc.disable()
    try:
        with pytest.raises(KeyError), heavy_imports.collector_paused():
            seen.append(gc.isenabled())
            raise KeyError("a failed import")
        after = gc.isenabled()
    finally:
        gc.enable()

    assert seen == [False]
    assert after == enabled
    # A process that calls the API keeps its own objects unfrozen.
    assert gc.get_freeze_count() == frozen


def test_the_console_script_freezes_what_the_import_made():
    # In its own process: own_process() holds for the rest of it.
    script = (
        "import gc, json; from embedding_guard import heavy_imports; "
        "heavy_imports.own_process(); before = gc.get_freeze_count(); "
        "heavy_imports.tensorflow(); "
        "print(json.dumps([before, gc.get_freeze_count(), gc.isenabled()]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(COMPONENTS), "TF_CPP_MIN_LOG_LEVEL": "3"},
        timeout=300,
    )
    before, after, enabled = json.loads(done.stdout.splitlines()[-1])

    assert after > before + 100_000  # TensorFlow's objects, frozen
    assert enabled
