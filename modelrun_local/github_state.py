"""What the local GitHub holds (comments, commit statuses, check runs, pull requests, workflow runs,
environments, Actions variables, OIDC subject customizations) and its endpoints' answers, with the
rules GitHub applies beyond its description's schemas.

Requests reach ``answer`` already routed, authenticated and checked against the description
(``github_server``); a refusal is raised as ``Rejected`` and changes nothing.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import threading
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlencode

from werkzeug.datastructures import MultiDict

from modelrun_local import github_auth
from modelrun_local.github_auth import Credentials
from modelrun_local.github_documents import Documents, iso, utcnow
from modelrun_local.github_spec import Operation, Rejected, error_body
from modelrun_local.oidc_issuer import SubjectCustomization, immutable_prefix

# Limits GitHub enforces beyond what the description states.
COMMENT_BODY_MAX = 65536
STATUS_DESCRIPTION_MAX = 140
PER_PAGE_MAX = 100
_CLAIM_KEY = re.compile(r"^[A-Za-z0-9_]+$")

Answer = tuple[int, Any, dict[str, str]]  # status, JSON body, headers
VARIABLES_PER_PAGE = (10, 30)  # the variables listing's default and largest page (the description)


@dataclass(frozen=True)
class Environment:
    """A repository's deployment environment: required reviewers (users), whether an author may
    approve their own job, and which branches may deploy (None: every branch; "protected":
    protected branches; "custom": ``branch_patterns``)."""

    reviewers: tuple[str, ...] = ()
    prevent_self_review: bool = False
    branch_policy: Literal["protected", "custom"] | None = None
    branch_patterns: tuple[str, ...] = ()


def _too_long(resource: str, field: str, message: str, docs: str, reason: str) -> Rejected:
    errors = [{"resource": resource, "code": "custom", "field": field, "message": message}]
    return Rejected(422, error_body("Validation Failed", docs, 422, errors), reason)


class GitHubState:
    """The repositories' state as the local GitHub serves it; ``lock`` guards it."""

    def __init__(self, documents: Documents, credentials: Credentials) -> None:
        self.documents = documents
        self.credentials = credentials
        self.lock = threading.RLock()
        self.default_branch = "main"
        self._next_id = 1000
        self._issue_comments: dict[tuple[str, int], list[int]] = {}
        self._comments: dict[int, tuple[str, int, dict[str, Any]]] = {}
        self._statuses: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._check_runs: dict[int, tuple[str, dict[str, Any]]] = {}
        self._workflow_runs: dict[tuple[str, int, int], dict[str, Any]] = {}
        # Files by (repository, ref, path): the local GitHub keeps no git objects, so a file is
        # seeded at the ref (a commit SHA, or a branch name) it is asked for.
        self._files: dict[tuple[str, str, str], bytes] = {}
        # OIDC subject customization by repository (lower case): the issuer builds `sub` from it.
        self.oidc_subjects: dict[str, SubjectCustomization] = {}
        # Organisation templates by owner (lower case): repositories that opted in follow them.
        self.organization_oidc_subjects: dict[str, SubjectCustomization] = {}
        # Environments by repository (lower case) and name (lower case: GitHub's names are not
        # case sensitive), with the name as created.
        self._environments: dict[str, dict[str, tuple[str, Environment]]] = {}
        self._variables: dict[str, dict[str, str]] = {}  # repository (lower case) -> name -> value

    # -- reading and seeding it -------------------------------------------------------------------

    def comments(self, repo: str, number: int) -> list[dict[str, Any]]:
        with self.lock:
            ids = self._issue_comments.get((repo.lower(), number), [])
            return [copy.deepcopy(self._comments[i][2]) for i in ids]

    def statuses(self, repo: str, sha: str) -> list[dict[str, Any]]:
        with self.lock:
            return copy.deepcopy(self._statuses.get((repo.lower(), sha), []))

    def check_runs(self, repo: str, sha: str) -> list[dict[str, Any]]:
        with self.lock:
            return [
                copy.deepcopy(run)
                for r, run in self._check_runs.values()
                if r == repo.lower() and run["head_sha"] == sha
            ]

    def add_workflow_run(self, repo: str, run: dict[str, Any]) -> None:
        with self.lock:
            self._workflow_runs[(repo.lower(), int(run["id"]), int(run["run_attempt"]))] = run

    def put_file(self, repo: str, ref: str, path: str, data: bytes) -> None:
        with self.lock:
            self._files[(repo.lower(), ref, path)] = data

    def put_environment(self, repo: str, name: str, environment: Environment) -> None:
        """Create or replace an environment (GitHub's PUT takes reviewers by id: set here instead)."""
        with self.lock:
            self._environments.setdefault(repo.lower(), {})[name.lower()] = (name, environment)

    def delete_environment(self, repo: str, name: str) -> None:
        with self.lock:
            self._environments.get(repo.lower(), {}).pop(name.lower(), None)

    def environment(self, repo: str, name: str) -> Environment | None:
        with self.lock:
            found = self._environments.get(repo.lower(), {}).get(name.lower())
            return found[1] if found else None

    def ensure_environment(self, repo: str, name: str) -> None:
        """GitHub creates an environment a job names that does not exist, with no protection."""
        with self.lock:
            if self.environment(repo, name) is None:
                self.put_environment(repo, name, Environment())

    def set_variable(self, repo: str, name: str, value: str | None) -> None:
        """Set a repository's Actions variable (None deletes it); GitHub stores names upper case."""
        with self.lock:
            variables = self._variables.setdefault(repo.lower(), {})
            if value is None:
                variables.pop(name.upper(), None)
            else:
                variables[name.upper()] = value

    # -- the endpoints ----------------------------------------------------------------------------

    def answer(
        self, op: Operation, params: dict[str, str], path: str, args: MultiDict[str, str], body: Any, docs: str
    ) -> Answer:
        """One implemented operation's answer; ``path`` is the request's, without any API prefix."""
        repo = f"{params.get('owner', '')}/{params.get('repo', '')}"
        key = repo.lower()
        with self.lock:
            match op.operation_id:
                case "issues/list-comments":
                    ids = self._issue_comments.get((key, int(params["issue_number"])), [])
                    items = [self._comments[i][2] for i in ids]
                    if since := args.get("since"):
                        items = [c for c in items if c["updated_at"] >= since]
                    chunk, headers = self._page(args, path, items)
                    return 200, chunk, headers
                case "issues/create-comment":
                    comment = self._new_comment(repo, int(params["issue_number"]), self._comment_body(body, docs))
                    return 201, comment, {"Location": comment["url"]}
                case "issues/update-comment":
                    entry = self._comments.get(int(params["comment_id"]))
                    if entry is None or entry[0] != key:
                        raise Rejected(404, error_body("Not Found", docs, 404), "no such comment")
                    comment = entry[2]
                    comment["body"] = self._comment_body(body, docs)
                    comment["updated_at"] = iso(utcnow())
                    return 200, copy.deepcopy(comment), {}
                case "repos/create-commit-status":
                    status = self._new_status(repo, params["sha"], body, docs)
                    return 201, status, {"Location": status["url"]}
                case "checks/list-for-ref":
                    return self._list_check_runs(args, path, key, params["ref"])
                case "checks/create":
                    return 201, self._new_check_run(repo, body, docs), {}
                case "checks/update":
                    found = self._check_runs.get(int(params["check_run_id"]))
                    if found is None or found[0] != key:
                        raise Rejected(404, error_body("Not Found", docs, 404), "no such check run")
                    self._update_check_run(found[1], body, docs)
                    return 200, copy.deepcopy(found[1]), {}
                case "actions/get-workflow-run-attempt":
                    run = self._workflow_runs.get((key, int(params["run_id"]), int(params["attempt_number"])))
                    if run is None:
                        raise Rejected(404, error_body("Not Found", docs, 404), "no such workflow run (actions_job it)")
                    return 200, copy.deepcopy(run), {}
                case "repos/get-content":
                    ref = args.get("ref") or self.default_branch
                    data = self._files.get((key, ref, params["path"]))
                    if data is None:
                        # No file there: GitHub's ordinary answer (a repository without a policy
                        # file), not a refusal of the request, so not recorded as rejected.
                        return 404, error_body("Not Found", docs, 404), {}
                    return 200, self.documents.content_file(repo, params["path"], ref, data), {}
                case "repos/get":
                    return 200, self.documents.full_repository(repo, self.default_branch), {}
                case "actions/get-custom-oidc-sub-claim-for-repo":
                    custom = self.oidc_subjects.get(key, SubjectCustomization())
                    doc: dict[str, Any] = {"use_default": custom.use_default}
                    if custom.include_claim_keys is not None:
                        doc["include_claim_keys"] = list(custom.include_claim_keys)
                    immutable = custom.use_immutable_subject
                    doc["use_immutable_subject"] = immutable
                    doc["sub_claim_prefix"] = immutable_prefix(repo) if immutable else f"repo:{repo}"
                    return 200, doc, {}
                case "actions/set-custom-oidc-sub-claim-for-repo":
                    self.oidc_subjects[key] = self._subject_customization(key, body, docs)
                    return 201, {}, {}
                case "oidc/get-oidc-custom-sub-template-for-org":
                    template = self.organization_oidc_subjects.get(params["org"].lower(), SubjectCustomization())
                    org_doc: dict[str, Any] = {"include_claim_keys": list(template.include_claim_keys or ())}
                    org_doc["use_immutable_subject"] = template.use_immutable_subject
                    return 200, org_doc, {}
                case "oidc/update-oidc-custom-sub-template-for-org":
                    self.organization_oidc_subjects[params["org"].lower()] = self._organization_template(body, docs)
                    return 201, {}, {}
                case "repos/get-environment":
                    named = self._environments.get(key, {}).get(params["environment_name"].lower())
                    if named is None:  # GitHub's ordinary answer, not a refusal of the request
                        return 404, error_body("Not Found", docs, 404), {}
                    name, env = named
                    document = self.documents.environment(
                        repo, name, env.reviewers, env.prevent_self_review, env.branch_policy
                    )
                    return 200, document, {}
                case "repos/list-deployment-branch-policies":
                    named = self._environments.get(key, {}).get(params["environment_name"].lower())
                    if named is None:
                        return 404, error_body("Not Found", docs, 404), {}
                    name, env = named
                    patterns = env.branch_patterns if env.branch_policy == "custom" else ()
                    policies = [self.documents.branch_policy(repo, name, p, "branch") for p in patterns]
                    chunk, headers = self._page(args, path, policies)
                    return 200, {"total_count": len(policies), "branch_policies": chunk}, headers
                case "actions/list-repo-variables":
                    values = sorted(self._variables.get(key, {}).items())
                    listed = [self.documents.variable(n, v) for n, v in values]
                    chunk, headers = self._page(args, path, listed, per_page=VARIABLES_PER_PAGE)
                    return 200, {"total_count": len(listed), "variables": chunk}, headers
                case github_auth.EXCHANGE_OPERATION:  # a dotted name: a value pattern, not a capture
                    installation_id = int(params["installation_id"])
                    if installation_id not in self.credentials.installations:
                        # GitHub: another app's installation, or none, is not found for this app.
                        raise Rejected(404, error_body("Not Found", docs, 404), "not this app's installation")
                    return 201, self.credentials.new_installation_token(body, installation_id), {}
                case github_auth.INSTALLATION_OPERATION:
                    found_installation = self.credentials.installation_of_repository(repo)
                    if found_installation is None:
                        # GitHub: the App is not installed on this repository.
                        return 404, error_body("Not Found", docs, 404), {}
                    return 200, self.documents.installation(found_installation, params["owner"]), {}
        raise Rejected(404, error_body("Not Found", docs, 404), f"unrouted {op.operation_id}")  # pragma: no cover

    def _subject_customization(self, key: str, body: dict[str, Any], docs: str) -> SubjectCustomization:
        """Beyond the schema: unique keys of letters, digits and underscores (the description's
        words). ``use_default: false`` without keys opts the repository in to its
        organisation's template (GitHub's OIDC reference). ``use_immutable_subject`` left out
        keeps the repository's setting."""
        keys = self._claim_keys(body, docs)
        previous = self.oidc_subjects.get(key, SubjectCustomization())
        immutable = body.get("use_immutable_subject", previous.use_immutable_subject)
        use_default = bool(body["use_default"])
        return SubjectCustomization(None if use_default or not keys else keys, bool(immutable), use_default)

    def _organization_template(self, body: dict[str, Any], docs: str) -> SubjectCustomization:
        """An organisation's template: its keys (at least one, assumed: a subject of no claims
        would be empty), checked as a repository's are."""
        keys = self._claim_keys(body, docs)
        if not keys:
            raise Rejected(422, error_body("include_claim_keys is required", docs, 422), "no claim keys")
        return SubjectCustomization(keys, bool(body.get("use_immutable_subject", False)), use_default=False)

    def _claim_keys(self, body: dict[str, Any], docs: str) -> tuple[str, ...]:
        keys = body.get("include_claim_keys") or []
        if any(not _CLAIM_KEY.fullmatch(k) for k in keys) or len(set(keys)) != len(keys):
            raise Rejected(422, error_body("Invalid claim keys", docs, 422), "claim keys: unique, [A-Za-z0-9_]+")
        return tuple(keys)

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _cache_headers(self, payload: Any) -> dict[str, str]:
        # GitHub marks GETs cacheable for 60 s with an ETag; a caching client may serve a stale
        # copy within that window, as it would against GitHub.
        etag = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:32]
        return {
            "ETag": f'W/"{etag}"',
            "Cache-Control": "private, max-age=60, s-maxage=60",
            "Vary": "Accept, Authorization",
        }

    def _list_check_runs(self, args: MultiDict[str, str], path: str, key: str, ref: str) -> Answer:
        """A commit's check runs as GitHub lists them, newest first: by ``check_name`` and
        ``status``; ``filter=latest`` (the default) keeps the newest run of each name. The ref
        must be the commit's SHA here (the local GitHub keeps no branches or tags)."""
        runs = [run for r, run in self._check_runs.values() if r == key and run["head_sha"] == ref]
        runs.sort(key=lambda run: run["id"], reverse=True)
        if name := args.get("check_name"):
            runs = [run for run in runs if run["name"] == name]
        if status := args.get("status"):
            runs = [run for run in runs if run["status"] == status]
        if args.get("filter", "latest") == "latest":
            newest: dict[str, dict[str, Any]] = {}
            for run in runs:
                newest.setdefault(run["name"], run)
            runs = list(newest.values())
        chunk, headers = self._page(args, path, runs)
        return 200, {"total_count": len(runs), "check_runs": chunk}, headers

    def _page(
        self,
        args: MultiDict[str, str],
        path: str,
        items: list[dict[str, Any]],
        per_page: tuple[int, int] = (30, PER_PAGE_MAX),
    ) -> tuple[list[Any], dict[str, str]]:
        """One page of a listing (``per_page``, ``page``) and its headers: the cache headers and
        GitHub's ``Link`` to the other pages. ``per_page``: the listing's default and largest page."""
        default, most = per_page
        size = min(max(args.get("per_page", default, type=int) or default, 1), most)
        page = max(args.get("page", 1, type=int) or 1, 1)
        chunk = copy.deepcopy(items[(page - 1) * size : page * size])
        last = max((len(items) + size - 1) // size, 1)
        headers = self._cache_headers(chunk)
        links = []
        base_args = {k: v for k, v in args.items() if k not in ("page", "per_page")}

        def url(p: int) -> str:
            return f"{self.documents.url}{path}?{urlencode({**base_args, 'per_page': size, 'page': p})}"

        if page > 1:
            links += [f'<{url(page - 1)}>; rel="prev"', f'<{url(1)}>; rel="first"']
        if page < last:
            links += [f'<{url(page + 1)}>; rel="next"', f'<{url(last)}>; rel="last"']
        if links:
            headers["Link"] = ", ".join(links)
        return chunk, headers

    def _comment_body(self, body: Any, docs: str) -> str:
        text: str = body["body"]
        if len(text) > COMMENT_BODY_MAX:
            message = f"Body is too long (maximum is {COMMENT_BODY_MAX} characters)"
            raise _too_long("IssueComment", "body", message, docs, "comment body too long")
        if not text.strip():
            errors = [{"resource": "IssueComment", "code": "missing_field", "field": "body"}]
            raise Rejected(422, error_body("Validation Failed", docs, 422, errors), "comment body blank")
        return text

    def _new_comment(self, repo: str, number: int, text: str) -> dict[str, Any]:
        cid = self._new_id()
        comment = self.documents.comment(cid, repo, number, text)
        key = repo.lower()
        self._comments[cid] = (key, number, comment)
        self._issue_comments.setdefault((key, number), []).append(cid)
        return copy.deepcopy(comment)

    def _new_status(self, repo: str, sha: str, body: Any, docs: str) -> dict[str, Any]:
        description = body.get("description")
        if description is not None and len(description) > STATUS_DESCRIPTION_MAX:
            message = f"description is too long (maximum is {STATUS_DESCRIPTION_MAX} characters)"
            raise _too_long("Status", "description", message, docs, "status description too long")
        status = self.documents.status(self._new_id(), repo, sha, body)
        self._statuses.setdefault((repo.lower(), sha), []).append(status)
        return copy.deepcopy(status)

    def _new_check_run(self, repo: str, body: Any, docs: str) -> dict[str, Any]:
        rid = self._new_id()
        run = self.documents.check_run(rid, repo, body)
        self._check_conclusion(run, docs)
        self._check_runs[rid] = (repo.lower(), run)
        return copy.deepcopy(run)

    def _check_conclusion(self, run: dict[str, Any], docs: str) -> None:
        # GitHub: "conclusion" is required once a run is completed, and a conclusion completes it.
        if run["conclusion"] is not None:
            run["status"] = "completed"
        if run["status"] == "completed":
            if run["conclusion"] is None:
                raise Rejected(
                    422,
                    error_body(
                        'Invalid request.\n\nNo subschema in "anyOf" matched.\n"conclusion" wasn\'t supplied.',
                        docs,
                        422,
                        [{"resource": "CheckRun", "code": "missing_field", "field": "conclusion"}],
                    ),
                    "completed check run without conclusion",
                )
            run["completed_at"] = run["completed_at"] or iso(utcnow())

    def _update_check_run(self, run: dict[str, Any], body: Any, docs: str) -> None:
        before = copy.deepcopy(run)
        for k in ("name", "details_url", "external_id", "started_at", "status", "conclusion", "completed_at"):
            if k in body:
                run[k] = body[k]
        if "output" in body:
            out = body["output"]
            run["output"].update({k: out.get(k) for k in ("title", "summary", "text")})
            run["output"]["annotations_count"] += len(out.get("annotations", []))
        try:
            self._check_conclusion(run, docs)
        except Rejected:
            run.clear()
            run.update(before)  # a rejected request changes nothing
            raise
