"""Reading the merge gate's policy (``.github/modelrun.yaml``) for a run, from the PR's base.

From the base commit (a dispatch on a branch: the default branch, its base), never the PR's
head: a PR author must not loosen the gate their own PR is judged by. A commit's files never
change, so what was read at a commit is kept per function environment (the check costs one
contents request per repository and base commit, not one per run). What the file says, or why
it can't be used, is kept on the run record (``gate``), so every writer of the check run and
the commit status renders the same decision (domain.report.gate).
"""

from __future__ import annotations

import re
from collections import OrderedDict

from aws_lambda_powertools import Logger

from modelrun.domain.policy import MAX_POLICY_BYTES, POLICY_PATH, GateSource, PolicyInvalid, policy_from
from modelrun.domain.run import RunRecord
from modelrun.errors import GitHubForbidden, GitHubInvalid
from modelrun.ports import PullRequestWrites

logger = Logger(child=True)

_SHA = re.compile(r"^[0-9a-f]{40}$")
_CACHE_SIZE = 256
_read: OrderedDict[tuple[str, str], GateSource] = OrderedDict()


def parse(data: bytes | None, ref: str) -> GateSource:
    """The gate from the file's bytes (None: there is no file, the default policy)."""
    if data is None:
        return GateSource(kind="default", ref=ref)
    import yaml  # only here: the one function that reads the policy ships PyYAML

    try:
        text = data.decode("utf-8")
        loaded = yaml.safe_load(text)
    except (UnicodeDecodeError, yaml.YAMLError) as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        return GateSource(kind="invalid", ref=ref, error=f"not YAML ({first})")
    try:
        return GateSource(kind="file", ref=ref, policy=policy_from(loaded))
    except PolicyInvalid as error:
        return GateSource(kind="invalid", ref=ref, error=str(error))


def read(github: PullRequestWrites, record: RunRecord) -> GateSource:
    """The gate a run is judged by, read at its base (cached per repository and commit)."""
    ref = record.base_sha or record.base_ref
    key = (record.repository.lower(), ref)
    if key in _read:
        _read.move_to_end(key)
        return _read[key]
    try:
        found = parse(github.file_at(record.repository, POLICY_PATH, ref, MAX_POLICY_BYTES), ref)
    except GitHubInvalid as error:  # a directory, a symlink, too large: the file is the problem
        found = GateSource(kind="invalid", ref=ref, error=str(error))
    except GitHubForbidden:
        # The credentials can't read files: a gate the team may have set can't be applied.
        why = "modelrun's GitHub credentials can't read it (they need Contents: read)"
        found = GateSource(kind="invalid", ref=ref, error=why)
        logger.warning("merge gate unreadable", extra={"repository": record.repository, "ref": ref})
        return found  # not kept: a fixed permission is taken up at the next run
    if _SHA.match(ref):  # a branch moves: only a commit's file is kept
        _read[key] = found
        while len(_read) > _CACHE_SIZE:
            _read.popitem(last=False)
    return found
