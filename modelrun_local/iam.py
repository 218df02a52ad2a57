"""IAM on the local stack: each call a role makes is checked against that role's policies.

AWS evaluates an identity-based request as: an explicit Deny in any statement wins; else an
Allow whose action, resource and conditions all match; else an implicit deny. This module does
that for the calls the stack makes, with what moto's own checker lacks: the real resource ARN
of each call (moto knows it only for SQS, S3, IAM and STS), IAM's action names (moto sees
``batch:submitjob``, ``sqs:DeleteMessageBatch``, ``lambda:Invoke``), the condition operators the
template uses, ``NotAction``/``NotResource``, and the implicit ``iam:PassRole`` a service checks
when a role is handed to it. Nothing here imports moto: ``moto_hooks`` feeds it the request.

Not enforced (the template tests cover them instead): resource-based policies (queue, bucket,
key and topic policies), permission boundaries, SCPs and session policies.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

Policy = Mapping[str, Any]
Context = Mapping[str, str | list[str]]


@dataclass(frozen=True)
class Decision:
    principal: str  # the role's name, or the service that assumes one
    action: str  # as IAM names it, e.g. batch:SubmitJob
    resource: str
    allowed: bool
    reason: str  # the statement that decided, or why nothing allowed it
    at: float = field(default_factory=time.time)
    check_ms: float = 0.0  # what deciding it cost (reading the role's policies, evaluating them)


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _glob(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    # IAM's wildcards: * and ? only (fnmatch would also read [..] as a class).
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL) is not None


_OPERATORS: dict[str, Callable[[str, str], bool]] = {
    "StringEquals": lambda want, got: want == got,
    "StringEqualsIgnoreCase": lambda want, got: want.lower() == got.lower(),
    "StringLike": lambda want, got: _glob(want, got),
    "ArnEquals": lambda want, got: want == got,
    "ArnLike": lambda want, got: _glob(want, got),
    "Bool": lambda want, got: want.lower() == got.lower(),
}
_NEGATED = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
}


class UnsupportedCondition(ValueError):
    """An operator this checker does not know: refuse, never guess."""


def _condition_holds(operator: str, key: str, wanted: Any, context: Context) -> bool:
    quantifier, _, op = operator.rpartition(":")
    if_exists = op.endswith("IfExists")
    op = op.removesuffix("IfExists")
    wants = [str(w) for w in _listed(wanted)]
    present = key in context
    if op == "Null":  # "true": the key must be absent
        return (not present) == (wants[0].lower() == "true")
    if not present:
        # A missing key matches nothing: positive operators fail, negated ones hold; IfExists
        # and ForAllValues hold.
        return if_exists or op in _NEGATED or quantifier == "ForAllValues"
    values = [str(v) for v in _listed(context[key])]
    negated = op in _NEGATED
    base = _NEGATED.get(op, op)
    if base not in _OPERATORS:
        raise UnsupportedCondition(operator)
    test = _OPERATORS[base]

    def matches(value: str) -> bool:
        return any(test(w, value) for w in wants)

    # Single-valued keys and ForAnyValue: any value matches; ForAllValues: every one does.
    result = all(map(matches, values)) if quantifier == "ForAllValues" else any(map(matches, values))
    return not result if negated else result


def _conditions_hold(conditions: Mapping[str, Mapping[str, Any]], context: Context) -> bool:
    return all(
        _condition_holds(operator, key, wanted, context)
        for operator, keys in conditions.items()
        for key, wanted in keys.items()
    )


def _statement_applies(statement: Mapping[str, Any], action: str, resource: str, context: Context) -> bool:
    if "Action" in statement:
        if not any(_glob(a, action, ignore_case=True) for a in _listed(statement["Action"])):
            return False
    elif any(_glob(a, action, ignore_case=True) for a in _listed(statement.get("NotAction", []))):
        return False
    if "Resource" in statement:
        if not any(_glob(str(r), resource) for r in _listed(statement["Resource"])):
            return False
    elif "NotResource" in statement and any(_glob(str(r), resource) for r in _listed(statement["NotResource"])):
        return False
    return _conditions_hold(statement.get("Condition", {}), context)


def _statements(policies: Iterable[Policy | str]) -> Iterable[tuple[int, Mapping[str, Any]]]:
    for index, policy in enumerate(policies):
        document = json.loads(policy) if isinstance(policy, str) else policy
        for statement in _listed(document.get("Statement", [])):
            yield index, statement


def evaluate(policies: list[Policy | str], action: str, resource: str, context: Context) -> tuple[bool, str]:
    """(allowed, reason) for one action on one resource, by IAM's evaluation logic."""
    allowed_by = ""
    for index, statement in _statements(policies):
        if not _statement_applies(statement, action, resource, context):
            continue
        label = statement.get("Sid") or f"policy {index}"
        if statement.get("Effect") == "Deny":
            return False, f"explicit deny in {label}"
        allowed_by = allowed_by or f"allowed by {label}"
    return (True, allowed_by) if allowed_by else (False, "no statement allows it")


