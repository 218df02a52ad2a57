"""The documents the local GitHub answers with, shaped as GitHub's: users, the App, repositories,
workflow runs, pull requests, comments, commit statuses and check runs (ids, node ids, urls,
timestamps), so that they pass the response schemas of GitHub's description.

Ids of users, repositories and the like are derived from their names: the same login always has
the same id. Urls are under the local GitHub's API base, known once its server has started.
"""

from __future__ import annotations

import base64
import hashlib
import zlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

# The App's permissions: its document shows them, and an installation token whose request does
# not narrow them gets them all.
APP_PERMISSIONS = {
    "actions": "read",
    "checks": "write",
    "contents": "read",
    "issues": "write",
    "metadata": "read",
    "pull_requests": "write",
    "statuses": "write",
}


def utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def stable_id(text: str) -> int:
    # Deterministic ids for users and repositories, so the same login always has the same id.
    return zlib.crc32(text.encode()) % 90_000_000 + 10_000_000


def node_id(prefix: str, number: int) -> str:
    return f"{prefix}_" + base64.b64encode(f"local:{number}".encode()).decode().rstrip("=")


def client_id(app_id: int) -> str:
    """The App's client id, which GitHub also accepts as a JWT's issuer."""
    return f"Iv1.{app_id:016x}"


