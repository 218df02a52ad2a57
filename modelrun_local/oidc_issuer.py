"""The local GitHub's OIDC issuer: what GitHub Actions gives a job with ``id-token: write``.

Shaped as GitHub Enterprise Server publishes it: issuer ``<server>/_services/token``, discovery at
``<issuer>/.well-known/openid-configuration``, keys at ``<issuer>/.well-known/jwks``, and a job's
token from ``$ACTIONS_ID_TOKEN_REQUEST_URL&audience=…`` with the bearer
``$ACTIONS_ID_TOKEN_REQUEST_TOKEN``. Tokens are RS256 JWTs with GitHub's claims, signed by a key
made per process: the submit function verifies them exactly as it verifies GitHub's.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from modelrun_local.github_documents import stable_id

PATH = "/_services/token"
TOKEN_LIFETIME_S = 300  # GitHub's job tokens are short-lived too


@dataclass(frozen=True)
class Job:
    """One job of a workflow run, as its token describes it."""

    repository: str
    event_name: str
    ref: str
    sha: str
    run_id: int
    run_attempt: int
    actor: str
    environment: str | None
    workflow_ref: str
    head_ref: str = ""
    base_ref: str = ""
    # The workflow the job runs: a called reusable workflow's OWNER/REPO/PATH@REF and commit
    # (empty: the job is the caller's own, ``workflow_ref``).
    job_workflow_ref: str = ""
    job_workflow_sha: str = ""


@dataclass(frozen=True)
class SubjectCustomization:
    """A repository's ``PUT …/actions/oidc/customization/sub`` (GitHub's defaults: none), or an
    organisation's template (``PUT /orgs/{org}/actions/oidc/customization/sub``: its keys alone).

    A repository with ``use_default`` false and no keys of its own follows its organisation's
    template; ``use_default`` true is GitHub's default subject whatever the template says
    (GitHub's OIDC reference: a repository opts in to the template with ``use_default: false``)."""

    include_claim_keys: tuple[str, ...] | None = None  # None: no keys of its own
    use_immutable_subject: bool = False  # `repo:OWNER@ID/REPO@ID`, as newer repositories get
    use_default: bool = True

    @property
    def follows_organization(self) -> bool:
        return not self.use_default and not self.include_claim_keys


def immutable_prefix(repository: str) -> str:
    """``repo:OWNER@ID/REPO@ID``, with the ids the local GitHub's API gives them."""
    owner, name = repository.split("/", 1)
    return f"repo:{owner}@{stable_id(owner)}/{name}@{stable_id('repo:' + repository.lower())}"


class LocalIssuer:
    def __init__(self) -> None:
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = uuid.uuid4().hex
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self.issuer = ""  # set when the server knows its URL
        # Subject customization by repository and organisation templates by owner (lower
        # case); the local GitHub's API sets them.
        self.subjects: dict[str, SubjectCustomization] = {}
        self.organization_subjects: dict[str, SubjectCustomization] = {}

    def subject_prefix(self, repository: str) -> str:
        """The subject's ``repo:`` part: by name, or by name and id (immutable subjects)."""
        custom = self.subjects.get(repository.lower(), SubjectCustomization())
        return immutable_prefix(repository) if custom.use_immutable_subject else f"repo:{repository}"

    def subject(self, job: Job, claims: dict[str, Any]) -> str:
        """GitHub's ``sub``: ``repo:…:CONTEXT`` by default; customized, each included claim as
        ``KEY:VALUE`` in the order given, ``repo`` and ``context`` as in the default."""
        if job.environment:
            context = f"environment:{job.environment}"
        elif job.event_name == "pull_request":
            context = "pull_request"
        else:
            context = f"ref:{job.ref}"
        repo = self.subject_prefix(job.repository)
        keys = self.claim_keys(job.repository)
        if keys is None:
            return f"{repo}:{context}"
        parts = {"repo": repo, "context": context}
        return ":".join(parts.get(key) or f"{key}:{claims.get(key, '')}" for key in keys)

    def claim_keys(self, repository: str) -> tuple[str, ...] | None:
        """The keys the repository's subject is built from (None: GitHub's default subject): its
        own, or, when it follows it, its organisation's template."""
        custom = self.subjects.get(repository.lower(), SubjectCustomization())
        if custom.use_default:
            return None
        if custom.include_claim_keys:
            return custom.include_claim_keys
        template = self.organization_subjects.get(repository.split("/", 1)[0].lower())
        return template.include_claim_keys or None if template else None

    def bind(self, server_url: str) -> None:
        self.issuer = f"{server_url}{PATH}"

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "jwks_uri": f"{self.issuer}/.well-known/jwks",
            "subject_types_supported": ["public", "pairwise"],
            "response_types_supported": ["id_token"],
            "claims_supported": [
                "sub",
                "aud",
                "exp",
                "iat",
                "iss",
                "jti",
                "nbf",
                "ref",
                "repository",
                "run_id",
                "job_workflow_ref",
                "job_workflow_sha",
            ],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid"],
        }

    def jwks(self) -> dict[str, Any]:
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self._key.public_key()))
        return {"keys": [{**public, "kid": self.kid, "use": "sig", "alg": "RS256"}]}

    def register(self, job: Job) -> str:
        """A request token for the job (``ACTIONS_ID_TOKEN_REQUEST_TOKEN``)."""
        bearer = secrets.token_urlsafe(24)
        with self._lock:
            self._jobs[bearer] = job
        return bearer

    def token_for(self, bearer: str | None, audience: str | None) -> str | None:
        with self._lock:
            job = self._jobs.get(bearer or "")
        if job is None:
            return None
        return self.mint(job, audience or f"https://github.com/{job.repository.split('/')[0]}")

    def mint(self, job: Job, audience: str, issued_at: float | None = None, key: Any = None) -> str:
        """The job's token (tests pass ``issued_at`` or another ``key`` to forge or age one)."""
        now = int(issued_at if issued_at is not None else time.time())
        owner = job.repository.split("/", 1)[0]
        claims: dict[str, Any] = {
            "jti": str(uuid.uuid4()),
            "aud": audience,
            "ref": job.ref,
            "sha": job.sha,
            "repository": job.repository,
            "repository_owner": owner,
            "run_id": str(job.run_id),
            "run_number": str(job.run_id % 10_000),
            "run_attempt": str(job.run_attempt),
            "actor": job.actor,
            "workflow": "run-model",
            "head_ref": job.head_ref,
            "base_ref": job.base_ref,
            "event_name": job.event_name,
            "ref_type": "branch" if job.ref.startswith("refs/heads/") else "",
            "workflow_ref": job.workflow_ref,
            "job_workflow_ref": job.job_workflow_ref or job.workflow_ref,
            "job_workflow_sha": job.job_workflow_sha or job.sha,
            "repository_id": str(stable_id("repo:" + job.repository.lower())),
            "repository_owner_id": str(stable_id(owner)),
            "runner_environment": "github-hosted",
            "iss": self.issuer,
            "nbf": now,
            "iat": now,
            "exp": now + TOKEN_LIFETIME_S,
        }
        if job.environment:
            claims["environment"] = job.environment
        claims["sub"] = self.subject(job, claims)
        return jwt.encode(claims, key or self._key, algorithm="RS256", headers={"kid": self.kid})

    def mint_like(self, token: str, *, issued_at: float) -> str:
        """The same claims, issued at another time (a test's stale token), signed by this issuer."""
        claims = jwt.decode(token, options={"verify_signature": False})
        now = int(issued_at)
        claims |= {"iat": now, "nbf": now, "exp": now + TOKEN_LIFETIME_S}
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self.kid})
