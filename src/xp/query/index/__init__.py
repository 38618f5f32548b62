"""The query index: a SQLite cache of run records, the one place that speaks SQL.

``store`` keeps it in step with the refs and answers named questions, ``rows`` reads
records into ``RunRow``, ``compile`` turns parsed filters and sort keys into SQL.
"""

from __future__ import annotations

from xp.query.index.rows import RunRow
from xp.query.index.store import (
    ABSENT,
    INDEX_FILE,
    AttributeFacts,
    Batch,
    Index,
    Query,
    Table,
    ValueFacts,
    gc_paused,
    open_index,
)

__all__ = [
    "ABSENT",
    "INDEX_FILE",
    "AttributeFacts",
    "Batch",
    "Index",
    "Query",
    "RunRow",
    "Table",
    "ValueFacts",
    "gc_paused",
    "open_index",
]
