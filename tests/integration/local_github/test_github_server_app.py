"""LocalGitHub's App authentication: App JWTs exchanged for installation tokens and checked as
GitHub checks them, installation tokens that expire, and GitHub Enterprise Server's /api/v3.
"""

from __future__ import annotations

import base64
import json
import time
from datetime import datetime, timedelta
from typing import Any

import httpx
import jwt as pyjwt
import pytest

from modelrun_local.github_auth import EXCHANGE_OPERATION
from modelrun_local.github_server import ENTERPRISE_API_PATH, LocalGitHub
from tests.helpers import wait_for
from tests.integration.local_github.support import COMMENTS, OWNER_REPO, REPO, SHA, TOKEN, app_jwt, installation_client


def _jwt(claims: dict[str, Any]) -> str:
    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


def test_installation_token_from_app_jwt(gh: LocalGitHub) -> None:
    url = f"{gh.url}/app/installations/{gh.installation_id}/access_tokens"
    jwt = app_jwt(gh)
    assert httpx.post(url, headers={"Authorization": f"token {TOKEN}"}).status_code == 401  # a token is no JWT
    issued = httpx.post(url, headers={"Authorization": f"Bearer {jwt}"})
    assert issued.status_code == 201, issued.text
    token = issued.json()["token"]
    assert token.startswith("ghs_")
    expires = datetime.fromisoformat(issued.json()["expires_at"].replace("Z", "+00:00")).timestamp()
    assert 3590 < expires - time.time() <= 3600  # an hour, as GitHub's
    comment = httpx.post(
        f"{gh.url}/repos/{REPO}/issues/4/comments",
        json={"body": "via app"},
        headers={"Authorization": f"token {token}"},
    )
    assert comment.status_code == 201
    # The JWT itself is not a token for the REST endpoints.
    assert (
        httpx.get(f"{gh.url}/repos/{REPO}/issues/4/comments", headers={"Authorization": f"Bearer {jwt}"}).status_code
        == 401
    )
    assert [(r.status, r.auth) for r in gh.requests] == [(401, None), (201, "app"), (201, "installation"), (401, None)]


def _other_key() -> Any:
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _t(offset: int) -> int:
    return int(time.time()) + offset


@pytest.mark.parametrize(
    ("case", "make", "reason"),
    [
        ("signed by another key", lambda gh: app_jwt(gh, key=_other_key()), "not signed by the App's key"),
        ("another app's id", lambda gh: app_jwt(gh, iss=str(gh.app_id + 1)), "is not app"),
        ("no issuer", lambda gh: app_jwt(gh, iss=None), "is not app"),
        ("expired", lambda gh: app_jwt(gh, iat=_t(-700), exp=_t(-100)), "representing the future time"),
        ("valid for an hour", lambda gh: app_jwt(gh, iat=_t(0), exp=_t(3600)), "too far in the future"),
        ("issued in the future", lambda gh: app_jwt(gh, iat=_t(300), exp=_t(500)), "a time in the past"),
        ("no expiry", lambda gh: app_jwt(gh, exp=None), "must be integers"),
        ("not RS256", lambda gh: pyjwt.encode({"iss": str(gh.app_id)}, "s" * 32, algorithm="HS256"), "must be RS256"),
        ("unsigned", lambda gh: _jwt({"iat": _t(-60), "exp": _t(540), "iss": str(gh.app_id)}), "not signed by"),
        ("not a JWT", lambda gh: "ghs_notajwt", "needs an app JWT"),
    ],
)
def test_the_app_endpoint_refuses_jwts_github_refuses(gh: LocalGitHub, case: str, make: Any, reason: str) -> None:
    url = f"{gh.url}/app/installations/{gh.installation_id}/access_tokens"
    refused = httpx.post(url, headers={"Authorization": f"Bearer {make(gh)}"})
    assert refused.status_code == 401, case
    assert refused.json()["message"] and refused.json()["documentation_url"].startswith("https://docs.github.com/")
    (recorded,) = gh.requests
    assert recorded.rejected and recorded.auth is None
    assert reason in str(recorded.reason), recorded.reason


def test_a_token_for_another_apps_installation_is_not_found(gh: LocalGitHub) -> None:
    url = f"{gh.url}/app/installations/{gh.installation_id + 1}/access_tokens"
    assert httpx.post(url, headers={"Authorization": f"Bearer {app_jwt(gh)}"}).status_code == 404


def test_an_expired_installation_token_is_refused_as_github_refuses_it(gh: LocalGitHub) -> None:
    url = f"{gh.url}/app/installations/{gh.installation_id}/access_tokens"
    token = httpx.post(url, headers={"Authorization": f"Bearer {app_jwt(gh)}"}).json()["token"]
    path = f"{gh.url}/repos/{REPO}/issues/4/comments"
    assert httpx.get(path, headers={"Authorization": f"token {token}"}).status_code == 200
    assert gh.expire_installation_tokens() == 1  # an hour later
    expired = httpx.get(path, headers={"Authorization": f"token {token}"})
    assert (expired.status_code, expired.json()["message"]) == (401, "Bad credentials")
    assert gh.requests[-1].reason == "installation token expired"


