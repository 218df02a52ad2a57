"""repository.yaml - one model repository on a stack: its GitHub roles trust only its own jobs,
its roles reach only its own images, cache, results and data, and its registration is what the
submit function parses (issues 21, 22). Resolved here as CloudFormation would."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from samtranslator.yaml_helper import yaml_parse

from modelrun.domain.registration import Registration, job_grant, registrations_path
from modelrun_local.stack import ROOT, load_template
from tests.unit.test_template import ECR_PULL, ECR_PUSH, as_list, conditions_allow

TEMPLATE = yaml_parse((ROOT / "repository.yaml").read_text())
PINNED = "octo-platform/modelrun/.github/workflows/model-run.yaml@refs/tags/v1"
IMPORTS = {
    "modelrun-ImageRepositoryPrefix": "modelrun-models",
    "modelrun-RunRequestsQueueArn": "arn:aws:sqs:eu-west-1:123456789012:modelrun-RunRequestsQueue",
    "modelrun-ResultsBucketArn": "arn:aws:s3:::modelrun-results",
}
CONDO: dict[str, Any] = {
    "ModelrunStackName": "modelrun",
    "Repository": "octo-org/condo-avm",
    "ImageName": "octo-org/condo-avm",
    "ApprovalEnvironment": "staging",
    "BaselineEnvironment": "modelrun-main",
    "PinnedWorkflow": "",
    "DataReadLocations": ["assessor-data/condo/", "assessor-dvc/condo/"],
    "MainDataWriteLocations": ["assessor-dvc/condo/"],
    "SecretArns": ["arn:aws:secretsmanager:eu-west-1:123456789012:secret:condo/db-password-AbCdEf"],
    "AthenaWorkgroup": "condo",
    "AthenaResultsLocation": "assessor-athena/condo/",
    "GlueDatabase": "condo_sales",
    "AWS::Partition": "aws",
    "AWS::Region": "eu-west-1",
    "AWS::AccountId": "123456789012",
    "AWS::StackName": "modelrun-repo-condo",
}
BARE = CONDO | {"DataReadLocations": [""], "MainDataWriteLocations": [""], "SecretArns": [""], "AthenaWorkgroup": ""}
ARNS = {
    "ImageRepository": "arn:aws:ecr:eu-west-1:123456789012:repository/modelrun-models/octo-org/condo-avm",
    "CacheRepository": "arn:aws:ecr:eu-west-1:123456789012:repository/modelrun-models/octo-org/condo-avm/cache",
}


def condition(name: str, p: dict[str, Any]) -> bool:
    return bool(resolve(TEMPLATE["Conditions"][name], p))


def resolve(node: Any, p: dict[str, Any]) -> Any:
    """The intrinsics repository.yaml uses, as CloudFormation evaluates them."""
    if isinstance(node, list):
        return [v for v in (resolve(item, p) for item in node) if v is not NO_VALUE]
    if not isinstance(node, dict):
        return node
    if len(node) != 1 or not next(iter(node)).startswith(("Fn::", "Ref")):
        return {k: v for k, v in ((k, resolve(v, p)) for k, v in node.items()) if v is not NO_VALUE}
    [(fn, arg)] = node.items()
    if fn == "Ref":
        return NO_VALUE if arg == "AWS::NoValue" else p[arg] if arg in p else f"<{arg}>"
    if fn == "Fn::If":
        return resolve(arg[1] if condition(arg[0], p) else arg[2], p)
    if fn == "Fn::Equals":
        return resolve(arg[0], p) == resolve(arg[1], p)
    if fn == "Fn::Not":
        return not resolve(arg[0], p)
    if fn == "Fn::Join":
        assert isinstance(arg[0], str), "Fn::Join's delimiter must be a literal"
        return arg[0].join(resolve(arg[1], p))
    if fn == "Fn::Split":
        return resolve(arg[1], p).split(arg[0])
    if fn == "Fn::Select":
        return resolve(arg[1], p)[int(arg[0])]
    if fn == "Fn::ImportValue":
        return IMPORTS[resolve(arg, p)]
    if fn == "Fn::GetAtt":
        return ARNS.get(arg[0], f"<{arg[0]}.{arg[1]}>")
    if fn == "Fn::Sub":
        text, local = (arg, {}) if isinstance(arg, str) else (arg[0], {k: resolve(v, p) for k, v in arg[1].items()})
        values = p | local
        return re.sub(r"\$\{([\w:.]+)\}", lambda m: str(values.get(m[1], ARNS.get(m[1].split(".")[0], m[0]))), text)
    raise AssertionError(f"unexpected {fn}")


NO_VALUE = object()


def role(name: str, p: dict[str, Any] = CONDO) -> dict[str, Any]:
    resolved: dict[str, Any] = resolve(TEMPLATE["Resources"][name]["Properties"], p)
    return resolved


def statements(name: str, p: dict[str, Any] = CONDO) -> dict[str, dict[str, Any]]:
    """A role's statements by Sid, from its own policies and the AWS::IAM::Policy resources attached to it."""
    found = [s for policy in role(name, p).get("Policies", []) for s in policy["PolicyDocument"]["Statement"]]
    for resource in TEMPLATE["Resources"].values():
        if "Condition" in resource and not condition(resource["Condition"], p):
            continue
        if resource["Type"] == "AWS::IAM::Policy" and {"Ref": name} in resource["Properties"]["Roles"]:
            found += resolve(resource["Properties"]["PolicyDocument"], p)["Statement"]
    assert all(s["Effect"] == "Allow" for s in found)
    return {s["Sid"]: s for s in found}


