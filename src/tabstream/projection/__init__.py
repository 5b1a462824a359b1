"""The projection: fold the event log into queryable job state (DESIGN.md §4 "Projection").

fold.py, fold_job.py  the pure reducer and its per-event handlers
batch.py              a batch of records folded into the rows it changes (BatchFolder)
sqlite_store.py       ProjectionStore: state and consumed offsets in one SQLite transaction
tables.py             the store's schema, upserts and the row of each aggregate
queries.py            tenant queries of the store (jobs, trials, datasets, models)
digest.py             the store's digest (byte-identical state after a rebuild)
read_model.py         ProjectionReadModel: the API's read side (queries + wait for a record)
service.py            ProjectionService: follow the log from the store's offsets
replay.py             audit replay, and rebuild from offset 0 into a fresh store
forked_fold.py        a rebuild's folding in a forked child (the speed the rebuild needs)
synthetic.py          synthetic job histories for tests and benchmarks
"""

from tabstream.projection.batch import BatchResult
from tabstream.projection.fold import ProjectionState, apply, apply_in_place
from tabstream.projection.read_model import ProjectionReadModel
from tabstream.projection.replay import ReplayItem, rebuild, replay
from tabstream.projection.service import ProjectionService
from tabstream.projection.sqlite_store import ProjectionStore
from tabstream.schemas.topics import Topics

__all__ = [
    "BatchResult",
    "ProjectionReadModel",
    "ProjectionService",
    "ProjectionState",
    "ProjectionStore",
    "ReplayItem",
    "Topics",
    "apply",
    "apply_in_place",
    "rebuild",
    "replay",
]