def trusts(trust_policy: Policy | str, principal: Mapping[str, str], action: str, context: Context) -> tuple[bool, str]:
    """Whether a role's trust policy lets ``principal`` (e.g. {"Service": "lambda.amazonaws.com"}
    or {"Federated": provider ARN}) take it with ``action``."""
    allowed = False
    for _, statement in _statements([trust_policy]):
        listed = statement.get("Principal", {})
        named = listed == "*" or any(
            value in _listed(listed.get(kind, [])) or "*" in _listed(listed.get(kind, []))
            for kind, value in principal.items()
        )
        if not named or not any(_glob(a, action, ignore_case=True) for a in _listed(statement.get("Action", []))):
            continue
        if not _conditions_hold(statement.get("Condition", {}), context):
            continue
        if statement.get("Effect") == "Deny":
            return False, "explicit deny in the trust policy"
        allowed = True
    return (allowed, "trusted") if allowed else (False, "the trust policy does not admit this principal")


# -- what each call is, as IAM sees it --------------------------------------------------------
# moto's action names that IAM spells differently (IAM's own names are case-insensitive).
ACTION_ALIASES = {
    "sqs:deletemessagebatch": "sqs:DeleteMessage",
    "sqs:sendmessagebatch": "sqs:SendMessage",
    "sqs:changemessagevisibilitybatch": "sqs:ChangeMessageVisibility",
    "lambda:invoke": "lambda:InvokeFunction",
    "states:startexecution": "states:StartExecution",
}


@dataclass
class Call:
    """One request, as the hook saw it: the signing service, the API operation, its input."""

    service: str
    operation: str
    region: str
    account: str
    path: str
    params: dict[str, Any]  # the operation's input (JSON body or query parameters)
    resource: str  # what moto resolved ("*" where it resolves nothing)


def action_of(call: Call) -> str:
    action = f"{call.service}:{call.operation}"
    return ACTION_ALIASES.get(action.lower(), action)


def _arn(call: Call, service: str, resource: str) -> str:
    return f"arn:aws:{service}:{call.region}:{call.account}:{resource}"


def _dynamodb(call: Call) -> list[str]:
    p = call.params
    if "TableName" in p:
        base = _arn(call, "dynamodb", f"table/{p['TableName']}")
        return [f"{base}/index/{p['IndexName']}" if p.get("IndexName") else base]
    if "RequestItems" in p:
        return [_arn(call, "dynamodb", f"table/{t}") for t in p["RequestItems"]]
    if "TransactItems" in p:
        names = {next(iter(item.values()))["TableName"] for item in p["TransactItems"]}
        return [_arn(call, "dynamodb", f"table/{t}") for t in sorted(names)]
    return ["*"]


def _batch_arn(call: Call, kind: str, name: str) -> str:
    return name if name.startswith("arn:") else _arn(call, "batch", f"{kind}/{name}")


