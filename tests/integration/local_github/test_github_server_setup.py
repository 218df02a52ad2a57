"""What `modelrun doctor` reads of a repository's set-up, as LocalGitHub serves it: environments
(required reviewers, self-review, deployment branches), Actions variables, the App's
installation, and the OIDC subject's organisation template, which the issuer honours for the
repositories that opted in to it. Every answer is checked against the description's schemas."""

from __future__ import annotations

from typing import Any

import httpx

from modelrun_local.github_server import Environment, LocalGitHub
from tests.integration.local_github.support import REPO, SHA, app_jwt
from tests.integration.local_github.test_github_server_actions import _claims_of, pr_job


def test_an_environment_is_served_with_its_protection_and_branches(gh: LocalGitHub, client: httpx.Client) -> None:
    path = f"/repos/{REPO}/environments/staging"
    assert client.get(path).status_code == 404  # none yet
    gh.put_environment(REPO, "staging", Environment(reviewers=("ana-lopez",), prevent_self_review=True))
    doc = client.get(path).json()
    (rule,) = doc["protection_rules"]
    assert (rule["type"], rule["prevent_self_review"]) == ("required_reviewers", True)
    assert [r["reviewer"]["login"] for r in rule["reviewers"]] == ["ana-lopez"]
    assert doc["deployment_branch_policy"] is None  # every branch may deploy
    assert client.get("/repos/octo/AVM/environments/STAGING").json()["name"] == "staging"  # names: any case

    gh.put_environment(REPO, "modelrun-main", Environment(branch_policy="custom", branch_patterns=("main",)))
    doc = client.get(f"/repos/{REPO}/environments/modelrun-main").json()
    assert doc["deployment_branch_policy"] == {"protected_branches": False, "custom_branch_policies": True}
    assert [r["type"] for r in doc["protection_rules"]] == ["branch_policy"]
    listed = client.get(f"/repos/{REPO}/environments/modelrun-main/deployment-branch-policies").json()
    assert (listed["total_count"], [p["name"] for p in listed["branch_policies"]]) == (1, ["main"])

    gh.delete_environment(REPO, "staging")
    assert client.get(path).status_code == 404
    # A job that names an environment that does not exist creates it, unprotected (as GitHub does).
    pr_job(gh)
    assert client.get(path).json()["protection_rules"] == []


def test_variables_are_listed_by_page(gh: LocalGitHub, client: httpx.Client) -> None:
    for n in range(12):
        gh.set_variable(REPO, f"var_{n:02d}", str(n))
    first = client.get(f"/repos/{REPO}/actions/variables")  # GitHub's default page: 10
    assert first.json()["total_count"] == 12 and len(first.json()["variables"]) == 10
    assert first.json()["variables"][0] == {
        "name": "VAR_00",  # GitHub stores names upper case
        "value": "0",
        "created_at": first.json()["variables"][0]["created_at"],
        "updated_at": first.json()["variables"][0]["updated_at"],
    }
    assert 'rel="next"' in first.headers["Link"]
    gh.set_variable(REPO, "VAR_00", None)
    assert client.get(f"/repos/{REPO}/actions/variables", params={"per_page": 30}).json()["total_count"] == 11


def test_a_repository_left_out_of_the_installation_is_not_found(gh: LocalGitHub) -> None:
    url = f"{gh.url}/repos/{REPO}/installation"
    headers = {"Authorization": f"Bearer {app_jwt(gh)}"}
    assert httpx.get(url, headers=headers).json()["id"] == gh.installation_id
    issued = httpx.post(f"{gh.url}/app/installations/{gh.installation_id}/access_tokens", headers=headers)
    token = {"Authorization": f"token {issued.json()['token']}"}
    gh.uninstall(REPO)
    assert httpx.get(url, headers={"Authorization": f"Bearer {app_jwt(gh)}"}).status_code == 404
    assert httpx.get(f"{gh.url}/repos/{REPO}", headers=token).status_code == 404  # its tokens don't reach it
    assert httpx.get(f"{gh.url}/repos/octo/other", headers=token).status_code == 200
    gh.uninstall(REPO, installed=True)
    assert httpx.get(f"{gh.url}/repos/{REPO}", headers=token).status_code == 200


def test_a_persons_token_reads_but_writes_no_check_run(gh: LocalGitHub) -> None:
    headers = {"Authorization": f"Bearer {gh.user_token()}"}
    assert httpx.get(f"{gh.url}/repos/{REPO}/actions/variables", headers=headers).status_code == 200
    created = httpx.post(f"{gh.url}/repos/{REPO}/check-runs", headers=headers, json={"name": "x", "head_sha": SHA})
    assert created.status_code == 403
    assert [r.auth for r in gh.requests] == ["user", None]


def test_a_repository_that_opted_in_follows_its_organisations_template(gh: LocalGitHub, client: httpx.Client) -> None:
    org = "/orgs/octo/actions/oidc/customization/sub"
    repo = f"/repos/{REPO}/actions/oidc/customization/sub"
    assert client.get(org).json() == {"include_claim_keys": [], "use_immutable_subject": False}
    keys = ["repo", "context", "ref", "job_workflow_ref"]
    assert client.put(org, json={"include_claim_keys": keys}).status_code == 201
    assert client.get(org).json()["include_claim_keys"] == keys
    for body in ({}, {"include_claim_keys": ["repo", "repo"]}):
        assert client.put(org, json=body).status_code == 422, body

    def sub() -> Any:
        return _claims_of(pr_job(gh))["sub"]

    # use_default: GitHub's default subject, whatever the organisation's template says.
    assert client.get(repo).json()["use_default"] is True
    assert sub() == f"repo:{REPO}:environment:staging"
    # use_default false without keys of its own: the template.
    assert client.put(repo, json={"use_default": False}).status_code == 201
    assert client.get(repo).json() == {
        "use_default": False,
        "use_immutable_subject": False,
        "sub_claim_prefix": f"repo:{REPO}",
    }
    assert sub().startswith(f"repo:{REPO}:environment:staging:ref:refs/pull/7/merge:job_workflow_ref:")
    # Its own keys win over the template.
    assert client.put(repo, json={"use_default": False, "include_claim_keys": ["repo", "context"]}).status_code == 201
    assert sub() == f"repo:{REPO}:environment:staging"
