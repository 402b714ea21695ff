"""Old home of `embedding-guard report`; the names stay importable from here for a while.

The MLMD queries and run comparison are in `mlmd_runs`, the command in
`report_command`.
"""

from embedding_guard.mlmd_runs import (  # noqa: F401
    METADATA_FILE_NAMES,
    VALIDATOR_TYPE_NAME,
    ReportError,
    ValidatorRun,
    check_database,
    compare,
    find_metadata,
    load_reports,
    open_store,
    select_run,
    validator_runs,
)
from embedding_guard.report_command import (  # noqa: F401
    DEFAULT_LIMIT,
    format_runs,
    html_document,
    run_command,
)
