"""The ports the submit, track and update paths share, made from a function's settings at its
cold start."""

from __future__ import annotations

from dataclasses import dataclass

from modelrun.adapters.aws import RunsTable
from modelrun.adapters.github import PullRequests
from modelrun.config import RecordsAndGitHubSettings
from modelrun.ports import GitHub, Runs


def records_and_github(s: RecordsAndGitHubSettings) -> tuple[Runs, GitHub]:
    """The runs table, and GitHub as a factory: the secret is read when a call is made, so
    broken credentials fail that message, not the function's init."""
    return RunsTable(s.runs_table), lambda: PullRequests(s.github_secret_arn, s.github_api_url)


@dataclass(frozen=True)
class RecordsAndGitHub[S: RecordsAndGitHubSettings]:
    """A path that reads and writes run records and publishes to GitHub."""

    settings: S
    runs: Runs
    github: GitHub
