"""Run records for tests that write them directly (no submit function, so no verification)."""

from __future__ import annotations

from typing import Any

from modelrun.contracts import RunRequest
from modelrun.domain.evidence import Verified
from modelrun.domain.run import RunRecord


def verified_from(request: RunRequest, **overrides: Any) -> Verified:
    """What verification would establish for an honest request."""
    fields: dict[str, Any] = {
        "repository": request.repository,
        "event": request.event,
        "environment": "modelrun-main" if request.event != "pull_request" else "staging",
        "actor": request.triggered_by,
        "pr_number": request.pr_number,
        "head_sha": request.head_sha,
        "head_ref": request.head_ref,
        "base_ref": request.base_ref,
        "base_sha": None,
        "default_branch": request.base_ref if request.pr_number is None else None,
        "baseline": request.pr_number is None and request.head_ref == request.base_ref,
    }
    return Verified(**(fields | overrides))


def new_record(request: RunRequest, **kwargs: Any) -> RunRecord:
    """RunRecord.new with the verified facts of an honest request and test defaults."""
    verified = kwargs.pop("verified", None) or verified_from(request)
    defaults: dict[str, Any] = {"results_key": "k" * 32, "server_url": "https://github.com"}
    return RunRecord.new(request, verified, **(defaults | kwargs))
