"""`embedding_guard.check` on TFX's own taxi outputs, shared by the report tests.

The tfx wheel ships the TF1 taxi example's transform_graph and transformed
examples (tfx/components/testdata/transform). Two checks of them, each run once
per test session, whichever test asks first (about 4 s each):

  clean():   zero configuration: OK, 6 of 14 integer features checked, 8 not;
             company_xf has 1,787 of 5,091 eval values in its 10 OOV buckets.
  blocked(): embedding_input_dims={"company_xf": 53}, the table sized to the
             53-entry vocabulary without its 10 OOV buckets: every OOV-bucket
             value (1,787 in eval, 3,361 in train) is past the table.

scripts/report_screenshots.py makes the docs' screenshots from the same two runs.
"""

from __future__ import annotations

import functools
import os

import tfx

import embedding_guard
from embedding_guard.api import CheckResult

TAXI = os.path.join(os.path.dirname(tfx.__file__), "components", "testdata", "transform")
BLOCKING_INPUT_DIMS = {"company_xf": 53}


def _check(**options) -> CheckResult:
    return embedding_guard.check(
        os.path.join(TAXI, "transformed_examples"),
        os.path.join(TAXI, "transform_graph"),
        **options,
    )


@functools.cache
def clean() -> CheckResult:
    """The zero-configuration check."""
    return _check()


@functools.cache
def blocked() -> CheckResult:
    """The check with company_xf's table 10 rows short."""
    return _check(embedding_input_dims=BLOCKING_INPUT_DIMS)