def trusts(name: str, sub: str, p: dict[str, Any] = CONDO, aud: str = "sts.amazonaws.com") -> bool:
    [statement] = role(name, p)["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Principal"]["Federated"] == (
        "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
    )
    prefix = "token.actions.githubusercontent.com"
    return conditions_allow(statement["Condition"], {f"{prefix}:sub": sub, f"{prefix}:aud": aud})


UNTRUSTED = [
    "repo:octo-org/residential-avm:environment:staging",  # another repository on the same stack
    "repo:octo-org/condo-avm-fork:environment:staging",
    "repo:octo-org:environment:staging",
    "repo:octo-org/condo-avm:environment:production",
    "repo:octo-org/condo-avm:environment:Staging",
    "repo:octo-org/condo-avm:environment:x:environment:staging",
    "repo:octo-org/condo-avm:pull_request",
    "repo:octo-org/condo-avm:ref:refs/heads/main",
    "repo:octo-org@101/residential-avm@202:environment:staging",
    "repo:evil@7/condo-avm@303:environment:staging",
    "repo:octo-org@101/other@9:environment:x/condo-avm@1:environment:staging",
    "",
]


def test_the_github_roles_trust_only_this_repositorys_jobs_in_their_environments() -> None:
    for form in ("octo-org/condo-avm", "octo-org@101/condo-avm@303"):
        assert trusts("PullRequestRole", f"repo:{form}:environment:staging")
        assert trusts("PullRequestRole", f"repo:{form}:environment:modelrun-main")
        assert trusts("BaselineRole", f"repo:{form}:environment:modelrun-main")
        assert not trusts("BaselineRole", f"repo:{form}:environment:staging")
        assert not trusts("PullRequestRole", f"repo:{form}:environment:staging", aud="https://github.com/octo-org")
    for sub in UNTRUSTED:
        for name in ("PullRequestRole", "BaselineRole"):
            assert not trusts(name, sub) and not trusts(name, sub.replace("staging", "modelrun-main")), (name, sub)


def pinned_sub(repo: str, environment: str, ref: str, workflow: str = PINNED) -> str:
    return f"repo:{repo}:environment:{environment}:ref:{ref}:job_workflow_ref:{workflow}"


