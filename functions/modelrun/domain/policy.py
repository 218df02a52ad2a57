"""The merge gate a team sets: which statistics must not get worse, which IAAO standards must
pass, and what a newly failing standard does. It decides the check run's conclusion (and the
commit status on token credentials); docs/policy.md is the reference.

The file (``.github/modelrun.yaml`` in the model repository) is read from the PR's base commit,
never its head, so a PR cannot loosen its own gate (modelrun.gate reads it). Here: the typed
policy, its validation with messages a person can act on, and the gate's decision, pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from modelrun.domain import formatting as fmt
from modelrun.domain.documents import METRIC_KEYS, RATIO_KEYS, Report
from modelrun.domain.text import inert
from modelrun.domain.verdict import Verdict

POLICY_PATH = ".github/modelrun.yaml"
MAX_POLICY_BYTES = 16_384
Conclusion = Literal["success", "neutral", "failure"]
_NAMES = ", ".join((*METRIC_KEYS, *RATIO_KEYS))


class Policy(BaseModel):
    """``.github/modelrun.yaml``. Absent keys take the default: nothing blocks."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Statistics whose change must not be significantly worse (its paired interval excludes 0).
    must_not_get_worse: tuple[str, ...] = ()
    # IAAO standards this run must pass (cod, prd, prb, mki).
    must_pass: tuple[str, ...] = ()
    # What a standard that main passes and this run fails does to the check.
    newly_failing: Conclusion = "success"

    @field_validator("must_not_get_worse")
    @classmethod
    def _statistics(cls, keys: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [k for k in keys if k not in (*METRIC_KEYS, *RATIO_KEYS)]
        if unknown:
            raise ValueError(f"unknown statistic {', '.join(map(repr, unknown))}: one of {_NAMES}")
        return keys

    @field_validator("must_pass")
    @classmethod
    def _standards(cls, keys: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [k for k in keys if k not in RATIO_KEYS]
        if unknown:
            raise ValueError(f"unknown IAAO standard {', '.join(map(repr, unknown))}: one of {', '.join(RATIO_KEYS)}")
        return keys


DEFAULT = Policy()


class PolicyInvalid(ValueError):
    """The policy file can't be used; the message says what to fix."""


def policy_from(data: Any) -> Policy:
    """The policy from the file's parsed YAML (an empty file: the default), or PolicyInvalid."""
    if data is None:
        return DEFAULT
    if not isinstance(data, dict):
        raise PolicyInvalid(f"the file must be a mapping of keys to values, not a {type(data).__name__}")
    try:
        return Policy.model_validate(data)
    except ValidationError as error:
        problems = []
        for e in error.errors():
            where = ".".join(str(p) for p in e["loc"]) or "the file"
            message = "unknown key" if e["type"] == "extra_forbidden" else e["msg"].removeprefix("Value error, ")
            problems.append(f"{where}: {message}")
        raise PolicyInvalid("; ".join(problems)) from None


class GateSource(BaseModel):
    """Which policy a run was judged by: the team's file, none (the default), or an invalid one.
    The run record keeps it (``gate``), so every writer of the check run renders the same."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    kind: Literal["file", "default", "invalid"]
    policy: Policy = DEFAULT
    ref: str | None = None  # the commit (or branch) the file was read at
    error: str | None = None  # invalid: what is wrong


@dataclass(frozen=True)
class Gate:
    conclusion: Conclusion
    reasons: tuple[str, ...]  # why, one line each (Markdown, ours)


def _names(keys: tuple[str, ...] | list[str]) -> str:
    """Statistics in the tables' order, in words: "RMSE, MAE and COD"."""
    names = [fmt.LABELS[k] for k in fmt.LABELS if k in keys]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def source_of(stored: dict[str, Any] | None) -> GateSource:
    """A record's ``gate`` (the default when the record has none: read before gates existed)."""
    return GateSource.model_validate(stored) if stored else GateSource(kind="default")


def decide(source: GateSource, verdict: Verdict, report: Report) -> Gate:
    """The check's conclusion for a run with results, and why. An invalid policy is neutral:
    success would pass a gate the team meant to set, failure would block every PR for a mistake
    on the default branch."""
    if source.kind == "invalid":
        why = f"The merge gate `{POLICY_PATH}` is invalid: {inert(source.error, 300)}. Fix it on the default branch."
        return Gate("neutral", (why,))
    policy = source.policy
    failures: list[str] = []
    neutral: list[str] = []
    worse = [k for k in policy.must_not_get_worse if k in verdict.worse]
    if worse:
        failures.append(f"{_names(worse)} got significantly worse than main (the policy: must not get worse).")
    unchecked = [k for k in policy.must_not_get_worse if k not in verdict.worse]
    if unchecked and not verdict.compared:
        neutral.append(f"{_names(unchecked)} can't be checked against main: this run was not compared with it.")
    passed = {k: s.passed for k, s in report.ratio_study.items()} if report.ratio_study else {}
    failing = [k for k in policy.must_pass if passed.get(k) is False]
    if failing:
        failures.append(f"IAAO {_names(failing)} {'fails' if len(failing) == 1 else 'fail'} (the policy: must pass).")
    missing = [k for k in policy.must_pass if passed.get(k) is None]
    if missing:
        neutral.append(f"IAAO {_names(missing)}: not reported, so the policy's must pass can't be checked.")
    newly = [k for k in verdict.newly_failing if k not in failing]
    if newly and policy.newly_failing != "success":
        line = f"IAAO {_names(newly)} newly {'fails' if len(newly) == 1 else 'fail'} (main passes)."
        (failures if policy.newly_failing == "failure" else neutral).append(line)
    if failures:
        return Gate("failure", (*failures, *neutral))
    if neutral:
        return Gate("neutral", tuple(neutral))
    what = "the default policy (nothing blocks)" if source.kind == "default" else f"`{POLICY_PATH}`"
    return Gate("success", (f"Every rule of {what} holds.",))