def _batch(call: Call) -> list[str]:
    p, op = call.params, call.operation.lower()
    if op in ("describejobs", "listjobs", "describejobdefinitions", "describejobqueues"):
        return ["*"]  # IAM: these take no resource-level permissions
    if op == "submitjob":
        return [_batch_arn(call, "job-queue", p["jobQueue"]), _batch_arn(call, "job-definition", p["jobDefinition"])]
    if op == "registerjobdefinition":
        return [_arn(call, "batch", f"job-definition/{p['jobDefinitionName']}")]
    if op == "deregisterjobdefinition":
        return [_batch_arn(call, "job-definition", p["jobDefinition"])]
    if op in ("terminatejob", "canceljob"):
        return [_arn(call, "batch", f"job/{p['jobId']}")]
    if op in ("tagresource", "untagresource", "listtagsforresource"):
        return [unquote(call.path.rsplit("/v1/tags/", 1)[-1])]
    return ["*"]


def resources_of(call: Call, secret_arn: Callable[[str], str | None]) -> list[str]:
    """The ARNs IAM authorizes the call against (each must be allowed)."""
    service, p = call.service, call.params
    if call.resource != "*":
        return [call.resource]
    if service == "dynamodb":
        return _dynamodb(call)
    if service == "batch":
        return _batch(call)
    if service == "secretsmanager" and "SecretId" in p:
        return [secret_arn(p["SecretId"]) or p["SecretId"]]
    if service == "states":
        if "stateMachineArn" in p:
            return [p["stateMachineArn"]]
        if "executionArn" in p:
            return [p["executionArn"]]
    if service == "lambda":
        name = unquote(call.path.split("/functions/", 1)[-1].split("/", 1)[0])
        return [name if name.startswith("arn:") else _arn(call, "lambda", f"function:{name}")]
    if service == "sns" and ("TopicArn" in p or "TargetArn" in p):
        return [p.get("TopicArn") or p["TargetArn"]]
    if service == "logs" and "logGroupName" in p:
        stream = p.get("logStreamName")
        group = _arn(call, "logs", f"log-group:{p['logGroupName']}")
        return [f"{group}:log-stream:{stream}" if stream else f"{group}:*"]
    if service == "ecr" and "repositoryName" in p:
        return [_arn(call, "ecr", f"repository/{p['repositoryName']}")]
    if service == "ssm" and "Name" in p:  # a parameter's ARN has one "/" before a path's first
        return [_arn(call, "ssm", f"parameter/{p['Name'].lstrip('/')}")]
    if service == "athena" and ("WorkGroup" in p or call.operation == "StartQueryExecution"):
        return [_arn(call, "athena", f"workgroup/{p.get('WorkGroup', 'primary')}")]
    return ["*"]


def implied_checks(call: Call) -> list[tuple[str, str, dict[str, str]]]:
    """Checks a service makes on the caller besides the call itself: handing a role to Batch
    needs ``iam:PassRole`` on it, with the service the role is passed to."""
    if call.service == "batch" and call.operation.lower() == "registerjobdefinition":
        props = call.params.get("containerProperties") or {}
        roles = [props.get("jobRoleArn"), props.get("executionRoleArn")]
        return [("iam:PassRole", r, {"iam:PassedToService": "ecs-tasks.amazonaws.com"}) for r in roles if r]
    return []


class DecisionLog:
    """Every decision, in memory and as JSON lines in ``path`` (read by the runtime's process)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self.decisions: list[Decision] = []

    def record(self, decision: Decision) -> None:
        with self._lock:
            self.decisions.append(decision)
            if self.path is not None:
                with self.path.open("a") as out:
                    out.write(json.dumps(asdict(decision)) + "\n")


def read_log(path: Path) -> list[Decision]:
    if not path.exists():
        return []
    return [Decision(**json.loads(line)) for line in path.read_text().splitlines() if line.strip()]
