"""Fixtures shared by the integration tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from modelrun_local.runtime import LocalRuntime
from tests.integration.flow import Flow


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flow]:
    """One LocalRuntime per module (a module's tests share its stack, each with its own PRs)."""
    with LocalRuntime(parameters={"LogLevel": "WARNING"}) as runtime:
        yield Flow.placeholder(runtime, tmp_path_factory.mktemp("flags"))
