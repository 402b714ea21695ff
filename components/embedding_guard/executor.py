"""The executor's former import path, kept for pipelines compiled before the move.

A compiled pipeline (KFP JSON, Beam or Airflow DAG) stores its executor's class
path; those compiled before the package was laid out in wings name
`embedding_guard.executor.Executor`, and must still import.
"""

from embedding_guard.component.executor import Executor

__all__ = ["Executor"]