class Documents:
    """GitHub's documents for one local GitHub: its API base (``base_url()``), its App's bot."""

    def __init__(self, base_url: Callable[[], str], bot_login: str, app_id: int) -> None:
        self._base_url = base_url
        self.bot_login = bot_login
        self.app_id = app_id

    @property
    def url(self) -> str:
        return self._base_url()

    def user(self, login: str, kind: str | None = None) -> dict[str, Any]:
        kind = kind or ("Bot" if login.endswith("[bot]") else "User")
        api = f"{self.url}/users/{login}"
        uid = stable_id(login)
        return {
            "login": login,
            "id": uid,
            "node_id": node_id("BOT" if kind == "Bot" else "U", uid),
            "avatar_url": f"https://avatars.githubusercontent.com/u/{uid}?v=4",
            "gravatar_id": "",
            "url": api,
            # A bot's page is its app's page.
            "html_url": f"https://github.com/apps/{login.removesuffix('[bot]')}"
            if kind == "Bot"
            else f"https://github.com/{login}",
            "followers_url": f"{api}/followers",
            "following_url": f"{api}/following{{/other_user}}",
            "gists_url": f"{api}/gists{{/gist_id}}",
            "starred_url": f"{api}/starred{{/owner}}{{/repo}}",
            "subscriptions_url": f"{api}/subscriptions",
            "organizations_url": f"{api}/orgs",
            "repos_url": f"{api}/repos",
            "events_url": f"{api}/events{{/privacy}}",
            "received_events_url": f"{api}/received_events",
            "type": kind,
            "user_view_type": "public",
            "site_admin": False,
        }

    def app(self) -> dict[str, Any]:
        slug = self.bot_login.removesuffix("[bot]")
        app_id = self.app_id
        now = iso(datetime(2024, 1, 1, tzinfo=UTC))
        return {
            "id": app_id,
            "slug": slug,
            "node_id": node_id("A", app_id),
            "client_id": client_id(app_id),
            "owner": self.user(slug, "Organization"),
            "name": slug,
            "description": "",
            "external_url": "https://example.invalid/modelrun",
            "html_url": f"https://github.com/apps/{slug}",
            "created_at": now,
            "updated_at": now,
            "permissions": dict(APP_PERMISSIONS),
            "events": [],
        }

    def installation(self, installation_id: int, owner: str) -> dict[str, Any]:
        """The App's installation on ``owner``'s repositories (all of them)."""
        account = self.user(owner, "Organization")
        now = iso(datetime(2024, 1, 1, tzinfo=UTC))
        return {
            "id": installation_id,
            "account": account,
            "repository_selection": "all",
            "access_tokens_url": f"{self.url}/app/installations/{installation_id}/access_tokens",
            "repositories_url": f"{self.url}/installation/repositories",
            "html_url": f"https://github.com/organizations/{owner}/settings/installations/{installation_id}",
            "app_id": self.app_id,
            "client_id": client_id(self.app_id),
            "app_slug": self.bot_login.removesuffix("[bot]"),
            "target_id": account["id"],
            "target_type": "Organization",
            "permissions": dict(APP_PERMISSIONS),
            "events": [],
            "created_at": now,
            "updated_at": now,
            "single_file_name": None,
            "suspended_by": None,
            "suspended_at": None,
        }

    def repository(self, full_name: str) -> dict[str, Any]:
        owner, name = full_name.split("/", 1)
        api = f"{self.url}/repos/{full_name}"
        rid = stable_id("repo:" + full_name.lower())
        created = iso(datetime(2024, 1, 1, tzinfo=UTC))
        templated = {
            "archive_url": "/{archive_format}{/ref}",
            "assignees_url": "/assignees{/user}",
            "blobs_url": "/git/blobs{/sha}",
            "branches_url": "/branches{/branch}",
            "collaborators_url": "/collaborators{/collaborator}",
            "comments_url": "/comments{/number}",
            "commits_url": "/commits{/sha}",
            "compare_url": "/compare/{base}...{head}",
            "contents_url": "/contents/{+path}",
            "git_commits_url": "/git/commits{/sha}",
            "git_refs_url": "/git/refs{/sha}",
            "git_tags_url": "/git/tags{/sha}",
            "issue_comment_url": "/issues/comments{/number}",
            "issue_events_url": "/issues/events{/number}",
            "issues_url": "/issues{/number}",
            "keys_url": "/keys{/key_id}",
            "labels_url": "/labels{/name}",
            "milestones_url": "/milestones{/number}",
            "notifications_url": "/notifications{?since,all,participating}",
            "pulls_url": "/pulls{/number}",
            "releases_url": "/releases{/id}",
            "statuses_url": "/statuses/{sha}",
            "trees_url": "/git/trees{/sha}",
        }
        plain = (
            "contributors",
            "deployments",
            "downloads",
            "events",
            "forks",
            "hooks",
            "languages",
            "merges",
            "stargazers",
            "subscribers",
            "subscription",
            "tags",
            "teams",
        )
        repo: dict[str, Any] = {
            "id": rid,
            "node_id": node_id("R", rid),
            "name": name,
            "full_name": full_name,
            "owner": self.user(owner, "Organization"),
            "private": False,
            "html_url": f"https://github.com/{full_name}",
            "description": None,
            "fork": False,
            "url": api,
            **{k: api + v for k, v in templated.items()},
            **{f"{k}_url": f"{api}/{k}" for k in plain},
            "clone_url": f"https://github.com/{full_name}.git",
            "git_url": f"git://github.com/{full_name}.git",
            "ssh_url": f"git@github.com:{full_name}.git",
            "svn_url": f"https://github.com/{full_name}",
            "mirror_url": None,
            "homepage": None,
            "language": "Python",
            "default_branch": "main",
            "forks": 0,
            "forks_count": 0,
            "stargazers_count": 0,
            "watchers": 0,
            "watchers_count": 0,
            "open_issues": 0,
            "open_issues_count": 0,
            "size": 0,
            "has_issues": True,
            "has_projects": False,
            "has_wiki": False,
            "has_pages": False,
            "has_downloads": True,
            "archived": False,
            "disabled": False,
            "license": None,
            "visibility": "public",
            "pushed_at": created,
            "created_at": created,
            "updated_at": created,
        }
        return repo

    def workflow_run(
        self,
        repo: str,
        event_name: str,
        head_sha: str,
        head_branch: str,
        run_id: int,
        attempt: int,
        actor: str,
        triggering_actor: str | None,
        pull_request: tuple[int, str, str, str] | None,
    ) -> dict[str, Any]:
        api = f"{self.url}/repos/{repo}"
        now = iso(utcnow())
        repository = self.repository(repo)
        suite = stable_id(f"suite:{repo}:{run_id}:{attempt}")
        pulls = []
        if pull_request is not None:
            number, head_ref, base_ref, base_sha = pull_request
            rid = repository["id"]
            pulls.append(
                {
                    "id": stable_id(f"pull:{repo.lower()}#{number}"),
                    "number": number,
                    "url": f"{api}/pulls/{number}",
                    "head": {"ref": head_ref, "sha": head_sha, "repo": {"id": rid, "url": api, "name": repo}},
                    "base": {"ref": base_ref, "sha": base_sha, "repo": {"id": rid, "url": api, "name": repo}},
                }
            )
        person = {"name": actor, "email": f"{actor}@users.noreply.github.com"}
        return {
            "id": run_id,
            "name": "run-model",
            "node_id": node_id("WFR", run_id),
            "check_suite_id": suite,
            "check_suite_node_id": node_id("CS", suite),
            "head_branch": head_branch,
            "head_sha": head_sha,
            "path": ".github/workflows/run-model.yaml",
            "display_title": f"run-model #{run_id}",
            "run_number": run_id % 10_000,
            "run_attempt": attempt,
            "event": event_name,
            "status": "in_progress",
            "conclusion": None,
            "workflow_id": stable_id(f"workflow:{repo}"),
            "url": f"{api}/actions/runs/{run_id}",
            "html_url": f"https://github.com/{repo}/actions/runs/{run_id}",
            "pull_requests": pulls,
            "created_at": now,
            "updated_at": now,
            "run_started_at": now,
            "actor": self.user(actor),
            "triggering_actor": self.user(triggering_actor or actor),
            "jobs_url": f"{api}/actions/runs/{run_id}/attempts/{attempt}/jobs",
            "logs_url": f"{api}/actions/runs/{run_id}/attempts/{attempt}/logs",
            "check_suite_url": f"{api}/check-suites/{suite}",
            "artifacts_url": f"{api}/actions/runs/{run_id}/artifacts",
            "cancel_url": f"{api}/actions/runs/{run_id}/cancel",
            "rerun_url": f"{api}/actions/runs/{run_id}/rerun",
            "previous_attempt_url": f"{api}/actions/runs/{run_id}/attempts/{attempt - 1}" if attempt > 1 else None,
            "workflow_url": f"{api}/actions/workflows/{stable_id(f'workflow:{repo}')}",
            "head_commit": {
                "id": head_sha,
                "tree_id": hashlib.sha1(f"tree:{head_sha}".encode()).hexdigest(),  # noqa: S324 - a fake SHA
                "message": "A commit",
                "timestamp": now,
                "author": person,
                "committer": person,
            },
            "repository": repository,
            "head_repository": repository,
        }

    def full_repository(self, repo: str, default_branch: str) -> dict[str, Any]:
        """A repository as ``GET /repos/{owner}/{repo}`` answers it."""
        full = self.repository(repo)
        full.update(
            {
                "default_branch": default_branch,
                "has_discussions": False,
                "network_count": 0,
                "subscribers_count": 0,
            }
        )
        return full

    def comment(self, cid: int, repo: str, number: int, text: str) -> dict[str, Any]:
        now = iso(utcnow())
        api = f"{self.url}/repos/{repo}"
        comment: dict[str, Any] = {
            "id": cid,
            "node_id": node_id("IC", cid),
            "url": f"{api}/issues/comments/{cid}",
            "html_url": f"https://github.com/{repo}/pull/{number}#issuecomment-{cid}",
            "issue_url": f"{api}/issues/{number}",
            "body": text,
            "user": self.user(self.bot_login, "Bot"),
            "created_at": now,
            "updated_at": now,
            "author_association": "NONE",
            "performed_via_github_app": None,
            "reactions": {
                "url": f"{api}/issues/comments/{cid}/reactions",
                "total_count": 0,
                **dict.fromkeys(("+1", "-1", "laugh", "hooray", "confused", "heart", "rocket", "eyes"), 0),
            },
        }
        return comment

    def status(self, sid: int, repo: str, sha: str, body: Any) -> dict[str, Any]:
        now = iso(utcnow())
        bot = self.user(self.bot_login, "Bot")
        status: dict[str, Any] = {
            "url": f"{self.url}/repos/{repo}/statuses/{sha}",
            "avatar_url": bot["avatar_url"],
            "id": sid,
            "node_id": node_id("SC", sid),
            "state": body["state"],
            "description": body.get("description"),
            "target_url": body.get("target_url"),
            "context": body.get("context", "default"),
            "created_at": now,
            "updated_at": now,
            "creator": bot,
        }
        return status

    def check_run(self, rid: int, repo: str, body: Any) -> dict[str, Any]:
        """A new check run, before GitHub's rules about its conclusion are applied."""
        api = f"{self.url}/repos/{repo}/check-runs/{rid}"
        output = body.get("output") or {}
        run: dict[str, Any] = {
            "id": rid,
            "head_sha": body["head_sha"],
            "node_id": node_id("CR", rid),
            "external_id": body.get("external_id", ""),
            "url": api,
            "html_url": f"https://github.com/{repo}/runs/{rid}",
            "details_url": body.get("details_url", f"https://github.com/{repo}/runs/{rid}"),
            "status": body.get("status", "queued"),
            "conclusion": body.get("conclusion"),
            "started_at": body.get("started_at", iso(utcnow())),
            "completed_at": body.get("completed_at"),
            "output": {
                "title": output.get("title"),
                "summary": output.get("summary"),
                "text": output.get("text"),
                "annotations_count": len(output.get("annotations", [])),
                "annotations_url": f"{api}/annotations",
            },
            "name": body["name"],
            "check_suite": {"id": stable_id(f"suite:{repo}:{body['head_sha']}")},
            "app": self.app(),
            "pull_requests": [],
        }
        return run

    def content_file(self, repo: str, path: str, ref: str, data: bytes) -> dict[str, Any]:
        """A file as ``GET /repos/{owner}/{repo}/contents/{path}`` answers it (``application/json``):
        its bytes in base64, wrapped at 60 characters as GitHub sends them, and its blob SHA."""
        blob = hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()
        encoded = base64.b64encode(data).decode()
        content = "".join(encoded[i : i + 60] + "\n" for i in range(0, len(encoded), 60))
        api = f"{self.url}/repos/{repo}"
        html = f"https://github.com/{repo}/blob/{ref}/{path}"
        git = f"{api}/git/blobs/{blob}"
        this = f"{api}/contents/{path}?ref={ref}"
        return {
            "type": "file",
            "encoding": "base64",
            "size": len(data),
            "name": path.rsplit("/", 1)[-1],
            "path": path,
            "content": content,
            "sha": blob,
            "url": this,
            "git_url": git,
            "html_url": html,
            "download_url": f"https://raw.githubusercontent.com/{repo}/{ref}/{path}",
            "_links": {"git": git, "html": html, "self": this},
        }

    def environment(
        self,
        repo: str,
        name: str,
        reviewers: tuple[str, ...],
        prevent_self_review: bool,
        branch_policy: str | None,
    ) -> dict[str, Any]:
        """An environment as ``GET /repos/{owner}/{repo}/environments/{name}`` answers it: its
        required reviewers (users) as one rule, and its deployment branches (``branch_policy``
        None: every branch; "protected": protected branches; "custom": the listed patterns)."""
        eid = stable_id(f"environment:{repo.lower()}:{name.lower()}")
        created = iso(datetime(2024, 1, 1, tzinfo=UTC))
        rules: list[dict[str, Any]] = []
        if reviewers:
            rid = stable_id(f"gate:{eid}:reviewers")
            rules.append(
                {
                    "id": rid,
                    "node_id": node_id("GA", rid),
                    "prevent_self_review": prevent_self_review,
                    "type": "required_reviewers",
                    "reviewers": [{"type": "User", "reviewer": self.user(login, "User")} for login in reviewers],
                }
            )
        if branch_policy is not None:
            bid = stable_id(f"gate:{eid}:branches")
            rules.append({"id": bid, "node_id": node_id("GA", bid), "type": "branch_policy"})
        return {
            "id": eid,
            "node_id": node_id("EN", eid),
            "name": name,
            "url": f"{self.url}/repos/{repo}/environments/{name}",
            "html_url": f"https://github.com/{repo}/deployments/activity_log?environments_filter={name}",
            "created_at": created,
            "updated_at": created,
            "protection_rules": rules,
            "deployment_branch_policy": None
            if branch_policy is None
            else {
                "protected_branches": branch_policy == "protected",
                "custom_branch_policies": branch_policy == "custom",
            },
        }

    def branch_policy(self, repo: str, environment: str, pattern: str, kind: str) -> dict[str, Any]:
        """One deployment branch (or tag) policy of an environment."""
        pid = stable_id(f"branch-policy:{repo.lower()}:{environment.lower()}:{kind}:{pattern}")
        return {"id": pid, "node_id": node_id("GBP", pid), "name": pattern, "type": kind}

    def variable(self, name: str, value: str) -> dict[str, Any]:
        """An Actions variable as the listing gives it."""
        at = iso(datetime(2024, 1, 1, tzinfo=UTC))
        return {"name": name, "value": value, "created_at": at, "updated_at": at}
