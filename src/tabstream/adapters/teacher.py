"""HTTP client for external teachers (``teacher_predict_url``), with an SSRF guard.

The guard (``check_url``), applied before any connection:

- http or https only; no credentials in the URL;
- a numeric host that is not a canonical IP literal (``0x7f000001``, ``2130706433``,
  ``0177.0.0.1``, ``127.1``) is refused outright;
- the host is resolved once; every address it resolves to must be global: loopback, private
  (RFC 1918 and others), link-local (169.254.0.0/16, cloud metadata), CGNAT (100.64.0.0/10),
  multicast, reserved/unspecified, IPv6 unique-local (fc00::/7) and link-local (fe80::/10),
  and IPv4-mapped IPv6 addresses are refused;
- hosts in ``TABSTREAM_TEACHER_ALLOWED_HOSTS`` (comma-separated) skip the address checks (not
  the scheme check); their addresses are still pinned.

Every request then connects to the checked address itself (the URL carries the IP; ``Host``
and, for https, the TLS SNI and certificate name are the original host), so there is no
second DNS lookup to rebind. Redirects are never followed (a 3xx is an error); proxies and
netrc from the environment are ignored; only the user's own headers are sent, never ours.
Batches (``batch_size``) are POSTed with a timeout, retried with exponential backoff on
timeouts, connection errors, 429 and 5xx; responses are capped at ``max_response_bytes``.
Errors name the host and the status, never the response body or the headers.
"""

from __future__ import annotations

import ipaddress
import json
import re
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from tabstream.settings import TeacherSettings

IP = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]
_NUMERIC_PART = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_ULA = ipaddress.ip_network("fc00::/7")
_METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
_DROPPED_HEADERS = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "content-type", "upgrade"}
)


class TeacherRefused(ValueError):
    """``teacher_predict_url`` names a target the SSRF guard does not allow."""


class TeacherError(RuntimeError):
    """The teacher did not answer usefully (status, timeout, size, shape); no body quoted."""


@dataclass(frozen=True)
class TeacherLimits:
    """Batch size, per-request timeout, retries (backoff doubling), response-size cap."""

    batch_size: int = 1000
    timeout_s: float = 30.0
    retries: int = 3
    backoff_s: float = 0.5
    max_response_bytes: int = 64 * 1024 * 1024