def test_a_pinned_workflow_is_required_in_the_subject() -> None:
    pinning = CONDO | {"PinnedWorkflow": PINNED}
    for form in ("octo-org/condo-avm", "octo-org@101/condo-avm@303"):
        pr, main = (
            pinned_sub(form, "staging", "refs/pull/7/merge"),
            pinned_sub(form, "modelrun-main", "refs/heads/main"),
        )
        assert trusts("PullRequestRole", pr, pinning) and trusts("PullRequestRole", main, pinning)
        assert trusts("BaselineRole", main, pinning) and not trusts("BaselineRole", pr, pinning)
        assert not trusts("BaselineRole", pinned_sub(form, "modelrun-main", "refs/pull/7/merge"), pinning)
        for sub in (
            f"repo:{form}:environment:staging",  # not customized
            pinned_sub(form, "staging", "refs/pull/7/merge", PINNED.replace("v1", "v2")),
            pinned_sub(form, "staging", "refs/pull/7/merge", PINNED + "x"),
            pinned_sub(form, "staging:ref:x", "refs/pull/7/merge"),
            pinned_sub("octo-org/residential-avm", "staging", "refs/pull/7/merge"),
        ):
            assert not trusts("PullRequestRole", sub, pinning), sub
    # Unpinned, a customized subject is refused: pin the stack and the subjects in one change.
    assert not trusts("PullRequestRole", pinned_sub("octo-org/condo-avm", "staging", "refs/pull/7/merge"))


def actions(statement: dict[str, Any]) -> set[str]:
    return set(as_list(statement["Action"]))


def test_github_roles_push_only_this_repositorys_images_and_only_the_baseline_writes_its_cache() -> None:
    image, cache = ARNS["ImageRepository"], ARNS["CacheRepository"]
    queue = IMPORTS["modelrun-RunRequestsQueueArn"]
    pr = statements("PullRequestRole")
    assert {sid: (actions(s), as_list(s["Resource"])) for sid, s in pr.items()} == {
        "EcrLogin": ({"ecr:GetAuthorizationToken"}, ["*"]),
        "PushModelImage": (ECR_PUSH, [image]),
        "PullBuildCache": (ECR_PULL, [cache]),
        "EnqueueRun": ({"sqs:SendMessage"}, [queue]),
    }
    baseline = statements("BaselineRole")
    assert {sid: (actions(s), as_list(s["Resource"])) for sid, s in baseline.items()} == {
        "EcrLogin": ({"ecr:GetAuthorizationToken"}, ["*"]),
        "PushModelImage": (ECR_PUSH, [image, cache]),
        "EnqueueRun": ({"sqs:SendMessage"}, [queue]),
    }
    names = {k: resolve(TEMPLATE["Resources"][k]["Properties"]["RepositoryName"], CONDO) for k in ARNS}
    assert names == {
        "ImageRepository": "modelrun-models/octo-org/condo-avm",
        "CacheRepository": "modelrun-models/octo-org/condo-avm/cache",
    }
    assert TEMPLATE["Resources"]["ImageRepository"]["Properties"]["ImageTagMutability"] == "IMMUTABLE"


def test_jobs_pull_only_this_repositorys_images_and_get_only_its_secrets() -> None:
    execution = statements("JobExecutionRole")
    assert execution["PullModelImage"]["Resource"] == ARNS["ImageRepository"]
    assert execution["PassSecrets"]["Resource"] == CONDO["SecretArns"]
    assert execution["WriteJobLogs"]["Resource"] == "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/batch/job:*"
    assert "PassSecrets" not in statements("JobExecutionRole", BARE)


