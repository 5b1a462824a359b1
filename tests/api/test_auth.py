"""Bearer auth: static tokens, JWT access tokens, refresh rotation and reuse detection."""

from __future__ import annotations

import pytest

from tabstream.producer_api.auth import parse_static_tokens
from tests.api.conftest import AUTH_A, TOKEN_A, Api

PROTECTED = [
    ("GET", "/v1/jobs"),
    ("GET", "/v1/datasets"),
    ("GET", "/v1/models"),
    ("GET", "/v1/schemas/events"),
    ("POST", "/v1/trainer/run"),
    ("POST", "/v1/datasets"),
    ("GET", "/v1/jobs/3c90c3cc-0d44-4b50-8888-8dd25736052a"),
    ("GET", "/v1/results/3c90c3cc-0d44-4b50-8888-8dd25736052a"),
]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token-wrong-token"},
        {"Authorization": "Basic abc"},
        {"Authorization": "Bearer a.b.c"},
    ],
)
async def test_401_without_valid_token(
    api: Api, method: str, path: str, headers: dict[str, str]
) -> None:
    r = await api.client.request(method, path, headers=headers)
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")


async def test_health_is_open(api: Api) -> None:
    assert (await api.client.get("/healthz")).status_code == 200
    r = await api.client.get("/readyz")
    assert r.status_code == 200, r.text
    assert r.json()["projection_lag"] == 0


async def _pair(api: Api) -> dict[str, str]:
    r = await api.client.post("/v1/auth/token", headers=AUTH_A)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == api.ctx.auth.access_ttl_s
    return dict(body)


async def test_jwt_access_token_works(api: Api) -> None:
    pair = await _pair(api)
    r = await api.client.get(
        "/v1/jobs", headers={"Authorization": f"Bearer {pair['access_token']}"}
    )
    assert r.status_code == 200
    # a JWT cannot be exchanged for more tokens; only static tokens can
    r = await api.client.post(
        "/v1/auth/token", headers={"Authorization": f"Bearer {pair['access_token']}"}
    )
    assert r.status_code == 401


async def test_tampered_jwt_is_401(api: Api) -> None:
    token = (await _pair(api))["access_token"]
    bad = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    r = await api.client.get("/v1/jobs", headers={"Authorization": f"Bearer {bad}"})
    assert r.status_code == 401


async def _expired_pair(api: Api) -> dict[str, str]:
    api.ctx.auth.access_ttl_s = -60  # issue already-expired access tokens
    pair = await _pair(api)
    api.ctx.auth.access_ttl_s = 900
    return pair


async def test_expired_access_token_needs_refresh_header(api: Api) -> None:
    pair = await _expired_pair(api)
    auth = {"Authorization": f"Bearer {pair['access_token']}"}
    r = await api.client.get("/v1/jobs", headers=auth)
    assert r.status_code == 401 and "expired" in r.json()["detail"]
    r = await api.client.get("/v1/jobs", headers={**auth, "refresh-token": pair["refresh_token"]})
    assert r.status_code == 200
    new_access, new_refresh = r.headers["x-access-token"], r.headers["x-refresh-token"]
    assert new_refresh != pair["refresh_token"]
    r = await api.client.get("/v1/jobs", headers={"Authorization": f"Bearer {new_access}"})
    assert r.status_code == 200


async def test_refresh_reuse_revokes_family(api: Api) -> None:
    pair = await _expired_pair(api)
    auth = {"Authorization": f"Bearer {pair['access_token']}"}
    first = await api.client.get(
        "/v1/jobs", headers={**auth, "refresh-token": pair["refresh_token"]}
    )
    child = first.headers["x-refresh-token"]
    # the spent token again: theft suspected, the family is revoked
    reuse = await api.client.get(
        "/v1/jobs", headers={**auth, "refresh-token": pair["refresh_token"]}
    )
    assert reuse.status_code == 401
    later = await api.client.get("/v1/jobs", headers={**auth, "refresh-token": child})
    assert later.status_code == 401
    r = await api.client.post("/v1/auth/refresh", json={"refresh_token": child})
    assert r.status_code == 401


async def test_refresh_endpoint_rotates(api: Api) -> None:
    pair = await _pair(api)
    r = await api.client.post("/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert r.status_code == 200
    assert r.json()["refresh_token"] != pair["refresh_token"]
    again = await api.client.post("/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert again.status_code == 401
    unknown = await api.client.post("/v1/auth/refresh", json={"refresh_token": "nope"})
    assert unknown.status_code == 401


def test_static_token_parsing() -> None:
    assert parse_static_tokens(f" {TOKEN_A}=t1 , ") == {TOKEN_A: "t1"}
    assert parse_static_tokens(None) == {}
    for bad in [
        "short=t1",
        f"{TOKEN_A}",
        f"{TOKEN_A}=",
        f"{TOKEN_A}=t1,{TOKEN_A}=t2",
        f"{TOKEN_A}=bad tenant",
    ]:
        with pytest.raises(ValueError, match="TABSTREAM_API_TOKENS"):
            parse_static_tokens(bad)
