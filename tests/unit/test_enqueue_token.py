"""The enqueue command's evidence: the job's OIDC token, asked of the Actions token endpoint and
attached to the request."""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request

import pytest
from pydantic import ValidationError

from modelrun.contracts import MESSAGE, CleanupRequest
from modelrun_cli.enqueue import (
    TokenUnavailable,
    build_cleanup,
    build_request,
    oidc_token,
    with_identity,
)
from tests.unit.enqueue_helpers import AUDIENCE, IMAGE, PR_ENV, TOKEN, TOKEN_URL, FakeOpener, payload, token_env


# --- oidc_token: the job's evidence ---
def test_oidc_token_appends_the_audience_to_the_request_url_and_sends_the_bearer() -> None:
    opener = FakeOpener()
    assert oidc_token(token_env(), AUDIENCE, opener) == TOKEN

    ((request, timeout),) = opener.requests
    assert request.full_url == f"{TOKEN_URL}&audience={urllib.parse.quote(AUDIENCE, safe='')}"
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(request.full_url).query)
    assert query == {"api-version": ["2.0"], "audience": [AUDIENCE]}  # exactly, decoded
    assert request.get_method() == "GET"
    assert request.get_header("Authorization") == "Bearer the-request-token"
    assert request.get_header("Accept") == "application/json"
    assert 0 < timeout <= 30


def test_oidc_token_starts_the_query_when_the_url_has_none() -> None:
    opener = FakeOpener()
    oidc_token(token_env(url="https://token.example/idtoken"), "sts.amazonaws.com", opener)
    assert opener.url == "https://token.example/idtoken?audience=sts.amazonaws.com"
    # an audience with its own "&" or "=" cannot add parameters
    oidc_token(token_env(url="https://token.example/idtoken"), "a&audience=b=c", opener)
    assert urllib.parse.parse_qs(urllib.parse.urlsplit(opener.url).query) == {"audience": ["a&audience=b=c"]}


def test_oidc_token_on_the_local_stacks_loopback_may_be_http() -> None:
    opener = FakeOpener()
    assert oidc_token(token_env(url="http://127.0.0.1:8123/_services/token/request?api-version=2.0"), "x", opener)
    assert opener.url.endswith("?api-version=2.0&audience=x")


@pytest.mark.parametrize("missing", ["ACTIONS_ID_TOKEN_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_TOKEN"])
def test_oidc_token_without_the_jobs_variables_names_the_permission(missing: str) -> None:
    opener = FakeOpener()
    for env in ({k: v for k, v in token_env().items() if k != missing}, token_env() | {missing: "  "}):
        with pytest.raises(TokenUnavailable, match=r"ACTIONS_ID_TOKEN_REQUEST_URL/TOKEN are not set.*id-token: write"):
            oidc_token(env, AUDIENCE, opener)
    assert opener.requests == []


@pytest.mark.parametrize(
    "url",
    [
        "http://pipelines.actions.githubusercontent.com/idtoken",
        "ftp://token.example/idtoken",
        "file:///etc/passwd",
        "http://127.0.0.1.evil.example/idtoken",
        "http://localhost:8000/idtoken",
        "token.example/idtoken",
    ],
)
def test_oidc_token_refuses_a_url_that_is_not_https(url: str) -> None:
    opener = FakeOpener()
    with pytest.raises(TokenUnavailable, match="must be https"):
        oidc_token(token_env(url=url), AUDIENCE, opener)
    assert opener.requests == []  # the bearer never leaves over plain HTTP


@pytest.mark.parametrize(
    ("opener", "match"),
    [
        (FakeOpener({"count": 0}), "returned no token"),
        (FakeOpener({"count": 1, "value": ""}), "returned no token"),
        (FakeOpener({"count": 1, "value": 5}), "returned no token"),
        (FakeOpener({"count": 1, "value": None}), "returned no token"),
        (FakeOpener(raw=b"<html>not json</html>"), "the OIDC token request failed"),
        (
            FakeOpener(error=urllib.error.HTTPError(TOKEN_URL, 401, "Unauthorized", None, None)),  # type: ignore[arg-type]
            "the OIDC token request failed: HTTP Error 401",
        ),
        (FakeOpener(error=urllib.error.URLError("connection refused")), "the OIDC token request failed"),
        (FakeOpener(error=TimeoutError("timed out")), "the OIDC token request failed: timed out"),
    ],
)
def test_oidc_token_without_a_value_raises_token_unavailable(opener: FakeOpener, match: str) -> None:
    with pytest.raises(TokenUnavailable, match=match):
        oidc_token(token_env(), AUDIENCE, opener)
    assert len(opener.requests) == 1


def test_with_identity_attaches_the_token_and_the_parser_keeps_it() -> None:
    request = build_request("pull_request", payload("pull_request.opened.json"), PR_ENV, image=IMAGE)
    sent = with_identity(request, TOKEN)
    assert request.identity is None  # a copy: the built request is unchanged
    assert sent.identity is not None and sent.identity.oidc_token == TOKEN
    assert sent.model_copy(update={"identity": None}) == request
    assert MESSAGE.validate_json(sent.model_dump_json()) == sent
    assert TOKEN not in repr(sent)  # the token is not in logs of the model
    cleanup = with_identity(build_cleanup(payload("pull_request.closed.json"), PR_ENV), TOKEN)
    assert isinstance(MESSAGE.validate_json(cleanup.model_dump_json()), CleanupRequest)
    with pytest.raises(ValidationError, match="oidc_token"):
        with_identity(request, "not a token")
