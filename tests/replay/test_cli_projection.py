"""`tabstream replay` and `tabstream projection rebuild --verify` on the embedded log."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import uuid
from pathlib import Path

from typer.testing import CliRunner

from tabstream.adapters.bus.embedded import EmbeddedEventLog
from tabstream.adapters.bus.port import OutgoingRecord
from tabstream.cli import app
from tabstream.projection import ProjectionStore, Topics, rebuild
from tabstream.projection.synthetic import JobHistory, Synth
from tabstream.schemas import encode, headers


async def seed_log(data_dir: Path) -> list[JobHistory]:
    topics = Topics()
    synth = Synth(21)
    jobs = [synth.job("acme", uuid.uuid4(), attempts=2), synth.job("acme", uuid.uuid4())]
    log = EmbeddedEventLog(data_dir / "log.sqlite")
    await log.start()
    await log.create_topics(topics.partition_counts(["cpu"]))
    for h in jobs:
        for kind, envs in h.streams.items():
            topic = {"commands": topics.commands("cpu"), "control": topics.control}.get(
                kind, topics.events
            )
            for env in envs:
                await log.publish(
                    OutgoingRecord(topic, env.aggregate_id, encode(env), headers(env))
                )
    await log.publish(OutgoingRecord(topics.events, "junk", b"{}"))
    names = topics.projection_topics(["cpu"])
    await rebuild(log, data_dir / "projection-tabstream.sqlite", names)
    await log.close()
    return jobs


def test_rebuild_verify_and_replay(tmp_path: Path) -> None:
    jobs = asyncio.run(seed_log(tmp_path))
    runner = CliRunner()
    args = ["--data-dir", str(tmp_path), "--bus", "embedded"]
    ok = runner.invoke(app, ["projection", "rebuild", "--verify", *args])
    assert ok.exit_code == 0, ok.output
    assert "identical" in ok.output

    live = tmp_path / "projection-tabstream.sqlite"
    with sqlite3.connect(live) as db:
        db.execute("DELETE FROM jobs WHERE job_id = ?", (jobs[0].job_id,))
    bad = runner.invoke(app, ["projection", "rebuild", "--verify", *args])
    assert bad.exit_code == 1 and "DIFFERENT" in bad.output

    out = runner.invoke(app, ["replay", "--json", "--job", jobs[0].job_id, *args])
    assert out.exit_code == 0, out.output
    lines = [json.loads(line) for line in out.output.splitlines()]
    assert len(lines) == sum(len(e) for e in jobs[0].streams.values())
    types = [line["envelope"]["type"] for line in lines]
    assert types[0] == "RunRequested" and types[-1] == "JobCompleted"

    table = runner.invoke(app, ["replay", *args])
    assert table.exit_code == 1  # the junk record is reported
    assert "UNDECODABLE" in table.output and "JobInterrupted" in table.output
    store = ProjectionStore(live)
    assert store.queries.get_job("acme", jobs[1].job_id) is not None
    store.close()
