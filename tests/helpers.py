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


def wait_until_quiet(count: Callable[[], int], quiet: float, timeout: float = 30, what: str = "quiet") -> int:
    """``count()`` once it has not changed for ``quiet`` seconds (polled by ``wait_for``): for
    traffic with no last message to wait for, such as the GitHub requests of a run in progress."""
    last, since = count(), time.monotonic()

    def unchanged() -> bool:
        nonlocal last, since
        now = count()
        if now != last:
            last, since = now, time.monotonic()
        return time.monotonic() - since >= quiet

    wait_for(unchanged, timeout, f"{what} (no change for {quiet} s)")
    return last