def test_a_pr_job_reads_its_data_and_writes_only_its_results_the_default_branch_also_its_shared_data() -> None:
    pr, baseline = statements("PullRequestJobRole"), statements("BaselineJobRole")
    assert pr["WriteResults"] == {
        "Sid": "WriteResults",
        "Effect": "Allow",
        "Action": "s3:PutObject",
        "Resource": "arn:aws:s3:::modelrun-results/runs/octo-org/condo-avm/*",
    }
    assert pr["ReadData"]["Action"] == "s3:GetObject"
    assert pr["ReadData"]["Resource"] == ["arn:aws:s3:::assessor-data/condo/*", "arn:aws:s3:::assessor-dvc/condo/*"]
    assert pr["QueryInWorkgroup"]["Resource"] == "arn:aws:athena:eu-west-1:123456789012:workgroup/condo"
    assert "arn:aws:glue:eu-west-1:123456789012:table/condo_sales/*" in pr["ReadCatalog"]["Resource"]
    writes = {sid for sid, s in pr.items() if actions(s) & {"s3:PutObject"}}
    assert writes == {"WriteResults", "AthenaResults"}  # never the shared data
    assert baseline["WriteSharedData"]["Resource"] == ["arn:aws:s3:::assessor-dvc/condo/*"]
    assert set(baseline) - set(pr) == {"WriteSharedData"}
    bare = statements("PullRequestJobRole", BARE)
    assert set(bare) == {"WriteResults"} and set(statements("BaselineJobRole", BARE)) == {"WriteResults"}


@pytest.mark.parametrize("parameters", [CONDO, BARE])
def test_the_registration_is_what_the_submit_function_parses(parameters: dict[str, Any]) -> None:
    props = resolve(TEMPLATE["Resources"]["Registration"]["Properties"], parameters)
    # Where the submit function (template.yaml) and doctor look for it.
    assert props["Name"] == registrations_path("modelrun") + "octo-org/condo-avm"
    submit = load_template()["Resources"]["SubmitFunction"]["Properties"]["Environment"]["Variables"]
    assert submit["REGISTRATIONS_PATH"] == {"Fn::Sub": registrations_path("${AWS::StackName}")}
    arns = {
        "PullRequestJobRole": "arn:aws:iam::123456789012:role/modelrun/modelrun/condo-PullRequestJobRole-1",
        "BaselineJobRole": "arn:aws:iam::123456789012:role/modelrun/modelrun/condo-BaselineJobRole-1",
        "JobExecutionRole": "arn:aws:iam::123456789012:role/modelrun/modelrun/condo-JobExecutionRole-1",
        "PullRequestRole": "arn:aws:iam::123456789012:role/modelrun/modelrun/condo-PullRequestRole-1",
        "BaselineRole": "arn:aws:iam::123456789012:role/modelrun/modelrun/condo-BaselineRole-1",
    }
    text = props["Value"]
    for name, arn in arns.items():
        text = text.replace(f"<{name}.Arn>", arn)
    text = text.replace(
        "<ImageRepository.RepositoryUri>",
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/modelrun-models/octo-org/condo-avm",
    )
    registration = Registration.model_validate_json(text)
    assert registration.repository == "octo-org/condo-avm"
    assert registration.github_role_arn == arns["PullRequestRole"]
    assert registration.image_repository_name == "modelrun-models/octo-org/condo-avm"
    assert registration.data_read == tuple(x for x in parameters["DataReadLocations"] if x)
    grant = job_grant(registration, baseline=False, compute="gpu")
    assert grant.job_role_arn == arns["PullRequestJobRole"] and grant.user == "10001:10001"
    assert job_grant(registration, baseline=True, compute="cpu").job_role_arn == arns["BaselineJobRole"]
    assert json.loads(text)["schema_version"] == "1"


def test_roles_live_under_the_stacks_path_which_the_submit_function_may_pass() -> None:
    for name, resource in TEMPLATE["Resources"].items():
        if resource["Type"] == "AWS::IAM::Role":
            assert resolve(resource["Properties"]["Path"], CONDO) == "/modelrun/modelrun/", name
