"""Issue 21, attack 3: two repositories on one stack. An approved PR of one repository holds the
same job role as the other's, so its container can write under runs/ where the other's main run
wrote (the worst case: that prefix is known). Reports compare only with collected copies, so the
other repository's honest PR shows the same comparison after the attack as before it; and each
repository compares with its own main run only. One LocalRuntime for the module."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelrun.adapters.aws import RunsTable
from modelrun.domain.documents import report_of
from modelrun.domain.run import RunRecord
from modelrun_local.runtime import NOOP_MODEL_DIR, LocalRuntime
from modelrun_local.workflow_job import branch_job, pull_request_job, retarget
from tests.integration.flow import job_role_s3, with_command

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
AVM, CONDO = "county-assessor/avm", "county-assessor/condo"
MAIN = {AVM: "a1" * 20, CONDO: "c1" * 20}


class TwoRepositories:
    def __init__(self, runtime: LocalRuntime, image: str) -> None:
        self.runtime = runtime
        self.image = image
        self.queue_url = runtime.outputs["RunRequestsQueueUrl"]
        self.table = RunsTable(runtime.outputs["RunsTableName"])

    def event(self, repository: str, pr: int, sha: str) -> dict[str, Any]:
        sample = json.loads((FIXTURES / "webhooks" / "pull_request.opened.json").read_text())
        event = retarget(sample, repository)
        event["number"] = event["pull_request"]["number"] = pr
        event["pull_request"]["head"] |= {"sha": sha, "ref": f"feature-{pr}"}
        event["pull_request"]["base"]["sha"] = MAIN[repository]
        return event

    def main_run(self, repository: str, run_id: int) -> None:
        payload = self.event(repository, 0, MAIN[repository])["repository"]
        job = branch_job(
            self.runtime.github, payload, "push", branch="main", sha=MAIN[repository], run_id=run_id, actor="maintainer"
        )
        job.send(with_command(job.request(self.image), "ok"), self.queue_url)

    def pr_run(self, repository: str, pr: int, run_id: int, sha: str) -> None:
        job = pull_request_job(self.runtime.github, self.event(repository, pr, sha), run_id=run_id)
        job.send(with_command(job.request(self.image), "ok"), self.queue_url)

    def record_of(self, sha: str) -> RunRecord:
        (record,) = [r for r in self.table.scan() if r.head_sha == sha]
        return record

    def compared(self, sha: str) -> tuple[Any, ...]:
        record = self.record_of(sha)
        report = report_of(record.report)
        assert record.status.value == "SUCCEEDED" and report.baseline is not None and report.comparison is not None
        changes = {k: v.model_dump(exclude={"seconds"}) for k, v in report.comparison.changes.items()}
        return report.baseline.run_id, report.comparison.status, changes, report.params_diff

    def wait(self) -> None:
        self.runtime.wait_until_idle(timeout=90)


@pytest.fixture(scope="module")
def stack() -> Iterator[TwoRepositories]:
    with LocalRuntime(parameters={"LogLevel": "WARNING", "GitHubRepositories": f"{AVM},{CONDO}"}) as runtime:
        s = TwoRepositories(runtime, runtime.push_image(NOOP_MODEL_DIR, tag="noop"))
        s.main_run(AVM, 6_000_001)
        s.main_run(CONDO, 6_000_002)
        s.wait()
        assert s.record_of(MAIN[AVM]).baseline and s.record_of(MAIN[CONDO]).baseline
        yield s


def test_one_repositorys_job_cannot_change_what_the_others_prs_are_compared_with(stack: TwoRepositories) -> None:
    stack.pr_run(AVM, 401, 6_000_401, "a2" * 20)
    stack.pr_run(CONDO, 402, 6_000_402, "c2" * 20)
    stack.wait()
    before = stack.compared("a2" * 20)
    # Each repository is compared with its own main run only.
    assert before[0] == stack.record_of(MAIN[AVM]).run_id and before[1] == "paired"
    assert stack.compared("c2" * 20)[0] == stack.record_of(MAIN[CONDO]).run_id

    # A condo PR's container rewrites avm's main holdout and params, and archives its metrics.
    main = stack.record_of(MAIN[AVM])
    bucket, prefix = main.results_uri.removeprefix("s3://").split("/", 1)
    rows = ["sale_id,sale_price,estimate,area"] + [f"s{i + 1},1000,1,1" for i in range(20)]
    s3 = job_role_s3(stack.runtime, "condo-attacker")
    s3.put_object(
        Bucket=bucket, Key=f"{prefix}predictions.csv.gz", Body=gzip.compress(("\n".join(rows) + "\n").encode())
    )
    s3.put_object(Bucket=bucket, Key=f"{prefix}params.yaml", Body=b"condo: was here\n")
    s3.put_object(Bucket=bucket, Key=f"{prefix}metrics.json", Body=b"{}", StorageClass="GLACIER")

    stack.pr_run(AVM, 403, 6_000_403, "a3" * 20)
    stack.wait()
    assert stack.compared("a3" * 20) == before
    [comment] = stack.runtime.github.comments(AVM, 403)
    assert "was here" not in comment["body"] and "No detectable change against main" in comment["body"]
