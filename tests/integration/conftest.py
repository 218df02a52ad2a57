"""Fixtures the integration tests share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.cli_stack import World, started


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    """A fresh local stack for the module (one LocalRuntime per process at a time, so never wider),
    the placeholder image pushed, no runs yet."""
    with started() as world:
        yield world
