"""The evidence a run request is checked against, as LocalGitHub serves it: workflow run
attempts (actions_job), repositories, and the OIDC issuer whose tokens the jobs present.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from modelrun.adapters.github_client import GitHubClient
from modelrun_local.github_server import LocalGitHub
from tests.integration.local_github.support import OWNER_REPO, REPO, SHA, TOKEN

BASE_SHA = "fedcba9876543210fedcba9876543210fedcba98"
AUDIENCE = "https://sqs.us-east-1.amazonaws.com/123456789012/modelrun-run-requests"


def pr_job(gh: LocalGitHub, **overrides: Any) -> dict[str, str]:
    """A pull_request job for PR #7 (feature -> main), attempt 2, in the approval environment."""
    kwargs: dict[str, Any] = {
        "sha": SHA,
        "run_id": 16_011_227_436,
        "run_attempt": 2,
        "actor": "octocat",
        "environment": "staging",
        "pull_request": (7, "feature/x", "main", BASE_SHA),
        "triggering_actor": "maintainer-1",
    }
    return gh.actions_job(REPO, "pull_request", **(kwargs | overrides))


def test_a_workflow_run_attempt_is_served_after_actions_job(gh: LocalGitHub, client: httpx.Client) -> None:
    path = f"/repos/{REPO}/actions/runs/16011227436/attempts/2"
    assert client.get(path).status_code == 404  # GitHub has no such run yet
    env = pr_job(gh)
    run = client.get(path)
    assert run.status_code == 200, run.text
    doc = run.json()
    assert (doc["id"], doc["run_attempt"], doc["event"]) == (16_011_227_436, 2, "pull_request")
    assert (doc["head_sha"], doc["head_branch"]) == (SHA, "feature/x")  # the PR's head, not the merge commit
    assert doc["repository"]["full_name"] == REPO
    assert (doc["actor"]["login"], doc["triggering_actor"]["login"]) == ("octocat", "maintainer-1")
    (pull,) = doc["pull_requests"]
    assert (pull["number"], pull["head"]["sha"], pull["base"]["ref"], pull["base"]["sha"]) == (7, SHA, "main", BASE_SHA)
    assert doc["previous_attempt_url"].endswith("/actions/runs/16011227436/attempts/1")
    # the job's variables match GitHub's: the merge commit and ref, its token endpoint
    assert env["GITHUB_REF"] == "refs/pull/7/merge" and env["GITHUB_SHA"] != SHA
    assert (env["GITHUB_RUN_ID"], env["GITHUB_RUN_ATTEMPT"], env["GITHUB_EVENT_NAME"]) == (
        "16011227436",
        "2",
        "pull_request",
    )
    assert env["ACTIONS_ID_TOKEN_REQUEST_URL"].startswith(f"{gh.issuer.issuer}/")

    # another attempt, another run, another repository: 404, as GitHub answers
    assert client.get(f"/repos/{REPO}/actions/runs/16011227436/attempts/1").status_code == 404
    assert client.get(f"/repos/{REPO}/actions/runs/99/attempts/2").status_code == 404
    assert client.get("/repos/octo/other/actions/runs/16011227436/attempts/2").status_code == 404
    assert [(r.status, r.operation) for r in gh.requests] == [(404, "actions/get-workflow-run-attempt")] + [
        (200, "actions/get-workflow-run-attempt")
    ] + [(404, "actions/get-workflow-run-attempt")] * 3


def test_a_branch_jobs_workflow_run_has_no_pull_requests(gh: LocalGitHub, client: httpx.Client) -> None:
    env = gh.actions_job(REPO, "push", sha=SHA, run_id=5, actor="octocat", environment="modelrun-main")
    doc = client.get(f"/repos/{REPO}/actions/runs/5/attempts/1").json()
    assert (doc["event"], doc["head_sha"], doc["head_branch"], doc["pull_requests"]) == ("push", SHA, "main", [])
    assert doc["previous_attempt_url"] is None
    assert (env["GITHUB_REF"], env["GITHUB_SHA"], env["GITHUB_REF_NAME"]) == ("refs/heads/main", SHA, "main")


