"""Names derived from a run request: the run id, which is also the Batch job name.

The run id is a pure function of (repository, PR or branch, head SHA, workflow run id, attempt),
so every duplicate delivery of one request maps to the same id: the run record's conditional
write and the Batch job-name lookup both key on it. It fits Batch's job-name rule
``[A-Za-z0-9_-]{1,128}`` whatever the branch is called, and stays unique because the workflow
run id and attempt are unique per repository, plus a short hash of the exact repository and ref
so that two names that sanitise alike never collide.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from urllib.parse import quote, urlsplit

JOB_NAME = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
# Where Batch's awslogs driver writes a job's output (the job definitions name no group of their own).
LOG_GROUP = "/aws/batch/job"
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def slug(text: str, max_length: int) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    cleaned = _UNSAFE.sub("-", ascii_text).strip("-_")
    return cleaned[:max_length].rstrip("-_") or "x"


def short_hash(*parts: str, length: int = 6) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:length]


def run_id(
    repository: str, pr_number: int | None, head_ref: str, head_sha: str, workflow_run_id: int, attempt: int
) -> str:
    repo_name = repository.split("/", 1)[-1]
    where = f"pr{pr_number}" if pr_number is not None else slug(head_ref, 30)
    name = (
        f"{slug(repo_name, 30)}-{where}-{head_sha[:8]}-{workflow_run_id}-{attempt}-{short_hash(repository, head_ref)}"
    )
    assert JOB_NAME.match(name), name
    return name


def share_identifier(repository: str) -> str:
    """The repository's Batch fair-share identifier (letters, digits and underscores, at most
    255): its name, then a short hash of the exact name so that two names never share."""
    name = re.sub(r"[^A-Za-z0-9]+", "_", repository).strip("_")[:200]
    return f"{name}_{short_hash(repository.lower())}"


def execution_name(run: str) -> str:
    """Step Functions execution names are at most 80 characters; the same run -> the same name."""
    if len(run) <= 80:
        return run
    return f"{run[:71]}-{short_hash(run, length=8)}"


def job_definition_name(image: str, compute: str, grant: str) -> str:
    """One job definition per image digest, compute kind and grant (roles, secrets: a PR's or
    the default branch's), reused by every run of that image with that grant."""
    digest = image.rsplit("@sha256:", 1)[-1]
    return f"modelrun-{compute}-{digest[:40]}-{grant}"


def pr_key(repository: str, pr_number: int) -> str:
    return f"{repository}#{pr_number}"


def branch_key(repository: str, ref: str) -> str:
    return f"{repository}@{ref}"


def results_prefix(repository: str, run: str, key: str) -> str:
    """A run's results prefix: its repository, its id and a random key only its own job is given.
    A repository's job roles may write under runs/<its name>/ only, and not list or read there,
    so no container can find another run's prefix, nor reach another repository's."""
    return f"runs/{repository}/{run}/{key}/"


def report_prefix(run: str) -> str:
    """Where CollectResults writes the report: no job may write here."""
    return f"reports/{run}/"


def collected_prefix(run: str) -> str:
    """Where CollectResults keeps its copy of a run's files (issue 21): under reports/, which no
    job role may write, so what later reports compare with and link to is out of every job's
    reach; the run's own write prefix is never shown anywhere."""
    return f"{report_prefix(run)}artifacts/"


def workflow_run_url(server_url: str, repository: str, run_id: int, attempt: int) -> str:
    """The workflow run's page, built from verified parts only (never a URL from a request)."""
    return f"{server_url.rstrip('/')}/{quote(repository, safe='/')}/actions/runs/{int(run_id)}/attempts/{int(attempt)}"


def https_or_loopback(url: str) -> bool:
    """A URL worth fetching a token or keys from: https, or plain http to the local stack's
    own loopback (a prefix test would let ``http://127.0.0.1:1@evil.example/`` through)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    if parts.username is not None or parts.password is not None or not parts.hostname:
        return False
    return parts.scheme == "https" or (parts.scheme == "http" and parts.hostname == "127.0.0.1" and port is not None)


def built_by_run(tag: str, head_sha: str, run_id: int, attempt: int) -> bool:
    """Whether an image tag is the one the reusable workflow gives the image it builds for this
    commit in this workflow run and attempt: ``<sha>[-gpu]-<run id>-<attempt>-<12 hex>``."""
    return re.fullmatch(rf"{re.escape(head_sha)}(-gpu)?-{run_id}-{attempt}-[0-9a-f]{{12}}", tag) is not None
