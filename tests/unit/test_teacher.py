"""SSRF guard and HTTP behaviour of the external teacher client (adapters/teacher.py)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from tabstream.adapters.teacher import (
    HttpTeacher,
    TeacherError,
    TeacherLimits,
    TeacherRefused,
    check_url,
)
from tabstream.settings import TeacherSettings

PUBLIC = "93.184.216.34"


@pytest.fixture
def connects(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every socket.connect target (connections still happen)."""
    seen: list[Any] = []
    real = socket.socket.connect

    def spy(self: socket.socket, address: Any) -> Any:
        seen.append(address)
        return real(self, address)

    monkeypatch.setattr(socket.socket, "connect", spy)
    return seen


REFUSED = {
    "http://127.0.0.1/predict": "loopback",
    "http://localhost:8000/predict": "loopback",
    "http://169.254.169.254/latest/meta-data": "metadata",
    "http://[::ffff:169.254.169.254]/": "IPv4-mapped",
    "http://0x7f000001/": "numeric",
    "http://2130706433/": "numeric",
    "http://0177.0.0.1/": "numeric",
    "http://127.1/": "numeric",
    "http://10.0.0.1/": "private",
    "http://192.168.1.5/": "private",
    "http://100.64.0.1/": "carrier-grade",
    "http://224.0.0.1/": "multicast",
    "http://[fd00::1]/": "unique-local",
    "http://[fe80::1]/": "link-local",
    "http://0.0.0.0/": "reserved",
    "file:///etc/passwd": "http or https",
    "ftp://example.com/x": "http or https",
    "http://user:pw@example.com/": "credentials",
}


@pytest.mark.parametrize(("url", "why"), REFUSED.items())
def test_refused_without_connecting(url: str, why: str, connects: list[Any]) -> None:
    with pytest.raises(TeacherRefused, match=why):
        HttpTeacher(url, {"Authorization": "Bearer s3cret"})
    assert connects == []


def test_any_private_address_in_dns_answer_refuses() -> None:
    with pytest.raises(TeacherRefused, match="private"):
        check_url("https://teacher.example/p", resolver=lambda h, p: [PUBLIC, "10.1.2.3"])


def test_allow_list_skips_address_checks_but_pins() -> None:
    target = check_url("http://localhost:9/p", frozenset({"localhost"}))
    assert target.ip.is_loopback and target.host_header == "localhost:9"


def test_settings_parse_allowed_hosts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TABSTREAM_TEACHER_ALLOWED_HOSTS", " Teacher.Internal ,127.0.0.1")
    assert TeacherSettings().allowed == {"teacher.internal", "127.0.0.1"}


def _teacher(handler: Any, **limits: Any) -> tuple[HttpTeacher, list[str]]:
    lookups: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        lookups.append(host)
        return [PUBLIC]

    teacher = HttpTeacher(
        "https://teacher.example/v1/predict?x=1",
        {"Authorization": "Bearer s3cret", "Host": "evil.example"},
        TeacherLimits(**({"backoff_s": 0.0} | limits)),
        transport=httpx.MockTransport(handler),
        resolver=resolver,
    )
    return teacher, lookups


def _ok(request: httpx.Request) -> httpx.Response:
    n = len(__import__("json").loads(request.content)["samples"])
    return httpx.Response(200, json={"predictions": [1.0] * n, "probabilities": None})


def test_pinned_address_host_sni_batches_and_one_lookup() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return _ok(request)

    teacher, lookups = _teacher(handler, batch_size=2)
    out = teacher.predict([[1], [2], [3]], ["a"])
    assert (
        out["predictions"] == [1.0, 1.0, 1.0] and len(seen) == 2 and lookups == ["teacher.example"]
    )
    req = seen[0]
    assert req.url.host == PUBLIC and req.url.path == "/v1/predict" and req.url.query == b"x=1"
    assert req.headers["host"] == "teacher.example"
    assert req.extensions["sni_hostname"] == "teacher.example"
    assert req.headers["authorization"] == "Bearer s3cret"


def test_retries_5xx_then_succeeds_and_never_echoes_bodies() -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(503, text="BODY-SECRET") if len(calls) < 3 else _ok(request)

    teacher, _ = _teacher(handler, retries=3)
    assert teacher.predict([[1]], ["a"])["predictions"] == [1.0] and len(calls) == 3

    failing, _ = _teacher(lambda r: httpx.Response(500, text="BODY-SECRET"), retries=1)
    with pytest.raises(TeacherError) as info:
        failing.predict([[1]], ["a"])
    assert "BODY-SECRET" not in str(info.value) and "HTTP 500" in str(info.value)


def test_timeouts_retry_4xx_does_not_and_size_is_capped() -> None:
    calls: list[int] = []

    def timeout(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        raise httpx.ReadTimeout("slow", request=request)

    teacher, _ = _teacher(timeout, retries=2)
    with pytest.raises(TeacherError, match="ReadTimeout"):
        teacher.predict([[1]], ["a"])
    assert len(calls) == 3
    calls.clear()

    def forbidden(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(403, text="BODY-SECRET")

    teacher, _ = _teacher(forbidden)
    with pytest.raises(TeacherError, match="HTTP 403"):
        teacher.predict([[1]], ["a"])
    assert len(calls) == 1
    big, _ = _teacher(lambda r: httpx.Response(200, content=b"x" * 5000), max_response_bytes=1000)
    with pytest.raises(TeacherError, match="cap"):
        big.predict([[1]], ["a"])


class _Redirect(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.send_response(302)
        self.send_header("Location", "http://10.0.0.1/steal")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def redirect_server() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Redirect)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()


def test_redirect_to_private_address_is_not_followed(
    redirect_server: int, connects: list[Any]
) -> None:
    url = f"http://127.0.0.1:{redirect_server}/predict"
    teacher = HttpTeacher(url, allowed=frozenset({"127.0.0.1"}))
    with pytest.raises(TeacherError, match="redirect"):
        teacher.predict([[1]], ["a"])
    hosts = [a[0] for a in connects if isinstance(a, tuple)]
    assert hosts == ["127.0.0.1"] and "10.0.0.1" not in hosts
