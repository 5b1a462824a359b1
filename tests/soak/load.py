"""Soak load: clients submitting small jobs with Idempotency-Keys, retrying across replicas, and a
seeded chaos loop that kills -9 in turn a worker, an API replica and a partition leader broker."""

from __future__ import annotations

import random
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.soak.deployment import ROOT, Deployment, wait_until

RETRY_S = 0.3


@dataclass
class Submissions:
    """What the clients saw: every 202 per key, and how long each key took to get one."""

    accepted: dict[str, set[str]] = field(default_factory=dict)
    latency_s: list[float] = field(default_factory=list)
    retries: int = 0
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, key: str, job_id: str, seconds: float | None) -> None:
        with self.lock:
            self.accepted.setdefault(key, set()).add(job_id)
            if seconds is not None:
                self.latency_s.append(seconds)

    def job_ids(self) -> set[str]:
        with self.lock:
            return {j for ids in self.accepted.values() for j in ids}


def submit_all(
    urls: list[str],
    token: str,
    dataset_id: str,
    n_jobs: int,
    clients: int,
    seed: int,
    pace_s: float = 0.0,
) -> Submissions:
    """``n_jobs`` runs from ``clients`` threads, each waiting ``pace_s`` between its runs (so
    that submissions meet the faults); every 5th key is submitted a second time to the other
    replica after its 202 (a client retry after a lost answer)."""
    out = Submissions()
    keys = [f"soak-{seed}-{i}" for i in range(n_jobs)]
    threads = [
        threading.Thread(
            target=_client, args=(urls, token, dataset_id, keys[c::clients], out, seed, pace_s)
        )
        for c in range(clients)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not out.errors, out.errors
    return out


def _client(
    urls: list[str],
    token: str,
    dataset_id: str,
    keys: list[str],
    out: Submissions,
    seed: int,
    pace_s: float,
) -> None:
    try:
        _submit_keys(urls, token, dataset_id, keys, out, seed, pace_s)
    except Exception as exc:  # a client that stops is a failed run, reported after the join
        with out.lock:
            out.errors.append(f"{type(exc).__name__}: {exc}")


def _submit_keys(
    urls: list[str],
    token: str,
    dataset_id: str,
    keys: list[str],
    out: Submissions,
    seed: int,
    pace_s: float,
) -> None:
    rng = random.Random(f"{seed}-{keys[0] if keys else ''}")
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(headers=headers, timeout=15) as http:
        for n, key in enumerate(keys):
            body = {
                "dataset_id": dataset_id,
                "task": {"task_kind": "binclass", "label_column": "creditability"},
                "model_types": ["xgboost"],
                "n_trials": rng.randint(1, 3),
                "n_splits": None,
                "random_state": rng.randint(0, 1000),
            }
            started = time.monotonic()
            job_id = _submit(http, urls, n, key, body, out)
            out.record(key, job_id, time.monotonic() - started)
            if n % 5 == 0:
                out.record(key, _submit(http, urls, n + 1, key, body, out), None)
            time.sleep(pace_s)


def _submit(
    http: httpx.Client,
    urls: list[str],
    start: int,
    key: str,
    body: dict[str, Any],
    out: Submissions,
) -> str:
    """POST until a 202, switching replicas after every failure (connection refused, 5xx)."""
    attempt = start
    while True:
        url = urls[attempt % len(urls)]
        try:
            r = http.post(f"{url}/v1/trainer/run", json=body, headers={"Idempotency-Key": key})
            if r.status_code == 202:
                return str(r.json()["job_id"])
            if r.status_code < 500:
                raise AssertionError(f"{key}: {r.status_code} {r.text[:300]}")
        except httpx.HTTPError:
            pass
        with out.lock:
            out.retries += 1
        attempt += 1
        time.sleep(RETRY_S)


@dataclass
class Recovery:
    """One chaos step: what was killed, and the seconds until it was healthy again."""

    target: str
    victim: str
    recover_s: float


def kafka_sh(*args: str) -> None:
    subprocess.run([str(ROOT / "scripts" / "kafka.sh"), *args], check=True, timeout=180)


class Chaos(threading.Thread):
    """kill -9 in turn a worker, an API replica and the commands topic's partition-0 leader
    broker, every ``every_s`` seconds; restart each after ``down_s``."""

    def __init__(
        self, deployment: Deployment, leader_of: Any, seed: int, every_s: float, down_s: float
    ) -> None:
        super().__init__(name="chaos", daemon=True)
        self.deployment, self.leader_of = deployment, leader_of
        self.rng = random.Random(seed)
        self.every_s, self.down_s = every_s, down_s
        self.stopping = threading.Event()
        self.recoveries: list[Recovery] = []
        self.errors: list[str] = []

    def run(self) -> None:
        steps = (self._worker, self._api, self._broker)
        n = 0
        while not self.stopping.wait(self.every_s):
            try:
                self.recoveries.append(steps[n % len(steps)]())
            except Exception as exc:  # reported by the test, never swallowed silently
                self.errors.append(f"{type(exc).__name__}: {exc}")
            n += 1

    def _worker(self) -> Recovery:
        return self._service("worker", self.deployment.workers)

    def _api(self) -> Recovery:
        return self._service("api", self.deployment.apis)

    def _service(self, kind: str, count: int) -> Recovery:
        """kill -9 one ``kind`` process, restart it after ``down_s``, wait until it is ready."""
        victim = self.deployment.services[f"{kind}{self.rng.randrange(count)}"]
        started = time.monotonic()
        victim.kill9()
        time.sleep(self.down_s)
        victim.start()
        wait_until(victim.ready, 120, f"{victim.name} ready again")
        return Recovery(kind, victim.name, time.monotonic() - started)

    def _broker(self) -> Recovery:
        node = self.leader_of()
        started = time.monotonic()
        kafka_sh("cluster-kill", str(node))
        time.sleep(self.down_s)
        kafka_sh("cluster-restart", str(node))
        return Recovery("broker", f"node{node}", time.monotonic() - started)
