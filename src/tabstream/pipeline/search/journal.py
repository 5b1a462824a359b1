"""Optuna journal storage in the artifact store (``jobs/<job_id>/study.journal``)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from optuna.storages import JournalStorage
from optuna.storages.journal import BaseJournalBackend, JournalFileBackend

from tabstream.pipeline.types import Artifacts


class ArtifactJournalBackend(BaseJournalBackend):
    """JSON lines appended to a blob; a torn last line (crash mid-append) is ignored on read."""

    def __init__(self, artifacts: Artifacts, key: str) -> None:
        self._artifacts, self._key = artifacts, key

    def read_logs(self, log_number_from: int) -> Iterable[dict[str, Any]]:
        """Logs from number ``log_number_from`` on."""
        if not self._artifacts.exists(self._key):
            return []
        out: list[dict[str, Any]] = []
        for line in self._artifacts.get_bytes(self._key).splitlines()[log_number_from:]:
            try:
                out.append(json.loads(line))
            except ValueError:
                break
        return out

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        """Append ``logs`` as JSON lines in one write."""
        data = b"".join(json.dumps(log, separators=(",", ":")).encode() + b"\n" for log in logs)
        self._artifacts.append_bytes(self._key, data)


def journal_storage(artifacts: Artifacts, job_id: str) -> JournalStorage:
    """The job's study storage: a journal file when the store is local, else a blob journal."""
    key = f"jobs/{job_id}/study.journal"
    path = artifacts.local_path(key)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    return JournalStorage(ArtifactJournalBackend(artifacts, key))
