"""Helpers the tests share."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_for[T](check: Callable[[], T | None], timeout: float = 30, what: str = "condition") -> T:
    """Poll ``check`` until it returns something truthy (and return that), or fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")
