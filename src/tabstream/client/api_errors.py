"""The SDK's errors: the server answered with an error status, or a job did not complete."""

from __future__ import annotations

from typing import Any

import httpx

from tabstream.client.io_helpers import error_message


class ApiError(Exception):
    """The server answered with an error status (``status``, ``detail``) or was unreachable
    (``status`` 0)."""

    def __init__(self, status: int, detail: Any, message: str | None = None) -> None:
        self.status, self.detail = status, detail
        super().__init__(message or error_message(status, detail))


class JobFailed(Exception):
    """A job ended failed or cancelled; ``message`` is the server's."""

    def __init__(self, job_id: str, status: str, message: str) -> None:
        self.job_id, self.status, self.message = job_id, status, message
        super().__init__(f"job {job_id} {status}: {message}")


def detail_of(response: httpx.Response) -> Any:
    """The ``detail`` of an error response (its text when it is not JSON)."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:500] or response.reason_phrase
    return body.get("detail", body) if isinstance(body, dict) else body
