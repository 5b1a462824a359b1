"""Write the frozen log of schema v1: ``python -m tests.replay.make_assets``.

Run once per released schema version, then never again for that version: the asset is the
contract that future code must still replay. (No upcaster exists yet, so there is no v0.)
"""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path

from tabstream.projection.synthetic import Synth
from tabstream.schemas import Envelope, JobFailed, Producer, encode
from tabstream.schemas.topics import Topics

ASSETS = Path(__file__).parent / "assets"
V1 = ASSETS / "log_v1.jsonl"


def envelopes() -> list[tuple[str, Envelope]]:
    """(topic, envelope) in log order: every event type, attempts, a duplicate, a late terminal."""
    topics, synth = Topics(), Synth(2024)
    dataset = synth.dataset("acme")
    ds = dataset.payload.dataset_id  # type: ignore[union-attr]
    out: list[tuple[str, Envelope]] = [(topics.events, dataset)]
    jobs = [
        synth.job("acme", ds, rows=2, trials=3, attempts=2),
        synth.job("acme", ds, outcome="failed"),
        synth.job("globex", uuid.uuid4(), outcome="cancelled", cancel=True),
        synth.job("acme", ds, outcome="running", attempts=2),
    ]
    for h in jobs:
        out += [(topics.commands("cpu"), e) for e in h.streams["commands"]]
        out += [(topics.control, e) for e in h.streams["control"]]
        out += [(topics.events, e) for e in h.streams["events"]]
    first = jobs[0].streams["events"]
    out.append((topics.events, first[4]))  # a duplicate delivery
    late = JobFailed(job_id=uuid.UUID(jobs[0].job_id), error="late", reason="crashed", attempt=2)
    worker = Producer(service="worker", instance="w-2")
    out.append((topics.events, synth.wrap(late, "acme", worker, 2, 999)))  # ignored: not first
    return out


def main() -> int:
    """Write the asset (refuses to overwrite a frozen file unless --force)."""
    if V1.exists() and "--force" not in sys.argv:
        print(f"{V1} exists and is frozen; pass --force only before a release", file=sys.stderr)
        return 1
    ASSETS.mkdir(parents=True, exist_ok=True)
    offsets: dict[str, int] = {}
    with V1.open("w") as out:
        for topic, env in envelopes():
            offset = offsets[topic] = offsets.get(topic, -1) + 1
            line = {
                "topic": topic,
                "partition": 0,
                "offset": offset,
                "key": env.aggregate_id,
                "value": encode(env).decode(),
            }
            out.write(json.dumps(line, sort_keys=True) + "\n")
    print(f"wrote {V1}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
