"""Issue 21, attack 6: a repository's distinct run requests are capped per hour
(MaxRequestsPerRepositoryHour, here 1); the excess is dead-lettered with a clear reason before
any GitHub call. Copies of a request that counts do not count again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from modelrun_local.runtime import LocalRuntime
from tests.integration.flow import Flow, with_command


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flow]:
    parameters = {"LogLevel": "WARNING", "MaxRequestsPerRepositoryHour": "1"}
    with LocalRuntime(parameters=parameters) as runtime:
        yield Flow.placeholder(runtime, Path(tmp_path_factory.mktemp("flags")))


def test_requests_over_a_repositorys_hourly_limit_are_dead_lettered_with_the_reason(limited: Flow) -> None:
    # Requests from distinct workflow runs, one after another, until one is over the limit: the
    # second, unless the hour's window turned between them (then the third).
    reasons: list[str] = []
    for n in range(3):
        job = limited.job(pr=500 + n, run_id=7_000_500 + n)
        request = with_command(job.request(limited.image), "ok")
        before = len(limited.runtime.github.requests)
        job.send(request, limited.queue_url)
        limited.wait()
        letters = limited.dead_letters("RunRequestsDLQUrl")
        if letters:
            reasons = [m["MessageAttributes"]["reason"]["StringValue"] for m in letters]
            assert limited.status_of(request) is None  # no run
            # Refused before GitHub was asked anything about it.
            assert not [r for r in limited.runtime.github.requests[before:] if f"/{7_000_500 + n}/" in r.path]
            break
        assert limited.status_of(request) == "SUCCEEDED"
    assert len(reasons) == 1 and reasons[0].startswith("rate limit: county-assessor/avm sent more than 1 run"), reasons
    assert "MaxRequestsPerRepositoryHour" in reasons[0]