@dataclass(frozen=True)
class Target:
    """A checked teacher URL: where to connect (``ip``) and what to call it (``host``)."""

    scheme: str
    host: str
    port: int
    ip: IP
    path: str

    @property
    def url(self) -> str:
        """The URL with the pinned address in place of the host name."""
        literal = f"[{self.ip}]" if self.ip.version == 6 else str(self.ip)
        return f"{self.scheme}://{literal}:{self.port}{self.path}"

    @property
    def host_header(self) -> str:
        default = {"http": 80, "https": 443}[self.scheme]
        name = f"[{self.host}]" if ":" in self.host else self.host
        return name if self.port == default else f"{name}:{self.port}"


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (one DNS lookup)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def check_url(
    url: str, allowed: frozenset[str] = frozenset(), resolver: Resolver = resolve
) -> Target:
    """Check ``url`` against the SSRF rules and pin the address to connect to."""
    try:
        parts = urlsplit(url)
        host, port = (parts.hostname or "").lower(), parts.port
    except ValueError as exc:
        raise TeacherRefused(f"teacher_predict_url is not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise TeacherRefused(f"teacher_predict_url must use http or https, not {parts.scheme!r}")
    if not host or parts.username is not None or parts.password is not None:
        raise TeacherRefused("teacher_predict_url must name a host and carry no credentials")
    port = port or (443 if parts.scheme == "https" else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    listed = host in allowed
    literal = _literal(host)
    if literal is None and _numeric_spelling(host) and not listed:
        raise TeacherRefused(f"teacher_predict_url host {host!r} is a non-canonical numeric IP")
    addresses = [literal] if literal is not None else _resolved(host, port, resolver)
    if not listed:
        for ip in addresses:
            reason = refusal(ip)
            if reason is not None:
                raise TeacherRefused(
                    f"teacher_predict_url host {host!r} resolves to {ip}, {reason}; "
                    "add the host to TABSTREAM_TEACHER_ALLOWED_HOSTS to allow it"
                )
    return Target(parts.scheme, host, port, addresses[0], path)


def _literal(host: str) -> IP | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _numeric_spelling(host: str) -> bool:
    labels = host.rstrip(".").split(".")
    return all(_NUMERIC_PART.match(label) for label in labels)


def _resolved(host: str, port: int, resolver: Resolver) -> list[IP]:
    try:
        found = [ipaddress.ip_address(a.split("%")[0]) for a in resolver(host, port)]
    except (OSError, ValueError) as exc:
        raise TeacherRefused(f"teacher_predict_url host {host!r} does not resolve: {exc}") from None
    if not found:
        raise TeacherRefused(f"teacher_predict_url host {host!r} does not resolve")
    return found


def refusal(ip: IP) -> str | None:
    """Why ``ip`` may not be a teacher address (None when it is global unicast)."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return "an IPv4-mapped IPv6 address"
    checks: list[tuple[bool, str]] = [
        (ip in _METADATA, "a cloud metadata address"),
        (ip.is_loopback, "a loopback address"),
        (ip.is_link_local, "a link-local address"),
        (ip.is_multicast, "a multicast address"),
        (ip.version == 4 and ip in _CGNAT, "a carrier-grade NAT (100.64.0.0/10) address"),
        (ip.version == 6 and ip in _ULA, "an IPv6 unique-local address"),
        (ip.is_unspecified or ip.is_reserved, "a reserved address"),
        (ip.is_private, "a private address"),
        (not ip.is_global, "not a global address"),
    ]
    return next((reason for hit, reason in checks if hit), None)


class HttpTeacher:
    """A ``pipeline.predict.Teacher`` over HTTP POST in the teacher protocol."""

    def __init__(
        self,
        url: str,
        headers: Mapping[str, str] | None = None,
        limits: TeacherLimits | None = None,
        allowed: frozenset[str] = frozenset(),
        *,
        transport: httpx.BaseTransport | None = None,
        resolver: Resolver = resolve,
    ) -> None:
        self.target = check_url(url, allowed, resolver)
        self.limits = limits or TeacherLimits()
        self._headers = self._request_headers(headers or {})
        self._client = httpx.Client(
            transport=transport,
            trust_env=False,
            follow_redirects=False,
            timeout=self.limits.timeout_s,
        )

    def _request_headers(self, user: Mapping[str, str]) -> dict[str, str]:
        kept = {k: v for k, v in user.items() if k.lower() not in _DROPPED_HEADERS}
        return kept | {
            "Host": self.target.host_header,
            "Content-Type": "application/json",
            "Accept": "application/json",
        }

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def predict(self, samples: list[list[Any]], feature_names: list[str]) -> dict[str, Any]:
        """Label ``samples`` batch by batch; one merged teacher-protocol response."""
        merged: dict[str, Any] = {"predictions": [], "probabilities": None, "classes": None}
        size = self.limits.batch_size
        for start in range(0, len(samples), size):
            batch = samples[start : start + size]
            out = self._post({"samples": batch, "feature_names": feature_names}, len(batch))
            _merge(merged, out, start == 0)
        return merged

    def _post(self, body: dict[str, Any], n: int) -> dict[str, Any]:
        content = json.dumps(body, allow_nan=False).encode()
        last = ""
        for attempt in range(self.limits.retries + 1):
            if attempt:
                time.sleep(self.limits.backoff_s * 2 ** (attempt - 1))
            try:
                status, raw = self._send(content)
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                last = type(exc).__name__
                continue
            if status == 429 or status >= 500:
                last = f"HTTP {status}"
                continue
            return self._decode(status, raw, n)
        raise TeacherError(
            f"teacher at {self.target.host} failed after {self.limits.retries + 1} attempts "
            f"({last})"
        )

    def _send(self, content: bytes) -> tuple[int, bytes]:
        extensions = {"sni_hostname": self.target.host} if self.target.scheme == "https" else {}
        with self._client.stream(
            "POST", self.target.url, content=content, headers=self._headers, extensions=extensions
        ) as response:
            if 300 <= response.status_code < 400:
                raise TeacherError(
                    f"teacher at {self.target.host} answered HTTP {response.status_code} "
                    "(a redirect); redirects are not followed"
                )
            if response.status_code == 429 or response.status_code >= 500:
                return response.status_code, b""
            return response.status_code, self._capped(response)

    def _capped(self, response: httpx.Response) -> bytes:
        cap, chunks, total = self.limits.max_response_bytes, [], 0
        declared = response.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > cap:
            raise TeacherError(f"teacher response exceeds the {cap}-byte cap")
        for chunk in response.iter_bytes():
            total += len(chunk)
            if total > cap:
                raise TeacherError(f"teacher response exceeds the {cap}-byte cap")
            chunks.append(chunk)
        return b"".join(chunks)

    def _decode(self, status: int, raw: bytes, n: int) -> dict[str, Any]:
        if status != 200:
            raise TeacherError(f"teacher at {self.target.host} answered HTTP {status}")
        try:
            out = json.loads(raw)
        except ValueError:
            raise TeacherError(f"teacher at {self.target.host} did not answer JSON") from None
        if not isinstance(out, dict) or not isinstance(out.get("predictions"), list):
            raise TeacherError("teacher response lacks a predictions list")
        if len(out["predictions"]) != n:
            raise TeacherError(f"teacher returned {len(out['predictions'])} predictions for {n}")
        probs = out.get("probabilities")
        if probs is not None and (not isinstance(probs, list) or len(probs) != n):
            raise TeacherError("teacher probabilities do not match the batch")
        return out


def _merge(merged: dict[str, Any], out: dict[str, Any], first: bool) -> None:
    if first:
        merged["classes"] = out.get("classes")
        merged["probabilities"] = [] if out.get("probabilities") is not None else None
    elif out.get("classes") != merged["classes"]:
        raise TeacherError("teacher changed its classes between batches")
    merged["predictions"].extend(out["predictions"])
    if merged["probabilities"] is not None:
        if out.get("probabilities") is None:
            raise TeacherError("teacher stopped returning probabilities")
        merged["probabilities"].extend(out["probabilities"])


def teacher_from_settings(
    url: str, headers: Mapping[str, str] | None, settings: TeacherSettings
) -> HttpTeacher:
    """An ``HttpTeacher`` configured from ``TABSTREAM_TEACHER_*`` (``settings``)."""
    limits = TeacherLimits(
        settings.batch_size,
        settings.timeout_s,
        settings.retries,
        settings.backoff_s,
        int(settings.max_response_mb * 1024 * 1024),
    )
    return HttpTeacher(url, headers, limits, settings.allowed)
