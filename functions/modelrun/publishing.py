"""Ordered writes to GitHub: what a PR shows never goes back to an older state.

Several writers publish to the same target (a PR's sticky comment, a commit's status): the
submit path, the track path and the report, each with its own view of the run records, each
delayed by anything (a slow GitHub call, a cold start). A body rendered from older records
must never replace one rendered from newer records, and no writer's newer state may be lost.

Per target, one item in the runs table holds the version last published (the newest
``updated_at`` the published body reflects), its digest, and a short lease:

1. The writer takes the lease (a conditional write). If another writer holds it, the writer
   records the version it wanted to show (``wanted``) and leaves: the holder renders again
   before it lets go, so the newer state is shown all the same.
2. Holding the lease, the writer reads the records afresh and renders. It writes to GitHub
   only if its version is not older than the one published and the digest differs.
3. It records the version and lets go in one conditional write that fails if a newer state was
   wanted meanwhile: then it renders again from fresh records, still holding the lease.
4. A failed write lets go of the lease at once (the next writer need not wait for it to lapse).

Creating the target (the PR's first comment, the run's check run) is recorded in the same item
before the POST (``create_recorded``): a create whose answer was lost (a timeout, a 5xx, a
dropped connection, a crash) may have landed, so the next writer looks for it before creating
again; one GitHub refused for certain clears the mark. Without the mark, no lookup is made.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger

from modelrun.errors import GitHubRateLimited, GitHubRejected, PublishBusy
from modelrun.ports import Runs

logger = Logger(child=True)

# Longer than the GitHub calls one render makes (10 s timeout each, at most three), so a live
# holder never loses it; short enough that a crashed holder blocks nobody for long.
LEASE_SECONDS = 45
MAX_RENDERS = 5


# The item's field that marks a create that may have landed unseen.
CREATE_PENDING = "create_pending"


@dataclass(frozen=True)
class Rendered:
    """One render of a target from fresh records."""

    version: str  # the newest updated_at of the records it reflects (ISO 8601, sorts as text)
    digest: str
    payload: Any


def publish(
    table: Runs,
    key: str,
    writer: str,
    version_hint: str,
    render: Callable[[], Rendered],
    write: Callable[[Rendered, dict[str, Any]], dict[str, Any]],
    *,
    wait: bool,
) -> bool:
    """Publish ``render()`` to the target ``key`` in order; True if GitHub was written to.

    ``version_hint``: the version the caller's own view reflects (what it asks to be shown when
    the target is busy). ``write(rendered, state)`` talks to GitHub and returns the fields to
    store beside the version (such as the comment id). ``wait``: raise :class:`PublishBusy`
    when another writer holds the target (the caller retries), else leave it to that writer."""
    owner = f"{writer}:{uuid.uuid4()}"
    for _ in range(3):
        if table.acquire(key, owner, LEASE_SECONDS):
            break
        if table.want(key, version_hint):
            if wait:
                raise PublishBusy(f"another writer is publishing {key}; it will show version {version_hint}")
            logger.info("publication busy; its holder will show this state", extra={"key": key, "writer": writer})
            return False
    else:
        raise PublishBusy(f"could not take the lease of {key}")
    written = False
    try:
        for _ in range(MAX_RENDERS):
            rendered = render()
            state = table.publication(key)
            published = str(state.get("version", ""))
            fields: dict[str, Any] = {}
            if rendered.version < published:
                # Our fresh read is older than what GitHub shows (an index that lags): keep theirs.
                logger.info("publication newer than this render: left as is", extra={"key": key})
                version = published
            elif state.get("digest") == rendered.digest:
                version = rendered.version
            else:
                fields = write(rendered, state)
                fields["digest"] = rendered.digest
                written = True
                version = rendered.version
            if table.publish(key, owner, version, **fields):
                return written
            if not table.acquire(key, owner, LEASE_SECONDS):  # lost it: whoever has it renders afresh
                raise PublishBusy(f"lost the lease of {key}")
        raise PublishBusy(f"{key} kept changing while it was published")
    except BaseException:
        table.release(key, owner)
        raise


def create_recorded(table: Runs, key: str, create: Callable[[], int]) -> int:
    """``create()`` (a POST that makes the target), marked in the target's item first: the mark
    stays if the answer is lost, and the next writer looks the target up before creating it. A
    refusal (4xx, a rate limit) changes nothing on GitHub, so it clears the mark. The caller
    holds the lease, and stores ``CREATE_PENDING: False`` with the new id."""
    table.set_fields(key, **{CREATE_PENDING: True})
    try:
        return create()
    except (GitHubRejected, GitHubRateLimited):
        table.set_fields(key, **{CREATE_PENDING: False})
        raise


def write_target(
    table: Runs,
    key: str,
    state: dict[str, Any],
    id_field: str,
    *,
    update: Callable[[int], bool],
    find: Callable[[], int | None],
    create: Callable[[], int],
) -> dict[str, Any]:
    """One write to a target GitHub holds (a comment, a check run), as ``publish``'s ``write``:
    ``update(id)`` the known one (False: GitHub no longer has it); with no id but a create that
    may have landed unseen, ``find()`` it first; else ``create()`` it, recorded. The fields to
    store: the id under ``id_field``, and the create mark cleared."""
    known = state.get(id_field)
    if known and update(int(known)):
        return {id_field: int(known)}
    if not known and state.get(CREATE_PENDING):
        found = find()
        if found is not None and update(found):
            return {id_field: found, CREATE_PENDING: False}
    return {id_field: create_recorded(table, key, create), CREATE_PENDING: False}


def quietly(target: str, run_id: str, publish: Callable[[], object]) -> None:
    """An interim state (queued, in progress) must not fail its message: the report writes the
    final state all the same, and a busy ``target`` shows this state through its holder."""
    try:
        publish()
    except PublishBusy:
        logger.info(f"{target} busy with another writer; it will show this state", extra={"run_id": run_id})
    except Exception:
        logger.exception(f"{target} update failed; the next update will catch up", extra={"run_id": run_id})
