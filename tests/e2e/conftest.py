"""A live `tabstream up` (subprocess, embedded log, tmp data dir) and headless Debian Chromium.

The browser is the system's ``/usr/bin/chromium`` driven by Python Playwright (no browser is
downloaded at run time); ``make test`` installs it (``make browser-deps``).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import pytest

CHROMIUM = os.environ.get("TABSTREAM_CHROMIUM", "/usr/bin/chromium")
TOKEN = "e2e-token-0123456789abcdef0123456789"
TENANT = "e2e"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


@dataclass
class Stack:
    """A running `tabstream up`."""

    url: str
    proc: subprocess.Popen[bytes]
    log: Path
    api: httpx.Client


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def dataset_file(request: pytest.FixtureRequest) -> Path:
    packaged = resources.files("tabstream") / "data" / "credit_g.parquet"
    if packaged.is_file():
        return Path(str(packaged))
    return Path(request.getfixturevalue("shared_data")) / "credit_g.parquet"


# Module scope, not session: Playwright's sync API runs an event loop on this thread while
# it is open, and the suite's asyncio tests that run after this module need the thread free.
@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """`tabstream up --workers 2` on a free port with its own data dir and API token."""
    data_dir = tmp_path_factory.mktemp("e2e-data")
    port = _free_port()
    exe = Path(sys.executable).with_name("tabstream")
    argv = [str(exe)] if exe.exists() else [sys.executable, "-m", "tabstream.cli"]
    env = {
        **os.environ,
        "TABSTREAM_API_TOKENS": f"{TOKEN}={TENANT}",
        "TABSTREAM_LOG_FORMAT": "json",
        "TABSTREAM_LOG_LEVEL": "WARNING",
    }
    env.pop("TABSTREAM_BUS", None)
    log = data_dir / "up.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*argv, "up", "--workers", "2", "--port", str(port), "--data-dir", str(data_dir)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
    deadline = time.monotonic() + 90
    while True:
        assert proc.poll() is None, f"tabstream up exited: {log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"tabstream up not ready: {log.read_text()[-3000:]}"
        try:
            if api.get("/readyz").status_code == 200:
                break
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    try:
        yield Stack(url, proc, log, api)
    finally:
        api.close()
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@pytest.fixture(scope="module")
def browser_context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Headless system Chromium with a fresh profile (one per session)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make browser-deps` (apt-get install chromium)")
    try:
        from playwright import sync_api
    except ImportError:
        pytest.fail("playwright is missing: `pip install -e '.[dev]'` (make venv)")
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_api.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
            service_workers="block",
        )
        context.set_default_timeout(15_000)
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def page(browser_context: Any, stack: Stack) -> Iterator[Any]:
    """A fresh tab on the dashboard; console errors and failed requests fail the test."""
    tab = browser_context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    tab.on(
        "console",
        lambda msg: (
            errors.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None
        ),
    )
    tab.goto(stack.url + "/")
    yield tab
    tab.close()
    unexpected = [e for e in errors if "401" not in e]
    assert not unexpected, unexpected


def artifact(name: str) -> Path:
    """A path under test-artifacts/ (created)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS / name