def test_installation_tokens_expire_after_their_lifetime() -> None:
    lifetime = 5  # seconds: ample for the first use, made right after the exchange
    with LocalGitHub(token=None, installation_token_ttl=timedelta(seconds=lifetime)) as gh:
        url = f"{gh.url}/app/installations/{gh.installation_id}/access_tokens"
        before = int(time.time())
        issued = httpx.post(url, headers={"Authorization": f"Bearer {app_jwt(gh)}"})
        after = int(time.time())
        assert issued.status_code == 201, issued.text
        # The lifetime counts from the server's clock at the exchange, in whole seconds as GitHub's.
        expires = datetime.fromisoformat(issued.json()["expires_at"].replace("Z", "+00:00")).timestamp()
        assert before + lifetime <= expires <= after + lifetime
        path = f"{gh.url}/repos/{REPO}/issues/4/comments"
        headers = {"Authorization": f"token {issued.json()['token']}"}
        assert httpx.get(path, headers=headers).status_code == 200  # it works until then

        def refusal() -> httpx.Response | None:
            answer = httpx.get(path, headers=headers)
            return answer if answer.status_code != 200 else None

        refused = wait_for(refusal, 60, "the token's expiry")
        assert time.time() >= expires  # not refused before its expiry
        assert (refused.status_code, refused.json()["message"]) == (401, "Bad credentials")
        assert gh.requests[-1].reason == "installation token expired"


def test_without_a_fixed_token_only_installation_tokens_pass() -> None:
    with LocalGitHub(token=None) as gh:
        path = f"{gh.url}/repos/{REPO}/issues/4/comments"
        assert httpx.get(path, headers={"Authorization": "token local-token"}).status_code == 401


def test_the_backends_client_authenticates_as_the_app_installation() -> None:
    with LocalGitHub(token=None, check_responses=True) as gh:
        github = installation_client(gh)
        github.post(COMMENTS, {**OWNER_REPO, "number": 11}, data={"body": "<!-- modelrun -->\nqueued"})
        github.post(
            "/repos/{owner}/{repo}/statuses/{sha}",
            {**OWNER_REPO, "sha": SHA},
            data={"state": "pending", "context": "modelrun"},
        )
        assert [(r.operation, r.auth) for r in gh.requests] == [
            (EXCHANGE_OPERATION, "app"),
            ("issues/create-comment", "installation"),
            ("repos/create-commit-status", "installation"),
        ]
        assert gh.response_errors == []


def test_enterprise_server_serves_the_api_under_api_v3() -> None:
    """GitHub Enterprise Server: REST at https://HOST/api/v3/..., the OIDC issuer at
    https://HOST/_services/token; URLs in answers name the API's base."""
    with LocalGitHub(token=TOKEN, api_path=ENTERPRISE_API_PATH, check_responses=True) as gh:
        assert gh.url == f"{gh.server_url}/api/v3"
        assert gh.issuer.issuer == f"{gh.server_url}/_services/token"
        headers = {"Authorization": f"token {TOKEN}"}
        at_root = httpx.post(f"{gh.server_url}/repos/{REPO}/issues/3/comments", json={"body": "x"}, headers=headers)
        assert at_root.status_code == 404 and gh.requests[-1].reason == "not under the API path /api/v3"
        for i in range(3):
            created = httpx.post(f"{gh.url}/repos/{REPO}/issues/3/comments", json={"body": f"c{i}"}, headers=headers)
            assert created.status_code == 201, created.text
            assert created.json()["url"].startswith(f"{gh.url}/repos/{REPO}/issues/comments/")
        page = httpx.get(f"{gh.url}/repos/{REPO}/issues/3/comments", params={"per_page": 2}, headers=headers)
        assert page.links["next"]["url"].startswith(f"{gh.url}/repos/{REPO}/issues/3/comments?")
        assert httpx.get(f"{gh.issuer.issuer}/.well-known/jwks").status_code == 200

        # The backend's client with an App, based at /api/v3: the token exchange and the calls land there
        github = installation_client(gh)
        listed = list(github.getiter(COMMENTS + "{?per_page}", {**OWNER_REPO, "number": 3, "per_page": 2}))
        assert [c["body"] for c in listed] == ["c0", "c1", "c2"]
        tail = gh.requests[-3:]
        assert [(r.path, r.auth) for r in tail] == [
            (f"/api/v3/app/installations/{gh.installation_id}/access_tokens", "app"),
            (f"/api/v3/repos/{REPO}/issues/3/comments", "installation"),
            (f"/api/v3/repos/{REPO}/issues/3/comments", "installation"),
        ]
        assert gh.response_errors == []
