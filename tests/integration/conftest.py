"""Fixtures the integration tests share: one local stack per module (one LocalRuntime per
process at a time, so never wider); a module's tests share it, each with its own PRs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from modelrun_local.runtime import LocalRuntime
from tests.integration.cli_stack import World, started
from tests.integration.flow import Flow


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flow]:
    with LocalRuntime(parameters={"LogLevel": "WARNING"}) as runtime:
        yield Flow.placeholder(runtime, tmp_path_factory.mktemp("flags"))


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    """For the CLI's tests: the placeholder image pushed, no runs yet."""
    with started() as world:
        yield world
