"""Naming (run ids, execution names, links) and a run record built from a verified request: pure, no AWS."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelrun.domain import naming
from tests.records import SHA, new_record, verified_from
from tests.unit.domain_helpers import request

# -- naming -------------------------------------------------------------------------------------
AWKWARD_REFS = [
    "feature/deeper trees",
    "feature/a/b/c",
    "ünïcødé/ブランチ/🚀",
    "x" * 300,
    "---",
    "@org/team](javascript:alert(1))",
    "💥",
]


@pytest.mark.parametrize("ref", AWKWARD_REFS)
@pytest.mark.parametrize("pr", [None, 7])
def test_run_id_is_a_valid_job_name(ref: str, pr: int | None) -> None:
    name = naming.run_id("county-assessor/" + "r" * 100, pr, ref, SHA, 123456789012, 100)
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,128}", name), name
    assert naming.run_id("county-assessor/" + "r" * 100, pr, ref, SHA, 123456789012, 100) == name


def test_run_id_of_refs_that_sanitise_alike_differ() -> None:
    ids = {naming.run_id("o/r", None, ref, SHA, 1, 1) for ref in ("a b", "a/b", "a-b", "a_b", "a--b", "à b")}
    assert len(ids) == 6


run_inputs = st.tuples(
    st.sampled_from(["county-assessor/avm", "o/r", "Org.Name/repo_name-2"]),
    st.one_of(st.none(), st.integers(min_value=1, max_value=10**6)),
    st.text(min_size=1, max_size=300),
    st.from_regex(r"[0-9a-f]{40}", fullmatch=True),
    st.integers(min_value=1, max_value=10**11),
    st.integers(min_value=1, max_value=100),
)


@settings(max_examples=100, deadline=None)
@given(run_inputs, run_inputs)
def test_run_id_property(a: tuple[Any, ...], b: tuple[Any, ...]) -> None:
    ida, idb = naming.run_id(*a), naming.run_id(*b)
    for name in (ida, idb):
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,128}", name), name
    if a != b:
        # What makes a request distinct: the repository, where (PR or branch), the commit and
        # the workflow run and attempt. For a PR the branch name is not part of the identity.
        key_a = (a[0], a[1], a[2] if a[1] is None else None, a[3][:8], a[4], a[5])
        key_b = (b[0], b[1], b[2] if b[1] is None else None, b[3][:8], b[4], b[5])
        if key_a != key_b:
            assert ida != idb, (a, b)


@settings(max_examples=100, deadline=None)
@given(
    st.text(
        alphabet=st.characters(codec="ascii", categories=["L", "N"]) | st.sampled_from("-_"), min_size=1, max_size=200
    )
)
def test_execution_name_fits_and_is_deterministic(run: str) -> None:
    name = naming.execution_name(run)
    assert 1 <= len(name) <= 80
    assert naming.execution_name(run) == name
    if len(run) <= 80:
        assert name == run


def test_execution_names_of_long_runs_differ() -> None:
    a, b = "r" * 100 + "-1", "r" * 100 + "-2"
    assert naming.execution_name(a) != naming.execution_name(b)
    assert len(naming.execution_name(a)) <= 80


def test_execution_name_of_real_run_ids() -> None:
    for ref in AWKWARD_REFS:
        run = naming.run_id("county-assessor/" + "r" * 100, None, ref, SHA, 123456789012, 100)
        assert len(naming.execution_name(run)) <= 80


# -- a run record from a verified request -------------------------------------------------------
def test_a_record_takes_identity_from_the_evidence_and_builds_its_own_links() -> None:
    token = "eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJ4In0.c2lnbmF0dXJl"
    req = request(identity={"oidc_token": token})
    verified = verified_from(req, actor="hubot", base_sha="b" * 40)
    rec = new_record(
        req,
        verified=verified,
        job_queue="q",
        bucket="results",
        results_key="0123456789abcdef" * 2,
        server_url="https://ghe.example/",
        vcpus=2,
        memory_mib=8192,
        gpus=0,
    )
    assert rec.triggered_by == "hubot" and rec.environment == "staging" and rec.event == "pull_request"
    assert rec.base_sha == "b" * 40 and rec.pr_key == "county-assessor/avm#42"
    assert rec.workflow_url == "https://ghe.example/county-assessor/avm/actions/runs/9000002/attempts/1"
    # results under the run's own random key; the report elsewhere (no job may write there)
    # Under its repository's own prefix: the only one its repository's job roles may write (issue 21).
    assert rec.results_uri == f"s3://results/runs/county-assessor/avm/{rec.run_id}/{'0123456789abcdef' * 2}/"
    assert naming.report_prefix(rec.run_id) == f"reports/{rec.run_id}/"
    # the token proved this submission only: it is never stored
    assert rec.request and "identity" not in rec.request and token not in json.dumps(rec.item(), default=str)
    # a PR's run is never a baseline: no branch key
    assert rec.branch_key is None and not rec.baseline


def test_only_a_baseline_run_has_a_branch_key() -> None:
    main = request(pr_number=None, head_ref="main", base_ref="main", event="push")
    rec = new_record(main, job_queue="q", bucket="b", vcpus=2, memory_mib=8192, gpus=0)
    assert rec.baseline and rec.branch_key == naming.branch_key("county-assessor/avm", "main")
    unverified_main = new_record(
        main,
        verified=verified_from(main, baseline=False),
        job_queue="q",
        bucket="b",
        vcpus=2,
        memory_mib=8192,
        gpus=0,
    )
    assert unverified_main.branch_key is None and not unverified_main.baseline
    feature = request(pr_number=None, head_ref="feature", base_ref="main", event="workflow_dispatch")
    assert new_record(feature, job_queue="q", bucket="b", vcpus=2, memory_mib=8192, gpus=0).branch_key is None


def test_workflow_run_url_is_built_from_ids_only() -> None:
    assert (
        naming.workflow_run_url("https://github.com", "o/r", 5, 2) == "https://github.com/o/r/actions/runs/5/attempts/2"
    )
    assert "%20" in naming.workflow_run_url("https://github.com", "o/r x", 5, 2)