def test_a_repository_names_its_default_branch(gh: LocalGitHub, client: httpx.Client) -> None:
    repo = client.get(f"/repos/{REPO}")
    assert repo.status_code == 200, repo.text
    assert (repo.json()["full_name"], repo.json()["default_branch"]) == (REPO, "main")
    gh.default_branch = "trunk"
    assert client.get(f"/repos/{REPO}").json()["default_branch"] == "trunk"
    assert httpx.get(f"{gh.url}/repos/{REPO}", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_the_backends_client_reads_workflow_runs_and_repositories_as_the_backend_does(gh: LocalGitHub) -> None:
    from modelrun.domain.evidence import WorkflowRunFacts

    pr_job(gh)
    github = GitHubClient(gh.url, oauth_token=TOKEN)
    # the calls modelrun.adapters.github.Repositories makes
    run = github.getitem(
        "/repos/{owner}/{repo}/actions/runs/{run_id}/attempts/{attempt}{?exclude_pull_requests}",
        {**OWNER_REPO, "run_id": 16_011_227_436, "attempt": 2, "exclude_pull_requests": "false"},
    )
    assert (run["id"], run["run_attempt"]) == (16_011_227_436, 2)
    facts = WorkflowRunFacts.from_api(dict(run))
    assert (facts.repository, facts.event, facts.head_sha, facts.triggering_actor) == (
        REPO,
        "pull_request",
        SHA,
        "maintainer-1",
    )
    assert [(p.number, p.base_ref, p.base_sha) for p in facts.pull_requests] == [(7, "main", BASE_SHA)]
    assert github.getitem("/repos/{owner}/{repo}", OWNER_REPO)["default_branch"] == "main"
    assert not any(r.rejected for r in gh.requests), gh.requests


def test_the_oidc_issuer_publishes_its_discovery_document_and_keys(gh: LocalGitHub) -> None:
    issuer = gh.issuer.issuer
    assert issuer == f"{gh.url}/_services/token"  # shaped as GitHub Enterprise Server's
    discovery = httpx.get(f"{issuer}/.well-known/openid-configuration")
    assert discovery.status_code == 200
    doc = discovery.json()
    assert doc["issuer"] == issuer and doc["jwks_uri"] == f"{issuer}/.well-known/jwks"
    assert doc["id_token_signing_alg_values_supported"] == ["RS256"]
    (key,) = httpx.get(doc["jwks_uri"]).json()["keys"]
    assert (key["kty"], key["alg"], key["use"], key["kid"]) == ("RSA", "RS256", "sig", gh.issuer.kid)
    assert "d" not in key  # the public half only
    assert httpx.post(f"{issuer}/.well-known/jwks").status_code == 405
    assert httpx.get(f"{issuer}/nope").status_code == 404
    assert gh.requests == []  # not GitHub's REST API: not in its request log


def test_a_jobs_oidc_token_verifies_against_the_issuers_keys_with_githubs_claims(gh: LocalGitHub) -> None:
    import jwt

    env = pr_job(gh)
    url = f"{env['ACTIONS_ID_TOKEN_REQUEST_URL']}&audience={AUDIENCE}"
    bearer = {"Authorization": f"Bearer {env['ACTIONS_ID_TOKEN_REQUEST_TOKEN']}"}
    assert httpx.get(url).status_code == 401  # no bearer
    wrong = httpx.get(url, headers={"Authorization": "Bearer not-this-jobs"})
    assert (wrong.status_code, wrong.json()["message"]) == (401, "Bad credentials")
    answered = httpx.get(url, headers=bearer)
    assert answered.status_code == 200
    token = answered.json()["value"]
    assert answered.json()["count"] == 1

    jwks = jwt.PyJWKClient(f"{gh.issuer.issuer}/.well-known/jwks")
    key = jwks.get_signing_key_from_jwt(token).key
    claims = jwt.decode(token, key, algorithms=["RS256"], audience=AUDIENCE, issuer=gh.issuer.issuer)
    assert claims["aud"] == AUDIENCE and claims["iss"] == gh.issuer.issuer
    assert {k: claims[k] for k in ("repository", "repository_owner", "ref", "sha", "event_name")} == {
        "repository": REPO,
        "repository_owner": "octo",
        "ref": "refs/pull/7/merge",
        "sha": env["GITHUB_SHA"],  # the merge commit, as GitHub signs it
        "event_name": "pull_request",
    }
    assert (claims["run_id"], claims["run_attempt"]) == ("16011227436", "2")  # strings, as GitHub sends them
    assert (claims["environment"], claims["actor"]) == ("staging", "octocat")
    assert (claims["head_ref"], claims["base_ref"]) == ("feature/x", "main")
    assert claims["sub"] == f"repo:{REPO}:environment:staging"
    assert claims["workflow_ref"] == f"{REPO}/.github/workflows/run-model.yaml@refs/pull/7/merge"
    assert claims["iat"] <= time.time() < claims["exp"] <= claims["iat"] + 600
    with pytest.raises(jwt.InvalidAudienceError):
        jwt.decode(token, key, algorithms=["RS256"], audience="sts.amazonaws.com", issuer=gh.issuer.issuer)
    with pytest.raises(jwt.InvalidIssuerError):
        jwt.decode(
            token, key, algorithms=["RS256"], audience=AUDIENCE, issuer="https://token.actions.githubusercontent.com"
        )

    # GitHub's default audience is the owner's URL; a bearer is one job's only
    plain = httpx.get(env["ACTIONS_ID_TOKEN_REQUEST_URL"], headers=bearer).json()["value"]
    assert jwt.decode(plain, options={"verify_signature": False})["aud"] == "https://github.com/octo"


def test_the_token_as_the_workflow_step_and_the_backend_see_it(gh: LocalGitHub) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    from modelrun.adapters.oidc import TokenVerifier
    from modelrun.domain.evidence import Unverified
    from modelrun_cli.enqueue import oidc_token
    from modelrun_local import oidc_issuer

    env = gh.actions_job(REPO, "workflow_dispatch", sha=SHA, run_id=77, actor="octocat", environment=None)
    token = oidc_token(env, AUDIENCE)  # the enqueue step's own request (urllib, ?…&audience=)
    claims = TokenVerifier(gh.issuer.issuer, AUDIENCE).claims(token)  # the submit function's check
    assert (claims.repository, claims.event_name, claims.ref, claims.sha) == (
        REPO,
        "workflow_dispatch",
        "refs/heads/main",
        SHA,
    )
    assert (claims.run_id, claims.run_attempt, claims.environment) == (77, 1, None)  # no environment claim
    with pytest.raises(Unverified, match="OIDC token"):
        TokenVerifier(gh.issuer.issuer, "another-audience").claims(token)
    job = oidc_issuer.Job(REPO, "push", "refs/heads/main", SHA, 78, 1, "octocat", "modelrun-main", f"{REPO}/w@main")
    forged = gh.issuer.mint(job, AUDIENCE, key=rsa.generate_private_key(public_exponent=65537, key_size=2048))
    with pytest.raises(Unverified, match="Signature verification failed"):
        TokenVerifier(gh.issuer.issuer, AUDIENCE).claims(forged)


def _claims_of(env: dict[str, str]) -> dict[str, Any]:
    import jwt

    from modelrun_cli.enqueue import oidc_token

    return dict(jwt.decode(oidc_token(env, AUDIENCE), options={"verify_signature": False}))


PLATFORM = "octo-platform/modelrun/.github/workflows/model-run.yaml@refs/tags/v1"


def test_a_called_jobs_token_names_the_reusable_workflow_it_runs(gh: LocalGitHub) -> None:
    claims = _claims_of(pr_job(gh, job_workflow_ref=PLATFORM, job_workflow_sha="f" * 40))
    assert (claims["job_workflow_ref"], claims["job_workflow_sha"]) == (PLATFORM, "f" * 40)
    assert claims["workflow_ref"] == f"{REPO}/.github/workflows/run-model.yaml@refs/pull/7/merge"  # the caller
    # By default: the repository's own model-run.yaml at the job's ref and commit.
    env = pr_job(gh, run_id=5)
    claims = _claims_of(env)
    assert claims["job_workflow_ref"] == f"{REPO}/.github/workflows/model-run.yaml@refs/pull/7/merge"
    assert claims["job_workflow_sha"] == env["GITHUB_SHA"]


def test_the_subject_follows_the_repositorys_customization(gh: LocalGitHub, client: httpx.Client) -> None:
    path = f"/repos/{REPO}/actions/oidc/customization/sub"
    assert client.get(path).json() == {
        "use_default": True,
        "use_immutable_subject": False,
        "sub_claim_prefix": f"repo:{REPO}",
    }
    keys = ["repo", "context", "ref", "job_workflow_ref"]
    answered = client.put(path, json={"use_default": False, "include_claim_keys": keys})
    assert answered.status_code == 201, answered.text
    assert client.get(path).json()["include_claim_keys"] == keys
    claims = _claims_of(pr_job(gh, job_workflow_ref=PLATFORM))
    assert claims["sub"] == f"repo:{REPO}:environment:staging:ref:refs/pull/7/merge:job_workflow_ref:{PLATFORM}"

    # Newer repositories' immutable form: owner and repository with their ids.
    assert (
        client.put(
            path, json={"use_default": False, "include_claim_keys": keys, "use_immutable_subject": True}
        ).status_code
        == 201
    )
    repository = client.get(f"/repos/{REPO}").json()
    prefix = f"repo:octo@{repository['owner']['id']}/avm@{repository['id']}"
    assert client.get(path).json()["sub_claim_prefix"] == prefix
    assert _claims_of(pr_job(gh, job_workflow_ref=PLATFORM))["sub"].startswith(f"{prefix}:environment:staging:ref:")

    # Refused as GitHub refuses them; nothing changes.
    for body in (
        {"include_claim_keys": keys},  # use_default is required (the description)
        {"use_default": False, "include_claim_keys": ["repo", "repo"]},
        {"use_default": False, "include_claim_keys": ["repo:x"]},
    ):
        assert client.put(path, json=body).status_code in (400, 422), body
    assert client.get(path).json()["include_claim_keys"] == keys

    assert client.put(path, json={"use_default": True, "use_immutable_subject": False}).status_code == 201
    assert _claims_of(pr_job(gh))["sub"] == f"repo:{REPO}:environment:staging"
